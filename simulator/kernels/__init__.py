"""Numba kernels of the simulator: array-in, array-out functions, no orchestration."""
