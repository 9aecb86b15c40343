"""Compute targets on a ledger, a pandas/Arrow table, or one user's arrays (public functions).

Each function checks its inputs, builds the flat arrays and the kernel plan, runs the
kernel over runs of users on threads (NUMBA_NUM_THREADS of them; the kernels release the
GIL) and returns rows in the input's order.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import numba
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cardworld.errors import ConfigError, DataError
from cardworld.simulator import ledger
from cardworld.simulator.targets import kernels as K
from cardworld.simulator.targets.arrays import (
    Columns,
    SchemaCheck,
    UserArrays,
    check_types,
    prepare,
    read_ledger,
    read_ledger_parts,
    to_arrow,
)
from cardworld.simulator.targets.plan import (
    Plan,
    make_plan,
    needed_columns,
    warn_missing_categories,
    warn_unmatched_mccs,
)
from cardworld.simulator.targets.spec import Target, TargetSet, as_target_set

TargetsLike = TargetSet | Target | Iterable[Target] | Mapping[str, Any] | str | Path


def run_plan(
    arrays: UserArrays, plan: Plan, *, parallel: bool = True, seen: np.ndarray | None = None
) -> np.ndarray:
    """Targets of every row of `arrays`, in sorted (user, timestamp) order: (N, n_targets).

    The result is column-major (Fortran order): each target's column is contiguous, which is
    how the kernels write it (one sweep per target) and how Parquet and pandas store it.
    With `parallel`, runs of users go to threads (the kernels release the GIL). With `seen`
    (`plan.no_filter_seen()`, or the words of earlier rows), the filters some row matched
    are or'ed into it (`warn_unmatched_mccs`).
    """
    # NOTE: a row-major result makes every target sweep write with a stride of n_targets
    # values, touching a new cache line per row; column-major writes stream.
    out = np.empty((arrays.n_rows, plan.params.shape[0]), dtype=plan.dtype, order="F")
    if arrays.n_rows == 0:
        return out
    args = (
        arrays.timestamps,
        arrays.amounts,
        arrays.mcc,
        arrays.category,
        *plan.kernel_args(),
        out,
        0,
    )
    threads = min(numba.config.NUMBA_NUM_THREADS, arrays.n_users) if parallel else 1
    # A few runs per thread, so users of uneven length still balance.
    runs = min(arrays.n_users, 4 * threads) if threads > 1 else 1
    cuts = [run * arrays.n_users // runs for run in range(runs + 1)]
    seen_by_run = np.zeros((runs, plan.mcc_bits.shape[0]), dtype=np.int64)

    def users(run: int) -> None:
        K._targets_range(arrays.offsets, cuts[run], cuts[run + 1], *args, seen_by_run[run])

    if threads == 1:
        users(0)
    else:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(users, range(runs)))
    if seen is not None:
        seen |= np.bitwise_or.reduce(seen_by_run, axis=0)
    return out


def compute_table(
    table: pd.DataFrame | pa.Table,
    targets: TargetsLike,
    *,
    user: str = "consumer_id",
    timestamp: str = "timestamp",
    amount: str = "amount",
    mcc: str = "mcc",
    category: str = "category",
    parallel: bool = True,
) -> np.ndarray:
    """Targets for every row of a DataFrame or Arrow table, aligned with its rows.

    Returns an (n_rows, n_targets) column-major array of the target set's dtype, columns in
    target order
    (`pd.DataFrame(result, columns=target_set.names, index=df.index)` for a frame). The
    table need not be sorted. The mcc/category columns are read only when a target filters on them.
    """
    target_set = as_target_set(targets)
    columns = Columns(user, timestamp, amount, mcc, category)
    table = to_arrow(table, input_columns(target_set, columns))
    arrays = prepare(table, columns, *needed_columns(target_set))
    plan = make_plan(target_set, arrays.categories, warn_missing=False)
    found = _Found()
    result = arrays.restore(found.run(arrays, plan, parallel))
    found.warn(target_set, stacklevel=4)
    return result


def compute_user(
    timestamps: Any,
    amounts: Any,
    targets: TargetsLike,
    *,
    mcc: Any = None,
    category: Any = None,
) -> np.ndarray:
    """Targets of one user's transactions given as arrays, in the order given: (n, n_targets).

    timestamps: datetime64 values (tz-naive local time): a NumPy array, a pandas Series or
    DatetimeIndex; strings and numbers are refused (convert them with pd.to_datetime).
    amounts: numbers. mcc: integer codes, needed when a target filters by MCC. category:
    strings, needed when a target filters by category. A pandas Series is taken by position
    (its index is ignored).
    """
    target_set = as_target_set(targets)
    need_mcc, need_category = needed_columns(target_set)
    frame: dict[str, Any] = {
        "user": np.zeros(len(amounts), np.int64),
        "timestamp": _positional(timestamps),
        "amount": _positional(amounts),
    }
    for name, values, needed in (("mcc", mcc, need_mcc), ("category", category, need_category)):
        if needed:
            if values is None:
                raise DataError(
                    f"{name} = None: expected {name} values, since a target filters by {name}"
                )
            frame[name] = _positional(values)
    try:
        table = pd.DataFrame(frame)
    except ValueError as error:
        raise DataError(f"user arrays of different lengths: {error}") from None
    return compute_table(
        table, target_set, user="user", timestamp="timestamp", amount="amount", parallel=False
    )


def _positional(values: Any) -> Any:
    """A pandas Series or Index as its values alone: a DataFrame built from Series lines
    them up by their index labels, and these arrays are taken in the order given."""
    return values.array if isinstance(values, pd.Series | pd.Index) else values


def compute_ledger(
    ledger_dir: str | Path,
    targets: TargetsLike,
    *,
    columns: Columns = Columns(),
    id_column: str = "txn_id",
    parallel: bool = True,
) -> pa.Table:
    """Targets of a ledger: an Arrow table with `id_column` then one column per target,
    rows in the ledger's row order (computed a part file at a time when each file holds
    whole users, as a cardworld ledger's do)."""
    target_set = as_target_set(targets)
    if id_column in target_set.names:
        raise ConfigError(f"target {id_column!r}: the name of the id column; expected another name")
    try:
        parts = list(_targets_by_part(ledger_dir, target_set, columns, id_column, parallel))
    except PartsOverlap:
        parts = []
    if not parts:
        return _targets_at_once(ledger_dir, target_set, columns, id_column, parallel)
    return pa.concat_tables(parts)


