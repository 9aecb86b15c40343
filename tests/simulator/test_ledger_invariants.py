"""Invariants every ledger must satisfy, checked on the tiny world."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from cardworld.simulator import ledger
from cardworld.simulator.merchants import merchants_table
from cardworld.simulator.purchases import TRANSACTION_SCHEMA, TXN_ID_STRIDE
from cardworld.simulator.run import _built
from cardworld.worlds import reference
from cardworld.worlds.load import load_world


def test_transactions_have_the_contract_schema(tiny_ledger):
    schema = ledger.transactions(tiny_ledger).schema
    for field in TRANSACTION_SCHEMA:
        assert schema.field(field.name).type == field.type, field.name


def test_txn_ids_are_unique(tiny_frames):
    txns = tiny_frames["transactions"]
    assert len(txns) > 50_000
    assert txns["txn_id"].is_unique


def test_txn_ids_number_each_consumers_rows_in_time_order(tiny_frames):
    txns = tiny_frames["transactions"]
    assert (txns["txn_id"] // TXN_ID_STRIDE == txns["consumer_id"]).all()
    seq = (txns["txn_id"] % TXN_ID_STRIDE).to_numpy()
    assert np.array_equal(seq, txns.groupby("consumer_id").cumcount().to_numpy())
    assert (txns.groupby("consumer_id")["timestamp"].diff().dropna() >= pd.Timedelta(0)).all()


def test_keys_resolve_to_the_entity_tables(tiny_frames):
    txns, cards, consumers, merchants = (
        tiny_frames[k] for k in ("transactions", "cards", "consumers", "merchants")
    )
    assert set(txns["consumer_id"]) <= set(consumers["consumer_id"])
    assert set(txns["merchant_id"]) == set(merchants["merchant_id"])
    card_owner = cards.set_index("card_id")["consumer_id"]
    assert txns["card_id"].isin(card_owner.index).all()
    # A card is used only by the consumer who holds it.
    assert (card_owner.loc[txns["card_id"]].to_numpy() == txns["consumer_id"].to_numpy()).all()
    assert (
        consumers["consumer_id"].is_unique
        and cards["card_id"].is_unique
        and merchants["merchant_id"].is_unique
    )


def test_rows_are_sorted_by_consumer_then_time(tiny_frames):
    txns = tiny_frames["transactions"]
    assert txns["consumer_id"].is_monotonic_increasing
    ordered = txns.groupby("consumer_id")["timestamp"].apply(lambda t: t.is_monotonic_increasing)
    assert ordered.all()


def test_amounts_are_whole_cents_and_refunds_negative(tiny_frames):
    amount = tiny_frames["transactions"]["amount"]
    cents = amount * 100
    assert np.allclose(cents, np.round(cents), atol=1e-6)
    assert (amount != 0).all()
    assert 0.01 < (amount < 0).mean() < 0.1


def test_timestamps_are_inside_the_world_period(tiny_frames):
    world = load_world("tiny").spec.simulation
    ts = tiny_frames["transactions"]["timestamp"]
    assert ts.min() >= pd.Timestamp(world.start)
    assert ts.max() < pd.Timestamp(world.end) + pd.Timedelta(days=1)


def test_cards_are_used_only_after_they_are_opened(tiny_frames):
    txns, cards = tiny_frames["transactions"], tiny_frames["cards"].set_index("card_id")
    opened = pd.to_datetime(cards.loc[txns["card_id"], "opened"]).to_numpy()
    assert (txns["timestamp"].to_numpy() >= opened).all()


def test_fraud_columns_are_consistent(tiny_frames):
    txns = tiny_frames["transactions"]
    assert (txns["is_fraud"] == txns["fraud_mechanism"].notna()).all()
    assert txns["fraud_mechanism"].dropna().isin(["random", "fraudster"]).all()
    fraudster_rows = txns["fraud_mechanism"] == "fraudster"
    assert txns.loc[~fraudster_rows, "fraudster_id"].isna().all()
    assert txns["is_fraud"].sum() > 0


def test_mcc_matches_the_merchant(tiny_frames):
    txns, merchants = tiny_frames["transactions"], tiny_frames["merchants"].set_index("merchant_id")
    assert (merchants.loc[txns["merchant_id"], "mcc"].to_numpy() == txns["mcc"].to_numpy()).all()


def test_online_rows_are_at_online_merchants_and_card_present_rows_in_a_city(tiny_frames):
    txns, merchants = tiny_frames["transactions"], tiny_frames["merchants"].set_index("merchant_id")
    online = merchants.loc[txns["merchant_id"], "online"].to_numpy()
    assert (online == (txns["channel"] == "online").to_numpy()).all()
    assert merchants.loc[~merchants["online"], "city"].notna().all()


def test_chip_rows_only_on_chip_cards(tiny_frames):
    txns, cards = tiny_frames["transactions"], tiny_frames["cards"].set_index("card_id")
    chip = txns[txns["channel"] == "chip"]
    since = pd.to_datetime(cards.loc[chip["card_id"], "chip_since"]).to_numpy()
    assert (chip["timestamp"].to_numpy() >= since).all()


def test_manifest_counts_and_checksums(tiny_ledger, tiny_frames):
    manifest = json.loads((tiny_ledger / "manifest.json").read_text())
    assert manifest["row_counts"]["transactions"] == len(tiny_frames["transactions"])
    assert manifest["row_counts"]["consumers"] == 300
    assert manifest["world"] == "tiny" and manifest["seed"] == 7
    assert set(manifest["files"]) == {
        p.relative_to(tiny_ledger).as_posix() for p in tiny_ledger.rglob("*.parquet")
    }
    assert ledger.verify(tiny_ledger) == []


def test_cards_table_is_plausible(tiny_frames):
    cards = tiny_frames["cards"]
    assert 2.5 < len(cards) / 300 < 3.7  # TabFormer: 3.07 cards per user
    assert set(cards["kind"]) == {"credit", "debit", "prepaid"}

    # Luhn check of every card number.
    def luhn(number: str) -> bool:
        digits = [int(d) for d in number][::-1]
        return (
            sum(d if i % 2 == 0 else (2 * d - 9 if d > 4 else 2 * d) for i, d in enumerate(digits))
            % 10
            == 0
        )

    assert cards["card_number"].map(luhn).all()
    assert (cards.loc[cards["brand"] == "amex", "kind"] == "credit").all()


def test_merchant_rows_depend_only_on_the_ids(tiny_ledger):
    # A run passes sorted unique ids; any order, with repeats, gives the same rows.
    arrays, labels, _ = _built(load_world("tiny"))
    written = ledger.read_table(tiny_ledger, "merchants").sort_by("merchant_id")  # by block
    ids = written.column("merchant_id").to_numpy()
    expected = merchants_table(ids, arrays, labels)
    assert expected.to_pylist() == written.to_pylist()
    shuffled = np.random.default_rng(3).permutation(np.concatenate([ids, ids[:50]]))
    assert merchants_table(shuffled, arrays, labels).equals(expected)


def test_homes_follow_each_other_from_the_consumers_first_home(tiny_frames):
    homes, consumers = tiny_frames["homes"], tiny_frames["consumers"].set_index("consumer_id")
    assert set(homes["consumer_id"]) == set(consumers.index)
    assert homes["consumer_id"].is_monotonic_increasing
    first = homes.drop_duplicates("consumer_id").set_index("consumer_id")
    place = ["address", "city", "state", "zip", "lat", "lon"]
    pd.testing.assert_frame_equal(first[place], consumers.loc[first.index, place])
    assert (first["home_from"] == pd.Timestamp("2019-01-01").date()).all()
    # Each home lasts until the next begins; the last has no end.
    same = homes["consumer_id"].to_numpy()[1:] == homes["consumer_id"].to_numpy()[:-1]
    assert (homes["home_to"].to_numpy()[:-1][same] == homes["home_from"].to_numpy()[1:][same]).all()
    assert homes.drop_duplicates("consumer_id", keep="last")["home_to"].isna().all()
    assert (homes["home_to"].dropna() > homes.loc[homes["home_to"].notna(), "home_from"]).all()
    assert 0 < same.sum() < 0.2 * len(consumers)  # some consumers move within a year


def test_purchases_at_home_are_near_the_home_of_the_day(tiny_frames):
    txns, homes = tiny_frames["transactions"], tiny_frames["homes"]
    merchants = tiny_frames["merchants"].set_index("merchant_id")
    movers = homes.loc[homes["consumer_id"].duplicated(), "consumer_id"].unique()
    present = txns[
        txns["consumer_id"].isin(movers)
        & (txns["consumer_state"] == "home")
        & (txns["channel"] != "online")
        & ~txns["is_fraud"]
    ].sort_values("timestamp")
    since = pd.to_datetime(homes["home_from"]).astype(present["timestamp"].dtype)
    homes = homes.assign(home_from=since).sort_values("home_from")
    current = pd.merge_asof(
        present, homes, left_on="timestamp", right_on="home_from", by="consumer_id"
    )
    where = np.radians(merchants.loc[current["merchant_id"], ["lat", "lon"]].to_numpy())
    home = np.radians(current[["lat", "lon"]].to_numpy())
    km = reference.haversine_km(where[:, 0], where[:, 1], home[:, 0], home[:, 1])
    first = tiny_frames["consumers"].set_index("consumer_id").loc[current["consumer_id"]]
    first = np.radians(first[["lat", "lon"]].to_numpy())
    km_first = reference.haversine_km(where[:, 0], where[:, 1], first[:, 0], first[:, 1])
    moved = (current["home_from"] > pd.Timestamp("2019-01-01")).to_numpy()
    assert moved.sum() > 100
    # Shopping happens in the home city and its neighbours: near the home of the day, and,
    # after a move to another city, far from the first home.
    assert np.median(km[moved]) < 50
    assert np.median(km_first[moved]) > np.median(km[moved])


def test_declined_purchases_are_tried_again_minutes_later(tiny_frames):
    txns = tiny_frames["transactions"]
    keys = ["consumer_id", "merchant_id", "amount", "card_id"]
    declined = txns[(txns["errors"] == "Bad PIN") & ~txns["is_fraud"]].reset_index()
    later = txns[~txns["is_fraud"]].reset_index()
    pairs = declined.merge(later, on=keys, suffixes=("", "_again"))
    wait = pairs["timestamp_again"] - pairs["timestamp"]
    pairs = pairs[(wait >= pd.Timedelta(seconds=30)) & (wait < pd.Timedelta(minutes=30))]
    retried = declined["index"].isin(pairs["index"]).mean()
    # A wrong PIN is tried again on the same card with the world's retry_probability (0.55).
    n = len(declined)
    assert n > 200
    assert abs(retried - 0.55) < 4 * np.sqrt(0.25 / n)
    assert (pairs["index_again"] > pairs["index"]).all()  # the retry follows in the ledger


def test_trips_abroad_go_to_the_worlds_destination_countries(tiny_frames):
    # Card-present purchases abroad on a trip (not fraud: a fraudster may live anywhere).
    txns = tiny_frames["transactions"]
    merchants = tiny_frames["merchants"].set_index("merchant_id")
    country = merchants.loc[txns["merchant_id"], "country"].to_numpy()
    trip = (txns["consumer_state"] != "home").to_numpy() & ~txns["is_fraud"].to_numpy()
    abroad = trip & pd.notna(country) & (country != "US")
    listed = set(load_world("tiny").tables["destinations"]["country"])
    assert abroad.sum() > 50
    assert set(country[abroad]) <= listed


def test_weekend_getaways_stay_nearer_home_than_vacations(tiny_ledger):
    from cardworld.simulator.report_figures import compute_figures

    states = {s["state"]: s for s in compute_figures(tiny_ledger)["travel"]["states"]}
    assert states["getaway"]["mean_km"] < 0.5 * states["vacation"]["mean_km"]
    bands = states["getaway"]["distance_bands"]  # 150-500 km is the fourth band
    assert bands[3] > 0.3 * sum(bands)
