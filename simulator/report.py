"""The ledger report: one HTML page with PNG plots, and report.json with every figure.

report_figures.py computes the figures in one streaming pass; this module only draws
them (matplotlib, Agg backend: no display needed) and lays out the page. The page is
static HTML with its images beside it, so it opens from disk in any browser.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np

from cardworld.simulator.report_figures import compute_figures

# Plots show the largest types; report.json holds all of them.
TOP_TYPES = 30
TOP_MCCS = 20
# Percent tick labels never need more: a share of 1e-8 is a row in a hundred million.
MAX_PERCENT_DECIMALS = 6
COLORS = {"swipe": "#4c72b0", "chip": "#55a868", "online": "#dd8452"}
# Multi-panel plots take a row of the page to themselves.
WIDE_PLOTS = ("seasons", "travel", "fraud", "refunds")
STATE_COLORS = {
    "home": "#4c72b0",
    "getaway": "#55a868",
    "vacation": "#dd8452",
    "business": "#8172b3",
}


def build_report(
    ledger_dir: str | Path, out_dir: str | Path, *, batch_rows: int | None = None
) -> Path:
    """Write index.html, report.json and the PNG plots of the ledger's report to `out_dir`.

    Returns the path of index.html.
    """
    import matplotlib

    matplotlib.use("Agg")
    figures = compute_figures(ledger_dir, **({"batch_rows": batch_rows} if batch_rows else {}))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(figures, indent=1) + "\n")
    plots = {name: draw(figures, out / f"{name}.png") for name, draw in PLOTS.items()}
    page = out / "index.html"
    page.write_text(_page(figures, {k: v for k, v in plots.items() if v}, Path(ledger_dir)))
    return page


# --- plots: each takes the figures and a path, returns the file name (or None if empty) ---


def _figure(width: float, height: float):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(width, height), dpi=110)
    ax.spines[["top", "right"]].set_visible(False)
    return fig, ax


def _save(fig, path: Path) -> str:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path.name


def _per_year(f: dict, path: Path) -> str | None:
    years = f["per_year"]
    if not years:
        return None
    fig, ax = _figure(7, 3.4)
    x = [r["year"] for r in years]
    ax.bar(x, [r["rows"] for r in years], color="#9fb7d9", label="transactions")
    ax.set_ylabel("transactions")
    ax.yaxis.set_major_formatter(_thousands())
    ax2 = ax.twinx()
    ax2.plot(x, [r["per_consumer"] for r in years], color="#c44e52", marker="o", ms=3)
    # per_consumer divides by consumer-years with a card, not by the consumers active that
    # year: a consumer whose first card opens mid-year counts part of a year.
    ax2.set_ylabel("per consumer-year with a card", color="#c44e52")
    ax2.spines[["top"]].set_visible(False)
    ax.set_title("Transactions per year, and per consumer-year with a card")
    _year_axis(ax, x)
    return _save(fig, path)


def _categories(f: dict, path: Path) -> str | None:
    rows = f["categories"][:TOP_TYPES][::-1]
    fig, ax = _figure(7, 0.22 * len(rows) + 1.2)
    y = np.arange(len(rows))
    ax.barh(
        y - 0.2, [r["share"] for r in rows], 0.4, label="share of transactions", color="#4c72b0"
    )
    ax.barh(
        y + 0.2, [r["amount_share"] for r in rows], 0.4, label="share of spend", color="#dd8452"
    )
    ax.set_yticks(y, [r["category"] for r in rows], fontsize=8)
    ax.xaxis.set_major_formatter(_percent())
    ax.legend(loc="lower right", frameon=False)
    ax.set_title(f"Spending types (top {len(rows)} by transactions)")
    return _save(fig, path)


def _mccs(f: dict, path: Path) -> str | None:
    rows = f["mccs"][:TOP_MCCS][::-1]
    fig, ax = _figure(7, 0.24 * len(rows) + 1.2)
    labels = [f"{r['mcc']:04d} {r['description'][:38]}" for r in rows]
    ax.barh(labels, [r["share"] for r in rows], color="#55a868")
    ax.tick_params(axis="y", labelsize=8)
    ax.xaxis.set_major_formatter(_percent())
    ax.set_title(f"Merchant category codes (top {len(rows)})")
    return _save(fig, path)


def _amounts(f: dict, path: Path) -> str | None:
    hist = f["amounts"]["histogram"]
    edges, counts = np.array(hist["edges"]), np.array(hist["counts"])
    if counts.sum() == 0:
        return None
    fig, ax = _figure(7, 3.4)
    ax.bar(
        edges[:-1], counts, width=np.diff(edges), align="edge", color="#8172b3", edgecolor="white"
    )
    ax.set_xscale("log")
    nonzero = np.flatnonzero(counts)
    ax.set_xlim(edges[nonzero[0]], edges[nonzero[-1] + 1])
    ax.xaxis.set_major_formatter(_dollars())
    for q, style in (("p50", "-"), ("p90", "--"), ("p99", ":")):
        value = f["amounts"]["purchases"][q]
        ax.axvline(value, color="#333", ls=style, lw=1)
        ax.text(value, ax.get_ylim()[1] * 0.95, f" {q} ${value:,.0f}", fontsize=8, va="top")
    ax.set_xlabel("purchase amount (log scale)")
    ax.set_ylabel("transactions")
    ax.yaxis.set_major_formatter(_thousands())
    ax.set_title("Purchase amounts")
    return _save(fig, path)


def _amounts_by_category(f: dict, path: Path) -> str | None:
    rows = [r for r in f["categories"][:TOP_TYPES] if r.get("p50") is not None][::-1]
    fig, ax = _figure(7, 0.22 * len(rows) + 1.2)
    y = np.arange(len(rows))
    p50, p90, p99 = ([r[q] for r in rows] for q in ("p50", "p90", "p99"))
    ax.hlines(y, p50, p99, color="#bbb", lw=2)
    ax.plot(p50, y, "o", color="#4c72b0", label="median", ms=4)
    ax.plot(p90, y, "s", color="#dd8452", label="p90", ms=4)
    ax.plot(p99, y, "^", color="#c44e52", label="p99", ms=4)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(_dollars())
    ax.set_yticks(y, [r["category"] for r in rows], fontsize=8)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.04), ncol=3, frameon=False, fontsize=8)
    ax.set_title("Purchase amount by spending type")
    return _save(fig, path)


def _hours(f: dict, path: Path) -> str | None:
    data = f["hour_by_category"]
    counts = np.array(data["counts"][:TOP_TYPES], dtype=float)
    if counts.size == 0:
        return None
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    fig, ax = _figure(7, 0.22 * len(counts) + 1.4)
    image = ax.imshow(share, aspect="auto", cmap="viridis")
    ax.set_yticks(range(len(counts)), data["categories"][: len(counts)], fontsize=8)
    ax.set_xticks(range(0, 24, 2), [f"{h:02d}" for h in range(0, 24, 2)], fontsize=8)
    ax.set_xlabel("hour of day (local)")
    bar = fig.colorbar(image, ax=ax, label="share of the type's transactions", shrink=0.6)
    bar.ax.yaxis.set_major_formatter(_percent())
    ax.set_title("Hour of day by spending type")
    return _save(fig, path)


def _weekdays(f: dict, path: Path) -> str | None:
    fig, ax = _figure(4.5, 3.0)
    ax.bar(
        [r["weekday"] for r in f["weekday"]], [r["share"] for r in f["weekday"]], color="#4c72b0"
    )
    ax.axhline(1 / 7, color="#999", ls="--", lw=1)
    ax.yaxis.set_major_formatter(_percent())
    ax.set_title("Weekday")
    return _save(fig, path)


def _seasons(f: dict, path: Path) -> str | None:
    import matplotlib.pyplot as plt

    months = f["months"]
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(9, 3.0), dpi=110, width_ratios=[1, 2])
    per_day = np.array([m["rows_per_day"] for m in months])
    ax.bar([m["month"] for m in months], per_day / per_day.mean(), color="#55a868")
    ax.axhline(1, color="#999", ls="--", lw=1)
    ax.set_xticks(range(1, 13), list("JFMAMJJASOND"))
    ax.set_title("Month (per day, mean = 1)")
    series = f["monthly_rows"]
    ax2.plot(np.arange(len(series)), [m["rows"] for m in series], color="#4c72b0", lw=1)
    ticks = [i for i, m in enumerate(series) if m["month"].endswith("-01")]
    ticks = ticks[:: max(1, len(ticks) // 8)]
    labels = [series[i]["month"][:4] for i in ticks]
    if not ticks and series:
        # A period with no January (a quarter, say) still says when it is.
        ticks, labels = [0], [series[0]["month"]]
    ax2.set_xticks(ticks, labels)
    holidays = f["holidays"]
    title = "Transactions per month"
    if holidays["ratio"] is not None:
        title += f"; public holidays: {holidays['ratio']:.2f}x an ordinary day"
    by_name = [d for d in holidays.get("by_name", []) if d["ratio"] is not None]
    if by_name:
        quiet, busy = by_name[0], by_name[-1]
        title += f"\n{quiet['name']} {quiet['ratio']:.2f}x, {busy['name']} {busy['ratio']:.2f}x"
    ax2.set_title(title, fontsize=9)
    for a in (ax, ax2):
        a.spines[["top", "right"]].set_visible(False)
    return _save(fig, path)


def _channels(f: dict, path: Path) -> str | None:
    years = f["channel_by_year"]
    if not years:
        return None
    fig, ax = _figure(7, 3.4)
    x = [r["year"] for r in years]
    bottom = np.zeros(len(x))
    for channel in ("swipe", "chip", "online"):
        share = np.array([r.get(f"{channel}_share", 0.0) for r in years])
        ax.bar(x, share, bottom=bottom, color=COLORS[channel], label=channel, width=0.85)
        bottom += share
    chip = [r["chip_in_person_share"] for r in years]
    ax.plot(
        x,
        [np.nan if c is None else c for c in chip],
        color="black",
        marker="o",
        ms=3,
        lw=1,
        label="chip share of in-person",
    )
    ax.yaxis.set_major_formatter(_percent())
    ax.set_ylim(0, 1)
    _year_axis(ax, x)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=4, frameon=False, fontsize=8)
    ax.set_title("Channel mix by year")
    return _save(fig, path)


def _errors(f: dict, path: Path) -> str | None:
    rows = f["errors"][::-1]
    if not rows:
        return None
    fig, ax = _figure(6, 0.3 * len(rows) + 1.2)
    ax.barh([r["error"] for r in rows], [r["share"] for r in rows], color="#c44e52")
    ax.xaxis.set_major_formatter(_percent())
    ax.set_title(f"Errors: {f['error_share']:.2%} of transactions")
    return _save(fig, path)


def _travel(f: dict, path: Path) -> str | None:
    import matplotlib.pyplot as plt

    travel = f["travel"]
    states = travel["states"]
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(9, 3.2), dpi=110, width_ratios=[1, 2])
    ax.bar(
        [s["state"] for s in states],
        [s["share"] for s in states],
        color=[STATE_COLORS.get(s["state"], "#999") for s in states],
    )
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(_percent())
    ax.set_title("Consumer state")
    ax.tick_params(axis="x", labelsize=8)
    labels = travel["distance_bands"]
    x = np.arange(len(labels))
    width = 0.8 / max(len(states), 1)
    for i, s in enumerate(states):
        bands = np.array(s["distance_bands"], dtype=float)
        ax2.bar(
            x + i * width,
            bands / max(bands.sum(), 1),
            width,
            label=s["state"],
            color=STATE_COLORS.get(s["state"], "#999"),
        )
    ax2.set_xticks(x + 0.4 - width / 2, labels, fontsize=7, rotation=20)
    ax2.yaxis.set_major_formatter(_percent())
    ax2.legend(frameon=False, fontsize=8)
    ax2.set_title("Distance from home of in-person purchases")
    for a in (ax, ax2):
        a.spines[["top", "right"]].set_visible(False)
    return _save(fig, path)


def _fraud(f: dict, path: Path) -> str | None:
    import matplotlib.pyplot as plt

    fraud = f["fraud"]
    if not fraud["rows"]:
        return None
    fig, axes = plt.subplots(2, 2, figsize=(10, 6.4), dpi=110)
    (a, b), (c, d) = axes
    a.bar(
        [m["mechanism"] for m in fraud["by_mechanism"]],
        [m["rows"] for m in fraud["by_mechanism"]],
        color="#c44e52",
    )
    a.yaxis.set_major_locator(_whole_numbers())
    a.set_title("Fraud rows by mechanism")
    b.bar(
        [r["channel"] for r in fraud["by_channel"]],
        [r["rate"] for r in fraud["by_channel"]],
        color=[COLORS.get(r["channel"], "#999") for r in fraud["by_channel"]],
    )
    b.yaxis.set_major_formatter(_percent())
    b.set_title("Fraud rate by channel")
    top = fraud["by_category"][:12][::-1]
    c.barh([r["category"] for r in top], [r["fraud"] for r in top], color="#8172b3")
    c.xaxis.set_major_locator(_whole_numbers())
    c.tick_params(axis="y", labelsize=8)
    c.set_title("Fraud rows by spending type (top 12)")
    years = fraud["by_year"]
    d.plot(
        [r["year"] for r in years], [r["rate"] for r in years], marker="o", ms=3, color="#c44e52"
    )
    _year_axis(d, [r["year"] for r in years])
    d.yaxis.set_major_formatter(_percent())
    d.set_title("Fraud rate by year")
    for ax in axes.ravel():
        ax.spines[["top", "right"]].set_visible(False)
    return _save(fig, path)


def _refunds(f: dict, path: Path) -> str | None:
    import matplotlib.pyplot as plt

    refunds = f["refunds"]
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.4), dpi=110, width_ratios=[1, 2])
    a.bar(
        [r["channel"] for r in refunds["by_channel"]],
        [r["share"] for r in refunds["by_channel"]],
        color=[COLORS.get(r["channel"], "#999") for r in refunds["by_channel"]],
    )
    a.yaxis.set_major_formatter(_percent())
    a.set_title("Refund share by channel")
    top = sorted(refunds["by_category"], key=lambda r: -r["refunds"])[:12][::-1]
    b.barh([r["category"] for r in top], [r["share"] for r in top], color="#dd8452")
    b.xaxis.set_major_formatter(_percent())
    b.tick_params(axis="y", labelsize=8)
    b.set_title("Refund share of the 12 types with most refunds")
    for ax in (a, b):
        ax.spines[["top", "right"]].set_visible(False)
    return _save(fig, path)


def _year_axis(ax, years: list[int]) -> None:
    """Ticks at the years themselves, and half a year of room either side.

    Left to matplotlib, a year axis gets fractional ticks (2018.25) and a single year an
    axis two centuries wide (a one-point range is padded by 5% of its value: 2019 +- 101).
    """
    ax.set_xticks(years, [str(year) for year in years], rotation=45 if len(years) > 12 else 0)
    ax.set_xlim(min(years) - 0.5, max(years) + 0.5)


def _whole_numbers():
    """Ticks at whole numbers only, for axes that count rows."""
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(integer=True)


def _percent():
    """Shares (0.025) written as percents (2.5%), with as many decimals as the ticks need."""
    from matplotlib.ticker import PercentFormatter

    class Percent(PercentFormatter):
        # Matplotlib hands a formatter every tick of the axis before asking for labels.
        def set_locs(self, locs):
            super().set_locs(locs)
            self.decimals = percent_decimals(locs)

    return Percent(1.0)


def percent_decimals(shares) -> int:
    """The fewest decimals that write every share (0.025) exactly as a percent (2.5%).

    A fixed number of decimals mislabels ticks (2.5% as "2%") or writes two ticks the
    same ("0.06%" for 0.055% and 0.06%); matplotlib's own choice goes by the axis' range,
    not the tick step, and can fall one decimal short.
    """
    percents = np.abs(np.asarray(shares, dtype=float)) * 100
    percents = percents[np.isfinite(percents)]
    if not percents.size:
        return 0
    # Tick positions are sums of float steps (0.30000000000000004): exact to a few ulps.
    tolerance = 1e-9 * percents.max()
    for decimals in range(MAX_PERCENT_DECIMALS):
        if np.all(np.abs(np.round(percents, decimals) - percents) <= tolerance):
            return decimals
    return MAX_PERCENT_DECIMALS


def _thousands():
    """Counts with thousands separators (1,200,000), not matplotlib's 1.2 and 1e6 above."""
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda v, _: f"{v:,.0f}")


