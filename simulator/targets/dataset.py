"""PyTorch datasets that yield (features, targets) per user, computing targets on the fly.

The datasets hold plain NumPy arrays and frozen dataclasses, so they pickle (spawned
DataLoader workers) and fork cleanly; each item runs the serial numba kernel, so workers
need no thread pool of their own. torch is imported here only: the rest of
cardworld.targets works without it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import torch
from torch.utils.data import Dataset, IterableDataset, get_worker_info

from cardworld.errors import DataError
from cardworld.simulator.targets import kernels as K
from cardworld.simulator.targets.arrays import (
    Columns,
    UserArrays,
    check_ledger,
    is_text,
    prepare,
    read_ledger,
    read_ledger_parts,
    to_arrow,
)
from cardworld.simulator.targets.compute import (
    PartsOverlap,
    TargetsLike,
    input_columns,
    type_check,
    users_after,
)
from cardworld.simulator.targets.plan import (
    Plan,
    make_plan,
    needed_columns,
    warn_missing_categories,
)
from cardworld.simulator.targets.spec import TargetSet, as_target_set

# Features computed from the timestamp rather than read from a column.
_DERIVED_ATTRIBUTE = {
    "hour": "hour",
    "weekday": "day_of_week",
    "day_of_month": "day",
    "month": "month",
}
DERIVED_FEATURES = tuple(_DERIVED_ATTRIBUTE)


class _UserTargets:
    """Shared state of both datasets: sorted user arrays, features and the kernel plan."""

    def __init__(
        self, arrays: UserArrays, features: np.ndarray, targets: TargetSet, plan: Plan
    ) -> None:
        self.arrays = arrays
        self.features = features  # (N, n_features) float32, rows in sorted order
        self.targets = targets
        self.plan = plan

    @classmethod
    def build(
        cls,
        source: pd.DataFrame | pa.Table | str | Path,
        targets: TargetsLike,
        features: Sequence[str],
        columns: Columns,
    ) -> _UserTargets:
        """From a table, or from a ledger directory when `source` is a path."""
        target_set = as_target_set(targets)
        names = _input_names(target_set, features, columns)
        if isinstance(source, str | Path):
            table = read_ledger(source, names, type_check(target_set, columns))
            ledger_dir = source
        else:
            table, ledger_dir = to_arrow(source, names), None
        return cls.of_table(table, target_set, features, columns, source=ledger_dir)

    @classmethod
    def of_table(
        cls,
        table: pa.Table,
        target_set: TargetSet,
        features: Sequence[str],
        columns: Columns,
        *,
        source: str | Path | None,
        dictionaries: dict[str, pa.Array] | None = None,
    ) -> _UserTargets:
        """From an Arrow table holding the input columns, read from `source` when given.
        With `dictionaries` (one part file of a ledger read a file at a time), string
        features are coded by them (see `_features`), and a category a target names but the
        table lacks is left to the caller to warn about, once for the whole ledger."""
        arrays = prepare(table, columns, *needed_columns(target_set), source=source)
        plan = make_plan(target_set, arrays.categories, warn_missing=dictionaries is None)
        return cls(arrays, _features(table, features, arrays, dictionaries), target_set, plan)

    def users_range(self, first: int, stop: int) -> np.ndarray:
        """Targets of users [first, stop): (rows, n_targets), rows in sorted order."""
        offsets = self.arrays.offsets
        rows = offsets[stop] - offsets[first]
        # NOTE: row-major, unlike run_plan's result: a batch stacks each user's (T, K) rows,
        # and copying a column-major user into it is a transpose, which cost pad_collate
        # 250 us a user (4,096 rows, 20 targets) against 77; the kernels pay 10 us for it.
        out = np.empty((rows, len(self.targets)), dtype=self.plan.dtype, order="C")
        if out.shape[0]:
            a = self.arrays
            K._targets_range(
                offsets,
                first,
                stop,
                a.timestamps,
                a.amounts,
                a.mcc,
                a.category,
                *self.plan.kernel_args(),
                out,
                offsets[first],
                self.plan.no_filter_seen(),  # no MCC warnings batch by batch
            )
        return out

    def item(self, user: int, targets: np.ndarray, row0: int) -> tuple[torch.Tensor, torch.Tensor]:
        s, e = self.arrays.offsets[user], self.arrays.offsets[user + 1]
        return torch.from_numpy(self.features[s:e]), torch.from_numpy(targets[s - row0 : e - row0])


class _LedgerParts:
    """A ledger taken a part file at a time, when each file holds whole users and users
    rise from file to file (a cardworld ledger's do): its files, their users, and the
    dictionaries that code its string features as reading the whole ledger would (by
    first appearance over the files in order)."""

    def __init__(
        self,
        ledger_dir: str | Path,
        target_set: TargetSet,
        features: Sequence[str],
        columns: Columns,
        paths: list[str],
        users: list[int],
        dictionaries: dict[str, pa.Array],
    ) -> None:
        self.ledger_dir, self.target_set = ledger_dir, target_set
        self.features, self.columns = tuple(features), columns
        self.paths, self.users, self.dictionaries = paths, users, dictionaries
        self.names = _input_names(target_set, features, columns)

    @classmethod
    def scan(
        cls, ledger_dir: str | Path, targets: TargetsLike, features: Sequence[str], columns: Columns
    ) -> _LedgerParts | None:
        """Check every file's columns and read its user, category and string feature
        columns once; None when the files cannot be taken one at a time (then the ledger
        is read at once)."""
        target_set = as_target_set(targets)
        names = _input_names(target_set, features, columns)
        schema = check_ledger(ledger_dir, names, type_check(target_set, columns))
        _, need_category = needed_columns(target_set)
        coded = [name for name in features if name not in DERIVED_FEATURES]
        coded += [columns.category] if need_category else []
        coded = [name for name in dict.fromkeys(coded) if is_text(schema.field(name).type)]
        paths, users, last_user = [], [], None
        values: dict[str, dict] = {}  # column -> its values in order of first appearance
        for path, table in read_ledger_parts(ledger_dir, [columns.user, *coded]):
            if table.num_rows == 0:
                continue
            ids = table.column(columns.user)
            try:
                last_user = users_after(ids, last_user)
            except PartsOverlap:
                return None
            if pa.types.is_dictionary(ids.type):
                ids = ids.cast(ids.type.value_type)
            paths.append(path)
            users.append(pc.count_distinct(ids).as_py())
            for name in coded:
                column = table.column(name)
                if pa.types.is_dictionary(column.type):
                    column = column.cast(column.type.value_type)
                seen = values.setdefault(name, {})
                seen.update(dict.fromkeys(pc.unique(column).drop_null().to_pylist()))
        if need_category:
            warn_missing_categories(target_set, list(values.get(columns.category, {})), 4)
        dictionaries = {name: pa.array(list(seen), pa.string()) for name, seen in values.items()}
        return cls(ledger_dir, target_set, features, columns, paths, users, dictionaries)

    def read(self, index: int) -> _UserTargets:
        """Part file `index` as sorted user arrays, features and a plan."""
        [(path, table)] = read_ledger_parts(
            self.ledger_dir,
            self.names,
            type_check(self.target_set, self.columns),
            only=[self.paths[index]],
        )
        return _UserTargets.of_table(
            table,
            self.target_set,
            self.features,
            self.columns,
            source=path,
            dictionaries=self.dictionaries,
        )


class TargetDataset(Dataset):
    """Map-style dataset: item u is user u's (features (T, F) float32, targets (T, n_targets)).

    Items follow the sorted user column; `user_ids` gives each item's user id (for string
    ids: codes in order of first appearance). Rows within a user are in time order, ties in
    input order. Build with `from_ledger` or `from_table`; the table is held in memory.
    """

    def __init__(self, state: _UserTargets) -> None:
        self._state = state

    @classmethod
    def from_table(
        cls,
        table: pd.DataFrame | pa.Table,
        targets: TargetsLike,
        *,
        features: Sequence[str] = ("amount",),
        columns: Columns = Columns(),
    ) -> TargetDataset:
        """From a DataFrame or Arrow table; `features` name number, boolean or string columns
        (a string coded by its order of first appearance) or DERIVED_FEATURES."""
        return cls(_UserTargets.build(table, targets, features, columns))

    @classmethod
    def from_ledger(
        cls,
        ledger_dir: str | Path,
        targets: TargetsLike,
        *,
        features: Sequence[str] = ("amount",),
        columns: Columns = Columns(),
    ) -> TargetDataset:
        """From a ledger directory's transactions/ dataset (read once, held in memory)."""
        return cls(_UserTargets.build(ledger_dir, targets, features, columns))

    @property
    def user_ids(self) -> np.ndarray:
        return self._state.arrays.users

    @property
    def target_names(self) -> list[str]:
        return self._state.targets.names

    def __len__(self) -> int:
        return self._state.arrays.n_users

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"user index {index} out of range for {len(self)} users")
        index %= len(self)
        row0 = int(self._state.arrays.offsets[index])
        return self._state.item(index, self._state.users_range(index, index + 1), row0)


