"""The ledger report: every figure in report.json equals a direct pandas computation on
the tiny ledger, the streaming pass does not depend on batch size, and the page renders
in a real browser."""

from __future__ import annotations

import copy
import datetime as dt
import json
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from cardworld.simulator.report import PLOTS, build_report, percent_decimals
from cardworld.simulator.report_figures import (
    AMOUNT_EDGES,
    DISTANCE_EDGES_KM,
    compute_figures,
    quantiles_from_counts,
)
from cardworld.worlds import reference

approx = pytest.approx


@pytest.fixture(scope="module")
def built(tiny_ledger, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    page = build_report(tiny_ledger, out)
    return page, json.loads((out / "report.json").read_text())


@pytest.fixture(scope="module")
def frame(tiny_frames):
    """The transactions with the columns a reader derives by hand."""
    t = tiny_frames["transactions"].copy()
    for column in ("category", "channel", "errors", "fraud_mechanism", "consumer_state"):
        t[column] = t[column].astype(object)
    t["year"] = t["timestamp"].dt.year
    t["cents"] = (t["amount"] * 100).round().astype(np.int64)
    return t


def by(records: list[dict], key: str) -> dict:
    return {r[key]: r for r in records}


def test_report_writes_page_json_and_every_plot(built):
    page, figures = built
    html = page.read_text()
    for name in PLOTS:
        png = page.parent / f"{name}.png"
        assert png.is_file() and png.stat().st_size > 5000, name
        assert f'src="{name}.png"' in html
    assert "<h2>Fraud</h2>" in html and "<h2>Amounts</h2>" in html
    # report.json is strict JSON: no NaN or Infinity.
    json.loads((page.parent / "report.json").read_text(), parse_constant=pytest.fail)


def test_overview_matches_pandas(built, frame, tiny_frames):
    o = built[1]["overview"]
    assert o["rows"] == len(frame)
    assert o["consumers"] == len(tiny_frames["consumers"])
    assert o["active_consumers"] == frame["consumer_id"].nunique()
    assert o["cards"] == len(tiny_frames["cards"])
    assert o["cards_used"] == frame["card_id"].nunique()
    assert o["merchants"] == len(tiny_frames["merchants"])
    assert o["first_day"] == frame["timestamp"].min().date().isoformat()
    assert o["last_day"] == frame["timestamp"].max().date().isoformat()
    assert o["fraud_rows"] == frame["is_fraud"].sum()
    assert o["error_rows"] == frame["errors"].notna().sum()
    assert (o["world"], o["seed"]) == ("tiny", 7)


def _consumer_years(cards: pd.DataFrame, start: str, end: str) -> dict[int, float]:
    """Naive twin: each consumer's days from their first card (or the start) to the end,
    counted day by day, each day 1/365 or 1/366 of its year."""
    out: dict[int, float] = {}
    days = pd.date_range(start, end, freq="D")
    for first in pd.to_datetime(cards.groupby("consumer_id")["opened"].min()):
        for day in days[days >= first]:
            out[day.year] = out.get(day.year, 0.0) + 1 / (366 if day.is_leap_year else 365)
    return out


def test_volume_matches_pandas(built, frame, tiny_frames):
    figures = built[1]
    covered = _consumer_years(tiny_frames["cards"], *figures["overview"]["period"])
    assert figures["transactions_per_consumer_year"] == approx(len(frame) / sum(covered.values()))
    for year, row in by(figures["per_year"], "year").items():
        in_year = frame[frame["year"] == year]
        assert row["rows"] == len(in_year)
        assert row["consumers"] == in_year["consumer_id"].nunique()
        assert row["consumer_years"] == approx(covered[year])
        assert row["per_consumer"] == approx(len(in_year) / covered[year])


def test_a_partial_year_counts_per_consumer_year_covered(tmp_path):
    """A quarter's ledger: transactions per consumer-year are about four times the rows
    per consumer, not the quarter's count (every us consumer here holds a card from before
    the period, so each covers the whole quarter)."""
    from cardworld.simulator.run import simulate

    out = tmp_path / "quarter"
    simulate("us", out, consumers=12, start=dt.date(2020, 1, 1), end=dt.date(2020, 3, 31))
    figures = compute_figures(out)
    cards = pd.read_parquet(out / "cards.parquet")
    assert (pd.to_datetime(cards.groupby("consumer_id")["opened"].min()) < "2020-01-01").all()
    rows, consumers = figures["overview"]["rows"], figures["overview"]["consumers"]
    consumer_years = consumers * 91 / 366  # 2020 is a leap year
    assert figures["per_year"][0]["consumer_years"] == approx(consumer_years)
    assert figures["transactions_per_consumer_year"] == approx(rows / consumer_years)
    assert figures["transactions_per_consumer_year"] > 3.5 * rows / consumers


def test_the_page_says_what_volume_is_per(built, tiny_frames):
    """The headline divides by consumer-years with a card, which differ from the consumers
    (a consumer whose first card opens mid-year counts part of it): the page names the
    consumer-years and the rows per consumer beside it, so neither reads as the other."""
    page, figures = built
    html = page.read_text()
    covered = _consumer_years(tiny_frames["cards"], *figures["overview"]["period"])
    assert figures["consumer_years"] == approx(sum(covered.values()))
    o = figures["overview"]
    assert figures["consumer_years"] < o["consumers"]  # some cards open during 2019
    assert f"({figures['consumer_years']:,.1f} consumer-years)" in html
    assert f"{o['rows'] / o['consumers']:,.1f} transactions per consumer" in html
    assert "active consumer" not in html


def test_amounts_match_pandas(built, frame):
    amounts = built[1]["amounts"]
    a = frame["amount"]
    assert amounts["rows"] == len(a)
    assert amounts["mean"] == approx(a.mean())
    for q in (50, 90, 99):
        assert amounts[f"p{q}"] == approx(a.quantile(q / 100)), q
    purchases = a[a > 0]
    assert amounts["purchases"]["mean"] == approx(purchases.mean())
    assert amounts["purchases"]["p99"] == approx(purchases.quantile(0.99))
    counts, _ = np.histogram(purchases, bins=AMOUNT_EDGES)
    assert amounts["histogram"]["counts"] == counts.tolist()


def test_categories_and_mccs_match_pandas(built, frame):
    figures = built[1]
    categories = by(figures["categories"], "category")
    assert set(categories) == set(frame["category"])
    spend = frame.loc[frame["amount"] > 0, "amount"].sum()
    for name, group in frame.groupby("category"):
        row = categories[name]
        bought = group.loc[group["amount"] > 0, "amount"]
        assert row["rows"] == len(group)
        assert row["share"] == approx(len(group) / len(frame))
        assert row["purchases"] == len(bought)
        assert row["amount"] == approx(bought.sum())
        assert row["amount_share"] == approx(bought.sum() / spend)
        assert row["refunds"] == (group["amount"] < 0).sum()
        assert row["fraud"] == group["is_fraud"].sum()
        assert row["mean"] == approx(bought.mean())
        assert row["p50"] == approx(bought.median())
        assert row["p90"] == approx(bought.quantile(0.9))
        assert row["p99"] == approx(bought.quantile(0.99))
    rows = [r["rows"] for r in figures["categories"]]
    assert rows == sorted(rows, reverse=True)

    mccs = by(figures["mccs"], "mcc")
    expected = frame["mcc"].value_counts()
    assert {m: r["rows"] for m, r in mccs.items()} == expected.to_dict()
    assert mccs[5411]["description"] == reference.mcc_descriptions()[5411]


def test_calendar_matches_pandas(built, frame):
    figures = built[1]
    hours = pd.crosstab(frame["category"], frame["timestamp"].dt.hour)
    hours = hours.reindex(columns=range(24), fill_value=0)
    heat = figures["hour_by_category"]
    for name, counts in zip(heat["categories"], heat["counts"], strict=True):
        assert counts == hours.loc[name].tolist(), name

    weekday = frame["timestamp"].dt.day_of_week.value_counts()
    assert [r["rows"] for r in figures["weekday"]] == [int(weekday.get(d, 0)) for d in range(7)]
    assert sum(r["share"] for r in figures["weekday"]) == approx(1.0)

    month = frame["timestamp"].dt.month.value_counts()
    for row in figures["months"]:
        assert row["rows"] == month[row["month"]]
        days = pd.Period(f"2019-{row['month']:02d}").days_in_month
        assert row["rows_per_day"] == approx(month[row["month"]] / days)
    monthly = frame["timestamp"].dt.to_period("M").astype(str).value_counts()
    assert {r["month"]: r["rows"] for r in figures["monthly_rows"]} == monthly.to_dict()

    daily = frame["timestamp"].dt.normalize().value_counts()
    daily = daily.reindex(pd.date_range("2019-01-01", "2019-12-31"), fill_value=0)
    holidays = pd.to_datetime(
        reference.holiday_days(
            pd.Timestamp("2019-01-01").date(), pd.Timestamp("2019-12-31").date()
        ),
        unit="D",
    )
    on_holiday = daily.index.isin(holidays)
    assert figures["holidays"]["days"] == on_holiday.sum() > 5
    assert figures["holidays"]["ratio"] == approx(
        daily[on_holiday].mean() / daily[~on_holiday].mean()
    )
    by_name = {d["name"]: d for d in figures["holidays"]["by_name"]}
    named = reference.holiday_names(dt.date(2019, 1, 1), dt.date(2019, 12, 31))
    unnamed = ~daily.index.isin(pd.to_datetime(list(named), unit="D"))
    assert unnamed.sum() == 365 - len(named) > 330
    christmas = by_name["Christmas Day"]
    assert christmas["days"] == 1
    assert christmas["rows_per_day"] == daily[pd.Timestamp("2019-12-25")]
    assert by_name["Black Friday"]["rows_per_day"] == daily[pd.Timestamp("2019-11-29")]
    ordinary = christmas["rows_per_day"] / christmas["ratio"]
    assert daily[unnamed].mean() == approx(ordinary)
    ratios = [d["ratio"] for d in figures["holidays"]["by_name"]]
    assert ratios == sorted(ratios)


def test_channels_and_errors_match_pandas(built, frame):
    figures = built[1]
    shares = frame["channel"].value_counts(normalize=True)
    assert {r["channel"]: r["share"] for r in figures["channels"]} == approx(shares.to_dict())
    for row in figures["channel_by_year"]:
        in_year = frame[frame["year"] == row["year"]]
        in_person = in_year[in_year["channel"] != "online"]
        assert row["chip_in_person_share"] == approx((in_person["channel"] == "chip").mean())
        assert row["online_share"] == approx((in_year["channel"] == "online").mean())

    errors = frame["errors"].value_counts()
    assert {r["error"]: r["rows"] for r in figures["errors"]} == errors.to_dict()
    assert figures["error_share"] == approx(frame["errors"].notna().mean())
    glitch = by(figures["errors"], "error")["Technical Glitch"]
    assert (
        glitch["by_channel"]
        == frame.loc[frame["errors"] == "Technical Glitch", "channel"].value_counts().to_dict()
    )


def test_travel_matches_pandas(built, frame, tiny_frames):
    travel = built[1]["travel"]
    homes = tiny_frames["consumers"].set_index("consumer_id")
    shops = tiny_frames["merchants"].set_index("merchant_id")
    home = homes.loc[frame["consumer_id"], ["lat", "lon"]].to_numpy()
    shop = shops.loc[frame["merchant_id"], ["lat", "lon"]].to_numpy()
    km = reference.haversine_km(*np.radians(home.T), *np.radians(shop.T))
    frame = frame.assign(km=km)
    assert travel["away_share"] == approx((frame["consumer_state"] != "home").mean())
    for state, row in by(travel["states"], "state").items():
        rows = frame[frame["consumer_state"] == state]
        in_person = rows[rows["channel"] != "online"]
        assert row["rows"] == len(rows)
        assert row["in_person_rows"] == len(in_person)
        assert row["mean_km"] == approx(in_person["km"].mean())
        bands = pd.cut(in_person["km"], DISTANCE_EDGES_KM, right=False, labels=False)
        expected = bands.value_counts().reindex(range(len(DISTANCE_EDGES_KM) - 1), fill_value=0)
        assert row["distance_bands"] == expected.tolist()


def test_fraud_and_refunds_match_pandas(built, frame):
    fraud, refunds = built[1]["fraud"], built[1]["refunds"]
    is_fraud = frame["is_fraud"]
    positive = frame["amount"].clip(lower=0)
    assert fraud["rows"] == is_fraud.sum() > 0
    assert fraud["share"] == approx(is_fraud.mean())
    assert fraud["value_bps"] == approx(1e4 * positive[is_fraud].sum() / positive.sum())
    mechanisms = frame[is_fraud].groupby("fraud_mechanism")["amount"]
    assert {r["mechanism"]: r["rows"] for r in fraud["by_mechanism"]} == mechanisms.size().to_dict()
    for row in fraud["by_channel"]:
        rows = frame[frame["channel"] == row["channel"]]
        assert (row["rows"], row["fraud"]) == (len(rows), rows["is_fraud"].sum())
    assert {r["category"]: r["fraud"] for r in fraud["by_category"]} == frame.loc[
        is_fraud, "category"
    ].value_counts().to_dict()
    (year,) = fraud["by_year"]
    assert year["rate"] == approx(is_fraud.mean())
    assert year["fraud_amount"] == approx(positive[is_fraud].sum())

    refund = frame["amount"] < 0
    assert refunds["rows"] == refund.sum()
    assert refunds["share"] == approx(refund.mean())
    for row in refunds["by_channel"]:
        rows = frame[frame["channel"] == row["channel"]]
        assert row["share"] == approx((rows["amount"] < 0).mean())
    top = by(refunds["by_category"], "category")
    for name, group in frame.groupby("category"):
        assert top[name]["refunds"] == (group["amount"] < 0).sum()


def test_cards_match_pandas(built, frame, tiny_frames):
    cards = built[1]["cards"]
    held = tiny_frames["cards"]
    assert cards["per_consumer"] == approx(len(held) / held["consumer_id"].nunique())
    assert cards["transactions_per_card_used"] == approx(frame.groupby("card_id").size().mean())
    # A reissued card continues the account of the card it replaces.
    replaces = held.set_index("card_id")["replaces"] if "replaces" in held else pd.Series()
    root = {}
    for card in held["card_id"]:
        account = card
        while not pd.isna(replaces.get(account, np.nan)):
            account = int(replaces[account])
        root[card] = account
    consumers = held["consumer_id"].nunique()
    assert cards["accounts_per_consumer"] == approx(len(set(root.values())) / consumers)
    per_account = frame["card_id"].map(root).value_counts()
    assert cards["transactions_per_account_used"] == approx(per_account.mean())
    kind = held.set_index("card_id")["kind"].astype(str)
    bought = frame[frame["amount"] > 0].assign(kind=lambda d: kind.loc[d["card_id"]].to_numpy())
    tickets = bought.groupby("kind")["amount"].mean()
    for row in cards["kinds"]:
        assert row["cards"] == (held["kind"] == row["kind"]).sum()
        assert row["ticket"] == approx(tickets[row["kind"]])
    assert tickets["credit"] > tickets["debit"]


def _leaves(value, path=""):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _leaves(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _leaves(v, f"{path}[{i}]")
    else:
        yield path, value


def test_figures_do_not_depend_on_the_batch_size(tiny_ledger, built):
    small = dict(_leaves(compute_figures(tiny_ledger, batch_rows=7_919)))
    whole = dict(_leaves(built[1]))
    assert small.keys() == whole.keys()
    for path, value in whole.items():
        # Sums of floats may differ in the last bits with the order of additions.
        assert small[path] == (approx(value) if isinstance(value, float) else value), path


def test_quantiles_from_counts_equal_pandas():
    rng = np.random.default_rng(3)
    values = rng.integers(-500, 5000, size=2001) / 100.0
    distinct, counts = np.unique(values, return_counts=True)
    for q in (0.0, 0.1, 0.5, 0.9, 0.99, 1.0):
        (got,) = quantiles_from_counts(distinct, counts, [q])
        assert got == approx(pd.Series(values).quantile(q)), q
    assert np.isnan(quantiles_from_counts(np.array([]), np.array([]), [0.5])[0])


def _years_apart(figures: dict) -> dict:
    """The figures with each per-year list spread over 2018-2020, the fraud rates those of
    a us ledger whose axis once read 2018.00 2018.25 ... and 0.06% twice."""
    figures = copy.deepcopy(figures)
    years = (2018, 2019, 2020)
    rates = (0.00042, 0.000655, 0.00041)
    for key in ("per_year", "channel_by_year"):
        figures[key] = [{**figures[key][0], "year": y} for y in years]
    figures["fraud"]["by_year"] = [
        {**figures["fraud"]["by_year"][0], "year": y, "rate": r}
        for y, r in zip(years, rates, strict=True)
    ]
    return figures


def _drawn_figures(figures: dict, tmp_path, monkeypatch) -> dict:
    """Each plot's matplotlib figure, drawn (so its ticks are final) but not closed."""
    import matplotlib

    from cardworld.simulator import report

    matplotlib.use("Agg")
    drawn = {}

    def keep(fig, path):
        fig.canvas.draw()
        drawn[path.stem] = fig
        return path.name

    monkeypatch.setattr(report, "_save", keep)
    for name, draw in PLOTS.items():
        draw(figures, tmp_path / f"{name}.png")
    return drawn


def _tick_labels(axis) -> list[tuple[float, str]]:
    """The major ticks an axis shows (inside its view) with their labels."""
    lo, hi = sorted(axis.get_view_interval())
    locs = axis.get_majorticklocs()
    labels = axis.major.formatter.format_ticks(locs)
    slack = 1e-9 * (hi - lo)
    return [
        (loc, text)
        for loc, text in zip(locs, labels, strict=True)
        if lo - slack <= loc <= hi + slack and text
    ]


@pytest.mark.parametrize("spread", [False, True], ids=["one year", "three years"])
def test_plot_ticks_are_distinct_exact_percents_and_whole_years(
    built, tmp_path, monkeypatch, spread
):
    import matplotlib.pyplot as plt

    figures = _years_apart(built[1]) if spread else built[1]
    drawn = _drawn_figures(figures, tmp_path, monkeypatch)
    assert set(drawn) == set(PLOTS)
    try:
        for name, fig in drawn.items():
            for i, ax in enumerate(fig.axes):
                for axis in (ax.xaxis, ax.yaxis):
                    ticks = _tick_labels(axis)
                    where = f"{name}.png, axes {i}, {axis.axis_name}: {ticks}"
                    # Numbers only: the months' initials (J F M A M J J ...) repeat on purpose.
                    numbers = [text for _, text in ticks if any(c.isdigit() for c in text)]
                    assert len(set(numbers)) == len(numbers), where
                    for loc, text in ticks:
                        if text.endswith("%"):
                            assert float(text[:-1]) == approx(100 * loc, rel=1e-9, abs=1e-12), where
        # The year axes: a tick at each year and nothing between, the years centred.
        years = [r["year"] for r in figures["fraud"]["by_year"]]
        for name, ax in (
            ("per_year", drawn["per_year"].axes[0]),
            ("channels", drawn["channels"].axes[0]),
            ("fraud", drawn["fraud"].axes[3]),
        ):
            ticks = _tick_labels(ax.xaxis)
            assert [text for _, text in ticks] == [str(y) for y in years], name
            assert ax.get_xlim() == approx((years[0] - 0.5, years[-1] + 0.5)), name
    finally:
        for fig in drawn.values():
            plt.close(fig)


def test_percent_decimals_write_every_tick_exactly():
    assert percent_decimals([0.0, 0.2, 0.4, 1.0]) == 0
    assert percent_decimals(np.arange(8) * 0.025) == 1  # 2.5%, not "2%"
    assert percent_decimals(np.arange(0.0004, 0.0007, 0.00005)) == 3  # 0.055% and 0.060%
    assert percent_decimals([0.001, 0.01, 0.1, 1.0]) == 1  # a log axis: 0.1% to 100%
    assert percent_decimals([0.0, 0.30000000000000004]) == 0  # float steps' last bits
    assert percent_decimals([]) == 0


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed")
def test_page_renders_in_headless_chromium(built, tmp_path):
    import matplotlib.image

    page = built[0]
    shot = tmp_path / "shot.png"
    subprocess.run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--screenshot={shot}",
            "--window-size=1400,2400",
            page.resolve().as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    pixels = matplotlib.image.imread(shot)
    assert pixels.shape[:2] == (2400, 1400)
    # The header band is dark and the plots below it are drawn: not a blank page.
    assert pixels[20, :, :3].mean() < 0.3
    body = pixels[400:, :, :3]
    assert body.std() > 0.1 and (body.mean(axis=2) < 0.5).mean() > 0.005


def test_report_command(tiny_ledger, tmp_path):
    import typer
    from typer.testing import CliRunner

    from cardworld.commands.report import report as report_command

    app = typer.Typer()
    app.command("report")(report_command)
    app.command("noop")(lambda: None)
    result = CliRunner().invoke(app, ["report", str(tiny_ledger), "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "r" / "index.html").is_file() and (tmp_path / "r" / "report.json").is_file()
