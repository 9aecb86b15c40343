"""The CLI command functions: synth fit/sample and evaluate, through typer."""

from __future__ import annotations

import datetime
import shutil
import sys

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from cardworld.commands.evaluate import evaluate
from cardworld.commands.synth import synth_app
from cardworld.errors import ConfigError, DataError

runner = CliRunner()


def test_fit_sample_evaluate(table: pd.DataFrame, tmp_path) -> None:
    data = tmp_path / "tx.csv"
    table.to_csv(data, index=False)
    model = tmp_path / "model"
    r = runner.invoke(
        synth_app,
        [
            "fit",
            str(data),
            "--group-by",
            "acct_id",
            "--order-by",
            "txn_index",
            "--out",
            str(model),
            "--epochs",
            "2",
            "--layers",
            "1",
            "--width",
            "32",
            "--device",
            "cpu",
        ],
    )
    assert r.exit_code == 0, r.output
    assert (model / "model.safetensors").is_file()
    out = tmp_path / "synth.parquet"
    r = runner.invoke(
        synth_app, ["sample", str(model), "--groups", "5", "--out", str(out), "--seed", "3"]
    )
    assert r.exit_code == 0, r.output
    df = pd.read_parquet(out)
    assert df["acct_id"].nunique() == 5
    assert pd.api.types.is_datetime64_any_dtype(df["timestamp"])  # CSV dates were parsed

    app = typer.Typer()
    app.command()(evaluate)
    report = tmp_path / "report"
    r = runner.invoke(app, [str(data), str(out), "--out", str(report)])
    assert r.exit_code == 0, r.output
    assert "quality" in r.output and (report / "index.html").is_file()


def test_errors_are_cardworld_errors(table: pd.DataFrame, tmp_path) -> None:
    data = tmp_path / "tx.csv"
    table.to_csv(data, index=False)
    r = runner.invoke(synth_app, ["fit", str(data), "--out", str(tmp_path / "m")])
    assert isinstance(r.exception, ConfigError) and "--group-by is required" in str(r.exception)
    r = runner.invoke(
        synth_app,
        ["fit", str(tmp_path / "tx.txt"), "--group-by", "acct_id", "--out", str(tmp_path / "m")],
    )
    assert isinstance(r.exception, DataError) and "does not exist" in str(r.exception)
    r = runner.invoke(
        synth_app,
        [
            "fit",
            str(data),
            "--group-by",
            "acct_id",
            "--role",
            "state",
            "--out",
            str(tmp_path / "m"),
        ],
    )
    assert isinstance(r.exception, ConfigError) and "COLUMN=ROLE" in str(r.exception)
    r = runner.invoke(
        synth_app, ["sample", str(tmp_path), "--groups", "2", "--out", str(tmp_path / "x.csv")]
    )
    assert isinstance(r.exception, ConfigError) and "not a synthesizer directory" in str(
        r.exception
    )


def test_a_malformed_csv_is_one_error_naming_the_file(table: pd.DataFrame, tmp_path) -> None:
    broken = tmp_path / "broken.csv"
    broken.write_text('acct_id,amount\n1,2\n"unterminated\n')
    cut = tmp_path / "cut.csv"
    text = table.to_csv(index=False)
    cut.write_text(text[: text.rindex(":") + 1])  # the last line cut off in its time
    real = tmp_path / "real.csv"
    table.to_csv(real, index=False)
    app = typer.Typer()
    app.command()(evaluate)
    for bad, reason in ((broken, "cannot be read"), (cut, "column 'timestamp': looks like")):
        r = runner.invoke(app, [str(real), str(bad), "--out", str(tmp_path / "report")])
        assert isinstance(r.exception, DataError), r.output
        assert str(r.exception).startswith(f"input {bad}") and reason in str(r.exception)
        fit = ["fit", str(bad), "--group-by", "acct_id", "--out", str(tmp_path / "m")]
        r = runner.invoke(synth_app, fit)
        assert isinstance(r.exception, DataError) and str(bad) in str(r.exception)
    assert not (tmp_path / "report").exists() and not (tmp_path / "m").exists()


