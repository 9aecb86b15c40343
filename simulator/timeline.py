"""Life events on simpy: trips (getaway, vacation, business; domestic or foreign) and moves.

Each consumer is one simpy process that sleeps until its next life event. The output is
a list of segments per consumer: day ranges with a state (home or a kind of trip) and
the city where purchases happen, plus a home "epoch" that changes when the consumer
moves (favourite merchants are redrawn then). Purchases never run on simpy: the purchase
kernel reads these segments.

Every draw comes from the consumer's own TIMELINE stream, so a consumer's timeline does
not depend on which other consumers share its shard.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import simpy

from cardworld.simulator import rng
from cardworld.simulator.population import Consumers
from cardworld.simulator.world_arrays import STATES, WorldArrays
from cardworld.worlds import reference
from cardworld.worlds.schema import TRIP_KINDS, Trip, World

HOME = STATES.index("home")


@dataclass(frozen=True)
class Segments:
    """Per-consumer day ranges, CSR over the shard's consumers."""

    offsets: np.ndarray  # (n+1,) int64
    start: np.ndarray  # (s,) int64 first day
    end: np.ndarray  # (s,) int64 day after the last
    state: np.ndarray  # (s,) int8 index into STATES
    city: np.ndarray  # (s,) int64 where purchases happen
    home_city: np.ndarray  # (s,) int64 the home at that time
    epoch: np.ndarray  # (s,) int64 number of moves so far


def build_timeline(
    world: World, arrays: WorldArrays, consumers: Consumers, first_day: np.ndarray
) -> Segments:
    """Run the life-event simulation for a shard; `first_day` is when each consumer starts spending."""
    env = simpy.Environment(initial_time=arrays.start_day)
    places = _Places.of(arrays)
    per_consumer: list[list[tuple]] = [[] for _ in range(len(consumers.ids))]
    for i in range(len(consumers.ids)):
        env.process(_life(env, world, places, consumers, i, int(first_day[i]), per_consumer[i]))
    env.run(until=arrays.end_day + 1)
    for i, segs in enumerate(per_consumer):
        _close(segs, arrays.end_day + 1)
        if not segs:  # a consumer who never becomes active still has an (empty) home
            segs.append(
                (
                    arrays.end_day + 1,
                    arrays.end_day + 1,
                    HOME,
                    consumers.home_city[i],
                    consumers.home_city[i],
                    0,
                )
            )
    flat = [s for segs in per_consumer for s in segs]
    offsets = np.cumsum([0] + [len(s) for s in per_consumer]).astype(np.int64)
    cols = list(zip(*flat, strict=True))
    return Segments(
        offsets=offsets,
        start=np.array(cols[0], np.int64),
        end=np.array(cols[1], np.int64),
        state=np.array(cols[2], np.int8),
        city=np.array(cols[3], np.int64),
        home_city=np.array(cols[4], np.int64),
        epoch=np.array(cols[5], np.int64),
    )


def _close(segs: list[tuple], day: int) -> None:
    """End the open segment (if any) at `day`, dropping it if empty."""
    if segs and segs[-1][1] is None:
        start, _, state, city, home, epoch = segs[-1]
        if day > start:
            segs[-1] = (start, day, state, city, home, epoch)
        else:
            segs.pop()


def _life(env, world, places, consumers, i, first_day, segs):
    # NOTE: plain floats, not numpy, in this per-event loop: tiny arrays cost microseconds.
    spec = world.spec
    draws = _Draws(places.seed, int(consumers.ids[i]))
    income_ratio = float(consumers.income[i]) / spec.population.income_median
    trips = [getattr(spec.travel, kind) for kind in TRIP_KINDS]
    rates = [
        t.rate_per_year * income_ratio**t.income_elasticity / 365.2425 * peak
        for t, peak in zip(trips, places.trip_peak, strict=True)
    ]
    move_rate = spec.population.move_rate_per_year / 365.2425
    retirement_day = int(consumers.retirement_day[i])
    home, epoch = int(consumers.home_city[i]), 0
    if first_day > places.end_day:
        return
    yield env.timeout(max(0, first_day - env.now))
    day = int(env.now)
    segs.append((day, None, HOME, home, home, epoch))
    while True:
        # Business trips end with working life.
        trip_total = rates[0] + rates[1] + (rates[2] if day < retirement_day else 0.0)
        total = trip_total + move_rate
        if total <= 0:
            return  # a life without trips or moves: home until the end
        day += max(1, int(round(draws.exponential(1.0 / total))))
        if day > places.end_day:
            return
        yield env.timeout(day - env.now)
        pick = draws.uniform() * total
        if pick >= trip_total:
            _close(segs, day)
            home, epoch = draws.choose(places.home_cum), epoch + 1
            segs.append((day, None, HOME, home, home, epoch))
            continue
        k = 0 if pick < rates[0] else (1 if pick < rates[0] + rates[1] else 2)
        trip: Trip = trips[k]
        start = _trip_start(day, trip.weekend_start)
        shock = places.shock(start)
        if (
            places.trip_shocks
            and draws.uniform() * places.trip_peak[k] >= places.shock_trips[shock][k]
        ):
            continue  # a shock called the trip off (trips are drawn at the peak rate, thinned)
        duration = max(1, int(round(draws.exponential(trip.duration_days_mean - 0.5) + 0.5)))
        p = trip.foreign_probability
        foreign_odds = p / max(1e-12, 1 - p) * income_ratio**trip.foreign_income_elasticity
        foreign_odds *= places.shock_abroad[shock]
        city = _destination(
            draws,
            places,
            home,
            foreign_odds,
            spec.travel.destination_distance_km_min,
            trip.distance_scale_km,
        )
        if start > places.end_day:
            return  # the trip would begin after the period: home until the end
        # The whole trip is known now: the next event is drawn from the day it ends.
        _close(segs, start)
        segs.append((start, start + duration, STATES.index(TRIP_KINDS[k]), city, home, epoch))
        day = start + duration
        segs.append((day, None, HOME, home, home, epoch))


