"""Pieces of the purchase kernel, the timeline and the naming code against simple references."""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from cardworld.simulator import rng, timeline
from cardworld.simulator.kernels import fraud as kf
from cardworld.simulator.kernels import purchases as k
from cardworld.simulator.kernels import travel
from cardworld.simulator.kernels.idset import IdSet
from cardworld.simulator.names import company_names, person_names, street_addresses
from cardworld.simulator.population import _birthday
from cardworld.simulator.run import _built
from cardworld.simulator.world_arrays import _calendar
from cardworld.worlds import reference
from cardworld.worlds.load import load_world


def test_rows_after_a_block_decline_or_move_to_the_new_card_once_it_opens():
    day = 86_400
    cid, blocked_at, opens, end = 7, 10 * day + 3600, 13 * day, 30 * day
    # card slot 0 is blocked; its replacement is card 7 * 100 + 1, open from day 13.
    rows = np.zeros((k.N_COLUMNS, 6), np.int64)
    times = [9 * day, 11 * day + 500, 12 * day + 7200, 14 * day, 29 * day + 80_000, 12 * day]
    cents = [1000, 1000, -400, 1000, -400, 1000]
    rows[k.C_TIME], rows[k.C_CENTS] = times, cents
    rows[k.C_CARD] = cid * 100
    rows[k.C_FRAUD, 5] = 1  # a random-fraud attempt after the block
    replacement, replacement_open = np.array([cid * 100 + 1]), np.array([opens])
    moved = kf._block_rows(
        rows, 0, 6, cid, 0, np.array([blocked_at]), replacement, replacement_open, end
    )
    assert moved
    # Before the block: untouched. Between block and new card: a purchase declines, a credit
    # waits for the new card (same time of day). After: the new card. A credit that would
    # post after the world's end, and fraud, decline.
    assert rows[k.C_CARD].tolist() == [700, 700, 701, 701, 701, 700]
    assert rows[k.C_TIME].tolist() == [*times[:2], opens + 7200, *times[3:]]
    blocked = k.CARD_BLOCKED
    assert rows[k.C_ERROR].tolist() == [0, blocked, 0, 0, 0, blocked]
    # A credit after the block, when the new card opens only after the world's end: declined.
    rows[k.C_TIME, 4], rows[k.C_CARD, 4] = 12 * day, cid * 100
    late = np.array([end])
    assert not kf._block_rows(rows, 4, 5, cid, 0, np.array([blocked_at]), replacement, late, end)
    assert rows[k.C_CARD, 4] == 700 and rows[k.C_ERROR, 4] == blocked
    assert rows[k.C_TIME, 4] == 12 * day


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(0, 40), min_size=0, max_size=300),
    st.integers(0, 5),
    st.booleans(),
)
def test_sort_rows_is_a_stable_sort_by_time(times, start, shuffled):
    # Nearly sorted rows take the insertion sort, shuffled ones the merge sort fallback.
    times = np.array(sorted(times) if not shuffled else times, dtype=np.int64)
    if not shuffled and len(times) > 2:
        times[::7] += 3  # a few rows out of place, as a day's hours and refunds are
    m = len(times)
    buf = np.full((k.N_COLUMNS, start + m + 2), -7, dtype=np.int64)
    buf[k.C_TIME, start : start + m] = times
    buf[k.C_CARD, start : start + m] = np.arange(m)  # emission order, to check stability
    k.sort_rows(buf, start, start + m)
    order = np.argsort(times, kind="stable")
    assert (buf[k.C_TIME, start : start + m] == times[order]).all()
    assert (buf[k.C_CARD, start : start + m] == order).all()
    assert (buf[k.C_SEQ, start : start + m] == np.arange(m)).all()
    assert (buf[:, :start] == -7).all() and (buf[:, start + m :] == -7).all()


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.lists(st.integers(0, 9), max_size=12), st.lists(st.integers(0, 9), max_size=4)
        ),
        min_size=1,
        max_size=12,
    ),
    st.integers(0, 3),
)
def test_fraud_rows_merge_in_place_as_a_stable_sort_of_fraud_then_own_rows(consumers, room):
    # consumers: per consumer, its own rows' times and its fraudster rows' times.
    own = [np.sort(np.array(times, np.int64)) for times, _ in consumers]
    fraud = [np.sort(np.array(times, np.int64), kind="stable") for _, times in consumers]
    n, extra = sum(map(len, own)), sum(map(len, fraud))
    rows = np.full((k.N_COLUMNS, n + extra + room), -7, np.int64)
    out = np.full((k.N_COLUMNS, extra + room), -9, np.int64)
    row_start = np.cumsum([0] + [len(t) for t in own])
    out_start = np.cumsum([0] + [len(t) for t in fraud])
    for i in range(len(consumers)):
        a, b = row_start[i], row_start[i + 1]
        rows[k.C_TIME, a:b], rows[k.C_CARD, a:b] = own[i], np.arange(b - a)  # who is who
        rows[k.C_SEQ, a:b] = np.arange(b - a)
        x, y = out_start[i], out_start[i + 1]
        out[k.C_TIME, x:y], out[k.C_CARD, x:y] = fraud[i], 100 + np.arange(y - x)
    kf._merge_fraud_rows(rows, row_start[:-1], row_start[1:], out, out_start)
    at = 0
    for i in range(len(consumers)):
        times = np.concatenate([fraud[i], own[i]])
        who = np.concatenate([100 + np.arange(len(fraud[i])), np.arange(len(own[i]))])
        order = np.argsort(times, kind="stable")
        m = len(times)
        assert (rows[k.C_TIME, at : at + m] == times[order]).all()
        assert (rows[k.C_CARD, at : at + m] == who[order]).all()
        assert (rows[k.C_SEQ, at : at + m] == np.arange(m)).all()
        at += m
    assert (rows[:, at:] == -7).all()


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(-5, 5), min_size=0, max_size=200), st.booleans())
def test_stable_order_is_numpys_stable_argsort(keys, column):
    keys = np.array(keys, dtype=np.int64)
    # A column of a matrix (strided), as the fraud kernel sorts, or a contiguous array.
    given = np.stack([keys, -keys], axis=1)[:, 0] if column else keys
    np.testing.assert_array_equal(k.stable_order(given), np.argsort(keys, kind="stable"))


