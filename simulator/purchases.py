"""One shard from consumers to ledger rows: population, timeline, purchase kernel, Arrow."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from cardworld.simulator.kernels import purchases as k
from cardworld.simulator.population import cards_table, consumers_table, sample_population
from cardworld.simulator.timeline import build_timeline
from cardworld.simulator.world_arrays import (
    CHANNELS,
    ERRORS,
    FRAUD_MECHANISMS,
    STATES,
    WorldArrays,
    WorldLabels,
)
from cardworld.worlds.schema import World

TXN_ID_STRIDE = (
    10_000_000  # txn_id = consumer_id * stride + the row's index in the consumer's history
)

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
    ]
)


@dataclass(frozen=True)
class ShardResult:
    consumers: pa.Table
    cards: pa.Table
    transactions: pa.Table
    merchant_ids: np.ndarray


def simulate_shard(
    world: World, arrays: WorldArrays, labels: WorldLabels, consumer_ids: np.ndarray
) -> ShardResult:
    """Simulate the consumers `consumer_ids` over the world's whole period."""
    consumers, cards = sample_population(world, arrays, consumer_ids)
    first_open = np.full(len(consumer_ids), np.iinfo(np.int64).max)
    np.minimum.at(first_open, cards.owner, cards.opened)
    first_day = np.maximum(first_open, arrays.start_day)
    segments = build_timeline(world, arrays, consumers, first_day)
    rows = k.simulate_purchases(
        arrays,
        consumer_ids,
        consumers.income,
        first_day,
        consumers.retirement_day,
        cards.offsets,
        cards.card_id,
        cards.kind,
        cards.opened,
        cards.chip_from,
        segments.offsets,
        segments.start,
        segments.end,
        segments.state,
        segments.city,
        segments.home_city,
        segments.epoch,
    )
    transactions = _to_arrow(rows, labels)
    return ShardResult(
        consumers=consumers_table(world, consumers, cards),
        cards=cards_table(consumers, cards),
        transactions=transactions,
        merchant_ids=np.unique(rows[:, k.C_MERCHANT]),
    )


def _dictionary(
    codes: np.ndarray, values: tuple[str, ...] | list[str], index_type, null_code: int | None = None
) -> pa.DictionaryArray:
    mask = codes == null_code if null_code is not None else None
    return pa.DictionaryArray.from_arrays(
        pa.array(codes.astype(index_type.to_pandas_dtype()), index_type, mask=mask),
        pa.array(list(values), pa.string()),
    )


def _to_arrow(rows: np.ndarray, labels: WorldLabels) -> pa.Table:
    mechanism = rows[:, k.C_FRAUD]
    columns = {
        "txn_id": rows[:, k.C_CONSUMER] * TXN_ID_STRIDE + rows[:, k.C_SEQ],
        "timestamp": pa.array(rows[:, k.C_TIME] * 1_000_000, pa.int64()).cast(pa.timestamp("us")),
        "consumer_id": rows[:, k.C_CONSUMER],
        "card_id": rows[:, k.C_CARD],
        "merchant_id": rows[:, k.C_MERCHANT],
        "mcc": np.array(labels.mcc_codes, np.int16)[rows[:, k.C_MCC_SLOT]],
        "category": _dictionary(rows[:, k.C_TYPE], labels.type_names, pa.int16()),
        "amount": rows[:, k.C_CENTS] / 100.0,
        "channel": _dictionary(rows[:, k.C_CHANNEL], CHANNELS, pa.int8()),
        "errors": _dictionary(rows[:, k.C_ERROR], ERRORS, pa.int8(), null_code=0),
        "is_fraud": mechanism != 0,
        "fraud_mechanism": _dictionary(mechanism, FRAUD_MECHANISMS, pa.int8(), null_code=0),
        "fraudster_id": pa.nulls(len(rows), pa.int64()),
        "consumer_state": _dictionary(rows[:, k.C_STATE], STATES, pa.int8()),
    }
    return pa.table(columns, schema=TRANSACTION_SCHEMA)
