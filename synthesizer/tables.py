"""Reading and writing the tables the synthesizer learns: CSV, Parquet or a cardworld ledger."""

from __future__ import annotations

import os
import posixpath
import secrets
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from cardworld.errors import DataError, reason
from cardworld.simulator import ledger
from cardworld.synthesizer.schema import looks_like_datetime

SUFFIXES = (".csv", ".parquet", ".pq")


@dataclass
class Table:
    """Events, and for a ledger its subject table and default keys."""

    events: pd.DataFrame
    subjects: pd.DataFrame | None = None
    group_by: str | None = None
    order_by: str | None = None


def read_table(path: str | Path) -> Table:
    """A CSV/Parquet file, or a ledger directory (transactions/ grouped by consumers.parquet);
    a local path or an fsspec URL."""
    fs, root = ledger.storage(path)
    if fs.isdir(root):
        if not fs.isdir(posixpath.join(root, "transactions")):
            raise DataError(
                f"{path} is a directory without transactions/; expected a cardworld ledger "
                "directory or a CSV/Parquet file"
            )
        events, subjects = _ledger_tables(path)
        if subjects is not None and "consumer_id" not in subjects.columns:
            subjects = None
        if subjects is not None:
            # Keep only subject attributes that are not already event columns.
            keep = ["consumer_id"] + [c for c in subjects.columns if c not in events.columns]
            subjects = subjects[keep]
        return Table(events, subjects, "consumer_id", "timestamp")
    if not fs.exists(root):
        raise DataError(f"input {path} does not exist; expected a CSV/Parquet file or a ledger")
    suffix = Path(root).suffix.lower()
    if suffix not in SUFFIXES:
        raise DataError(
            f"input {path} has suffix {suffix!r}; expected one of {SUFFIXES} or a ledger"
        )
    try:
        with fs.open(root, "rb") as handle:
            if suffix == ".csv":
                events = parse_dates(pd.read_csv(handle))
            else:
                events = pd.read_parquet(handle)
    except DataError as exc:
        raise DataError(f"input {path}: {exc}") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"input {path} is empty; expected a CSV file with a header row") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError, OSError) as exc:
        # A malformed CSV (an unclosed quote, a cut-off last line) or a damaged Parquet file.
        what = "CSV with a header row" if suffix == ".csv" else "Parquet file"
        raise DataError(f"input {path} cannot be read ({reason(exc)}); expected a {what}") from None
    if events.empty:
        raise DataError(f"input {path} has no rows (columns {list(events.columns)}); expected rows")
    return Table(events)


def _ledger_tables(url: str | Path) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """A ledger's transactions (the manifest's part files, each checked and its pages'
    checksums verified; every column of the first file) and consumers, if any."""
    fs, files = ledger.transaction_files(url)
    if files:
        with fs.open(files[0], "rb") as handle:
            names = pq.read_schema(handle).names
    else:
        names = list(ledger.TRANSACTION_SCHEMA.names)
    events = ledger.read_transactions(url, names).to_pandas()
    _, root = ledger.storage(url)
    consumers = posixpath.join(root, "consumers.parquet")
    if not fs.exists(consumers):
        return events, None
    if fs.exists(posixpath.join(root, ledger.MANIFEST)):
        return events, ledger.read_table(url, "consumers").to_pandas()
    with fs.open(consumers, "rb") as handle:  # a ledger made by hand, without a manifest
        return events, pd.read_parquet(handle)


def check_output_suffix(path: Path) -> None:
    if path.suffix.lower() not in SUFFIXES:
        raise DataError(
            f"output {path} has suffix {path.suffix.lower()!r}; expected one of {SUFFIXES}"
        )


def write_table(df: pd.DataFrame, path: str | Path) -> Path:
    """Write ``df`` under a temporary name beside ``path`` and rename it into place, so a
    failed write leaves what ``path`` held before."""
    path = Path(path)
    check_output_suffix(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name[:64]}.{secrets.token_hex(4)}.tmp")
    try:
        if path.suffix.lower() == ".csv":
            df.to_csv(tmp, index=False)
        else:
            df.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def parse_dates(df: pd.DataFrame) -> pd.DataFrame:
    """Turn ISO date strings (as CSV stores datetimes) into datetimes; tz-aware become naive."""
    df = df.copy()
    for c in df.columns:
        if df[c].dtype == object or pd.api.types.is_string_dtype(df[c]):
            if looks_like_datetime(df[c].astype(object)):
                try:
                    df[c] = pd.to_datetime(df[c], format="mixed")
                except (ValueError, OverflowError) as exc:  # pandas' DateParseError is one
                    raise DataError(
                        f"column {c!r}: looks like datetimes, but {reason(exc)}"
                    ) from None
        if isinstance(df[c].dtype, pd.DatetimeTZDtype):
            df[c] = df[c].dt.tz_localize(None)
    return df
