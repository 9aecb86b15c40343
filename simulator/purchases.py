"""One shard from consumers to ledger rows: population, timeline, purchase kernel, Arrow."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from cardworld.simulator.fraud import Fraudsters, compromises_table
from cardworld.simulator.kernels import fraud as kf
from cardworld.simulator.kernels import purchases as k
from cardworld.simulator.ledger import TRANSACTION_SCHEMA
from cardworld.simulator.population import (
    cards_table,
    consumers_table,
    homes_table,
    sample_population,
    with_replacements,
)
from cardworld.simulator.timeline import build_timeline
from cardworld.simulator.world_arrays import (
    CHANNELS,
    ERRORS,
    FRAUD_MECHANISMS,
    FRAUD_METHODS,
    STATES,
    WorldArrays,
    WorldLabels,
)
from cardworld.worlds.schema import World

TXN_ID_STRIDE = (
    10_000_000  # txn_id = consumer_id * stride + the row's index in the consumer's history
)


@dataclass(frozen=True)
class ShardResult:
    consumers: pa.Table
    cards: pa.Table
    transactions: pa.Table
    compromises: pa.Table
    homes: pa.Table
    merchant_ids: np.ndarray


def simulate_shard(
    world: World,
    arrays: WorldArrays,
    labels: WorldLabels,
    fraud: Fraudsters,
    consumer_ids: np.ndarray,
) -> ShardResult:
    """Simulate the consumers `consumer_ids` over the world's whole period."""
    consumers, cards = sample_population(world, arrays, consumer_ids)
    first_open = np.full(len(consumer_ids), np.iinfo(np.int64).max)
    np.minimum.at(first_open, cards.owner, cards.opened)
    first_day = np.maximum(first_open, arrays.start_day)
    segments = build_timeline(world, arrays, consumers, first_day)
    buf, n = _purchase_rows(world, arrays, consumer_ids, consumers, cards, first_day, segments)
    buf, n, records, replacements = kf.simulate_fraud(
        arrays, fraud.arrays, buf, n, consumer_ids, consumers.home_city,
        cards.offsets, cards.card_id, cards.kind, cards.opened, cards.chip_from,
        segments.offsets, segments.start, segments.end, segments.state,
        np.empty((k.N_COLUMNS, 1024), np.int64),
    )  # fmt: skip
    _kept.purchases = buf  # grown if the fraudsters' rows did not fit
    rows = buf[:, :n]
    validity = int(world.spec.cards.validity_years * 365.2425)
    all_cards, replaces = with_replacements(
        arrays.seed, cards, replacements, validity, arrays.chip_card_share, arrays.first_year
    )
    # A card blocked by several compromises is blocked from the earliest; -1 if never.
    never = np.iinfo(np.int64).max
    blocked = records[records[:, kf.K_BLOCKED_AT] >= 0]
    blocked_at = np.full(len(all_cards.card_id), never)
    where = np.searchsorted(all_cards.card_id, blocked[:, kf.K_CARD])
    np.minimum.at(blocked_at, where, blocked[:, kf.K_BLOCKED_AT])
    blocked_at[blocked_at == never] = -1
    return ShardResult(
        consumers=consumers_table(world, consumers, all_cards),
        cards=cards_table(consumers, all_cards, blocked_at, replaces),
        transactions=_to_arrow(rows, labels),
        compromises=compromises_table(records, fraud.breaches),
        homes=homes_table(world, arrays, consumers, segments),
        merchant_ids=np.sort(pd.unique(rows[k.C_MERCHANT])),
    )


def expected_rows(world: World) -> float:
    """Purchases a consumer makes over the world's period on average (by the goods types'
    rates; refunds and fraud add a few percent)."""
    goods = world.tables["goods"]
    per_year = float((goods["participation"] * goods["rate_per_year"]).sum())
    sim = world.spec.simulation
    return per_year * ((sim.end - sim.start).days + 1) / 365.2425


