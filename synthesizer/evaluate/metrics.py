"""Quality and privacy figures of a synthetic table against the real one (plain numbers, JSON).

Quality compares distributions: every column on its own, of the kind the synthesizer's
schema gives it (total variation distance for categories, a missing value one of them;
Kolmogorov-Smirnov for numbers and times, with the shares of missing values compared too),
the category mix, amounts overall and by category, events per group, gaps between events,
groups' time spans (and how they go with the number of events), hour of day by category,
and category transitions; and whether a classifier can tell the
tables' rows apart (`detection.py`, its AUC kept apart from the quality score). Privacy
counts synthetic rows that copy a training row exactly and compares each synthetic row's
distance to its closest training record (Gower distance) with the same distance for real
holdout rows that were never trained on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps

from cardworld.errors import DataError
from cardworld.synthesizer.evaluate.detection import discriminator
from cardworld.synthesizer.evaluate.values import NULL, category_text, numbers
from cardworld.synthesizer.schema import Schema, infer_schema
from cardworld.synthesizer.tables import parse_dates

_GROUP_NAME = re.compile(r"acct|account|consumer|customer|user|client|member|group", re.I)
_CATEGORY_NAME = re.compile(r"categ|(^|_)cat($|_)|mcc|type", re.I)
_AMOUNT_NAME = re.compile(r"amount|amt|value|price|spend", re.I)
MAX_DCR_ROWS = 2000
MAX_TRAIN_ROWS = 20000
RARE_GROUPS = 5  # a static value fewer training groups hold points at a few people


@dataclass
class Roles:
    """What the evaluation compares, found from the real table."""

    schema: Schema
    compared: list[str]
    category: str | None
    amount: str | None
    time: str | None


def guess_group_column(df: pd.DataFrame) -> str:
    """A column named like an account/consumer key whose values repeat."""
    candidates = [c for c in df.columns if _GROUP_NAME.search(str(c))]
    for c in candidates:
        if df[c].nunique() < len(df):
            return c
    raise DataError(
        f"cannot tell the group column among {list(df.columns)}; expected a column named like "
        "acct_id/consumer_id with repeated values, or pass group_by"
    )


def find_roles(real: pd.DataFrame, group_by: str, order_by: str | None) -> Roles:
    schema = infer_schema(real, group_by=group_by, order_by=order_by)
    compared = [c.name for c in schema.columns if c.role in ("static", "event")]
    events = schema.by_role("event")
    cats = [
        c.name for c in events if c.kind == "categorical" and 2 <= real[c.name].nunique() <= 200
    ]
    category = next((c for c in cats if _CATEGORY_NAME.search(c)), cats[0] if cats else None)
    nums = [c.name for c in events if c.kind == "numeric"]
    amount = next((c for c in nums if _AMOUNT_NAME.search(c)), nums[0] if nums else None)
    return Roles(schema, compared, category, amount, schema.time_column)


def prepare(df: pd.DataFrame) -> pd.DataFrame:
    """Parse ISO date strings (tables read from CSV) into datetimes."""
    return parse_dates(df)


def compute(
    real: pd.DataFrame,
    synth: pd.DataFrame,
    *,
    group_by: str,
    order_by: str | None = None,
    holdout: pd.DataFrame | None = None,
) -> tuple[dict, dict]:
    """Figures (JSON-able) and the arrays the report plots."""
    real, synth = prepare(real), prepare(synth)
    holdout = prepare(holdout) if holdout is not None else None
    roles = find_roles(real, group_by, order_by)
    missing = [c for c in roles.compared + [group_by] if c not in synth.columns]
    if missing:
        raise DataError(
            f"synthetic table lacks columns {missing} of the real table; "
            f"synthetic columns: {list(synth.columns)}"
        )
    real, synth = _sorted(real, roles), _sorted(synth, roles)
    figures: dict = {"rows": {"real": len(real), "synthetic": len(synth)}}
    plots: dict = {}

    columns = {}
    for c in roles.compared:
        columns[c] = column_distance(real[c], synth[c], roles.schema.column(c).kind)
    figures["columns"] = columns

    r_len = real.groupby(group_by, sort=False).size().to_numpy()
    s_len = synth.groupby(group_by, sort=False).size().to_numpy()
    figures["events_per_group"] = {
        "real": _summary(r_len),
        "synthetic": _summary(s_len),
        "ks": _ks(r_len, s_len),
    }
    plots["events_per_group"] = (r_len, s_len)

    if roles.category:
        c = roles.category
        mix_r = category_text(real[c]).value_counts(normalize=True)
        mix_s = category_text(synth[c]).value_counts(normalize=True)
        figures["category_mix"] = {
            "column": c,
            "tvd": _tvd(mix_r, mix_s),
            "real": mix_r.round(4).to_dict(),
            "synthetic": mix_s.round(4).to_dict(),
        }
        plots["category_mix"] = (mix_r, mix_s)
        figures["category_transitions"] = {
            "tvd": _tvd(_bigrams(real, c, group_by), _bigrams(synth, c, group_by))
        }
    if roles.amount:
        a = roles.amount
        # The amounts that are there: a missing amount counts in the amount column's figure.
        r_a, s_a = _num(real[a]), _num(synth[a])
        q = [0.05, 0.25, 0.5, 0.75, 0.95]
        figures["amount"] = {
            "column": a,
            "ks": _ks(r_a, s_a),
            "quantiles": {
                "q": q,
                "real": np.quantile(r_a, q).round(2).tolist() if r_a.size else [],
                "synthetic": np.quantile(s_a, q).round(2).tolist() if s_a.size else [],
            },
        }
        plots["amount"] = (r_a, s_a)
        if roles.category:
            med_r = real.groupby(category_text(real[roles.category]))[a].median()
            med_s = synth.groupby(category_text(synth[roles.category]))[a].median()
            both = med_r.index.intersection(med_s.index)
            rel = (med_s[both] - med_r[both]).abs() / med_r[both].abs().clip(lower=1e-9)
            figures["amount"]["median_by_category"] = {
                "real": med_r.round(2).to_dict(),
                "synthetic": med_s.round(2).to_dict(),
                "mean_relative_error": float(rel.mean()) if len(rel) else None,
            }
            plots["median_by_category"] = (med_r, med_s)
    if roles.time:
        t = roles.time
        r_gap, s_gap = _gaps_hours(real, t, group_by), _gaps_hours(synth, t, group_by)
        figures["gaps_hours"] = {
            "real": _summary(r_gap),
            "synthetic": _summary(s_gap),
            "ks": _ks(r_gap, s_gap),
        }
        plots["gaps_hours"] = (r_gap, s_gap)
        figures["group_span"] = _group_span(real, synth, t, group_by)
        r_hour = pd.to_datetime(real[t]).dt.hour
        s_hour = pd.to_datetime(synth[t]).dt.hour
        figures["hour_of_day"] = {"ks": _ks(r_hour.to_numpy(), s_hour.to_numpy())}
        if roles.category:
            c = roles.category
            hx_r = pd.crosstab(category_text(real[c]), r_hour, normalize=True)
            hx_s = pd.crosstab(category_text(synth[c]), s_hour, normalize=True)
            figures["hour_by_category"] = {"tvd": _tvd(hx_r.stack(), hx_s.stack())}
            plots["hour_by_category"] = (hx_r, hx_s)

    figures["discriminator"] = discriminator(real, synth, roles)
    figures["privacy"], plots["dcr"] = privacy_figures(real, synth, holdout, roles)
    figures["quality_score"] = quality_score(figures)
    figures["roles"] = {
        "group_by": group_by,
        "compared": roles.compared,
        "category": roles.category,
        "amount": roles.amount,
        "time": roles.time,
        "pii": [c.name for c in roles.schema.by_role("pii")],
    }
    return figures, plots


def column_distance(real: pd.Series, synth: pd.Series, kind: str) -> dict:
    """One column of the schema's `kind` (as the synthesizer learns it: an integer code such
    as an MCC is a category); quality = 1 - distance, and a missing value counts.

    Categories: TVD, missing values a category of their own. Numbers and datetimes: the
    difference of the null shares, plus the KS of the values weighted by the share of rows
    that have values in both tables; an all-null column against a never-null one scores 0,
    and without missing values the distance is the KS.
    """
    if kind in ("numeric", "datetime"):
        r, s = _num(real, keep_nan=True), _num(synth, keep_nan=True)
        r_null, s_null = _nan_share(r), _nan_share(s)
        ks = _ks(r, s)
        d = abs(r_null - s_null) + (1 - max(r_null, s_null)) * ks
        return {"kind": kind, "ks": ks, "null_share": _shares(r_null, s_null), "quality": 1 - d}
    r, s = category_text(real), category_text(synth)
    d = _tvd(r.value_counts(normalize=True), s.value_counts(normalize=True))
    shares = _shares(float((r == NULL).mean()), float((s == NULL).mean()))
    return {"kind": "categorical", "tvd": d, "null_share": shares, "quality": 1 - d}


def privacy_figures(
    real: pd.DataFrame, synth: pd.DataFrame, holdout: pd.DataFrame | None, roles: Roles
) -> tuple[dict, tuple]:
    cols = roles.compared
    train_keys = set(_row_keys(real, cols))
    synth_keys = _row_keys(synth, cols)
    out: dict = {
        "compared_columns": cols,
        "exact_row_overlap": float(np.mean([k in train_keys for k in synth_keys]))
        if synth_keys
        else 0.0,
    }
    pii = {}
    for spec in roles.schema.by_role("pii", "group"):
        if spec.name in synth.columns:
            # A missing identifier is no one's: it is never a copy.
            seen = set(category_text(real[spec.name])) - {NULL}
            pii[spec.name] = float(category_text(synth[spec.name]).isin(seen).mean())
    out["identifier_overlap"] = pii
    out["rare_value_copies"] = rare_value_copies(real, synth, roles)
    if holdout is not None and len(holdout):
        out["rare_value_copies_holdout"] = rare_value_copies(real, holdout, roles)
    rng = np.random.default_rng(0)
    train = _subsample(real, MAX_TRAIN_ROWS, rng)
    ref = GowerSpace(train[cols], {c: roles.schema.column(c).kind for c in cols})
    syn = _subsample(synth, MAX_DCR_ROWS, rng)
    d_syn = ref.closest(syn[cols])
    out["dcr_synthetic"] = _summary(d_syn)
    d_hold = np.zeros(0)
    if holdout is not None and len(holdout):
        hold = _subsample(holdout, MAX_DCR_ROWS, rng)
        out["exact_row_overlap_holdout"] = float(
            np.mean([k in train_keys for k in _row_keys(holdout, cols)])
        )
        d_hold = ref.closest(hold[cols])
        out["dcr_holdout"] = _summary(d_hold)
        p5 = float(np.quantile(d_hold, 0.05))
        # Share of synthetic rows closer to training than 95% of unseen real rows are: about
        # 0.05 when the synthesizer does not sit on its training records.
        out["dcr_share_below_holdout_p5"] = float(np.mean(d_syn < p5))
    out["privacy_score"] = privacy_score(out)
    return out, (d_syn, d_hold)


def rare_value_copies(real: pd.DataFrame, other: pd.DataFrame, roles: Roles) -> dict[str, float]:
    """Per static column (constant within each group: a birth date, an income), the share
    of `other`'s groups whose value fewer than RARE_GROUPS training groups hold: a value
    that points at a few real people. Row-level distances miss such a copy, since the rows
    differ elsewhere. Unseen real groups (a holdout) give the share chance alone gives."""
    group_by = roles.schema.group_by
    out = {}
    for spec in roles.schema.by_role("static"):
        name = spec.name
        if name not in other.columns or group_by not in other.columns:
            continue
        held = category_text(real.groupby(group_by, sort=False)[name].first().dropna())
        counts = held.value_counts()
        rare = set(counts.index[counts < RARE_GROUPS])
        given = category_text(other.groupby(group_by, sort=False)[name].first().dropna())
        out[name] = float(given.isin(rare).mean()) if len(given) else 0.0
    return out


class GowerSpace:
    """Gower distance to a reference table: mismatch for categories, |a - b| / range for numbers
    (columns of the schema's kinds); a missing value matches a missing one and nothing else."""

    def __init__(self, ref: pd.DataFrame, kinds: dict[str, str]) -> None:
        self.cols = list(ref.columns)
        self.kinds, self.codes, self.scales, self.maps = {}, {}, {}, {}
        for c in self.cols:
            s = ref[c]
            if kinds[c] in ("numeric", "datetime"):
                x = _num(s, keep_nan=True)
                there = x[~np.isnan(x)]
                self.kinds[c] = "num"
                span = float(there.max() - there.min()) if there.size else 0.0
                self.scales[c] = span or 1.0
                self.codes[c] = x
            else:
                text = category_text(s)
                cats = {v: i for i, v in enumerate(pd.unique(text))}
                self.kinds[c] = "cat"
                self.maps[c] = cats
                self.codes[c] = text.map(cats).to_numpy(dtype=np.float64)

    def closest(self, df: pd.DataFrame, chunk: int = 256) -> np.ndarray:
        q = {}
        for c in self.cols:
            if self.kinds[c] == "num":
                q[c] = _num(df[c], keep_nan=True)
            else:
                q[c] = category_text(df[c]).map(self.maps[c]).to_numpy(dtype=np.float64)
        out = np.empty(len(df))
        for i in range(0, len(df), chunk):
            d = np.zeros((min(chunk, len(df) - i), len(self.codes[self.cols[0]])))
            for c in self.cols:
                a, b = q[c][i : i + chunk, None], self.codes[c][None, :]
                if self.kinds[c] == "num":
                    part = np.abs(a - b) / self.scales[c]
                    part = np.where(np.isnan(part), 1.0, np.minimum(part, 1.0))
                    d += np.where(np.isnan(a) & np.isnan(b), 0.0, part)
                else:
                    d += a != b  # NaN (unseen category) never equals: a mismatch
            out[i : i + chunk] = d.min(axis=1) / len(self.cols)
        return out


def quality_score(figures: dict) -> float:
    """0-10: the mean of (1 - distance) over the figures above, times ten."""
    parts = [c["quality"] for c in figures["columns"].values()]
    for key, sub in (
        ("category_mix", "tvd"),
        ("category_transitions", "tvd"),
        ("hour_by_category", "tvd"),
        ("events_per_group", "ks"),
        ("gaps_hours", "ks"),
        ("group_span", "ks"),
        ("amount", "ks"),
    ):
        if key in figures and figures[key].get(sub) is not None:
            parts.append(1 - figures[key][sub])
    return round(10 * float(np.mean(parts)), 2) if parts else 0.0


def privacy_score(p: dict) -> float:
    """0-10: no exact copies, synthetic rows no closer to training than unseen real rows,
    and no more rare static values of training groups than unseen groups hit by chance."""
    score = 1 - p["exact_row_overlap"]
    if "dcr_holdout" in p and p["dcr_holdout"]["median"] > 0:
        score *= min(1.0, p["dcr_synthetic"]["median"] / p["dcr_holdout"]["median"])
    ids = list(p["identifier_overlap"].values())
    if ids:
        score *= 1 - max(ids)
    chance = p.get("rare_value_copies_holdout", {})
    excess = [v - chance.get(c, 0.0) for c, v in p.get("rare_value_copies", {}).items()]
    if excess:
        score *= 1 - min(1.0, max(0.0, max(excess)))
    return round(10 * score, 2)


def _sorted(df: pd.DataFrame, roles: Roles) -> pd.DataFrame:
    by = [roles.schema.group_by] + ([roles.schema.order_by] if roles.schema.order_by else [])
    by = [c for c in by if c in df.columns]
    return df.sort_values(by, kind="mergesort").reset_index(drop=True)


def _bigrams(df: pd.DataFrame, cat: str, group_by: str) -> pd.Series:
    c = category_text(df[cat]).to_numpy()
    g = df[group_by].to_numpy()
    same = g[1:] == g[:-1]
    pairs = pd.Series(c[:-1][same]) + " -> " + pd.Series(c[1:][same])
    return pairs.value_counts(normalize=True)


def _group_span(real: pd.DataFrame, synth: pd.DataFrame, t: str, group_by: str) -> dict:
    """Each group's time span (days from its first event to its last): their KS, and how
    the span goes with the number of events (Spearman's rank correlation in each table).

    NOTE: the gaps and the events per group can each match while their relation does not:
    accounts that all span about three months whatever their number of events (a negative
    or no correlation) against groups whose span grows with their events."""
    spans = {}
    for name, df in (("real", real), ("synthetic", synth)):
        times = pd.Series(numbers(pd.to_datetime(df[t])), index=df.index)
        by_group = times.groupby(df[group_by], sort=False)
        days = ((by_group.max() - by_group.min()) / 86_400).to_numpy()
        events = by_group.size().to_numpy()
        kept = ~np.isnan(days)
        spans[name] = (days[kept], events[kept])
    (r_days, r_events), (s_days, s_events) = spans["real"], spans["synthetic"]
    return {
        "real": _summary(r_days),
        "synthetic": _summary(s_days),
        "ks": _ks(r_days, s_days),
        "events_correlation": {
            "real": _spearman(r_events, r_days),
            "synthetic": _spearman(s_events, s_days),
        },
    }


def _spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    """Spearman's rank correlation, or None where it is undefined (fewer than 3 groups, or
    all of one value)."""
    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    return round(float(sps.spearmanr(a, b).statistic), 4)


def _gaps_hours(df: pd.DataFrame, t: str, group_by: str) -> np.ndarray:
    secs = numbers(pd.to_datetime(df[t]))
    g = df[group_by].to_numpy()
    same = g[1:] == g[:-1]
    gaps = (secs[1:] - secs[:-1])[same] / 3600.0
    return gaps[~np.isnan(gaps)]  # a missing time has no gap; the time column counts it


def _tvd(p: pd.Series, q: pd.Series) -> float:
    idx = p.index.union(q.index)
    return float(0.5 * np.abs(p.reindex(idx, fill_value=0) - q.reindex(idx, fill_value=0)).sum())


def _ks(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    if a.size == 0 or b.size == 0:
        return 1.0
    # Only the statistic is used: the asymptotic p-value spares the exact one's cost (and its
    # warning when that fails).
    return float(sps.ks_2samp(a, b, method="asymp").statistic)


def _num(s: pd.Series, keep_nan: bool = False) -> np.ndarray:
    x = numbers(s)
    return x if keep_nan else x[~np.isnan(x)]


def _nan_share(x: np.ndarray) -> float:
    return float(np.isnan(x).mean()) if x.size else 0.0


def _shares(real: float, synth: float) -> dict:
    return {"real": round(real, 4), "synthetic": round(synth, 4)}


def _row_keys(df: pd.DataFrame, cols: list[str]) -> list[tuple]:
    """Each row's compared values as text, to find rows that one table copies from another."""
    text = pd.DataFrame({c: category_text(df[c]) for c in cols}, index=df.index)
    return list(map(tuple, text.to_numpy()))


def _summary(x: np.ndarray) -> dict:
    x = np.asarray(x, dtype=float)
    if x.size == 0:
        return {"n": 0, "mean": None, "median": None, "min": None, "max": None}
    return {
        "n": int(x.size),
        "mean": round(float(x.mean()), 4),
        "median": round(float(np.median(x)), 4),
        "min": round(float(x.min()), 4),
        "max": round(float(x.max()), 4),
    }


def _subsample(df: pd.DataFrame, n: int, rng: np.random.Generator) -> pd.DataFrame:
    if len(df) <= n:
        return df
    return df.iloc[np.sort(rng.choice(len(df), n, replace=False))]
