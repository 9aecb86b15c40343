"""Encode a TargetSet as the flat arrays the kernels read (codes, windows, filter tables)."""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cardworld.simulator.targets import kernels as K
from cardworld.simulator.targets.spec import TargetSet

_UNITS = {"day": K.UNIT_DAY, "week": K.UNIT_WEEK, "month": K.UNIT_MONTH, "rolling": K.UNIT_ROLLING}
_AGGS = {
    "sum": K.AGG_SUM,
    "count": K.AGG_COUNT,
    "mean": K.AGG_MEAN,
    "min": K.AGG_MIN,
    "max": K.AGG_MAX,
    "topk_mean": K.AGG_TOPK,
    "any": K.AGG_ANY,
}


@dataclass(frozen=True)
class Plan:
    """Kernel inputs for one TargetSet against one category dictionary."""

    params: np.ndarray  # (n_targets, N_PARAMS) int64
    fills: np.ndarray  # (n_targets,) float64
    windows: np.ndarray  # (n_windows, 3) int64: unit, future, rolling length in us
    filters: np.ndarray  # (n_filters, 2) int64: needs prefix sums, needs a mask
    mcc_bits: np.ndarray  # (n_words, MCC_TABLE_WIDTH) int64: filters each MCC code matches
    cat_bits: np.ndarray  # (n_words, n_categories + 1) int64: filters each category matches
    dtype: np.dtype

    def no_filter_seen(self) -> np.ndarray:
        """The kernels' `seen` words before any row: (n_words,) int64 zeros."""
        return np.zeros(self.mcc_bits.shape[0], dtype=np.int64)

    def kernel_args(self) -> tuple[np.ndarray, ...]:
        """The plan's arrays in the kernels' argument order."""
        return (
            self.params,
            self.fills,
            self.windows,
            self.filters,
            self.mcc_bits,
            self.cat_bits,
        )


def needed_columns(targets: TargetSet) -> tuple[bool, bool]:
    """Whether any target filters by (mcc, category)."""
    return (
        any(t.mcc is not None for t in targets.targets),
        any(t.category is not None for t in targets.targets),
    )


def warn_missing_categories(
    targets: TargetSet, categories: Sequence[str], stacklevel: int = 2
) -> None:
    """Warn once for each category a target names that `categories` lacks: it matches
    nothing. Often a typo, but a slice of a ledger may simply lack it."""
    named = [
        name
        for target in targets.targets
        if target.category is not None
        for name in (target.category if isinstance(target.category, tuple) else (target.category,))
    ]
    present = sorted(c for c in set(categories) if isinstance(c, str))
    shown = ", ".join(present[:40]) + (
        f", ... ({len(present)} in all)" if len(present) > 40 else ""
    )
    for name in dict.fromkeys(named):
        if name not in present:
            close = difflib.get_close_matches(name, present, n=1)
            warnings.warn(
                f"category {name!r} named by a target does not occur in the data"
                + (f" (did you mean {close[0]!r}?)" if close else "")
                + f"; it matches nothing (categories found: {shown or 'none'})",
                stacklevel=stacklevel,
            )


def warn_unmatched_mccs(
    targets: TargetSet, plan: Plan, seen: np.ndarray, stacklevel: int = 2
) -> None:
    """Warn once for each MCC filter no row matched (`seen`, the kernels' filter words of
    the rows): its targets are all zeros or fills. Often a typo, but a slice of a ledger
    may simply lack the MCC."""
    warned: set[int] = set()
    for t, target in enumerate(targets.targets):
        f = int(plan.params[t, K.P_FILTER])
        if target.mcc is None or f in warned:
            continue
        if (int(seen[f // K.FILTER_BITS]) >> (f % K.FILTER_BITS)) & 1 == 0:
            warned.add(f)
            if isinstance(target.mcc, tuple):
                what = f"none of the MCCs {list(target.mcc)} named by target {target.name!r} occurs"
            else:
                what = f"MCC {target.mcc} named by target {target.name!r} does not occur"
            warnings.warn(
                f"{what} in the data; it matches nothing (its target is all zeros or fills)",
                stacklevel=stacklevel,
            )


def make_plan(
    targets: TargetSet, categories: Sequence[str] = (), warn_missing: bool = True
) -> Plan:
    """Encode `targets`; `categories` is the dictionary whose codes the category column holds.

    Targets sharing a window share its bounds, and targets sharing a filter share its mask
    and prefix sums. A category named by a target but absent from `categories` matches
    nothing (a warning says so when `warn_missing`: often a typo, but a slice of a ledger
    may simply lack it).
    """
    code_of = {name: code for code, name in enumerate(categories)}
    params = np.zeros((len(targets), K.N_PARAMS), dtype=np.int64)
    fills = np.array([target.fill for target in targets.targets], dtype=np.float64)
    windows: dict[tuple[int, int, int], int] = {}
    filters: dict[tuple[str, tuple], int] = {}
    prefix: set[int] = set()
    masked: set[int] = set()
    for t, target in enumerate(targets.targets):
        window = (_UNITS[target.unit], int(target.direction == "future"), target.rolling_us)
        if target.mcc is not None:
            key = ("mcc", target.mcc if isinstance(target.mcc, tuple) else (target.mcc,))
        elif target.category is not None:
            names = target.category if isinstance(target.category, tuple) else (target.category,)
            key = ("category", names)
        else:
            key = ("none", ())
        params[t, K.P_WINDOW] = windows.setdefault(window, len(windows))
        params[t, K.P_FILTER] = filters.setdefault(key, len(filters))
        params[t, K.P_INCLUDE] = bool(target.include_current)
        params[t, K.P_AGG] = _AGGS[target.aggregate]
        params[t, K.P_K] = target.k or 0
        needs = prefix if target.aggregate in ("sum", "count", "mean", "any") else masked
        needs.add(int(params[t, K.P_FILTER]))
    filter_rows = np.zeros((len(filters), 2), dtype=np.int64)
    n_words = max(1, -(-len(filters) // K.FILTER_BITS))
    mcc_bits = np.zeros((n_words, K.MCC_TABLE_WIDTH), dtype=np.uint64)
    cat_bits = np.zeros((n_words, len(categories) + 1), dtype=np.uint64)
    for (kind, values), f in filters.items():
        filter_rows[f] = (f in prefix, f in masked)
        word, bit = divmod(f, K.FILTER_BITS)
        bit = np.uint64(1) << np.uint64(bit)
        if kind == "mcc":
            mcc_bits[word, list(values)] |= bit
        elif kind == "category":
            for name in values:
                if name in code_of:
                    cat_bits[word, code_of[name]] |= bit
        else:  # no filter: every row has some category code, null included
            cat_bits[word] |= bit
    if warn_missing:
        warn_missing_categories(targets, categories, stacklevel=4)
    window_rows = np.array(list(windows), dtype=np.int64).reshape(-1, 3)
    return Plan(
        params,
        fills,
        window_rows,
        filter_rows,
        mcc_bits.view(np.int64),
        cat_bits.view(np.int64),
        np.dtype(targets.dtype),
    )
