"""Typed, validated world objects: what a world file may say, and what each value must be.

Every section of a world TOML maps onto one dataclass below. `build` walks a parsed
TOML dict into these classes, rejecting unknown keys, wrong types and impossible values
with one `WorldError` that names the file, the dotted key, the value found and what was
expected. Constraints live beside each field as metadata (`min`, `max`, `sum_to_one`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from cardworld.errors import WorldError
from cardworld.worlds.reference import NEAREST

PROBABILITY = {"min": 0.0, "max": 1.0}
NON_NEGATIVE = {"min": 0.0}
POSITIVE = {"min": 0.0, "exclusive_min": True}
SHARES = {"min": 0.0, "sum_to_one": True}
# The card kinds and brands a world's [cards] tables may name.
CARD_KINDS = ("credit", "debit", "prepaid")
BRANDS = ("visa", "mastercard", "amex", "discover")
# More fraudsters than this (fraudster_count) would take minutes and gigabytes to build: a
# career of seconds or a population started centuries ago, not a world.
MAX_FRAUDSTERS = 1_000_000


@dataclass(frozen=True)
class Simulation:
    consumers: int = field(metadata={"min": 1})
    start: dt.date
    end: dt.date
    seed: int = field(metadata={"min": 0, "max": 2**63 - 1})  # an int64 in the kernels
    # The ledger's layout: consumers are cut into part files of about this many transactions.
    rows_per_file: int = field(default=1_000_000, metadata={"min": 1000})


@dataclass(frozen=True)
class Population:
    """Census-like marginals joined by a Gaussian copula over (age, income, credit score)."""

    female_share: float = field(metadata=PROBABILITY)
    age_min: int = field(metadata={"min": 16})
    age_max: int = field(metadata={"min": 17})
    income_median: float = field(metadata=POSITIVE)
    # A lognormal's spread: 3 already puts the top 1% of incomes 1,000 times the median.
    income_sigma: float = field(metadata={"min": 0.0, "exclusive_min": True, "max": 3.0})
    credit_score_mean: float = field(metadata={"min": 300, "max": 850})
    credit_score_sd: float = field(metadata=POSITIVE)
    # Correlations of the copula's normals: (age, income), (age, credit), (income, credit).
    corr_age_income: float = field(metadata={"min": -1.0, "max": 1.0})
    corr_age_credit: float = field(metadata={"min": -1.0, "max": 1.0})
    corr_income_credit: float = field(metadata={"min": -1.0, "max": 1.0})
    retirement_age_mean: float = field(metadata=POSITIVE)
    retirement_age_sd: float = field(metadata=NON_NEGATIVE)
    # Spread of a consumer's personal factor around the population's mean, per type.
    personal_amount_sigma: float = field(metadata=NON_NEGATIVE)
    move_rate_per_year: float = field(metadata=NON_NEGATIVE)


@dataclass(frozen=True)
class Places:
    """Where consumers live: the US cities of reference.cities() less the world's
    place_exclusions table, each with a catchment of the people living outside the cities
    (simulator/home_cities.py)."""

    # Every US resident, in a city or outside one: the home-city weights add up to it.
    resident_population: int = field(metadata={"min": 1})


@dataclass(frozen=True)
class Cards:
    extra_cards_mean: float = field(metadata=NON_NEGATIVE)
    extra_cards_income_elasticity: float
    kind_shares: dict[str, float] = field(metadata=SHARES)
    brand_shares: dict[str, float] = field(metadata=SHARES)
    usage_weight: dict[str, float] = field(metadata=NON_NEGATIVE)
    # How strongly a card kind is preferred for large tickets: weight * (amount/50)^x.
    amount_preference: dict[str, float]
    credit_limit_median: float = field(metadata=POSITIVE)
    credit_limit_income_elasticity: float
    validity_years: int = field(metadata={"min": 1, "max": 50})
    # Share of credit cards whose statement is paid in full each month; the others pay a part.
    full_payment_share: float = field(metadata=PROBABILITY)
    # Chance a consumer knows a card lacks the money for a purchase: they then pay with a
    # card that has it, or give the purchase up when none has (else the attempt declines).
    balance_awareness: float = field(metadata=PROBABILITY)
    account_opened_years_before_start_max: float = field(metadata={"min": 0.0, "max": 80.0})


@dataclass(frozen=True)
class Merchants:
    nearby_cities: int = field(metadata={"min": 1, "max": NEAREST})
    distance_scale_km: float = field(metadata=POSITIVE)
    favourites_per_type: int = field(metadata={"min": 0, "max": 8})
    favourite_share: float = field(metadata=PROBABILITY)
    # Share of online purchases made at independent web shops rather than chains.
    independent_online_share: float = field(metadata=PROBABILITY)
    # A chain location sells this many times what a local shop of the same MCC sells.
    chain_sales_per_location: float = field(metadata=POSITIVE)


@dataclass(frozen=True)
class Trip:
    rate_per_year: float = field(metadata=NON_NEGATIVE)
    duration_days_mean: float = field(metadata={"min": 1.0})
    foreign_probability: float = field(metadata=PROBABILITY)
    income_elasticity: float
    # Foreign trips grow with wealth (Altman): odds scale by (income/median)^x.
    foreign_income_elasticity: float
    weekend_start: bool
    # How far a trip in the country goes: 0 picks the destination by population alone;
    # above 0, a city d km away (past travel.destination_distance_km_min) is kept with
    # chance exp(-(d - min) / scale), so trips by car stay within a drive.
    distance_scale_km: float = field(default=0.0, metadata=NON_NEGATIVE)


TRIP_KINDS = ("getaway", "vacation", "business")  # the fields of Travel that are trips
# A shock target beside goods types and trip kinds: scales the odds that a trip goes abroad
# (the trips that no longer do stay in the country).
ABROAD = "abroad"


@dataclass(frozen=True)
class Travel:
    getaway: Trip
    vacation: Trip
    business: Trip
    destination_distance_km_min: float = field(metadata=NON_NEGATIVE)


@dataclass(frozen=True)
class Errors:
    """Per-attempt probabilities of the error strings a ledger row can carry."""

    insufficient_balance: float = field(metadata=PROBABILITY)
    bad_pin: float = field(metadata=PROBABILITY)
    technical_glitch: float = field(metadata=PROBABILITY)
    bad_cvv: float = field(metadata=PROBABILITY)
    bad_expiration: float = field(metadata=PROBABILITY)
    bad_card_number: float = field(metadata=PROBABILITY)
    bad_zipcode: float = field(metadata=PROBABILITY)
    # A declined purchase is tried again, once, this often, this many seconds later on
    # average (plus half a minute): after Insufficient Balance mostly with another card.
    retry_probability: float = field(metadata=PROBABILITY)
    retry_delay_seconds_mean: float = field(metadata=NON_NEGATIVE)


@dataclass(frozen=True)
class Calendar:
    """Which named days (reference.holiday_names: the holidays package's public holidays and
    observances, and Black Friday) change spending. Every other public holiday, and each
    day named in `shopping_days`, scales a goods type's rate by its holiday_factor; each day
    named in `closed_holidays`, when most shops shut, by its closed_factor."""

    closed_holidays: list[str]
    shopping_days: list[str]


@dataclass(frozen=True)
class Refunds:
    delay_days_max: int = field(metadata={"min": 1})
    online_factor: float = field(metadata=NON_NEGATIVE)


@dataclass(frozen=True)
class RandomFraud:
    """Altman's second mechanism: fraud at random times on random cards, no fraudster."""

    episodes_per_year: float = field(metadata=NON_NEGATIVE)
    burst_mean: float = field(metadata={"min": 1.0})
    online_share: float = field(metadata=PROBABILITY)
    amount_median: float = field(metadata=POSITIVE)
    amount_sigma: float = field(metadata=NON_NEGATIVE)


