"""Consumers and their cards for one shard: kernels draw the numbers, this names them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from cardworld.simulator import rng
from cardworld.simulator.kernels.calendar import civil_from_days
from cardworld.simulator.kernels.population import (
    DAYS_PER_YEAR,
    NEVER,
    pan,
    sample_cards,
    sample_consumers,
)
from cardworld.simulator.names import person_names, street_addresses
from cardworld.simulator.world_arrays import WorldArrays, copula_cholesky
from cardworld.worlds import reference
from cardworld.worlds.schema import BRANDS, CARD_KINDS, World

if TYPE_CHECKING:
    from cardworld.simulator.timeline import Segments

MAX_CARDS = 12
CARD_ID_STRIDE = 100  # card_id = consumer_id * 100 + slot: room for replacements


@dataclass(frozen=True)
class Consumers:
    ids: np.ndarray  # (n,) int64
    birth_day: np.ndarray
    female: np.ndarray
    income: np.ndarray
    credit_score: np.ndarray
    home_city: np.ndarray
    retirement_day: np.ndarray
    adult_day: np.ndarray  # the day the consumer turns 18


@dataclass(frozen=True)
class Cards:
    """Cards of a shard as CSR over its consumers (cards of consumer i at offsets[i]:offsets[i+1])."""

    offsets: np.ndarray  # (n+1,)
    card_id: np.ndarray
    owner: np.ndarray  # index into the shard's consumers
    kind: np.ndarray
    brand: np.ndarray
    opened: np.ndarray
    chip_from: np.ndarray
    expires: np.ndarray
    limit: np.ndarray
    pan: np.ndarray
    cvv: np.ndarray


def sample_population(
    world: World, arrays: WorldArrays, consumer_ids: np.ndarray
) -> tuple[Consumers, Cards]:
    spec = world.spec
    pop, cards_spec = spec.population, spec.cards
    ages = world.tables["ages"]
    birth, female, income, credit, home, retire = sample_consumers(
        consumer_ids,
        arrays.seed,
        copula_cholesky(world),
        np.cumsum(ages["share"].to_numpy(np.float64)),
        ages["age_from"].to_numpy(np.int64),
        ages["age_to"].to_numpy(np.int64),
        arrays.end_day,
        pop.female_share,
        pop.income_median,
        pop.income_sigma,
        pop.credit_score_mean,
        pop.credit_score_sd,
        pop.retirement_age_mean,
        pop.retirement_age_sd,
        arrays.home_city_cum,
    )
    adult = _birthday(birth, 18)
    consumers = Consumers(consumer_ids, birth, female, income, credit, home, retire, adult)

    kind_cum = np.cumsum([cards_spec.kind_shares.get(k, 0.0) for k in CARD_KINDS])
    brand_cum = np.cumsum([cards_spec.brand_shares.get(b, 0.0) for b in BRANDS])
    credit_only = np.array([b in ("amex", "discover") for b in BRANDS])
    owner, slot, kind, brand, opened, chip_from, expires, limit, pan, cvv = sample_cards(
        consumer_ids,
        arrays.seed,
        income,
        adult,
        arrays.start_day,
        arrays.end_day,
        cards_spec.extra_cards_mean,
        cards_spec.extra_cards_income_elasticity,
        pop.income_median,
        kind_cum,
        brand_cum,
        credit_only,
        int(cards_spec.account_opened_years_before_start_max * DAYS_PER_YEAR),
        int(cards_spec.validity_years * DAYS_PER_YEAR),
        arrays.chip_card_share,
        arrays.first_year,
        cards_spec.credit_limit_median,
        cards_spec.credit_limit_income_elasticity,
        MAX_CARDS,
    )
    offsets = np.searchsorted(owner, np.arange(len(consumer_ids) + 1)).astype(np.int64)
    cards = Cards(
        offsets,
        consumer_ids[owner] * CARD_ID_STRIDE + slot,
        owner,
        kind,
        brand,
        opened,
        chip_from,
        expires,
        limit,
        pan,
        cvv,
    )
    return consumers, cards


def _days_to_dates(days: np.ndarray) -> pa.Array:
    return pa.array(days.astype("int32"), type=pa.int32()).cast(pa.date32())


def consumers_table(world: World, consumers: Consumers, cards: Cards) -> pa.Table:
    """The consumers.parquet rows of a shard: demographics, a fake identity, the home."""
    cities = reference.cities()
    u = rng.first_uniforms(world.spec.simulation.seed, consumers.ids, rng.IDENTITY, 8)
    first, last = person_names(u[:, :2], consumers.female)
    street = street_addresses(u[:, 2:])
    home = consumers.home_city
    zips = _zip_codes(cities, home, consumers.ids, np.zeros_like(home))
    n_cards = np.diff(cards.offsets)
    return pa.table(
        {
            "consumer_id": pa.array(consumers.ids, pa.int64()),
            "first_name": first,
            "last_name": last,
            "gender": np.where(consumers.female, "F", "M").tolist(),
            "birth_date": _days_to_dates(consumers.birth_day),
            "retirement_date": _days_to_dates(consumers.retirement_day),
            "address": street,
            "city": cities.name[home].tolist(),
            "state": cities.state[home].tolist(),
            "zip": [f"{z:05d}" for z in zips],
            "lat": cities.lat[home],
            "lon": cities.lon[home],
            "income": consumers.income,
            "credit_score": pa.array(consumers.credit_score, pa.int16()),
            "num_cards": pa.array(n_cards, pa.int16()),
        }
    )


def homes_table(
    world: World, arrays: WorldArrays, consumers: Consumers, segments: Segments
) -> pa.Table:
    """The homes.parquet rows of a shard: each consumer's homes in turn, the first (as in
    consumers.parquet) from the world's start, each later one from the day of the move
    that led there, each until the next (null for the last)."""
    cities = reference.cities()
    n_segments = np.diff(segments.offsets)
    owner = np.repeat(np.arange(len(consumers.ids)), n_segments)
    new = np.ones(len(owner), dtype=bool)
    new[1:] = (segments.epoch[1:] != segments.epoch[:-1]) | (owner[1:] != owner[:-1])
    rows = np.flatnonzero(new)
    owner, epoch, home = owner[rows], segments.epoch[rows], segments.home_city[rows]
    ids = consumers.ids[owner]
    since = np.where(epoch == 0, arrays.start_day, segments.start[rows])
    moved_on = np.append(since[1:], 0)
    last = np.append(owner[1:] != owner[:-1], True)
    seed = world.spec.simulation.seed
    # The first home's street is consumers.parquet's; each later one draws its own.
    u = rng.first_uniforms(seed, ids, rng.IDENTITY, 8)[:, 2:]
    for r in np.flatnonzero(epoch > 0):
        u[r] = rng.stream_uniforms(seed, int(ids[r]), rng.IDENTITY, 0, 6, int(epoch[r]))
    return pa.table(
        {
            "consumer_id": pa.array(ids, pa.int64()),
            "home_from": _days_to_dates(since),
            "home_to": pa.array(moved_on.astype("int32"), mask=last).cast(pa.date32()),
            "address": street_addresses(u),
            "city": cities.name[home].tolist(),
            "state": cities.state[home].tolist(),
            "zip": [f"{z:05d}" for z in _zip_codes(cities, home, ids, epoch)],
            "lat": cities.lat[home],
            "lon": cities.lon[home],
        }
    )


def _zip_codes(cities, home: np.ndarray, ids: np.ndarray, epoch: np.ndarray) -> np.ndarray:
    """A ZIP code of each consumer's home city, the same for a consumer and home epoch."""
    n_zips = np.maximum(1, np.diff(cities.zip_offsets)[home])
    return cities.zip_codes[cities.zip_offsets[home] + (ids + epoch * 7919) % n_zips]