def _dollars():
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda v, _: f"${v:,.0f}" if v >= 1 else f"${v:.2f}")


PLOTS = {
    "per_year": _per_year,
    "categories": _categories,
    "mccs": _mccs,
    "amounts": _amounts,
    "amounts_by_category": _amounts_by_category,
    "hours": _hours,
    "weekdays": _weekdays,
    "seasons": _seasons,
    "channels": _channels,
    "errors": _errors,
    "travel": _travel,
    "fraud": _fraud,
    "refunds": _refunds,
}


# --- the page -------------------------------------------------------------------------

CSS = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222;
       margin: 0; background: #f5f6f8; }
header { background: #1f2a44; color: #fff; padding: 24px 40px; }
header h1 { margin: 0 0 4px; font-size: 26px; }
header p { margin: 0; color: #c9d1e3; }
main { max-width: 1280px; margin: 0 auto; padding: 24px 40px 60px; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(170px, 1fr)); gap: 12px; }
.card { background: #fff; border-radius: 8px; padding: 12px 16px; box-shadow: 0 1px 3px rgba(0,0,0,.08); }
.card .v { font-size: 22px; font-weight: 600; }
.card .k { color: #667; font-size: 13px; }
section { background: #fff; border-radius: 8px; padding: 18px 24px; margin-top: 22px;
          box-shadow: 0 1px 3px rgba(0,0,0,.08); }
section h2 { margin: 0 0 6px; font-size: 19px; }
section p.note { margin: 0 0 12px; color: #556; }
.row { display: flex; flex-wrap: wrap; gap: 18px; align-items: flex-start; }
.row > img { flex: 0 1 auto; min-width: 0; max-width: calc(50% - 9px); height: auto; }
.row > img.wide { max-width: 100%; }
@media (max-width: 900px) { .row > img { max-width: 100%; } }
table { border-collapse: collapse; font-size: 13px; }
th, td { padding: 3px 10px; text-align: right; border-bottom: 1px solid #eee; }
th:first-child, td:first-child { text-align: left; }
th { color: #556; font-weight: 600; }
footer { color: #889; font-size: 12px; margin-top: 30px; }
"""


def _page(f: dict, plots: dict[str, str], ledger_dir: Path) -> str:
    o = f["overview"]
    amounts = f["amounts"]
    cards = [
        ("transactions", f"{o['rows']:,}"),
        ("consumers", f"{o['consumers']:,}"),
        ("cards", f"{o['cards']:,}"),
        ("merchants", f"{o['merchants']:,}"),
        ("period", f"{o['first_day'][:4]} &ndash; {o['last_day'][:4]}"),
        (
            f"per consumer-year with a card ({f['consumer_years']:,.1f} consumer-years)",
            f"{f['transactions_per_consumer_year']:,.0f}",
        ),
        ("mean / median amount", f"${amounts['mean']:,.2f} / ${amounts['p50']:,.2f}"),
        ("fraud", f"{f['fraud']['share']:.3%} of rows"),
        ("refunds", f"{f['refunds']['share']:.2%} of rows"),
        ("errors", f"{f['error_share']:.2%} of rows"),
        ("away from home", f"{f['travel']['away_share']:.1%} of rows"),
        (
            "cards per consumer",
            f"{f['cards']['per_consumer']:.2f} ({f['cards']['accounts_per_consumer']:.2f} accounts)",
        ),
    ]

    def img(name: str, alt: str) -> str:
        if name not in plots:
            return ""
        wide = ' class="wide"' if name in WIDE_PLOTS else ""
        return f'<img src="{plots[name]}"{wide} alt="{html.escape(alt)}">'

    channel_rows = [[r["channel"], f"{r['rows']:,}", f"{r['share']:.1%}"] for r in f["channels"]]
    kinds = [
        [
            k["kind"],
            f"{k['cards']:,}",
            f"{k['purchases']:,}",
            "" if k["ticket"] is None else f"${k['ticket']:,.2f}",
        ]
        for k in f["cards"]["kinds"]
    ]
    categories = [
        [
            r["category"],
            f"{r['rows']:,}",
            f"{r['share']:.1%}",
            _money(r.get("p50")),
            _money(r.get("p90")),
            _money(r.get("p99")),
        ]
        for r in f["categories"][:TOP_TYPES]
    ]
    mechanisms = [
        [m["mechanism"], f"{m['rows']:,}", _money(m["amount"])] for m in f["fraud"]["by_mechanism"]
    ]
    sections = [
        (
            "Volume",
            "Transactions per year, and per consumer-year with a card: each consumer counts "
            "from their first card's opening (or the period's start, when earlier) to the "
            f"period's end, so the {o['consumers']:,} consumers make {f['consumer_years']:,.1f} "
            f"consumer-years, and the ledger holds {o['rows'] / o['consumers']:,.1f} "
            "transactions per consumer.",
            img("per_year", "transactions per year"),
        ),
        (
            "What people buy",
            f"{len(f['categories'])} spending types and {len(f['mccs'])} merchant category codes; report.json lists them all.",
            img("categories", "spending types") + img("mccs", "MCCs"),
        ),
        (
            "Amounts",
            f"Mean ${amounts['mean']:,.2f}, median ${amounts['p50']:,.2f}, p90 ${amounts['p90']:,.2f}, p99 ${amounts['p99']:,.2f} over all rows (refunds negative).",
            img("amounts", "amount distribution")
            + img("amounts_by_category", "amount by type")
            + _table(["type", "rows", "share", "median", "p90", "p99"], categories),
        ),
        (
            "When",
            "Hour of day by spending type, weekday, month and public holidays.",
            img("hours", "hour by type") + img("weekdays", "weekday") + img("seasons", "seasons"),
        ),
        (
            "How people pay",
            "Swipe, chip and online by year; chip cards and terminals spread from the mid-2010s.",
            img("channels", "channels by year")
            + _table(["channel", "rows", "share"], channel_rows)
            + _table(["card kind", "cards", "purchases", "average ticket"], kinds),
        ),
        ("Errors", "Declined or failed attempts, by error.", img("errors", "errors")),
        (
            "Travel",
            "Where consumers are when they buy, and how far in-person purchases happen from the home in consumers.parquet (the last home: purchases made before a move count as far from it).",
            img("travel", "travel"),
        ),
        (
            "Fraud",
            f"{f['fraud']['rows']:,} fraudulent rows ({f['fraud']['share']:.3%}; {f['fraud']['value_bps']:.1f} basis points of purchase value).",
            img("fraud", "fraud") + _table(["mechanism", "rows", "amount"], mechanisms),
        ),
        (
            "Refunds",
            f"{f['refunds']['rows']:,} refunds ({f['refunds']['share']:.2%} of rows).",
            img("refunds", "refunds"),
        ),
    ]
    body = "".join(
        f'<section><h2>{title}</h2><p class="note">{note}</p><div class="row">{content}</div></section>'
        for title, note, content in sections
    )
    cards_html = "".join(
        f'<div class="card"><div class="v">{v}</div><div class="k">{k}</div></div>'
        for k, v in cards
    )
    title = f"cardworld ledger report: {html.escape(str(o['world']))}"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{CSS}</style></head>
<body><header><h1>{title}</h1><p>{html.escape(str(ledger_dir))} &middot; seed {o["seed"]} &middot; {o["first_day"]} to {o["last_day"]}</p></header>
<main><div class="cards">{cards_html}</div>{body}
<footer>Every figure on this page is in report.json beside it.</footer></main></body></html>
"""


def _money(value) -> str:
    return "" if value is None else f"${value:,.2f}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
