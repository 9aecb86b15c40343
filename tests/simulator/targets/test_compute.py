"""Targets on ledgers, Arrow/pandas tables and user arrays; the CLI; input errors."""

from __future__ import annotations

import itertools
import os
import re
import shutil

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
import typer
from typer.testing import CliRunner

from cardworld.commands.targets import targets as targets_command
from cardworld.errors import ConfigError, DataError, LedgerError
from cardworld.simulator.targets import compute
from cardworld.targets import (
    Target,
    TargetSet,
    compute_ledger,
    compute_table,
    compute_user,
    write_targets,
)

TARGETS = TargetSet(
    (
        Target("grocery_day", "sum", "day", mcc=5411),
        Target("dining_rest_of_week", "count", "week", direction="future", category="dining"),
        Target("max_7d", "max", "7d"),
    ),
    dtype="float64",
)


def _ledger_table(rng: np.random.Generator, users: int = 5, per_user: int = 30) -> pa.Table:
    n = users * per_user
    stamps = np.datetime64("2024-01-01", "us") + np.sort(
        rng.integers(0, 60 * 86_400_000_000, n)
    ).astype("timedelta64[us]")
    consumer = rng.integers(100, 100 + users, n)
    order = np.lexsort((stamps, consumer))
    return pa.table(
        {
            "txn_id": pa.array(np.arange(n, dtype=np.int64) * 7 + 3),
            "timestamp": pa.array(stamps[order], pa.timestamp("us")),
            "consumer_id": pa.array(consumer[order], pa.int64()),
            "card_id": pa.array(consumer[order] * 10, pa.int64()),
            "mcc": pa.array(rng.choice([5411, 5812, 4111], n), pa.int16()),
            "category": pa.array(
                rng.choice(["grocery", "dining", "transit"], n)
            ).dictionary_encode(),
            "amount": pa.array(np.round(rng.uniform(-10, 200, n), 2)),
        }
    )


def _write_ledger(path, table: pa.Table, files: int = 3) -> None:
    (path / "transactions").mkdir(parents=True)
    cuts = np.linspace(0, table.num_rows, files + 1).astype(int)
    for part in range(files):
        pq.write_table(
            table.slice(cuts[part], cuts[part + 1] - cuts[part]),
            path / "transactions" / f"part-{part}.parquet",
        )


