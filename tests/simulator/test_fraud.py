"""The fraud world: compromises, fraudsters, detection and drift, checked on fraud-heavy worlds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import cardworld
from cardworld.simulator.run import simulate

YEAR = 365.2425


def _world(tmp_path, name: str, body: str) -> str:
    path = tmp_path / f"{name}.toml"
    path.write_text(f'extends = "tiny"\nname = "{name}"\ndescription = "a test world"\n{body}')
    return str(path)


def _frames(out):
    return {
        name: cardworld.read_table(out, name).to_pandas()
        for name in ("cards", "compromises", "fraudsters")
    } | {"transactions": cardworld.read_transactions(out)}


@pytest.fixture(scope="module")
def heavy(tmp_path_factory):
    """Ten times the us world's fraud, 150 consumers over 2012-2019 (chip arrives mid-way)."""
    tmp = tmp_path_factory.mktemp("heavy")
    world = _world(
        tmp,
        "heavy",
        "[simulation]\nconsumers = 150\nstart = 2012-01-01\nend = 2019-12-31\n"
        "[fraud.random]\nepisodes_per_year = 0.2\n"
        "[fraud.compromise]\nbreaches_per_year = 8.0\nbreach_card_probability = 0.4\n"
        "skim_merchant_share_per_quarter = 0.01\nphishing_per_card_year = 0.15\nlost_stolen_per_card_year = 0.06\n",
    )
    simulate(world, tmp / "ledger", workers=2)
    return _frames(tmp / "ledger")


def _fraudster_rows(frames):
    txns = frames["transactions"]
    return txns[txns["fraud_mechanism"] == "fraudster"]


def test_every_method_and_compromise_kind_occurs(heavy):
    rows = _fraudster_rows(heavy)
    assert set(rows["fraud_method"].astype(str)) == {
        "card_testing",
        "cnp_burst",
        "counterfeit",
        "high_value",
        "lost_stolen",
    }
    assert set(heavy["compromises"]["kind"].astype(str)) == {
        "breach",
        "skimming",
        "phishing",
        "lost_stolen",
    }
    assert rows["fraudster_id"].notna().all() and rows["compromise_id"].notna().all()


def test_fraud_rows_are_on_a_compromised_card_after_its_compromise(heavy):
    rows = _fraudster_rows(heavy)
    comps = heavy["compromises"].set_index("compromise_id")
    linked = comps.loc[rows["compromise_id"]]
    assert (linked["card_id"].to_numpy() == rows["card_id"].to_numpy()).all()
    assert (linked["fraudster_id"].to_numpy() == rows["fraudster_id"].to_numpy()).all()
    assert (rows["timestamp"].to_numpy() >= linked["compromised_at"].to_numpy()).all()


def test_breach_cards_show_fraud_only_after_the_breach_date(heavy):
    rows = _fraudster_rows(heavy)
    comps = heavy["compromises"].set_index("compromise_id")
    breach = comps.loc[rows["compromise_id"], "breach_date"]
    from_breach = breach.notna().to_numpy()
    assert from_breach.sum() > 0
    assert (
        rows["timestamp"].dt.date.to_numpy()[from_breach] >= breach.to_numpy()[from_breach]
    ).all()


def test_no_approved_transaction_on_a_blocked_card(heavy):
    txns, cards = heavy["transactions"], heavy["cards"].set_index("card_id")
    blocked_at = cards.loc[txns["card_id"], "blocked_at"].to_numpy()
    after = ~pd.isna(blocked_at) & (txns["timestamp"].to_numpy() >= blocked_at)
    assert after.sum() > 0  # attempts on blocked cards happen...
    assert txns.loc[after, "errors"].eq("Card Blocked").all()  # ...and all decline


def test_a_blocked_card_is_replaced_and_the_consumer_carries_on(heavy):
    cards, txns = heavy["cards"], heavy["transactions"]
    blocked = cards[cards["blocked_at"].notna()]
    replacements = cards[cards["replaces"].notna()].set_index("replaces")
    assert len(blocked) > 10
    assert set(blocked["card_id"]) == set(replacements.index)
    new = replacements.loc[blocked["card_id"]]
    assert (new["consumer_id"].to_numpy() == blocked["consumer_id"].to_numpy()).all()
    assert (pd.to_datetime(new["opened"]).to_numpy() > blocked["blocked_at"].to_numpy()).all()
    used = txns[txns["card_id"].isin(new["card_id"]) & txns["errors"].isna()]
    assert used["card_id"].nunique() > 0.5 * len(new)


