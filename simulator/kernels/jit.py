"""The one place numba flags are set, so every kernel compiles the same way."""

from __future__ import annotations

import sys

import numba
from numba.core.dispatcher import Dispatcher

# NOTE: cache=True keeps the second run of a command from paying compile time again;
# nogil=True lets kernels run side by side in threads. fastmath stays off: results must
# be bit-identical across machines for the reproducibility contract.
# NOTE: numba's cache checks a kernel's own source file only: after editing a kernel that
# others call from another file (rng.py, calendar.py), delete the cache files
# (`find . -name "*.nb[ic]" -delete`) or the callers keep the old code. An installed
# package's files do not change, so users never meet this.
KERNEL_FLAGS = {"cache": True, "nogil": True, "fastmath": False, "error_model": "numpy"}


def kernel(fn=None, *, parallel: bool = False, allocates: bool = True):
    """Decorate a private array kernel with the project's numba flags.

    allocates=False compiles without numba's reference-counting runtime: the kernel may
    not create arrays, and in exchange reading arrays out of a tuple such as WorldArrays
    costs nothing. NOTE: with reference counting, every `w.field` read inside a loop is
    a pair of atomic operations; measured on the purchase kernel's `_near_home`, 312 ns a
    call with them and 22 ns without. Hot per-row code therefore runs allocation-free.
    """
    flags = dict(KERNEL_FLAGS, parallel=parallel)
    if not allocates:
        flags["_nrt"] = False
    if fn is None:
        return lambda f: numba.njit(**flags)(f)
    return numba.njit(**flags)(fn)


def compilations(package: str = "cardworld") -> int:
    """How many times this process compiled one of the package's kernels because numba's
    cache did not have it: nonzero on the first run after installing (or editing)."""
    seen: set[int] = set()
    total = 0
    for name, module in list(sys.modules.items()):
        if module is None or not (name == package or name.startswith(package + ".")):
            continue
        for value in list(vars(module).values()):
            if isinstance(value, Dispatcher) and id(value) not in seen:
                seen.add(id(value))
                total += sum(value.stats.cache_misses.values())
    return total
