"""The PyTorch datasets: per-user (features, targets), picklable, multi-worker DataLoader."""

from __future__ import annotations

import itertools
import pickle
import types

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

from torch.utils.data import DataLoader  # noqa: E402

from cardworld.errors import DataError  # noqa: E402
from cardworld.simulator.targets.dataset import _LedgerParts  # noqa: E402
from cardworld.targets import (  # noqa: E402
    Columns,
    Target,
    TargetDataset,
    TargetIterableDataset,
    TargetSet,
    compute_table,
    pad_collate,
)

TARGETS = TargetSet(
    (
        Target("week_sum", "sum", "week", mcc=5411),
        Target("next_3d_any", "any", "3d", direction="future", category="travel"),
        Target("top2_month", "topk_mean", "month", k=2),
    )
)


def _frame(users: int = 12, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 40, users)
    n = int(lengths.sum())
    return pd.DataFrame(
        {
            "consumer_id": np.repeat(np.arange(users) * 3 + 1, lengths),
            "timestamp": pd.Timestamp("2024-02-20")
            + pd.to_timedelta(rng.integers(0, 40 * 86_400, n), unit="s"),
            "amount": np.round(rng.uniform(1, 100, n), 2),
            "mcc": rng.choice([5411, 4511, 5812], n),
            "category": rng.choice(["grocery", "travel", "dining"], n),
            "is_fraud": rng.random(n) < 0.1,
        }
    ).sample(frac=1.0, random_state=seed)


def _expected_by_user(frame: pd.DataFrame) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    values = compute_table(frame, TARGETS)
    ordered = frame.assign(_row=np.arange(len(frame))).sort_values(
        ["consumer_id", "timestamp"], kind="stable"
    )
    result = {}
    for user, rows in ordered.groupby("consumer_id"):
        features = np.stack([rows["amount"], rows["timestamp"].dt.hour, rows["is_fraud"]], axis=1)
        result[int(user)] = (features.astype(np.float32), values[rows["_row"].to_numpy()])
    return result


FEATURES = ("amount", "hour", "is_fraud")


def test_map_dataset_items_are_users_in_time_order():
    frame = _frame()
    dataset = TargetDataset.from_table(frame, TARGETS, features=FEATURES)
    expected = _expected_by_user(frame)
    assert len(dataset) == len(expected)
    assert dataset.target_names == TARGETS.names
    for index, user in enumerate(dataset.user_ids):
        features, targets = dataset[index]
        assert features.dtype == torch.float32 and targets.dtype == torch.float32
        np.testing.assert_array_equal(features.numpy(), expected[int(user)][0])
        np.testing.assert_array_equal(targets.numpy(), expected[int(user)][1])
    np.testing.assert_array_equal(dataset[-1][1].numpy(), dataset[len(dataset) - 1][1].numpy())
    with pytest.raises(IndexError):
        dataset[len(dataset)]


def test_map_dataset_pickles_and_feeds_a_two_worker_dataloader():
    frame = _frame(seed=1)
    dataset = pickle.loads(
        pickle.dumps(TargetDataset.from_table(frame, TARGETS, features=FEATURES))
    )
    expected = _expected_by_user(frame)
    loader = DataLoader(dataset, batch_size=4, num_workers=2, collate_fn=pad_collate)
    seen = 0
    for batch in loader:
        assert batch["features"].shape[:2] == batch["targets"].shape[:2] == batch["mask"].shape
        for b in range(len(batch["lengths"])):
            user = int(dataset.user_ids[seen])
            length = int(batch["lengths"][b])
            np.testing.assert_array_equal(batch["targets"][b, :length].numpy(), expected[user][1])
            assert torch.isnan(batch["targets"][b, length:]).all()
            assert (batch["features"][b, length:] == 0.0).all()
            assert not batch["mask"][b, length:].any() and batch["mask"][b, :length].all()
            seen += 1
    assert seen == len(dataset)


def test_pad_collate_in_a_worker_fills_shared_memory(monkeypatch):
    # A DataLoader worker sends tensors in shared memory without copying them there first.
    from cardworld.simulator.targets import dataset as module

    dataset = TargetDataset.from_table(_frame(seed=3), TARGETS, features=FEATURES)
    items = [dataset[u] for u in range(3)]
    here = pad_collate(items)
    monkeypatch.setattr(module, "get_worker_info", lambda: types.SimpleNamespace(id=0))
    there = pad_collate(items)
    assert not here["targets"].is_shared() and not here["features"].is_shared()
    assert there["targets"].is_shared() and there["features"].is_shared()
    for name in ("features", "targets", "mask", "lengths"):
        torch.testing.assert_close(there[name], here[name], equal_nan=True, rtol=0, atol=0)


