"""Fit, sample, save and load: valid records, learned patterns, determinism, no PII leaks."""

from __future__ import annotations

import datetime
import decimal
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cardworld.errors import ConfigError, DataError
from cardworld.synthesizer import Synthesizer
from cardworld.synthesizer import synthesizer as synthesizer_module
from cardworld.synthesizer.synthesizer import _json_default, _json_object


def test_every_sampled_record_is_valid(table: pd.DataFrame, sampled: pd.DataFrame) -> None:
    assert list(sampled.columns) == list(table.columns)
    assert len(sampled) > 0 and sampled["acct_id"].nunique() == 40
    assert sampled.notna().all().all()
    assert set(sampled["merchant_cat"]) <= set(table["merchant_cat"])
    assert set(sampled["state"]) <= set(table["state"])
    assert sampled["txn_amount"].between(table["txn_amount"].min(), table["txn_amount"].max()).all()
    assert (sampled["txn_amount"].round(2) == sampled["txn_amount"]).all()
    assert sampled["timestamp"].dtype == table["timestamp"].dtype
    assert sampled["txn_index"].dtype == np.int64
    for _, g in sampled.groupby("acct_id"):
        assert g["state"].nunique() == 1  # static attribute: one value per group
        assert g["cardholder"].nunique() == 1  # PII: consistent within a group
        assert g["txn_index"].tolist() == list(range(1, len(g) + 1))
        assert g["timestamp"].is_monotonic_increasing


def test_pattern_is_learned(sampled: pd.DataFrame) -> None:
    # In training, A is always followed by B and B never follows anything else. A model that
    # ignored order would put B after A about a quarter of the time (B is ~25% of rows).
    c = sampled["merchant_cat"].to_numpy()
    same = sampled["acct_id"].to_numpy()[1:] == sampled["acct_id"].to_numpy()[:-1]
    after_a = c[1:][(c[:-1] == "A") & same]
    after_other = c[1:][(c[:-1] != "A") & same]
    assert len(after_a) >= 30
    assert np.mean(after_a == "B") >= 0.85
    assert np.mean(after_other == "B") <= 0.15


def test_amount_and_hour_follow_category(sampled: pd.DataFrame) -> None:
    median = sampled.groupby("merchant_cat")["txn_amount"].median()
    assert median["B"] > 5 * median["A"] > 5 * median["D"] / 2
    hour = sampled.groupby("merchant_cat")["timestamp"].apply(lambda t: t.dt.hour.median())
    assert hour["A"] < hour["B"] < hour["C"] < hour["D"]


def test_no_pii_value_from_training_appears(table: pd.DataFrame, sampled: pd.DataFrame) -> None:
    assert not set(sampled["cardholder"]) & set(table["cardholder"])
    assert not set(sampled["acct_id"]) & set(table["acct_id"])
    assert sampled["acct_id"].str.fullmatch(r"ACCT-\d{5}").all()


def test_pii_never_emitted_even_when_faker_would(tmp_path, tiny, make_table) -> None:
    from faker import Faker

    fake = Faker()
    fake.seed_instance(3)  # the same stream sampling with seed=3 would draw
    names = [fake.name() for _ in range(30)]
    df = make_table(30).assign(cardholder=lambda d: [names[int(a[5:])] for a in d["acct_id"]])
    synth = Synthesizer(**{**tiny, "max_epochs": 2}).fit(
        df, group_by="acct_id", order_by="txn_index"
    )
    out = synth.sample(30, seed=3)
    assert not set(out["cardholder"]) & set(names)
    # The saved model holds hashes of training PII, never the values.
    synth.save(tmp_path)
    text = (tmp_path / "synthesizer.json").read_text()
    assert not any(n in text for n in names)
    assert "ACCT-00001" not in text