def write_targets(
    ledger_dir: str | Path,
    targets: TargetsLike,
    out: str | Path,
    *,
    columns: Columns = Columns(),
    overwrite: bool = False,
) -> int:
    """Compute a ledger's targets and write them as one Parquet file, atomically; returns
    the number of rows written.

    `out` must end in .parquet and lie outside the ledger; an existing file is replaced
    only with `overwrite`. Memory is bounded by one part file (with a row group each)
    when each part file holds whole users, as a cardworld ledger's do.
    """
    out = Path(out)
    if out.suffix != ".parquet":
        raise DataError(f"--out {out}: expected a .parquet file (targets are written as Parquet)")
    ledger.check_output_file(out, ledger_dir, overwrite=overwrite, error=DataError)
    target_set = as_target_set(targets)
    out.parent.mkdir(parents=True, exist_ok=True)
    fs, path = ledger.storage(out)
    rows = 0

    def write_parts(handle) -> None:
        nonlocal rows
        writer = None
        try:
            for table in _targets_by_part(ledger_dir, target_set, columns, "txn_id", True):
                writer = writer or pq.ParquetWriter(handle, table.schema)
                writer.write_table(table)
                rows += table.num_rows
        finally:
            if writer is not None:
                writer.close()
        if writer is None:
            raise PartsOverlap  # no rows: written at once, with the empty table's schema

    try:
        ledger.write_atomically(fs, path, write_parts)
    except PartsOverlap:
        result = _targets_at_once(ledger_dir, target_set, columns, "txn_id", True)
        ledger.write_atomically(fs, path, lambda handle: pq.write_table(result, handle))
        rows = result.num_rows
    return rows


class PartsOverlap(Exception):
    """A ledger whose part files cannot be taken one at a time: a user's rows run across
    files, or ids do not rise through the files (so uniqueness needs all of them)."""


def _targets_by_part(
    ledger_dir, target_set: TargetSet, columns: Columns, id_column: str, parallel: bool
) -> Iterator[pa.Table]:
    """Each part file's targets, in order; raises PartsOverlap before yielding a table
    that taking the file alone would get wrong."""
    names = [id_column, *input_columns(target_set, columns)]
    last_user = last_id = None
    found = _Found()  # in any file, for one warning at the end
    for path, table in read_ledger_parts(ledger_dir, names, type_check(target_set, columns)):
        if table.num_rows == 0:
            continue
        last_user = users_after(table.column(columns.user), last_user)
        ids = table.column(id_column)
        _check_no_null_ids(ids, id_column, path)
        if not _rising(ids, after=last_id):
            raise PartsOverlap
        last_id = ids[-1].as_py()
        yield _targets_of(table, target_set, columns, id_column, parallel, path, found)
    found.warn(target_set, stacklevel=5)


class _Found:
    """The categories and the filters some row matched (the kernels' `seen` words) of the
    tables targets are computed on (a ledger's part files, say), so that a category or MCC
    that none has is warned about once, at the end."""

    def __init__(self) -> None:
        self.categories: dict[str, None] = {}
        self.seen: np.ndarray | None = None
        self.plan: Plan | None = None  # its filter of each target is any table's

    def run(self, arrays: UserArrays, plan: Plan, parallel: bool) -> np.ndarray:
        """`run_plan`, noting the table's categories and the filters its rows matched."""
        seen = plan.no_filter_seen()
        values = run_plan(arrays, plan, parallel=parallel, seen=seen)
        self.categories.update(dict.fromkeys(arrays.categories))
        self.seen = seen if self.seen is None else self.seen | seen
        self.plan = plan
        return values

    def warn(self, target_set: TargetSet, stacklevel: int) -> None:
        warn_missing_categories(target_set, list(self.categories), stacklevel=stacklevel)
        if self.plan is not None:
            warn_unmatched_mccs(target_set, self.plan, self.seen, stacklevel=stacklevel)


