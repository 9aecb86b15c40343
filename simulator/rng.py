"""Counter-based random streams: every draw is a pure function of (seed, entity, stream, counter).

A stream is a 2-element uint64 array `[key, counter]`; `key` hashes (seed, entity,
stream id) and each draw hashes `key + counter` with the SplitMix64 finaliser (which
passes BigCrush as a counter-based generator), then advances the counter. Because no
draw depends on another entity's draws, consumer 123's history is the same whether
the world runs in one process or eight, and whether consumers 0..122 exist or not.

All functions are numba-compiled and callable from kernels and from Python alike. The
draws compile without reference counting (`kernel(allocates=False)`): kernels call them
per row and per day, and each call that takes a stream array would pay a pair of atomic
operations on it.
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
BILLS = 14
DESTINATIONS = 15

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_TWO_POW_MINUS_53 = 1.0 / 9007199254740992.0


@kernel(allocates=False)
def mix64(z: np.uint64) -> np.uint64:
    """SplitMix64's finaliser: a bijective avalanche of 64 bits."""
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


@kernel(allocates=False)
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


@kernel(allocates=False)
def next_u64(st: np.ndarray) -> np.uint64:
    st[1] += np.uint64(1)
    return mix64(st[0] + st[1] * _GOLDEN)


@kernel(allocates=False)
def uniform(st: np.ndarray) -> float:
    """A float64 in [0, 1) with 53 random bits."""
    return float(next_u64(st) >> np.uint64(11)) * _TWO_POW_MINUS_53


@kernel(allocates=False)
def integer(st: np.ndarray, n: int) -> int:
    """An integer in [0, n)."""
    return min(int(uniform(st) * n), n - 1)


