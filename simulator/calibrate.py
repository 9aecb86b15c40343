"""Calibration: measure a world's `[calibration]` targets on a simulated sample, and fit
named parameters so that the sample meets them.

A target's name says what it measures (`amount_median`, `chip_in_person_share_2017`,
`ticket_credit_2020`, ...): MEASURES maps name patterns to functions over the report's
figures (report_figures.py), so the calibration reads a ledger exactly as the report does
and adding a measurement is one line here plus one line in the world file.

`fit` moves named world parameters (a dotted TOML key such as `errors.bad_pin`, or a table
column such as `goods.amount_median`, which is scaled as a whole) within bounds, simulates
a sample for each candidate with the same seed (common random numbers keep the objective
smooth enough for Nelder-Mead), and writes a world file that `extends` the original with
the fitted values.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import tempfile
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cardworld.errors import ConfigError, LedgerError, WorldError
from cardworld.simulator.ledger import read_manifest
from cardworld.simulator.report_figures import compute_figures
from cardworld.worlds.load import SHIPPED, load_world, world_file
from cardworld.worlds.schema import (
    NON_NEGATIVE,
    TABLE_COLUMNS,
    CalibrationTarget,
    constraints,
    out_of_range,
)

# A calibration sample runs in a few minutes on two cores: at most this many consumers
# unless asked for more, over the world's whole period.
SAMPLE_CONSUMERS = 400


def _by_key(records: list[dict], key: str, value) -> dict:
    for record in records:
        if record[key] == value:
            return record
    raise KeyError(value)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def _error_share(f: dict, error: str) -> float:
    rows = f["overview"]["rows"]
    return sum(e["rows"] for e in f["errors"] if _slug(e["error"]) == error) / rows


def _error_mix_ordered(f: dict) -> float:
    """1 when insufficient balance > bad PIN > technical glitch > every other error, else 0."""
    shares = {_slug(e["error"]): e["share"] for e in f["errors"]}
    lead = [shares.get(k, 0.0) for k in ("insufficient_balance", "bad_pin", "technical_glitch")]
    others = [
        v
        for k, v in shares.items()
        if k not in ("insufficient_balance", "bad_pin", "technical_glitch")
    ]
    return float(lead[0] > lead[1] > lead[2] > max(others, default=0.0))


def _channel_share(f: dict, channel: str) -> float:
    try:
        return _by_key(f["channels"], "channel", channel)["share"]
    except KeyError:
        return 0.0


def _refund_share(f: dict, channel: str) -> float:
    return _by_key(f["refunds"]["by_channel"], "channel", channel)["share"]


def _refund_online_ratio(f: dict) -> float:
    """Refund share of online rows over the refund share of in-person rows."""
    rows = {r["channel"]: r for r in f["refunds"]["by_channel"]}
    online = rows["online"]["refunds"] / rows["online"]["rows"]
    in_person = [r for c, r in rows.items() if c != "online"]
    return online / (sum(r["refunds"] for r in in_person) / sum(r["rows"] for r in in_person))


def _ticket(f: dict, kind: str, year: str | None = None) -> float:
    if year is None:
        return _by_key(f["cards"]["kinds"], "kind", kind)["ticket"]
    for r in f["cards"]["ticket_by_kind_year"]:
        if r["kind"] == kind and r["year"] == int(year):
            return r["ticket"]
    raise KeyError(f"{kind} {year}")


def _ticket_order(f: dict, year: str | None = None) -> float:
    """1 when the average ticket is credit > debit > prepaid, else 0."""
    credit, debit, prepaid = (_ticket(f, k, year) for k in ("credit", "debit", "prepaid"))
    return float(credit > debit > prepaid)


def _fraud_value_bps(f: dict, first: str, last: str) -> float:
    years = [r for r in f["fraud"]["by_year"] if int(first) <= r["year"] <= int(last)]
    return 1e4 * sum(r["fraud_amount"] for r in years) / sum(r["amount"] for r in years)


def _per_consumer(f: dict, year: str) -> float:
    return _by_key(f["per_year"], "year", int(year))["per_consumer"]


# Target name pattern -> measurement over the figures; the groups become arguments.
MEASURES: dict[str, Callable[..., float]] = {
    r"rows": lambda f: f["overview"]["rows"],
    r"amount_mean": lambda f: f["amounts"]["mean"],
    r"amount_median": lambda f: f["amounts"]["p50"],
    r"amount_p(90|99)": lambda f, q: f["amounts"][f"p{q}"],
    r"purchase_mean": lambda f: f["amounts"]["purchases"]["mean"],
    r"refund_share": lambda f: f["refunds"]["share"],
    r"refund_share_(swipe|chip|online)": _refund_share,
    r"refund_online_ratio": _refund_online_ratio,
    r"error_share": lambda f: f["error_share"],
    r"error_share_([a-z_]+)": _error_share,
    r"error_mix_ordered": _error_mix_ordered,
    r"(swipe|chip|online)_share": lambda f, c: _channel_share(f, c),
    r"(swipe|chip|online)_share_(\d{4})": lambda f, c, y: _by_key(
        f["channel_by_year"], "year", int(y)
    ).get(f"{c}_share", 0.0),
    r"chip_in_person_share_(\d{4})": lambda f, y: _by_key(f["channel_by_year"], "year", int(y))[
        "chip_in_person_share"
    ],
    # Cards as TabFormer counts them: a reissue after fraud continues its account.
    r"cards_per_consumer": lambda f: f["cards"]["accounts_per_consumer"],
    r"cards_held_per_consumer": lambda f: f["cards"]["per_consumer"],
    r"transactions_per_card_(\d{4})_(\d{4})": lambda f, first, last: f["cards"][
        "transactions_per_account_used"
    ],
    r"ticket_(credit|debit|prepaid)": lambda f, k: _ticket(f, k),
    r"ticket_(credit|debit|prepaid)_(\d{4})": _ticket,
    r"ticket_order": lambda f: _ticket_order(f),
    r"ticket_order_(\d{4})": _ticket_order,
    r"fraud_share": lambda f: f["fraud"]["share"],
    r"fraud_value_bps": lambda f: f["fraud"]["value_bps"],
    r"fraud_value_bps_(\d{4})_(\d{4})": _fraud_value_bps,
    r"transactions_per_consumer_year": lambda f: f["transactions_per_consumer_year"],
    r"transactions_per_consumer_(\d{4})": _per_consumer,
    r"transactions_change_(\d{4})_(\d{4})": lambda f, a, b: (
        _per_consumer(f, b) / _per_consumer(f, a) - 1
    ),
    r"away_share": lambda f: f["travel"]["away_share"],
    r"holiday_ratio": lambda f: f["holidays"]["ratio"],
}


def check_targets(world) -> None:
    """Fail before simulating when a target of the loaded `world` has no measurement."""
    for name in world.spec.calibration:
        if not any(re.fullmatch(pattern, name) for pattern in MEASURES):
            raise WorldError(
                f"{world.path}: calibration target '{name}' has no measurement; known "
                "patterns: " + ", ".join(MEASURES)
            )


# Targets that count over the years their name ends with (TabFormer's 1991-2020 for
# `us`), so a sample over a shorter period measures proportionally less: the measurement is
# scaled by those years' days over the sample's (a world that extends `us` with a shorter
# period keeps the target's meaning). Shares, ratios, averages per transaction and per-year
# figures need no scaling; `cards_per_consumer` grows with the period but not in proportion
# (most accounts predate it), so it is left as measured.
PER_PERIOD = (r"transactions_per_card_\d{4}_\d{4}",)


def _years(name: str) -> tuple[int, int] | None:
    """The first and last year a year-specific target (`..._2018`, `..._2015_2016`) is about."""
    years = [int(y) for y in re.findall(r"(?<![0-9])(?:19|20)[0-9]{2}(?![0-9])", name)]
    return (min(years), max(years)) if years else None


def _span(first: int, last: int) -> str:
    return str(first) if first == last else f"{first}-{last}"


def _days(period: Sequence) -> int:
    start, end = (dt.date.fromisoformat(str(d)) for d in period)
    return (end - start).days + 1


def measure(name: str, figures: dict) -> float | None:
    """The value of target `name` on a ledger's figures (None when the ledger lacks it,
    e.g. a year outside its period)."""
    for pattern, function in MEASURES.items():
        match = re.fullmatch(pattern, name)
        if match:
            try:
                value = function(figures, *match.groups())
            except (KeyError, ZeroDivisionError, TypeError):
                return None
            return None if value is None or math.isnan(value) else float(value)
    raise WorldError(
        f"calibration target '{name}' has no measurement; known patterns: " + ", ".join(MEASURES)
    )


@dataclass(frozen=True)
class Comparison:
    """One target against its measurement on a sample; `skipped` says why a target could
    not be measured on it (a year outside the sample), `note` how the measurement was
    normalised to the target's period."""

    name: str
    value: float
    tolerance: float
    source: str
    measured: float | None
    skipped: str | None = None
    note: str = ""

    @property
    def passed(self) -> bool:
        return self.measured is not None and abs(self.measured - self.value) <= self.tolerance

    @property
    def missed(self) -> bool:
        """Measured and out of tolerance, or not measurable on a sample that should allow it."""
        return self.skipped is None and not self.passed

    @property
    def score(self) -> float:
        """Squared distance in tolerances (the fit's objective); large when unmeasured, 0 when
        skipped (no candidate can measure it, so it does not move the fit)."""
        if self.skipped is not None:
            return 0.0
        if self.measured is None:
            return 1e6
        return ((self.measured - self.value) / max(self.tolerance, 1e-12)) ** 2


