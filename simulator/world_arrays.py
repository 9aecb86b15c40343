"""A loaded world turned into the flat numpy arrays the kernels read.

Kernels take only arrays and scalars; this module is the one place where world tables
become those arrays (cumulative weights, CSR offsets, per-year drift), so every kernel
sees the same numbers. Built once per process and per world.
"""

from __future__ import annotations

import datetime as dt
from typing import NamedTuple

import numpy as np
import pandas as pd

from cardworld.simulator import rng
from cardworld.simulator.home_cities import home_city_weights
from cardworld.worlds import reference
from cardworld.worlds.load import correlation_matrix
from cardworld.worlds.schema import ABROAD, CARD_KINDS, TRIP_KINDS, World

STATES = ("home", "getaway", "vacation", "business")
CHANNELS = ("swipe", "chip", "online")
ERRORS = (
    "",
    "Insufficient Balance",
    "Bad PIN",
    "Technical Glitch",
    "Bad CVV",
    "Bad Expiration",
    "Bad Card Number",
    "Bad Zipcode",
    "Card Blocked",
)
FRAUD_MECHANISMS = ("", "random", "fraudster")
FRAUD_METHODS = (
    "",
    "random",
    "card_testing",
    "cnp_burst",
    "counterfeit",
    "high_value",
    "lost_stolen",
)
COMPROMISE_KINDS = ("breach", "skimming", "phishing", "lost_stolen")


def day_number(date: dt.date) -> int:
    return (date - reference.EPOCH).days


class WorldArrays(NamedTuple):
    """Every number a kernel needs, as arrays. Shapes: T types, M MCCs, C chains, N cities.

    A NamedTuple of arrays and scalars only, so numba kernels take it as one argument.
    """

    seed: int
    start_day: int
    end_day: int  # inclusive
    # goods types (T,)
    participation: np.ndarray
    rate: np.ndarray
    rate_shape: np.ndarray
    income_elasticity: np.ndarray
    amount_median: np.ndarray
    amount_sigma: np.ndarray
    amount_income_elasticity: np.ndarray
    round_share: np.ndarray  # chance a ticket is a round sum
    round_cents: np.ndarray  # (T,) int64: of a multiple of this many cents
    hour_cum: np.ndarray  # (T, 24) cumulative hour-of-day weights
    hour_guide: np.ndarray  # (T, 32) rng.guided_pick tables over hour_cum
    weekday_factor: np.ndarray  # (T, 7) Monday first, mean 1
    season_factor: np.ndarray  # (T, 12) mean 1
    holiday_factor: np.ndarray  # on public holidays and shopping days
    closed_factor: np.ndarray  # on the days most shops shut
    state_factor: np.ndarray  # (T, 4) home, getaway, vacation, business
    retired_factor: np.ndarray
    online_share: np.ndarray
    recurring: np.ndarray  # (T,) bool: a monthly bill
    refund_rate: np.ndarray
    # type -> MCC, CSR over types
    type_mcc_offsets: np.ndarray  # (T+1,)
    type_mcc_slot: np.ndarray  # (K,) index into the MCC arrays
    type_mcc_cum: np.ndarray  # (K,) cumulative weights within each type's segment
    # MCCs (M,)
    mcc_code: np.ndarray  # int16
    mcc_local_density: np.ndarray  # local shops per person
    mcc_card_present: np.ndarray  # bool
    mcc_chain_share: np.ndarray  # P(a card-present purchase goes to a chain)
    # chains per MCC, CSR over MCC slots
    mcc_chain_offsets: np.ndarray  # (M+1,)
    mcc_chain: np.ndarray  # (L,) chain index
    mcc_chain_cum_store: np.ndarray  # (L,) cumulative weight of chains with stores
    mcc_chain_cum_online: np.ndarray  # (L,) cumulative weight of chains selling online
    chain_mcc_slot: np.ndarray  # (C,)
    chain_density: np.ndarray  # (C,) locations per person
    # cities (N,), US first
    n_us_cities: int
    city_lat: np.ndarray  # radians
    city_lon: np.ndarray  # radians
    city_population: np.ndarray
    home_city_cum: np.ndarray  # (n_us,) cumulative home weights (simulator/home_cities.py)
    foreign_city_cum: np.ndarray  # (N - n_us,) cumulative population of foreign cities
    trip_city_cum: np.ndarray  # (N - n_us,) cumulative weights of foreign trip destinations
    nearby_offsets: np.ndarray  # (n_us+1,)
    nearby_city: np.ndarray  # (n_us * k,)
    nearby_cum: np.ndarray  # (n_us * k,) cumulative weight within each city's segment
    # drift by year
    first_year: int
    online_multiplier: np.ndarray
    chip_card_share: np.ndarray
    chip_terminal_share: np.ndarray
    spend_multiplier: np.ndarray
    bill_card_use: np.ndarray  # (years,) share of monthly bills paid by card: see purchases
    price_level: np.ndarray
    day_kind: np.ndarray  # (days,) int8 from start_day: reference.ORDINARY, HOLIDAY or CLOSED
    shock_day: np.ndarray  # (days,) int64 from start_day: the day's shock (1, 2, ...), or 0
    shock_factor: np.ndarray  # (shocks + 1, T): each type's rate factor; row 0 all ones
    shock_trips: np.ndarray  # (shocks + 1, 3): getaway, vacation, business trip rate factors
    shock_abroad: np.ndarray  # (shocks + 1,): factor on the odds a trip goes abroad; row 0 one
    calendar: np.ndarray  # (days, 4) int64 from start_day: weekday (Monday 0), month (0-11),
    # day of month, and the year's index into the drift arrays
    # scalars packed for kernels, indexed by S
    scalars: np.ndarray
    card_usage: np.ndarray  # (3,) by CARD_KINDS
    card_amount_preference: np.ndarray  # (3,)