def cards_table(
    consumers: Consumers, cards: Cards, blocked_at: np.ndarray, replaces: np.ndarray
) -> pa.Table:
    """The cards.parquet rows of a shard.

    blocked_at: (m,) int64 seconds when the card was blocked, -1 if never; replaces: (m,)
    int64 the card a replacement replaces, -1 for original cards.
    """
    chip_from = np.where(cards.chip_from == NEVER, 0, cards.chip_from)  # masked below
    return pa.table(
        {
            "card_id": pa.array(cards.card_id, pa.int64()),
            "consumer_id": pa.array(consumers.ids[cards.owner], pa.int64()),
            "kind": pa.array(np.array(CARD_KINDS)[cards.kind]).dictionary_encode(),
            "brand": pa.array(np.array(BRANDS)[cards.brand]).dictionary_encode(),
            "card_number": [str(p) for p in cards.pan],
            "cvv": pa.array(cards.cvv, pa.int16()),
            "opened": _days_to_dates(cards.opened),
            "expires": _days_to_dates(cards.expires),
            "has_chip": pa.array(cards.chip_from != NEVER),
            "chip_since": pa.array(chip_from.astype("int32"), mask=cards.chip_from == NEVER).cast(
                pa.date32()
            ),
            "credit_limit": cards.limit,
            "replaces": pa.array(replaces, pa.int64(), mask=replaces < 0),
            "blocked_at": pa.array(
                np.maximum(blocked_at, 0) * 1_000_000, pa.int64(), mask=blocked_at < 0
            ).cast(pa.timestamp("us")),
        }
    )