def compare(figures: dict, targets: dict[str, CalibrationTarget]) -> list[Comparison]:
    """Every target against its measurement on `figures`, in the targets' order.

    A target about years the sample lacks is skipped; a PER_PERIOD target's measurement is
    scaled from the sample's period to its years.
    """
    sample = figures["overview"]["period"]
    first, last = (int(str(d)[:4]) for d in sample)
    comparisons = []
    for name, t in targets.items():
        measured = measure(name, figures)
        skipped, note = None, ""
        years = _years(name)
        span = years and _span(*years)
        if years and (years[1] < first or years[0] > last):
            skipped = f"no {span} in the sample ({_span(first, last)})"
            measured = None
        elif years and measured is None and (years[0] < first or years[1] > last):
            skipped = f"needs {span}; the sample has {_span(first, last)}"
        elif measured is not None and any(re.fullmatch(p, name) for p in PER_PERIOD):
            period = (f"{years[0]}-01-01", f"{years[1]}-12-31")
            sample_days, target_days = _days(sample), _days(period)
            if sample_days != target_days:
                note = (
                    f"{measured:.4g} in the sample's {sample_days:,} days, scaled to "
                    f"{span}'s {target_days:,}"
                )
                measured *= target_days / sample_days
        comparisons.append(
            Comparison(name, t.value, t.tolerance, t.source, measured, skipped, note)
        )
    return comparisons


