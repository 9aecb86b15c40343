"""Target declarations: typed, validated objects built from TOML or from Python.

A target gives every transaction one number: an aggregate of the same user's transactions in
a window around it, filtered by MCC or category.

```toml
dtype = "float32"            # optional: float32 (default) or float64

[[target]]
name = "grocery_rest_of_week"
aggregate = "sum"            # sum, mean, count, min, max, topk_mean, any
window = "week"              # day, week (ISO, Monday first), month, or rolling "7d" / "36h"
                             # (rolling: up to 36525d, 100 years)
direction = "future"         # past (default) or future
include_current = false      # default: true for past, false for future
mcc = 5411                   # or mcc = [5411, 5422], or category = "groceries" / ["a", "b"]
# k = 3                      # topk_mean only: mean of the k largest amounts
# fill = nan                 # mean/min/max/topk_mean of an empty window (default NaN)
```

Windows. A calendar window is the bucket (local day, ISO week, calendar month) of the
transaction: past means the bucket's rows up to this one, future the rest of the bucket. A
rolling window of length W is (t - W, t] in the past and [t, t + W) in the future. "Up to this
one" follows the row order of the input after a stable sort by (user, timestamp), so rows
with equal timestamps count in the order they came. Sum, count and any of an empty window
are 0; mean, min, max and topk_mean give `fill`. `any` is a label: 1.0 when the window holds
a matching transaction, else 0.0 (e.g. "will this user buy a flight in the next 30
days": aggregate "any", window "30d", direction "future", category "airlines"). A
cardworld ledger's categories are its world's goods types (worlds/us/tables/goods.csv);
a category that occurs nowhere in the data is warned about, as is an MCC. Amounts are
taken as they are (refunds are negative).

Precision. Sums and means are differences of running float64 sums of the user's amounts,
so their absolute error is about 1e-16 times the user's running total of |amount|: far
below a cent for money, but where one user's amounts span more than about 12 orders of
magnitude (1e12 and 0.01), windows after the large ones lose the small ones.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from cardworld.errors import ConfigError

AGGREGATES = ("sum", "mean", "count", "min", "max", "topk_mean", "any")
CALENDAR_WINDOWS = ("day", "week", "month")
DIRECTIONS = ("past", "future")
DTYPES = ("float32", "float64")
MCC_MAX = 9999
K_MAX = 1024
# Rolling lengths are capped so that a timestamp plus or minus the length stays an int64
# (a 292,000-year window wrapped around and read past the rows).
ROLLING_MAX_DAYS = 36_525
FILL_AGGREGATES = ("mean", "min", "max", "topk_mean")
RESERVED_NAMES = ("txn_id",)

_ROLLING = re.compile(r"^\s*(\d+)\s*(d|h)\s*$", re.ASCII)
_UNIT_US = {"d": 86_400_000_000, "h": 3_600_000_000}
_TARGET_KEYS = (
    "name",
    "aggregate",
    "window",
    "direction",
    "include_current",
    "mcc",
    "category",
    "k",
    "fill",
)
_TOP_KEYS = ("dtype", "target")


def _fail(where: str, key: str, value: Any, expected: str) -> ConfigError:
    # A list in the TOML file is held as a tuple: it is shown as the user wrote it.
    shown = list(value) if isinstance(value, tuple) else value
    return ConfigError(f"{where}: {key} = {shown!r}: expected {expected}")


def parse_window(window: str, where: str = "target") -> tuple[str, int]:
    """Split a window into ("day" | "week" | "month", 0) or ("rolling", microseconds)."""
    if not isinstance(window, str):
        raise _fail(
            where, "window", window, 'day, week, month or a rolling length such as "7d" or "36h"'
        )
    if window in CALENDAR_WINDOWS:
        return window, 0
    found = _ROLLING.match(window)
    if found is None:
        raise _fail(
            where, "window", window, 'day, week, month or a rolling length such as "7d" or "36h"'
        )
    length = int(found.group(1)) * _UNIT_US[found.group(2)]
    if length <= 0:
        raise _fail(
            where,
            "window",
            window,
            "a rolling length of at least 1 (an empty window is impossible)",
        )
    if length > ROLLING_MAX_DAYS * _UNIT_US["d"]:
        raise _fail(
            where, "window", window, f"a rolling length of at most {ROLLING_MAX_DAYS}d (100 years)"
        )
    return "rolling", length


@dataclass(frozen=True)
class Target:
    """One target column: `aggregate` of matching amounts in `window` around each transaction."""

    name: str
    aggregate: str
    window: str
    direction: str = "past"
    include_current: bool | None = None
    mcc: int | tuple[int, ...] | None = None
    category: str | tuple[str, ...] | None = None
    k: int | None = None
    fill: float = math.nan

    def __post_init__(self) -> None:
        where = f"target {self.name!r}" if isinstance(self.name, str) else "target"
        if not isinstance(self.name, str) or not self.name.strip():
            raise _fail(where, "name", self.name, "a non-empty string (the output column name)")
        if self.name in RESERVED_NAMES:
            raise _fail(where, "name", self.name, f"a name other than {', '.join(RESERVED_NAMES)}")
        if self.aggregate not in AGGREGATES:
            raise _fail(where, "aggregate", self.aggregate, "one of " + ", ".join(AGGREGATES))
        parse_window(self.window, where)
        if self.direction not in DIRECTIONS:
            raise _fail(where, "direction", self.direction, "past or future")
        if self.include_current is None:
            object.__setattr__(self, "include_current", self.direction == "past")
        elif not isinstance(self.include_current, bool):
            raise _fail(where, "include_current", self.include_current, "true or false")
        if self.mcc is not None and self.category is not None:
            raise _fail(where, "category", self.category, "either mcc or category, not both")
        if self.mcc is not None:
            object.__setattr__(self, "mcc", _check_mccs(self.mcc, where))
        if self.category is not None:
            object.__setattr__(self, "category", _check_categories(self.category, where))
        if self.aggregate == "topk_mean":
            if isinstance(self.k, bool) or not isinstance(self.k, int) or not 1 <= self.k <= K_MAX:
                raise _fail(where, "k", self.k, f"an integer 1..{K_MAX} for topk_mean")
        elif self.k is not None:
            raise _fail(where, "k", self.k, "no k: k applies only to aggregate topk_mean")
        if isinstance(self.fill, bool) or not isinstance(self.fill, int | float):
            raise _fail(where, "fill", self.fill, "a number (nan allowed)")
        # One NaN object for every empty fill, so that targets compare equal (NaN != NaN).
        object.__setattr__(self, "fill", math.nan if math.isnan(self.fill) else float(self.fill))
        if self.aggregate not in FILL_AGGREGATES and not math.isnan(self.fill):
            raise _fail(
                where,
                "fill",
                self.fill,
                f"no fill for {self.aggregate}: only {', '.join(FILL_AGGREGATES)} can be empty "
                "(sum, count and any of an empty window are 0)",
            )

    def __reduce__(self) -> tuple:
        # Rebuild through __init__ so an unpickled target is validated and compares equal.
        return (type(self), tuple(getattr(self, item.name) for item in fields(self)))

    @property
    def rolling_us(self) -> int:
        """Rolling window length in microseconds, or 0 for a calendar window."""
        return parse_window(self.window)[1]

    @property
    def unit(self) -> str:
        """Window kind: day, week, month or rolling."""
        return parse_window(self.window)[0]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "target") -> Target:
        """Build a target from a TOML table, rejecting unknown keys by name."""
        if not isinstance(data, Mapping):
            raise _fail(where, "target", data, "a table of target keys")
        for key in data:
            if key not in _TARGET_KEYS:
                raise ConfigError(
                    f"{where}: {key} = {data[key]!r}: unknown key; expected one of "
                    + ", ".join(_TARGET_KEYS)
                )
        for key in ("name", "aggregate", "window"):
            if key not in data:
                raise ConfigError(f"{where}: missing required key {key!r}")
        values = dict(data)
        for key in ("mcc", "category"):
            if isinstance(values.get(key), list):
                values[key] = tuple(values[key])
        try:
            return cls(**values)
        except ConfigError as error:
            message = str(error)
            detail = message
            for prefix in (f"target {values['name']!r}: ", "target: "):
                detail = detail.removeprefix(prefix)
            raise ConfigError(f"{where}: {detail}") from None


def _check_mccs(mcc: Any, where: str) -> int | tuple[int, ...]:
    codes = mcc if isinstance(mcc, list | tuple) else (mcc,)
    expected = f"an MCC (integer 0..{MCC_MAX}) or a non-empty list of them"
    if not codes:
        raise _fail(where, "mcc", mcc, expected)
    for code in codes:
        if isinstance(code, bool) or not isinstance(code, int) or not 0 <= code <= MCC_MAX:
            raise _fail(where, "mcc", mcc, expected)
    return tuple(sorted(set(codes))) if isinstance(mcc, list | tuple) else mcc


def _check_categories(category: Any, where: str) -> str | tuple[str, ...]:
    names = category if isinstance(category, list | tuple) else (category,)
    expected = "a category name or a non-empty list of names"
    if not names or not all(isinstance(name, str) and name for name in names):
        raise _fail(where, "category", category, expected)
    return tuple(dict.fromkeys(names)) if isinstance(category, list | tuple) else category


@dataclass(frozen=True)
class TargetSet:
    """The targets computed together, in output column order, and the output dtype."""

    targets: tuple[Target, ...]
    dtype: str = "float32"
    source: str = field(default="<python>", compare=False)

    def __post_init__(self) -> None:
        targets = tuple(self.targets)
        object.__setattr__(self, "targets", targets)
        if not targets:
            raise ConfigError(f"{self.source}: target = []: expected at least one [[target]]")
        for target in targets:
            if not isinstance(target, Target):
                raise _fail(self.source, "target", target, "Target objects")
        seen: dict[str, int] = {}
        for index, target in enumerate(targets):
            if target.name in seen:
                raise _fail(
                    f"{self.source}: target[{index}]",
                    "name",
                    target.name,
                    f"unique target names (target[{seen[target.name]}] has it too)",
                )
            seen[target.name] = index
        if self.dtype not in DTYPES:
            raise _fail(self.source, "dtype", self.dtype, "float32 or float64")

    @property
    def names(self) -> list[str]:
        """Output column names, in order."""
        return [target.name for target in self.targets]

    def __len__(self) -> int:
        return len(self.targets)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "<dict>") -> TargetSet:
        """Build from a parsed TOML document: top-level `dtype` and `[[target]]` tables."""
        for key in data:
            if key not in _TOP_KEYS:
                raise ConfigError(
                    f"{source}: {key} = {data[key]!r}: unknown top-level key; expected dtype "
                    "or [[target]] tables"
                )
        raw = data.get("target")
        if not isinstance(raw, list) or not raw:
            raise _fail(source, "target", raw, "one or more [[target]] tables")
        targets = []
        for index, item in enumerate(raw):
            name = item.get("name") if isinstance(item, Mapping) else None
            where = f"{source}: target[{index}]" + (f" {name!r}" if isinstance(name, str) else "")
            targets.append(Target.from_dict(item, where))
        return cls(tuple(targets), dtype=data.get("dtype", "float32"), source=source)


def load_targets(path: str | Path) -> TargetSet:
    """Read a targets TOML file; errors name the file, the target and the key."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"{path}: cannot read targets file: {error.strerror}") from None
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte {error.start}); expected a TOML file, which is UTF-8"
        ) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: invalid TOML: {error}") from None
    return TargetSet.from_dict(data, source=str(path))


def as_target_set(
    targets: TargetSet | Target | Iterable[Target] | Mapping[str, Any] | str | Path,
) -> TargetSet:
    """Accept a TargetSet, a Target, a list of Targets, a parsed TOML dict or a TOML path."""
    if isinstance(targets, TargetSet):
        return targets
    if isinstance(targets, Target):
        return TargetSet((targets,))
    if isinstance(targets, str | Path):
        return load_targets(targets)
    if isinstance(targets, Mapping):
        return TargetSet.from_dict(targets)
    if isinstance(targets, Sequence | Iterable):
        return TargetSet(tuple(targets))
    raise ConfigError(
        f"targets = {targets!r}: expected a TargetSet, Target(s), a dict or a TOML path"
    )