@dataclass(frozen=True)
class Fraudsters:
    """The population of fraudsters: how many, where, and how long their careers last.

    The population is sized so that about max(minimum_active, active_per_1000_consumers *
    consumers / 1000) fraudsters work at any time, careers coming and going.
    """

    active_per_1000_consumers: float = field(metadata=NON_NEGATIVE)
    minimum_active: int = field(metadata={"min": 1})
    foreign_share: float = field(metadata=PROBABILITY)
    career_months_median: float = field(metadata=POSITIVE)
    career_months_sigma: float = field(metadata=NON_NEGATIVE)
    careers_start_years_before: float = field(metadata=NON_NEGATIVE)
    pause_probability: float = field(metadata=PROBABILITY)
    pause_months_mean: float = field(metadata=NON_NEGATIVE)
    work_days_per_week_mean: float = field(metadata={"min": 1.0, "max": 7.0})
    work_hours_per_day_mean: float = field(metadata={"min": 1.0, "max": 24.0})


@dataclass(frozen=True)
class Compromise:
    """How cards get exposed, as events with a time and a place."""

    breaches_per_year: float = field(metadata=NON_NEGATIVE)
    breach_window_days: int = field(metadata={"min": 1})
    breach_card_probability: float = field(metadata=PROBABILITY)
    breach_use_delay_days_mean: float = field(metadata=NON_NEGATIVE)
    skim_merchant_share_per_quarter: float = field(metadata=PROBABILITY)
    skim_card_probability: float = field(metadata=PROBABILITY)
    skim_mccs: list[int]
    phishing_per_card_year: float = field(metadata=NON_NEGATIVE)
    lost_stolen_per_card_year: float = field(metadata=NON_NEGATIVE)
    # Which methods a fraudster may use with each kind of compromised card data.
    breach_methods: list[str]
    skimming_methods: list[str]
    phishing_methods: list[str]
    lost_stolen_methods: list[str]


