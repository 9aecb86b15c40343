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
    segs.append((int(env.now), None, HOME, home, home, epoch))
    while True:
        # Business trips end with working life.
        trip_total = rates[0] + rates[1] + (rates[2] if env.now < retirement_day else 0.0)
        total = trip_total + move_rate
        if total <= 0:
            return  # a life without trips or moves: home until the end
        wait = rng.exponential(st, 1.0 / total)
        yield env.timeout(max(1, int(round(wait))))
        pick = rng.uniform(st) * total
        if pick >= trip_total:
            _close(segs, int(env.now))
            home, epoch = int(rng.choose(st, arrays.home_city_cum)), epoch + 1
            segs.append((int(env.now), None, HOME, home, home, epoch))
            continue
        k = 0 if pick < rates[0] else (1 if pick < rates[0] + rates[1] else 2)
        trip: Trip = trips[k]
        start = _trip_start(int(env.now), trip.weekend_start)
        duration = max(1, int(round(rng.exponential(st, trip.duration_days_mean - 0.5) + 0.5)))
        city = _destination(
            st, arrays, home, trip, income_ratio, spec.travel.destination_distance_km_min
        )
        yield env.timeout(start - env.now)
        _close(segs, start)
        segs.append((start, start + duration, STATES.index(TRIP_KINDS[k]), city, home, epoch))
        yield env.timeout(duration)
        segs.append((int(env.now), None, HOME, home, home, epoch))


def _trip_start(day: int, weekend: bool) -> int:
    """Leisure trips leave on a Friday or Saturday, business trips on a weekday."""
    weekday = (day + 3) % 7  # 1970-01-01 was a Thursday
    if weekend:
        return day + (4 - weekday) % 7  # the coming Friday
    return day + (0 if weekday < 5 else 7 - weekday)


def _destination(
    st, arrays: WorldArrays, home: int, trip: Trip, income_ratio: float, min_km: float
) -> int:
    """A destination city: foreign with the trip's (income-scaled) odds, else a US city far enough away."""
    p = trip.foreign_probability
    odds = p / max(1e-12, 1 - p) * income_ratio**trip.foreign_income_elasticity
    if rng.uniform(st) < odds / (1 + odds) and len(arrays.foreign_city_cum):
        return arrays.n_us_cities + int(rng.choose(st, arrays.foreign_city_cum))
    city = home
    for _ in range(8):
        city = int(rng.choose(st, arrays.home_city_cum))
        d = reference.haversine_km(
            arrays.city_lat[home],
            arrays.city_lon[home],
            arrays.city_lat[city],
            arrays.city_lon[city],
        )
        if d >= min_km:
            break
    return city
