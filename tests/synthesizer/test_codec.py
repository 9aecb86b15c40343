"""Codec round-trips: every column kind encodes to tokens and decodes back to the same values."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from cardworld.synthesizer.codec import categorical, numeric
from cardworld.synthesizer.codec import datetime as datetime_codec
from cardworld.synthesizer.codec.table import TableCodec, sort_table
from cardworld.synthesizer.schema import infer_schema, looks_like_datetime

RNG = np.random.default_rng(0)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.none(), st.sampled_from(["x", "y", "zz", "w w"])), min_size=1))
def test_categorical_round_trip(values: list) -> None:
    s = pd.Series(values, dtype=object)
    stats = categorical.analyze(s, rare_threshold=1)
    back = categorical.decode(categorical.encode(s, stats), stats)
    assert back.tolist() == s.tolist()


def test_categorical_rare_values_are_grouped_and_blocked() -> None:
    s = pd.Series(["a"] * 10 + ["b"] * 10 + ["secret"])
    stats = categorical.analyze(s, rare_threshold=5, rare_values="drop")
    assert "secret" not in stats["categories"]
    codes = categorical.encode(s, stats)["cat"]
    rare = len(stats["categories"]) + 1
    assert codes[-1] == rare
    assert rare in categorical.blocked(stats)["cat"]


def test_categorical_rare_values_sample_as_new_placeholders() -> None:
    # The rare token may be sampled in a text column; each sampled one decodes to a new
    # value, never a training value. Numbers, and columns without kept categories, drop it.
    s = pd.Series(["a"] * 10 + ["b"] * 10 + ["secret", "other"])
    stats = categorical.analyze(s, rare_threshold=5)
    rare = len(stats["categories"]) + 1
    assert rare not in categorical.blocked(stats)["cat"]
    codes = np.array([0, rare, 1, rare, rare])
    back = categorical.decode({"cat": codes}, stats)
    assert back.tolist() == ["a", "<rare 1>", "b", "<rare 2>", "<rare 3>"]
    numbers = categorical.analyze(pd.Series([5411] * 10 + [7995]), rare_threshold=5)
    assert not numbers["rare_placeholders"] and 2 in categorical.blocked(numbers)["cat"]
    common = categorical.analyze(pd.Series(["a"] * 10), rare_threshold=5)
    assert not common["rare_placeholders"]  # nothing rare to stand in for


def test_rare_placeholders_recur_within_groups_as_rare_values_did() -> None:
    # Group 0: rare x, x, y (after a rare row: x repeats, y does not); group 1: z, w (w does
    # not); group 2: q alone (follows no rare row). a is kept.
    values = pd.Series(["a"] * 5 + ["x", "a", "x", "y", "z", "w", "q"])
    group = np.array([0] * 5 + [0, 0, 0, 0, 1, 1, 2])
    stats = categorical.analyze(values, rare_threshold=5, group=group)
    assert stats["categories"] == ["a"] and stats["rare_repeat"] == round(1 / 3, 4)
    assert stats["rare_most"] == 2  # x's two rows
    # Sampled: the statistic comes back, within a group only, and never a training value.
    rare = len(stats["categories"]) + 1
    groups = np.repeat(np.arange(400), 6)
    codes = np.where(np.random.default_rng(1).random(len(groups)) < 0.5, rare, 0)
    for repeat in (0.0, 0.3, 0.8):
        back = categorical.decode(
            {"cat": codes},
            {**stats, "rare_repeat": repeat, "rare_most": 100},
            groups,
            np.random.default_rng(2),
        )
        placeholders = back[codes == rare]
        assert placeholders.str.fullmatch(r"<rare \d+>").all()
        numbers = sorted({int(v[6:-1]) for v in placeholders})
        assert numbers == list(range(1, len(numbers) + 1))
        assert (
            pd.Series(groups[codes == rare]).groupby(placeholders.to_numpy()).nunique() == 1
        ).all()
        again = categorical._rare_repeat(back, groups, kept={"a"})
        assert abs(again - repeat) < 0.05, (repeat, again)
    # No value gets more rows than the most a rare training value had.
    capped = categorical.decode(
        {"cat": codes}, {**stats, "rare_repeat": 0.8}, groups, np.random.default_rng(2)
    )
    assert capped[codes == rare].value_counts().max() == 2
    # Without groups (or a model saved without rare_repeat): a new one per row.
    plain = categorical.decode({"cat": codes[:6]}, stats)
    assert plain[codes[:6] == rare].is_unique


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.integers(-100_000, 100_000).map(lambda c: c / 100),  # amounts in cents
            st.none(),
        ),
        min_size=1,
        max_size=400,
    )
)
def test_numeric_round_trip_cents(values: list) -> None:
    s = pd.Series(values, dtype=float)
    stats = numeric.analyze(s, n_bins=16, n_sub=64)
    exact = all(e is None or len(e) <= 64 for e in stats["exact"])
    back = numeric.decode(numeric.encode(s, stats), stats, RNG)
    if exact:
        assert np.allclose(back.to_numpy(dtype=float), s.to_numpy(), equal_nan=True)
    else:  # within-bin sub-intervals: close, never outside the bin
        width = np.diff(stats["edges"]).max() / 64
        assert np.nanmax(np.abs(back.to_numpy(dtype=float) - s.to_numpy())) <= width + 0.01


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(-(10**9), 10**9), min_size=1, max_size=300))
def test_numeric_round_trip_integers(values: list) -> None:
    s = pd.Series(values, dtype=np.int64)
    stats = numeric.analyze(s, n_bins=64, n_sub=64)
    back = numeric.decode(numeric.encode(s, stats), stats, RNG)
    assert back.dtype == np.int64
    assert back.tolist() == values


def test_numeric_many_distinct_values_stay_inside_their_bin() -> None:
    x = pd.Series(np.random.default_rng(1).lognormal(3, 1, 5000).round(2))
    stats = numeric.analyze(x, n_bins=8, n_sub=8)
    codes = numeric.encode(x, stats)
    back = numeric.decode(codes, stats, RNG).to_numpy()
    edges = np.asarray(stats["edges"])
    assert np.all(back >= edges[codes["bin"]]) and np.all(back <= edges[codes["bin"] + 1])


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.lists(st.integers(0, 10 * 86400), min_size=1, max_size=20),  # gaps in seconds
        min_size=1,
        max_size=8,
    )
)
def test_event_datetime_round_trip(groups: list) -> None:
    times, first = [], []
    for gaps in groups:
        t = pd.Timestamp("2024-02-27 13:00:05")
        for i, gap in enumerate(gaps):
            t = t + pd.Timedelta(seconds=gap)
            times.append(t)
            first.append(i == 0)
    s, first = pd.Series(times), np.array(first)
    stats = datetime_codec.analyze(s, first, n_bins=64, n_sub=64)
    back = datetime_codec.decode(datetime_codec.encode(s, first, stats), first, stats, RNG)
    assert (back.to_numpy() == s.to_numpy()).all()


def test_static_datetime_round_trip() -> None:
    s = pd.Series(pd.to_datetime(["1960-05-01", "1990-12-31", None, "2001-01-01"]))
    stats = datetime_codec.analyze_static(s)
    back = datetime_codec.decode_static(datetime_codec.encode_static(s, stats), stats, RNG)
    assert back.isna().tolist() == s.isna().tolist()
    assert (back.dropna().to_numpy() == s.dropna().to_numpy()).all()


def test_table_round_trip(table: pd.DataFrame) -> None:
    schema = infer_schema(table, group_by="acct_id", order_by="txn_index")
    df = sort_table(table, schema)
    codec = TableCodec.analyze(df, schema, rare_threshold=1)
    enc = codec.encode(df)
    assert enc.events.shape == (len(df), codec.event_width)
    assert enc.prefix.shape == (df["acct_id"].nunique(), codec.n_static)
    mask = codec.allowed_mask()
    field, _ = codec.position_fields(codec.n_static + 1 + codec.event_width)
    # Every encoded token is allowed at its position: the sampling masks admit the real data.
    ev_fields = field[codec.n_static + 1 :]
    assert all(mask[f, enc.events[:, j]].all() for j, f in enumerate(ev_fields))
    back = codec.decode(TableCodec.from_json(codec.to_json()).encode(df), RNG)
    for col in ("state", "timestamp", "merchant_cat", "txn_amount"):
        assert back[col].tolist() == df[col].tolist(), col


def test_static_values_count_their_groups_not_their_rows():
    # One consumer's street and income on each of their 50 rows are still one consumer's;
    # a merchant one consumer visits 50 times is an event value, kept by its rows.
    rows = [(1, "Elm St", 51_234.0, "Corner Deli")] * 49 + [(1, "Elm St", 51_234.0, "Big Mart")]
    rows += [
        (g, "Main St", 40_000.0 + g, shop) for g in range(2, 7) for shop in ("Big Mart", "Gas")
    ]
    df = pd.DataFrame(rows, columns=["acct", "district", "income", "merchant"])
    schema = infer_schema(df, group_by="acct")
    assert schema.column("district").role == "static" == schema.column("income").role
    assert schema.column("merchant").role == "event"
    codec = TableCodec.analyze(df, schema, rare_threshold=5)
    assert codec.stats["district"]["categories"] == ["Main St"]
    assert "Corner Deli" in codec.stats["merchant"]["categories"]
    income = codec.stats["income"]
    assert len(income["edges"]) - 1 == 1 and income["exact"] == [None]  # 6 groups: one bin
    # Every category rare and no nulls: text comes out as placeholders (a column of towns
    # each one consumer's), other values as null rather than from an empty choice.
    towns = categorical.analyze(pd.Series(["Elm St", "Oak Ave"]), rare_threshold=2)
    assert towns["categories"] == [] and categorical.blocked(towns) == {"cat": [0]}
    codes = categorical.encode(pd.Series(["Elm St", "Oak Ave"]), towns)
    assert categorical.decode(codes, towns).tolist() == ["<rare 1>", "<rare 2>"]
    years = categorical.analyze(pd.Series([1999, 2004]), rare_threshold=2)
    assert years["categories"] == [] and categorical.blocked(years) == {"cat": [1]}


def test_numeric_values_of_few_groups_are_not_kept_exactly():
    # A value per group (an income): exact only when 5 groups hold it, a bin per 5 groups.
    incomes = pd.Series([52_000.0] * 6 + list(np.random.default_rng(0).lognormal(11, 0.5, 34)))
    static = numeric.analyze(incomes, n_bins=64, n_sub=64, rare_threshold=5, per_group=True)
    assert len(static["edges"]) - 1 <= 8
    listed = [v for exact in static["exact"] if exact for v in exact]
    assert set(listed) <= {52_000.0}
    # rare_threshold 1 (the default, for event columns) keeps the exact round trip.
    values = pd.Series([12.99] * 10 + [7.5] * 30 + [3.25] * 10)
    plain = numeric.analyze(values, n_bins=64, n_sub=64)
    assert sorted(v for exact in plain["exact"] if exact for v in exact) == [3.25, 7.5, 12.99]


def test_python_dates_are_static_datetimes_sampled_as_dates():
    births = pd.Series([dt.date(1950 + i, 1 + i % 12, 1 + i % 28) for i in range(40)])
    assert looks_like_datetime(births)
    stats = datetime_codec.analyze_static(births, rare_threshold=5)
    back = datetime_codec.decode_static(datetime_codec.encode_static(births, stats), stats, RNG)
    assert all(type(v) is dt.date for v in back)
    assert min(back) >= min(births) and max(back) <= max(births)


def test_events_sampled_out_of_time_order_within_a_day_change_places():
    # Sampled events come back in time order: two events of one day whose times came out
    # reversed swap places, each keeping its own time and category, and no day moves.
    df = pd.DataFrame(
        {
            "acct_id": ["a"] * 4 + ["b"] * 2,
            "txn_index": [1, 2, 3, 4, 1, 2],
            "timestamp": pd.to_datetime(
                [
                    "2025-01-01 10:00",
                    "2025-01-01 15:00",
                    "2025-01-03 09:00",
                    "2025-01-03 20:00",
                    "2025-01-02 08:00",
                    "2025-01-05 08:30",
                ]
            ),
            "merchant_cat": ["grocery", "dining", "fuel", "travel", "grocery", "fuel"],
        }
    )
    schema = infer_schema(df, group_by="acct_id", order_by="txn_index")
    codec = TableCodec.analyze(df, schema, rare_threshold=1)
    enc = codec.encode(sort_table(df, schema))
    # As a model might sample group a: the day's second event first (both at day gap 0).
    enc.events[[0, 1]] = enc.events[[1, 0]]
    back = codec.decode(enc, RNG)
    assert back["timestamp"].tolist() == df["timestamp"].tolist()
    assert back["merchant_cat"].tolist() == df["merchant_cat"].tolist()


def _one_day(times: list[str], cats: list[str], tz: str | None = None) -> pd.DataFrame:
    stamps = pd.to_datetime(times)
    if tz:
        stamps = stamps.tz_localize(tz, ambiguous=[t.endswith("01:30") for t in times])
    return pd.DataFrame(
        {
            "acct_id": ["a"] * len(times),
            "txn_index": range(1, len(times) + 1),
            "timestamp": stamps,
            "merchant_cat": cats,
        }
    )


def test_a_continued_history_keeps_its_rows_and_its_events_come_after_them():
    # Group a's first two rows were given (a history); the model then sampled two events
    # of the same day at earlier times. The history keeps its rows; the sampled events come
    # after it, at its last time rather than before it.
    fitted = _one_day(["2025-01-01 06:00", "2025-01-01 10:00", "2025-01-01 15:00"], list("XYZ"))
    schema = infer_schema(fitted, group_by="acct_id", order_by="txn_index")
    codec = TableCodec.analyze(fitted, schema, rare_threshold=1)
    stream = _one_day(
        ["2025-01-01 10:00", "2025-01-01 15:00", "2025-01-01 06:00", "2025-01-01 10:00"],
        list("YZXY"),
    )
    enc = codec.encode(stream)
    continued = codec.decode(enc, RNG, given=np.array([2]))
    assert continued["merchant_cat"].tolist() == list("YZXY")
    times = continued["timestamp"].dt.strftime("%H:%M").tolist()
    assert times == ["10:00", "15:00", "15:00", "15:00"]
    fresh = codec.decode(enc, RNG)  # all four sampled: time order
    assert fresh["merchant_cat"].tolist() == list("XYYZ")


def test_a_time_that_does_not_exist_in_its_zone_keeps_its_place():
    # 01:30 on 2020-11-01 happens twice in New York: sampled, it is NaT, and stays in place.
    df = _one_day(
        ["2020-10-31 23:00", "2020-11-01 01:30", "2020-11-01 03:00", "2020-11-01 08:00"],
        list("WXYZ"),
        tz="America/New_York",
    )
    schema = infer_schema(df, group_by="acct_id", order_by="txn_index")
    codec = TableCodec.analyze(df, schema, rare_threshold=1)
    back = codec.decode(codec.encode(df), RNG)
    assert back["merchant_cat"].tolist() == list("WXYZ")
    assert back["timestamp"].isna().tolist() == [False, True, False, False]
