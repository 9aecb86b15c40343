"""The evaluation report on disk: figures.json, PNG plots (matplotlib) and index.html."""

from __future__ import annotations

import html
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never open a window
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from cardworld.synthesizer.evaluate.values import NULL, category_text, numbers  # noqa: E402

REAL, SYNTH = "#4C72B0", "#DD8452"


def write_report(
    out: Path, figures: dict, plots: dict, real: pd.DataFrame, synth: pd.DataFrame
) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    (out / "figures.json").write_text(json.dumps(figures, indent=1, default=_plain))
    images: list[tuple[str, str]] = []

    def save(fig: plt.Figure, name: str, title: str) -> None:
        fig.tight_layout()
        fig.savefig(out / f"{name}.png", dpi=90)
        plt.close(fig)
        images.append((title, f"{name}.png"))

    cols = figures["roles"]["compared"]
    if cols:
        n = len(cols)
        ncol = min(3, n)
        fig, axes = plt.subplots(
            (n + ncol - 1) // ncol,
            ncol,
            figsize=(4.2 * ncol, 3.0 * ((n + ncol - 1) // ncol)),
            squeeze=False,
        )
        for ax, c in zip(axes.flat, cols, strict=False):
            kind = figures["columns"][c]["kind"]
            _column_plot(ax, real[c], synth[c], kind)
            nulls = figures["columns"][c]["null_share"]
            title = c
            if kind != "categorical" and (nulls["real"] or nulls["synthetic"]):
                # A histogram shows the values there are: the missing ones are named here.
                title += f"\nnull: real {nulls['real']:.1%}, synthetic {nulls['synthetic']:.1%}"
            ax.set_title(title, fontsize=9)
        for ax in axes.flat[n:]:
            ax.axis("off")
        save(fig, "columns", "Per-column distributions")
    if "category_mix" in plots:
        r, s = plots["category_mix"]
        idx = r.index.union(s.index)
        fig, ax = plt.subplots(figsize=(8, 3.5))
        _bars(ax, r.reindex(idx, fill_value=0), s.reindex(idx, fill_value=0))
        ax.set_ylabel("share of rows")
        save(fig, "category_mix", "Category mix")
    if "amount" in plots:
        r, s = plots["amount"]
        fig, ax = plt.subplots(figsize=(7, 3.5))
        pos = np.concatenate([r[r > 0], s[s > 0]])
        if pos.size:
            bins = np.logspace(np.log10(pos.min()), np.log10(pos.max()), 50)
            ax.hist(r[r > 0], bins=bins, alpha=0.6, density=True, color=REAL, label="real")
            ax.hist(s[s > 0], bins=bins, alpha=0.6, density=True, color=SYNTH, label="synthetic")
            ax.set_xscale("log")
        ax.legend()
        ax.set_xlabel(figures["amount"]["column"])
        save(fig, "amount", "Amount distribution")
    if "median_by_category" in plots:
        r, s = plots["median_by_category"]
        idx = r.index.union(s.index)
        fig, ax = plt.subplots(figsize=(8, 3.5))
        _bars(ax, r.reindex(idx), s.reindex(idx))
        ax.set_ylabel("median amount")
        save(fig, "median_by_category", "Median amount by category")
    for key, title, xlabel, log in (
        ("events_per_group", "Events per group", "events", False),
        ("gaps_hours", "Gaps between events", "hours", True),
    ):
        if key in plots:
            r, s = plots[key]
            fig, ax = plt.subplots(figsize=(7, 3.5))
            both = np.concatenate([r, s]).astype(float)
            if log:
                both = both[both > 0]
                bins = (
                    np.logspace(np.log10(both.min()), np.log10(both.max()), 40) if both.size else 10
                )
                ax.set_xscale("log")
            else:
                bins = 30
            ax.hist(r, bins=bins, alpha=0.6, density=True, color=REAL, label="real")
            ax.hist(s, bins=bins, alpha=0.6, density=True, color=SYNTH, label="synthetic")
            ax.set_xlabel(xlabel)
            ax.legend()
            save(fig, key, title)
    if "hour_by_category" in plots:
        r, s = plots["hour_by_category"]
        rows = r.index.union(s.index)
        hours = list(range(24))
        fig, axes = plt.subplots(1, 2, figsize=(12, 0.35 * len(rows) + 1.8), sharey=True)
        vmax = max(float(r.to_numpy().max()), float(s.to_numpy().max()))
        for ax, m, name in ((axes[0], r, "real"), (axes[1], s, "synthetic")):
            grid = m.reindex(index=rows, columns=hours, fill_value=0)
            ax.imshow(grid.to_numpy(), aspect="auto", cmap="viridis", vmin=0, vmax=vmax)
            ax.set_title(name)
            ax.set_xlabel("hour of day")
            ax.set_yticks(range(len(rows)), labels=list(rows), fontsize=7)
        save(fig, "hour_by_category", "Hour of day by category")
    d_syn, d_hold = plots["dcr"]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.hist(d_syn, bins=40, alpha=0.6, density=True, color=SYNTH, label="synthetic to train")
    if len(d_hold):
        ax.hist(d_hold, bins=40, alpha=0.6, density=True, color=REAL, label="holdout to train")
    ax.set_xlabel("distance to closest training record (Gower)")
    ax.legend()
    save(fig, "dcr", "Distance to closest record")
    (out / "index.html").write_text(_page(figures, images))
    return out


def _column_plot(ax: plt.Axes, r: pd.Series, s: pd.Series, kind: str) -> None:
    if kind in ("numeric", "datetime"):
        rv, sv = numbers(r), numbers(s)
        rv, sv = rv[~np.isnan(rv)], sv[~np.isnan(sv)]
        both = np.concatenate([rv, sv])
        bins = np.linspace(both.min(), both.max(), 30) if len(both) else 10
        ax.hist(rv, bins=bins, alpha=0.6, density=True, color=REAL)
        ax.hist(sv, bins=bins, alpha=0.6, density=True, color=SYNTH)
        ax.set_yticks([])
        if kind == "datetime":
            ax.set_xticks([])
    else:
        pr = category_text(r).value_counts(normalize=True)
        ps = category_text(s).value_counts(normalize=True)
        shown = pr.index[:15]
        # Missing values are a category, shown wherever either table has them.
        if NULL not in shown and (NULL in pr.index or NULL in ps.index):
            shown = shown.append(pd.Index([NULL]))
        _bars(ax, pr.reindex(shown, fill_value=0), ps.reindex(shown, fill_value=0), fontsize=6)


def _bars(ax: plt.Axes, r: pd.Series, s: pd.Series, fontsize: int = 8) -> None:
    x = np.arange(len(r))
    ax.bar(x - 0.2, r.to_numpy(dtype=float), width=0.4, color=REAL, label="real")
    ax.bar(x + 0.2, s.to_numpy(dtype=float), width=0.4, color=SYNTH, label="synthetic")
    ax.set_xticks(x, labels=[str(i) for i in r.index], rotation=60, ha="right", fontsize=fontsize)
    ax.legend(fontsize=7)


def _page(figures: dict, images: list[tuple[str, str]]) -> str:
    p = figures["privacy"]
    rows = [
        ("Quality score (0-10)", figures["quality_score"]),
        ("Privacy score (0-10)", p["privacy_score"]),
        ("Rows real / synthetic", f"{figures['rows']['real']} / {figures['rows']['synthetic']}"),
        ("Exact row overlap with training", f"{p['exact_row_overlap']:.2%}"),
        ("Median distance to closest record, synthetic", p["dcr_synthetic"]["median"]),
    ]
    d = figures.get("discriminator", {})
    if d.get("auc") is not None:
        top = ", ".join(list(d["top_features"])[:3])
        label = "Discriminator AUC (0.5: cannot tell the tables apart; far below: copies)"
        rows.append((label, d["auc"]))
        rows.append(("What it leaned on most", top))
    if p.get("rare_value_copies"):
        column, share = max(p["rare_value_copies"].items(), key=lambda item: item[1])
        label = f"Groups given a rare training value ({column}, the most)"
        chance = p.get("rare_value_copies_holdout", {}).get(column)
        rows.append(
            (label, f"{share:.2%}" + ("" if chance is None else f" (holdout {chance:.2%})"))
        )
    if "dcr_holdout" in p:
        rows.append(("Median distance to closest record, holdout", p["dcr_holdout"]["median"]))
        rows.append(
            ("Exact row overlap, holdout with training", f"{p['exact_row_overlap_holdout']:.2%}")
        )
    for key, label in (
        ("category_mix", "Category mix TVD"),
        ("category_transitions", "Category transition TVD"),
        ("hour_by_category", "Hour x category TVD"),
    ):
        if key in figures:
            rows.append((label, round(figures[key]["tvd"], 4)))
    for key, label in (
        ("events_per_group", "Events per group KS"),
        ("gaps_hours", "Gaps KS"),
        ("group_span", "Group time span KS"),
        ("amount", "Amount KS"),
    ):
        if key in figures:
            rows.append((label, round(figures[key]["ks"], 4)))
    if "group_span" in figures:
        both = figures["group_span"]["events_correlation"]
        rows.append(
            (
                "Events against time span per group (Spearman), real / synthetic",
                f"{both['real']} / {both['synthetic']}",
            )
        )
    table = "\n".join(
        f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>" for k, v in rows
    )
    cols = "\n".join(
        f"<tr><td>{html.escape(c)}</td><td>{v['kind']}</td><td>{v['quality']:.3f}</td></tr>"
        for c, v in figures["columns"].items()
    )
    imgs = "\n".join(
        f"<h2>{html.escape(t)}</h2><img src='{html.escape(f)}' alt='{html.escape(t)}'>"
        for t, f in images
    )
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>cardworld evaluation</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}
td{{padding:2px 12px;border-bottom:1px solid #ddd}}img{{max-width:100%}}</style></head>
<body><h1>Synthetic data evaluation</h1>
<table>{table}</table>
<h2>Columns (quality = 1 - distance)</h2><table>{cols}</table>
{imgs}
<p>Figures in <a href="figures.json">figures.json</a>.</p>
</body></html>
"""


def _plain(o: object) -> object:
    if isinstance(o, np.generic):
        return o.item()
    return str(o)
