"""Merchants: ids that carry their own address, and the table rows behind them.

A merchant id encodes what it is (a local shop, a chain store, a chain's web shop or an
independent web shop) with its city, chain, MCC and slot. Kernels pick merchants by
drawing those parts, never holding a merchant list; the ledger's merchants table
holds only the merchants that transactions reference, each row derived from its id.
So a world has millions of potential locations at no memory cost, and merchant 123 is
the same shop in every run of the world.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from cardworld.simulator import rng
from cardworld.simulator.kernels.purchases import (
    CHAIN_ONLINE,
    CHAIN_STORE,
    INDEPENDENT_ONLINE,
    KIND_SHIFT,
    LOCAL,
)
from cardworld.simulator.names import by_row, company_names
from cardworld.simulator.world_arrays import WorldArrays, WorldLabels
from cardworld.worlds import reference

MERCHANT_KINDS = {
    LOCAL: "local",
    CHAIN_STORE: "chain_store",
    CHAIN_ONLINE: "chain_online",
    INDEPENDENT_ONLINE: "independent_online",
}


def decode(ids: np.ndarray) -> dict[str, np.ndarray]:
    """Split merchant ids into kind, city (-1 online), chain (-1 independent), MCC slot and slot."""
    ids = np.asarray(ids, dtype=np.int64)
    kind = ids >> KIND_SHIFT
    low20 = ids & 0xFFFFF
    city = np.full(len(ids), -1, np.int64)
    chain = np.full(len(ids), -1, np.int64)
    mcc_slot = np.full(len(ids), -1, np.int64)
    local, store, online, indep = (
        kind == LOCAL,
        kind == CHAIN_STORE,
        kind == CHAIN_ONLINE,
        kind == INDEPENDENT_ONLINE,
    )
    city[local] = (ids[local] >> 32) & 0x3FFFFFF
    mcc_slot[local | indep] = (ids[local | indep] >> 20) & 0xFFF
    city[store] = (ids[store] >> 20) & 0xFFFFF
    chain[store] = (ids[store] >> 40) & 0x3FFFF
    chain[online] = ids[online] & 0xFFFFFFFFFF
    return {
        "kind": kind,
        "city": city,
        "chain": chain,
        "mcc_slot": mcc_slot,
        "slot": np.where(online, 0, low20),
    }


@functools.cache
def _city_labels() -> tuple[pa.Array, pa.Array, pa.Array]:
    """Every city's name, state and country as Arrow arrays, converted once: 5 ms a call of
    merchants_table, which runs once a block."""
    cities = reference.cities()
    return pa.array(cities.name), pa.array(cities.state), pa.array(cities.country)


def merchants_table(ids: np.ndarray, arrays: WorldArrays, labels: WorldLabels) -> pa.Table:
    """Rows of merchants.parquet for the given (unique) merchant ids, in id order."""
    ids = np.asarray(ids, dtype=np.int64)
    if not (ids[1:] > ids[:-1]).all():  # a run's merchants arrive sorted and unique
        ids = np.sort(pd.unique(ids))  # a hash, then sort: faster than np.unique
    parts = decode(ids)
    has_chain = parts["chain"] >= 0
    mcc_slot = np.where(
        has_chain, arrays.chain_mcc_slot[np.maximum(parts["chain"], 0)], parts["mcc_slot"]
    )
    cities = reference.cities()
    city = parts["city"]
    in_city = city >= 0
    safe_city = np.maximum(city, 0)
    n_zips = np.diff(cities.zip_offsets)[safe_city]
    draws = rng.first_uniforms(arrays.seed, ids, rng.MERCHANT, 5)
    jitter = draws[:, 0] - 0.5
    zips = np.where(
        in_city & (n_zips > 0),
        cities.zip_codes[
            np.minimum(
                cities.zip_offsets[safe_city] + parts["slot"] % np.maximum(n_zips, 1),
                len(cities.zip_codes) - 1,
            )
        ],
        -1,
    )

    chained, own = np.flatnonzero(has_chain), np.flatnonzero(~has_chain)
    names = by_row(
        len(ids),
        (chained, pa.array(labels.chain_names).take(pa.array(parts["chain"][chained]))),
        (own, company_names(draws[own, 1:], parts["kind"][own] == INDEPENDENT_ONLINE)),
    )
    online = ~in_city
    where = pa.array(safe_city, mask=online)  # the merchant's city; null online
    city_names, states, countries = _city_labels()
    return pa.table(
        {
            "merchant_id": pa.array(ids, pa.int64()),
            "name": names,
            "mcc": pa.array(np.array(labels.mcc_codes, np.int16)[mcc_slot], pa.int16()),
            "kind": pa.DictionaryArray.from_arrays(
                pa.array(parts["kind"] - LOCAL, pa.int32()),
                pa.array([MERCHANT_KINDS[k] for k in range(LOCAL, INDEPENDENT_ONLINE + 1)]),
            ),
            "chain": pa.array(labels.chain_names).take(pa.array(parts["chain"], mask=~has_chain)),
            "store_number": pa.array(
                np.where(parts["kind"] == CHAIN_STORE, parts["slot"] + 1, 0),
                mask=parts["kind"] != CHAIN_STORE,
            ),
            "online": pa.array(online),
            "city": city_names.take(where),
            "state": states.take(where),
            "country": countries.take(where),
            "zip": pc.utf8_lpad(
                pa.array(zips, mask=zips < 0).cast(pa.string()), width=5, padding="0"
            ),
            "lat": pa.array(
                np.where(in_city, cities.lat[safe_city] + 0.04 * jitter, np.nan), mask=online
            ),
            "lon": pa.array(
                np.where(in_city, cities.lon[safe_city] - 0.04 * jitter, np.nan), mask=online
            ),
        }
    )
