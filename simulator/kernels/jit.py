"""The one place numba flags are set, so every kernel compiles the same way."""

from __future__ import annotations

import numba

# NOTE: cache=True keeps the second run of a command from paying compile time again;
# nogil=True lets kernels run side by side in threads. fastmath stays off: results must
# be bit-identical across machines for the reproducibility contract.
KERNEL_FLAGS = {"cache": True, "nogil": True, "fastmath": False, "error_model": "numpy"}


def kernel(fn=None, *, parallel: bool = False):
    """Decorate a private array kernel with the project's numba flags."""
    flags = dict(KERNEL_FLAGS, parallel=parallel)
    if fn is None:
        return lambda f: numba.njit(**flags)(f)
    return numba.njit(**flags)(fn)
