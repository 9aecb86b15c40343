"""The ledger on storage: Parquet files, the manifest with checksums, reading and verifying.

Layout (DESIGN.md): manifest.json, consumers/cards/merchants/fraudsters/compromises/homes
.parquet and a transactions/ dataset of part files sorted by consumer then time. A ledger lives at
any fsspec URL (a local path, file://, memory://, s3://, ...). Every file is written under
a temporary name and renamed when complete, so a half-written file is never visible
under its final name. Pages carry CRC32 checksums. Readers read the part files the
manifest lists, check each file's columns against the contract (TRANSACTION_SCHEMA,
TABLE_SCHEMAS) and verify the checksums, naming the file that fails.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import shutil
from collections.abc import Iterator
from pathlib import Path

import fsspec
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem

from cardworld.errors import LedgerError, reason

FORMAT = "cardworld-ledger/1"
MANIFEST = "manifest.json"
TABLES = ("consumers", "cards", "merchants", "fraudsters", "compromises", "homes")

# The contract every reader relies on (DESIGN.md, "The ledger"): the transactions' columns
# and, for the entity tables, the columns DESIGN.md lists. More columns are welcome.
TRANSACTION_SCHEMA = pa.schema(
    [
        ("txn_id", pa.int64()),
        ("timestamp", pa.timestamp("us")),
        ("consumer_id", pa.int64()),
        ("card_id", pa.int64()),
        ("merchant_id", pa.int64()),
        ("mcc", pa.int16()),
        ("category", pa.dictionary(pa.int16(), pa.string())),
        ("amount", pa.float64()),
        ("channel", pa.dictionary(pa.int8(), pa.string())),
        ("errors", pa.dictionary(pa.int8(), pa.string())),
        ("is_fraud", pa.bool_()),
        ("fraud_mechanism", pa.dictionary(pa.int8(), pa.string())),
        ("fraudster_id", pa.int64()),
        ("consumer_state", pa.dictionary(pa.int8(), pa.string())),
        ("fraud_method", pa.dictionary(pa.int8(), pa.string())),
        ("compromise_id", pa.int64()),
    ]
)
TABLE_SCHEMAS = {
    "consumers": pa.schema(
        [
            ("consumer_id", pa.int64()),
            ("first_name", pa.string()),
            ("last_name", pa.string()),
            ("gender", pa.string()),
            ("birth_date", pa.date32()),
            ("address", pa.string()),
            ("city", pa.string()),
            ("state", pa.string()),
            ("zip", pa.string()),
            ("lat", pa.float64()),
            ("lon", pa.float64()),
            ("income", pa.float64()),
            ("credit_score", pa.int16()),
        ]
    ),
    "cards": pa.schema(
        [
            ("card_id", pa.int64()),
            ("consumer_id", pa.int64()),
            ("kind", pa.string()),
            ("brand", pa.string()),
            ("has_chip", pa.bool_()),
            ("opened", pa.date32()),
            ("expires", pa.date32()),
            ("credit_limit", pa.float64()),
        ]
    ),
    "merchants": pa.schema(
        [
            ("merchant_id", pa.int64()),
            ("name", pa.string()),
            ("mcc", pa.int16()),
            ("chain", pa.string()),
            ("city", pa.string()),
            ("state", pa.string()),
            ("zip", pa.string()),
            ("country", pa.string()),
            ("lat", pa.float64()),
            ("lon", pa.float64()),
            ("online", pa.bool_()),
        ]
    ),
    "fraudsters": pa.schema(
        [
            ("fraudster_id", pa.int64()),
            ("home_city", pa.string()),
            ("home_state", pa.string()),
            ("home_country", pa.string()),
            ("methods", pa.list_(pa.string())),
            ("active_from", pa.date32()),
            ("active_to", pa.date32()),
        ]
    ),
    "compromises": pa.schema(
        [
            ("compromise_id", pa.int64()),
            ("card_id", pa.int64()),
            ("consumer_id", pa.int64()),
            ("compromised_at", pa.timestamp("us")),
            ("fraudster_id", pa.int64()),
        ]
    ),
    "homes": pa.schema(
        [
            ("consumer_id", pa.int64()),
            ("home_from", pa.date32()),
            ("home_to", pa.date32()),
            ("city", pa.string()),
            ("state", pa.string()),
            ("zip", pa.string()),
            ("lat", pa.float64()),
            ("lon", pa.float64()),
        ]
    ),
}
ROW_GROUP_ROWS = 1 << 20
# Reading verifies the page checksums the writer stores (write_page_checksum below).
READ_FORMAT = ds.ParquetFileFormat(
    default_fragment_scan_options=ds.ParquetFragmentScanOptions(page_checksum_verification=True)
)
# The entity tables: zstd's fastest level (the merchants table, the largest, writes in
# 0.22 s instead of 0.34 s at level 3 for 5% more bytes; it is written after every block).
PARQUET_OPTIONS = {
    "compression": "zstd",
    "compression_level": 1,
    "row_group_size": ROW_GROUP_ROWS,
    "use_dictionary": True,
    "write_statistics": True,
    # CRC32 of every page, checked when the ledger is read: a damaged file fails loudly.
    # Measured on a us-world part file (1.03M rows, 13.2 MB; CPU time, best of 21): write
    # 185 against 182 ms, read 90 against 84 ms verified, 5 kB more.
    "write_page_checksum": True,
}
# Transactions: dictionaries for the string columns only, delta
# encoding for the columns that rise within a file, and statistics (for filters that skip
# files) on the columns one filters by. Measured on a us-world part file (787k rows):
# 12.5 bytes a row at 6.0M rows/s, against 13.1 bytes at 4.2M rows/s with statistics on
# every column and plain ids, and 15.2 bytes at 3.3M rows/s with pyarrow's defaults.
TRANSACTION_OPTIONS = {
    **PARQUET_OPTIONS,
    "use_dictionary": [
        "category",
        "channel",
        "errors",
        "fraud_mechanism",
        "consumer_state",
        "fraud_method",
    ],
    "column_encoding": {
        column: "DELTA_BINARY_PACKED"
        for column in ("txn_id", "timestamp", "consumer_id", "card_id")
    },
    "write_statistics": [
        "txn_id",
        "timestamp",
        "consumer_id",
        "card_id",
        "merchant_id",
        "mcc",
        "amount",
    ],
}


# Merchants: dictionaries and statistics only where they pay. Names are half unique and
# coordinates all unique, so building their dictionaries was wasted work. Measured on a
# us-world merchants table (1.33M rows, row groups of 128k): 0.32 s and 34.8 MB, against
# 0.67 s and 42.8 MB with the entity tables' settings. Row groups are 128k rows (near
# DuckDB's 122,880), not a million: the file is written while blocks run, and only its last
# row group waits for the end of the run (a million-row group took 0.4 s there).
MERCHANT_OPTIONS = {
    **PARQUET_OPTIONS,
    "row_group_size": 1 << 17,
    "use_dictionary": ["kind", "mcc", "chain", "store_number", "city", "state", "country", "zip"],
    "column_encoding": {"merchant_id": "DELTA_BINARY_PACKED"},
    "write_statistics": ["merchant_id", "mcc", "chain", "state"],
}


def storage(url: str | os.PathLike, *, flag: str = "") -> tuple[fsspec.AbstractFileSystem, str]:
    """The filesystem and the path inside it for a local path or an fsspec URL; `flag` (such
    as "--out") begins the error for a URL whose filesystem fsspec lacks."""
    try:
        fs, path = fsspec.core.url_to_fs(str(url))
    except (ImportError, ValueError) as exc:
        what = str(url).split("://", 1)[0] + "://" if "://" in str(url) else "it"
        raise LedgerError(
            f"{flag} {url}".lstrip()
            + f": fsspec cannot open {what} here ({exc}); expected a local path or a URL "
            "whose filesystem is installed"
        ) from None
    return fs, path.rstrip("/") or "/"


def replace_directory(staging: Path, path: Path) -> None:
    """Rename the finished local directory `staging` to `path`; an old `path` is renamed
    aside first and deleted only once the new one is in place (put back if that fails)."""
    if not path.exists():
        staging.rename(path)
        return
    old = staging.with_name(f"{staging.name}.old")
    path.rename(old)
    try:
        staging.rename(path)
    except BaseException:
        old.rename(path)
        raise
    shutil.rmtree(old, ignore_errors=True)  # a file left there is no part of the new one


def write_atomically(fs: fsspec.AbstractFileSystem, path: str, write) -> None:
    """Call write(handle) on a temporary file, make it durable, then rename it to `path`;
    a failed write leaves no temporary file behind."""
    tmp = posixpath.join(posixpath.dirname(path), f".{posixpath.basename(path)}.tmp")
    try:
        with fs.open(tmp, "wb") as handle:
            write(handle)
            sync(fs, handle)
        fs.mv(tmp, path)
    finally:
        if fs.exists(tmp):
            fs.rm(tmp)


def check_output_file(out: Path, ledger_dir, *, overwrite: bool, error: type) -> None:
    """Raise `error` for an output file made from a ledger that is a directory, lies inside
    the ledger, or exists (unless `overwrite`): nothing already written is replaced unasked."""
    if out.is_dir():
        raise error(f"{out}: is a directory; --out must be a file path")
    fs, root = storage(ledger_dir)
    inside = isinstance(fs, LocalFileSystem) and out.resolve().is_relative_to(Path(root).resolve())
    if inside:
        raise error(f"{out}: lies inside the ledger {ledger_dir}; write it elsewhere")
    if out.exists() and not overwrite:
        raise error(
            f"{out}: already exists; choose another --out or pass --overwrite "
            "(overwrite=True from Python)"
        )


def sync(fs: fsspec.AbstractFileSystem, handle) -> None:
    """Make what was written to an open local file durable before it is renamed."""
    if isinstance(fs, LocalFileSystem):
        handle.flush()
        os.fsync(handle.fileno())


def write_parquet(
    fs: fsspec.AbstractFileSystem, table: pa.Table, path: str, options: dict | None = None
) -> dict:
    """Write a Parquet file atomically (temporary name, then rename); returns its manifest
    record: sha256, bytes and rows.

    NOTE: the file is serialized in memory and hashed there, so the manifest needs no
    second pass over the ledger (files are one block of consumers, tens of MB at most).
    """
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, **(options or PARQUET_OPTIONS))
    data = sink.getvalue()
    write_atomically(fs, path, lambda handle: handle.write(data))
    return {"sha256": hashlib.sha256(data).hexdigest(), "bytes": data.size, "rows": table.num_rows}


def write_arrow(fs: fsspec.AbstractFileSystem, table: pa.Table, path: str) -> None:
    """Write a scratch table (a run's parts, read back by the run) atomically as Arrow IPC:
    no encoding or compression to pay for on a file that lives seconds."""

    def write(handle) -> None:
        with pa.ipc.new_file(handle, table.schema) as writer:
            writer.write_table(table)

    write_atomically(fs, path, write)


def read_arrow(fs: fsspec.AbstractFileSystem, path: str) -> pa.Table:
    with fs.open(path, "rb") as handle:
        return pa.ipc.open_file(handle).read_all()


def write_json(fs: fsspec.AbstractFileSystem, obj: dict, path: str) -> None:
    data = (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode()
    write_atomically(fs, path, lambda handle: handle.write(data))


def sha256(fs: fsspec.AbstractFileSystem, path: str) -> str:
    digest = hashlib.sha256()
    with fs.open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _data_files(fs: fsspec.AbstractFileSystem, root: str) -> list[str]:
    """Relative paths of the ledger's Parquet files, hidden temporaries excluded."""
    found = fs.find(root)
    rel = [posixpath.relpath(p, root) for p in found]
    return sorted(
        r
        for r in rel
        if r.endswith(".parquet") and not any(part.startswith((".", "_")) for part in r.split("/"))
    )


def write_manifest(
    fs: fsspec.AbstractFileSystem, root: str, manifest: dict, files: dict[str, dict]
) -> None:
    """Write manifest.json atomically with the records (sha256, bytes, rows) of every data
    file, as write_parquet returned them, by path relative to root."""
    found = _data_files(fs, root)
    if sorted(files) != found:
        raise LedgerError(
            f"{root}: the files written ({sorted(files)}) are not those present ({found})"
        )
    write_json(
        fs, {**manifest, "files": dict(sorted(files.items()))}, posixpath.join(root, MANIFEST)
    )


def read_manifest(url: str | os.PathLike) -> dict:
    fs, root = storage(url)
    path = posixpath.join(root, MANIFEST)
    if not fs.isfile(path):
        if not fs.exists(root):
            raise LedgerError(f"{url}: does not exist; expected a cardworld ledger directory")
        raise LedgerError(f"{url}: not a cardworld ledger (no {MANIFEST})")
    try:
        manifest = json.loads(fs.cat_file(path))
    except json.JSONDecodeError as exc:
        raise LedgerError(f"{url}/{MANIFEST}: not valid JSON: {exc}") from None
    if not isinstance(manifest, dict):
        raise LedgerError(
            f"{url}/{MANIFEST}: expected a JSON object, found {type(manifest).__name__}"
        )
    if manifest.get("format") != FORMAT:
        raise LedgerError(
            f"{url}/{MANIFEST}: 'format' must be {FORMAT!r}, found {manifest.get('format')!r}"
        )
    files = manifest.get("files")
    if not isinstance(files, dict) or not all(isinstance(r, dict) for r in files.values()):
        raise LedgerError(
            f"{url}/{MANIFEST}: 'files' must map each file to its record, found {files!r:.80}"
        )
    return manifest


def verify(url: str | os.PathLike) -> list[str]:
    """Problems found checking a ledger against its manifest (empty when intact)."""
    manifest = read_manifest(url)
    fs, root = storage(url)
    problems = []
    for rel, expected in manifest["files"].items():
        path = posixpath.join(root, rel)
        if not fs.isfile(path):
            problems.append(f"missing: {rel}")
        elif fs.size(path) != expected["bytes"] or sha256(fs, path) != expected["sha256"]:
            problems.append(f"corrupted: {rel} (checksum differs from the manifest)")
    for rel in _data_files(fs, root):
        if rel not in manifest["files"]:
            problems.append(f"unexpected: {rel} (not in the manifest)")
    return problems


def transaction_files(url: str | os.PathLike) -> tuple[fsspec.AbstractFileSystem, list[str]]:
    """A ledger's filesystem and transaction part files: those its manifest lists, or every
    part file in transactions/ for a ledger without a manifest."""
    fs, root = storage(url)
    if fs.isfile(posixpath.join(root, MANIFEST)):
        listed = read_manifest(url)["files"]
    elif fs.isdir(posixpath.join(root, "transactions")):
        listed = _data_files(fs, root)
    else:
        raise LedgerError(f"{url}: not a cardworld ledger (no {MANIFEST} and no transactions/)")
    parts = sorted(rel for rel in listed if rel.startswith("transactions/"))
    return fs, [posixpath.join(root, rel) for rel in parts]


def transactions(url: str | os.PathLike, columns: list[str] | None = None) -> ds.Dataset:
    """The transactions of a ledger as a pyarrow dataset (lazy; filter and project before
    reading), after checking that every part file has the columns `columns` (default: all
    of TRANSACTION_SCHEMA's) of the contract's types. Pages are checksummed as they are
    read; `transaction_batches` and `read_transactions` name a damaged file."""
    fs, paths = transaction_files(url)
    names = TRANSACTION_SCHEMA.names if columns is None else columns
    schema = None
    for path in paths:
        found = _file_schema(fs, path, url)
        check_columns(_label(fs, path), found, TRANSACTION_SCHEMA, names)
        schema = schema or found
    return ds.dataset(
        paths, schema=schema or TRANSACTION_SCHEMA, format=READ_FORMAT, filesystem=arrow_fs(fs)
    )


def transaction_batches(
    url: str | os.PathLike, columns: list[str], batch_size: int
) -> Iterator[pa.RecordBatch]:
    """The named columns of a ledger's transactions, batch by batch in the ledger's order;
    a part file that cannot be read raises a LedgerError that names it."""
    dataset = transactions(url, columns)
    for fragment in dataset.get_fragments():
        try:
            yield from fragment.to_batches(
                columns=columns, batch_size=batch_size, schema=dataset.schema
            )
        except (pa.ArrowException, OSError) as exc:
            raise unreadable(fragment.path, url, exc) from None


def read_transactions(
    url: str | os.PathLike, columns: list[str] | None = None, filter=None
) -> pa.Table:
    """A ledger's transactions as one table (optionally some columns / a pyarrow filter)."""
    dataset = transactions(url, columns)
    try:
        return dataset.to_table(columns=columns, filter=filter)
    except (pa.ArrowException, OSError) as exc:
        for fragment in dataset.get_fragments():  # which file: read them one by one
            try:
                fragment.to_table(columns=columns, filter=filter, schema=dataset.schema)
            except (pa.ArrowException, OSError) as file_exc:
                raise unreadable(fragment.path, url, file_exc) from None
        raise unreadable(str(url), url, exc) from None


_NULLABLE_INT64 = {pa.int64(): pd.Int64Dtype()}


def transactions_frame(table: pa.Table) -> pd.DataFrame:
    """Transactions as a pandas DataFrame; the ids set on fraud rows only (fraudster_id,
    compromise_id) are nullable integers, where pandas' default makes them floats."""
    frame = table.to_pandas()
    for name in ("fraudster_id", "compromise_id"):
        if name in frame.columns and pa.types.is_integer(table.schema.field(name).type):
            frame[name] = table.column(name).to_pandas(types_mapper=_NULLABLE_INT64.get)
    return frame


def read_table(
    url: str | os.PathLike,
    name: str,
    columns: list[str] | None = None,
    *,
    optional: tuple[str, ...] = (),
) -> pa.Table:
    """One of the ledger's entity tables: consumers, homes, cards, merchants, fraudsters or
    compromises. Its columns `columns` (default: every column, after checking those of the
    contract, TABLE_SCHEMAS[name]), and those of `optional` that the file has."""
    if name not in TABLES:
        raise LedgerError(f"unknown ledger table {name!r}; expected one of {', '.join(TABLES)}")
    read_manifest(url)
    fs, root = storage(url)
    path = posixpath.join(root, f"{name}.parquet")
    label = _label(fs, path)
    if not fs.isfile(path):
        raise LedgerError(f"{label}: missing; `cardworld verify {url}` lists what else is")
    with fs.open(path, "rb") as handle:
        try:
            file = pq.ParquetFile(handle, page_checksum_verification=True)
        except (pa.ArrowException, OSError) as exc:
            raise unreadable(label, url, exc) from None
        schema = file.schema_arrow
        contract = TABLE_SCHEMAS[name]
        if columns is not None:
            columns = [*columns, *(c for c in optional if c in schema.names)]
        check_columns(label, schema, contract, contract.names if columns is None else columns)
        try:
            return file.read(columns=columns)
        except (pa.ArrowException, OSError) as exc:
            raise unreadable(label, url, exc) from None


def check_columns(label: str, found: pa.Schema, contract: pa.Schema, names) -> None:
    """Refuse a file (`label`) that lacks one of the columns `names` or holds it in a type
    the readers cannot take for the contract's: text for numbers, numbers for times."""
    for name in names:
        indices = found.get_all_field_indices(name)
        expected = contract.field(name).type if name in contract.names else None
        wanted = f"a column of {_describe(expected)}" if expected is not None else "it"
        if not indices:
            raise LedgerError(f"{label}: column {name!r}: not found; expected {wanted}")
        if len(indices) > 1:
            raise LedgerError(f"{label}: column {name!r}: found {len(indices)} times; expected one")
        kind = found.field(indices[0]).type
        if expected is not None and not _takes(expected, kind):
            raise LedgerError(
                f"{label}: column {name!r}: type {kind}; expected {_describe(expected)}"
            )


def _kind(kind: pa.DataType) -> str:
    """What a column holds, the readers taking any type of one kind: int16 or int64 ids,
    string or dictionary text, timestamps of any unit."""
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return "text"
    if pa.types.is_integer(kind):
        return "integer"
    if pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        return "number"
    if pa.types.is_timestamp(kind):
        return "local time" if kind.tz is None else f"time in {kind.tz}"
    if pa.types.is_date(kind):
        return "date"
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return f"list of {_kind(kind.value_type)}"
    return str(kind)


def _takes(expected: pa.DataType, found: pa.DataType) -> bool:
    """Whether a column of type `found` reads as the contract's `expected` does."""
    want, have = _kind(expected), _kind(found)
    return have == want or (want == "number" and have == "integer")


def _describe(kind: pa.DataType) -> str:
    what = _kind(kind)
    if what == "text":
        return "strings (string or dictionary<string>)"
    if what in ("integer", "number"):
        name = "float64" if what == "number" else str(kind)
        return f"{name} (or another {'numeric' if what == 'number' else 'integer'} type)"
    if what == "local time":
        return f"{kind} (local time, no time zone)"
    return str(kind)


def _file_schema(fs: fsspec.AbstractFileSystem, path: str, url) -> pa.Schema:
    """The Arrow schema in a Parquet file's footer; a LedgerError naming a file that is
    missing or not Parquet."""
    try:
        with fs.open(path, "rb") as handle:
            return pq.read_schema(handle)
    except (pa.ArrowException, OSError) as exc:
        raise unreadable(_label(fs, path), url, exc) from None


def unreadable(label: str, url, exc: Exception) -> LedgerError:
    """The error for a ledger's file (`label`) that pyarrow could not read: `exc`'s first
    line, and the command that checks the ledger."""
    if isinstance(exc, FileNotFoundError):
        return LedgerError(
            f"{exc.filename or label}: missing, though the manifest lists it; "
            f"`cardworld verify {url}` lists what else is"
        )
    why = reason(exc).replace("Could not open Parquet input source '<Buffer>': ", "")
    return LedgerError(
        f"{label}: cannot be read as Parquet ({why}); the file is damaged: "
        f"`cardworld verify {url}` checks the ledger against its manifest"
    )


def _label(fs: fsspec.AbstractFileSystem, path: str) -> str:
    """A file's name in messages: its path when local, else its URL."""
    return path if isinstance(fs, LocalFileSystem) else fs.unstrip_protocol(path)


def arrow_fs(fs: fsspec.AbstractFileSystem):
    """pyarrow's own filesystem for local files (faster than going through fsspec)."""
    return None if isinstance(fs, LocalFileSystem) else fs