@dataclass(frozen=True)
class CalibrationReport:
    world: str
    ledger: Path | None  # None when the sample was simulated into a temporary directory
    consumers: int
    period: tuple[str, str]
    rows: int
    comparisons: list[Comparison]

    @property
    def passed(self) -> bool:
        """Every target met, but those the sample cannot measure (skipped)."""
        return not any(c.missed for c in self.comparisons)


def _sample_options(world_path, consumers, start, end, seed) -> dict:
    spec = load_world(world_path).spec
    return {
        "consumers": consumers or min(spec.simulation.consumers, SAMPLE_CONSUMERS),
        "start": start,
        "end": end,
        "seed": seed,
    }


def calibrate(
    world: str | Path,
    *,
    ledger: str | Path | None = None,
    consumers: int | None = None,
    start=None,
    end=None,
    seed: int | None = None,
    workers: int | None = None,
    keep: str | Path | None = None,
    on_progress: Callable[[int, int, int], None] | None = None,
) -> CalibrationReport:
    """Compare the world's calibration targets with a sample of it.

    The sample is `ledger` when given (an existing ledger of this world: its manifest must
    name it), else a fresh simulation of `consumers` (default: the world's, at most
    SAMPLE_CONSUMERS) over the world's period (or start..end), written to `keep` or a
    temporary directory.
    """
    from cardworld.simulator.run import simulate

    loaded = load_world(world)
    if not loaded.spec.calibration:
        raise WorldError(f"{loaded.path}: has no [calibration] targets to compare")
    check_targets(loaded)
    if ledger is not None:
        given = {
            "--consumers": consumers,
            "--start": start,
            "--end": end,
            "--seed": seed,
            "--workers": workers,
            "--keep": keep,
        }
        flags = [flag for flag, value in given.items() if value is not None]
        if flags:
            raise ConfigError(
                f"{', '.join(flags)}: set(s) the sample to simulate, but --ledger {ledger} "
                "measures an existing ledger as it is; drop "
                f"{'it' if len(flags) == 1 else 'them'} or --ledger"
            )
        simulated_from = read_manifest(ledger).get("world")
        if simulated_from is None:
            raise LedgerError(
                f"--ledger {ledger}: its manifest does not say which world it was simulated "
                f"from; expected a ledger written by `cardworld simulate`"
            )
        if simulated_from != loaded.name:
            raise ConfigError(
                f"--ledger {ledger}: was simulated from world '{simulated_from}', not from "
                f"'{loaded.name}' (--world {world}); measure a ledger of '{loaded.name}', or "
                "pass the world it came from"
            )
        figures = compute_figures(ledger)
        return _report(loaded, Path(ledger), figures)
    options = _sample_options(world, consumers, start, end, seed)
    if (
        keep is not None
        and Path(keep).exists()
        and (Path(keep).is_file() or any(Path(keep).iterdir()))
    ):
        raise LedgerError(
            f"{keep}: already exists; --keep writes a new ledger, choose another path"
        )
    with tempfile.TemporaryDirectory(prefix="cardworld-calibrate-") as tmp:
        out = Path(keep) if keep else Path(tmp) / "sample"
        simulate(
            world, out, workers=workers, overwrite=keep is None, on_progress=on_progress, **options
        )
        figures = compute_figures(out)
        return _report(loaded, Path(keep) if keep else None, figures)


