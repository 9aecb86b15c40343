"""Categorical columns: one token per category, rare categories protected.

Categories seen fewer than ``rare_threshold`` times (or beyond the ``max_categories`` most
frequent) share one ``rare`` token, so a value that identifies a single record is never
learned. A static column (a value per group) is counted once per group, not once per row:
a consumer's birth date or street is on each of their transactions, and counting rows
kept it.

What sampling does with the rare token (``rare_values``): "placeholder" (text columns)
samples it like any token and writes a value that is never a
training value, ``<rare 1>``, ``<rare 2>``, ...; so a long tail of local shops stays a long
tail, in its share of the rows. And a rare value recurs as rare values did in training: in
an event column within its group (a local shop visited again, a state on a trip), in a
static column across groups (a small town several consumers live in). A rare row that
follows other rare rows of its group (a static column: of the table) repeats the value of
one of them, picked at random (so a value recurs in proportion to how often it has), with
the training rows' chance of that (``rare_repeat``), unless that value has as many rows
(groups) as the most a rare training value had (``rare_most``); otherwise it takes a new
one. Both are single numbers of the column; no value is kept.

"drop" (and every other column) masks the token out, so the model's other categories take
its share: a tiny ledger's synthetic merchants were then 111 chains where the real ones were
1,768 names, and a LightGBM discriminator told the tables apart at an AUC of 0.94, the
merchant's frequency and the state its two best features.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

NULL = "null"
RARE = "rare"
RARE_VALUES = ("placeholder", "drop")


def analyze(
    values: pd.Series,
    *,
    rare_threshold: int = 5,
    max_categories: int = 1000,
    rare_values: str = "placeholder",
    group: np.ndarray | None = None,
) -> dict:
    """Plain stats: the kept categories (most frequent first), whether nulls/rares exist,
    and whether sampling writes placeholders for rare values (see the module's note).
    group: (n,) the group of each value (rows sorted by group; a static column gives one
    value per group, all in group 0), for ``rare_repeat`` and ``rare_most``."""
    counts = values.dropna().value_counts(sort=True)
    kept = counts[counts >= rare_threshold].head(max_categories)
    # Sort ties by value so the vocabulary does not depend on row order.
    order = sorted(kept.items(), key=lambda kv: (-kv[1], str(kv[0])))
    categories = [_to_json(v) for v, _ in order]
    has_rare = len(kept) < len(counts)
    text = len(counts) > 0 and all(isinstance(v, str) for v in counts.index)
    stats = {
        "kind": "categorical",
        "dtype": str(values.dtype),
        "categories": categories,
        "has_null": bool(values.isna().any()),
        "has_rare": has_rare,
        "rare_placeholders": rare_values == "placeholder" and has_rare and text,
    }
    if stats["rare_placeholders"] and group is not None:
        stats["rare_repeat"] = _rare_repeat(values, group, set(kept.index))
        stats["rare_most"] = int(counts[~counts.index.isin(kept.index)].max())
    return stats


def _rare_repeat(values: pd.Series, group: np.ndarray, kept: set) -> float:
    """Of the rare rows that follow another rare row of their group, the share whose value
    one of those rows had: one number for the column, no value."""
    rare = values.notna().to_numpy() & ~values.isin(kept).to_numpy()
    rows = pd.DataFrame({"group": group[rare], "value": values[rare].to_numpy()})
    later = rows["group"].duplicated().to_numpy()  # a rare row came before it in its group
    if not later.any():
        return 0.0
    repeated = rows.duplicated(["group", "value"]).to_numpy()
    return round(float(repeated[later].mean()), 4)


def fields(stats: dict) -> list[tuple[str, int]]:
    """Sub-fields (name, vocabulary size); categories first, then null and rare tokens."""
    return [("cat", len(stats["categories"]) + 2)]


def blocked(stats: dict) -> dict[str, list[int]]:
    """Codes sampling must never produce: the rare token (unless it decodes to placeholders),
    and null when there were none, unless nothing else is left (every category rare, and
    not text: then it is sampled as null)."""
    n = len(stats["categories"])
    placeholders = stats.get("rare_placeholders")
    out = [] if placeholders else [n + 1]
    if not stats["has_null"] and (n > 0 or placeholders):
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


def decode(
    codes: dict[str, np.ndarray],
    stats: dict,
    group: np.ndarray | None = None,
    rng: np.random.Generator | None = None,
) -> pd.Series:
    """Values of codes; rare codes as placeholders (the module's note). group: (n,) the
    group of each row (rows in order within groups; for a static column, all in group 0)
    and rng, for placeholders that recur (without them, each rare row takes a new one)."""
    cats = stats["categories"]
    n = len(cats)
    table = np.array([*cats, None, None], dtype=object)
    code = np.clip(codes["cat"], 0, n + 1)
    out = table[code]
    if stats.get("rare_placeholders"):
        rare = code == n + 1
        repeat = stats.get("rare_repeat", 0.0)
        if group is None or rng is None or repeat <= 0.0:
            numbers = np.arange(1, int(rare.sum()) + 1)
        else:
            numbers = _placeholder_numbers(group[rare], repeat, stats["rare_most"], rng)
        out[rare] = [f"<rare {k}>" for k in numbers]
    return _restore_dtype(pd.Series(out, dtype=object), stats["dtype"])


def _placeholder_numbers(
    groups: np.ndarray, repeat: float, most: int, rng: np.random.Generator
) -> np.ndarray:
    """The placeholder number of each rare row (their groups, in row order): with chance
    `repeat`, a row after other rare rows of its group takes the number of one of them,
    picked at random, unless that number has `most` rows already; otherwise a new number."""
    numbers = np.empty(len(groups), dtype=np.int64)
    again = rng.random(len(groups)) < repeat
    pick = rng.random(len(groups))
    earlier: dict[int, list[int]] = {}
    rows = [0]  # rows of each number so far (numbers from 1)
    for i, g in enumerate(groups.tolist()):
        before = earlier.setdefault(g, [])
        number = before[int(pick[i] * len(before))] if before and again[i] else 0
        if number == 0 or rows[number] >= most:
            number = len(rows)
            rows.append(0)
        rows[number] += 1
        numbers[i] = number
        before.append(number)
    return numbers


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