def test_sampling_reports_its_event_steps_and_samples_the_same(fitted: Synthesizer) -> None:
    seen: list[dict] = []
    with_progress = fitted.sample(12, seed=11, batch_size=5, progress=seen.append)
    pd.testing.assert_frame_equal(with_progress, fitted.sample(12, seed=11, batch_size=5))
    steps = [info["step"] for info in seen]
    assert steps == list(range(1, len(seen) + 1))  # one report per event step
    # Three batches (5, 5, 2 groups) each take as many steps as their longest group.
    longest = with_progress.groupby("acct_id", sort=False).size().to_numpy()
    expected = sum(longest[i : i + 5].max() for i in range(0, 12, 5))
    assert len(seen) == expected
    assert all(info["total"] >= info["step"] for info in seen)
    assert seen[-1]["total"] == expected  # fitted lengths: the total is known from the start


def test_validation_reads_a_seeded_sample_of_windows_at_most(
    fitted: Synthesizer, table: pd.DataFrame, tiny: dict, monkeypatch
) -> None:
    all_windows = fitted.fit_info["val_windows"]
    assert all_windows > 3
    monkeypatch.setattr(synthesizer_module, "MAX_VAL_WINDOWS", 3)
    capped = [
        Synthesizer(**tiny).fit(table, group_by="acct_id", order_by="txn_index") for _ in range(2)
    ]
    assert [c.fit_info["val_windows"] for c in capped] == [3, 3]
    assert capped[0].fit_info["best_val_loss"] == capped[1].fit_info["best_val_loss"]  # seeded
    assert capped[0].fit_info["best_val_loss"] != fitted.fit_info["best_val_loss"]


def test_save_load_gives_identical_samples(fitted: Synthesizer, tmp_path) -> None:
    a = fitted.sample(12, seed=11)
    fitted.save(tmp_path / "model")
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == [
        "model.safetensors",
        "synthesizer.json",
    ]
    json.loads((tmp_path / "model" / "synthesizer.json").read_text())
    loaded = Synthesizer.load(tmp_path / "model")
    b = loaded.sample(12, seed=11)
    pd.testing.assert_frame_equal(a, b)
    c = loaded.sample(12, seed=12)
    assert not a["txn_amount"].equals(c["txn_amount"])


def test_fit_is_deterministic_on_cpu(table: pd.DataFrame, tiny: dict) -> None:
    cfg = {**tiny, "max_epochs": 2}
    a = Synthesizer(**cfg).fit(table, group_by="acct_id", order_by="txn_index").sample(5, seed=1)
    b = Synthesizer(**cfg).fit(table, group_by="acct_id", order_by="txn_index").sample(5, seed=1)
    pd.testing.assert_frame_equal(a, b)


def test_conditional_on_static_attributes(fitted: Synthesizer) -> None:
    out = fitted.sample(static=pd.DataFrame({"state": ["TX"] * 6 + ["CA"] * 4}), seed=2)
    states = out.groupby("acct_id", sort=False)["state"].first().tolist()
    assert states == ["TX"] * 6 + ["CA"] * 4
    with pytest.raises(DataError, match="static column 'state' has value 'ZZ'"):
        fitted.sample(static=pd.DataFrame({"state": ["ZZ"]}))
    with pytest.raises(ConfigError, match="not static attributes"):
        fitted.sample(static=pd.DataFrame({"merchant_cat": ["A"]}))


def test_continue_a_history(fitted: Synthesizer, table: pd.DataFrame) -> None:
    # Histories that end in A: the continuation's first event must be B.
    hist = []
    for _key, g in table.groupby("acct_id", sort=False):
        idx = np.flatnonzero(g["merchant_cat"].to_numpy() == "A")
        if len(idx):
            hist.append(g.iloc[: idx[0] + 1])
        if len(hist) == 40:
            break
    history = pd.concat(hist)
    out = fitted.sample(history=history, seed=5)
    assert set(out["acct_id"]) == set(history["acct_id"])
    firsts = []
    for key, g in out.groupby("acct_id", sort=False):
        h = history[history["acct_id"] == key]
        # The given rows come back as given, every column (not as the model's tokens).
        pd.testing.assert_frame_equal(
            g.iloc[: len(h)][list(h.columns)].reset_index(drop=True),
            h.reset_index(drop=True),
            check_dtype=False,
        )
        if len(g) > len(h):
            firsts.append(g["merchant_cat"].iloc[len(h)])
    assert len(firsts) >= 20 and np.mean(np.array(firsts) == "B") >= 0.85


