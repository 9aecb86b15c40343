"""The evaluation: figures that separate good synthetic data from bad, and the report files."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from cardworld.synthesizer.evaluate import evaluate_tables


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
    assert "hour_by_category.png" in (tmp_path / "index.html").read_text()
