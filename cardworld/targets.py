"""Per-transaction training targets: `cardworld.targets`.

Declare targets in TOML or as `Target` objects, then compute them on a ledger, a pandas or
Arrow table, or one user's arrays, or feed them to PyTorch with `TargetDataset` /
`TargetIterableDataset` (these two and `pad_collate` import torch on first use).

    from cardworld.targets import Target, TargetSet, compute_table
    targets = TargetSet((Target("grocery_week", "sum", "week", mcc=5411),))
    values = compute_table(df, targets)          # (len(df), 1) float32, rows as in df
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cardworld.simulator.targets.arrays import Columns
from cardworld.simulator.targets.compute import (
    compute_ledger,
    compute_table,
    compute_user,
    write_targets,
)
from cardworld.simulator.targets.spec import (
    AGGREGATES,
    Target,
    TargetSet,
    as_target_set,
    load_targets,
)

if TYPE_CHECKING:
    from cardworld.simulator.targets.dataset import (
        DERIVED_FEATURES,
        TargetDataset,
        TargetIterableDataset,
        pad_collate,
    )

_TORCH_NAMES = ("TargetDataset", "TargetIterableDataset", "pad_collate", "DERIVED_FEATURES")


def __getattr__(name: str) -> Any:
    if name in _TORCH_NAMES:
        from cardworld.simulator.targets import dataset

        return getattr(dataset, name)
    raise AttributeError(f"module 'cardworld.targets' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The names loaded on first use too, for tab completion."""
    return sorted(set(globals()) | set(_TORCH_NAMES))


__all__ = [
    "AGGREGATES",
    "Columns",
    "DERIVED_FEATURES",
    "Target",
    "TargetDataset",
    "TargetIterableDataset",
    "TargetSet",
    "as_target_set",
    "compute_ledger",
    "compute_table",
    "compute_user",
    "load_targets",
    "pad_collate",
    "write_targets",
]
