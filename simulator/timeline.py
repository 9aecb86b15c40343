"""Life events on simpy: trips (getaway, vacation, business; domestic or foreign) and moves.

Each consumer is one simpy process that sleeps until its next life event. The output is
a list of segments per consumer: day ranges with a state (home or a kind of trip) and
the city where purchases happen, plus a home "epoch" that changes when the consumer
moves (favourite merchants are redrawn then). Purchases never run on simpy: the purchase
kernel reads these segments.

Every event's draws come from the consumer's own TIMELINE stream, and where a trip goes
from a stream of the trip's own (drawn for the whole shard after the simpy run, by
kernels/travel.py), so a consumer's timeline does not depend on which other consumers
share its shard.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import simpy

from cardworld.simulator import rng
from cardworld.simulator.kernels import travel
from cardworld.simulator.population import Consumers
from cardworld.simulator.world_arrays import STATES, WorldArrays
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
    odds: list[list[float]] = [[] for _ in range(len(consumers.ids))]
    for i in range(len(consumers.ids)):
        segs = per_consumer[i]
        env.process(_life(env, world, places, consumers, i, int(first_day[i]), segs, odds[i]))
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
    segments = Segments(
        offsets=offsets,
        start=np.array(cols[0], np.int64),
        end=np.array(cols[1], np.int64),
        state=np.array(cols[2], np.int8),
        city=np.array(cols[3], np.int64),
        home_city=np.array(cols[4], np.int64),
        epoch=np.array(cols[5], np.int64),
    )
    _send_trips(world, arrays, consumers, segments, odds)
    return segments


def _send_trips(
    world: World,
    arrays: WorldArrays,
    consumers: Consumers,
    segments: Segments,
    odds: list[list[float]],
) -> None:
    """Fill in where each trip segment goes (its city), by one kernel call for the shard;
    odds[i] holds consumer i's trips' odds of going abroad, in order.

    NOTE: a destination changes no event's time, so the simpy processes leave it out: drawn
    in Python per trip (distances included), it was half of the timeline's time.
    """
    trips = np.flatnonzero(segments.state != HOME)
    owner = np.repeat(np.arange(len(consumers.ids)), np.diff(segments.offsets))[trips]
    counts = np.array([len(o) for o in odds], np.int64)
    ordinal = np.arange(len(trips)) - np.repeat(np.cumsum(counts) - counts, counts)
    scale = np.array(  # by state: 0 for home, which is no trip
        [
            getattr(world.spec.travel, s).distance_scale_km if s in TRIP_KINDS else 0.0
            for s in STATES
        ]
    )
    segments.city[trips] = travel.trip_destinations(
        arrays.seed,
        consumers.ids[owner].astype(np.int64),
        ordinal,
        segments.home_city[trips],
        np.array([p for o in odds for p in o], np.float64),
        scale[segments.state[trips]],
        world.spec.travel.destination_distance_km_min,
        arrays.home_city_cum,
        arrays.trip_city_cum,
        arrays.city_lat,
        arrays.city_lon,
    )


def _close(segs: list[tuple], day: int) -> None:
    """End the open segment (if any) at `day`, dropping it if empty."""
    if segs and segs[-1][1] is None:
        start, _, state, city, home, epoch = segs[-1]
        if day > start:
            segs[-1] = (start, day, state, city, home, epoch)
        else:
            segs.pop()


def _life(env, world, places, consumers, i, first_day, segs, odds):
    """Consumer i's life from `first_day`: segments into `segs`, a trip's city left -1 and
    its odds of going abroad appended to `odds` (`_send_trips` draws where it goes)."""
    # NOTE: plain floats, not numpy, in this per-event loop: tiny arrays cost microseconds.
    # What a trip kind needs is worked out once per consumer (_Kind) and read from local
    # names, sparing attribute reads and calls per event: 535 -> 503 us a consumer over 35
    # years. What is left is about half simpy's (1.9 us an event) and half this loop's.
    draws = _Draws(places.seed, int(consumers.ids[i]))
    uniform, exponential = draws.uniform, draws.exponential
    income_ratio = float(consumers.income[i]) / world.spec.population.income_median
    kinds = [
        _Kind.of(getattr(world.spec.travel, name), name, income_ratio, peak)
        for name, peak in zip(TRIP_KINDS, places.trip_peak, strict=True)
    ]
    rate0, rate1, rate2 = (kind.rate for kind in kinds)
    move_rate = world.spec.population.move_rate_per_year / 365.2425
    retirement_day = int(consumers.retirement_day[i])
    end_day, shock_trips, shock_abroad = places.end_day, places.shock_trips, places.shock_abroad
    trip_shocks = places.trip_shocks
    home, epoch = int(consumers.home_city[i]), 0
    if first_day > end_day:
        return
    yield env.timeout(max(0, first_day - env.now))
    day = int(env.now)
    segs.append((day, None, HOME, home, home, epoch))
    while True:
        # Business trips end with working life.
        trip_total = rate0 + rate1 + (rate2 if day < retirement_day else 0.0)
        total = trip_total + move_rate
        if total <= 0:
            return  # a life without trips or moves: home until the end
        day += max(1, int(round(exponential(1.0 / total))))
        if day > end_day:
            return
        yield env.timeout(day - env.now)
        pick = uniform() * total
        if pick >= trip_total:
            _close(segs, day)
            home, epoch = draws.choose(places.home_cum), epoch + 1
            segs.append((day, None, HOME, home, home, epoch))
            continue
        k = 0 if pick < rate0 else (1 if pick < rate0 + rate1 else 2)
        kind = kinds[k]
        start = _trip_start(day, kind.weekend_start)
        shock = places.shock(start)
        if trip_shocks and uniform() * kind.peak >= shock_trips[shock][k]:
            continue  # a shock called the trip off (trips are drawn at the peak rate, thinned)
        duration = max(1, int(round(exponential(kind.duration_mean) + 0.5)))
        if start > end_day:
            return  # the trip would begin after the period: home until the end
        odds.append(kind.foreign_odds * shock_abroad[shock])
        # The whole trip is known now: the next event is drawn from the day it ends.
        _close(segs, start)
        segs.append((start, start + duration, kind.state, -1, home, epoch))
        day = start + duration
        segs.append((day, None, HOME, home, home, epoch))


class _Kind(NamedTuple):
    """A trip kind as one consumer's events read it."""

    rate: float  # trips a day, at the kind's peak factor
    peak: float  # the kind's highest shock factor, at least 1
    state: int  # index into STATES
    weekend_start: bool
    duration_mean: float  # of the exponential part of a trip's days (half a day less)
    foreign_odds: float  # odds of going abroad, before shocks

    @classmethod
    def of(cls, trip: Trip, name: str, income_ratio: float, peak: float) -> _Kind:
        p = trip.foreign_probability
        return cls(
            trip.rate_per_year * income_ratio**trip.income_elasticity / 365.2425 * peak,
            peak,
            STATES.index(name),
            trip.weekend_start,
            trip.duration_days_mean - 0.5,
            p / max(1e-12, 1 - p) * income_ratio**trip.foreign_income_elasticity,
        )


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