def test_subject_and_event_tables(table: pd.DataFrame, tiny: dict) -> None:
    subjects = table.groupby("acct_id", as_index=False).first()[["acct_id", "state"]]
    subjects["segment"] = np.where(subjects["state"] == "CA", "gold", "basic")
    events = table.drop(columns=["state"])
    synth = Synthesizer(**{**tiny, "max_epochs": 3}).fit(
        events, group_by="acct_id", order_by="txn_index", subjects=subjects
    )
    assert synth.schema.column("segment").role == "static"
    subj, ev = synth.sample(8, seed=0, as_tables=True)
    assert list(subj.columns) == ["acct_id", "state", "segment"]
    assert len(subj) == 8 and subj["acct_id"].is_unique
    assert "state" not in ev.columns and set(ev["acct_id"]) == set(subj["acct_id"])
    with pytest.raises(DataError, match="repeats key"):
        Synthesizer(**tiny).fit(events, group_by="acct_id", subjects=pd.concat([subjects] * 2))


def test_long_histories_are_sampled_in_windows(table: pd.DataFrame, tiny: dict) -> None:
    # A window holds only a few events, so every group needs several carried-context slides.
    synth = Synthesizer(**{**tiny, "block_size": 40, "max_epochs": 3}).fit(
        table, group_by="acct_id", order_by="txn_index"
    )
    assert synth.codec.events_per_window(synth.model.config.block_size) <= 5
    out = synth.sample(6, seed=0, max_events=25)
    sizes = out.groupby("acct_id").size()
    assert sizes.max() > 5
    assert (sizes <= 25).all()
    assert out.groupby("acct_id")["timestamp"].apply(lambda t: t.is_monotonic_increasing).all()


def test_group_lengths_follow_the_training_groups(
    fitted: Synthesizer, table: pd.DataFrame, tmp_path
) -> None:
    from scipy import stats

    real = table.groupby("acct_id").size()  # 8 to 15 events each
    drawn = fitted.sample(300, seed=3).groupby("acct_id").size()
    assert drawn.min() >= real.min() and drawn.max() <= real.max()
    # Drawn from 21 quantiles of the log length: close to the real distribution, not a copy.
    assert stats.ks_2samp(real, drawn).statistic < 0.2
    # Saved and loaded, the same lengths come out.
    again = Synthesizer.load(fitted.save(tmp_path / "s")).sample(300, seed=3)
    assert (again.groupby("acct_id").size().to_numpy() == drawn.to_numpy()).all()


def test_the_model_can_decide_group_lengths(table: pd.DataFrame, tiny: dict) -> None:
    synth = Synthesizer(**{**tiny, "max_epochs": 2, "group_lengths": "model"}).fit(
        table, group_by="acct_id", order_by="txn_index"
    )
    sizes = synth.sample(8, seed=0, max_events=30).groupby("acct_id").size()
    assert (sizes >= 1).all() and (sizes <= 30).all()
    with pytest.raises(ConfigError, match="group_lengths"):
        Synthesizer(**{**tiny, "group_lengths": "random"})