class TargetIterableDataset(IterableDataset):
    """Iterable dataset: yields (features, targets) per user, computing users in chunks.

    DataLoader workers split the users into disjoint contiguous shares. With `shuffle`, the
    chunk order changes with `seed` and `set_epoch`.
    """

    def __init__(
        self,
        state: _UserTargets | _LedgerParts,
        *,
        chunk_users: int = 64,
        shuffle: bool = False,
        seed: int = 0,
    ) -> None:
        if chunk_users < 1:
            raise DataError(f"chunk_users = {chunk_users}: expected an integer >= 1")
        self._state = state
        self.chunk_users = chunk_users
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 0

    @classmethod
    def from_table(
        cls,
        table: pd.DataFrame | pa.Table,
        targets: TargetsLike,
        *,
        features: Sequence[str] = ("amount",),
        columns: Columns = Columns(),
        **options: Any,
    ) -> TargetIterableDataset:
        """As TargetDataset.from_table; options: chunk_users, shuffle, seed."""
        return cls(_UserTargets.build(table, targets, features, columns), **options)

    @classmethod
    def from_ledger(
        cls,
        ledger_dir: str | Path,
        targets: TargetsLike,
        *,
        features: Sequence[str] = ("amount",),
        columns: Columns = Columns(),
        **options: Any,
    ) -> TargetIterableDataset:
        """From a ledger directory's transactions/ dataset, read a part file at a time
        when each holds whole users (a cardworld ledger's do), else at once; options:
        chunk_users, shuffle, seed.

        Read a file at a time, memory holds two part files per DataLoader worker, each
        worker takes an equal share of the users (reading the files that hold them), and
        `shuffle` shuffles the files' order and the chunks within each. Items are the same
        as from the whole ledger in memory.
        """
        parts = _LedgerParts.scan(ledger_dir, targets, features, columns)
        if parts is None:
            return cls(_UserTargets.build(ledger_dir, targets, features, columns), **options)
        return cls(parts, **options)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        if isinstance(self._state, _LedgerParts):
            return sum(self._state.users)
        return self._state.arrays.n_users

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        rng = np.random.default_rng((self.seed, self.epoch, worker))
        if isinstance(self._state, _UserTargets):
            n_users = self._state.arrays.n_users
            first, stop = worker * n_users // workers, (worker + 1) * n_users // workers
            yield from self._users(self._state, first, stop, rng)
            return
        # Each worker takes its share of all users, reading the files that hold them (a
        # file across two shares is read by both, each computing its own users).
        parts = self._state
        starts = np.cumsum([0, *parts.users])
        first, stop = worker * starts[-1] // workers, (worker + 1) * starts[-1] // workers
        if first == stop:
            return  # more workers than users
        mine = np.flatnonzero((starts[:-1] < stop) & (starts[1:] > first))
        if self.shuffle:
            rng.shuffle(mine)
        # NOTE: the next file is read on a thread while this one's users are computed
        # (pyarrow and the kernels release the GIL): reading and preparing a part file took
        # half as long as computing its users (20 targets). Two DataLoader workers on two
        # cores: median 1,300 -> 1,450 users/s (18M-row ledger, 4-5 runs each); spare cores
        # hide more of it. A worker then holds two part files, not one.
        with ThreadPoolExecutor(1) as reader:
            ahead = [reader.submit(parts.read, int(index)) for index in mine[:1]]
            for position, index in enumerate(mine):
                state = ahead.pop().result()
                if position + 1 < len(mine):
                    ahead.append(reader.submit(parts.read, int(mine[position + 1])))
                low, high = max(first, starts[index]), min(stop, starts[index + 1])
                yield from self._users(state, low - starts[index], high - starts[index], rng)

    def _users(
        self, state: _UserTargets, first: int, stop: int, rng: np.random.Generator
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Users [first, stop) of `state`, computed in chunks (in shuffled order with
        `shuffle`)."""
        starts = np.arange(first, stop, self.chunk_users)
        if self.shuffle:
            rng.shuffle(starts)
        offsets = state.arrays.offsets
        for start in starts:
            end = min(start + self.chunk_users, stop)
            targets = state.users_range(start, end)
            for user in range(start, end):
                yield state.item(user, targets, int(offsets[start]))


def pad_collate(batch: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Stack users of different lengths: features (B, T, F) zero-padded, targets (B, T, K)
    NaN-padded, mask (B, T) true on real rows, lengths (B,)."""
    lengths = torch.tensor([len(features) for features, _ in batch], dtype=torch.int64)
    longest = int(lengths.max()) if len(batch) else 0
    features = _batch_tensor(
        (len(batch), longest, batch[0][0].shape[1] if batch else 0), torch.float32
    )
    targets = _batch_tensor(
        (len(batch), longest, batch[0][1].shape[1] if batch else 0),
        batch[0][1].dtype if batch else torch.float32,
    )
    # NOTE: only the padding is filled: filling whole tensors first doubled the bytes written.
    for b, (feature_rows, target_rows) in enumerate(batch):
        features[b, : len(feature_rows)] = feature_rows
        features[b, len(feature_rows) :] = 0.0
        targets[b, : len(target_rows)] = target_rows
        targets[b, len(target_rows) :] = float("nan")
    mask = torch.arange(longest)[None, :] < lengths[:, None]
    return {"features": features, "targets": targets, "mask": mask, "lengths": lengths}


def _batch_tensor(shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """An uninitialised tensor; in a DataLoader worker, in shared memory, as torch's own
    default_collate makes it, so that sending it to the main process copies nothing.

    NOTE: a tensor in ordinary memory is copied into shared memory when the worker sends it.
    """
    if get_worker_info() is None:
        return torch.empty(shape, dtype=dtype)
    storage = torch.empty(0, dtype=dtype)._typed_storage()._new_shared(int(np.prod(shape)))
    return torch.empty(0, dtype=dtype).new(storage).view(shape)


def _input_names(target_set: TargetSet, features: Sequence[str], columns: Columns) -> list[str]:
    """The columns read for the targets and the features (derived features need none)."""
    if isinstance(features, str):
        raise DataError(f"features = {features!r}: expected a list of column names, not one string")
    read = [name for name in features if name not in DERIVED_FEATURES]
    return input_columns(target_set, columns, read)


def _features(
    table: pa.Table,
    names: Sequence[str],
    arrays: UserArrays,
    dictionaries: dict[str, pa.Array] | None = None,
) -> np.ndarray:
    """(N, n_features) float32 in the arrays' sorted order. A string feature is coded by
    its position in `dictionaries[name]` when given, else by order of first appearance."""
    out = np.empty((arrays.n_rows, len(names)), dtype=np.float32)
    index = pd.DatetimeIndex(arrays.timestamps.astype("datetime64[us]"))
    for f, name in enumerate(names):
        if name in DERIVED_FEATURES:
            out[:, f] = getattr(index, _DERIVED_ATTRIBUTE[name])
            continue
        column = table.column(name)
        if pa.types.is_dictionary(column.type):
            column = column.cast(column.type.value_type)
        if is_text(column.type) and dictionaries is not None:
            values = pc.index_in(column, value_set=dictionaries[name])
            values = values.to_numpy(zero_copy_only=False).astype(np.float32)
        elif is_text(column.type):
            values = pa.chunked_array(column).dictionary_encode().combine_chunks().indices
            values = values.to_numpy(zero_copy_only=False).astype(np.float32)
        elif (
            pa.types.is_integer(column.type)
            or pa.types.is_floating(column.type)
            or pa.types.is_boolean(column.type)
        ):
            values = column.cast(pa.float64()).fill_null(np.nan).to_numpy()
        else:
            raise DataError(
                f"feature column {name!r}: type {column.type}; expected a number, boolean or string column, "
                f"or one of {', '.join(DERIVED_FEATURES)}"
            )
        out[:, f] = values if arrays.order is None else values[arrays.order]
    return out
