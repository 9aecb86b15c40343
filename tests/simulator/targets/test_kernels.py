"""Every kind of target equals the naive pandas twin, on fixed and random ledgers."""

from __future__ import annotations

import importlib.util
import itertools
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cardworld.simulator.targets import kernels as K
from cardworld.simulator.targets.compute import compute_table
from cardworld.simulator.targets.spec import AGGREGATES, Target, TargetSet

_spec = importlib.util.spec_from_file_location(
    "targets_naive", Path(__file__).with_name("naive.py")
)
naive = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(naive)

# 2024-03-31 is a Sunday and a month end: day, week and month edges all meet at its midnight.
EDGE = pd.Timestamp("2024-04-01 00:00:00")
US = 1_000_000
DAY_US = 86_400 * US
WINDOWS = ("day", "week", "month", "1h", "36h", "7d")
MCCS = (5411, 5812, 4111, 7011)
CATEGORIES = ("grocery", "dining", "travel")


def _compute(frame: pd.DataFrame, targets: TargetSet) -> np.ndarray:
    return compute_table(frame, targets, user="user", timestamp="timestamp", amount="amount")


def _assert_matches_naive(frame: pd.DataFrame, targets: TargetSet) -> None:
    got = _compute(frame, targets)
    want = naive.naive_targets(frame, targets)
    scale = 1.0 + float(np.abs(frame["amount"]).sum()) if len(frame) else 1.0
    for t, name in enumerate(targets.names):
        np.testing.assert_allclose(
            got[:, t],
            want[:, t],
            rtol=1e-9,
            atol=1e-9 * scale,
            equal_nan=True,
            err_msg=f"target {name}: {targets.targets[t]}",
        )


