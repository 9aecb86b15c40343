"""Turn a transaction table into the flat, user-sorted CSR arrays the target kernels read.

Timestamps must be tz-naive local time (the ledger contract): calendar buckets are local days,
weeks and months, and converting a tz-aware column would have to guess which zone is local.
A tz-aware column is rejected with the conversion to use. Times are read to the microsecond:
finer digits (of nanosecond timestamps) are dropped, so rows less than a microsecond apart
count as simultaneous and keep their input order. Times must lie in years 1 to 9999.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from cardworld.errors import DataError, LedgerError
from cardworld.simulator import ledger
from cardworld.simulator.targets import kernels as K

_US_PER = {"s": 1_000_000, "ms": 1_000, "us": 1, "ns": 1}


@dataclass(frozen=True)
class Columns:
    """Names of the input columns the targets read."""

    user: str = "consumer_id"
    timestamp: str = "timestamp"
    amount: str = "amount"
    mcc: str = "mcc"
    category: str = "category"


@dataclass(frozen=True)
class UserArrays:
    """Transactions sorted by (user, timestamp), users side by side, cut by `offsets`."""

    offsets: np.ndarray  # (n_users + 1,) int64 row offsets
    users: np.ndarray  # (n_users,) int64 user ids (codes when the user column is not integer)
    timestamps: np.ndarray  # (N,) int64 microseconds since 1970-01-01, local naive
    amounts: np.ndarray  # (N,) float64
    mcc: np.ndarray  # (N,) int32, MCC_NONE where null or outside 0..9999
    category: np.ndarray  # (N,) int32 codes into `categories`, len(categories) where null
    categories: tuple[str, ...]
    order: np.ndarray | None  # (N,) int64: sorted row r is input row order[r]; None if unchanged

    @property
    def n_rows(self) -> int:
        return int(self.timestamps.shape[0])

    @property
    def n_users(self) -> int:
        return int(self.offsets.shape[0] - 1)

    def restore(self, sorted_rows: np.ndarray) -> np.ndarray:
        """Put per-row results (sorted order) back into the input's row order."""
        if self.order is None:
            return sorted_rows
        result = np.empty_like(sorted_rows)  # keeps the memory order
        result[self.order] = sorted_rows
        return result


