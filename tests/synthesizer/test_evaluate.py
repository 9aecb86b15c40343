"""The evaluation: figures that separate good synthetic data from bad, and the report files."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from cardworld.synthesizer.evaluate import evaluate_tables
from cardworld.synthesizer.evaluate.detection import _whole_groups, discriminator
from cardworld.synthesizer.evaluate.metrics import (
    _sorted,
    column_distance,
    find_roles,
    prepare,
    privacy_score,
)


def _shuffled(table: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """The same rows with categories shuffled across the table: marginals kept, order lost."""
    rng = np.random.default_rng(seed)
    out = table.copy()
    out["merchant_cat"] = rng.permutation(out["merchant_cat"].to_numpy())
    return out


def test_figures_of_a_copy_and_of_a_scrambled_table(table: pd.DataFrame) -> None:
    copy = evaluate_tables(table, table, group_by="acct_id", order_by="txn_index")
    assert copy["privacy"]["exact_row_overlap"] == 1.0
    assert copy["privacy"]["dcr_synthetic"]["max"] == 0.0
    assert copy["quality_score"] == 10.0
    assert copy["roles"]["category"] == "merchant_cat"
    assert copy["roles"]["amount"] == "txn_amount"
    assert copy["roles"]["pii"] == ["cardholder"]

    bad = evaluate_tables(table, _shuffled(table), group_by="acct_id", order_by="txn_index")
    assert bad["category_mix"]["tvd"] < 1e-9  # same marginal mix
    assert bad["category_transitions"]["tvd"] > 0.2  # A -> B is gone
    assert bad["hour_by_category"]["tvd"] > 0.3
    assert bad["amount"]["median_by_category"]["mean_relative_error"] > 0.5
    assert bad["quality_score"] < copy["quality_score"]


def test_holdout_and_report_files(table: pd.DataFrame, sampled: pd.DataFrame, tmp_path) -> None:
    keys = table["acct_id"].unique()
    train, hold = table[table["acct_id"].isin(keys[:45])], table[table["acct_id"].isin(keys[45:])]
    figures = evaluate_tables(train, sampled, holdout=hold, out=tmp_path)  # group column guessed
    p = figures["privacy"]
    assert p["identifier_overlap"] == {"acct_id": 0.0, "cardholder": 0.0}
    assert 0.0 <= p["exact_row_overlap"] < 0.05
    assert "dcr_holdout" in p and 0.0 <= p["dcr_share_below_holdout_p5"] <= 1.0
    assert 0 <= figures["quality_score"] <= 10 and 0 <= p["privacy_score"] <= 10
    names = {f.name for f in tmp_path.iterdir()}
    assert {
        "figures.json",
        "index.html",
        "columns.png",
        "category_mix.png",
        "amount.png",
        "median_by_category.png",
        "events_per_group.png",
        "gaps_hours.png",
        "hour_by_category.png",
        "dcr.png",
    } <= names
    assert json.loads((tmp_path / "figures.json").read_text())["rows"]["synthetic"] == len(sampled)
    page = (tmp_path / "index.html").read_text()
    assert "hour_by_category.png" in page
    assert f"<td>{figures['discriminator']['auc']}</td>" in page


def test_copied_rare_static_values_are_counted_against_chance(table: pd.DataFrame) -> None:
    # Each account's own static value (a birth date), copied onto the synthetic accounts:
    # every row differs from the training rows, but each group points at a real account.
    keys = table["acct_id"].unique()
    birth = {key: f"19{50 + i % 40}-0{1 + i % 9}-1{i % 10}" for i, key in enumerate(keys)}
    real = table.assign(birth=table["acct_id"].map(birth))
    train, hold = real[real["acct_id"].isin(keys[:45])], real[real["acct_id"].isin(keys[45:])]
    leaky = train.assign(acct_id="S" + train["acct_id"], txn_amount=train["txn_amount"] + 0.01)
    common = leaky.assign(birth="1970-01-01")  # one value for all: no one in particular
    kwargs = dict(group_by="acct_id", order_by="txn_index")
    leaked = evaluate_tables(train, leaky, holdout=hold, **kwargs)["privacy"]
    assert leaked["rare_value_copies"]["birth"] == 1.0
    assert leaked["rare_value_copies_holdout"]["birth"] == 0.0  # unseen people's dates
    assert leaked["rare_value_copies"]["state"] == 0.0  # three states, each many groups'
    clean = evaluate_tables(train, common, holdout=hold, **kwargs)["privacy"]
    assert clean["rare_value_copies"]["birth"] == 0.0
    # The score loses what exceeds chance: 0.6 of groups against 0.1 by chance halves it.
    figures = {"exact_row_overlap": 0.0, "identifier_overlap": {}}
    copies = {"rare_value_copies": {"birth": 0.6}, "rare_value_copies_holdout": {"birth": 0.1}}
    assert privacy_score(figures) == 10.0 and privacy_score({**figures, **copies}) == 5.0


def test_discriminator_tells_changed_tables_apart_and_names_the_change(make_table) -> None:
    # Another sample of the same generator (other accounts) cannot be told apart; amounts
    # scaled by 1.3, or a day added to each gap, can, and the AUC names the changed feature.
    real, fresh = make_table(200, seed=0), make_table(200, seed=1)
    roles = find_roles(real, "acct_id", "txn_index")
    real, fresh = _sorted(prepare(real), roles), _sorted(prepare(fresh), roles)
    same = discriminator(real, fresh, roles)
    assert 0.4 < same["auc"] < 0.6
    assert same["rows"] == {"real": len(real), "synthetic": len(fresh)} and same["folds"] == 5

    richer = discriminator(real, fresh.assign(txn_amount=fresh["txn_amount"] * 1.3), roles)
    assert richer["auc"] > 0.9 and next(iter(richer["top_features"])) == "txn_amount"

    later = fresh["timestamp"] + pd.to_timedelta(fresh.groupby("acct_id").cumcount(), unit="D")
    slower = discriminator(real, fresh.assign(timestamp=later), roles)
    assert slower["auc"] > 0.8 and next(iter(slower["top_features"])) == "hours since previous"

    # A row-for-row copy under other keys: each real row's copy, trained on as synthetic
    # in another fold, makes it look synthetic: far below 0.5 flags copying.
    copied = real.assign(acct_id="COPY-" + real["acct_id"])
    assert discriminator(real, copied, roles)["auc"] < 0.2

    assert discriminator(real, fresh, roles) == same  # seeded and single-threaded
    zoned = [
        t.assign(timestamp=t["timestamp"].dt.tz_localize("America/Chicago")) for t in (real, fresh)
    ]
    assert discriminator(*zoned, roles) == same  # features read the wall clock


def test_discriminator_reads_whole_groups_and_needs_two_of_them(table: pd.DataFrame) -> None:
    roles = find_roles(table, "acct_id", "txn_index")
    table = _sorted(prepare(table), roles)
    sizes = table.groupby("acct_id").size()
    kept = _whole_groups(table, "acct_id", 100, np.random.default_rng(0))
    kept_sizes = kept.groupby("acct_id").size()
    assert (kept_sizes == sizes[kept_sizes.index]).all()  # every group it reads, whole
    assert len(kept) <= 100 < len(kept) + sizes.max()  # stopped at a group that did not fit
    assert discriminator(table, table, roles, max_rows=100)["rows"]["real"] == len(kept)

    one = table[table["acct_id"] == table["acct_id"].iloc[0]]
    assert discriminator(table, one, roles) == {
        "auc": None,
        "reason": f"needs two groups in each table, has {(sizes.size, 1)}",
    }


def _with_codes_and_errors(table: pd.DataFrame) -> pd.DataFrame:
    """The table with a city and a ZIP on every row, an error on 2% of rows and 40 MCCs."""
    rng = np.random.default_rng(0)
    n = len(table)
    return table.assign(
        city=rng.choice(["Austin", "Boston", "Chicago"], n),
        zip=rng.choice([78701, 2108, 60601], n),
        errors=np.where(rng.random(n) < 0.02, "Bad PIN", None),
        mcc=rng.choice(np.arange(5000, 5280, 7), n),
    )


def test_missing_values_count_in_the_column_scores(table: pd.DataFrame) -> None:
    real = _with_codes_and_errors(table)
    rng = np.random.default_rng(1)
    n = len(real)
    kwargs = dict(group_by="acct_id", order_by="txn_index")
    copy = evaluate_tables(real, real, **kwargs)
    assert copy["quality_score"] == 10.0  # the same nulls in both tables cost nothing
    assert copy["privacy"]["exact_row_overlap"] == 1.0  # a row with a null is still copied
    assert copy["privacy"]["dcr_synthetic"]["max"] == 0.0  # a null matches a null
    assert copy["columns"]["errors"]["null_share"]["real"] > 0.9

    # City and ZIP never set, errors on most rows (a ZIP read back from a CSV as floats).
    errors = np.where(rng.random(n) < 0.61, "Bad PIN", None)
    synth = real.assign(city=None, zip=np.nan, errors=errors, timestamp=pd.NaT)
    figures = evaluate_tables(real, synth, **kwargs)
    columns = figures["columns"]
    assert columns["city"] == {
        "kind": "categorical",
        "tvd": 1.0,
        "null_share": {"real": 0.0, "synthetic": 1.0},
        "quality": 0.0,
    }
    assert columns["zip"]["kind"] == "categorical" and columns["zip"]["quality"] == 0.0
    assert columns["timestamp"]["kind"] == "datetime" and columns["timestamp"]["quality"] == 0.0
    # One error message: only the null share differs, and it is all of the distance.
    shares = columns["errors"]["null_share"]
    assert abs(columns["errors"]["tvd"] - abs(shares["real"] - shares["synthetic"])) < 1e-3
    assert columns["errors"]["quality"] < 0.45
    assert figures["quality_score"] < copy["quality_score"] - 1


def test_numbers_compare_their_null_shares_and_values() -> None:
    rng = np.random.default_rng(0)
    amounts = pd.Series(rng.lognormal(3, 1, 1000))
    nothing = pd.Series(np.full(1000, np.nan))
    assert column_distance(amounts, nothing, "numeric")["quality"] == 0.0
    assert column_distance(nothing, nothing, "numeric")["quality"] == 1.0
    # The same values, half of them missing: the values agree, the column does not.
    halved = amounts.where(rng.random(1000) < 0.5)
    half = column_distance(amounts, halved, "numeric")
    assert half["ks"] < 0.1 and half["quality"] < 0.6
    assert half["null_share"]["real"] == 0.0 and 0.4 < half["null_share"]["synthetic"] < 0.6
    # Without missing values the distance is the KS of the values; with the same null
    # share, the KS weighted by the share of rows with values.
    doubled = column_distance(amounts, amounts * 2, "numeric")
    assert doubled["quality"] == 1 - doubled["ks"]
    both = column_distance(
        amounts.where(amounts.index < 500), (amounts * 2).where(amounts.index < 500), "numeric"
    )
    assert abs((1 - both["quality"]) - 0.5 * both["ks"]) < 1e-12
    times = pd.Series(pd.date_range("2025-01-01", periods=1000, freq="h"))
    assert column_distance(times, pd.Series([pd.NaT] * 1000), "datetime")["quality"] == 0.0
    # pandas 2 read None and NaN as the texts "None" and "nan", pandas 3 drops both: a null
    # is one category however it is spelled.
    cities = pd.Series(["Austin", None, "Boston", np.nan])
    spelled = pd.Series(["Austin", np.nan, "Boston", None], dtype=object)
    assert column_distance(cities, spelled, "categorical")["quality"] == 1.0
    assert column_distance(cities, cities.fillna("Austin"), "categorical")["tvd"] == 0.5


def test_integer_codes_are_compared_as_categories(table: pd.DataFrame) -> None:
    real = _with_codes_and_errors(table)
    assert real["mcc"].nunique() > 32  # too many values to pass for categories by count
    roles = find_roles(real, "acct_id", "txn_index")
    assert roles.schema.column("mcc").kind == "categorical"  # the synthesizer's view
    kwargs = dict(group_by="acct_id", order_by="txn_index")
    # Every code one off: as numbers nearly the same distribution, as MCCs none in common.
    shifted = evaluate_tables(real, real.assign(mcc=real["mcc"] + 1), **kwargs)["columns"]
    assert shifted["mcc"]["kind"] == "categorical" and shifted["mcc"]["quality"] == 0.0
    assert column_distance(real["mcc"], real["mcc"] + 1, "numeric")["quality"] > 0.9
    # A code read back as a float (its column had a missing value) is the same code.
    floats = real["mcc"].astype(float).where(real.index > 0)
    same = column_distance(real["mcc"], floats, "categorical")
    assert same["null_share"]["synthetic"] > 0 and same["quality"] > 0.99


def _accounts(events: np.ndarray, days: np.ndarray) -> pd.DataFrame:
    """One account per entry: that many events spread evenly over that many days."""
    rows = []
    for a, (n, span) in enumerate(zip(events, days, strict=True)):
        stamps = pd.Timestamp("2024-01-01") + pd.to_timedelta(np.linspace(0, span, n), unit="D")
        for i, stamp in enumerate(stamps):
            rows.append((f"A{a}", i, stamp, 10.0 + i % 7))
    return pd.DataFrame(rows, columns=["acct_id", "txn_index", "timestamp", "txn_amount"])


def test_group_spans_and_how_they_go_with_the_number_of_events() -> None:
    rng = np.random.default_rng(3)
    events = rng.integers(20, 200, 60)
    # Real: every account spans about 90 days, whatever its events; synthetic: the same
    # events at one a day, so the span grows with them.
    real = _accounts(events, rng.uniform(85, 95, 60))
    synth = _accounts(events, events.astype(float))
    same = evaluate_tables(real, real, group_by="acct_id", order_by="txn_index")["group_span"]
    assert same["ks"] == 0.0
    assert same["events_correlation"]["real"] == same["events_correlation"]["synthetic"]
    span = evaluate_tables(real, synth, group_by="acct_id", order_by="txn_index")["group_span"]
    assert span["ks"] > 0.5
    assert abs(span["events_correlation"]["real"]) < 0.3
    assert span["events_correlation"]["synthetic"] == 1.0
    assert 85 <= span["real"]["median"] <= 95
