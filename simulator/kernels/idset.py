"""A growing set of int64 ids in a flat open-addressing table: which ids of a batch are new."""

from __future__ import annotations

import numpy as np

from cardworld.simulator import rng
from cardworld.simulator.kernels.jit import kernel

EMPTY = np.iinfo(np.int64).min  # the free slot's mark: never an id


class IdSet:
    """The ids added so far. Memory: 8 bytes a slot, at most half of them used.

    NOTE: a run's merchants file keeps the ids of every merchant written; inserting each
    block's new ones into a sorted array copied the whole array every block: at IBM scale
    (millions of merchants, 328 blocks) 7 s of the main process's time, taken from the
    worker processes' cores. A hash table adds a block's ids in time of their own number.
    """

    def __init__(self, capacity: int = 1 << 16) -> None:
        self.table = np.full(max(16, 1 << (capacity - 1).bit_length()), EMPTY, np.int64)
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def add(self, ids: np.ndarray) -> np.ndarray:
        """Add `ids` ((n,) int64, distinct, none EMPTY); returns the (n,) bool mask of
        those that were not in the set before."""
        ids = np.ascontiguousarray(ids, np.int64)
        capacity = len(self.table)
        while 2 * (self.size + len(ids)) > capacity:
            capacity *= 2
        if capacity > len(self.table):
            self.table = _rehashed(self.table, capacity)
        new = _add(self.table, ids)
        self.size += int(np.count_nonzero(new))
        return new


@kernel(allocates=False)
def _slot(table, key):
    """The slot holding `key`, or the free slot where it belongs (linear probing)."""
    mask = table.shape[0] - 1
    h = np.int64(rng.mix64(np.uint64(key)) & np.uint64(mask))
    while table[h] != key and table[h] != EMPTY:
        h = (h + 1) & mask
    return h


@kernel
def _add(table, ids):
    """Put each of `ids` in `table` (room for all of them assumed); True where it was new."""
    new = np.zeros(ids.shape[0], np.bool_)
    for i in range(ids.shape[0]):
        h = _slot(table, ids[i])
        if table[h] == EMPTY:
            table[h] = ids[i]
            new[i] = True
    return new


@kernel
def _rehashed(table, capacity):
    """The ids of `table` in a fresh table of `capacity` slots (a power of 2)."""
    bigger = np.full(capacity, EMPTY, np.int64)
    for key in table:
        if key != EMPTY:
            bigger[_slot(bigger, key)] = key
    return bigger
