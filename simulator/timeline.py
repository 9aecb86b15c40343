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

from dataclasses import dataclass

import numpy as np
import simpy

from cardworld.simulator import rng
from cardworld.simulator.kernels.jit import kernel
from cardworld.simulator.population import Consumers
from cardworld.simulator.world_arrays import STATES, WorldArrays
from cardworld.worlds import reference
from cardworld.worlds.schema import Trip, World

HOME = STATES.index("home")
TRIP_KINDS = ("getaway", "vacation", "business")


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
    per_consumer: list[list[tuple]] = [[] for _ in range(len(consumers.ids))]
    for i in range(len(consumers.ids)):
        env.process(_life(env, world, arrays, consumers, i, int(first_day[i]), per_consumer[i]))
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


def _life(env, world, arrays, consumers, i, first_day, segs):
    # NOTE: plain floats, not numpy, in this per-event loop: tiny arrays cost microseconds.
    spec = world.spec
    st = rng.stream(arrays.seed, consumers.ids[i], rng.TIMELINE)
    income_ratio = float(consumers.income[i]) / spec.population.income_median
    trips = [getattr(spec.travel, kind) for kind in TRIP_KINDS]
    rates = [t.rate_per_year * income_ratio**t.income_elasticity / 365.2425 for t in trips]
    move_rate = spec.population.move_rate_per_year / 365.2425
    retirement_day = int(consumers.retirement_day[i])
    home, epoch = int(consumers.home_city[i]), 0
    if first_day > arrays.end_day:
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
        day += max(1, int(round(rng.exponential(st, 1.0 / total))))
        if day > arrays.end_day:
            return
        yield env.timeout(day - env.now)
        pick = rng.uniform(st) * total
        if pick >= trip_total:
            _close(segs, day)
            home, epoch = int(rng.choose(st, arrays.home_city_cum)), epoch + 1
            segs.append((day, None, HOME, home, home, epoch))
            continue
        k = 0 if pick < rates[0] else (1 if pick < rates[0] + rates[1] else 2)
        trip: Trip = trips[k]
        start = _trip_start(day, trip.weekend_start)
        duration = max(1, int(round(rng.exponential(st, trip.duration_days_mean - 0.5) + 0.5)))
        p = trip.foreign_probability
        foreign_odds = p / max(1e-12, 1 - p) * income_ratio**trip.foreign_income_elasticity
        city = destination(
            st,
            arrays.foreign_city_cum,
            arrays.home_city_cum,
            arrays.city_lat,
            arrays.city_lon,
            arrays.n_us_cities,
            home,
            foreign_odds,
            spec.travel.destination_distance_km_min,
        )
        if start > arrays.end_day:
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


_haversine_km = kernel(reference.haversine_km)  # the same formula, compiled for scalars


@kernel
def destination(st, foreign_cum, home_cum, lat, lon, n_us, home, foreign_odds, min_km):
    """A trip's destination city: foreign with odds `foreign_odds`, else a US city at least
    `min_km` from home (the last of 8 tries if none is that far). lat/lon in radians."""
    if rng.uniform(st) < foreign_odds / (1 + foreign_odds) and foreign_cum.shape[0] > 0:
        return n_us + rng.choose(st, foreign_cum)
    city = home
    for _ in range(8):
        city = rng.choose(st, home_cum)
        if _haversine_km(lat[home], lon[home], lat[city], lon[city]) >= min_km:
            break
    return city
