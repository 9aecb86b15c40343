"""Can a classifier tell synthetic rows from real ones? A LightGBM discriminator's AUC.

Each row becomes features: its compared columns, of the kinds the synthesizer's schema gives
them (times as days since 1970, hour of day and day of week; numbers as they are, a missing
one left missing for the classifier; categories, a missing value one of them, with few values
as categories, others as how often their value occurs in both tables together) and its
place in its group (position, events in the group, hours since the group's previous
event). Groups, never rows, are dealt into folds, so no group is both trained and tested on;
a gradient-boosted classifier fit on the other folds scores each fold's rows. The AUC over
all rows says how well it tells the tables apart: 0.5 when it cannot, 1.0 when it always
can. The features it leaned on most say what gives the synthetic rows away. Far below 0.5 is
a warning of another kind: the synthetic rows copy real ones, so a real row's copy, trained
on as synthetic in another fold, makes the real row look synthetic (a row-for-row copy of a
table scores about 0.03).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import lightgbm as lgb
import numpy as np
import pandas as pd
import scipy.stats as sps

from cardworld.synthesizer.evaluate.values import category_text

if TYPE_CHECKING:
    from cardworld.synthesizer.evaluate.metrics import Roles

MAX_ROWS = 20_000  # rows of each table the discriminator reads at most (whole groups)
FOLDS = 5
FEW_VALUES = 64  # categorical columns with more values are encoded by frequency
TOP_FEATURES = 5
EPOCH = pd.Timestamp("1970-01-01")
# NOTE: a small, fixed model: the figure compares tables, so it must not change with the
# machine (deterministic=True, one thread's row-wise histograms) and should take seconds.
MODEL = {
    "objective": "binary",
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_data_in_leaf": 20,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "feature_fraction": 0.8,
    "deterministic": True,
    "force_row_wise": True,
    "num_threads": 1,
    "verbose": -1,
}
ROUNDS = 200


def discriminator(
    real: pd.DataFrame,
    synth: pd.DataFrame,
    roles: Roles,
    *,
    seed: int = 0,
    max_rows: int = MAX_ROWS,
    folds: int = FOLDS,
) -> dict:
    """The out-of-fold AUC of a classifier telling `synth` rows from `real` ones.

    Both tables sorted by group, then order (as `metrics.compute` leaves them). Returns
    {"auc", "rows", "folds", "top_features"}, or {"auc": None, "reason"} when either table
    has fewer than two groups.
    """
    group_by = roles.schema.group_by
    rng = np.random.default_rng(seed)
    real = _whole_groups(real, group_by, max_rows, rng)
    synth = _whole_groups(synth, group_by, max_rows, rng)
    groups = (real[group_by].nunique(), synth[group_by].nunique())
    folds = min(folds, *groups)
    if folds < 2:
        return {"auc": None, "reason": f"needs two groups in each table, has {groups}"}
    features = _features(pd.concat([real, synth], ignore_index=True), len(real), roles)
    label = np.r_[np.zeros(len(real)), np.ones(len(synth))]
    fold = np.r_[_deal(real[group_by], folds, rng), _deal(synth[group_by], folds, rng)]
    score = np.empty(len(label))
    gain = pd.Series(0.0, index=features.columns)
    for k in range(folds):
        test = fold == k
        train = lgb.Dataset(features[~test], label[~test])
        model = lgb.train({**MODEL, "seed": seed + k}, train, num_boost_round=ROUNDS)
        score[test] = model.predict(features[test])
        gain += model.feature_importance(importance_type="gain")
    top = (gain / max(gain.sum(), 1e-12)).sort_values(ascending=False).head(TOP_FEATURES)
    return {
        "auc": round(_auc(label, score), 4),
        "rows": {"real": len(real), "synthetic": len(synth)},
        "folds": folds,
        "top_features": top.round(4).to_dict(),
    }


def _whole_groups(
    df: pd.DataFrame, group_by: str, max_rows: int, rng: np.random.Generator
) -> pd.DataFrame:
    """Groups drawn at random until the next would pass `max_rows` rows (at least one)."""
    if len(df) <= max_rows:
        return df
    sizes = df.groupby(group_by, sort=False).size()
    order = sizes.iloc[rng.permutation(len(sizes))]
    keep = order.index[: max(1, int(np.searchsorted(order.cumsum().to_numpy(), max_rows, "right")))]
    return df[df[group_by].isin(keep)].reset_index(drop=True)


def _deal(group: pd.Series, folds: int, rng: np.random.Generator) -> np.ndarray:
    """Each row's fold: the table's groups shuffled and dealt to the folds in turn."""
    codes, uniques = pd.factorize(group)
    dealt = np.empty(len(uniques), dtype=np.int64)
    dealt[rng.permutation(len(uniques))] = np.arange(len(uniques)) % folds
    return dealt[codes]


def _features(both: pd.DataFrame, n_real: int, roles: Roles) -> pd.DataFrame:
    """The discriminator's features of every row of both tables (the first `n_real` rows
    real, the rest synthetic)."""
    out: dict[str, pd.Series] = {}
    for c in roles.compared:
        s, kind = both[c], roles.schema.column(c).kind
        if kind == "datetime" or pd.api.types.is_datetime64_any_dtype(s):
            s = _wall_time(s)
            out[c] = (s - EPOCH) / pd.Timedelta(days=1)
            out[f"{c} hour"] = s.dt.hour + s.dt.minute / 60
            out[f"{c} weekday"] = s.dt.day_of_week
        elif (
            kind == "numeric"
            and pd.api.types.is_numeric_dtype(s)
            and not pd.api.types.is_bool_dtype(s)
        ):
            out[c] = s.astype(float)  # NaN where missing: LightGBM learns where those go
        else:
            text = category_text(s)
            if text.nunique() <= FEW_VALUES:
                out[c] = text.astype("category")
            else:
                out[f"{c} frequency"] = text.map(text.value_counts(normalize=True)).astype(float)
    # The tables' groups may share keys: the source is part of a group's key.
    source = pd.Series(np.arange(len(both)) >= n_real, index=both.index)
    key = [source, both[roles.schema.group_by]]
    grouped = both.groupby(key, sort=False)
    out["position in group"] = grouped.cumcount().astype(float)
    out["events in group"] = grouped[roles.schema.group_by].transform("size").astype(float)
    if roles.time:
        hours = (_wall_time(both[roles.time]) - EPOCH) / pd.Timedelta(hours=1)
        out["hours since previous"] = hours.groupby(key, sort=False).diff()
    return pd.DataFrame(out)


def _wall_time(s: pd.Series) -> pd.Series:
    """Times as the clock on the wall showed them: a time zone's offset dropped."""
    if not pd.api.types.is_datetime64_any_dtype(s):
        # A table whose times are all missing holds objects (None), not times: the two
        # tables together are then objects too.
        s = pd.to_datetime(s, errors="coerce", format="mixed")
    return s.dt.tz_localize(None) if s.dt.tz is not None else s


def _auc(label: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve from ranks (ties share their rank)."""
    ranks = sps.rankdata(score)
    positives = label == 1
    n_pos, n_neg = positives.sum(), (~positives).sum()
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