def test_fit_reads_a_ledger_directory(table: pd.DataFrame, tmp_path) -> None:
    # A ledger: transactions/ grouped by consumer_id, ordered by timestamp, plus consumers.
    ledger = tmp_path / "ledger"
    (ledger / "transactions").mkdir(parents=True)
    ids = {k: i for i, k in enumerate(table["acct_id"].unique())}
    tx = pd.DataFrame(
        {
            "txn_id": range(len(table)),
            "timestamp": table["timestamp"],
            "consumer_id": table["acct_id"].map(ids).astype("int64"),
            "category": table["merchant_cat"],
            "amount": table["txn_amount"],
        }
    )
    tx.to_parquet(ledger / "transactions" / "part-00000.parquet")
    consumers = table.groupby("acct_id", sort=False).first().reset_index()
    pd.DataFrame(
        {
            "consumer_id": consumers["acct_id"].map(ids),
            "name": consumers["cardholder"],
            "state": consumers["state"],
        }
    ).to_parquet(ledger / "consumers.parquet")
    model = tmp_path / "model"
    r = runner.invoke(
        synth_app,
        [
            "fit",
            str(ledger),
            "--out",
            str(model),
            "--epochs",
            "1",
            "--layers",
            "1",
            "--width",
            "32",
            "--device",
            "cpu",
        ],
    )
    assert r.exit_code == 0, r.output
    from cardworld.synthesizer import Synthesizer

    roles = {c.name: c.role for c in Synthesizer.load(model).schema.columns}
    assert roles == {
        "txn_id": "id",
        "timestamp": "event",
        "consumer_id": "group",
        "category": "event",
        "amount": "event",
        "name": "pii",
        "state": "static",
    }


FIT_TINY = ["--epochs", "1", "--layers", "1", "--width", "16", "--device", "cpu"]


def test_fit_save_load_sample_a_simulated_ledger(tmp_path) -> None:
    # A real ledger, whose consumers table holds datetime.date birth and retirement dates.
    import cardworld

    ledger = tmp_path / "ledger"
    cardworld.simulate(
        "tiny", ledger, consumers=12, start="2019-01-01", end="2019-01-31", workers=1
    )
    model = tmp_path / "model"
    r = runner.invoke(synth_app, ["fit", str(ledger), "--out", str(model), *FIT_TINY])
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ledger", "model"]  # no staging left
    out = tmp_path / "synth.parquet"
    r = runner.invoke(synth_app, ["sample", str(model), "--groups", "4", "--out", str(out)])
    assert r.exit_code == 0, r.output
    df = pd.read_parquet(out)
    assert df["consumer_id"].nunique() == 4
    births = df["birth_date"].dropna()
    assert len(births) and all(type(v) is datetime.date for v in births)
    from cardworld.synthesizer import Synthesizer

    # Learned as dates (a per-group value binned by at least 5 consumers), not as categories
    # that would keep and sample a consumer's exact birth date.
    stats = Synthesizer.load(model).codec.stats["birth_date"]
    assert stats["kind"] == "datetime" and stats["dates"]
    real = set(cardworld.read_table(ledger, "consumers").column("birth_date").to_pylist())
    assert not real & set(births)


def test_synth_without_torch_is_one_clear_error(tmp_path, monkeypatch) -> None:
    import cardworld.synthesizer

    # As after `pip install .` without the synth extra: torch cannot be imported.
    monkeypatch.setitem(sys.modules, "torch", None)
    monkeypatch.delitem(sys.modules, "cardworld.synthesizer.synthesizer", raising=False)
    monkeypatch.delattr(cardworld.synthesizer, "synthesizer", raising=False)
    for args in (
        ["fit", str(tmp_path), "--out", str(tmp_path / "m")],
        ["sample", str(tmp_path), "--groups", "2", "--out", str(tmp_path / "s.csv")],
    ):
        r = runner.invoke(synth_app, args)
        assert isinstance(r.exception, ConfigError), r.output
        assert "needs PyTorch" in str(r.exception)
        assert "pip install 'cardworld[synth]'" in str(r.exception)


