"""The ledger on storage: Parquet files, the manifest with checksums, reading and verifying.

Layout (DESIGN.md): manifest.json, consumers/cards/merchants/fraudsters/compromises.parquet
and a transactions/ dataset of part files sorted by consumer then time. A ledger lives at
any fsspec URL (a local path, file://, memory://, s3://, ...). Every file is written under
a temporary name and renamed when complete, so a half-written file is never visible
under its final name.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
from pathlib import Path

import fsspec
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem

from cardworld.errors import LedgerError

FORMAT = "cardworld-ledger/1"
MANIFEST = "manifest.json"
TABLES = ("consumers", "cards", "merchants", "fraudsters", "compromises")
ROW_GROUP_ROWS = 1 << 20
# The entity tables: zstd's fastest level (the merchants table, the largest, writes in
# 0.22 s instead of 0.34 s at level 3 for 5% more bytes; it is written after every block).
PARQUET_OPTIONS = {
    "compression": "zstd",
    "compression_level": 1,
    "row_group_size": ROW_GROUP_ROWS,
    "use_dictionary": True,
    "write_statistics": True,
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
    if out.resolve().is_relative_to(Path(ledger_dir).resolve()):
        raise error(f"{out}: lies inside the ledger {ledger_dir}; write it elsewhere")
    if out.exists() and not overwrite:
        raise error(f"{out}: already exists; choose another --out or pass --overwrite")


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


def read_parquet(fs: fsspec.AbstractFileSystem, path: str) -> pa.Table:
    with fs.open(path, "rb") as handle:
        return pq.read_table(handle)


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


def transactions(url: str | os.PathLike) -> ds.Dataset:
    """The transactions of a ledger as a pyarrow dataset (lazy; filter and project before reading)."""
    manifest = read_manifest(url)
    fs, root = storage(url)
    parts = [
        posixpath.join(root, rel) for rel in manifest["files"] if rel.startswith("transactions/")
    ]
    return ds.dataset(parts, format="parquet", filesystem=fs)


def read_table(url: str | os.PathLike, name: str) -> pa.Table:
    """One of the ledger's entity tables: consumers, cards, merchants, fraudsters or compromises."""
    if name not in TABLES:
        raise LedgerError(f"unknown ledger table {name!r}; expected one of {', '.join(TABLES)}")
    read_manifest(url)
    fs, root = storage(url)
    return read_parquet(fs, posixpath.join(root, f"{name}.parquet"))
