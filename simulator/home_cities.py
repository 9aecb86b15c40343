"""Where a world's consumers live: a weight for each US city of reference.cities().

A city's weight is its own population plus its catchment: a share of the people who live
outside the cities, in smaller towns and in the countryside, and shop in the city nearest
them. How many live outside is the world's resident population less the cities' own
(`places.resident_population`); they are shared out in proportion to the population of
the towns nearest each city (reference.cities()'s towns, GeoNames' places of 500 up to
15,000 people). A city named in the world's place_exclusions table (a borough, a
neighbourhood, a duplicate) is not a place of its own: its people are counted in the
city it lies in, so it gets no weight.
"""

from __future__ import annotations

import numpy as np

from cardworld.worlds import reference
from cardworld.worlds.schema import World


def home_city_weights(world: World) -> np.ndarray:
    """(n_us,) float64: each US city's weight as a home; they sum to the resident population."""
    cities = reference.cities()
    excluded = np.isin(
        cities.geonameid[: cities.n_us], world.tables["place_exclusions"]["geonameid"].to_numpy()
    )
    return city_weights(cities, excluded, world.spec.places.resident_population)


def city_weights(
    cities: reference.Cities, excluded: np.ndarray, resident_population: int
) -> np.ndarray:
    """The weights of home_city_weights for any set of cities and towns.

    excluded: (n_us,) bool, the US cities that are no one's home. Returns (n_us,) float64:
    0 where excluded, else the city's population plus its share of the people outside the
    cities, each town's people going to the listed city nearest it.
    """
    population = np.where(excluded, 0.0, cities.population[: cities.n_us])
    listed = np.flatnonzero(~excluded)
    _, nearest = reference.unit_vectors_tree(cities.lat[listed], cities.lon[listed]).query(
        reference.unit_vectors(cities.town_lat, cities.town_lon)
    )
    towns = np.bincount(listed[nearest], weights=cities.town_population, minlength=cities.n_us)
    outside = resident_population - population.sum()
    return population + outside * towns / towns.sum()
