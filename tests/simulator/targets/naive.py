"""Slow, obvious twins of the target kernels: one window built and aggregated per row.

Buckets come from pandas periods (not the kernels' integer calendar), windows are boolean
masks over the user's rows, and aggregates are NumPy calls on the selected amounts.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cardworld.simulator.targets.spec import Target, TargetSet

_PERIOD = {"day": "D", "week": "W-SUN", "month": "M"}


def naive_targets(frame: pd.DataFrame, targets: TargetSet) -> np.ndarray:
    """(n_rows, n_targets) float64 in the frame's row order.

    frame columns: user, timestamp (datetime64, tz-naive), amount, mcc, category.
    """
    out = np.full((len(frame), len(targets)), np.nan)
    for t, target in enumerate(targets.targets):
        out[:, t] = naive_target(frame, target)
    return out


def naive_target(frame: pd.DataFrame, target: Target) -> np.ndarray:
    """One target for every row of `frame` (columns as in `naive_targets`)."""
    frame = frame.reset_index(drop=True)
    result = np.full(len(frame), np.nan)
    # Rows with equal (user, timestamp) keep their input order: "up to this one" is positional.
    ordered = frame.sort_values(["user", "timestamp"], kind="stable")
    for _, rows in ordered.groupby("user", sort=False):
        index = rows.index.to_numpy()
        times = rows["timestamp"]
        amounts = rows["amount"].to_numpy(dtype=np.float64)
        matches = _matches(rows, target)
        if target.unit != "rolling":
            buckets = times.dt.to_period(_PERIOD[target.unit]).to_numpy()
        stamps = times.to_numpy()
        window = np.timedelta64(target.rolling_us, "us")
        positions = np.arange(len(rows))
        for p in range(len(rows)):
            if target.direction == "past":
                side = positions <= p if target.include_current else positions < p
            else:
                side = positions >= p if target.include_current else positions > p
            if target.unit == "rolling":
                if target.direction == "past":
                    inside = stamps > stamps[p] - window
                else:
                    inside = stamps < stamps[p] + window
            else:
                inside = buckets == buckets[p]
            result[index[p]] = _aggregate(amounts[side & inside & matches], target)
    return result


def _matches(rows: pd.DataFrame, target: Target) -> np.ndarray:
    if target.mcc is not None:
        codes = target.mcc if isinstance(target.mcc, tuple) else (target.mcc,)
        return rows["mcc"].isin(codes).to_numpy()
    if target.category is not None:
        names = target.category if isinstance(target.category, tuple) else (target.category,)
        return rows["category"].isin(names).to_numpy()
    return np.ones(len(rows), dtype=bool)


def _aggregate(values: np.ndarray, target: Target) -> float:
    if target.aggregate == "sum":
        return float(values.sum())
    if target.aggregate == "count":
        return float(len(values))
    if target.aggregate == "any":
        return 1.0 if len(values) else 0.0
    if len(values) == 0:
        return target.fill
    if target.aggregate == "mean":
        return float(values.mean())
    if target.aggregate == "min":
        return float(values.min())
    if target.aggregate == "max":
        return float(values.max())
    return float(np.sort(values)[::-1][: target.k].mean())