def _purchase_rows(world, arrays, consumer_ids, consumers, cards, first_day, segments):
    """The purchase kernel's rows: (buffer, rows), the rows in the buffer's first columns.
    The buffer has room for the expected rows and a quarter more, doubled whenever a
    consumer does not fit; it is this thread's kept one (`_kept_buffer`): the rows are
    valid until its next block."""
    capacity = int(1.25 * expected_rows(world) * len(consumer_ids)) + 4096
    buf = _kept_buffer("purchases", capacity)
    done = n = 0
    while True:
        done, n = k.simulate_purchases(
            arrays, consumer_ids, consumers.income, first_day, consumers.retirement_day,
            cards.offsets, cards.card_id, cards.kind, cards.opened, cards.chip_from,
            cards.limit, segments.offsets, segments.start, segments.end, segments.state,
            segments.city, segments.home_city, segments.epoch, buf, done, n,
        )  # fmt: skip
        if done == len(consumer_ids):
            return buf, n
        # Consumer `done` did not fit: double the room and go on from it (same draws).
        bigger = np.empty((k.N_COLUMNS, 2 * buf.shape[1]), np.int64)
        bigger[:, :n] = buf[:, :n]
        buf = _kept.purchases = bigger


_kept = threading.local()


def _kept_buffer(name: str, capacity: int) -> np.ndarray:
    """A (N_COLUMNS, >= capacity) int64 scratch buffer that this thread keeps for its next
    block, so its pages are touched once, not once a block.

    NOTE: a block's buffer is a hundred megabytes or more; a fresh one is mapped anew and
    every page faults on first touch: copying a 790k-row block's rows took 92 ms into a
    fresh buffer, 46 ms into a kept one. Kept per thread, since Dask may run blocks on
    threads side by side.
    """
    buf = getattr(_kept, name, None)
    if buf is None or buf.shape[1] < capacity:
        buf = np.empty((k.N_COLUMNS, capacity), np.int64)
        setattr(_kept, name, buf)
    return buf


def release_buffers() -> None:
    """Let go of the buffers this thread keeps (`_kept_buffer`): when its blocks are done."""
    vars(_kept).clear()


def _dictionary(codes: np.ndarray, values, index_type, none: bool = False) -> pa.DictionaryArray:
    """Codes into `values` as a dictionary column. With `none`, code 0 (values[0], the
    kernels' "no error", "no fraud") is null and left out of the dictionary, so that its
    categories are only the real ones."""
    mask = None
    values = list(values)
    if none:
        mask = codes == 0
        codes = np.where(mask, 0, codes - 1)
        values = values[1:]
    indices = pa.array(codes.astype(index_type.to_pandas_dtype()), index_type, mask=mask)
    return pa.DictionaryArray.from_arrays(indices, pa.array(values, pa.string()))


def _to_arrow(rows: np.ndarray, labels: WorldLabels) -> pa.Table:
    """The ledger's transactions from the kernels' (N_COLUMNS, r) matrix. Every column is a
    copy: the matrix is a kept buffer (`_kept_buffer`), overwritten by the next block."""
    mechanism = rows[k.C_FRAUD]
    columns = {
        "txn_id": rows[k.C_CONSUMER] * TXN_ID_STRIDE + rows[k.C_SEQ],
        "timestamp": pa.array(rows[k.C_TIME] * 1_000_000, pa.int64()).cast(pa.timestamp("us")),
        "consumer_id": rows[k.C_CONSUMER].copy(),
        "card_id": rows[k.C_CARD].copy(),
        "merchant_id": rows[k.C_MERCHANT].copy(),
        "mcc": np.array(labels.mcc_codes, np.int16)[rows[k.C_MCC_SLOT]],
        "category": _dictionary(rows[k.C_TYPE], labels.type_names, pa.int16()),
        "amount": rows[k.C_CENTS] / 100.0,
        "channel": _dictionary(rows[k.C_CHANNEL], CHANNELS, pa.int8()),
        "errors": _dictionary(rows[k.C_ERROR], ERRORS, pa.int8(), none=True),
        "is_fraud": mechanism != 0,
        "fraud_mechanism": _dictionary(mechanism, FRAUD_MECHANISMS, pa.int8(), none=True),
        "fraudster_id": pa.array(
            rows[k.C_FRAUDSTER].copy(), pa.int64(), mask=rows[k.C_FRAUDSTER] < 0
        ),
        "consumer_state": _dictionary(rows[k.C_STATE], STATES, pa.int8()),
        "fraud_method": _dictionary(rows[k.C_METHOD], FRAUD_METHODS, pa.int8(), none=True),
        "compromise_id": pa.array(
            rows[k.C_COMPROMISE].copy(), pa.int64(), mask=rows[k.C_COMPROMISE] < 0
        ),
    }
    return pa.table(columns, schema=TRANSACTION_SCHEMA)