def test_rare_text_values_come_out_as_new_placeholders_or_are_dropped(
    table: pd.DataFrame, tiny: dict
) -> None:
    # Half the rows name a shop no one else visits (rare), half one of two chains.
    rng = np.random.default_rng(0)
    chains = rng.choice(["Big Mart", "Gas & Go"], len(table))
    local = [f"Local shop {i}" for i in range(len(table))]
    shops = table.assign(shop=np.where(rng.random(len(table)) < 0.5, local, chains))
    kept = {"Big Mart", "Gas & Go"}
    for rare_values in ("placeholder", "drop"):
        synth = Synthesizer(**{**tiny, "max_epochs": 6, "rare_values": rare_values}).fit(
            shops, group_by="acct_id", order_by="txn_index"
        )
        out = synth.sample(40, seed=0)["shop"]
        new = out[~out.isin(kept)]
        assert not new.isin(local).any()  # never a training shop's name
        if rare_values == "drop":
            assert new.empty
        else:
            assert 0.25 < len(new) / len(out) < 0.75  # the tail keeps about its half
            assert new.is_unique and new.str.fullmatch(r"<rare \d+>").all()
    with pytest.raises(ConfigError, match="rare_values"):
        Synthesizer(**{**tiny, "rare_values": "keep"})


def test_a_text_column_whose_every_value_is_rare_comes_out_as_placeholders(
    table: pd.DataFrame, tiny: dict
) -> None:
    # Every account its own town: no town is learned, and none may come out empty.
    towns = table.assign(town="Town " + table["acct_id"].astype(str))
    synth = Synthesizer(**{**tiny, "max_epochs": 2}).fit(
        towns, group_by="acct_id", order_by="txn_index"
    )
    assert synth.codec.schema.column("town").role == "static"
    out = synth.sample(12, seed=0)
    assert out["town"].notna().all() and out["town"].str.fullmatch(r"<rare \d+>").all()
    assert (out.groupby("acct_id")["town"].nunique() == 1).all()
    # No town to condition on: said so, not "expected one of []".
    with pytest.raises(DataError, match="the model learned none of its values"):
        synth.sample(static=pd.DataFrame({"town": [towns["town"].iloc[0]]}))


# Cells a ledger or a Parquet file can hold that JSON cannot; as categories they are saved
# tagged and read back as the same type (a ledger's consumers have datetime.date birth dates).
ODD_CELLS = {
    "date": [datetime.date(1985, 6, 15), datetime.date(1990, 1, 2), datetime.date(2001, 12, 31)],
    "moment": [datetime.datetime(2020, 1, 1, 8, 30), datetime.datetime(2020, 1, 2, 9), None],
    "stamp": [pd.Timestamp("2020-01-01 00:00:00.000000001"), pd.Timestamp(0), pd.Timestamp(1)],
    "clock": [datetime.time(8, 30), datetime.time(12), datetime.time(23, 59, 59, 1)],
    "span": [pd.Timedelta(days=1), pd.Timedelta(1), pd.Timedelta(hours=-3)],
    "money": [decimal.Decimal("1.10"), decimal.Decimal("-0"), decimal.Decimal("1e-30")],
    "raw": [b"\x00\xff", b"", b"abc"],
}


@pytest.mark.parametrize(
    "value",
    [
        *(v for values in ODD_CELLS.values() for v in values if v is not None),
        pd.Timestamp("2020-03-08 01:30", tz="America/New_York"),
    ],
)
def test_manifest_values_json_cannot_hold_round_trip(value) -> None:
    text = json.dumps({"categories": [value]}, default=_json_default)
    back = json.loads(text, object_hook=_json_object)["categories"][0]
    assert back == value and type(back) is type(value)


def test_static_categories_of_dates_and_decimals_save_and_load(
    table: pd.DataFrame, tiny: dict, tmp_path
) -> None:
    states = sorted(table["state"].unique())  # three, each on far more than 5 rows: all kept
    df = table.assign(
        **{
            name: table["state"].astype(object).map(dict(zip(states, values, strict=True)))
            for name, values in ODD_CELLS.items()
        }
    )
    roles = {name: "categorical" for name in ODD_CELLS}
    synth = Synthesizer(**{**tiny, "max_epochs": 1}).fit(
        df, group_by="acct_id", order_by="txn_index", roles=roles
    )
    loaded = Synthesizer.load(synth.save(tmp_path / "model"))
    for name in ODD_CELLS:
        kept, back = synth.codec.stats[name]["categories"], loaded.codec.stats[name]["categories"]
        assert back == kept and [type(v) for v in back] == [type(v) for v in kept]
    a, b = synth.sample(6, seed=2), loaded.sample(6, seed=2)
    pd.testing.assert_frame_equal(a, b)
    assert all(type(v) is datetime.date for v in b["date"])


