"""Numeric columns: a quantile bin token plus a within-bin token.

Bin edges are quantiles of the training values, so every bin holds about the same number of
rows. Inside a bin the second token is exact when the bin holds at most ``n_sub`` distinct
values (the index of the value in the bin's sorted list: amounts in cents, counts, prices
such as 12.99 round-trip exactly); otherwise it is one of ``n_sub`` equal sub-intervals and
decodes to a uniform draw inside it, rounded to the column's decimals.

Privacy: with ``rare_threshold`` (given for a static column, a value per group: an income,
a birth date), a value is listed exactly only when at least that many groups hold it (a bin
holding a rarer value takes the sub-intervals), and there is at most one bin per that many
groups, so no value that identifies a few groups is stored or sampled verbatim.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def analyze(
    values: pd.Series,
    *,
    n_bins: int = 64,
    n_sub: int = 64,
    rare_threshold: int = 1,
    per_group: bool = False,
) -> dict:
    """Bin edges and exact value lists of a column: a value is listed exactly only when it
    occurs at least `rare_threshold` times. per_group: the values are one per group (a
    static column), so there is at most one bin per `rare_threshold` of them."""
    x = pd.to_numeric(values, errors="raise").to_numpy(dtype=np.float64)
    finite = x[~np.isnan(x)]
    if finite.size == 0:
        finite = np.zeros(1)
    if per_group:
        n_bins = max(1, min(n_bins, finite.size // rare_threshold))
    edges = np.unique(np.quantile(finite, np.linspace(0.0, 1.0, n_bins + 1)))
    if edges.size == 1:
        edges = np.array([edges[0], edges[0]])
    bins = _bin_of(finite, edges)
    exact: list[list[float] | None] = []
    for b in range(edges.size - 1):
        # A value lies in one bin, so the bin's counts are the column's.
        distinct, counts = np.unique(finite[bins == b], return_counts=True)
        # An empty bin (quantiles that fall between data values) keeps an empty list: it is
        # blocked at sampling time.
        common = bool((counts >= rare_threshold).all())
        exact.append(distinct.tolist() if distinct.size <= n_sub and common else None)
    return {
        "kind": "numeric",
        "dtype": str(values.dtype),
        "edges": edges.tolist(),
        "exact": exact,
        "n_sub": n_sub,
        "decimals": _decimals(finite),
        "is_int": bool(pd.api.types.is_integer_dtype(values) or np.all(finite == np.round(finite))),
        "has_null": bool(np.isnan(x).any()),
    }


def fields(stats: dict) -> list[tuple[str, int]]:
    n_bins = len(stats["edges"]) - 1
    return [("bin", n_bins + 1), ("sub", stats["n_sub"])]


def blocked(stats: dict) -> dict[str, list[int]]:
    n_bins = len(stats["edges"]) - 1
    empty = [b for b, ex in enumerate(stats["exact"]) if ex is not None and len(ex) == 0]
    return {"bin": empty + ([] if stats["has_null"] else [n_bins]), "sub": []}


def encode(values: pd.Series, stats: dict) -> dict[str, np.ndarray]:
    x = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64)
    edges = np.asarray(stats["edges"])
    n_bins, n_sub = edges.size - 1, stats["n_sub"]
    null = np.isnan(x)
    bins = _bin_of(np.where(null, edges[0], x), edges)
    sub = np.zeros(x.size, dtype=np.int64)
    for b in np.unique(bins[~null]):
        rows = (bins == b) & ~null
        exact = stats["exact"][b]
        if exact is not None:
            ex = np.asarray(exact)
            sub[rows] = np.clip(np.searchsorted(ex, x[rows]), 0, len(ex) - 1)
        else:
            lo, hi = edges[b], edges[b + 1]
            width = (hi - lo) or 1.0
            sub[rows] = np.clip(((x[rows] - lo) / width * n_sub).astype(np.int64), 0, n_sub - 1)
    bins[null] = n_bins
    return {"bin": bins.astype(np.int64), "sub": sub}


def decode(codes: dict[str, np.ndarray], stats: dict, rng: np.random.Generator) -> pd.Series:
    edges = np.asarray(stats["edges"])
    n_bins, n_sub = edges.size - 1, stats["n_sub"]
    bins = np.asarray(codes["bin"])
    sub = np.asarray(codes["sub"])
    out = np.full(bins.size, np.nan)
    u = rng.random(bins.size)
    for b in np.unique(bins[bins < n_bins]):
        rows = bins == b
        exact = stats["exact"][b]
        if exact:
            out[rows] = np.asarray(exact)[np.clip(sub[rows], 0, len(exact) - 1)]
        else:
            lo, hi = edges[b], edges[b + 1]
            out[rows] = lo + (sub[rows] + u[rows]) * (hi - lo) / n_sub
            out[rows] = np.round(out[rows], stats["decimals"])
            # Quantile edges may have more decimals than the data: kept inside the bin's
            # values of those decimals (a bin narrower than a step gives its middle's).
            step = 10.0 ** -stats["decimals"]
            low, high = np.ceil(lo / step - 1e-9) * step, np.floor(hi / step + 1e-9) * step
            if low <= high:
                out[rows] = np.round(np.clip(out[rows], low, high), stats["decimals"])
    s = pd.Series(out)
    if stats["is_int"]:
        s = s.round()
        return s.astype("Int64") if stats["has_null"] else s.astype(np.int64)
    return s


def _bin_of(x: np.ndarray, edges: np.ndarray) -> np.ndarray:
    # Bins are [e_i, e_i+1); the top edge belongs to the last bin.
    return np.clip(np.searchsorted(edges, x, side="right") - 1, 0, edges.size - 2).astype(np.int64)


def _decimals(x: np.ndarray, max_decimals: int = 6) -> int:
    for d in range(max_decimals + 1):
        scaled = x * 10**d
        if np.all(np.abs(scaled - np.round(scaled)) < 1e-6 * np.maximum(1.0, np.abs(scaled))):
            return d
    return max_decimals
