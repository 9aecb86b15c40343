"""Shared small tables and one tiny fitted synthesizer for the synthesizer tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

# The machine is shared; tiny models gain nothing from more threads.
torch.set_num_threads(1)

CATEGORIES = ["A", "B", "C", "D"]
TINY = dict(
    n_layer=2,
    n_head=2,
    n_embd=32,
    block_size=128,
    dropout=0.0,
    batch_size=32,
    learning_rate=1e-2,
    max_epochs=40,
    patience=4,
    n_bins=8,
    n_sub=8,
    seed=0,
    device="cpu",
)


def pattern_table(n_groups: int = 60, seed: int = 0) -> pd.DataFrame:
    """Accounts whose category A is always followed by B; amounts and hours depend on category."""
    rng = np.random.default_rng(seed)
    rows = []
    for g in range(n_groups):
        t = pd.Timestamp("2025-01-01") + pd.Timedelta(days=int(rng.integers(0, 30)))
        state = ["CA", "NY", "TX"][g % 3]
        prev = None
        for i in range(int(rng.integers(8, 16))):
            cat = "B" if prev == "A" else str(rng.choice(["A", "C", "D"]))
            t = t.normalize() + pd.Timedelta(days=int(rng.integers(1, 3)))
            hour = {"A": 8, "B": 12, "C": 18, "D": 21}[cat] + int(rng.integers(0, 2))
            amount = {"A": 10.0, "B": 100.0, "C": 40.0, "D": 5.0}[cat] * float(
                rng.uniform(0.8, 1.2)
            )
            rows.append(
                {
                    "acct_id": f"ACCT-{g:05d}",
                    "cardholder": f"Holder Number{g}",
                    "state": state,
                    "txn_index": i + 1,
                    "timestamp": t + pd.Timedelta(hours=hour),
                    "merchant_cat": cat,
                    "txn_amount": round(amount, 2),
                }
            )
            prev = cat
    return pd.DataFrame(rows)


@pytest.fixture(scope="session")
def tiny() -> dict:
    """Model and training sizes small enough for CI on two cores."""
    return dict(TINY)


@pytest.fixture(scope="session")
def make_table():
    return pattern_table


@pytest.fixture(scope="session")
def table() -> pd.DataFrame:
    return pattern_table()


@pytest.fixture(scope="session")
def fitted(table: pd.DataFrame):
    from cardworld.synthesizer import Synthesizer

    return Synthesizer(**TINY).fit(table, group_by="acct_id", order_by="txn_index")


@pytest.fixture(scope="session")
def sampled(fitted) -> pd.DataFrame:
    return fitted.sample(40, seed=7)