def to_arrow(table: pd.DataFrame | pa.Table | pa.RecordBatch, names: Sequence[str]) -> pa.Table:
    """The named columns of a pandas DataFrame or Arrow table as an Arrow table."""
    available = list(table.columns) if isinstance(table, pd.DataFrame) else table.schema.names
    for name in names:
        if name not in available:
            raise DataError(
                f"column {name!r}: not found; expected it among the table's columns "
                f"({', '.join(map(str, available[:30]))})"
            )
        if available.count(name) > 1:
            raise DataError(f"column {name!r}: found {available.count(name)} times; expected one")
    if isinstance(table, pd.DataFrame):
        frame = table[list(names)]
        for name in names:
            column = frame[name]
            if isinstance(column.dtype, pd.DatetimeTZDtype):
                raise _tz_error(name, str(column.dtype.tz))
        try:
            return pa.Table.from_pandas(frame, preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            _check_convertible(frame)
            raise
    if isinstance(table, pa.RecordBatch):
        table = pa.Table.from_batches([table])
    if isinstance(table, pa.Table):
        return table.select(list(names))
    raise DataError(
        f"table of type {type(table).__name__}: expected a pandas DataFrame or a pyarrow Table"
    )


def _check_convertible(frame: pd.DataFrame) -> None:
    """Name the first column of a DataFrame that pyarrow cannot convert: an object column
    whose values are of mixed types, such as numbers and text read from a CSV file."""
    for name in frame.columns:
        try:
            pa.array(frame[name], from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            reason = exc.args[0] if exc.args else exc
            raise DataError(
                f"column {name!r}: {reason}; expected values of one type (convert the column "
                "first, e.g. with pd.to_numeric or pd.to_datetime)"
            ) from None


SchemaCheck = Callable[[pa.Schema], None]


def read_ledger(
    ledger_dir: str | Path, names: Sequence[str], check: SchemaCheck | None = None
) -> pa.Table:
    """Read the named columns of a ledger's transactions/ dataset; `check` (which raises
    DataError) is given the first part file's schema, which all files must follow."""
    dataset = _checked_parts(ledger_dir, names, check)
    try:
        return dataset.to_table(columns=list(names))
    except (pa.ArrowException, OSError):
        for fragment in dataset.get_fragments():
            _check_part(fragment, dataset.schema, names, exact=True)
            try:  # not a column of another type: a damaged file, found by reading each
                fragment.to_table(columns=list(names), schema=dataset.schema)
            except (pa.ArrowException, OSError) as exc:
                raise ledger.unreadable(fragment.path, ledger_dir, exc) from None
        raise


def read_ledger_parts(
    ledger_dir: str | Path,
    names: Sequence[str],
    check: SchemaCheck | None = None,
    only: Sequence[str] | None = None,
) -> Iterator[tuple[str, pa.Table]]:
    """The named columns of a ledger's part files, one file at a time, in the dataset's
    order (that of `read_ledger`): (path, table) pairs; only the files at the paths `only`
    when given. `check` as for `read_ledger`."""
    dataset = _transactions(ledger_dir, names, check)
    for fragment in dataset.get_fragments():
        if only is not None and fragment.path not in only:
            continue
        _check_part(fragment, dataset.schema, names, exact=False)
        try:
            table = fragment.to_table(columns=list(names), schema=dataset.schema)
        except (pa.ArrowException, OSError) as exc:
            _check_part(fragment, dataset.schema, names, exact=True)
            raise ledger.unreadable(fragment.path, ledger_dir, exc) from None
        yield fragment.path, table


def check_ledger(
    ledger_dir: str | Path, names: Sequence[str], check: SchemaCheck | None = None
) -> pa.Schema:
    """The schema of a ledger's transactions/ dataset (its first part file's, which must
    pass `check`), after checking that every part file has the named columns, of the same
    kinds (from the files' metadata; nothing else is read)."""
    return _checked_parts(ledger_dir, names, check).schema


def _checked_parts(
    ledger_dir: str | Path, names: Sequence[str], check: SchemaCheck | None
) -> ds.FileSystemDataset:
    """`_transactions`, after checking every part file's named columns (`_check_part`)."""
    dataset = _transactions(ledger_dir, names, check)
    for fragment in dataset.get_fragments():
        _check_part(fragment, dataset.schema, names, exact=False)
    return dataset


def _transactions(
    ledger_dir: str | Path, names: Sequence[str], check: SchemaCheck | None
) -> ds.FileSystemDataset:
    """A ledger's transactions/ dataset (the part files its manifest lists, if it has one),
    which must have the named columns and whose first part file (that of the dataset's
    schema) must pass `check`. Pages are checksummed as they are read."""
    fs, files = ledger.transaction_files(ledger_dir)
    if not files:
        raise LedgerError(f"{ledger_dir}: no transactions/ part files; expected a ledger")
    path = posixpath.dirname(files[0])
    try:
        dataset = ds.dataset(files, format=ledger.READ_FORMAT, filesystem=ledger.arrow_fs(fs))
    except FileNotFoundError as exc:  # a listed part file is gone: name it
        missing = next((f for f in files if not fs.exists(f)), files[0])
        raise ledger.unreadable(missing, ledger_dir, exc) from None
    except (pa.ArrowException, OSError) as exc:  # the first file, whose schema it reads
        raise ledger.unreadable(files[0], ledger_dir, exc) from None
    dataset = _typed_nulls(dataset, names)
    for name in names:
        if name not in dataset.schema.names:
            raise DataError(
                f"{path}: column {name!r}: not found; expected it among {', '.join(dataset.schema.names)}"
            )
    if check is not None:
        try:
            check(dataset.schema)
        except DataError as exc:
            raise DataError(f"{dataset.files[0]}: {exc}") from None  # the schema's file
    return dataset


def _typed_nulls(dataset: ds.FileSystemDataset, names: Sequence[str]) -> ds.FileSystemDataset:
    """The dataset read with the type of a later part file for a named column that the first
    file holds as nulls only (pandas writes an all-None column so), if any file has one."""
    schema = dataset.schema
    untyped = {n for n in names if n in schema.names and pa.types.is_null(schema.field(n).type)}
    if not untyped:
        return dataset
    for fragment in dataset.get_fragments():
        try:
            physical = fragment.physical_schema
        except (pa.ArrowException, OSError):
            continue  # a damaged file: reading it raises an error that names it
        for name in sorted(untyped):
            index = physical.get_field_index(name)
            if index >= 0 and not pa.types.is_null(physical.field(index).type):
                schema = schema.set(schema.get_field_index(name), physical.field(index))
                untyped.discard(name)
        if not untyped:
            break
    return ds.dataset(
        dataset.files, schema=schema, format=ledger.READ_FORMAT, filesystem=dataset.filesystem
    )


def _check_part(
    fragment: ds.Fragment, schema: pa.Schema, names: Sequence[str], *, exact: bool
) -> None:
    """Refuse a part file that lacks a named column or whose column differs from `schema`'s
    (the first file's): in kind before it is read, or in type (`exact`) after pyarrow could
    not convert it."""
    # NOTE: pyarrow reads every file as the first file's schema, so it would parse a later
    # file's text "12.50" as an amount, and fill a column missing from it with nulls.
    try:
        physical = fragment.physical_schema
    except (pa.ArrowException, OSError):
        return  # a damaged file: reading it raises an error that names it
    for name in names:
        index = physical.get_field_index(name)
        expected = schema.field(name).type
        if index < 0:
            raise DataError(
                f"{fragment.path}: column {name!r}: not found; expected it, as in the first "
                "part file"
            )
        found = physical.field(index).type
        if not exact and pa.types.is_null(found):
            continue  # a column of nulls only (pandas writes an all-None column so): any kind
        if (found != expected) if exact else (_kind(found) != _kind(expected)):
            raise DataError(
                f"{fragment.path}: column {name!r}: type {found}; expected {expected}, as in "
                "the first part file"
            )


def _kind(kind: pa.DataType) -> str:
    """What a column type holds, for comparing part files: pyarrow converts between types
    of one kind (int32 and double amounts), but between kinds it parses text or reads
    numbers as times."""
    if is_text(kind):
        return "text"
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    if _is_number(kind):
        return "number"
    if pa.types.is_timestamp(kind) and kind.tz is not None:
        return f"time in {kind.tz}"  # converting it to local time would drop the zone
    if _is_time(kind):
        return "time"
    return str(kind)


def prepare(
    table: pa.Table,
    columns: Columns,
    need_mcc: bool,
    need_category: bool,
    *,
    source: str | Path | None = None,
) -> UserArrays:
    """Validate and convert an Arrow table into sorted CSR arrays; an error names `source`
    (the ledger the table was read from) when given."""
    try:
        return _prepare(table, columns, need_mcc, need_category)
    except DataError as exc:
        if source is None:
            raise
        raise DataError(f"{source}: {exc}") from None


def _prepare(table: pa.Table, columns: Columns, need_mcc: bool, need_category: bool) -> UserArrays:
    if table.num_rows == 0:  # an empty frame's columns may have no type at all
        empty = np.empty(0, np.int64)
        return from_numpy(
            empty, empty, np.empty(0), np.empty(0, np.int32), np.empty(0, np.int32), ()
        )
    check_types(table.schema, columns, need_mcc, need_category)
    users = _users(table.column(columns.user), columns.user)
    timestamps = timestamps_us(table.column(columns.timestamp), columns.timestamp)
    amounts = _amounts(table.column(columns.amount), columns.amount)
    n = len(users)
    mcc = _mccs(table.column(columns.mcc)) if need_mcc else np.zeros(n, np.int32)
    if need_category:
        category, categories = _categories(table.column(columns.category))
    else:
        category, categories = np.zeros(n, np.int32), ()
    return from_numpy(users, timestamps, amounts, mcc, category, categories)


def from_numpy(
    users: np.ndarray,
    timestamps: np.ndarray,
    amounts: np.ndarray,
    mcc: np.ndarray,
    category: np.ndarray,
    categories: tuple[str, ...],
) -> UserArrays:
    """Sort by (user, timestamp) if needed (stable) and cut into users."""
    order = None
    if not K._is_sorted(users, timestamps):
        order = np.lexsort((timestamps, users))
        users, timestamps, amounts = users[order], timestamps[order], amounts[order]
        mcc, category = mcc[order], category[order]
    starts = np.flatnonzero(users[1:] != users[:-1]) + 1 if len(users) else np.empty(0, np.int64)
    offsets = np.concatenate(([0], starts, [len(users)])).astype(np.int64)
    if len(users) == 0:
        offsets = np.zeros(1, np.int64)
    return UserArrays(
        offsets=offsets,
        users=users[offsets[:-1]],
        timestamps=np.ascontiguousarray(timestamps, dtype=np.int64),
        amounts=np.ascontiguousarray(amounts, dtype=np.float64),
        mcc=np.ascontiguousarray(mcc, dtype=np.int32),
        category=np.ascontiguousarray(category, dtype=np.int32),
        categories=tuple(categories),
        order=order,
    )


def check_types(schema: pa.Schema, columns: Columns, need_mcc: bool, need_category: bool) -> None:
    """Refuse an input column whose type the targets cannot read (its values are checked as
    they are converted): text where numbers or times are expected is not parsed."""
    rules = [
        (columns.user, _is_user_id, "integer or string user ids"),
        (columns.timestamp, _is_time, "a tz-naive timestamp (local time)"),
        (columns.amount, _is_number, "numeric amounts"),
    ]
    # A column of nulls only (pandas writes an all-None column so) matches no MCC or category.
    if need_mcc:
        rules.append((columns.mcc, _is_integer_or_null, "integer MCCs (ISO 18245)"))
    if need_category:
        rules.append(
            (columns.category, _is_text_or_null, "string or dictionary<string> categories")
        )
    for name, accepts, expected in rules:
        kind = schema.field(name).type
        if not accepts(kind):
            raise DataError(f"column {name!r}: type {kind}; expected {expected}")
        if pa.types.is_timestamp(kind) and kind.tz is not None:
            raise _tz_error(name, kind.tz)


def _is_integer_or_null(kind: pa.DataType) -> bool:
    return pa.types.is_integer(kind) or pa.types.is_null(kind)


def _is_text_or_null(kind: pa.DataType) -> bool:
    return is_text(kind) or pa.types.is_null(kind)


def _is_user_id(kind: pa.DataType) -> bool:
    return pa.types.is_integer(kind) or is_text(kind) or pa.types.is_dictionary(kind)


def _is_time(kind: pa.DataType) -> bool:
    return pa.types.is_timestamp(kind) or pa.types.is_date(kind)


def _is_number(kind: pa.DataType) -> bool:
    return pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)


def is_text(kind: pa.DataType) -> bool:
    """A string column, or a dictionary of strings."""
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    return pa.types.is_string(kind) or pa.types.is_large_string(kind)


def _tz_error(name: str, tz: str) -> DataError:
    return DataError(
        f"column {name!r}: timezone-aware timestamps ({tz}); expected tz-naive local time, as in a "
        "ledger. Targets bucket by the local day/week/month, so convert first, e.g. "
        "df[col].dt.tz_convert(local_tz).dt.tz_localize(None)"
    )


def _no_nulls(column: pa.ChunkedArray, name: str, expected: str) -> None:
    if column.null_count:
        raise DataError(
            f"column {name!r}: {column.null_count} null values; expected {expected} without nulls"
        )


# The converters below take columns of the types check_types accepts.


def _users(column: pa.ChunkedArray, name: str) -> np.ndarray:
    _no_nulls(column, name, "user ids")
    if pa.types.is_integer(column.type):
        return column.to_numpy().astype(np.int64, copy=False)
    encoded = pc.dictionary_encode(
        column.cast(pa.string()) if pa.types.is_dictionary(column.type) else column
    )
    return encoded.combine_chunks().indices.to_numpy().astype(np.int64)


def timestamps_us(column: pa.ChunkedArray, name: str) -> np.ndarray:
    """Microseconds since 1970-01-01 of a tz-naive timestamp or date column, as int64."""
    kind = column.type
    if pa.types.is_date(kind):
        column = column.cast(pa.timestamp("us"))
        kind = column.type
    _no_nulls(column, name, "timestamps")
    raw = column.cast(pa.int64()).to_numpy()
    if kind.unit == "ns":
        return raw // 1000  # finer than a microsecond: dropped (floored)
    if kind.unit != "us":
        # NOTE: beyond about 292,000 years from 1970 the microseconds would overflow int64.
        first, last = (bound // _US_PER[kind.unit] for bound in _US_RANGE)
        _check_range(raw, first, last, name)
        return raw * _US_PER[kind.unit]
    _check_range(raw, *_US_RANGE, name)
    return raw


# Times the kernels take: years 1 to 9999, as Python's datetime (microseconds since 1970).
_US_RANGE = (-62_135_596_800_000_000, 253_402_300_799_999_999)


def _check_range(raw: np.ndarray, first: int, last: int, name: str) -> None:
    if len(raw) == 0 or first <= raw.min() and raw.max() <= last:
        return
    which = "before year 1" if raw.min() < first else "after year 9999"
    raise DataError(f"column {name!r}: a time {which}; expected times in years 1 to 9999")


def _amounts(column: pa.ChunkedArray, name: str) -> np.ndarray:
    _no_nulls(column, name, "amounts")
    values = column.cast(pa.float64()).to_numpy()
    if not np.isfinite(values).all():
        raise DataError(
            f"column {name!r}: non-finite amounts (NaN or inf); expected finite numbers"
        )
    return values


def _mccs(column: pa.ChunkedArray) -> np.ndarray:
    """MCC codes as int32, MCC_NONE where null or outside 0..9999 (checked in the column's
    own type, so no value wraps into range)."""
    if pa.types.is_null(column.type):
        return np.full(len(column), K.MCC_NONE, np.int32)
    values = column.fill_null(0).to_numpy()  # 0 fits every integer type
    inside = (values >= 0) & (values < K.MCC_NONE)
    if column.null_count:
        inside &= column.is_valid().to_numpy(zero_copy_only=False)
    return np.where(inside, values, K.MCC_NONE).astype(np.int32)


def _categories(column: pa.ChunkedArray) -> tuple[np.ndarray, tuple[str, ...]]:
    """Category codes as int32 into the categories (strings), len(categories) where null."""
    kind = column.type
    if pa.types.is_null(kind):
        return np.zeros(len(column), np.int32), ()
    if pa.types.is_dictionary(kind) and column.num_chunks:
        # int32 indices, so that the chunks' dictionaries combined and the null code fit.
        unified = column.cast(pa.dictionary(pa.int32(), kind.value_type)).unify_dictionaries()
        dictionary = unified.chunk(0).dictionary
        categories = tuple(dictionary.to_pylist())
        distinct = len(set(categories)) == len(categories) and dictionary.null_count == 0
        if distinct and pa.types.is_string(dictionary.type):
            # NOTE: reuse the dictionary codes: decoding 10^7 strings to re-encode them is slow.
            codes = [
                chunk.indices.fill_null(len(categories)).to_numpy() for chunk in unified.chunks
            ]
            return np.concatenate(codes).astype(np.int32), categories
    if pa.types.is_dictionary(kind):
        column = column.cast(kind.value_type)
    encoded = pc.dictionary_encode(column).combine_chunks()
    categories = tuple(encoded.dictionary.to_pylist())
    codes = encoded.indices.fill_null(len(categories)).to_numpy().astype(np.int32)
    return codes, categories
