"""Shared fixtures: small ledgers simulated once per test session."""

from __future__ import annotations

import pytest

import cardworld
from cardworld.simulator import ledger
from cardworld.simulator.run import simulate


@pytest.fixture(scope="session")
def tiny_ledger(tmp_path_factory):
    """The tiny world as shipped (300 consumers, 2019), simulated with 2 workers."""
    out = tmp_path_factory.mktemp("ledgers") / "tiny"
    simulate("tiny", out, workers=2)
    return out


@pytest.fixture(scope="session")
def tiny_frames(tiny_ledger):
    """The tiny ledger's tables as pandas DataFrames."""
    return {
        "transactions": cardworld.read_transactions(tiny_ledger),
        **{name: ledger.read_table(tiny_ledger, name).to_pandas() for name in ledger.TABLES},
    }


def _ledger_bytes(directory) -> dict[str, bytes]:
    return {
        p.relative_to(directory).as_posix(): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def ledger_bytes():
    """A function: every file of a ledger directory by relative path."""
    return _ledger_bytes
