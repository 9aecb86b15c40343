"""Money on the cards: purchases beyond it decline, unless the consumer knows and avoids it."""

from __future__ import annotations

import pytest

import cardworld
from cardworld.errors import WorldError
from cardworld.simulator.run import simulate


def _insufficient_balance_share(tmp_path, awareness: float) -> tuple[float, int]:
    world = tmp_path / f"aware-{awareness}.toml"
    world.write_text(
        f'extends = "tiny"\nname = "aware"\ndescription = "a test world"\n'
        f"[simulation]\nconsumers = 120\n[errors]\ninsufficient_balance = 0.0\n"
        f"[cards]\nbalance_awareness = {awareness}\n"
    )
    out = tmp_path / f"ledger-{awareness}"
    simulate(world, out, workers=1)
    txns = cardworld.read_transactions(out, columns=["errors", "is_fraud", "amount"])
    purchases = txns[~txns["is_fraud"] & (txns["amount"] > 0)]
    return float((purchases["errors"] == "Insufficient Balance").mean()), len(purchases)


def test_consumers_who_know_their_balances_do_not_overdraw(tmp_path):
    # Without the residual rate, every Insufficient Balance decline comes from the money on
    # the cards: consumers who always know it never meet one, and give up some purchases.
    unaware, unaware_rows = _insufficient_balance_share(tmp_path, 0.0)
    aware, aware_rows = _insufficient_balance_share(tmp_path, 1.0)
    assert unaware > 0.002
    assert aware == 0.0
    assert aware_rows < unaware_rows  # purchases no card could pay for were given up
    half, _ = _insufficient_balance_share(tmp_path, 0.5)
    assert aware < half < unaware


@pytest.mark.parametrize("awareness", [-0.1, 1.5])
def test_awareness_is_a_probability(tmp_path, awareness):
    world = tmp_path / "bad.toml"
    world.write_text(f'extends = "tiny"\nname = "bad"\n[cards]\nbalance_awareness = {awareness}\n')
    with pytest.raises(WorldError, match="cards.balance_awareness. must be at"):
        cardworld.load_world(world)
