"""Encode a TargetSet as the flat arrays the kernels read (codes, windows, filter tables)."""

from __future__ import annotations

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
    windows: np.ndarray  # (n_windows, 4) int64: unit, future, rolling length in us, past twin
    filters: np.ndarray  # (n_filters, 3) int64: kind, table row, needs prefix sums
    mcc_tables: np.ndarray  # (n_mcc_filters or 1, MCC_TABLE_WIDTH) uint8
    cat_tables: np.ndarray  # (n_category_filters or 1, n_categories + 1) uint8
    dtype: np.dtype

    def kernel_args(self) -> tuple[np.ndarray, ...]:
        """The plan's arrays in the kernels' argument order."""
        return (
            self.params,
            self.fills,
            self.windows,
            self.filters,
            self.mcc_tables,
            self.cat_tables,
        )


def needed_columns(targets: TargetSet) -> tuple[bool, bool]:
    """Whether any target filters by (mcc, category)."""
    return (
        any(t.mcc is not None for t in targets.targets),
        any(t.category is not None for t in targets.targets),
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
    filters: dict[tuple[int, tuple], int] = {}
    prefix: set[int] = set()
    for t, target in enumerate(targets.targets):
        window = (_UNITS[target.unit], int(target.direction == "future"), target.rolling_us)
        if target.mcc is not None:
            key = (K.FILTER_MCC, target.mcc if isinstance(target.mcc, tuple) else (target.mcc,))
        elif target.category is not None:
            key = (
                K.FILTER_CATEGORY,
                target.category if isinstance(target.category, tuple) else (target.category,),
            )
        else:
            key = (K.FILTER_NONE, ())
        params[t, K.P_WINDOW] = windows.setdefault(window, len(windows))
        params[t, K.P_FILTER] = filters.setdefault(key, len(filters))
        params[t, K.P_INCLUDE] = bool(target.include_current)
        params[t, K.P_AGG] = _AGGS[target.aggregate]
        params[t, K.P_K] = target.k or 0
        if target.aggregate in ("sum", "count", "mean", "any"):
            prefix.add(int(params[t, K.P_FILTER]))
    mcc_keys = [codes for kind, codes in filters if kind == K.FILTER_MCC]
    cat_keys = [names for kind, names in filters if kind == K.FILTER_CATEGORY]
    filter_rows = np.zeros((len(filters), 3), dtype=np.int64)
    for (kind, codes), row in filters.items():
        filter_rows[row, K.F_KIND] = kind
        if kind == K.FILTER_MCC:
            filter_rows[row, K.F_TABLE] = mcc_keys.index(codes)
        elif kind == K.FILTER_CATEGORY:
            filter_rows[row, K.F_TABLE] = cat_keys.index(codes)
        filter_rows[row, K.F_PREFIX] = row in prefix
    mcc_tables = np.zeros((max(1, len(mcc_keys)), K.MCC_TABLE_WIDTH), dtype=np.uint8)
    for row, codes in enumerate(mcc_keys):
        mcc_tables[row, list(codes)] = 1
    cat_tables = np.zeros((max(1, len(cat_keys)), len(categories) + 1), dtype=np.uint8)
    for row, names in enumerate(cat_keys):
        for name in names:
            if name in code_of:
                cat_tables[row, code_of[name]] = 1
            elif warn_missing:
                warnings.warn(
                    f"category {name!r} named by a target does not occur in the data "
                    f"(categories found: {', '.join(sorted(categories)[:20]) or 'none'}); it matches nothing",
                    stacklevel=3,
                )
    window_rows = np.full((len(windows), 4), -1, dtype=np.int64)
    for (unit, future, length), row in windows.items():
        window_rows[row, :3] = (unit, future, length)
        if unit == K.UNIT_ROLLING and future:
            window_rows[row, K.W_PAST_TWIN] = windows.get((unit, 0, length), -1)
    return Plan(
        params, fills, window_rows, filter_rows, mcc_tables, cat_tables, np.dtype(targets.dtype)
    )