@dataclass(frozen=True)
class FraudMethod:
    """How a fraudster uses a card: what, how much, how fast, and how visible it is."""

    weight: float = field(metadata=NON_NEGATIVE)
    online: bool
    attempts_mean: float = field(metadata={"min": 1.0})
    span_days: float = field(metadata=NON_NEGATIVE)
    amount_median: float = field(metadata=POSITIVE)
    amount_sigma: float = field(metadata=NON_NEGATIVE)
    types: list[str]
    detect_probability: float = field(metadata=PROBABILITY)
    detect_delay_hours: float = field(metadata=NON_NEGATIVE)
    # Card testing: this many tiny probes before the real purchases.
    probes_mean: float = field(default=0.0, metadata=NON_NEGATIVE)


@dataclass(frozen=True)
class Fraud:
    error_multiplier: float = field(metadata={"min": 1.0})
    reissue_days: int = field(metadata={"min": 0})
    consumer_notices_probability: float = field(metadata=PROBABILITY)
    consumer_report_days_mean: float = field(metadata=POSITIVE)
    lost_card_report_hours_mean: float = field(metadata=POSITIVE)
    random: RandomFraud
    fraudsters: Fraudsters
    compromise: Compromise
    methods: dict[str, FraudMethod]


@dataclass(frozen=True)
class Tables:
    """Paths of the world's CSV tables, relative to the world file that names them."""

    goods: str
    goods_mcc: str
    hours: str
    weekdays: str
    seasons: str
    ages: str
    mccs: str
    chains: str
    drift: str
    # Optional: the US cities of reference.cities() that are not places of their own
    # (boroughs, neighbourhoods, duplicates). A world without it excludes none.
    place_exclusions: str = ""
    # Optional: shocks, periods when some goods types' rates, trips, or the odds that a trip
    # goes abroad change by a factor (a pandemic, say). A world without it has none.
    shocks: str = ""
    # Optional: the countries trips abroad go to and their weights (trips there); a trip
    # picks a country so, then a city of it by population. A world without it picks among
    # all the foreign cities by population.
    destinations: str = ""


@dataclass(frozen=True)
class CalibrationTarget:
    value: float
    tolerance: float = field(metadata=NON_NEGATIVE)
    source: str


