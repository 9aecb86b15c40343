"""Home cities: boroughs and neighbourhoods are no one's home, New York City weighs what the
Census counts, and the people outside the cities are shared out as world.toml says."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from cardworld.simulator.home_cities import city_weights, home_city_weights
from cardworld.simulator.population import sample_population
from cardworld.simulator.world_arrays import build_arrays
from cardworld.worlds import reference
from cardworld.worlds.load import load_world

NEW_YORK_CITY = 5128581  # GeoNames ids
BOROUGHS = (5110302, 5133273, 5125771, 5110266, 5139568)  # Brooklyn ... Staten Island
RESIDENTS_2020 = 331_449_281  # 2020 Census: US resident population
NEW_YORK_CITY_2020 = 8_804_190  # 2020 Census: New York City


@pytest.fixture(scope="module")
def us():
    world = load_world("us")
    cities = reference.cities()
    excluded = np.isin(
        cities.geonameid[: cities.n_us], world.tables["place_exclusions"]["geonameid"]
    )
    return cities, excluded, home_city_weights(world)


def _index(cities: reference.Cities, geonameid: int) -> int:
    return int(np.flatnonzero(cities.geonameid == geonameid)[0])


def test_boroughs_and_neighbourhoods_are_no_ones_home(us):
    cities, excluded, weights = us
    assert all(excluded[_index(cities, b)] for b in BOROUGHS)
    assert excluded.sum() > 300  # GeoNames lists hundreds of neighbourhoods as places
    assert (weights[excluded] == 0).all()
    own = cities.population[: cities.n_us]
    assert (weights[~excluded] >= own[~excluded]).all()


def test_new_york_city_weighs_its_census_share(us):
    cities, _, weights = us
    share = weights[_index(cities, NEW_YORK_CITY)] / weights.sum()
    # Its own people are its 2020 count; the towns nearest it outside every city's postal
    # area add little, for its suburbs are cities of their own. With the boroughs and
    # neighbourhoods counted too, New York City's entries held 10.5% of the weight.
    assert share == pytest.approx(NEW_YORK_CITY_2020 / RESIDENTS_2020, rel=0.02)


def test_the_weights_hold_every_resident_and_the_catchments_those_outside(us):
    cities, excluded, weights = us
    own = np.where(excluded, 0.0, cities.population[: cities.n_us])
    assert weights.sum() == pytest.approx(RESIDENTS_2020, rel=1e-12)
    outside = (weights - own).sum() / weights.sum()
    assert outside == pytest.approx(1 - own.sum() / RESIDENTS_2020, rel=1e-9)
    # world.toml [places] cross-checks: more than the 20.0% who are rural live outside the
    # cities, and the cities of 50,000+ hold about the 38.9% that incorporated places of
    # 50,000+ held in 2019 (GeoNames also lists large census-designated places).
    assert 0.20 < outside < 0.5
    large = own[cities.population[: cities.n_us] >= 50_000].sum() / RESIDENTS_2020
    assert large == pytest.approx(0.389, abs=0.02)


def _naive_weights(cities: reference.Cities, excluded: np.ndarray, residents: int):
    """Each town to its nearest listed city by great-circle distance, one town at a time."""
    listed = np.flatnonzero(~excluded)
    lat, lon = np.radians(cities.lat[listed]), np.radians(cities.lon[listed])
    towns = np.zeros(cities.n_us)
    town_lat, town_lon = np.radians(cities.town_lat), np.radians(cities.town_lon)
    for t_lat, t_lon, people in zip(town_lat, town_lon, cities.town_population, strict=True):
        towns[listed[np.argmin(reference.haversine_km(t_lat, t_lon, lat, lon))]] += people
    own = np.where(excluded, 0.0, cities.population[: cities.n_us])
    return own + (residents - own.sum()) * towns / towns.sum()


def test_weights_match_a_naive_twin(us):
    cities, excluded, weights = us
    np.testing.assert_allclose(weights, _naive_weights(cities, excluded, RESIDENTS_2020))


def test_an_excluded_citys_towns_go_to_the_nearest_listed_city():
    # Three cities on the equator 0, 1 and 3 degrees east; the middle one excluded. Towns at
    # 1.1 and 1.9 degrees go to the cities at 0 and 3; the town at 2.9 to the one at 3.
    cities = dataclasses.replace(
        reference.cities(),
        geonameid=np.array([1, 2, 3]),
        lat=np.zeros(3),
        lon=np.array([0.0, 1.0, 3.0]),
        population=np.array([100.0, 50.0, 10.0]),
        n_us=3,
        town_lat=np.zeros(3),
        town_lon=np.array([1.1, 1.9, 2.9]),
        town_population=np.array([1.0, 2.0, 1.0]),
    )
    weights = city_weights(cities, np.array([False, True, False]), resident_population=190)
    # 80 people outside the cities, shared 1 : 3 by the towns nearest each city.
    np.testing.assert_allclose(weights, [100.0 + 20.0, 0.0, 10.0 + 60.0])


def test_sampled_consumers_live_where_the_weights_say(us):
    cities, excluded, weights = us
    world = load_world("tiny")
    arrays, _ = build_arrays(world)
    n = 20_000
    consumers, _ = sample_population(world, arrays, np.arange(n, dtype=np.int64))
    home = consumers.home_city
    assert not excluded[home].any()
    # Shares of n draws: within 4 standard errors of the weights' shares.
    new_york, small = _index(cities, NEW_YORK_CITY), cities.population[: cities.n_us] < 100_000
    for chosen, weight in ((home == new_york, weights[new_york]), (small[home], weights[small])):
        p = weight.sum() / weights.sum()
        assert abs(chosen.mean() - p) < 4 * np.sqrt(p * (1 - p) / n)
    # Without catchments the cities under 100,000 held 49% of the weight; now about 68%.
    assert small[home].mean() > 0.6
