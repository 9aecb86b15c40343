"""Per-transaction training targets computed from a ledger (windowed aggregates).

spec.py declares targets (TOML or Python) and validates them; plan.py encodes them as flat
arrays; arrays.py turns a transaction table into user-sorted CSR arrays; kernels.py holds
the numba kernels; compute.py is the public API; dataset.py the PyTorch datasets (torch is
imported there only). The public face is `cardworld.targets`.
"""