def test_iterable_dataset_splits_users_across_two_workers(tmp_path):
    frame = _frame(users=30, seed=2)
    (tmp_path / "ledger" / "transactions").mkdir(parents=True)
    pq.write_table(
        pa.Table.from_pandas(frame, preserve_index=False),
        tmp_path / "ledger" / "transactions" / "p.parquet",
    )
    dataset = TargetIterableDataset.from_ledger(
        tmp_path / "ledger", TARGETS, features=FEATURES, chunk_users=4, shuffle=True
    )
    expected = _expected_by_user(frame)
    loader = DataLoader(dataset, batch_size=None, num_workers=2)
    got = [(features.numpy(), targets.numpy()) for features, targets in loader]
    assert len(got) == len(expected)
    # Each user is yielded exactly once: match them up by their feature rows.
    remaining = {user: pair for user, pair in expected.items()}
    for features, targets in got:
        user = next(
            u
            for u, (f, _) in remaining.items()
            if f.shape == features.shape and np.array_equal(f, features)
        )
        np.testing.assert_array_equal(targets, remaining.pop(user)[1])
    assert not remaining


def test_bad_features_are_data_errors():
    frame = _frame(users=2)
    with pytest.raises(DataError, match="column 'no_such': not found"):
        TargetDataset.from_table(frame, TARGETS, features=("no_such",))
    with pytest.raises(DataError, match="features = 'amount': expected a list"):
        TargetDataset.from_table(frame, TARGETS, features="amount")
    with pytest.raises(DataError, match="feature column 'timestamp': type timestamp"):
        TargetDataset.from_table(frame, TARGETS, features=("timestamp",))


def _write_parts(directory, frame: pd.DataFrame, users_per_file: list[list[int]]) -> None:
    """A ledger directory whose part file i holds the rows of users_per_file[i]."""
    (directory / "transactions").mkdir(parents=True)
    for i, users in enumerate(users_per_file):
        rows = frame[frame["consumer_id"].isin(users)]
        pq.write_table(
            pa.Table.from_pandas(rows, preserve_index=False),
            directory / "transactions" / f"part-{i:05d}.parquet",
        )


def _items(dataset) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(features.numpy(), targets.numpy()) for features, targets in dataset]


def test_iterable_dataset_reads_a_ledger_a_part_file_at_a_time(tmp_path, monkeypatch):
    from cardworld.simulator.targets import dataset as module

    frame = _frame(users=20, seed=3)
    users = sorted(frame["consumer_id"].unique())
    _write_parts(tmp_path / "ledger", frame, [users[:7], users[7:8], users[8:]])
    features = ("amount", "hour", "category")  # a string feature, coded across the files
    in_memory = TargetIterableDataset.from_table(
        pq.read_table(tmp_path / "ledger" / "transactions"), TARGETS, features=features
    )
    monkeypatch.setattr(module, "read_ledger", None)  # the whole ledger is never read
    streamed = TargetIterableDataset.from_ledger(
        tmp_path / "ledger", TARGETS, features=features, chunk_users=3
    )
    assert len(streamed) == len(in_memory) == 20
    got, expected = _items(streamed), _items(in_memory)
    assert len(got) == len(expected)
    for (f, t), (ef, et) in zip(got, expected, strict=True):
        np.testing.assert_array_equal(f, ef)
        np.testing.assert_array_equal(t, et)
    # Two workers share the users (both read the last file, which holds users of each
    # share), each user once; shuffled, the same users again.
    for workers, shuffle in ((2, False), (2, True)):
        streamed.shuffle = shuffle
        loader = DataLoader(streamed, batch_size=None, num_workers=workers)
        got = sorted((f.tobytes(), t.tobytes()) for f, t in _items(loader))
        assert got == sorted((f.tobytes(), t.tobytes()) for f, t in expected)


def test_iterable_dataset_reads_a_ledger_at_once_when_users_run_across_files(tmp_path):
    frame = _frame(users=10, seed=4)
    users = sorted(frame["consumer_id"].unique())
    # User users[4] has rows in both files: the files cannot be taken one at a time.
    first = frame[frame["consumer_id"].isin(users[:4])]
    split = frame[frame["consumer_id"] == users[4]]
    rest = frame[frame["consumer_id"].isin(users[5:])]
    (tmp_path / "ledger" / "transactions").mkdir(parents=True)
    for i, rows in enumerate(
        (pd.concat([first, split.iloc[:2]]), pd.concat([split.iloc[2:], rest]))
    ):
        pq.write_table(
            pa.Table.from_pandas(rows, preserve_index=False),
            tmp_path / "ledger" / "transactions" / f"part-{i}.parquet",
        )
    dataset = TargetIterableDataset.from_ledger(tmp_path / "ledger", TARGETS, features=FEATURES)
    expected = _expected_by_user(frame)
    got = _items(dataset)
    assert len(got) == len(expected) == len(dataset)
    for (features, targets), user in zip(got, sorted(expected), strict=True):
        np.testing.assert_array_equal(features, expected[user][0])
        np.testing.assert_array_equal(targets, expected[user][1])


