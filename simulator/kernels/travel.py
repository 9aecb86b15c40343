"""Trip destinations: where each trip of a shard goes, once the timeline knows its trips."""

from __future__ import annotations

import math

import numpy as np

from cardworld.simulator import rng
from cardworld.simulator.kernels.jit import kernel
from cardworld.worlds.reference import EARTH_RADIUS_KM

# Domestic cities drawn for a trip before the nearest of them is taken.
DESTINATION_DRAWS = 8


@kernel
def trip_destinations(
    seed, consumer, ordinal, home, foreign_odds, scale_km, min_km, home_cum, trip_cum, lat, lon
):
    """The destination city of each trip: (n,) int64.

    Trip j is consumer[j]'s trip number ordinal[j] (from 0), from home city home[j]; it
    goes abroad with odds foreign_odds[j], to a foreign city by trip_cum (foreign city f
    is city len(home_cum) + f; never when trip_cum is empty), else to a US city at least
    `min_km` from home, drawn by home_cum. With scale_km[j] above 0, a city d km away is
    kept with chance exp(-(d - min_km) / scale_km[j]), and the nearest is taken when none
    of DESTINATION_DRAWS draws is kept (the last draw when none is min_km away).
    lat, lon: every city's, in radians. Each trip draws from its own stream, so a
    destination depends on no other trip's.
    """
    n_us = home_cum.shape[0]
    out = np.empty(consumer.shape[0], np.int64)
    st = np.zeros(2, np.uint64)
    for j in range(consumer.shape[0]):
        rng.reseed(st, seed, consumer[j], rng.DESTINATIONS, ordinal[j])
        odds = foreign_odds[j]
        if trip_cum.shape[0] > 0 and rng.uniform(st) < odds / (1.0 + odds):
            out[j] = n_us + rng.choose(st, trip_cum)
            continue
        out[j] = _domestic(st, home[j], scale_km[j], min_km, home_cum, lat, lon)
    return out


@kernel(allocates=False)
def _domestic(st, home, scale_km, min_km, home_cum, lat, lon):
    """A US destination from `home` (see `trip_destinations`)."""
    city, nearest, nearest_km = home, -1, math.inf
    for _ in range(DESTINATION_DRAWS):
        city = rng.choose(st, home_cum)
        km = distance_km(lat[home], lon[home], lat[city], lon[city])
        if km < min_km:
            continue
        if scale_km <= 0.0 or rng.uniform(st) < math.exp((min_km - km) / scale_km):
            return city
        if km < nearest_km:
            nearest, nearest_km = city, km
    return nearest if nearest >= 0 else city


@kernel(allocates=False)
def distance_km(lat1, lon1, lat2, lon2):
    """reference.haversine_km for two points (radians), in a kernel."""
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(min(h, 1.0)))