def test_fraudsters_act_only_inside_their_active_windows_and_work_days(heavy):
    rows = _fraudster_rows(heavy)
    people = heavy["fraudsters"].set_index("fraudster_id")
    who = people.loc[rows["fraudster_id"]]
    day = rows["timestamp"].dt.normalize().to_numpy()
    assert (day >= pd.to_datetime(who["active_from"]).to_numpy()).all()
    assert (day < pd.to_datetime(who["active_to"]).to_numpy()).all()
    paused = who["pause_from"].notna().to_numpy()
    in_pause = (
        paused
        & (day >= pd.to_datetime(who["pause_from"]).to_numpy())
        & (day < pd.to_datetime(who["pause_to"]).to_numpy())
    )
    assert not in_pause.any()
    scheduled = (rows["fraud_method"] != "lost_stolen").to_numpy()
    weekday = np.array(["mon", "tue", "wed", "thu", "fri", "sat", "sun"])[
        rows["timestamp"].dt.day_of_week
    ]
    on_work_day = np.array([d in days for d, days in zip(weekday, who["work_days"], strict=True)])
    assert on_work_day[scheduled].all()


def test_chip_moves_fraud_from_card_present_to_card_not_present(heavy):
    rows = _fraudster_rows(heavy)
    assert not (rows.loc[rows["fraud_method"] == "counterfeit", "channel"] == "chip").any()
    year = rows["timestamp"].dt.year
    card_present = rows["channel"] != "online"
    before, after = card_present[year <= 2013].mean(), card_present[year >= 2017].mean()
    n_before, n_after = (year <= 2013).sum(), (year >= 2017).sum()
    se = np.sqrt(before * (1 - before) / n_before + after * (1 - after) / n_after)
    assert before - after > 3 * se, (before, after)


def test_fraud_attempts_fail_more_often_than_purchases(heavy):
    # Attempt errors (PIN, CVV, expiry, glitches...): a blocked card and a purchase beyond
    # the money on the card are other mechanisms, the second one legitimate spending's own.
    txns = heavy["transactions"]
    other = txns["errors"].isin(["Card Blocked", "Insufficient Balance"])
    fraud = txns[txns["is_fraud"] & ~other]
    legit = txns[~txns["is_fraud"] & ~other]
    assert fraud["errors"].notna().mean() > 2 * legit["errors"].notna().mean()


@pytest.fixture(scope="module")
def undetected(tmp_path_factory):
    """Fraud that is never detected, so every hazard runs its full course."""
    tmp = tmp_path_factory.mktemp("undetected")
    no_detection = "".join(
        f"[fraud.methods.{m}]\ndetect_probability = 0.0\n"
        for m in ("card_testing", "cnp_burst", "counterfeit", "high_value", "lost_stolen")
    )
    world = _world(
        tmp,
        "undetected",
        "[simulation]\nconsumers = 300\n[fraud]\nconsumer_notices_probability = 0.0\n"
        "[fraud.random]\nepisodes_per_year = 1.0\nburst_mean = 3.0\n"
        "[fraud.compromise]\nlost_stolen_per_card_year = 0.2\n" + no_detection,
    )
    simulate(world, tmp / "ledger", workers=2)
    return _frames(tmp / "ledger"), cardworld.load_world(world).spec