def _report(loaded, ledger_path, figures) -> CalibrationReport:
    overview = figures["overview"]
    return CalibrationReport(
        world=loaded.name,
        ledger=ledger_path,
        consumers=overview["consumers"],
        period=tuple(overview["period"]),
        rows=overview["rows"],
        comparisons=compare(figures, loaded.spec.calibration),
    )


# --- fitting ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Parameter:
    """A world parameter the fit may move: a dotted TOML key, or a table column (scaled)."""

    key: str
    low: float
    high: float
    start: float
    table: str = ""  # set for a table column: the value is a factor on the whole column
    column: str = ""


@dataclass(frozen=True)
class FitResult:
    path: Path
    values: dict[str, float]
    before: list[Comparison]
    after: list[Comparison]
    evaluations: int
    history: list[tuple[dict[str, float], float]] = field(default_factory=list)


def parse_parameter(text: str, world: str | Path) -> Parameter:
    """`KEY` or `KEY=LOW:HIGH`: a dotted TOML key of the world or `TABLE.COLUMN`.

    Without bounds a key moves within [x/2, 2x] of its value, a column by a factor in
    [0.5, 2], each within its domain (a probability in [0, 1], a factor at least 0, ...).
    """
    key, _, bounds = text.partition("=")
    key = key.strip()
    table, _, column = key.partition(".")
    if table in TABLE_COLUMNS:
        if TABLE_COLUMNS[table].get(column) != "float":
            numeric = [c for c, kind in TABLE_COLUMNS[table].items() if kind == "float"]
            raise ConfigError(
                f"fit parameter '{key}': table '{table}' has no numeric column '{column}'; "
                f"expected one of {', '.join(numeric)}"
            )
        low, high = _bounds(bounds, key, 1.0, NON_NEGATIVE)
        return Parameter(key, low, high, min(max(1.0, low), high), table=table, column=column)
    domain = constraints(key)
    if domain.get("sum_to_one"):
        parent = key.rpartition(".")[0]
        raise ConfigError(
            f"fit parameter '{key}': one of the shares in '{parent}', which must sum to 1, so "
            "it cannot move alone; fit a dotted key or a table column instead"
        )
    current = _toml_value(world, key)
    low, high = _bounds(bounds, key, current, domain)
    return Parameter(key, low, high, min(max(current, low), high))


