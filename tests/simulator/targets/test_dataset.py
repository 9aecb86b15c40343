"""The PyTorch datasets: per-user (features, targets), picklable, multi-worker DataLoader."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

torch = pytest.importorskip("torch")

from torch.utils.data import DataLoader  # noqa: E402

from cardworld.errors import DataError  # noqa: E402
from cardworld.targets import (  # noqa: E402
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
