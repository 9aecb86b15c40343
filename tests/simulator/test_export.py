"""Exports read back with pandas give the ledger's rows and values: TabFormer's CSV
conventions ("$" amounts, Yes/No, HH:MM, ONLINE) and the flat table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cardworld.errors import ConfigError, LedgerError
from cardworld.simulator.export import (
    FLAT_COLUMNS,
    TABFORMER_COLUMNS,
    _csv_field,
    _suffixed,
    export,
)


@pytest.fixture(scope="module")
def tabformer(tiny_ledger, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "card_transaction.csv"
    rows = export(tiny_ledger, out, format="tabformer")
    return out, rows, pd.read_csv(out, dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def flat(tiny_ledger, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "flat.csv"
    export(tiny_ledger, out, format="flat")
    return pd.read_csv(out, keep_default_na=False, na_values={"errors": [""]})


def test_tabformer_has_the_exact_schema_and_every_row(tabformer, tiny_frames):
    out, rows, csv = tabformer
    txns = tiny_frames["transactions"]
    assert out.read_text().splitlines()[0] == ",".join(TABFORMER_COLUMNS)
    assert list(csv.columns) == TABFORMER_COLUMNS
    assert rows == len(csv) == len(txns)


def test_tabformer_values_match_the_ledger(tabformer, tiny_frames):
    csv = tabformer[2]
    txns = tiny_frames["transactions"]
    consumers = tiny_frames["consumers"].sort_values("consumer_id").reset_index(drop=True)
    user = pd.Series(consumers.index, index=consumers["consumer_id"])
    cards = tiny_frames["cards"].sort_values(["consumer_id", "card_id"])
    card_index = cards.groupby("consumer_id").cumcount()
    card_index.index = cards["card_id"]
    ts = txns["timestamp"]

    assert (csv["User"].astype(int).to_numpy() == user.loc[txns["consumer_id"]].to_numpy()).all()
    assert (csv["Card"].astype(int).to_numpy() == card_index.loc[txns["card_id"]].to_numpy()).all()
    assert (csv["Year"].astype(int) == ts.dt.year).all()
    assert (csv["Month"].astype(int) == ts.dt.month).all()
    assert (csv["Day"].astype(int) == ts.dt.day).all()
    assert csv["Time"].str.fullmatch(r"\d\d:\d\d").all()
    assert (csv["Time"] == ts.dt.strftime("%H:%M")).all()
    # "$12.34", refunds "$-12.34", parsed back the way TabFormer's loader does.
    assert csv["Amount"].str.fullmatch(r"\$-?\d+\.\d\d").all()
    amount = csv["Amount"].str.replace("$", "", regex=False).astype(float)
    assert np.allclose(amount, txns["amount"], atol=1e-9)
    assert csv["Amount"].str.startswith("$-").sum() == (txns["amount"] < 0).sum() > 0
    chip = {
        "swipe": "Swipe Transaction",
        "chip": "Chip Transaction",
        "online": "Online Transaction",
    }
    assert (csv["Use Chip"] == txns["channel"].astype(str).map(chip)).all()
    assert (csv["Merchant Name"].astype(np.int64) == txns["merchant_id"]).all()
    assert (csv["MCC"].astype(int) == txns["mcc"]).all()
    errors = txns["errors"].astype(object)
    assert (csv["Errors?"] == np.where(errors.notna(), errors.fillna("") + ",", "")).all()
    assert (csv["Is Fraud?"] == np.where(txns["is_fraud"], "Yes", "No")).all()
    assert (csv["Is Fraud?"] == "Yes").sum() == txns["is_fraud"].sum() > 0


def test_tabformer_merchant_places(tabformer, tiny_frames):
    csv = tabformer[2]
    txns = tiny_frames["transactions"]
    merchants = tiny_frames["merchants"].set_index("merchant_id").loc[txns["merchant_id"]]
    online = (txns["channel"] == "online").to_numpy()
    assert (csv.loc[online, "Merchant City"] == "ONLINE").all()
    assert (csv.loc[online, ["Merchant State", "Zip"]] == "").all().all()
    domestic = ~online & (merchants["country"] == "US").to_numpy()
    assert (csv.loc[domestic, "Merchant City"].to_numpy() == merchants["city"][domestic]).all()
    assert (csv.loc[domestic, "Merchant State"].to_numpy() == merchants["state"][domestic]).all()
    # TabFormer's ZIP is a float: "2139.0" for 02139.
    zips = merchants["zip"][domestic].astype(int).astype(str) + ".0"
    assert (csv.loc[domestic, "Zip"].to_numpy() == zips.to_numpy()).all()
    abroad = ~online & ~domestic
    if abroad.any():  # TabFormer names the country in the state column, with no ZIP
        assert (csv.loc[abroad, "Zip"] == "").all()
        assert (csv.loc[abroad, "Merchant State"].str.len() > 2).all()


def test_export_streams_the_same_file_in_small_batches(tabformer, tiny_ledger, tmp_path):
    out = tmp_path / "small.csv"
    export(tiny_ledger, out, format="tabformer", batch_rows=10_007)
    assert out.read_bytes() == tabformer[0].read_bytes()


def test_flat_has_one_row_per_transaction_with_account_columns(flat, tiny_frames):
    txns = tiny_frames["transactions"]
    consumers = tiny_frames["consumers"].set_index("consumer_id").loc[txns["consumer_id"]]
    assert list(flat.columns) == FLAT_COLUMNS
    assert len(flat) == len(txns)
    assert (flat["account_id"] == txns["consumer_id"]).all()
    assert (flat["txn_id"] == txns["txn_id"]).all()
    names = (consumers["first_name"] + " " + consumers["last_name"]).to_numpy()
    assert (flat["cardholder_name"].to_numpy() == names).all()
    assert (flat["state"].to_numpy() == consumers["state"].to_numpy()).all()
    assert (flat["txn_index"] == txns.groupby("consumer_id").cumcount()).all()
    assert (pd.to_datetime(flat["timestamp"]) == txns["timestamp"]).all()
    assert (flat["category"] == txns["category"].astype(str)).all()
    merchants = tiny_frames["merchants"].set_index("merchant_id").loc[txns["merchant_id"]]
    assert (flat["merchant"].to_numpy() == merchants["name"].to_numpy()).all()
    # A state is a US state's; abroad it is empty and the country says where.
    country = merchants["country"].to_numpy(dtype=object)
    assert (flat["merchant_country"].fillna("").to_numpy() == pd.Series(country).fillna("")).all()
    abroad = pd.Series(country).fillna("US").ne("US").to_numpy()
    state = flat["merchant_state"].fillna("")  # the CSV's empty cells
    assert abroad.any() and (state[abroad] == "").all()
    home = ~abroad & (state != "").to_numpy()
    assert (flat["merchant_state"][home] == merchants["state"][home].to_numpy()).all()
    assert np.allclose(flat["amount"], txns["amount"], atol=1e-9)
    assert (flat["is_fraud"] == txns["is_fraud"]).all()
    assert flat["errors"].isna().sum() == txns["errors"].isna().sum()


def test_flat_parquet_and_gzip_read_back_equal(flat, tiny_ledger, tmp_path):
    export(tiny_ledger, tmp_path / "flat.parquet", format="flat", batch_rows=50_000)
    export(tiny_ledger, tmp_path / "flat.csv.gz", format="flat")
    parquet = pd.read_parquet(tmp_path / "flat.parquet")
    gz = pd.read_csv(tmp_path / "flat.csv.gz", keep_default_na=False, na_values={"errors": [""]})
    pd.testing.assert_frame_equal(gz, flat)
    assert list(parquet.columns) == FLAT_COLUMNS
    assert pq.read_schema(tmp_path / "flat.parquet").field("timestamp").type == pa.timestamp("us")
    assert (parquet["timestamp"] == pd.to_datetime(flat["timestamp"])).all()
    assert (parquet["txn_index"].to_numpy() == flat["txn_index"].to_numpy()).all()
    assert np.allclose(parquet["amount"], flat["amount"])


def test_export_rejects_bad_input(tiny_ledger, tmp_path):
    with pytest.raises(ConfigError, match="format must be one of tabformer, flat"):
        export(tiny_ledger, tmp_path / "x.csv", format="excel")
    with pytest.raises(ConfigError, match="only the flat format"):
        export(tiny_ledger, tmp_path / "x.parquet", format="tabformer")
    with pytest.raises(ConfigError, match="is a directory"):
        export(tiny_ledger, tmp_path, format="flat")
    with pytest.raises(LedgerError, match="not a cardworld ledger"):
        export(tmp_path, tmp_path / "x.csv")
    with pytest.raises(ConfigError, match=r"expected a \.csv, \.csv\.gz or"):
        export(tiny_ledger, tmp_path / "x.txt")
    with pytest.raises(ConfigError, match="lies inside the ledger"):
        export(tiny_ledger, Path(tiny_ledger) / "x.csv")
    kept = tmp_path / "kept.csv"
    kept.write_text("mine")
    with pytest.raises(
        ConfigError, match="already exists; choose another --out or pass --overwrite"
    ):
        export(tiny_ledger, kept)
    assert kept.read_text() == "mine"
    assert export(tiny_ledger, kept, overwrite=True) > 0
    assert not list(tmp_path.glob(".*.tmp"))


def test_export_command(tiny_ledger, tmp_path):
    import typer
    from typer.testing import CliRunner

    from cardworld.commands.report import export as export_command

    app = typer.Typer()
    app.command("export")(export_command)
    app.command("noop")(lambda: None)  # two commands, so `export` is a subcommand
    out = tmp_path / "tf.csv"
    result = CliRunner().invoke(
        app, ["export", str(tiny_ledger), "--format", "tabformer", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "exported" in result.output and out.read_text().startswith("User,Card,Year")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.none() | st.text(alphabet=st.sampled_from('ab ,"\n\r$-.')), max_size=20))
def test_csv_fields_are_quoted_as_pandas_quotes_them(values):
    # The TabFormer export writes its CSV from Arrow; the bytes must stay those of to_csv.
    fields = _suffixed(_csv_field(np.array(values, dtype=object)), ",1\n").to_pylist()
    expected = pd.DataFrame({"a": values, "b": 1}).to_csv(
        index=False, header=False, lineterminator="\n"
    )
    assert "".join(fields) == expected