def test_calendar_matches_python_dates():
    first, last = dt.date(1999, 12, 25), dt.date(2001, 3, 2)
    epoch = dt.date(1970, 1, 1)
    start, end = (first - epoch).days, (last - epoch).days
    table = _calendar(start, end, first_year=2000, n_years=5)
    for row, day in zip(table, range(start, end + 1), strict=True):
        date = epoch + dt.timedelta(days=day)
        assert tuple(row) == (date.weekday(), date.month - 1, date.day, max(date.year - 2000, 0))


def test_person_names_follow_faker_lists_and_frequencies():
    from faker.providers.person.en_US import Provider as Person

    u = np.random.default_rng(1).random((20_000, 2))
    female = np.arange(20_000) % 2 == 0
    first, last = (a.to_numpy(zero_copy_only=False) for a in person_names(u, female))
    assert set(first[female]) <= set(Person.first_names_female)
    assert set(first[~female]) <= set(Person.first_names_male)
    assert set(last) <= set(Person.last_names)
    weights = np.array(list(Person.last_names.values()))
    top = list(Person.last_names)[int(np.argmax(weights))]
    expected = weights.max() / weights.sum()
    seen = (last == top).mean()
    assert abs(seen - expected) < 4 * np.sqrt(expected / len(last)), (top, seen, expected)


