"""Counter-based random streams: every draw is a pure function of (seed, entity, stream, counter).

A stream is a 2-element uint64 array `[key, counter]`; `key` hashes (seed, entity,
stream id) and each draw hashes `key + counter` with the SplitMix64 finaliser (which
passes BigCrush as a counter-based generator), then advances the counter. Because no
draw depends on another entity's draws, consumer 123's history is the same whether
the world runs in one process or eight, and whether consumers 0..122 exist or not.

All functions are numba-compiled and callable from kernels and from Python alike.
"""

from __future__ import annotations

import math

import numpy as np

from cardworld.simulator.kernels.jit import kernel

# Stream ids: one per kind of decision, so adding draws to one never shifts another.
POPULATION = 1
CARDS = 2
PROFILE = 3
PURCHASES = 4
TIMELINE = 5
FAVOURITES = 6
RANDOM_FRAUD = 7
MERCHANT = 8
COMPROMISE = 9
FRAUDSTER = 10
BREACH = 11
BALANCES = 12
IDENTITY = 13

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_TWO_POW_MINUS_53 = 1.0 / 9007199254740992.0


@kernel
def mix64(z: np.uint64) -> np.uint64:
    """SplitMix64's finaliser: a bijective avalanche of 64 bits."""
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


@kernel
def reseed(st: np.ndarray, seed: int, entity: int, stream_id: int, sub: int = 0) -> None:
    """Point an existing stream array at (seed, entity, stream id, sub-id), counter 0.

    NOTE: kernels reuse one array this way in hot loops instead of allocating a stream.
    """
    key = mix64(np.uint64(seed) + _GOLDEN)
    key = mix64(key ^ np.uint64(entity))
    key = mix64(key + np.uint64(stream_id) * _GOLDEN)
    st[0] = mix64(key ^ (np.uint64(sub) * _M1))
    st[1] = 0


@kernel
def stream(seed: int, entity: int, stream_id: int, sub: int = 0) -> np.ndarray:
    """A new stream `[key, 0]` for (seed, entity, stream id, optional sub-id)."""
    out = np.empty(2, dtype=np.uint64)
    reseed(out, seed, entity, stream_id, sub)
    return out


@kernel
def next_u64(st: np.ndarray) -> np.uint64:
    st[1] += np.uint64(1)
    return mix64(st[0] + st[1] * _GOLDEN)


@kernel
def uniform(st: np.ndarray) -> float:
    """A float64 in [0, 1) with 53 random bits."""
    return float(next_u64(st) >> np.uint64(11)) * _TWO_POW_MINUS_53


@kernel
def integer(st: np.ndarray, n: int) -> int:
    """An integer in [0, n)."""
    return min(int(uniform(st) * n), n - 1)


@kernel
def normal(st: np.ndarray) -> float:
    """A standard normal draw (Box-Muller, one of the pair; two uniforms per draw)."""
    u1 = 1.0 - uniform(st)  # (0, 1]: log is finite
    u2 = uniform(st)
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


@kernel
def exponential(st: np.ndarray, mean: float) -> float:
    return -mean * math.log(1.0 - uniform(st))


@kernel
def poisson(st: np.ndarray, lam: float) -> int:
    """A Poisson draw: inversion for small means, a rounded normal beyond 60."""
    if lam <= 0.0:
        return 0
    if lam > 60.0:
        return max(0, int(round(lam + math.sqrt(lam) * normal(st))))
    u = uniform(st)
    p = math.exp(-lam)
    cdf = p
    k = 0
    while u > cdf and k < 1000:
        k += 1
        p *= lam / k
        cdf += p
    return k


@kernel
def gamma(st: np.ndarray, shape: float) -> float:
    """A Gamma(shape, 1) draw (Marsaglia-Tsang; boosted for shape < 1)."""
    if shape <= 0.0:
        return 0.0
    boost = 1.0
    if shape < 1.0:
        boost = uniform(st) ** (1.0 / shape)
        shape += 1.0
    d = shape - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    while True:
        x = normal(st)
        v = 1.0 + c * x
        if v <= 0.0:
            continue
        v = v * v * v
        u = uniform(st)
        if math.log(1.0 - u) < 0.5 * x * x + d - d * v + d * math.log(v):
            return boost * d * v


@kernel
def bisect_right(cumulative: np.ndarray, lo: int, hi: int, target: float) -> int:
    """The first index i in [lo, hi) with cumulative[i] > target (hi - 1 if none).

    NOTE: a plain binary search; numba's np.searchsorted costs several times more per call.
    """
    last = hi - 1
    while lo < hi:
        mid = (lo + hi) >> 1
        if cumulative[mid] > target:
            hi = mid
        else:
            lo = mid + 1
    return min(lo, last)


@kernel
def choose(st: np.ndarray, cumulative: np.ndarray) -> int:
    """An index drawn with weights given as a non-decreasing cumulative array (1-D, float64)."""
    n = cumulative.shape[0]
    return bisect_right(cumulative, 0, n, uniform(st) * cumulative[n - 1])


def uniforms(seed: int, entity: int, stream_id: int, n: int, sub: int = 0) -> np.ndarray:
    """`n` uniforms of one stream, for Python-side code (tests, the timeline)."""
    st = stream(seed, entity, stream_id, sub)
    return np.array([uniform(st) for _ in range(n)])


@kernel
def first_uniforms(seed: int, entities: np.ndarray, stream_id: int, n: int) -> np.ndarray:
    """The first `n` uniforms of each entity's stream: (len(entities), n) float64."""
    out = np.empty((entities.shape[0], n))
    for i in range(entities.shape[0]):
        st = stream(seed, entities[i], stream_id)
        for j in range(n):
            out[i, j] = uniform(st)
    return out
