"""Simulated behaviour matches the world's parameters, within tolerances from the sample size.

A controlled world (the tiny world with income effects, travel, seasons, holidays and
retirement switched off) makes the expectation of every count exact, so each test can
compare counts with their expectation and a variance derived from the model:
a consumer's count of type k is Poisson with a Gamma-mixed personal rate.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import cardworld
from cardworld.simulator.kernels.population import sample_consumers
from cardworld.simulator.population import sample_population
from cardworld.simulator.run import _built, simulate
from cardworld.simulator.timeline import HOME, build_timeline
from cardworld.simulator.world_arrays import build_arrays, copula_cholesky
from cardworld.worlds.load import load_world, world_file

YEAR = 365.2425


def _us_goods() -> pd.DataFrame:
    """The shipped us world's goods table."""
    return pd.read_csv(world_file("us").parent / "tables" / "goods.csv", comment="#")


def _simulate_with_goods(base, goods: pd.DataFrame) -> pd.DataFrame:
    """The transactions of the tiny world with `goods` as its goods table, simulated in base."""
    goods.to_csv(base / "goods.csv", index=False)
    (base / "world.toml").write_text(
        'extends = "tiny"\nname = "goods"\ndescription = ""\n[tables]\ngoods = "goods.csv"\n'
    )
    simulate(base / "world.toml", base / "ledger", workers=1)
    return cardworld.read_transactions(base / "ledger")


@pytest.fixture(scope="module")
def controlled(tmp_path_factory):
    base = tmp_path_factory.mktemp("controlled")
    goods = _us_goods()
    for column in ("income_elasticity", "amount_income_elasticity"):
        goods[column] = 0.0
    for column in (
        "holiday_factor",
        "closed_factor",
        "getaway_factor",
        "vacation_factor",
        "business_factor",
        "retired_factor",
    ):
        goods[column] = 1.0
    goods["season_profile"] = "flat"
    goods["recurring"] = False  # every type's count then follows the personal-rate model
    goods.to_csv(base / "goods.csv", index=False)
    no_trips = "\n".join(
        f"[travel.{kind}]\nrate_per_year = 0.0\n" for kind in ("getaway", "vacation", "business")
    )
    (base / "world.toml").write_text(
        'extends = "tiny"\nname = "controlled"\ndescription = "tiny without income, travel, season or holiday effects"\n'
        '[tables]\ngoods = "goods.csv"\n[population]\nmove_rate_per_year = 0.0\n' + no_trips
    )
    out = base / "ledger"
    simulate(base / "world.toml", out, workers=1)
    world = load_world(base / "world.toml")
    txns = cardworld.read_transactions(out)
    cards = cardworld.read_table(out, "cards").to_pandas()
    start = pd.Timestamp(world.spec.simulation.start)
    end = pd.Timestamp(world.spec.simulation.end)
    first = cards.groupby("consumer_id")["opened"].min().map(pd.Timestamp).clip(lower=start)
    purchases = txns[(txns["amount"] > 0) & ~txns["is_fraud"]]
    return world, purchases, first, start, end


def _weekday_exposure(first: pd.Series, end: pd.Timestamp, arrays) -> np.ndarray:
    """(consumers, 7): active days on each weekday (Monday first), each day weighted by its
    year's spending multiplier (the world's drift)."""
    out = np.zeros((len(first), 7))
    years = len(arrays.spend_multiplier)
    for i, day in enumerate(first):
        days = pd.date_range(day, end, freq="D")
        drift = arrays.spend_multiplier[np.clip(days.year - arrays.first_year, 0, years - 1)]
        out[i] = np.bincount(days.day_of_week, weights=drift, minlength=7)
    return out


def test_category_counts_match_personal_rate_model(controlled):
    world, purchases, first, start, end = controlled
    arrays, labels = build_arrays(world)
    exposure = (
        _weekday_exposure(first, end, arrays) @ arrays.weekday_factor.T / YEAR
    )  # (consumers, types)
    p, rate, shape = arrays.participation, arrays.rate, arrays.rate_shape
    lam = rate * exposure
    expected = (p * lam).sum(axis=0)
    variance = (p * lam + p * lam**2 * (1 + 1 / shape) - p**2 * lam**2).sum(axis=0)
    observed = (
        purchases["category"]
        .astype(str)
        .value_counts()
        .reindex(labels.type_names, fill_value=0)
        .to_numpy()
    )
    z = (observed - expected) / np.sqrt(variance)
    # 104 types: |z| < 4.5 keeps the family-wise false alarm rate below 0.1%.
    assert np.abs(z).max() < 4.5, dict(zip(labels.type_names, np.round(z, 1), strict=True))
    # The total: types draw independent personal rates, so their variances add.
    total_z = (observed.sum() - expected.sum()) / np.sqrt(variance.sum())
    assert abs(total_z) < 4.5, total_z


