"""Calibration: measurements on a hand-made ledger whose statistics are known by
construction, the pass/fail comparison, and a short fit on sampled tiny worlds."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import tomllib

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cardworld.errors import ConfigError, LedgerError, WorldError
from cardworld.simulator import calibrate as cal
from cardworld.simulator import ledger
from cardworld.simulator.purchases import TRANSACTION_SCHEMA
from cardworld.simulator.report_figures import compute_figures
from cardworld.worlds.load import load_world
from cardworld.worlds.schema import CalibrationTarget

N = 200
REFUNDS = (10, 20, 30, 40, 170)  # four in person, one online
ERRORS = {1: "Insufficient Balance", 3: "Insufficient Balance", 5: "Insufficient Balance"}
ERRORS |= {7: "Insufficient Balance", 9: "Bad PIN", 11: "Bad PIN", 13: "Technical Glitch"}
FRAUD = (198, 199)


def _dictionary(values: list, field: pa.Field) -> pa.Array:
    return pa.array(values, pa.string()).dictionary_encode().cast(field.type)


@pytest.fixture(scope="module")
def handmade(tmp_path_factory):
    """200 rows in January 2018: rows 0-99 swipe, 100-159 chip, 160-199 online; every 4th
    row on a credit card at $100, then two debit rows at $40 and one prepaid at $20; five
    refunds, seven errors, two fraud rows."""
    directory = tmp_path_factory.mktemp("handmade")
    (directory / "transactions").mkdir()
    i = np.arange(N)
    card = np.array([0, 1, 1, 2])[i % 4]
    consumer = np.where(card == 2, 1, 0)
    price = np.array([100.0, 40.0, 20.0])[card]
    amount = np.where(np.isin(i, REFUNDS), -price, price)
    channel = np.where(i < 100, "swipe", np.where(i < 160, "chip", "online"))
    online = channel == "online"
    columns = {
        "txn_id": i,
        "timestamp": pa.array(
            [dt.datetime(2018, 1, 1) + dt.timedelta(hours=int(h)) for h in i], pa.timestamp("us")
        ),
        "consumer_id": consumer,
        "card_id": card,
        "merchant_id": np.where(online, 100 + i % 20, i % 10),
        "mcc": np.where(online, 5942, 5411).astype(np.int16),
        "category": ["groceries"] * N,
        "amount": amount,
        "channel": channel.tolist(),
        "errors": [ERRORS.get(r) for r in i],
        "is_fraud": np.isin(i, FRAUD),
        "fraud_mechanism": ["random" if r in FRAUD else None for r in i],
        "consumer_state": ["home"] * N,
    }
    arrays = []
    for field in TRANSACTION_SCHEMA:
        value = columns.get(field.name)
        if value is None:
            arrays.append(pa.nulls(N, field.type))
        elif pa.types.is_dictionary(field.type):
            arrays.append(_dictionary(value, field))
        else:
            arrays.append(pa.array(value, field.type))
    pq.write_table(
        pa.Table.from_arrays(arrays, schema=TRANSACTION_SCHEMA),
        directory / "transactions" / "part-00000.parquet",
    )
    tables = {
        "consumers": pa.table({"consumer_id": [0, 1], "lat": [40.0, 40.0], "lon": [-75.0, -75.0]}),
        "cards": pa.table(
            {"card_id": [0, 1, 2], "consumer_id": [0, 0, 1], "kind": ["credit", "debit", "prepaid"]}
        ),
        "merchants": pa.table(
            {
                "merchant_id": list(range(10)) + list(range(100, 120)),
                "lat": [40.0] * 10 + [None] * 20,
                "lon": [-75.0] * 10 + [None] * 20,
            }
        ),
    }
    for name, table in tables.items():
        pq.write_table(table, directory / f"{name}.parquet")
    files = {
        p.relative_to(directory).as_posix(): {"rows": pq.ParquetFile(p).metadata.num_rows}
        for p in sorted(directory.rglob("*.parquet"))
    }
    manifest = {
        "format": ledger.FORMAT,
        "world": "handmade",
        "seed": 1,
        "start": "2018-01-01",
        "end": "2018-12-31",
        "row_counts": {"transactions": N},
        "files": files,
    }
    (directory / "manifest.json").write_text(json.dumps(manifest))
    return directory, amount


@pytest.fixture(scope="module")
def figures(handmade):
    return compute_figures(handmade[0])


KNOWN = {
    "rows": N,
    "swipe_share": 0.5,
    "chip_share": 0.3,
    "online_share": 0.2,
    "online_share_2018": 0.2,
    "swipe_share_2018": 0.5,
    "chip_in_person_share_2018": 60 / 160,
    "refund_share": 5 / N,
    "refund_share_online": 1 / 40,
    "refund_online_ratio": (1 / 40) / (4 / 160),
    "error_share": 7 / N,
    "error_share_insufficient_balance": 4 / N,
    "error_share_bad_pin": 2 / N,
    "error_share_technical_glitch": 1 / N,
    "error_mix_ordered": 1.0,
    "cards_per_consumer": 1.5,
    "cards_held_per_consumer": 1.5,
    "transactions_per_card_2013_2018": N / 3,
    "transactions_per_consumer_2018": N / 2,
    "transactions_per_consumer_year": N / 2,
    "ticket_credit_2018": 100.0,
    "ticket_debit": 40.0,
    "ticket_prepaid_2018": 20.0,
    "ticket_order_2018": 1.0,
    "fraud_share": 2 / N,
    "away_share": 0.0,
}


@pytest.mark.parametrize("name", sorted(KNOWN))
def test_measurements_on_a_ledger_with_known_statistics(figures, name):
    assert cal.measure(name, figures) == pytest.approx(KNOWN[name])


def test_amount_and_fraud_measurements(figures, handmade):
    amount = handmade[1]
    assert cal.measure("amount_mean", figures) == pytest.approx(amount.mean())
    assert cal.measure("amount_median", figures) == pytest.approx(np.median(amount))
    purchases = np.clip(amount, 0, None)
    fraud_value = purchases[list(FRAUD)].sum()  # rows 198 and 199: debit, prepaid
    assert cal.measure("fraud_value_bps_2018_2018", figures) == pytest.approx(
        1e4 * fraud_value / purchases.sum()
    )


def test_compare_passes_within_tolerance_and_fails_outside(figures):
    targets = {
        "online_share": CalibrationTarget(0.21, 0.02, "test"),  # |0.20 - 0.21| <= 0.02
        "chip_in_person_share_2018": CalibrationTarget(0.5, 0.1, "test"),  # 0.375: off by 0.125
        "error_mix_ordered": CalibrationTarget(1.0, 0.0, "test"),
        "ticket_credit_2018": CalibrationTarget(88.0, 12.0, "test"),  # 100: exactly at the edge
        "chip_in_person_share_2015": CalibrationTarget(0.02, 0.02, "test"),  # no 2015 rows
    }
    rows = {c.name: c for c in cal.compare(figures, targets)}
    assert list(rows) == list(targets)
    assert rows["online_share"].passed and rows["online_share"].measured == pytest.approx(0.2)
    assert not rows["chip_in_person_share_2018"].passed
    assert rows["chip_in_person_share_2018"].score == pytest.approx((0.125 / 0.1) ** 2)
    assert rows["error_mix_ordered"].passed
    assert rows["ticket_credit_2018"].passed
    assert rows["chip_in_person_share_2015"].measured is None
    assert not rows["chip_in_person_share_2015"].passed


def test_targets_about_years_outside_the_sample_are_skipped_not_missed(figures):
    targets = {
        "online_share": CalibrationTarget(0.2, 0.02, "test"),
        "chip_in_person_share_2015": CalibrationTarget(0.02, 0.02, "test"),
        "fraud_value_bps_2015_2016": CalibrationTarget(13.5, 6.0, "test"),
        "ticket_credit_2018": CalibrationTarget(100.0, 1.0, "test"),
    }
    rows = {c.name: c for c in cal.compare(figures, targets)}
    for name in ("chip_in_person_share_2015", "fraud_value_bps_2015_2016"):
        assert rows[name].skipped and not rows[name].missed and rows[name].score == 0.0
    assert rows["chip_in_person_share_2015"].skipped == "no 2015 in the sample (2018)"
    assert "no 2015-2016 in the sample" in rows["fraud_value_bps_2015_2016"].skipped
    assert rows["ticket_credit_2018"].skipped is None and rows["ticket_credit_2018"].passed
    report = cal.CalibrationReport(
        "w", None, 2, ("2018-01-01", "2018-12-31"), N, list(rows.values())
    )
    assert report.passed  # only skipped targets are unmet
    off = cal.compare(figures, {"online_share": CalibrationTarget(0.5, 0.01, "test")})
    assert off[0].missed and not cal.CalibrationReport("w", None, 2, ("", ""), N, off).passed


def test_a_count_over_years_is_scaled_to_them_and_a_change_the_sample_cannot_see_skipped(
    figures,
):
    """transactions_per_card counts over the years its name ends with: a one-year sample
    (2018) of 2013-2018 measures a sixth of it, so the measurement is scaled up by the days'
    ratio, whatever the period of the world that runs it. A change from 2018 to 2019 needs
    both years: skipped, not missed."""
    targets = {
        "transactions_per_card_2013_2018": CalibrationTarget(400.0, 50.0, "test"),
        "transactions_per_card_2018_2018": CalibrationTarget(66.0, 5.0, "test"),
        "online_share": CalibrationTarget(0.2, 0.02, "test"),  # a share: never scaled
        "transactions_change_2018_2019": CalibrationTarget(-0.02, 0.03, "test"),
    }
    rows = {c.name: c for c in cal.compare(figures, targets)}
    days = (dt.date(2018, 12, 31) - dt.date(2013, 1, 1)).days + 1
    six = rows["transactions_per_card_2013_2018"]
    assert six.measured == pytest.approx(N / 3 * days / 365)
    assert six.note == "66.67 in the sample's 365 days, scaled to 2013-2018's 2,191" and six.passed
    one = rows["transactions_per_card_2018_2018"]
    assert one.measured == pytest.approx(N / 3) and not one.note
    assert rows["online_share"].measured == pytest.approx(0.2) and not rows["online_share"].note
    change = rows["transactions_change_2018_2019"]
    assert change.skipped == "needs 2018-2019; the sample has 2018" and not change.missed


@pytest.mark.parametrize(
    ("options", "flags"),
    [
        ({"consumers": 10}, "--consumers"),
        ({"start": dt.date(2018, 1, 1), "seed": 3}, "--start, --seed"),
        ({"keep": "kept"}, "--keep"),
    ],
)
def test_sample_flags_are_refused_with_a_ledger(handmade, options, flags):
    with pytest.raises(
        ConfigError, match=rf"^{flags}: set\(s\) the sample to simulate, but --ledger"
    ):
        cal.calibrate("tiny", ledger=handmade[0], **options)


def test_error_mix_ordering_fails_when_bad_pin_leads(figures):
    swapped = {
        **figures,
        "errors": [
            {**e, "share": 0.5} if e["error"] == "Bad PIN" else e for e in figures["errors"]
        ],
    }
    assert cal.measure("error_mix_ordered", swapped) == 0.0


def test_unknown_target_is_a_world_error(figures, tmp_path):
    with pytest.raises(WorldError, match="'amount_mode' has no measurement"):
        cal.measure("amount_mode", figures)
    world = tmp_path / "world.toml"
    world.write_text(
        'extends = "tiny"\n\n[calibration]\n'
        'amount_mode = { value = 1.0, tolerance = 0.1, source = "tabformer" }\n'
    )
    # Named with the world file, before any sample is simulated.
    with pytest.raises(WorldError, match=r"world.toml: calibration target 'amount_mode'"):
        cal.calibrate(world)


def test_calibrate_reads_the_world_targets_on_an_existing_ledger(handmade, tmp_path):
    world = tmp_path / "world.toml"
    world.write_text(
        'extends = "tiny"\nname = "handmade"\n\n[calibration]\n'
        'online_share = { value = 0.2, tolerance = 0.01, source = "tabformer" }\n'
        'refund_share = { value = 0.05, tolerance = 0.01, source = "tabformer" }\n'
    )
    report = cal.calibrate(world, ledger=handmade[0])
    rows = {c.name: c for c in report.comparisons}
    assert (report.world, report.rows, report.consumers) == ("handmade", N, 2)
    assert rows["online_share"].passed
    assert rows["refund_share"].measured == pytest.approx(0.025) and not rows["refund_share"].passed
    assert set(load_world("us").spec.calibration) <= set(rows)  # inherited through tiny
    assert not report.passed


def test_write_world_extends_the_original_and_scales_table_columns(tmp_path):
    params = [
        cal.parse_parameter("errors.bad_pin=0.001:0.01", "tiny"),
        cal.parse_parameter("cards.amount_preference.credit", "tiny"),
        cal.parse_parameter("goods.amount_median=0.5:2", "tiny"),
        cal.parse_parameter("goods.refund_rate", "tiny"),
    ]
    assert (params[0].low, params[0].high) == (0.001, 0.01)
    assert params[1].low == pytest.approx(params[1].start / 2)
    values = {
        "errors.bad_pin": 0.005,
        "cards.amount_preference.credit": 1.1,
        "goods.amount_median": 1.5,
        "goods.refund_rate": 0.5,
    }
    path = cal.write_world("tiny", values, params, tmp_path / "fit" / "world.toml")
    raw = tomllib.loads(path.read_text())
    assert raw["extends"] == "tiny" and raw["name"] == "tiny-fit"
    fitted, original = load_world(path), load_world("tiny")
    assert fitted.spec.errors.bad_pin == 0.005
    assert fitted.spec.cards.amount_preference["credit"] == 1.1
    assert (
        fitted.spec.cards.amount_preference["debit"]
        == original.spec.cards.amount_preference["debit"]
    )
    assert np.allclose(
        fitted.tables["goods"]["amount_median"], 1.5 * original.tables["goods"]["amount_median"]
    )
    assert np.allclose(
        fitted.tables["goods"]["refund_rate"], 0.5 * original.tables["goods"]["refund_rate"]
    )
    assert fitted.spec.simulation == original.spec.simulation


def test_bad_fit_parameters_are_config_errors():
    with pytest.raises(ConfigError, match="no such key"):
        cal.parse_parameter("errors.bad_mood", "tiny")
    with pytest.raises(ConfigError, match="must be a number"):
        cal.parse_parameter("name", "tiny")
    with pytest.raises(ConfigError, match="LOW must be below HIGH"):
        cal.parse_parameter("errors.bad_pin=0.2:0.1", "tiny")
    with pytest.raises(ConfigError, match="no numeric column 'type'"):
        cal.parse_parameter("goods.type", "tiny")
    with pytest.raises(ConfigError, match="shares in 'cards.kind_shares', which must sum to 1"):
        cal.parse_parameter("cards.kind_shares.credit=0.1:0.9", "tiny")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("errors.bad_pin=-1:2", "LOW must be at least 0.0, found -1.0 in '-1:2'"),
        ("errors.bad_pin=0:2", "HIGH must be at most 1.0, found 2.0 in '0:2'"),
        ("errors.bad_pin=-inf:0.1", "LOW must be a finite number, found -inf"),
        ("population.income_median=0:1", "LOW must be greater than 0.0, found 0.0"),
        ("goods.amount_median=-1:2", "LOW must be at least 0.0, found -1.0"),  # a factor
    ],
)
def test_fit_bounds_must_lie_in_the_parameters_domain(text, message):
    with pytest.raises(ConfigError) as error:
        cal.parse_parameter(text, "tiny")
    assert str(error.value).startswith(f"fit parameter '{text.partition('=')[0]}': {message}")


def test_default_fit_bounds_stay_in_the_parameters_domain():
    share = cal.parse_parameter("population.female_share", "tiny")  # 0.508: 2x would be 1.016
    assert (share.low, share.high) == (pytest.approx(0.254), 1.0)


def test_fit_moves_a_parameter_towards_its_target(tmp_path):
    world = tmp_path / "world.toml"
    # The tiny world errs on ~2% of rows for lack of balance (a 20-consumer sample, up to
    # ~5%: a few consumers keep trying a card without funds); ask for 9%.
    world.write_text(
        'extends = "tiny"\nname = "errs"\n\n[calibration]\n'
        'error_share_insufficient_balance = { value = 0.09, tolerance = 0.009, source = "tabformer" }\n'
    )
    result = cal.fit(
        world,
        ["errors.insufficient_balance=0.002:0.12"],
        tmp_path / "fitted.toml",
        targets=["error_share_insufficient_balance"],
        consumers=20,
        start=dt.date(2019, 1, 1),
        end=dt.date(2019, 2, 28),
        workers=1,
        max_evaluations=4,
    )
    (before,), (after,) = result.before, result.after
    assert abs(after.measured - 0.09) < abs(before.measured - 0.09)
    fitted = load_world(result.path).spec.errors.insufficient_balance
    assert fitted == pytest.approx(result.values["errors.insufficient_balance"], rel=1e-5)
    assert fitted > load_world(world).spec.errors.insufficient_balance
    assert result.evaluations <= 4 + 2


def test_fit_into_an_invalid_world_names_the_parameter_values(tmp_path):
    # The search starts inside the bounds, though the column's own scale (1) lies outside.
    assert cal.parse_parameter("goods.participation=1.5:4", "tiny").start == 1.5
    # A probability column scaled past 1 is only found when a candidate world is loaded.
    with pytest.raises(ConfigError) as error:
        cal.fit(
            "tiny",
            ["goods.participation=1.5:4"],
            tmp_path / "fitted.toml",
            consumers=5,
            start=dt.date(2019, 1, 1),
            end=dt.date(2019, 1, 31),
            workers=1,
            max_evaluations=2,
        )
    message = str(error.value)
    assert message.startswith("--param: at goods.participation=")
    assert "column 'participation'" in message and "must be a probability" in message
    assert "cardworld-fit-" not in message  # not the candidate's temporary file
    assert not (tmp_path / "fitted.toml").exists()


def test_calibrate_refuses_a_ledger_of_another_world(handmade, tmp_path):
    with pytest.raises(
        ConfigError, match=r"was simulated from world 'handmade', not from 'tiny' \(--world tiny\)"
    ):
        cal.calibrate("tiny", ledger=handmade[0])
    anonymous = tmp_path / "anonymous"
    shutil.copytree(handmade[0], anonymous)
    manifest = json.loads((anonymous / "manifest.json").read_text())
    del manifest["world"]
    (anonymous / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(LedgerError, match="does not say which world it was simulated from"):
        cal.calibrate("tiny", ledger=anonymous)


def test_calibrate_command_prints_the_table_and_fails_on_a_missed_target(handmade, tmp_path):
    import typer
    from typer.testing import CliRunner

    from cardworld.commands.report import calibrate as calibrate_command

    world = tmp_path / "world.toml"
    world.write_text(
        'extends = "tiny"\nname = "handmade"\n\n[calibration]\n'
        'online_share = { value = 0.2, tolerance = 0.01, source = "tabformer" }\n'
    )
    app = typer.Typer()
    app.command("calibrate")(calibrate_command)
    app.command("noop")(lambda: None)
    runner = CliRunner()
    result = runner.invoke(app, ["calibrate", "--world", str(world), "--ledger", str(handmade[0])])
    assert result.exit_code == 1  # the inherited `us` targets are far from a hand-made ledger
    assert "online_share" in result.output and "target(s) missed" in result.output
    result = runner.invoke(app, ["calibrate", "--world", str(world), "--fit"])
    assert isinstance(result.exception, ConfigError)
    result = runner.invoke(
        app, ["calibrate", "--world", str(world), "--ledger", str(handmade[0]), "--fit"]
    )
    assert isinstance(result.exception, ConfigError) and "--fit" in str(result.exception)


def test_calibrate_command_passes_when_only_skipped_targets_are_unmet(
    handmade, figures, monkeypatch
):
    import typer
    from typer.testing import CliRunner

    from cardworld.commands.report import calibrate as calibrate_command

    targets = {
        "online_share": CalibrationTarget(0.2, 0.01, "test"),
        "chip_in_person_share_2015": CalibrationTarget(0.02, 0.02, "test"),
        "error_share_insufficient_balance": CalibrationTarget(0.02, 0.01, "test"),
    }
    report = cal.CalibrationReport(
        "handmade", handmade[0], 2, ("2018-01-01", "2018-12-31"), N, cal.compare(figures, targets)
    )
    monkeypatch.setattr(cal, "calibrate", lambda *args, **kwargs: report)
    app = typer.Typer()
    app.command("calibrate")(calibrate_command)
    app.command("noop")(lambda: None)
    result = CliRunner().invoke(app, ["calibrate", "--world", "tiny"])
    assert result.exit_code == 0, result.output
    assert "1 target(s) skipped" in result.output
    assert "all 2 measurable targets met" in result.output
    # Not a terminal: the table is not cut to 80 columns, so every name shows whole.
    assert "error_share_insufficient_balance " in result.output
    assert "no 2015 in the sample (2018)" in result.output


def test_calibrate_and_fit_never_write_over_what_is_there(tmp_path):
    kept = tmp_path / "mine"
    kept.mkdir()
    (kept / "notes.txt").write_text("mine")
    with pytest.raises(LedgerError, match="already exists; --keep writes a new ledger"):
        cal.calibrate("tiny", consumers=5, keep=kept)
    assert (kept / "notes.txt").read_text() == "mine"
    source = load_world("tiny").path
    before = source.read_bytes()
    with pytest.raises(ConfigError, match="is the world being fitted"):
        cal.fit("tiny", ["errors.bad_pin"], source, consumers=5)
    assert source.read_bytes() == before


def test_change_between_years_compares_transactions_per_consumer():
    figures = {
        "per_year": [{"year": 2019, "per_consumer": 400.0}, {"year": 2020, "per_consumer": 390.0}]
    }
    assert cal.measure("transactions_change_2019_2020", figures) == pytest.approx(-0.025)
    assert cal.measure("transactions_change_2019_2021", figures) is None  # no 2021 in the sample
