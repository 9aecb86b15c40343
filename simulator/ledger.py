"""The ledger on disk: Parquet files, the manifest with checksums, reading and verifying.

Layout (DESIGN.md): manifest.json, consumers/cards/merchants/fraudsters.parquet and a
transactions/ dataset of part files sorted by consumer then time. Every file is written
under a temporary name and renamed when complete, so a half-written file is never
visible under its final name.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from cardworld.errors import LedgerError

FORMAT = "cardworld-ledger/1"
MANIFEST = "manifest.json"
TABLES = ("consumers", "cards", "merchants", "fraudsters", "compromises")
ROW_GROUP_ROWS = 1 << 20


def write_parquet(table: pa.Table, path: Path) -> None:
    """Write a Parquet file atomically (temporary name, fsync, rename)."""
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(
        table,
        tmp,
        compression="zstd",
        compression_level=3,
        row_group_size=ROW_GROUP_ROWS,
        use_dictionary=True,
        write_statistics=True,
    )
    with open(tmp, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(directory: Path, manifest: dict) -> None:
    """Add checksums of every data file and write manifest.json atomically."""
    files = {}
    for path in sorted(directory.rglob("*.parquet")):
        rel = path.relative_to(directory).as_posix()
        files[rel] = {
            "sha256": sha256(path),
            "bytes": path.stat().st_size,
            "rows": pq.ParquetFile(path).metadata.num_rows,
        }
    manifest = {**manifest, "files": files}
    tmp = directory / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, directory / MANIFEST)


def read_manifest(directory: str | Path) -> dict:
    path = Path(directory) / MANIFEST
    if not path.is_file():
        raise LedgerError(f"{directory}: not a cardworld ledger (no {MANIFEST})")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise LedgerError(f"{path}: not valid JSON: {exc}") from None
    if manifest.get("format") != FORMAT:
        raise LedgerError(f"{path}: 'format' must be {FORMAT!r}, found {manifest.get('format')!r}")
    return manifest


def verify(directory: str | Path) -> list[str]:
    """Problems found checking a ledger against its manifest (empty when intact)."""
    directory = Path(directory)
    manifest = read_manifest(directory)
    problems = []
    for rel, expected in manifest["files"].items():
        path = directory / rel
        if not path.is_file():
            problems.append(f"missing: {rel}")
        elif path.stat().st_size != expected["bytes"] or sha256(path) != expected["sha256"]:
            problems.append(f"corrupted: {rel} (checksum differs from the manifest)")
    listed = set(manifest["files"])
    for path in sorted(directory.rglob("*.parquet")):
        rel = path.relative_to(directory).as_posix()
        if rel not in listed:
            problems.append(f"unexpected: {rel} (not in the manifest)")
    return problems


def transactions(directory: str | Path) -> ds.Dataset:
    """The transactions of a ledger as a pyarrow dataset (lazy; filter and project before reading)."""
    read_manifest(directory)
    return ds.dataset(Path(directory) / "transactions", format="parquet")


def read_table(directory: str | Path, name: str) -> pa.Table:
    """One of the ledger's entity tables: consumers, cards, merchants or fraudsters."""
    if name not in TABLES:
        raise LedgerError(f"unknown ledger table {name!r}; expected one of {', '.join(TABLES)}")
    read_manifest(directory)
    return pq.read_table(Path(directory) / f"{name}.parquet")