@dataclass(frozen=True)
class WorldSpec:
    """The parsed, validated TOML of a world (tables not yet read)."""

    name: str
    description: str
    simulation: Simulation
    population: Population
    places: Places
    cards: Cards
    merchants: Merchants
    travel: Travel
    calendar: Calendar
    errors: Errors
    refunds: Refunds
    fraud: Fraud
    tables: Tables
    sources: dict[str, str] = field(default_factory=dict)
    calibration: dict[str, CalibrationTarget] = field(default_factory=dict)
    extends: str = ""


# The columns each table must have, and their kinds ("str", "int", "float", "bool").
TABLE_COLUMNS: dict[str, dict[str, str]] = {
    "goods": {
        "type": "str",
        "category": "str",
        "participation": "float",
        "rate_per_year": "float",
        "rate_shape": "float",
        "income_elasticity": "float",
        "amount_median": "float",
        "amount_sigma": "float",
        "amount_income_elasticity": "float",
        "round_share": "float",
        "round_unit": "float",
        "hour_profile": "str",
        "weekday_profile": "str",
        "season_profile": "str",
        "holiday_factor": "float",
        "closed_factor": "float",
        "getaway_factor": "float",
        "vacation_factor": "float",
        "business_factor": "float",
        "retired_factor": "float",
        "online_share": "float",
        "refund_rate": "float",
        "recurring": "bool",
    },
    "goods_mcc": {"type": "str", "mcc": "int", "weight": "float"},
    "hours": {"profile": "str", **{f"h{h:02d}": "float" for h in range(24)}},
    "weekdays": {
        "profile": "str",
        **{d: "float" for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
    },
    "seasons": {"profile": "str", **{f"m{m:02d}": "float" for m in range(1, 13)}},
    "ages": {"age_from": "int", "age_to": "int", "share": "float"},
    "mccs": {"mcc": "int", "local_per_100k": "float", "card_present": "bool"},
    "chains": {
        "chain": "str",
        "mcc": "int",
        "weight": "float",
        "locations_per_100k": "float",
        "online": "bool",
    },
    "drift": {
        "year": "int",
        "online_multiplier": "float",
        "chip_card_share": "float",
        "chip_terminal_share": "float",
        "spend_multiplier": "float",
        "price_level": "float",
    },
    "place_exclusions": {"geonameid": "int", "name": "str", "state": "str", "reason": "str"},
    "shocks": {"shock": "str", "start": "str", "end": "str", "target": "str", "factor": "float"},
    "destinations": {"country": "str", "trips": "float"},
}
# Tables a world may leave out or leave without rows.
OPTIONAL_TABLES = ("place_exclusions", "shocks", "destinations")


@dataclass(frozen=True)
class World:
    """A loaded world: its validated spec, its tables, and where it came from."""

    spec: WorldSpec
    tables: dict[str, pd.DataFrame]
    path: Path
    config_hash: str

    @property
    def name(self) -> str:
        return self.spec.name


def build(cls: type, data: dict, *, file: Path, prefix: str = "") -> typing.Any:
    """Build dataclass `cls` from a TOML mapping, validating keys, types and ranges."""
    if not isinstance(data, dict):
        raise WorldError(f"{file}: [{prefix or cls.__name__}] must be a table, found {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        where = _key(prefix, unknown[0])
        raise WorldError(
            f"{file}: unknown key '{where}'; expected one of: {', '.join(sorted(fields))}"
        )
    values = {}
    for name, f in fields.items():
        key = _key(prefix, name)
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise WorldError(f"{file}: missing key '{key}'")
            continue
        values[name] = _convert(hints[name], data[name], file=file, key=key)
        _check_range(f.metadata, values[name], file=file, key=key)
    return cls(**values)


def _key(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _convert(hint: typing.Any, value: typing.Any, *, file: Path, key: str) -> typing.Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return build(hint, value, file=file, prefix=key)
    if origin is dict:
        _, value_hint = typing.get_args(hint)
        if not isinstance(value, dict):
            raise WorldError(f"{file}: '{key}' must be a table, found {value!r}")
        return {
            str(k): _convert(value_hint, v, file=file, key=f"{key}.{k}") for k, v in value.items()
        }
    if origin is list:
        (item_hint,) = typing.get_args(hint)
        if not isinstance(value, list):
            raise WorldError(f"{file}: '{key}' must be a list, found {value!r}")
        return [_convert(item_hint, v, file=file, key=f"{key}[{i}]") for i, v in enumerate(value)]
    if origin in (typing.Union, types.UnionType):
        raise TypeError(f"unsupported hint {hint}")  # not used by the schema
    if hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif hint is str:
        if isinstance(value, str):
            return value
    elif hint is dt.date:
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            return value
        if isinstance(value, str):
            try:
                return dt.date.fromisoformat(value)
            except ValueError:
                pass
    else:
        raise TypeError(f"unsupported hint {hint}")
    expected = {
        dt.date: "a date (YYYY-MM-DD)",
        int: "an integer",
        float: "a number",
        bool: "true or false",
        str: "a string",
    }[hint]
    raise WorldError(f"{file}: '{key}' must be {expected}, found {value!r}")


def fraudster_count(spec: WorldSpec) -> int:
    """Fraudsters the simulator builds: enough careers over the period, and the years before
    it when careers start, that about `active` work at any time."""
    fs = spec.fraud.fraudsters
    days = (spec.simulation.end - spec.simulation.start).days + int(
        fs.careers_start_years_before * 365.2425
    )
    active = max(fs.minimum_active, spec.simulation.consumers * fs.active_per_1000_consumers / 1000)
    # A lognormal career's mean is its median * exp(sigma^2 / 2).
    career_days = fs.career_months_median * 30.44 * float(np.exp(fs.career_months_sigma**2 / 2))
    return max(1, round(active * days / career_days))


def share_keys(hint: typing.Any = None, prefix: str = "") -> list[str]:
    """Dotted keys of the tables of shares (`sum_to_one`): a world that extends another
    gives such a table whole, not merged key by key with its parent's."""
    hint = WorldSpec if hint is None else hint
    keys = []
    for f in dataclasses.fields(hint):
        sub = typing.get_type_hints(hint)[f.name]
        if f.metadata.get("sum_to_one"):
            keys.append(prefix + f.name)
        elif dataclasses.is_dataclass(sub):
            keys += share_keys(sub, prefix + f.name + ".")
    return keys


def constraints(key: str) -> typing.Mapping:
    """The constraints (`min`, `max`, ...) on the number at a dotted key of a world file,
    such as `errors.bad_pin`; empty for a key that has none."""
    hint: typing.Any = WorldSpec
    meta: typing.Mapping = {}
    for part in key.split("."):
        if dataclasses.is_dataclass(hint):
            found = {f.name: f for f in dataclasses.fields(hint)}.get(part)
            if found is None:
                return {}
            hint, meta = typing.get_type_hints(hint)[part], found.metadata
        elif typing.get_origin(hint) is dict:
            hint = typing.get_args(hint)[1]  # a mapping's constraints hold for each value
        else:
            return {}
    return meta


def out_of_range(meta: typing.Mapping, number: float) -> str | None:
    """What `number` must be to meet the constraints `meta`, or None when it meets them."""
    if not math.isfinite(number):
        return "a finite number"
    low, high = meta.get("min"), meta.get("max")
    if low is not None and (number < low or (meta.get("exclusive_min") and number == low)):
        return f"{'greater than' if meta.get('exclusive_min') else 'at least'} {low}"
    if high is not None and number > high:
        return f"at most {high}"
    return None


def _check_range(meta: typing.Mapping, value: typing.Any, *, file: Path, key: str) -> None:
    numbers = value.items() if isinstance(value, dict) else [(None, value)]
    for sub, number in numbers:
        if not isinstance(number, (int, float)):
            continue
        where = f"{key}.{sub}" if sub is not None else key
        expected = out_of_range(meta, number)
        if expected:
            raise WorldError(f"{file}: '{where}' must be {expected}, found {number}")
    if meta.get("sum_to_one"):
        total = sum(value.values())
        if abs(total - 1.0) > 1e-6:
            raise WorldError(f"{file}: '{key}' shares must sum to 1, found {total:.6g}")