def test_street_addresses_and_company_names_have_their_shapes():
    u = np.random.default_rng(2).random((2_000, 6))
    streets = street_addresses(u).to_pylist()
    assert all(re.fullmatch(r"\d{3,4} [A-Za-z' -]+ [A-Za-z]+( Apt\. \d{3})?", s) for s in streets)
    apartments = np.mean(["Apt." in s for s in streets])
    assert 0.2 < apartments < 0.3
    web = np.arange(2_000) % 3 == 0
    names = company_names(u[:, :4], web).to_pylist()
    assert all(re.fullmatch(r"[a-z'-]+\.[a-z]+", n) for n, w in zip(names, web, strict=True) if w)
    assert all(" " in n or "-" in n for n, w in zip(names, web, strict=True) if not w)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from([0.0, 0.001, 0.5, 1.0, 3.0, 1e-9]), min_size=1, max_size=120),
    st.integers(1, 70),
    st.lists(st.floats(0.0, 1.0, exclude_max=True), min_size=1, max_size=20),
)
def test_guided_pick_finds_what_bisection_finds(weights, size, uniforms):
    weights[-1] = max(weights[-1], 0.25)  # a positive total
    cumulative = np.cumsum(np.array(weights))
    guide = np.empty(size, dtype=np.int64)
    rng.fill_guide(cumulative, 0, len(cumulative), guide)
    # A wrong guide only costs steps: the answer is exact whatever the entries.
    scrambled = np.random.default_rng(size).integers(0, len(cumulative), size)
    for u in [*uniforms, 0.0, np.nextafter(1.0, 0.0)]:
        target = u * cumulative[-1]
        expected = rng.bisect_right(cumulative, 0, len(cumulative), target)
        assert rng.guided_pick(cumulative, 0, len(cumulative), guide, u) == expected
        assert rng.guided_pick(cumulative, 0, len(cumulative), scrambled, u) == expected


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from([0.0, 0.001, 0.5, 1.0, 3.0]), min_size=1, max_size=70),
    st.data(),
)
def test_bisect_right_is_numpys_searchsorted_within_a_segment(weights, data):
    cumulative = np.cumsum(np.array(weights))
    lo = data.draw(st.integers(0, len(cumulative) - 1))
    hi = data.draw(st.integers(lo + 1, len(cumulative)))
    candidates = [*cumulative[lo:hi], -1.0, 0.0, cumulative[hi - 1] + 1.0, 0.7, 2.5]
    for target in candidates + [data.draw(st.floats(-1.0, 300.0)) for _ in range(5)]:
        expected = lo + int(np.searchsorted(cumulative[lo:hi], target, side="right"))
        assert rng.bisect_right(cumulative, lo, hi, target) == min(expected, hi - 1)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from([0.0, 0.001, 0.5, 1.0, 3.0, 1e-9]), min_size=1, max_size=120),
    st.integers(1, 70),
    st.integers(0, 2**32),
)
def test_guided_pick_of_a_stream_draw_is_bisection_of_the_same_draw(weights, size, key):
    weights[-1] = max(weights[-1], 0.25)  # a positive total
    cumulative = np.cumsum(np.array(weights))
    guide = np.empty(size, dtype=np.int64)
    rng.fill_guide(cumulative, 0, len(cumulative), guide)
    drawn, reference = rng.stream(1, key, rng.PURCHASES), rng.stream(1, key, rng.PURCHASES)
    for _ in range(30):
        target = rng.uniform(reference) * cumulative[-1]
        expected = rng.bisect_right(cumulative, 0, len(cumulative), target)
        pick = rng.guided_pick(cumulative, 0, len(cumulative), guide, rng.uniform(drawn))
        assert pick == expected


def test_timeline_draws_are_the_stream_draws_of_rng():
    # The timeline reads its stream 64 draws at a time in Python; the numbers must be what
    # the kernels' rng functions draw from the same stream, across chunk boundaries.
    draws = timeline._Draws(7, 123)
    stream = rng.stream(7, 123, rng.TIMELINE)
    cumulative = np.cumsum(np.arange(1.0, 40.0))
    for _ in range(100):
        assert draws.uniform() == rng.uniform(stream)
        assert draws.exponential(3.5) == rng.exponential(stream, 3.5)
        assert draws.choose(cumulative.tolist()) == rng.choose(stream, cumulative)
    assert draws.drawn > 4 * timeline._Draws.CHUNK


def test_distance_between_cities_is_the_haversine_distance():
    arrays = _built(load_world("tiny"))[0]
    lat, lon = arrays.city_lat, arrays.city_lon
    a, b = np.random.default_rng(5).integers(0, len(lat), (2, 2000))
    got = [travel.distance_km(lat[i], lon[i], lat[j], lon[j]) for i, j in zip(a, b, strict=True)]
    np.testing.assert_allclose(
        got, reference.haversine_km(lat[a], lon[a], lat[b], lon[b]), rtol=1e-14, atol=1e-9
    )
    assert max(got) > 1000.0