def test_weekday_profiles_match(controlled):
    world, purchases, first, start, end = controlled
    arrays, labels = build_arrays(world)
    goods = world.tables["goods"].set_index("type")
    full_year = first.index[first == start]
    rows = purchases[purchases["consumer_id"].isin(full_year)]
    days_per_weekday = np.bincount(pd.date_range(start, end).day_of_week, minlength=7)
    for profile, types in goods.groupby("weekday_profile").groups.items():
        chosen = rows[rows["category"].astype(str).isin(types)]
        observed = np.bincount(chosen["timestamp"].dt.day_of_week, minlength=7)
        # Every type of one profile shares the same normalised weekday factors.
        factors = arrays.weekday_factor[labels.type_names.index(types[0])]
        probs = days_per_weekday * factors / (days_per_weekday * factors).sum()
        result = stats.chisquare(observed, probs * observed.sum())
        assert result.pvalue > 1e-4, (profile, observed, np.round(probs * observed.sum()))


def test_hour_profiles_match(controlled):
    world, purchases, *_ = controlled
    hours = world.tables["hours"].set_index("profile")
    goods = world.tables["goods"].set_index("type")
    for profile, types in goods.groupby("hour_profile").groups.items():
        chosen = purchases[purchases["category"].astype(str).isin(types)]
        observed = np.bincount(chosen["timestamp"].dt.hour, minlength=24)
        weights = hours.loc[profile].to_numpy(float)
        result = stats.chisquare(observed, weights / weights.sum() * observed.sum())
        assert result.pvalue > 1e-4, profile


def test_copula_gives_the_world_correlations():
    world = load_world("us")
    arrays, _ = build_arrays(world)
    p = world.spec.population
    ages = world.tables["ages"]
    n = 20_000
    birth, _, income, credit, _, _ = sample_consumers(
        np.arange(n),
        5,
        copula_cholesky(world),
        np.cumsum(ages["share"].to_numpy(float)),
        ages["age_from"].to_numpy(np.int64),
        ages["age_to"].to_numpy(np.int64),
        arrays.end_day,
        p.female_share,
        p.income_median,
        p.income_sigma,
        p.credit_score_mean,
        p.credit_score_sd,
        p.retirement_age_mean,
        p.retirement_age_sd,
        arrays.home_city_cum,
    )
    se = (1 - p.corr_income_credit**2) / np.sqrt(n)
    # Clipping scores to 300-850 and rounding move the correlation by well under 0.01.
    assert abs(np.corrcoef(np.log(income), credit)[0, 1] - p.corr_income_credit) < 4 * se + 0.01
    # Age is a monotone transform of its normal: Spearman's rho is (6/pi) asin(r/2).
    rho = stats.spearmanr(-birth, credit).statistic
    assert abs(rho - 6 / np.pi * np.arcsin(p.corr_age_credit / 2)) < 4 * se + 0.01
    assert abs(np.median(income) / p.income_median - 1) < 0.03
    shares = (
        np.histogram(
            (arrays.end_day - birth) / YEAR, bins=[*ages["age_from"], ages["age_to"].iloc[-1] + 1]
        )[0]
        / n
    )
    assert np.allclose(shares, ages["share"], atol=4 * np.sqrt(0.25 / n))


def test_travel_moves_purchases_away_from_home(tiny_frames):
    txns, merchants, consumers = (
        tiny_frames["transactions"],
        tiny_frames["merchants"],
        tiny_frames["consumers"],
    )
    assert set(txns["consumer_state"].unique()) == {"home", "getaway", "vacation", "business"}
    present = txns[(txns["channel"] != "online") & ~txns["is_fraud"] & (txns["amount"] > 0)]
    where = (
        merchants.set_index("merchant_id")
        .loc[present["merchant_id"], ["state", "country"]]
        .to_numpy()
    )
    home_state = consumers.set_index("consumer_id").loc[present["consumer_id"], "state"].to_numpy()
    away = (where[:, 0] != home_state) | (where[:, 1] != "US")
    on_trip = (present["consumer_state"] != "home").to_numpy()
    # Trips go at least 150 km away: most trip purchases are out of state, few home ones are.
    assert away[on_trip].mean() > 0.5
    assert away[~on_trip].mean() < 0.1
    assert (where[on_trip, 1] != "US").mean() > 0.01  # some trips are abroad