def _trip_start(day: int, weekend: bool) -> int:
    """Leisure trips leave on a Friday or Saturday, business trips on a weekday."""
    weekday = (day + 3) % 7  # 1970-01-01 was a Thursday
    if weekend:
        return day + (4 - weekday) % 7  # the coming Friday
    return day + (0 if weekday < 5 else 7 - weekday)


class _Places(NamedTuple):
    """What the per-event code reads of WorldArrays, as Python numbers and lists."""

    seed: int
    end_day: int
    home_cum: list[float]  # home cities' cumulative weights
    foreign_cum: list[float]  # foreign cities' cumulative weights as trip destinations
    lat: list[float]  # every city's latitude, radians
    lon: list[float]
    n_us: int  # foreign city j is city n_us + j
    start_day: int
    shock_day: list[int]  # WorldArrays.shock_day
    shock_trips: list[list[float]]  # WorldArrays.shock_trips
    shock_abroad: list[float]  # WorldArrays.shock_abroad
    trip_peak: list[float]  # each trip kind's highest factor, at least 1
    trip_shocks: bool  # whether any shock changes trips

    def shock(self, day: int) -> int:
        """The shock on `day` (1, 2, ...), or 0 for none."""
        index = day - self.start_day
        return self.shock_day[index] if 0 <= index < len(self.shock_day) else 0

    @classmethod
    def of(cls, arrays: WorldArrays) -> _Places:
        return cls(
            int(arrays.seed),
            int(arrays.end_day),
            arrays.home_city_cum.tolist(),
            arrays.trip_city_cum.tolist(),
            arrays.city_lat.tolist(),
            arrays.city_lon.tolist(),
            int(arrays.n_us_cities),
            int(arrays.start_day),
            arrays.shock_day.tolist(),
            arrays.shock_trips.tolist(),
            arrays.shock_abroad.tolist(),
            np.maximum(arrays.shock_trips.max(axis=0), 1.0).tolist(),
            bool((arrays.shock_trips != 1.0).any()),
        )


class _Draws:
    """A consumer's TIMELINE stream for the per-event code: one kernel call draws the next
    64 uniforms, which are then read as plain floats. The transforms are rng's own, so the
    numbers are those rng.exponential and rng.choose would give.

    NOTE: a kernel called from Python costs a microsecond or more to dispatch, many times
    the draw itself; at a call per draw the timeline spent most of its time there.
    """

    CHUNK = 64

    def __init__(self, seed: int, entity: int) -> None:
        self.seed, self.entity = seed, entity
        self.drawn = 0
        self.ahead: list[float] = []  # drawn, not yet used, last first

    def uniform(self) -> float:
        if not self.ahead:
            chunk = rng.stream_uniforms(
                self.seed, self.entity, rng.TIMELINE, self.drawn, self.CHUNK
            )
            self.ahead = chunk[::-1].tolist()
            self.drawn += self.CHUNK
        return self.ahead.pop()

    def exponential(self, mean: float) -> float:
        return -mean * math.log(1.0 - self.uniform())

    def choose(self, cumulative: list[float]) -> int:
        """An index drawn with weights given as non-decreasing cumulative weights."""
        target = self.uniform() * cumulative[-1]
        return min(bisect.bisect_right(cumulative, target), len(cumulative) - 1)


def _destination(
    draws: _Draws, places: _Places, home: int, foreign_odds: float, min_km: float, scale_km: float
) -> int:
    """A trip's destination city: foreign with odds `foreign_odds`, else a US city at least
    `min_km` from home, drawn by population; with `scale_km` above 0, a city d km away is
    kept with chance exp(-(d - min_km) / scale_km), and the nearest one drawn when none of
    8 draws is kept (the last draw when none is `min_km` away)."""
    if draws.uniform() < foreign_odds / (1 + foreign_odds) and places.foreign_cum:
        return places.n_us + draws.choose(places.foreign_cum)
    city, nearest, nearest_km = home, -1, math.inf
    for _ in range(8):
        city = draws.choose(places.home_cum)
        km = _distance_km(places, home, city)
        if km < min_km:
            continue
        if scale_km <= 0 or draws.uniform() < math.exp((min_km - km) / scale_km):
            return city
        if km < nearest_km:
            nearest, nearest_km = city, km
    return nearest if nearest >= 0 else city


def _distance_km(places: _Places, a: int, b: int) -> float:
    """reference.haversine_km between two cities, in math rather than NumPy: for scalars,
    NumPy's functions cost a microsecond a call."""
    lat1, lon1, lat2, lon2 = places.lat[a], places.lon[a], places.lat[b], places.lon[b]
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * reference.EARTH_RADIUS_KM * math.asin(math.sqrt(min(h, 1.0)))