@pytest.fixture(scope="module")
def small_model(tmp_path_factory, table: pd.DataFrame):
    """A model fitted through the CLI on a CSV, and that CSV."""
    root = tmp_path_factory.mktemp("small_model")
    data = root / "tx.csv"
    table.to_csv(data, index=False)
    model = root / "model"
    args = ["fit", str(data), "--group-by", "acct_id", "--out", str(model), *FIT_TINY]
    r = runner.invoke(synth_app, args)
    assert r.exit_code == 0, r.output
    return model, data


def test_fit_replaces_only_a_model_and_only_when_told(small_model, tmp_path) -> None:
    model, data = small_model
    copy = tmp_path / "model"
    shutil.copytree(model, copy)
    fit = ["fit", str(data), "--group-by", "acct_id", *FIT_TINY, "--out"]
    r = runner.invoke(synth_app, [*fit, str(copy)])
    assert isinstance(r.exception, ConfigError)
    assert "already exists and is not empty; choose another --out or pass --overwrite" in str(
        r.exception
    )
    ledger = tmp_path / "ledger"
    (ledger / "transactions").mkdir(parents=True)
    (ledger / "manifest.json").write_text("{}")
    r = runner.invoke(synth_app, [*fit, str(ledger), "--overwrite"])
    assert isinstance(r.exception, ConfigError)
    assert "is not a synthesizer model (no synthesizer.json)" in str(r.exception)
    assert (ledger / "manifest.json").read_text() == "{}"
    (copy / "stale.txt").write_text("old")
    r = runner.invoke(synth_app, [*fit, str(copy), "--overwrite", "--seed", "1"])
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in copy.iterdir()) == ["model.safetensors", "synthesizer.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ledger", "model"]


def test_sample_refuses_an_existing_file_and_the_training_input(small_model, tmp_path) -> None:
    model, data = small_model
    kept = data.read_bytes()
    out = tmp_path / "s.csv"
    out.write_text("mine")
    sample = ["sample", str(model), "--groups", "2", "--out"]
    r = runner.invoke(synth_app, [*sample, str(out)])
    assert isinstance(r.exception, ConfigError)
    assert "already exists; choose another --out or pass --overwrite" in str(r.exception)
    assert out.read_text() == "mine"
    r = runner.invoke(synth_app, [*sample, str(data), "--overwrite"])
    assert isinstance(r.exception, ConfigError)
    assert "is the table this model was trained on" in str(r.exception)
    assert data.read_bytes() == kept
    r = runner.invoke(synth_app, [*sample, str(tmp_path), "--overwrite"])
    assert isinstance(r.exception, ConfigError) and "is a directory" in str(r.exception)
    r = runner.invoke(synth_app, [*sample, str(out), "--overwrite"])
    assert r.exit_code == 0, r.output
    assert pd.read_csv(out)["acct_id"].nunique() == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.csv"]  # no temporary file left


def test_messages_name_the_flag_and_the_file(small_model, tmp_path) -> None:
    model, _ = small_model
    r = runner.invoke(
        synth_app, ["sample", str(model), "--groups", "0", "--out", str(tmp_path / "s.csv")]
    )
    assert r.exit_code == 2 and "'--groups'" in r.output
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    r = runner.invoke(
        synth_app, ["fit", str(empty), "--group-by", "a", "--out", str(tmp_path / "m")]
    )
    assert isinstance(r.exception, DataError) and f"input {empty} is empty" in str(r.exception)
    header = tmp_path / "header.csv"
    header.write_text("a,b\n")
    r = runner.invoke(
        synth_app, ["fit", str(header), "--group-by", "a", "--out", str(tmp_path / "m")]
    )
    assert isinstance(r.exception, DataError) and f"input {header} has no rows" in str(r.exception)