def _purchases_per_day(txns: pd.DataFrame) -> pd.Series:
    purchases = txns[(txns["amount"] > 0) & ~txns["is_fraud"]]
    days = purchases["timestamp"].dt.normalize().value_counts()
    return days.reindex(pd.date_range("2019-01-01", "2019-12-31"), fill_value=0)


def test_holidays_and_closed_days_scale_purchases(tmp_path):
    """Every type at closed_factor 0 buys nothing on the world's closed holidays; at
    holiday_factor 4, four times an ordinary day's count on its shopping days."""
    goods = _us_goods()
    goods["closed_factor"] = 0.0
    goods["holiday_factor"] = 4.0
    goods["recurring"] = False  # monthly bills are due whatever the day
    goods["season_profile"] = "flat"
    days = _purchases_per_day(_simulate_with_goods(tmp_path, goods))
    # The us calendar: Thanksgiving Day and Christmas Day close shops.
    closed = pd.to_datetime(["2019-11-28", "2019-12-25"])
    assert days[closed].tolist() == [0, 0]
    assert days.drop(closed).min() > 0
    # Black Friday against the other Fridays of November (the same weekday and month).
    fridays = days[(days.index.month == 11) & (days.index.day_of_week == 4)]
    others = fridays.drop(pd.Timestamp("2019-11-29"))
    ratio = fridays[pd.Timestamp("2019-11-29")] / others.mean()
    assert 3.0 < ratio < 5.0  # ~1,400 purchases against ~350: Poisson noise is a few percent


@pytest.mark.parametrize(("share", "unit"), [(1.0, 5.0), (0.5, 1.0)])
def test_round_sums_come_in_the_worlds_share_and_unit(tmp_path, share, unit):
    goods = _us_goods()
    goods["round_share"] = share
    goods["round_unit"] = unit
    txns = _simulate_with_goods(tmp_path, goods)
    purchases = txns[(txns["amount"] > 0) & ~txns["is_fraud"]]
    cents = np.round(purchases["amount"].to_numpy(np.float64) * 100).astype(np.int64)
    round_sum = cents % int(unit * 100) == 0
    if share == 1.0:
        assert round_sum.all()
        assert cents.min() >= 500
    else:
        # A round sum by the rule, or by chance (one cents value in a hundred; tickets under a
        # dollar cannot be whole, and are rare).
        expected = share + (1 - share) / 100
        assert round_sum.mean() == pytest.approx(expected, abs=4 * np.sqrt(0.25 / len(cents)))


def test_monthly_bills_are_due_on_one_day_to_one_provider_for_one_amount(tiny_frames):
    txns = tiny_frames["transactions"]
    goods = _us_goods()
    recurring = set(goods.loc[goods["recurring"], "type"])
    assert recurring >= {"utilities", "telecom", "insurance"}
    bills = txns[txns["category"].isin(recurring) & ~txns["is_fraud"]]
    assert (bills["channel"] == "online").all()
    assert (bills["amount"] > 0).all()  # no refunds of bills
    per_bill = bills.groupby(["consumer_id", "category"])
    # One a month, on the same day of the month, the same amount all year (2019).
    assert per_bill["timestamp"].apply(lambda t: t.dt.month.is_unique).all()
    assert (per_bill["timestamp"].apply(lambda t: t.dt.day.nunique()) == 1).all()
    assert (per_bill["amount"].nunique() == 1).all()
    assert per_bill.size().median() == 12  # every month of the year for most
    # To one provider, but after a move (a new home, new providers); few move in a year.
    assert (per_bill["merchant_id"].nunique() == 1).mean() > 0.9
    assert len(per_bill) > 500


def _world_with_a_june_halt(
    base, goods_factor: float, trip_factor: float, abroad_factor: float = 1.0
):
    """The tiny world with a shock over June 2019: every goods type's rate (but monthly
    bills'), every trip kind's and the odds of going abroad times the given factors."""
    goods = _us_goods()
    types = goods.loc[~goods["recurring"], "type"]  # monthly bills take no shocks
    targets = [*types, "getaway", "vacation", "business", "abroad"]
    factors = [goods_factor] * len(types) + [trip_factor] * 3 + [abroad_factor]
    shocks = pd.DataFrame(
        {"shock": "halt", "start": "2019-06-01", "end": "2019-06-30", "target": targets}
    ).assign(factor=factors)
    shocks.to_csv(base / "shocks.csv", index=False)
    (base / "world.toml").write_text(
        'extends = "tiny"\nname = "halt"\ndescription = ""\n[tables]\nshocks = "shocks.csv"\n'
    )
    return base / "world.toml"