def test_iterable_dataset_streams_a_simulated_ledger_like_the_map_dataset(tiny_ledger):
    features = ("amount", "hour", "channel")
    targets = TargetSet(
        (*TARGETS.targets[:1], Target("airline_3d", "any", "3d", category="airlines"))
    )
    streamed = TargetIterableDataset.from_ledger(tiny_ledger, targets, features=features)
    assert len(streamed._state.paths) > 1  # a part file at a time
    whole = TargetDataset.from_ledger(tiny_ledger, targets, features=features)
    assert len(streamed) == len(whole)
    for (f, t), index in zip(_items(streamed), range(len(whole)), strict=True):
        np.testing.assert_array_equal(f, whole[index][0].numpy())
        np.testing.assert_array_equal(t, whole[index][1].numpy())


def test_iterable_dataset_streams_dictionary_user_ids_and_checks_every_file_first(tmp_path):
    frame = _frame(users=6, seed=5)
    users = sorted(frame["consumer_id"].unique())
    named = frame.assign(consumer_id=frame["consumer_id"].map("u{:03d}".format).astype("category"))
    names = [f"u{user:03d}" for user in users]
    _write_parts(tmp_path / "coded", named, [names[:3], names[3:]])
    streamed = TargetIterableDataset.from_ledger(tmp_path / "coded", TARGETS, features=FEATURES)
    assert isinstance(streamed._state, _LedgerParts) and len(streamed) == 6  # streamed
    whole = pq.read_table(tmp_path / "coded" / "transactions")
    assert pa.types.is_dictionary(whole.schema.field("consumer_id").type)
    in_memory = TargetIterableDataset.from_table(whole, TARGETS, features=FEATURES)
    for (f, t), (ef, et) in zip(_items(streamed), _items(in_memory), strict=True):
        np.testing.assert_array_equal(f, ef)
        np.testing.assert_array_equal(t, et)
    # A later file's text amounts are refused when the dataset is made, not mid-epoch.
    bad = frame.assign(amount=frame["amount"].astype(str))
    (tmp_path / "bad" / "transactions").mkdir(parents=True)
    for i, (rows, chosen) in enumerate(((frame, users[:3]), (bad, users[3:]))):
        pq.write_table(
            pa.Table.from_pandas(rows[rows["consumer_id"].isin(chosen)], preserve_index=False),
            tmp_path / "bad" / "transactions" / f"part-{i}.parquet",
        )
    with pytest.raises(
        DataError, match=r"part-1.parquet: column 'amount': type large_string; expected double"
    ):
        TargetIterableDataset.from_ledger(tmp_path / "bad", TARGETS, features=FEATURES)


def test_iterable_dataset_with_more_workers_than_users(tmp_path):
    frame = _frame(users=1, seed=6)
    _write_parts(tmp_path / "ledger", frame, [sorted(frame["consumer_id"].unique())])
    dataset = TargetIterableDataset.from_ledger(tmp_path / "ledger", TARGETS, features=FEATURES)
    got = _items(DataLoader(dataset, batch_size=None, num_workers=2))
    assert len(got) == 1
    np.testing.assert_array_equal(got[0][1], next(iter(_expected_by_user(frame).values()))[1])


@pytest.mark.filterwarnings("ignore:category 'travel' named by a target does not occur")
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**16),
    users=st.integers(1, 9),
    cuts=st.lists(st.integers(0, 9), max_size=4),
    workers=st.integers(1, 4),
    chunk_users=st.integers(1, 5),
)
def test_streamed_items_are_the_in_memory_items_whatever_the_files(
    tmp_path_factory, seed, users, cuts, workers, chunk_users
):
    # Users split into files at random cut points (empty files included), a string feature
    # whose values first appear in different files, any share of users per worker: the
    # streamed dataset yields the in-memory dataset's items, each once.
    from cardworld.simulator.targets.dataset import _UserTargets

    frame = _frame(users=users, seed=seed)
    ids = sorted(frame["consumer_id"].unique())
    bounds = [0, *sorted(min(cut, users) for cut in cuts), users]
    root = tmp_path_factory.mktemp("ledger")
    _write_parts(root, frame, [ids[lo:hi] for lo, hi in itertools.pairwise(bounds)])
    features = ("amount", "category", "hour")
    streamed = TargetIterableDataset.from_ledger(
        root, TARGETS, features=features, chunk_users=chunk_users
    )
    whole = TargetIterableDataset(
        _UserTargets.build(pq.read_table(root / "transactions"), TARGETS, features, Columns())
    )
    expected = _items(whole)
    got = [item for worker in range(workers) for item in _worker_items(streamed, worker, workers)]
    assert sorted(f.tobytes() + t.tobytes() for f, t in got) == sorted(
        f.tobytes() + t.tobytes() for f, t in expected
    )
    if workers == 1:
        assert [f.tobytes() for f, _ in got] == [f.tobytes() for f, _ in expected]  # in order


def _worker_items(dataset, worker: int, workers: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """What DataLoader worker `worker` of `workers` gets from iterating `dataset`."""
    from cardworld.simulator.targets import dataset as module

    real = module.get_worker_info
    module.get_worker_info = lambda: types.SimpleNamespace(id=worker, num_workers=workers)
    try:
        return _items(dataset)
    finally:
        module.get_worker_info = real