def with_replacements(
    seed: int,
    cards: Cards,
    reps: np.ndarray,
    validity_days: int,
    chip_card_share: np.ndarray,
    first_year: int,
) -> tuple[Cards, np.ndarray]:
    """Cards plus the replacements of blocked cards, in consumer then slot order.

    reps: (p, 4) int64 rows of old card index, new card id, opened day, owner index.
    Returns the cards and, per card, the card id it replaces (-1 for originals).
    """
    old = reps[:, 0]
    new_ids = reps[:, 1]
    opened = reps[:, 2]
    chip_from = cards.chip_from[old].copy()
    pans, cvvs = [], []
    for i, card in enumerate(new_ids):
        st = rng.stream(seed, card, rng.CARDS)
        year = min(max(civil_from_days(opened[i])[0] - first_year, 0), len(chip_card_share) - 1)
        if chip_from[i] == NEVER and rng.uniform(st) < chip_card_share[year]:
            chip_from[i] = opened[i]
        elif chip_from[i] != NEVER:
            chip_from[i] = max(chip_from[i], opened[i])
        pans.append(pan(st, cards.brand[old[i]]))
        cvvs.append(rng.integer(st, 900) + 100)
    merged = {
        "card_id": np.concatenate([cards.card_id, new_ids]),
        "owner": np.concatenate([cards.owner, reps[:, 3]]),
        "kind": np.concatenate([cards.kind, cards.kind[old]]),
        "brand": np.concatenate([cards.brand, cards.brand[old]]),
        "opened": np.concatenate([cards.opened, opened]),
        "chip_from": np.concatenate([cards.chip_from, chip_from]),
        "expires": np.concatenate([cards.expires, opened + validity_days]),
        "limit": np.concatenate([cards.limit, cards.limit[old]]),
        "pan": np.concatenate([cards.pan, np.array(pans, np.int64)]),
        "cvv": np.concatenate([cards.cvv, np.array(cvvs, np.int16)]),
    }
    replaces = np.concatenate([np.full(len(cards.card_id), -1), cards.card_id[old]])
    order = np.argsort(merged["card_id"], kind="stable")
    merged = {k: v[order] for k, v in merged.items()}
    offsets = np.searchsorted(merged["owner"], np.arange(len(cards.offsets))).astype(np.int64)
    return Cards(offsets=offsets, **merged), replaces[order]


def _birthday(birth: np.ndarray, years: int) -> np.ndarray:
    """The day (days since 1970) each of `birth` (the same) turns `years` old; 29 February
    births on 1 March in common years."""
    day = birth.astype("datetime64[D]")
    month = day.astype("datetime64[M]")
    into_month = day - month.astype("datetime64[D]")
    into_year = month - day.astype("datetime64[Y]").astype("datetime64[M]")
    later = (day.astype("datetime64[Y]") + years).astype("datetime64[M]") + into_year
    return (later.astype("datetime64[D]") + into_month).astype(np.int64)