def _bounds(text: str, key: str, current: float, domain: Mapping) -> tuple[float, float]:
    """LOW:HIGH from `text`, which must lie in the parameter's `domain` (schema metadata)."""
    if not text:
        a, b = current / 2, current * 2
        low, high = (min(a, b), max(a, b)) if current else (-1.0, 1.0)
        return max(low, domain.get("min", low)), min(high, domain.get("max", high))
    try:
        low, high = (float(x) for x in text.split(":"))
    except ValueError:
        raise ConfigError(
            f"fit parameter '{key}': bounds must be LOW:HIGH numbers, found {text!r}"
        ) from None
    for name, bound in (("LOW", low), ("HIGH", high)):
        expected = out_of_range(domain, bound)
        if expected:
            raise ConfigError(
                f"fit parameter '{key}': {name} must be {expected}, found {bound} in {text!r}"
            )
    if not low < high:
        raise ConfigError(f"fit parameter '{key}': LOW must be below HIGH, found {text!r}")
    return low, high


def _toml_value(world: str | Path, key: str) -> float:
    """The value of a dotted key in the loaded world (section fields are the TOML keys)."""
    import dataclasses

    node = dataclasses.asdict(load_world(world).spec)
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            raise ConfigError(f"fit parameter '{key}': no such key in {world_file(world)}")
        node = node[part]
    if isinstance(node, bool) or not isinstance(node, (int, float)):
        raise ConfigError(f"fit parameter '{key}': must be a number, found {node!r}")
    return float(node)


def write_world(
    world: str | Path, values: dict[str, float], parameters: Sequence[Parameter], out: Path
) -> Path:
    """Write `out` (a world.toml) extending `world` with the given parameter values.

    Scaled table columns go to CSV files beside `out`, named by the new world's [tables].
    """
    base = world_file(world)
    loaded = load_world(world)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    extends = base.parent.name if base.parent.parent == SHIPPED else str(base)
    sections: dict[str, dict[str, float | str]] = {}
    tables: dict[str, object] = {}
    notes: dict[str, list[str]] = {}
    for p in parameters:
        if p.table:
            df = tables.setdefault(p.table, loaded.tables[p.table].copy())
            df[p.column] = (df[p.column] * values[p.key]).round(6)
            notes.setdefault(p.table, []).append(f"{p.column} x {values[p.key]:.6g}")
        else:
            section, _, name = p.key.rpartition(".")
            sections.setdefault(section, {})[name] = values[p.key]
    for name, df in tables.items():
        path = out.parent / f"{out.stem}.{name}.csv"
        header = f"# {name} of world '{loaded.name}' with {', '.join(notes[name])} (cardworld calibrate --fit)\n"
        path.write_text(header + df.to_csv(index=False))
        sections.setdefault("tables", {})[name] = path.name
    lines = [
        f"# Fitted by `cardworld calibrate --fit` from {base}.",
        f'extends = "{extends}"',
        f'name = "{loaded.name}-fit"',
        f'description = "{loaded.name} with fitted {", ".join(p.key for p in parameters)}"',
    ]
    for section, entries in sections.items():
        lines.append(f"\n[{section}]")
        lines.extend(f"{name} = {_toml_literal(value)}" for name, value in entries.items())
    out.write_text("\n".join(lines) + "\n")
    tomllib.loads(out.read_text())  # what we wrote must parse
    return out


def _toml_literal(value) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    return repr(round(float(value), 6))