def test_ledger_targets_align_with_txn_id(tmp_path):
    table = _ledger_table(np.random.default_rng(1))
    _write_ledger(tmp_path / "ledger", table)
    result = compute_ledger(tmp_path / "ledger", TARGETS)
    assert result.column_names == ["txn_id", *TARGETS.names]
    expected = pd.DataFrame(compute_table(table.to_pandas(), TARGETS), columns=TARGETS.names)
    expected.insert(0, "txn_id", table.column("txn_id").to_numpy())
    got = result.to_pandas().sort_values("txn_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(got, expected.sort_values("txn_id").reset_index(drop=True))


def _write_whole_users(path, table: pa.Table) -> None:
    """A ledger of three part files, two users in each (as a cardworld ledger: whole users)."""
    users = pc.cast(table.column("consumer_id"), pa.int64()).to_numpy()
    cuts = [0, *np.flatnonzero(np.diff(users))[1::2] + 1, table.num_rows]
    (path / "transactions").mkdir(parents=True)
    for part, (lo, hi) in enumerate(itertools.pairwise(cuts)):
        pq.write_table(table.slice(lo, hi - lo), path / "transactions" / f"part-{part}.parquet")


def test_a_ledger_of_whole_users_per_file_is_taken_a_file_at_a_time(tmp_path, monkeypatch):
    table = _ledger_table(np.random.default_rng(11), users=6)
    _write_whole_users(tmp_path / "ledger", table)
    expected = compute_table(table, TARGETS)

    def whole_ledger(*args):
        raise AssertionError("read the whole ledger at once")

    monkeypatch.setattr(compute, "read_ledger", whole_ledger)
    result = compute_ledger(tmp_path / "ledger", TARGETS)
    assert result.column("txn_id").equals(table.column("txn_id"))
    np.testing.assert_array_equal(result.to_pandas()[TARGETS.names].to_numpy(), expected)
    out = tmp_path / "targets.parquet"
    assert write_targets(tmp_path / "ledger", TARGETS, out) == table.num_rows
    assert pq.ParquetFile(out).metadata.num_row_groups == 3  # one a part file
    assert pq.read_table(out).equals(result.combine_chunks())


def test_dictionary_user_ids_are_taken_a_file_at_a_time(tmp_path, monkeypatch):
    table = _ledger_table(np.random.default_rng(13), users=6)
    users = table.column("consumer_id")
    table = table.set_column(2, "consumer_id", pc.cast(users, pa.string()).dictionary_encode())
    _write_whole_users(tmp_path / "ledger", table)
    monkeypatch.setattr(compute, "read_ledger", None)  # not the whole ledger at once
    result = compute_ledger(tmp_path / "ledger", TARGETS)
    np.testing.assert_array_equal(
        result.to_pandas()[TARGETS.names].to_numpy(), compute_table(table, TARGETS)
    )


def test_a_category_missing_from_some_files_only_is_not_warned_about(tmp_path, recwarn):
    table = _ledger_table(np.random.default_rng(14), users=6)
    category = np.array(table.column("category").to_pylist(), dtype=object)
    users = table.column("consumer_id").to_numpy()
    category[(users == users.min()) | (category == "dining")] = "transit"
    category[np.flatnonzero(users == users.min())[:3]] = "dining"  # in the first file only
    table = table.set_column(5, "category", pa.array(category).dictionary_encode())
    _write_whole_users(tmp_path / "ledger", table)
    targets = TargetSet(
        (
            Target("dining", "sum", "day", category="dining"),
            Target("typo", "sum", "day", category="dinning"),
        )
    )
    compute_ledger(tmp_path / "ledger", targets)
    warned = [str(w.message) for w in recwarn if "does not occur" in str(w.message)]
    assert len(warned) == 1 and warned[0].startswith("category 'dinning'")


MCC_TARGETS = TargetSet(
    (
        Target("grocery", "sum", "day", mcc=5411),
        Target("airline", "sum", "day", mcc=4511),  # occurs nowhere: warned about
        Target("airline_count", "count", "week", mcc=4511),  # the same filter: no second warning
        Target("travel", "max", "7d", mcc=(4511, 7011)),  # none occurs: warned about
        Target("fuel_or_dining", "max", "7d", mcc=(5541, 5812)),  # 5812 occurs
    )
)


def test_an_mcc_that_occurs_nowhere_is_warned_about_once_per_filter(recwarn):
    table = _ledger_table(np.random.default_rng(15))
    got = compute_table(table, MCC_TARGETS)
    warned = [str(w.message) for w in recwarn if "MCC" in str(w.message)]
    assert warned == [
        "MCC 4511 named by target 'airline' does not occur in the data; it matches nothing "
        "(its target is all zeros or fills)",
        "none of the MCCs [4511, 7011] named by target 'travel' occurs in the data; it matches "
        "nothing (its target is all zeros or fills)",
    ]
    assert not got[:, 1:3].any()


def test_an_mcc_in_some_files_only_is_not_warned_about(tmp_path, monkeypatch, recwarn):
    table = _ledger_table(np.random.default_rng(16), users=6)
    mcc = table.column("mcc").to_numpy().copy()
    users = table.column("consumer_id").to_numpy()
    mcc[mcc == 5411] = 4111
    mcc[np.flatnonzero(users == users.max())[:2]] = 5411  # in the last file only
    table = table.set_column(4, "mcc", pa.array(mcc, pa.int16()))
    _write_whole_users(tmp_path / "ledger", table)
    monkeypatch.setattr(compute, "read_ledger", None)  # a file at a time
    compute_ledger(tmp_path / "ledger", MCC_TARGETS)
    warned = [str(w.message) for w in recwarn if "MCC" in str(w.message)]
    assert [message.split(" named")[0] for message in warned] == [
        "MCC 4511",
        "none of the MCCs [4511, 7011]",
    ]


def test_a_ledger_whose_users_run_across_files_is_taken_at_once(tmp_path, monkeypatch):
    table = _ledger_table(np.random.default_rng(12))
    _write_ledger(tmp_path / "ledger", table)  # cut by rows, not by users
    calls = []
    read = compute.read_ledger
    monkeypatch.setattr(compute, "read_ledger", lambda *args: calls.append(args) or read(*args))
    result = compute_ledger(tmp_path / "ledger", TARGETS)
    assert len(calls) == 1
    np.testing.assert_array_equal(
        result.to_pandas()[TARGETS.names].to_numpy(), compute_table(table, TARGETS)
    )


def test_cli_writes_parquet_with_txn_id_and_one_column_per_target(tmp_path):
    table = _ledger_table(np.random.default_rng(2))
    _write_ledger(tmp_path / "ledger", table)
    config = tmp_path / "targets.toml"
    config.write_text('[[target]]\nname = "spend_day"\naggregate = "sum"\nwindow = "day"\n')
    app = typer.Typer()
    app.command()(targets_command)
    out = tmp_path / "out" / "targets.parquet"
    result = CliRunner().invoke(
        app, [str(tmp_path / "ledger"), "--config", str(config), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    written = pq.read_table(out)
    assert written.schema.names == ["txn_id", "spend_day"]
    assert written.schema.field("spend_day").type == pa.float32()
    frame = table.to_pandas()
    want = (
        frame.groupby(["consumer_id", frame["timestamp"].dt.date])["amount"]
        .cumsum()
        .to_numpy(np.float32)
    )
    np.testing.assert_allclose(written.column("spend_day").to_numpy(), want, rtol=1e-6)
    assert sorted(p.name for p in out.parent.iterdir()) == ["targets.parquet"]  # no temp file left


def test_cli_warns_once_of_a_category_that_occurs_nowhere_naming_the_config(tmp_path):
    _write_ledger(tmp_path / "ledger", _ledger_table(np.random.default_rng(20)))  # 3 files
    config = tmp_path / "typo.toml"
    config.write_text(
        '[[target]]\nname = "g"\naggregate = "sum"\nwindow = "day"\ncategory = "dinning"\n'
    )
    app = typer.Typer()
    app.command()(targets_command)
    out = tmp_path / "t.parquet"
    result = CliRunner().invoke(
        app, [str(tmp_path / "ledger"), "--config", str(config), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    warned = [line for line in result.output.splitlines() if line.startswith("warning:")]
    assert warned == [
        f"warning: {config}: category 'dinning' named by a target does not occur in the data "
        "(did you mean 'dining'?); it matches nothing (categories found: dining, grocery, transit)"
    ]
    assert pq.read_table(out).column("g").to_pylist() == [0.0] * 150


def test_cli_bad_config_is_a_config_error(tmp_path):
    _write_ledger(tmp_path / "ledger", _ledger_table(np.random.default_rng(3)))
    config = tmp_path / "bad.toml"
    config.write_text('[[target]]\nname = "x"\naggregate = "avg"\nwindow = "day"\n')
    app = typer.Typer()
    app.command()(targets_command)
    result = CliRunner().invoke(
        app,
        [str(tmp_path / "ledger"), "--config", str(config), "--out", str(tmp_path / "o.parquet")],
    )
    assert result.exit_code != 0
    assert "aggregate = 'avg'" in str(result.exception)
    assert not (tmp_path / "o.parquet").exists()


def test_missing_ledger_and_missing_column(tmp_path):
    with pytest.raises(LedgerError, match="not a cardworld ledger"):
        compute_ledger(tmp_path, TARGETS)
    table = _ledger_table(np.random.default_rng(4)).drop_columns(["mcc"])
    _write_ledger(tmp_path / "ledger", table)
    with pytest.raises(DataError, match="column 'mcc': not found"):
        write_targets(tmp_path / "ledger", TARGETS, tmp_path / "o.parquet")


@pytest.mark.parametrize(
    ("column", "values", "message"),
    [
        ("amount", pa.array(["a"] * 150), "column 'amount': type string; expected numeric amounts"),
        (
            "timestamp",
            pa.array(["x"] * 150),
            "column 'timestamp': type string; expected a tz-naive",
        ),
    ],
)
def test_a_ledger_column_of_the_wrong_type_names_the_file(tmp_path, column, values, message):
    table = _ledger_table(np.random.default_rng(7))
    table = table.set_column(table.schema.get_field_index(column), column, values)
    _write_ledger(tmp_path / "ledger", table)
    with pytest.raises(DataError) as error:
        compute_ledger(tmp_path / "ledger", TARGETS)
    # Part files are read one at a time, so the error names the first.
    first = tmp_path / "ledger" / "transactions" / "part-0.parquet"
    assert str(error.value).startswith(f"{first}: {message}")


def test_a_part_file_with_another_column_type_is_named(tmp_path):
    table = _ledger_table(np.random.default_rng(8))
    _write_ledger(tmp_path / "ledger", table)
    part = tmp_path / "ledger" / "transactions" / "part-2.parquet"
    last = pq.read_table(part)
    index = last.schema.get_field_index("timestamp")
    pq.write_table(last.set_column(index, "timestamp", pa.array(["x"] * last.num_rows)), part)
    with pytest.raises(
        DataError,
        match=r"part-2.parquet: column 'timestamp': type string; expected timestamp\[us\]",
    ):
        compute_ledger(tmp_path / "ledger", TARGETS)


def test_repeated_txn_ids_are_refused(tmp_path):
    table = _ledger_table(np.random.default_rng(9))
    ids = table.column("txn_id").to_numpy().copy()
    ids[5] = ids[4]
    _write_ledger(tmp_path / "ledger", table.set_column(0, "txn_id", pa.array(ids)))
    with pytest.raises(
        DataError, match=f"column 'txn_id': 1 value\\(s\\) occur more than once, e.g. {ids[4]};"
    ):
        write_targets(tmp_path / "ledger", TARGETS, tmp_path / "o.parquet")
    assert not (tmp_path / "o.parquet").exists()


def _rewrite_part(part, column: str, convert) -> None:
    """Replace one column of a part file by `convert` of it."""
    table = pq.read_table(part)
    index = table.schema.get_field_index(column)
    pq.write_table(table.set_column(index, column, convert(table.column(column))), part)


def _take(path: str, monkeypatch) -> None:
    """Make compute_ledger and write_targets take a ledger a part file at a time, or all at
    once (as they do when its files cannot be taken alone)."""
    if path == "at once":

        def overlapping(*args):
            raise compute.PartsOverlap
            yield

        monkeypatch.setattr(compute, "_targets_by_part", overlapping)
    else:
        monkeypatch.setattr(compute, "read_ledger", None)


@pytest.mark.parametrize("path", ["by part", "at once"])
@pytest.mark.parametrize("compute_it", ["compute_ledger", "write_targets"])
def test_a_null_txn_id_is_refused_naming_its_part_file(tmp_path, monkeypatch, path, compute_it):
    table = _ledger_table(np.random.default_rng(15), users=6)
    ids = table.column("txn_id").to_pylist()
    ids[-3] = None  # one null, in the last part file
    _write_whole_users(tmp_path / "ledger", table.set_column(0, "txn_id", pa.array(ids)))
    parts = tmp_path / "ledger" / "transactions"
    _take(path, monkeypatch)
    out = tmp_path / "o.parquet"
    run = {
        "compute_ledger": lambda: compute_ledger(tmp_path / "ledger", TARGETS),
        "write_targets": lambda: write_targets(tmp_path / "ledger", TARGETS, out),
    }[compute_it]
    with pytest.raises(DataError) as error:
        run()
    assert str(error.value).startswith(
        f"{parts / 'part-2.parquet'}: column 'txn_id': 1 null value(s); expected an id on every row"
    )
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["ledger"]


@pytest.mark.parametrize("path", ["by part", "at once"])
def test_a_part_file_whose_column_is_all_nulls_is_read(tmp_path, monkeypatch, path):
    # pandas writes an all-None column as Arrow's null type; pyarrow reads it as nulls.
    _write_whole_users(tmp_path / "ledger", _ledger_table(np.random.default_rng(16), users=6))
    parts = tmp_path / "ledger" / "transactions"
    _rewrite_part(parts / "part-2.parquet", "category", lambda column: pa.nulls(len(column)))
    expected = compute_table(ds.dataset(parts).to_table(), TARGETS)  # nulls match nothing
    _take(path, monkeypatch)
    got = compute_ledger(tmp_path / "ledger", TARGETS)
    np.testing.assert_array_equal(np.column_stack(got.columns[1:]), expected)


def test_a_part_file_whose_user_ids_are_all_null_is_refused_naming_the_column(tmp_path):
    table = _ledger_table(np.random.default_rng(17), users=6)
    _write_whole_users(tmp_path / "ledger", table)
    part = tmp_path / "ledger" / "transactions" / "part-1.parquet"
    _rewrite_part(part, "consumer_id", lambda column: pa.nulls(len(column), pa.int64()))
    with pytest.raises(DataError, match="consumer_id"):
        compute_ledger(tmp_path / "ledger", TARGETS)


TEXT = {  # each column's values as text, as a CSV file would give them
    "amount": lambda column: pc.cast(column, pa.string()),
    "timestamp": lambda column: pc.strftime(column, "%Y-%m-%d %H:%M:%S"),
    "consumer_id": lambda column: pc.cast(column, pa.string()),
    "mcc": lambda column: pc.cast(column, pa.string()),
}


@pytest.mark.parametrize("path", ["by part", "at once"])
@pytest.mark.parametrize("column", list(TEXT))
def test_text_in_a_later_part_file_is_not_parsed(tmp_path, monkeypatch, path, column):
    table = _ledger_table(np.random.default_rng(16), users=6)
    _write_whole_users(tmp_path / "ledger", table)
    parts = tmp_path / "ledger" / "transactions"
    _take(path, monkeypatch)
    _rewrite_part(parts / "part-2.parquet", column, TEXT[column])
    expected = table.schema.field(column).type
    with pytest.raises(DataError) as error:
        compute_ledger(tmp_path / "ledger", TARGETS)
    assert str(error.value) == (
        f"{parts / 'part-2.parquet'}: column {column!r}: type string; expected {expected}, as in "
        "the first part file"
    )


@pytest.mark.parametrize("path", ["by part", "at once"])
@pytest.mark.parametrize(
    ("column", "message"),
    [
        ("amount", "type string; expected numeric amounts"),
        ("timestamp", "type string; expected a tz-naive timestamp (local time)"),
        ("mcc", "type string; expected integer MCCs (ISO 18245)"),
    ],
)
def test_text_in_every_part_file_names_the_first(tmp_path, monkeypatch, path, column, message):
    table = _ledger_table(np.random.default_rng(17), users=6)
    table = table.set_column(
        table.schema.get_field_index(column), column, TEXT[column](table.column(column))
    )
    _write_whole_users(tmp_path / "ledger", table)
    parts = tmp_path / "ledger" / "transactions"
    _take(path, monkeypatch)
    with pytest.raises(DataError) as error:
        compute_ledger(tmp_path / "ledger", TARGETS)
    assert str(error.value) == f"{parts / 'part-0.parquet'}: column {column!r}: {message}"


def test_tz_aware_timestamps_in_a_later_part_file_are_named(tmp_path):
    _write_whole_users(tmp_path / "ledger", _ledger_table(np.random.default_rng(20), users=6))
    part = tmp_path / "ledger" / "transactions" / "part-2.parquet"
    _rewrite_part(part, "timestamp", lambda c: pc.cast(c, pa.timestamp("us", tz="UTC")))
    with pytest.raises(DataError) as error:
        compute_ledger(tmp_path / "ledger", TARGETS)
    assert str(error.value) == (
        f"{part}: column 'timestamp': type timestamp[us, tz=UTC]; expected timestamp[us], as in "
        "the first part file"
    )


def test_a_column_missing_from_a_later_part_file_is_named(tmp_path):
    table = _ledger_table(np.random.default_rng(18), users=6)
    _write_whole_users(tmp_path / "ledger", table)
    part = tmp_path / "ledger" / "transactions" / "part-1.parquet"
    pq.write_table(pq.read_table(part).drop_columns(["mcc"]), part)  # would read as nulls
    with pytest.raises(
        DataError, match="part-1.parquet: column 'mcc': not found; expected it, as in the first"
    ):
        compute_ledger(tmp_path / "ledger", TARGETS)


def test_part_files_may_store_a_column_in_another_type_of_its_kind(tmp_path):
    table = _ledger_table(np.random.default_rng(19), users=6)
    table = table.set_column(6, "amount", pc.round(table.column("amount")))  # whole amounts
    _write_whole_users(tmp_path / "ledger", table)
    parts = tmp_path / "ledger" / "transactions"
    _rewrite_part(parts / "part-1.parquet", "amount", lambda c: pc.cast(c, pa.int32()))
    _rewrite_part(parts / "part-1.parquet", "category", lambda c: pc.cast(c, pa.string()))
    _rewrite_part(parts / "part-2.parquet", "timestamp", lambda c: pc.cast(c, pa.timestamp("ns")))
    _rewrite_part(parts / "part-2.parquet", "mcc", lambda c: pc.cast(c, pa.int64()))
    result = compute_ledger(tmp_path / "ledger", TARGETS)
    np.testing.assert_array_equal(
        result.to_pandas()[TARGETS.names].to_numpy(), compute_table(table, TARGETS)
    )


def test_configurable_columns_pandas_ns_and_arrow_us_agree():
    table = _ledger_table(np.random.default_rng(5))
    frame = table.to_pandas().rename(
        columns={
            "consumer_id": "acct",
            "timestamp": "when",
            "amount": "amt",
            "mcc": "code",
            "category": "kind",
        }
    )
    frame["when"] = frame["when"].astype("datetime64[ns]")
    renamed = compute_table(
        frame, TARGETS, user="acct", timestamp="when", amount="amt", mcc="code", category="kind"
    )
    np.testing.assert_array_equal(renamed, compute_table(table, TARGETS))


def test_string_user_ids_and_shuffled_rows():
    frame = _ledger_table(np.random.default_rng(6)).to_pandas()
    frame["consumer_id"] = "user-" + frame["consumer_id"].astype(str)
    shuffled = frame.sample(frac=1.0, random_state=0)
    np.testing.assert_array_equal(
        compute_table(shuffled, TARGETS), compute_table(frame, TARGETS)[shuffled.index.to_numpy()]
    )


def test_compute_user_matches_the_table_path():
    frame = _ledger_table(np.random.default_rng(7)).to_pandas()
    one = frame[frame["consumer_id"] == frame["consumer_id"].iloc[0]]
    got = compute_user(
        one["timestamp"].to_numpy(),
        one["amount"].to_numpy(),
        TARGETS,
        mcc=one["mcc"].to_numpy(),
        category=one["category"].astype(str).to_numpy(),
    )
    np.testing.assert_array_equal(got, compute_table(frame, TARGETS)[: len(one)])
    with pytest.raises(DataError, match="mcc = None"):
        compute_user(one["timestamp"].to_numpy(), one["amount"].to_numpy(), TARGETS)


def test_local_time_buckets_and_tz_aware_columns_rejected():
    # 23:30 local on Jan 1 is Jan 2 in UTC for a UTC-5 zone: targets use the local day.
    frame = pd.DataFrame(
        {
            "consumer_id": [1, 1],
            "timestamp": pd.to_datetime(["2024-01-01 23:30", "2024-01-02 00:30"]),
            "amount": [1.0, 2.0],
        }
    )
    day = TargetSet((Target("d", "sum", "day"),))
    np.testing.assert_array_equal(compute_table(frame, day)[:, 0], [1.0, 2.0])
    aware = frame.assign(timestamp=frame["timestamp"].dt.tz_localize("America/New_York"))
    with pytest.raises(
        DataError,
        match=r"column 'timestamp': timezone-aware timestamps \(America/New_York\); expected tz-naive",
    ):
        compute_table(aware, day)
    arrow = pa.table(
        {
            "consumer_id": [1],
            "timestamp": pa.array([0], pa.timestamp("us", tz="UTC")),
            "amount": [1.0],
        }
    )
    with pytest.raises(DataError, match=r"timezone-aware timestamps \(UTC\)"):
        compute_table(arrow, day)
    local = aware.assign(timestamp=aware["timestamp"].dt.tz_localize(None))
    np.testing.assert_array_equal(compute_table(local, day)[:, 0], [1.0, 2.0])


@pytest.mark.parametrize(
    ("column", "values", "message"),
    [
        ("amount", [1.0, None], r"column 'amount': 1 null values; expected amounts without nulls"),
        ("amount", [1.0, float("inf")], r"column 'amount': non-finite amounts \(NaN or inf\)"),
        ("amount", ["a", "b"], r"column 'amount': type (large_)?string; expected numeric amounts"),
        (
            "timestamp",
            ["2024-01-01", "2024-01-02"],
            r"column 'timestamp': type (large_)?string; expected a tz-naive timestamp",
        ),
        (
            "consumer_id",
            [1.5, 2.5],
            r"column 'consumer_id': type double; expected integer or string user ids",
        ),
        ("mcc", ["5411", "5411"], r"column 'mcc': type (large_)?string; expected integer MCCs"),
        (  # numbers and text in one column, as a CSV file read with a few bad rows gives
            "amount",
            [1.0, "2.50"],
            r"column 'amount': Could not convert '2.50' with type str: tried to convert to "
            r"double; expected values of one type",
        ),
        (
            "consumer_id",
            [1, "1"],
            r"column 'consumer_id': Could not convert '1' .*; expected values of one type",
        ),
    ],
)
def test_bad_columns_name_column_value_and_expectation(column, values, message):
    frame = pd.DataFrame(
        {
            "consumer_id": [1, 1],
            "timestamp": pd.to_datetime(["2024-01-01", "2024-01-02"]),
            "amount": [1.0, 2.0],
            "mcc": [5411, 5411],
        }
    )
    frame[column] = values
    with pytest.raises(DataError) as error:
        compute_table(frame, TargetSet((Target("g", "sum", "day", mcc=5411),)))
    assert re.search(message, str(error.value)), str(error.value)


def test_null_mcc_and_category_match_nothing_and_unknown_category_warns():
    frame = pd.DataFrame(
        {
            "consumer_id": [1, 1, 1],
            "timestamp": pd.to_datetime(["2024-01-01", "2024-01-01", "2024-01-01"]),
            "amount": [1.0, 2.0, 4.0],
            "mcc": pd.array([5411, None, 5411], dtype="Int16"),
            "category": ["g", None, "g"],
        }
    )
    targets = TargetSet(
        (Target("m", "sum", "day", mcc=5411), Target("c", "count", "day", category="g")),
        dtype="float64",
    )
    np.testing.assert_array_equal(
        compute_table(frame, targets), [[1.0, 1.0], [1.0, 1.0], [5.0, 2.0]]
    )
    with pytest.warns(UserWarning, match="category 'groceries' named by a target does not occur"):
        got = compute_table(frame, TargetSet((Target("c", "count", "day", category="groceries"),)))
    np.testing.assert_array_equal(got[:, 0], [0.0, 0.0, 0.0])


def test_empty_table_gives_empty_result():
    frame = pd.DataFrame(
        {
            "consumer_id": pd.Series([], dtype=np.int64),
            "timestamp": pd.to_datetime([]),
            "amount": [],
        }
    )
    assert compute_table(frame, TARGETS.targets[2]).shape == (0, 1)


def test_dictionary_categories_with_different_chunk_dictionaries_and_nulls():
    first = pa.DictionaryArray.from_arrays(pa.array([0, 1, None], pa.int32()), pa.array(["a", "b"]))
    second = pa.DictionaryArray.from_arrays(pa.array([1, 0], pa.int32()), pa.array(["c", "a"]))
    table = pa.table(
        {
            "consumer_id": pa.array([1, 1, 1, 1, 1], pa.int64()),
            "timestamp": pa.array(np.arange(5) * 1_000_000, pa.timestamp("us")),
            "amount": pa.array([1.0, 2.0, 4.0, 8.0, 16.0]),
            "category": pa.chunked_array([first, second]),
        }
    )
    targets = TargetSet(
        (Target("a", "sum", "day", category="a"), Target("bc", "sum", "day", category=("b", "c"))),
        dtype="float64",
    )
    as_strings = table.set_column(3, "category", table.column("category").cast(pa.string()))
    got = compute_table(table, targets)
    np.testing.assert_array_equal(got, compute_table(as_strings, targets))
    np.testing.assert_array_equal(got[:, 0], [1.0, 1.0, 1.0, 9.0, 9.0])  # a, b, null, a, c
    np.testing.assert_array_equal(got[:, 1], [0.0, 2.0, 2.0, 2.0, 18.0])


def test_mccs_outside_the_code_range_match_nothing():
    frame = pd.DataFrame(
        {
            "consumer_id": [1, 1, 1, 1, 1],
            "timestamp": pd.to_datetime(["2024-01-01"] * 5),
            "amount": [1.0, 2.0, 4.0, 8.0, 16.0],
            # 2**32 + 5411 and -2**32 + 5411 are 5411 once narrowed to 32 bits: still no match.
            "mcc": np.array([-5411, 2**32 + 5411, 9999, 5411, -(2**32) + 5411], dtype=np.int64),
        }
    )
    targets = TargetSet(
        (Target("m", "sum", "day", mcc=5411), Target("top", "count", "day", mcc=9999)),
        dtype="float64",
    )
    np.testing.assert_array_equal(
        compute_table(frame, targets),
        [[0.0, 0.0], [0.0, 0.0], [0.0, 1.0], [8.0, 1.0], [8.0, 1.0]],
    )
    huge = frame.head(2).assign(mcc=np.array([2**64 - 1, 5411], dtype=np.uint64))
    with pytest.warns(UserWarning, match="MCC 9999 named by target 'top' does not occur"):
        np.testing.assert_array_equal(compute_table(huge, targets)[:, 0], [0.0, 2.0])


def _three_rows(**columns) -> pa.Table:
    return pa.table(
        {
            "consumer_id": pa.array([1, 1, 1], pa.int64()),
            "timestamp": pa.array(np.array([0, 3600, 90_000]) * 1_000_000, pa.timestamp("us")),
            "amount": pa.array([1.0, 2.0, 4.0]),
            **columns,
        }
    )


def test_odd_category_columns_are_read_as_their_values():
    day = TargetSet((Target("v5", "count", "day", category="v5"),), dtype="float64")
    # All nulls, as pandas writes an all-None column: no row matches.
    with pytest.warns(UserWarning, match="category 'v5' named by a target does not occur"):
        got = compute_table(_three_rows(category=pa.nulls(3)), day)
    np.testing.assert_array_equal(got[:, 0], [0.0, 0.0, 0.0])
    # int8 indices into a dictionary of 128 values (the null code no longer fits an int8).
    names = pa.array([f"v{i}" for i in range(128)])
    narrow = pa.DictionaryArray.from_arrays(pa.array([5, None, 127], pa.int8()), names)
    np.testing.assert_array_equal(
        compute_table(_three_rows(category=narrow), day)[:, 0], [1.0, 1.0, 0.0]
    )
    # int8 chunks whose dictionaries together hold more values than an int8 can index.
    chunks = [
        pa.DictionaryArray.from_arrays(pa.array([0], pa.int8()), names[:100]),
        pa.DictionaryArray.from_arrays(pa.array([0, 5], pa.int8()), names[100:]),
    ]
    chunked = _three_rows(category=pa.chunked_array(chunks))
    np.testing.assert_array_equal(compute_table(chunked, day)[:, 0], [0.0, 0.0, 0.0])
    v105 = TargetSet((Target("v105", "count", "day", category="v105"),))
    np.testing.assert_array_equal(compute_table(chunked, v105)[:, 0], [0.0, 0.0, 1.0])
    # A null among the dictionary's values is a null category.
    holed = pa.DictionaryArray.from_arrays(pa.array([0, 1, 0], pa.int32()), pa.array(["a", None]))
    table = _three_rows(category=holed)
    with pytest.warns(UserWarning, match="category 'zz' named by a target does not occur"):
        compute_table(table, TargetSet((Target("zz", "count", "day", category="zz"),)))
    a = TargetSet((Target("a", "count", "day", category="a"),))
    np.testing.assert_array_equal(compute_table(table, a)[:, 0], [1.0, 1.0, 1.0])


def test_an_all_null_column_in_the_first_part_file_takes_a_later_files_type(tmp_path):
    table = _ledger_table(np.random.default_rng(18), users=6)
    _write_whole_users(tmp_path / "ledger", table)
    part = tmp_path / "ledger" / "transactions" / "part-0.parquet"
    _rewrite_part(part, "category", lambda column: pa.nulls(len(column)))
    first = pq.read_metadata(part).num_rows
    category = table.column("category").to_pylist()
    nulled = table.set_column(
        table.schema.get_field_index("category"),
        "category",
        pa.array([None] * first + category[first:], pa.string()),
    )
    got = compute_ledger(tmp_path / "ledger", TARGETS)
    np.testing.assert_array_equal(np.column_stack(got.columns[1:]), compute_table(nulled, TARGETS))


@pytest.mark.parametrize(
    ("unit", "stamps", "message"),
    [
        ("s", [0, 10**13], "a time after year 9999"),
        ("ms", [-(10**15), 0], "a time before year 1"),
        ("us", [0, 2**62], "a time after year 9999"),
    ],
)
def test_times_outside_years_1_to_9999_are_refused(unit, stamps, message):
    # 10**13 seconds are 10**19 microseconds, past int64: they must not wrap into range.
    table = pa.table(
        {
            "consumer_id": [1, 1],
            "timestamp": pa.array(stamps, pa.timestamp(unit)),
            "amount": [1.0, 1.0],
        }
    )
    with pytest.raises(
        DataError, match=f"column 'timestamp': {message}; expected times in years 1"
    ):
        compute_table(table, Target("n", "count", "day"))
    first_and_last = pa.array([-62_135_596_800, 253_402_300_799], pa.timestamp("s"))
    edges = table.set_column(1, "timestamp", first_and_last)
    np.testing.assert_array_equal(compute_table(edges, Target("n", "count", "day"))[:, 0], [1, 1])


def test_compute_user_takes_series_by_position_not_by_label():
    stamps = pd.Series(pd.to_datetime(["2021-01-01 10:00", "2021-01-01 09:00"]), index=[8, 7])
    amounts = pd.Series([1.0, 2.0], index=[7, 8])  # labels the other way round
    got = compute_user(stamps, amounts, TargetSet((Target("s", "sum", "day"),), dtype="float64"))
    np.testing.assert_array_equal(got[:, 0], [3.0, 2.0])  # 10:00 (1.0) after 09:00 (2.0)


def test_repeated_column_names_and_an_id_named_target_are_refused(tmp_path):
    names = ["consumer_id", "timestamp", "amount", "amount"]
    frame = pd.DataFrame([[1, pd.Timestamp("2021-01-01"), 1.0, 2.0]], columns=names)
    table = pa.Table.from_arrays([pa.array(frame.iloc[:, i]) for i in range(4)], names=names)
    for repeated in (frame, table):
        with pytest.raises(DataError, match="column 'amount': found 2 times; expected one"):
            compute_table(repeated, Target("s", "sum", "day"))
    _write_ledger(tmp_path / "ledger", _ledger_table(np.random.default_rng(19)))
    with pytest.raises(ConfigError, match="target 'card_id': the name of the id column"):
        compute_ledger(tmp_path / "ledger", Target("card_id", "count", "day"), id_column="card_id")


def test_write_targets_keeps_what_is_there(tmp_path):
    _write_ledger(tmp_path / "ledger", _ledger_table(np.random.default_rng(6)))
    ledger_dir = tmp_path / "ledger"
    with pytest.raises(DataError, match="expected a .parquet file"):
        write_targets(ledger_dir, TARGETS, tmp_path / "o.csv")
    with pytest.raises(DataError, match="lies inside the ledger"):
        write_targets(ledger_dir, TARGETS, ledger_dir / "transactions" / "o.parquet")
    kept = tmp_path / "o.parquet"
    kept.write_text("mine")
    with pytest.raises(DataError, match="already exists; choose another --out or pass --overwrite"):
        write_targets(ledger_dir, TARGETS, kept)
    assert kept.read_text() == "mine"
    written = write_targets(ledger_dir, TARGETS, kept, overwrite=True)
    assert pq.read_table(kept).num_rows == written == 150
    umask = os.umask(0)
    os.umask(umask)
    assert kept.stat().st_mode & 0o777 == 0o666 & ~umask


# TARGETS names this file's own ledgers' categories; the tiny world's goods types lack 'dining'.
@pytest.mark.filterwarnings("ignore:category 'dining' named by a target does not occur")
def test_a_ledger_given_as_a_url_and_a_part_file_gone_from_it(tiny_ledger, tmp_path):
    url = tiny_ledger.resolve().as_uri()  # file:///...: what --out and the other commands take
    by_url = compute_ledger(url, TARGETS)
    assert by_url.equals(compute_ledger(tiny_ledger, TARGETS))
    damaged = tmp_path / "damaged"
    shutil.copytree(tiny_ledger, damaged)
    gone = sorted((damaged / "transactions").iterdir())[1]  # not the first: that is read first
    gone.unlink()
    with pytest.raises(LedgerError, match=f"{re.escape(str(gone))}: missing, though the manifest"):
        write_targets(damaged, TARGETS, tmp_path / "o.parquet")
    assert not (tmp_path / "o.parquet").exists()