def _reference_destination(arrays, consumer, ordinal, home, odds, scale, min_km):
    """A trip's destination by the rule travel.trip_destinations documents, step by step."""
    st = rng.stream(arrays.seed, consumer, rng.DESTINATIONS, ordinal)
    n_us = len(arrays.home_city_cum)
    if len(arrays.trip_city_cum) and rng.uniform(st) < odds / (1 + odds):
        return n_us + rng.choose(st, arrays.trip_city_cum)
    lat, lon = arrays.city_lat, arrays.city_lon
    drawn = []
    for _ in range(travel.DESTINATION_DRAWS):
        city = rng.choose(st, arrays.home_city_cum)
        km = reference.haversine_km(lat[home], lon[home], lat[city], lon[city])
        drawn.append(city)
        if km >= min_km and (scale <= 0 or rng.uniform(st) < np.exp((min_km - km) / scale)):
            return city
    far = [
        c for c in drawn if reference.haversine_km(lat[home], lon[home], lat[c], lon[c]) >= min_km
    ]
    if not far:
        return drawn[-1]
    return min(far, key=lambda c: reference.haversine_km(lat[home], lon[home], lat[c], lon[c]))


def test_trip_destinations_follow_their_rule_trip_by_trip():
    arrays = _built(load_world("tiny"))[0]
    g = np.random.default_rng(11)
    n = 400
    consumer = g.integers(0, 10**6, n)
    ordinal = g.integers(0, 50, n)
    home = g.integers(0, len(arrays.home_city_cum), n)
    odds = g.choice([0.0, 0.05, 1.0, 50.0], n)
    scale = g.choice([0.0, 100.0, 250.0, 2000.0], n)
    got = travel.trip_destinations(
        arrays.seed, consumer, ordinal, home, odds, scale, 150.0, arrays.home_city_cum,
        arrays.trip_city_cum, arrays.city_lat, arrays.city_lon,
    )  # fmt: skip
    expected = [
        _reference_destination(arrays, *args, 150.0)
        for args in zip(consumer, ordinal, home, odds, scale, strict=True)
    ]
    assert got.tolist() == expected
    abroad = got >= len(arrays.home_city_cum)
    assert abroad[odds == 50.0].mean() > 0.9 and not abroad[odds == 0.0].any()
    # A trip's destination is its own: the same trip drawn alone goes to the same place.
    alone = travel.trip_destinations(
        arrays.seed, consumer[7:8], ordinal[7:8], home[7:8], odds[7:8], scale[7:8], 150.0,
        arrays.home_city_cum, arrays.trip_city_cum, arrays.city_lat, arrays.city_lon,
    )  # fmt: skip
    assert alone[0] == got[7]


@settings(max_examples=300, deadline=None)
@given(st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2080, 12, 31)))
def test_an_18th_birthday_is_the_calendar_one(born):
    day = (born - dt.date(1970, 1, 1)).days
    try:
        expected = born.replace(year=born.year + 18)
    except ValueError:  # 29 February: 1 March in a common year
        expected = dt.date(born.year + 18, 3, 1)
    got = _birthday(np.array([day], np.int64), 18)[0]
    assert dt.date(1970, 1, 1) + dt.timedelta(days=int(got)) == expected


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.lists(st.integers(-(2**63) + 1, 2**63 - 1), unique=True, max_size=300), max_size=8),
    st.integers(1, 64),
)
def test_an_id_set_says_which_ids_of_each_batch_are_new_as_a_python_set_does(batches, capacity):
    ids, seen = IdSet(capacity), set()
    for batch in batches:
        new = ids.add(np.array(batch, np.int64))
        assert new.tolist() == [i not in seen for i in batch]
        seen.update(batch)
        assert len(ids) == len(seen)
    # The table grew past its first capacity and kept every id.
    every = np.array(sorted(seen), np.int64)
    assert not ids.add(every).any()
