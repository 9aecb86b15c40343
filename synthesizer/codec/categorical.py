"""Categorical columns: one token per category, rare categories protected.

Categories seen fewer than ``rare_threshold`` times (or beyond the ``max_categories`` most
frequent) share one ``rare`` token, so a value that identifies a single record is never
learned. A static column (a value per group) is counted once per group, not once per row:
a consumer's birth date or street is on each of their transactions, and counting rows
kept it. Sampling masks the rare token out, so a rare value is dropped rather than emitted.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

NULL = "null"
RARE = "rare"


def analyze(values: pd.Series, *, rare_threshold: int = 5, max_categories: int = 1000) -> dict:
    """Plain stats: the kept categories (most frequent first) and whether nulls/rares exist."""
    counts = values.dropna().value_counts(sort=True)
    kept = counts[counts >= rare_threshold].head(max_categories)
    # Sort ties by value so the vocabulary does not depend on row order.
    order = sorted(kept.items(), key=lambda kv: (-kv[1], str(kv[0])))
    return {
        "kind": "categorical",
        "dtype": str(values.dtype),
        "categories": [_to_json(v) for v, _ in order],
        "has_null": bool(values.isna().any()),
        "has_rare": len(kept) < len(counts),
    }


def fields(stats: dict) -> list[tuple[str, int]]:
    """Sub-fields (name, vocabulary size); categories first, then null and rare tokens."""
    return [("cat", len(stats["categories"]) + 2)]


def blocked(stats: dict) -> dict[str, list[int]]:
    """Codes sampling must never produce: the rare token, and null when there were none,
    unless every category is rare (a column of names): then it is sampled as null."""
    n = len(stats["categories"])
    out = [n + 1]
    if not stats["has_null"] and n > 0:
        out.append(n)
    return {"cat": out}


def encode(values: pd.Series, stats: dict) -> dict[str, np.ndarray]:
    n = len(stats["categories"])
    index = {c: i for i, c in enumerate(stats["categories"])}
    codes = np.full(len(values), n + 1, dtype=np.int64)
    for i, v in enumerate(values.to_numpy(dtype=object)):
        if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NaT or v is pd.NA:
            codes[i] = n
        else:
            codes[i] = index.get(_to_json(v), n + 1)
    return {"cat": codes}


def decode(codes: dict[str, np.ndarray], stats: dict) -> pd.Series:
    cats = stats["categories"]
    n = len(cats)
    table = np.array([*cats, None, None], dtype=object)
    out = table[np.clip(codes["cat"], 0, n + 1)]
    return _restore_dtype(pd.Series(out, dtype=object), stats["dtype"])


def _to_json(v: object) -> object:
    """A category as a JSON-native value (numpy scalars become Python scalars)."""
    if isinstance(v, np.generic):
        return v.item()
    return v


def _restore_dtype(s: pd.Series, dtype: str) -> pd.Series:
    if dtype == "object":
        return s
    try:
        if dtype.startswith(("int", "uint", "Int", "UInt")) and s.isna().any():
            return s.astype("Int64")
        if dtype == "bool" and s.isna().any():
            return s.astype("boolean")
        return s.astype(dtype)
    except (TypeError, ValueError):
        return s