def _ziggurat_tables(layers: int = 128) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Marsaglia and Tsang's ziggurat for the normal density (2000), for 53-bit draws: per
    layer the acceptance threshold k, the width scale w and the density f at its edge;
    and r, where the tail begins."""
    r, area = 3.442619855899, 9.91256303526217e-3  # for 128 layers of equal area
    scale = 2.0**53
    k, w, f = np.zeros(layers, np.int64), np.zeros(layers), np.zeros(layers)
    q = area / math.exp(-0.5 * r * r)
    k[0], k[1] = int(r / q * scale), 0
    w[0], w[-1] = q / scale, r / scale
    f[0], f[-1] = 1.0, math.exp(-0.5 * r * r)
    x, outer = r, r
    for i in range(layers - 2, 0, -1):
        x = math.sqrt(-2.0 * math.log(area / x + math.exp(-0.5 * x * x)))
        k[i + 1] = int(x / outer * scale)
        outer = x
        f[i] = math.exp(-0.5 * x * x)
        w[i] = x / scale
    return k, w, f, r


_ZIG_K, _ZIG_W, _ZIG_F, _ZIG_R = _ziggurat_tables()


@kernel(allocates=False)
def normal(st: np.ndarray) -> float:
    """A standard normal draw by the ziggurat method: one 64-bit draw (7 bits pick a layer,
    1 the sign, 53 the abscissa) and a compare, 98.8% of the time.

    NOTE: Box-Muller cost a log, a sqrt and a cos per draw; every amount in the ledger is
    lognormal, so this draw is on the purchase kernel's per-row path.
    """
    while True:
        bits = next_u64(st)
        layer = int(bits & np.uint64(127))
        sign = -1.0 if (bits >> np.uint64(7)) & np.uint64(1) else 1.0
        j = int(bits >> np.uint64(11))
        x = j * _ZIG_W[layer]
        if j < _ZIG_K[layer]:
            return sign * x
        if layer == 0:  # the tail beyond r, by Marsaglia's exponential method
            while True:
                x = -math.log(1.0 - uniform(st)) / _ZIG_R
                y = -math.log(1.0 - uniform(st))
                if y + y >= x * x:
                    return sign * (_ZIG_R + x)
        low, high = _ZIG_F[layer], _ZIG_F[layer - 1]
        if low + uniform(st) * (high - low) < math.exp(-0.5 * x * x):
            return sign * x


@kernel(allocates=False)
def exponential(st: np.ndarray, mean: float) -> float:
    return -mean * math.log(1.0 - uniform(st))


@kernel(allocates=False)
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


@kernel(allocates=False)
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


@kernel(allocates=False)
def bisect_right(cumulative: np.ndarray, lo: int, hi: int, target: float) -> int:
    """The first index i in [lo, hi) with cumulative[i] > target (hi - 1 if none), for
    non-decreasing cumulative[lo:hi].

    NOTE: a binary search whose steps depend only on hi - lo: each halving picks its half
    with a select, not a branch. A plain bisection's branches follow the random target
    and mispredict about every other step, at several steps a draw.
    """
    base = lo
    n = hi - lo
    if n <= 0:
        return hi - 1
    # The answer (hi when none is greater) lies in [base, base + n] throughout.
    while n > 1:
        half = n >> 1
        base = base + half if cumulative[base + half - 1] <= target else base
        n -= half
    return min(base + (1 if cumulative[base] <= target else 0), hi - 1)


@kernel(allocates=False)
def fill_guide(cumulative: np.ndarray, lo: int, hi: int, guide: np.ndarray) -> None:
    """A guide table for `guided_pick` over cumulative[lo:hi] (non-decreasing, total > 0):
    guide[g] is the first index i with cumulative[i] > g / G of the total (G = len(guide))."""
    size = guide.shape[0]
    step = cumulative[hi - 1] / size
    i = lo
    # NOTE: a threshold's rounding moves an entry by at most one place, which
    # `guided_pick` corrects, so a product serves where a division per entry cost more.
    for g in range(size):
        threshold = g * step
        while i < hi - 1 and cumulative[i] <= threshold:
            i += 1
        guide[g] = i


@kernel(allocates=False)
def guided_pick(cumulative: np.ndarray, lo: int, hi: int, guide: np.ndarray, u: float) -> int:
    """What `bisect_right` returns for `u` (in [0, 1)) times the total of cumulative[lo:hi]
    (total > 0), found from the guide table's entry for `u`: an index drawn with those
    weights when `u` is a uniform draw.

    NOTE: with a guide of about one entry per index, the answer is the entry or a step or
    two on (Chen's indexed search): a short predictable scan in place of a bisection's
    mispredicted branches. The scan corrects the entry in both directions, so the result
    is exact whatever the rounding of the guide's thresholds; taking the entry from `u`
    itself spares a division by the total on a draw's chain of dependent steps.
    """
    size = guide.shape[0]
    target = u * cumulative[hi - 1]
    i = guide[min(int(u * size), size - 1)]
    while i > lo and cumulative[i - 1] > target:
        i -= 1
    while i < hi - 1 and cumulative[i] <= target:
        i += 1
    return i


@kernel(allocates=False)
def choose(st: np.ndarray, cumulative: np.ndarray) -> int:
    """An index drawn with weights given as a non-decreasing cumulative array (1-D, float64)."""
    n = cumulative.shape[0]
    return bisect_right(cumulative, 0, n, uniform(st) * cumulative[n - 1])


def uniforms(seed: int, entity: int, stream_id: int, n: int, sub: int = 0) -> np.ndarray:
    """The first `n` uniforms of one stream: (n,) float64."""
    return stream_uniforms(seed, entity, stream_id, 0, n, sub)


@kernel
def stream_uniforms(
    seed: int, entity: int, stream_id: int, skip: int, n: int, sub: int = 0
) -> np.ndarray:
    """What `n` calls of `uniform` return on the stream (seed, entity, stream id, sub-id)
    after its first `skip` draws: (n,) float64."""
    st = stream(seed, entity, stream_id, sub)
    st[1] = skip
    out = np.empty(n)
    for j in range(n):
        out[j] = uniform(st)
    return out


@kernel
def first_uniforms(seed: int, entities: np.ndarray, stream_id: int, n: int) -> np.ndarray:
    """The first `n` uniforms of each entity's stream: (len(entities), n) float64."""
    out = np.empty((entities.shape[0], n))
    for i in range(entities.shape[0]):
        st = stream(seed, entities[i], stream_id)
        for j in range(n):
            out[i, j] = uniform(st)
    return out