def _random_frame(
    rng: np.random.Generator, users: int, per_user: int, span_days: int
) -> pd.DataFrame:
    n = users * per_user
    offsets = rng.integers(-span_days * DAY_US, span_days * DAY_US, n)
    # A third of the rows sit exactly on a midnight (or 1 us before one), a tenth repeat a time.
    snap = rng.random(n) < 0.33
    offsets[snap] = (offsets[snap] // DAY_US) * DAY_US - rng.integers(0, 2, snap.sum())
    repeat = rng.random(n) < 0.1
    offsets[repeat] = offsets[rng.integers(0, n, repeat.sum())]
    return pd.DataFrame(
        {
            "user": rng.integers(0, users, n),
            "timestamp": EDGE + pd.to_timedelta(offsets, unit="us"),
            "amount": rng.choice([-20.0, 5.0, 5.0, 12.5, 40.0, 99.99, 250.0], n)
            + rng.integers(0, 3, n),
            "mcc": rng.choice(MCCS, n),
            "category": rng.choice(CATEGORIES, n),
        }
    )


def _all_kinds() -> list[Target]:
    targets = []
    filters = ({}, {"mcc": 5411}, {"mcc": (5411, 4111)}, {"category": "travel"})
    for index, (aggregate, window, direction, include) in enumerate(
        itertools.product(AGGREGATES, WINDOWS, ("past", "future"), (True, False))
    ):
        extra = dict(filters[index % len(filters)])
        if aggregate == "topk_mean":
            extra["k"] = 1 + index % 7
        targets.append(
            Target(
                f"t{index}",
                aggregate,
                window,
                direction=direction,
                include_current=include,
                **extra,
            )
        )
    return targets


def test_every_kind_of_target_matches_naive_on_a_fixed_ledger():
    frame = _random_frame(np.random.default_rng(7), users=3, per_user=120, span_days=45)
    _assert_matches_naive(frame, TargetSet(tuple(_all_kinds()), dtype="float64"))


def test_float32_output_is_the_float64_result_rounded():
    frame = _random_frame(np.random.default_rng(3), users=2, per_user=50, span_days=20)
    kinds = tuple(_all_kinds()[::7])
    wide = _compute(frame, TargetSet(kinds, dtype="float64"))
    narrow = _compute(frame, TargetSet(kinds, dtype="float32"))
    assert narrow.dtype == np.float32
    np.testing.assert_allclose(narrow, wide.astype(np.float32), rtol=1e-6, equal_nan=True)


def test_hand_computed_calendar_and_rolling_values():
    frame = pd.DataFrame(
        {
            "user": [1, 1, 1, 1],
            "timestamp": pd.to_datetime(
                [
                    "2024-03-31 23:59:59.999999",
                    "2024-04-01 00:00:00",
                    "2024-04-01 10:00",
                    "2024-04-08 00:00",
                ],
                format="ISO8601",
            ),
            "amount": [10.0, 20.0, 30.0, 40.0],
            "mcc": [5411, 5411, 5812, 5411],
            "category": ["g", "g", "d", "g"],
        }
    )
    targets = TargetSet(
        (
            Target("day_sum", "sum", "day"),
            Target("week_sum", "sum", "week"),
            Target("month_count_rest", "count", "month", direction="future"),
            Target("roll_24h_max_5411", "max", "24h", mcc=5411),
            Target("next_7d_any_d", "any", "7d", direction="future", category="d"),
        ),
        dtype="float64",
    )
    got = _compute(frame, targets)
    # Sunday 23:59:59.999999 and Monday 00:00 fall in different days, ISO weeks and months.
    np.testing.assert_array_equal(got[:, 0], [10.0, 20.0, 50.0, 40.0])
    np.testing.assert_array_equal(got[:, 1], [10.0, 20.0, 50.0, 40.0])
    np.testing.assert_array_equal(got[:, 2], [0.0, 2.0, 1.0, 0.0])
    np.testing.assert_array_equal(got[:, 3], [10.0, 20.0, 20.0, 40.0])
    # 7 days after 04-01 00:00 is 04-08 00:00, outside [t, t + 7d); "d" is only at 04-01 10:00.
    np.testing.assert_array_equal(got[:, 4], [1.0, 1.0, 0.0, 0.0])


def test_topk_ties_and_empty_windows():
    frame = pd.DataFrame(
        {
            "user": [5] * 5,
            "timestamp": pd.to_datetime(["2024-01-02 08:00"] * 5),
            "amount": [7.0, 7.0, 7.0, 3.0, 9.0],
            "mcc": [1, 1, 1, 1, 2],
            "category": ["a"] * 5,
        }
    )
    targets = TargetSet(
        (
            Target("top2", "topk_mean", "day", k=2, mcc=1),
            Target("top2_before", "topk_mean", "day", k=2, mcc=1, include_current=False, fill=-1.0),
        ),
        dtype="float64",
    )
    got = _compute(frame, targets)
    np.testing.assert_array_equal(got[:, 0], [7.0, 7.0, 7.0, 7.0, 7.0])
    np.testing.assert_array_equal(got[:, 1], [-1.0, 7.0, 7.0, 7.0, 7.0])


@pytest.mark.parametrize("trend", [-1.0, 1.0])
def test_rolling_extremes_and_topk_on_steadily_falling_and_rising_amounts(trend):
    # Falling amounts make every row that leaves a window its largest; rising, its smallest.
    n = 600
    rng = np.random.default_rng(5)
    frame = pd.DataFrame(
        {
            "user": np.zeros(n, np.int64),
            "timestamp": EDGE + pd.to_timedelta(np.cumsum(rng.integers(0, 6 * 3600, n)), unit="s"),
            "amount": 1000.0 + trend * np.arange(n) + rng.integers(0, 2, n),
            "mcc": rng.choice(MCCS, n),
            "category": rng.choice(CATEGORIES, n),
        }
    )
    targets = TargetSet(
        tuple(
            Target(
                f"{aggregate}_{window}_{direction}_{len(extra)}",
                aggregate,
                window,
                direction=direction,
                **extra,
            )
            for aggregate, extra in (
                ("max", {}),
                ("min", {"mcc": 5411}),
                ("topk_mean", {"k": 5}),
                ("topk_mean", {"k": 3, "category": "travel"}),
            )
            for window in ("36h", "7d")
            for direction in ("past", "future")
        ),
        dtype="float64",
    )
    _assert_matches_naive(frame, targets)


def test_more_filters_than_one_bit_word_holds():
    frame = _random_frame(np.random.default_rng(9), users=2, per_user=80, span_days=10)
    frame["mcc"] = np.random.default_rng(10).integers(3000, 3100, len(frame))
    targets = TargetSet(
        tuple(
            Target(f"n{code}", "count" if code % 2 else "max", "week", mcc=code)
            for code in range(3000, 3090)
        ),
        dtype="float64",
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _assert_matches_naive(frame, targets)
    # The MCCs no row has are warned about, whichever bit word holds their filter.
    absent = sorted(set(range(3000, 3090)) - set(frame["mcc"]))
    assert 0 < len(absent) < 45
    assert [str(w.message).split()[1] for w in caught] == [str(code) for code in absent]


def test_single_transaction_users_and_unsorted_input_keep_row_order():
    frame = pd.DataFrame(
        {
            "user": [9, 3, 9, 4],
            "timestamp": pd.to_datetime(["2024-05-02", "2024-05-01", "2024-05-01", "2024-05-03"]),
            "amount": [2.0, 4.0, 8.0, 16.0],
            "mcc": [1, 1, 1, 1],
            "category": ["a"] * 4,
        }
    )
    targets = TargetSet(
        (Target("so_far", "sum", "month"), Target("rest", "count", "month", direction="future"))
    )
    got = _compute(frame, targets)
    np.testing.assert_array_equal(got[:, 0], [10.0, 4.0, 8.0, 16.0])
    np.testing.assert_array_equal(got[:, 1], [0.0, 0.0, 1.0, 0.0])


_instants = st.one_of(
    st.integers(-40 * DAY_US, 40 * DAY_US),
    st.integers(-40, 40).flatmap(
        lambda d: st.sampled_from([d * DAY_US, d * DAY_US - 1, d * DAY_US + 1])
    ),
)
_rows = st.tuples(
    st.integers(0, 3),
    _instants,
    st.sampled_from([-5.0, 0.0, 1.0, 1.0, 2.5, 3.0, 100.0]),
    st.sampled_from(MCCS),
    st.sampled_from(CATEGORIES),
)


@st.composite
def _targets(draw) -> TargetSet:
    chosen = []
    for index in range(draw(st.integers(1, 4))):
        aggregate = draw(st.sampled_from(AGGREGATES))
        extra = draw(
            st.sampled_from(
                [
                    {},
                    {"mcc": 5411},
                    {"mcc": (5812, 4111)},
                    {"category": "travel"},
                    {"category": ("dining", "grocery")},
                ]
            )
        )
        if aggregate == "topk_mean":
            extra = {**extra, "k": draw(st.integers(1, 7))}
        chosen.append(
            Target(
                f"t{index}",
                aggregate,
                draw(st.sampled_from(WINDOWS + ("2h", "3d", "40d"))),
                direction=draw(st.sampled_from(("past", "future"))),
                include_current=draw(st.booleans()),
                **extra,
            )
        )
    return TargetSet(tuple(chosen), dtype="float64")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(_rows, min_size=0, max_size=40), targets=_targets())
@pytest.mark.filterwarnings("ignore:category .* does not occur")
@pytest.mark.filterwarnings("ignore:(none of the )?MCCs? .* occur")
def test_random_ledgers_match_naive(rows, targets):
    frame = pd.DataFrame(rows, columns=["user", "offset", "amount", "mcc", "category"])
    frame = frame.astype(
        {"user": np.int64, "offset": np.int64, "amount": np.float64, "mcc": np.int64}
    )
    frame["timestamp"] = EDGE + pd.to_timedelta(frame["offset"].astype(np.int64), unit="us")
    _assert_matches_naive(frame.drop(columns="offset"), targets)


@pytest.mark.parametrize("unit", ["day", "week", "month"])
def test_calendar_buckets_match_pandas_periods_over_centuries(unit):
    rng = np.random.default_rng(11)
    # Pre-1970 and far-future times check the floor divisions and the civil-calendar month.
    offsets = np.sort(rng.integers(-80 * 365 * DAY_US, 200 * 365 * DAY_US, 400))
    frame = pd.DataFrame(
        {
            "user": np.zeros(400, np.int64),
            "timestamp": pd.Timestamp("1970-01-01") + pd.to_timedelta(offsets, unit="us"),
            "amount": np.ones(400),
        }
    )
    got = _compute(frame, TargetSet((Target("n", "count", unit),), dtype="float64"))[:, 0]
    periods = frame["timestamp"].dt.to_period({"day": "D", "week": "W-SUN", "month": "M"}[unit])
    want = periods.groupby(periods).cumcount().to_numpy() + 1.0
    np.testing.assert_array_equal(got, want)


def test_min_and_max_keep_the_sign_of_a_zero_amount():
    frame = pd.DataFrame(
        {
            "user": [1, 1, 2, 2],
            "timestamp": pd.to_datetime(
                ["2024-01-01 10:00", "2024-01-01 11:00", "2024-01-01 10:00", "2024-01-01 11:00"]
            ),
            "amount": [0.0, 5.0, -0.0, -5.0],
        }
    )
    targets = TargetSet(
        tuple(
            Target(f"{aggregate}_{window}", aggregate, window)
            for aggregate in ("min", "max")
            for window in ("day", "2h")
        ),
        dtype="float64",
    )
    got = _compute(frame, targets)
    # Min of user 1 is +0.0 on both rows; max of user 2 is -0.0 on both rows.
    assert not np.signbit(got[:2, :2]).any()
    assert np.signbit(got[2:, 2:]).all()


def test_rolling_topk_lists_beyond_the_scratch_grow_it():
    # User 1's rising amounts change its running top k at every row: more lists than the
    # scratch starts with (LIST_ROWS); users 0 and 2 come before and after it in the run.
    rng = np.random.default_rng(12)
    sizes = (50, K.LIST_ROWS + 500, 60)
    amounts = rng.normal(50.0, 20.0, sum(sizes)).round(2)
    amounts[50 : 50 + sizes[1]] = np.sort(amounts[50 : 50 + sizes[1]])
    frame = pd.DataFrame(
        {
            "user": np.repeat(np.arange(3), sizes),
            "timestamp": EDGE
            + pd.to_timedelta(
                np.concatenate([np.sort(rng.integers(0, 3 * DAY_US, m)) for m in sizes]), unit="us"
            ),
            "amount": amounts,
            "mcc": rng.choice(MCCS, sum(sizes)),
            "category": rng.choice(CATEGORIES, sum(sizes)),
        }
    )
    targets = TargetSet(
        (
            Target("top3", "topk_mean", "2d", k=3),
            Target("top2_next", "topk_mean", "2d", k=2, direction="future", mcc=5411),
            Target("top5_36h", "topk_mean", "36h", k=5, include_current=False),
        ),
        dtype="float64",
    )
    _assert_matches_naive(frame, targets)


def test_rolling_windows_before_1970_and_across_block_edges():
    # Rolling min, max and top-k cut time into blocks of the window's length from the
    # epoch: times before it, and windows of lengths that do not divide a day.
    rng = np.random.default_rng(5)
    offsets = np.sort(rng.integers(-3 * DAY_US, 2 * DAY_US, 300))
    frame = pd.DataFrame(
        {
            "user": np.zeros(300, np.int64),
            "timestamp": pd.Timestamp("1970-01-01") + pd.to_timedelta(offsets, unit="us"),
            "amount": rng.choice([-3.0, 1.0, 7.5, 20.0, 55.0], 300) + rng.integers(0, 4, 300),
        }
    )
    targets = TargetSet(
        tuple(
            Target(
                f"{aggregate}_{window}_{direction}_{include}",
                aggregate,
                window,
                direction=direction,
                include_current=include,
                **({"k": 3} if aggregate == "topk_mean" else {}),
            )
            for aggregate in ("min", "max", "topk_mean")
            for window in ("7h", "36h")
            for direction in ("past", "future")
            for include in (True, False)
        ),
        dtype="float64",
    )
    _assert_matches_naive(frame, targets)


@settings(max_examples=300, deadline=None)
@given(
    times=st.lists(st.integers(0, 60), min_size=1, max_size=48),
    length=st.integers(1, 40),
)
def test_rolling_edges_match_a_sorted_search(times, length):
    # One merge fills the past and the future edges of every row, in four lanes side by side:
    # many equal times put lane boundaries on runs of ties.
    ts = np.sort(np.array(times, dtype=np.int64))
    n = ts.size
    past = np.full(n, -1, np.int32)
    future = np.full(n, -1, np.int32)
    K._fill_rolling(ts, length, past, future)
    np.testing.assert_array_equal(past, np.searchsorted(ts, ts - length, side="right"))
    np.testing.assert_array_equal(future, np.searchsorted(ts, ts + length, side="left"))