def test_fraud_rates_match_the_world_parameters(undetected):
    frames, spec = undetected
    txns, cards = frames["transactions"], frames["cards"]
    start, end = (
        pd.Timestamp(spec.simulation.start),
        pd.Timestamp(spec.simulation.end) + pd.Timedelta(days=1),
    )
    opened = pd.to_datetime(cards["opened"]).clip(lower=start)
    card_years = ((end - opened).dt.days / YEAR).clip(lower=0)
    consumer_years = ((end - opened.groupby(cards["consumer_id"]).min()).dt.days / YEAR).clip(
        lower=0
    )

    # Random fraud: compound Poisson, episodes * (1 + Poisson(m - 1)) rows.
    rate, m = spec.fraud.random.episodes_per_year, spec.fraud.random.burst_mean
    expected = rate * consumer_years.sum() * m
    variance = rate * consumer_years.sum() * ((m - 1) + m**2)
    observed = (txns["fraud_mechanism"] == "random").sum()
    assert abs(observed - expected) < 4 * np.sqrt(variance), (observed, expected)

    # Lost or stolen cards: a Poisson hazard per card-year.
    expected = spec.fraud.compromise.lost_stolen_per_card_year * card_years.sum()
    observed = (frames["compromises"]["kind"] == "lost_stolen").sum()
    assert abs(observed - expected) < 4 * np.sqrt(expected), (observed, expected)


def test_long_run_drift(tmp_path):
    """Online grows, chip arrives in the mid 2010s, retirees spend differently."""
    out = tmp_path / "long"
    simulate(
        "us",
        out,
        consumers=60,
        start=pd.Timestamp("1995-01-01").date(),
        end=pd.Timestamp("2020-12-31").date(),
        workers=2,
    )
    txns = cardworld.read_transactions(
        out, columns=["timestamp", "channel", "consumer_id", "category", "amount"]
    )
    year = txns["timestamp"].dt.year
    online = (txns["channel"] == "online").groupby(year).mean()
    chip = (txns["channel"] == "chip").groupby(year).mean()
    # Bills and mail orders are card-not-present from the start; e-commerce adds about 3-4
    # points by 2020. ~30,000 rows a period give a binomial standard error of 0.002 on each
    # share, more with 60 consumers' own habits: 1.5 points is a safe floor for the growth.
    assert online.loc[2018:2020].mean() - online.loc[1995:1997].mean() > 0.015
    assert chip.loc[:2011].max() == 0 and chip.loc[2019] > 0.4

    # Retirement: the us world's retired_factor raises health spending (doctors x1.8,
    # drugstores x1.4, ...) and cuts commuting (parking x0.5, transit x0.5); compare each
    # retiree's mix before and after the day they retire.
    goods = cardworld.load_world("us").tables["goods"].set_index("type")
    health = set(goods.index[goods["category"] == "Health"])
    retire = (
        cardworld.read_table(out, "consumers")
        .to_pandas()
        .set_index("consumer_id")["retirement_date"]
    )
    txns = txns[txns["amount"] > 0]
    after = txns["timestamp"].dt.date.to_numpy() >= retire.loc[txns["consumer_id"]].to_numpy()
    is_health = txns["category"].astype(str).isin(health)
    shares = (
        pd.DataFrame({"consumer": txns["consumer_id"], "after": after, "health": is_health})
        .groupby(["consumer", "after"])["health"]
        .agg(["mean", "size"])
        .unstack()
    )
    both = shares[(shares["size"] > 300).all(axis=1)]  # retirees with enough rows on each side
    assert len(both) >= 5
    ratio = both[("mean", True)] / both[("mean", False)]
    assert (ratio > 1).mean() >= 0.8 and ratio.median() > 1.15, ratio.describe()


def test_insufficient_balance_follows_the_money_on_the_card(tiny_frames):
    """Declines for funds come from balances: big tickets on small prepaid cards fail far more."""
    txns, cards = tiny_frames["transactions"], tiny_frames["cards"].set_index("card_id")
    rows = txns[(txns["amount"] > 0) & ~txns["is_fraud"]]
    kind = cards.loc[rows["card_id"], "kind"].astype(str).to_numpy()
    share = (rows["amount"] / cards.loc[rows["card_id"], "credit_limit"].to_numpy()).to_numpy()
    declined = (rows["errors"] == "Insufficient Balance").to_numpy()
    prepaid = kind == "prepaid"
    big, small = prepaid & (share > 0.5), prepaid & (share < 0.1)
    assert big.sum() > 50 and small.sum() > 500
    # A flat per-attempt probability would give both groups the same rate.
    assert declined[big].mean() > 5 * declined[small].mean() + 0.05, (
        declined[big].mean(),
        declined[small].mean(),
    )
