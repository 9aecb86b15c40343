"""Reproducibility: same world and seed give the same bytes; draws depend only on the entity."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest

import cardworld
from cardworld.simulator import purchases, rng
from cardworld.simulator.ledger import transactions_frame
from cardworld.simulator.run import _built, simulate
from cardworld.worlds.load import load_world


def test_same_seed_gives_identical_bytes_for_1_and_2_workers(tmp_path, tiny_ledger, ledger_bytes):
    one = tmp_path / "one"
    simulate("tiny", one, workers=1)
    assert ledger_bytes(one) == ledger_bytes(tiny_ledger)  # the fixture ran with 2 workers


def test_a_different_seed_gives_a_different_ledger(tmp_path, tiny_frames):
    other = tmp_path / "other"
    simulate("tiny", other, seed=8, consumers=30)
    a = tiny_frames["transactions"].query("consumer_id < 30")
    b = cardworld.read_transactions(other)
    assert len(a) != len(b) or not np.array_equal(a["amount"].to_numpy(), b["amount"].to_numpy())


def test_a_consumer_history_does_not_depend_on_world_size(tmp_path, tiny_frames):
    small = tmp_path / "small"
    simulate("tiny", small, consumers=40, shard_size=15)
    mine = cardworld.read_transactions(small)
    theirs = tiny_frames["transactions"].query("consumer_id < 40").reset_index(drop=True)
    pd.testing.assert_frame_equal(mine, theirs)
    consumers = cardworld.read_table(small, "consumers").to_pandas()
    pd.testing.assert_frame_equal(consumers, tiny_frames["consumers"].head(40))


@pytest.mark.parametrize("consumers", [1, 60])
def test_a_shard_is_the_same_when_its_row_buffer_has_to_grow(monkeypatch, tiny_frames, consumers):
    # Room for 96 rows instead of the expected count (1.25 x -3,200 + 4,096 for the shard):
    # the buffer doubles several times, before the first consumer fits and part-way
    # through later ones, who are simulated again from their first draw.
    monkeypatch.setattr(
        purchases, "expected_rows", lambda world: -3200.0 / world.spec.simulation.consumers
    )
    monkeypatch.setattr(purchases, "_kept", threading.local())  # no bigger buffer kept
    world = load_world("tiny", consumers=consumers)
    arrays, labels, fraud = _built(world)
    ids = np.arange(consumers, dtype=np.int64)
    grown = transactions_frame(
        purchases.simulate_shard(world, arrays, labels, fraud, ids).transactions
    )
    assert len(grown) > 4 * 96
    expected = tiny_frames["transactions"].query(f"consumer_id < {consumers}")
    pd.testing.assert_frame_equal(grown, expected.reset_index(drop=True))


def test_a_shard_keeps_its_rows_when_the_next_reuses_the_buffers(tiny_frames):
    # The kernels' row buffers are kept for a thread's next shard: a result must not share them.
    world = load_world("tiny")
    arrays, labels, fraud = _built(world)
    first = purchases.simulate_shard(world, arrays, labels, fraud, np.arange(0, 40))
    purchases.simulate_shard(world, arrays, labels, fraud, np.arange(40, 60))  # fits in them
    expected = tiny_frames["transactions"].query("consumer_id < 40").reset_index(drop=True)
    pd.testing.assert_frame_equal(transactions_frame(first.transactions), expected)
    assert np.array_equal(first.merchant_ids, np.unique(expected["merchant_id"]))


def test_stream_draws_depend_only_on_seed_entity_stream_counter():
    a = rng.uniforms(7, 123, rng.PURCHASES, 5)
    assert np.array_equal(a, rng.uniforms(7, 123, rng.PURCHASES, 5))
    assert not np.array_equal(a, rng.uniforms(7, 124, rng.PURCHASES, 5))
    assert not np.array_equal(a, rng.uniforms(7, 123, rng.TIMELINE, 5))
    assert not np.array_equal(a, rng.uniforms(8, 123, rng.PURCHASES, 5))
    assert np.array_equal(rng.first_uniforms(7, np.array([123, 5]), rng.PURCHASES, 5)[0], a)


@pytest.mark.parametrize("entity", [0, 1, 2**40])
def test_uniforms_are_uniform(entity):
    from scipy import stats

    u = rng.uniforms(11, entity, rng.PROFILE, 20_000)
    assert stats.kstest(u, "uniform").pvalue > 1e-4
    assert u.min() >= 0.0 and u.max() < 1.0


def test_normal_draws_fit_the_normal_distribution_tails_included():
    from scipy import stats

    st = rng.stream(5, 6, 7)
    n = 400_000
    x = np.array([rng.normal(st) for _ in range(n)])
    assert stats.kstest(x, "norm").pvalue > 1e-4
    # The ziggurat's base strip hands |x| > 3.4426 to a separate tail method: check its mass
    # and a farther one, to 5 standard errors of a binomial count.
    for edge in (1.0, 3.442619855899, 4.0):
        p = 2 * stats.norm.sf(edge)
        assert abs((np.abs(x) > edge).mean() - p) < 5 * np.sqrt(p * (1 - p) / n), edge


def test_distributions_have_their_moments():
    st = rng.stream(3, 4, 5)
    n = 40_000
    normal = np.array([rng.normal(st) for _ in range(n)])
    # Tolerances: 5 standard errors of each sample moment.
    assert abs(normal.mean()) < 5 / np.sqrt(n)
    assert abs(normal.var() - 1) < 5 * np.sqrt(2 / n)
    for lam in (0.3, 4.0, 90.0):
        x = np.array([rng.poisson(st, lam) for _ in range(n)])
        assert abs(x.mean() - lam) < 5 * np.sqrt(lam / n)
    for shape in (0.5, 2.5):
        g = np.array([rng.gamma(st, shape) for _ in range(n)])
        assert abs(g.mean() - shape) < 5 * np.sqrt(shape / n)
        assert abs(g.var() - shape) < 0.1 * shape


def test_a_run_in_the_callers_process_lets_its_row_buffers_go(tmp_path):
    simulate("tiny", tmp_path / "ledger", consumers=20, workers=1)
    assert not vars(purchases._kept)  # hundreds of megabytes at scale