def fit(
    world: str | Path,
    parameters: Sequence[str | Parameter],
    out: str | Path,
    *,
    targets: Sequence[str] | None = None,
    consumers: int | None = None,
    start=None,
    end=None,
    seed: int | None = None,
    workers: int | None = None,
    max_evaluations: int = 24,
    on_evaluation: Callable[[int, dict[str, float], float], None] | None = None,
) -> FitResult:
    """Tune `parameters` of `world` so a sample meets its targets; write the fitted world.

    The objective is the sum over targets (all, or those named) of the squared distance
    from the target in tolerances. Each evaluation simulates a sample with the same seed.
    """
    import numpy as np
    from scipy.optimize import minimize

    from cardworld.simulator.run import simulate

    loaded = load_world(world)
    check_targets(loaded)
    chosen = dict(loaded.spec.calibration)
    if targets:
        unknown = sorted(set(targets) - set(chosen))
        if unknown:
            raise ConfigError(
                f"{loaded.path}: no calibration target(s) {unknown}; expected some of {sorted(chosen)}"
            )
        chosen = {k: chosen[k] for k in targets}
    if not chosen:
        raise WorldError(f"{loaded.path}: has no [calibration] targets to fit")
    params = [p if isinstance(p, Parameter) else parse_parameter(p, world) for p in parameters]
    if not params:
        raise ConfigError("fit needs at least one parameter to move")
    options = _sample_options(world, consumers, start, end, seed)
    out = Path(out)
    if out.resolve() == Path(loaded.path).resolve():
        raise ConfigError(
            f"--out {out}: is the world being fitted; the fitted world extends it, so write it "
            "to another file"
        )
    history: list[tuple[dict[str, float], float]] = []
    measured: list[list[Comparison]] = []  # per evaluation, beside history

    with tempfile.TemporaryDirectory(prefix="cardworld-fit-") as tmp:

        def evaluate(values: dict[str, float]) -> list[Comparison]:
            n = len(history)
            candidate = write_world(world, values, params, Path(tmp) / f"c{n:03d}" / "world.toml")
            sample = Path(tmp) / f"c{n:03d}" / "ledger"
            try:
                simulate(candidate, sample, workers=workers, overwrite=True, **options)
            except WorldError as exc:
                # The candidate's files are temporary: name the values that made it invalid.
                setting = ", ".join(f"{key}={value:.6g}" for key, value in values.items())
                reason = str(exc)
                for folder in (candidate.parent, candidate.parent.resolve()):
                    reason = reason.removeprefix(f"{folder}/")
                raise ConfigError(
                    f"--param: at {setting} the world is not valid ({reason}); narrow the range"
                ) from None
            comparisons = compare(compute_figures(sample), chosen)
            return comparisons

        def objective(x: np.ndarray) -> float:
            values = {
                p.key: p.low + float(v) * (p.high - p.low) for p, v in zip(params, x, strict=True)
            }
            comparisons = evaluate(values)
            score = sum(c.score for c in comparisons)
            measured.append(comparisons)
            history.append((values, score))
            if on_evaluation:
                on_evaluation(len(history), values, score)
            return score

        x0 = np.array([(p.start - p.low) / (p.high - p.low) for p in params])
        minimize(
            objective,
            x0,
            method="Nelder-Mead",
            bounds=[(0.0, 1.0)] * len(params),
            options={
                "maxfev": max_evaluations,
                "xatol": 0.01,
                "fatol": 0.05,
                "initial_simplex": _simplex(x0),
            },
        )
        # The best sample seen, not the optimizer's last point: every sample was simulated.
        i = min(range(len(history)), key=lambda k: history[k][1])
        path = write_world(world, history[i][0], params, out)
    return FitResult(path, history[i][0], measured[0], measured[i], len(history), history)


def _simplex(x0):
    """A starting simplex a quarter of the box wide, pointing inwards from x0."""
    import numpy as np

    simplex = [x0]
    for i in range(len(x0)):
        x = x0.copy()
        x[i] = x[i] + 0.25 if x[i] <= 0.75 else x[i] - 0.25
        simplex.append(x)
    return np.array(simplex)