def users_after(users: pa.ChunkedArray, last_user: Any) -> Any:
    """The largest user id of a part file whose users all come after `last_user`, the
    largest of the files before (None for the first); PartsOverlap when they do not (a
    user's rows may run across files: then all files are taken at once)."""
    low, high = _user_range(users)
    if last_user is not None and not low > last_user:
        raise PartsOverlap
    return high


def _user_range(users: pa.ChunkedArray) -> tuple:
    """The smallest and largest user id of a part file; PartsOverlap when the ids cannot be
    ordered."""
    if pa.types.is_dictionary(users.type):
        users = users.cast(users.type.value_type)
    try:
        extremes = pc.min_max(users)
    except pa.ArrowNotImplementedError:
        raise PartsOverlap from None
    low, high = extremes["min"].as_py(), extremes["max"].as_py()
    if low is None:  # only nulls: taken at once, where the null ids are reported
        raise PartsOverlap
    return low, high


def _targets_at_once(
    ledger_dir, target_set: TargetSet, columns: Columns, id_column: str, parallel: bool
) -> pa.Table:
    """A ledger's targets from all its rows in memory at once."""
    names = [id_column, *input_columns(target_set, columns)]
    table = read_ledger(ledger_dir, names, type_check(target_set, columns))
    if table.column(id_column).null_count:  # name the file
        for path, part in read_ledger_parts(ledger_dir, [id_column]):
            _check_no_null_ids(part.column(id_column), id_column, path)
    _check_unique(table.column(id_column), id_column, ledger_dir)
    found = _Found()
    result = _targets_of(table, target_set, columns, id_column, parallel, ledger_dir, found)
    found.warn(target_set, stacklevel=5)
    return result


def type_check(target_set: TargetSet, columns: Columns) -> SchemaCheck:
    """The check of a ledger's column types for these targets (read_ledger's `check`)."""
    need_mcc, need_category = needed_columns(target_set)
    return partial(check_types, columns=columns, need_mcc=need_mcc, need_category=need_category)


def _targets_of(
    table: pa.Table,
    target_set: TargetSet,
    columns: Columns,
    id_column: str,
    parallel: bool,
    source: str | Path,
    found: _Found,
) -> pa.Table:
    """`id_column` and the targets of a table read from `source`, in the table's row order.
    The table's categories and matched filters are added to `found`, for the caller to warn
    about a category or MCC named by a target but absent."""
    arrays = prepare(table, columns, *needed_columns(target_set), source=source)
    plan = make_plan(target_set, arrays.categories, warn_missing=False)
    values = arrays.restore(found.run(arrays, plan, parallel))
    fields = [pa.field(id_column, table.schema.field(id_column).type)]
    fields += [pa.field(name, pa.from_numpy_dtype(values.dtype)) for name in target_set.names]
    data = [table.column(id_column)] + [pa.array(values[:, t]) for t in range(values.shape[1])]
    return pa.Table.from_arrays(data, schema=pa.schema(fields))


def _rising(ids: pa.ChunkedArray, after=None) -> bool:
    """Whether integer ids without nulls rise strictly, from above `after` when given."""
    if not pa.types.is_integer(ids.type) or ids.null_count:
        return False
    values = ids.to_numpy()
    return bool((values[1:] > values[:-1]).all()) and (after is None or values[0] > after)


def _check_no_null_ids(ids: pa.ChunkedArray, name: str, path: str | Path) -> None:
    """Targets are matched to transactions by id, so every row needs one."""
    if ids.null_count:
        raise DataError(
            f"{path}: column {name!r}: {ids.null_count} null value(s); expected an id on every "
            "row (targets are matched to transactions by them)"
        )


def _check_unique(ids: pa.ChunkedArray, name: str, ledger_dir: str | Path) -> None:
    """Targets are matched to transactions by id, so no id may occur twice."""
    # NOTE: a ledger's ids rise through its files; seeing that took 0.2 s for 10^7 rows,
    # counting them 3-4 s (2 busy cores).
    if _rising(ids):
        return
    counts = pc.value_counts(ids)
    repeated = pc.filter(counts.field("values"), pc.greater(counts.field("counts"), 1))
    if len(repeated):
        raise DataError(
            f"{ledger_dir}: column {name!r}: {len(repeated)} value(s) occur more than once, "
            f"e.g. {repeated[0].as_py()!r}; expected unique ids (targets are matched to "
            "transactions by them)"
        )


def input_columns(target_set: TargetSet, columns: Columns, extra: Sequence[str] = ()) -> list[str]:
    """The input columns the targets read (mcc/category only when a target filters on them),
    then `extra`, without repeats."""
    need_mcc, need_category = needed_columns(target_set)
    names = [columns.user, columns.timestamp, columns.amount]
    names += [columns.mcc] if need_mcc else []
    names += [columns.category] if need_category else []
    return list(dict.fromkeys([*names, *extra]))