# Index of each scalar in WorldArrays.scalars (kernels take one float64 array).
SCALARS = (
    "favourite_share",
    "favourites_per_type",
    "independent_online_share",
    "personal_amount_sigma",
    "err_insufficient_balance",
    "err_bad_pin",
    "err_technical_glitch",
    "err_bad_cvv",
    "err_bad_expiration",
    "err_bad_card_number",
    "err_bad_zipcode",
    "refund_delay_days_max",
    "refund_online_factor",
    "fraud_episodes_per_year",
    "fraud_burst_mean",
    "fraud_online_share",
    "fraud_amount_median",
    "fraud_amount_sigma",
    "income_median",
    "full_payment_share",
    "balance_awareness",
    "retry_probability",
    "retry_delay_seconds_mean",
)
S = {name: i for i, name in enumerate(SCALARS)}


class WorldLabels(NamedTuple):
    """The strings behind the indices kernels emit."""

    type_names: list[str]
    type_category: list[str]
    chain_names: list[str]
    mcc_codes: list[int]


def _shocks(
    shocks: pd.DataFrame, type_names: list[str], start: dt.date, end: dt.date
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(shock of each day from start to end, 0 for none; each shock's type factors, trip
    factors and factor on the odds of going abroad, row 0 ones) from the world's shocks
    table (loaded and checked: one period per shock, no overlaps)."""
    names = list(dict.fromkeys(shocks["shock"]))
    day = np.zeros((end - start).days + 1, np.int64)
    factor = np.ones((len(names) + 1, len(type_names)))
    trips = np.ones((len(names) + 1, len(TRIP_KINDS)))
    abroad = np.ones(len(names) + 1)
    column = {t: j for j, t in enumerate(type_names)}
    for row in shocks.itertuples(index=False):
        s = names.index(row.shock) + 1
        first = max((row.start - start).days, 0)
        last = min((row.end - start).days, len(day) - 1)
        if first <= last:
            day[first : last + 1] = s
        if row.target in TRIP_KINDS:
            trips[s, TRIP_KINDS.index(row.target)] = row.factor
        elif row.target == ABROAD:
            abroad[s] = row.factor
        else:
            factor[s, column[row.target]] = row.factor
    return day, factor, trips, abroad


def build_arrays(world: World) -> tuple[WorldArrays, WorldLabels]:
    spec, tables = world.spec, world.tables
    goods = tables["goods"]
    type_names = list(goods["type"])
    type_index = {t: i for i, t in enumerate(type_names)}

    def profile(table: str, column: str) -> np.ndarray:
        df = tables[table].set_index("profile")
        values = df.loc[goods[column]].to_numpy(dtype=np.float64)
        return values

    hours = profile("hours", "hour_profile")
    hour_cum = np.cumsum(hours / hours.sum(axis=1, keepdims=True), axis=1)
    weekdays = profile("weekdays", "weekday_profile")
    seasons = profile("seasons", "season_profile")

    mccs = tables["mccs"].reset_index(drop=True)
    mcc_slot = {int(m): i for i, m in enumerate(mccs["mcc"])}
    gm = (
        tables["goods_mcc"]
        .assign(t=lambda d: d["type"].map(type_index))
        .sort_values(["t", "mcc"], kind="stable")
    )
    type_mcc_offsets = np.searchsorted(gm["t"].to_numpy(), np.arange(len(goods) + 1)).astype(
        np.int64
    )
    type_mcc_slot = gm["mcc"].map(mcc_slot).to_numpy(np.int64)
    type_mcc_cum = _segment_cumsum(gm["weight"].to_numpy(np.float64), type_mcc_offsets)

    chains = tables["chains"].reset_index(drop=True)
    chain_slot = chains["mcc"].map(mcc_slot).to_numpy(np.int64)
    order = np.argsort(chain_slot, kind="stable")
    mcc_chain_offsets = np.searchsorted(chain_slot[order], np.arange(len(mccs) + 1)).astype(
        np.int64
    )
    weight = chains["weight"].to_numpy(np.float64)[order]
    has_store = (chains["locations_per_100k"].to_numpy() > 0)[order]
    online = chains["online"].to_numpy(bool)[order]
    chain_density = chains["locations_per_100k"].to_numpy(np.float64) / 1e5
    local_density = mccs["local_per_100k"].to_numpy(np.float64) / 1e5
    chain_store_density = np.bincount(chain_slot, weights=chain_density, minlength=len(mccs))
    boost = spec.merchants.chain_sales_per_location
    with np.errstate(invalid="ignore", divide="ignore"):
        chain_share = np.nan_to_num(
            boost * chain_store_density / (boost * chain_store_density + local_density)
        )

    cities = reference.cities()
    n_us = cities.n_us
    lat, lon = np.radians(cities.lat), np.radians(cities.lon)
    nearby_offsets, nearby_city, nearby_cum = _nearby(
        cities.nearest,
        lat[:n_us],
        lon[:n_us],
        cities.population[:n_us],
        spec.merchants.nearby_cities,
        spec.merchants.distance_scale_km,
    )

    drift = tables["drift"].sort_values("year")
    first_year = int(drift["year"].iloc[0])
    years = np.arange(first_year, int(drift["year"].iloc[-1]) + 1)
    drift = drift.set_index("year").reindex(years).ffill()
    spend = drift["spend_multiplier"].to_numpy(np.float64)

    start, end = spec.simulation.start, spec.simulation.end
    day_kind = reference.day_kinds(
        start, end, spec.calendar.closed_holidays, spec.calendar.shopping_days
    )
    calendar = _calendar(day_number(start), day_number(end), first_year, len(years))
    shock_day, shock_factor, shock_trips, shock_abroad = _shocks(
        tables["shocks"], type_names, start, end
    )

    sc = np.zeros(len(SCALARS))
    m, e, r, f = spec.merchants, spec.errors, spec.refunds, spec.fraud
    values = {
        "favourite_share": m.favourite_share,
        "favourites_per_type": m.favourites_per_type,
        "independent_online_share": m.independent_online_share,
        "personal_amount_sigma": spec.population.personal_amount_sigma,
        "err_insufficient_balance": e.insufficient_balance,
        "err_bad_pin": e.bad_pin,
        "err_technical_glitch": e.technical_glitch,
        "err_bad_cvv": e.bad_cvv,
        "err_bad_expiration": e.bad_expiration,
        "err_bad_card_number": e.bad_card_number,
        "err_bad_zipcode": e.bad_zipcode,
        "refund_delay_days_max": r.delay_days_max,
        "refund_online_factor": r.online_factor,
        "fraud_episodes_per_year": f.random.episodes_per_year,
        "fraud_burst_mean": f.random.burst_mean,
        "fraud_online_share": f.random.online_share,
        "fraud_amount_median": f.random.amount_median,
        "fraud_amount_sigma": f.random.amount_sigma,
        "income_median": spec.population.income_median,
        "full_payment_share": spec.cards.full_payment_share,
        "balance_awareness": spec.cards.balance_awareness,
        "retry_probability": e.retry_probability,
        "retry_delay_seconds_mean": e.retry_delay_seconds_mean,
    }
    for name, value in values.items():
        sc[S[name]] = value

    col = lambda name: goods[name].to_numpy(np.float64)  # noqa: E731
    labels = WorldLabels(
        type_names, list(goods["category"]), list(chains["chain"]), [int(m) for m in mccs["mcc"]]
    )
    arrays = WorldArrays(
        seed=spec.simulation.seed,
        start_day=day_number(start),
        end_day=day_number(end),
        participation=col("participation"),
        rate=col("rate_per_year"),
        rate_shape=col("rate_shape"),
        income_elasticity=col("income_elasticity"),
        amount_median=col("amount_median"),
        amount_sigma=col("amount_sigma"),
        amount_income_elasticity=col("amount_income_elasticity"),
        round_share=col("round_share"),
        round_cents=np.maximum(1, np.round(col("round_unit") * 100)).astype(np.int64),
        hour_cum=np.ascontiguousarray(hour_cum),
        hour_guide=_guides(hour_cum, 32),
        weekday_factor=np.ascontiguousarray(weekdays / weekdays.mean(axis=1, keepdims=True)),
        season_factor=np.ascontiguousarray(seasons / seasons.mean(axis=1, keepdims=True)),
        holiday_factor=col("holiday_factor"),
        closed_factor=col("closed_factor"),
        state_factor=np.ascontiguousarray(
            np.column_stack(
                [
                    np.ones(len(goods)),
                    col("getaway_factor"),
                    col("vacation_factor"),
                    col("business_factor"),
                ]
            )
        ),
        retired_factor=col("retired_factor"),
        online_share=col("online_share"),
        recurring=goods["recurring"].to_numpy(np.bool_),
        refund_rate=col("refund_rate"),
        type_mcc_offsets=type_mcc_offsets,
        type_mcc_slot=type_mcc_slot,
        type_mcc_cum=type_mcc_cum,
        mcc_code=mccs["mcc"].to_numpy(np.int16),
        mcc_local_density=local_density,
        mcc_card_present=mccs["card_present"].to_numpy(np.bool_),
        mcc_chain_share=chain_share,
        mcc_chain_offsets=mcc_chain_offsets,
        mcc_chain=order.astype(np.int64),
        mcc_chain_cum_store=_segment_cumsum(weight * has_store, mcc_chain_offsets),
        mcc_chain_cum_online=_segment_cumsum(weight * online, mcc_chain_offsets),
        chain_mcc_slot=chain_slot,
        chain_density=chain_density,
        n_us_cities=n_us,
        city_lat=lat,
        city_lon=lon,
        city_population=cities.population,
        home_city_cum=np.cumsum(home_city_weights(world)),
        foreign_city_cum=np.cumsum(cities.population[n_us:]),
        trip_city_cum=np.cumsum(trip_city_weights(world, cities)),
        nearby_offsets=nearby_offsets,
        nearby_city=nearby_city,
        nearby_cum=nearby_cum,
        first_year=first_year,
        online_multiplier=drift["online_multiplier"].to_numpy(np.float64),
        chip_card_share=drift["chip_card_share"].to_numpy(np.float64),
        chip_terminal_share=drift["chip_terminal_share"].to_numpy(np.float64),
        spend_multiplier=spend,
        # Monthly bills go on cards as card use grows (at most 1), and stay there.
        bill_card_use=np.minimum(1.0, np.maximum.accumulate(spend)),
        price_level=drift["price_level"].to_numpy(np.float64),
        day_kind=day_kind,
        shock_day=shock_day,
        shock_factor=shock_factor,
        shock_trips=shock_trips,
        shock_abroad=shock_abroad,
        calendar=calendar,
        scalars=sc,
        card_usage=np.array([spec.cards.usage_weight.get(k, 0.0) for k in CARD_KINDS]),
        card_amount_preference=np.array(
            [spec.cards.amount_preference.get(k, 0.0) for k in CARD_KINDS]
        ),
    )
    return arrays, labels


def trip_city_weights(world: World, cities: reference.Cities) -> np.ndarray:
    """Weights of the foreign cities as trip destinations: each country of the world's
    destinations table its weight, shared among its cities by population (no table: every
    city by population)."""
    population = cities.population[cities.n_us :].astype(np.float64)
    table = world.tables["destinations"]
    if table.empty:
        return population
    country = pd.Series(cities.country[cities.n_us :])
    per_country = pd.Series(population).groupby(country).transform("sum").to_numpy()
    trips = country.map(dict(zip(table["country"], table["trips"], strict=True))).fillna(0.0)
    return trips.to_numpy(np.float64) * population / per_country


def _segment_cumsum(weights: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Cumulative sums restarting at each CSR segment."""
    out = np.empty_like(weights, dtype=np.float64)
    for a, b in zip(offsets[:-1], offsets[1:], strict=True):
        out[a:b] = np.cumsum(weights[a:b])
    return out


def _guides(cumulative: np.ndarray, size: int) -> np.ndarray:
    """rng.guided_pick tables, one per row of a (rows, n) cumulative-weights array."""
    guides = np.empty((cumulative.shape[0], size), dtype=np.int64)
    for row in range(cumulative.shape[0]):
        rng.fill_guide(cumulative[row], 0, cumulative.shape[1], guides[row])
    return guides


def _calendar(start_day: int, end_day: int, first_year: int, n_years: int) -> np.ndarray:
    """(days, 4) int64 per day from start_day to end_day: weekday (Monday 0), month (0-11),
    day of month, and the year's index into the drift arrays (clipped to them)."""
    days = np.arange(start_day, end_day + 1)
    dates = days.astype("datetime64[D]")
    months = dates.astype("datetime64[M]")
    years = months.astype("datetime64[Y]").astype(np.int64) + 1970
    return np.column_stack(
        [
            (days + 3) % 7,  # 1970-01-01 was a Thursday
            months.astype(np.int64) % 12,
            (dates - months).astype(np.int64) + 1,
            np.clip(years - first_year, 0, n_years - 1),
        ]
    ).astype(np.int64)


def _nearby(nearest, lat, lon, population, k, scale_km):
    """For each city, itself and its k-1 nearest cities, weighted by population * exp(-d/scale).

    nearest: (n, >= k) int64 from reference.cities(). lat, lon: (n,) radians.
    """
    n = len(lat)
    near = nearest[:, : min(k, nearest.shape[1])]
    k = near.shape[1]
    d = reference.haversine_km(lat[:, None], lon[:, None], lat[near], lon[near])
    cum = np.cumsum(population[near] * np.exp(-d / scale_km), axis=1)
    return np.arange(0, n * k + 1, k, dtype=np.int64), near.ravel(), cum.ravel()


def copula_cholesky(world: World) -> np.ndarray:
    return np.linalg.cholesky(correlation_matrix(world.spec))