def test_a_shock_scales_purchases_in_its_period_and_bills_go_on(tmp_path):
    simulate(_world_with_a_june_halt(tmp_path, 0.0, 1.0), tmp_path / "ledger", workers=1)
    txns = cardworld.read_transactions(tmp_path / "ledger")
    goods = _us_goods()
    bill = txns["category"].isin(goods.loc[goods["recurring"], "type"])
    month = txns["timestamp"].dt.month
    purchases = (txns["amount"] > 0) & ~txns["is_fraud"]
    counts = month[purchases & ~bill].value_counts()
    assert 6 not in counts.index  # nothing bought in June...
    assert counts[5] > 5000 and counts[7] > 5000  # ...around it, as ever
    assert (month[purchases & bill] == 6).sum() > 300  # monthly bills are due whatever happens


def _trips(world_path) -> pd.DataFrame:
    """Each trip's start and whether it goes abroad."""
    world = load_world(world_path)
    arrays, _, _ = _built(world)
    ids = np.arange(world.spec.simulation.consumers, dtype=np.int64)
    consumers, _ = sample_population(world, arrays, ids)
    first_day = np.full(len(ids), arrays.start_day, dtype=np.int64)
    segments = build_timeline(world, arrays, consumers, first_day)
    away = segments.state != HOME
    return pd.DataFrame(
        {
            "month": pd.to_datetime(segments.start[away], unit="D").month,
            "abroad": segments.city[away] >= arrays.n_us_cities,
        }
    )


def _trip_starts(world_path) -> pd.Series:
    return _trips(world_path)["month"].value_counts()


def test_a_shock_scales_trips_in_its_period(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    halted = _trip_starts(_world_with_a_june_halt(tmp_path / "a", 1.0, 0.0))
    as_ever = _trip_starts(_world_with_a_june_halt(tmp_path / "b", 1.0, 1.0))
    assert 6 not in halted.index
    assert as_ever[6] > 50  # ~300 consumers take several trips a year
    # Other months keep about as many trips (~60 a month; the draws differ, as a shocked
    # world thins its trips with one more draw each): over the ten months clear of June
    # (~600 trips; the difference of two such counts has a spread of about 35, so 15% is
    # about 2.5 of it).
    clear = [m for m in range(1, 13) if m not in (6, 7)]
    assert abs(halted[clear].sum() - as_ever[clear].sum()) < 0.15 * as_ever[clear].sum()


def test_a_shock_on_going_abroad_keeps_its_trips_at_home(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    home_only = _trips(_world_with_a_june_halt(tmp_path / "a", 1.0, 1.0, abroad_factor=0.0))
    as_ever = _trips(_world_with_a_june_halt(tmp_path / "b", 1.0, 1.0))
    june, other = home_only["month"] == 6, home_only["month"] != 6
    assert not home_only["abroad"][june].any()
    assert as_ever["abroad"][as_ever["month"] == 6].sum() >= 3  # ~300 consumers, ~8% abroad
    # The trips themselves go on, at home (the draws differ a little: a trip at home may
    # take more draws to find its city than one abroad).
    assert abs(june.sum() - (as_ever["month"] == 6).sum()) <= 0.1 * june.sum()
    abroad_before = as_ever["abroad"][as_ever["month"] != 6].sum()
    assert abs(home_only["abroad"][other].sum() - abroad_before) <= 0.25 * abroad_before


def test_christmas_day_is_quiet_in_the_shipped_world(tiny_frames):
    days = _purchases_per_day(tiny_frames["transactions"])
    december_wednesdays = days[(days.index.month == 12) & (days.index.day_of_week == 2)]
    christmas = december_wednesdays[pd.Timestamp("2019-12-25")]
    assert christmas < 0.75 * december_wednesdays.drop(pd.Timestamp("2019-12-25")).mean()
    black_friday = days[pd.Timestamp("2019-11-29")]
    assert black_friday > days[(days.index.month == 11) & (days.index.day_of_week == 4)].median()


def test_tiny_world_remote_share_is_the_federal_reserves(tiny_frames):
    # Remote payments were 28.7% of US card payments in 2019 (world.toml, online_share_2019);
    # 135k rows measure the share to a few tenths of a point, the types' mix to about 2 points.
    online = (tiny_frames["transactions"]["channel"] == "online").mean()
    assert 0.26 < online < 0.32


def test_tiny_world_volume_is_realistic(tiny_frames):
    txns = tiny_frames["transactions"]
    per_consumer_year = len(txns) / 300
    assert 300 < per_consumer_year < 700  # Fed Payments Study: ~450 card payments per adult-year
    assert dt.date(2019, 1, 1) <= txns["timestamp"].min().date()