def test_a_failed_save_leaves_what_was_there(fitted: Synthesizer, tmp_path, monkeypatch) -> None:
    model = fitted.save(tmp_path / "model")
    before = {p.name: p.read_bytes() for p in model.iterdir()}

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(synthesizer_module, "save_model", broken)
    with pytest.raises(OSError, match="No space"):
        fitted.save(model)
    with pytest.raises(OSError, match="No space"):
        fitted.save(tmp_path / "new")
    assert {p.name: p.read_bytes() for p in model.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no staging left
    monkeypatch.undo()
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not a synthesizer directory"):
        fitted.save(tmp_path / "notes")
    assert (tmp_path / "notes" / "todo.txt").read_text() == "mine"


def test_a_value_json_cannot_hold_fails_before_anything_is_written(
    table: pd.DataFrame, tiny: dict, tmp_path
) -> None:
    df = table.assign(odd=table["state"].astype(object).map({"CA": 1j, "NY": 2j, "TX": 3j}))
    synth = Synthesizer(**{**tiny, "max_epochs": 1}).fit(
        df, group_by="acct_id", order_by="txn_index", roles={"odd": "categorical"}
    )
    with pytest.raises(DataError, match="cannot save a value of type complex"):
        synth.save(tmp_path / "model")
    assert list(tmp_path.iterdir()) == []


def test_the_time_budget_is_checked_between_batches(table: pd.DataFrame, tiny: dict) -> None:
    # One window a step: an epoch is hundreds of steps, far more than a 0.06 s budget allows.
    cfg = {**tiny, "batch_size": 1, "max_minutes": 0.001, "max_epochs": 50}
    info = Synthesizer(**cfg).fit(table, group_by="acct_id", order_by="txn_index").fit_info
    assert info["epochs"] == 1 and info["steps"] < info["train_windows"]
    assert np.isfinite(info["best_val_loss"])  # the cut epoch still had its validation pass
    assert info["seconds"] < 5  # the budget plus a step and a validation pass, generously


def test_progress_shows_a_validation_loss_only_once_measured(
    table: pd.DataFrame, tiny: dict
) -> None:
    seen: list[dict] = []
    Synthesizer(**{**tiny, "max_epochs": 2, "patience": 5}).fit(
        table, group_by="acct_id", order_by="txn_index", progress=seen.append
    )
    first = [info["val_loss"] for info in seen if info["epoch"] == 1]
    second = [info["val_loss"] for info in seen if info["epoch"] == 2]
    assert first and all(math.isnan(v) for v in first)
    assert second and all(np.isfinite(v) for v in second)


def _truncate_weights(model: Path) -> None:
    (model / "model.safetensors").write_bytes(b"\x00" * 100)


def _cut_manifest(model: Path) -> None:
    (model / "synthesizer.json").write_text('{"format":')


def _drop_codec(model: Path) -> None:
    manifest = json.loads((model / "synthesizer.json").read_text())
    del manifest["codec"]
    (model / "synthesizer.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (_truncate_weights, r"model.safetensors is damaged \("),
        (_cut_manifest, r"synthesizer.json is damaged \("),
        (_drop_codec, r"synthesizer.json is damaged \(no 'codec' key\)"),
    ],
)
def test_a_damaged_model_directory_is_one_error_naming_the_file(
    fitted: Synthesizer, tmp_path, damage, message
) -> None:
    fitted.save(tmp_path / "model")
    damage(tmp_path / "model")
    with pytest.raises(ConfigError, match=message):
        Synthesizer.load(tmp_path / "model")
