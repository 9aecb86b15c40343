"""cardworld: simulate credit-card worlds, synthesize ledgers, and compute training targets.

The public API. Heavy parts (the simulator's numba kernels, torch) load on first use.
"""

from __future__ import annotations

import os
from importlib.metadata import PackageNotFoundError, version

from cardworld.errors import CardworldError, ConfigError, DataError, LedgerError, WorldError

# In a source checkout the subpackages (simulator/, worlds/, synthesizer/) lie beside this
# folder, where pyproject's package-dir maps them from; Python run in the checkout's root
# imports this folder rather than the installed package, so it looks for them there too.
_CHECKOUT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if not os.path.isdir(os.path.join(os.path.dirname(__file__), "simulator")) and os.path.isfile(
    os.path.join(_CHECKOUT, "simulator", "__init__.py")
):
    __path__.append(_CHECKOUT)

try:
    __version__ = version("cardworld")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

_LAZY = {
    "simulate": ("cardworld.simulator.run", "simulate"),
    "load_world": ("cardworld.worlds.load", "load_world"),
    "shipped_worlds": ("cardworld.worlds.load", "shipped_worlds"),
    "verify": ("cardworld.simulator.ledger", "verify"),
    "read_table": ("cardworld.simulator.ledger", "read_table"),
    "transactions": ("cardworld.simulator.ledger", "transactions"),
    "build_report": ("cardworld.simulator.report", "build_report"),
    "calibrate": ("cardworld.simulator.calibrate", "calibrate"),
    "export": ("cardworld.simulator.export", "export"),
}


def read_transactions(ledger_dir, columns=None, filter=None):
    """A ledger's transactions as a pandas DataFrame (optionally some columns / a pyarrow
    filter); ids set on fraud only (fraudster_id, compromise_id) are nullable integers."""
    from cardworld.simulator.ledger import read_transactions, transactions_frame

    return transactions_frame(read_transactions(ledger_dir, columns, filter))


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'cardworld' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The names loaded on first use too, for tab completion."""
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    *_LAZY,
    "read_transactions",
    "CardworldError",
    "ConfigError",
    "DataError",
    "LedgerError",
    "WorldError",
    "__version__",
]
