"""Column values in the forms the evaluation compares them: text for categories, floats for
numbers and times, with missing values kept and counted rather than dropped.

pandas 2 turned a missing value into the text "nan" or "None" (counted, under either name),
pandas 3 keeps it missing (and `value_counts` drops it): both are spelled out here instead.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

NULL = "<null>"  # a missing value's category
_WHOLE = 2.0**53  # floats below this that have no fraction are exact integers


def category_text(s: pd.Series) -> pd.Series:
    """Values as text, missing ones as NULL. A whole float reads as an integer, value by
    value, since an integer column with a missing value comes back from a CSV (or from
    pandas) as floats: MCC 5411.0 is MCC 5411, in whichever table it is."""
    text = s.astype(str).to_numpy(dtype=object)
    if pd.api.types.is_float_dtype(s):
        x = s.to_numpy(dtype=float, na_value=np.nan)
        whole = np.isfinite(x) & (np.abs(x) < _WHOLE) & (np.round(x) == x)
        text[whole] = x[whole].astype(np.int64).astype(str)
    text[s.isna().to_numpy()] = NULL
    return pd.Series(text, index=s.index, name=s.name, dtype=object)


def numbers(s: pd.Series) -> np.ndarray:
    """Numbers as floats and times as seconds since 1970, NaN where missing or unreadable."""
    if pd.api.types.is_datetime64_any_dtype(s):
        x = s.to_numpy(dtype="datetime64[s]").astype(np.int64).astype(float)
        x[s.isna().to_numpy()] = np.nan
        return x
    return pd.to_numeric(s, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
