"""Running a world: cut it into shards of consumers, simulate them on worker processes,
and assemble the ledger directory atomically.

Shards write their part files into a hidden `.NAME.partial` directory beside the output;
only when every shard and table is written and the manifest is complete is it renamed
to the output path. A failed run leaves no directory that looks like a ledger.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import platform
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from cardworld.errors import LedgerError
from cardworld.simulator import ledger
from cardworld.simulator.fraud import build_fraud
from cardworld.simulator.merchants import merchants_table
from cardworld.simulator.purchases import simulate_shard
from cardworld.simulator.world_arrays import build_arrays
from cardworld.worlds.load import load_world
from cardworld.worlds.schema import World


@dataclass(frozen=True)
class Summary:
    path: Path
    world: str
    consumers: int
    cards: int
    merchants: int
    rows: int
    fraud_rows: int
    fraud_by_mechanism: dict[str, int]
    seconds: float

    @property
    def fraud_rate(self) -> float:
        return self.fraud_rows / self.rows if self.rows else 0.0

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


@functools.cache
def _world(path: str, overrides: tuple) -> tuple:
    """The world and everything built from it, once per process."""
    world = load_world(path, **dict(overrides))
    arrays, labels = build_arrays(world)
    return world, arrays, labels, build_fraud(world, arrays, labels)


def _run_shard(
    path: str, overrides: tuple, index: int, lo: int, hi: int, parts: str
) -> tuple[int, int, dict]:
    """Simulate consumers [lo, hi) and write the shard's part files; returns row counts."""
    world, arrays, labels, fraud = _world(path, overrides)
    result = simulate_shard(world, arrays, labels, fraud, np.arange(lo, hi, dtype=np.int64))
    parts_dir = Path(parts)
    ledger.write_parquet(
        result.transactions, parts_dir.parent / "transactions" / f"part-{index:05d}.parquet"
    )
    ledger.write_parquet(result.consumers, parts_dir / f"consumers-{index:05d}.parquet")
    ledger.write_parquet(result.cards, parts_dir / f"cards-{index:05d}.parquet")
    ledger.write_parquet(result.compromises, parts_dir / f"compromises-{index:05d}.parquet")
    ledger.write_parquet(
        pa.table({"merchant_id": result.merchant_ids}), parts_dir / f"merchants-{index:05d}.parquet"
    )
    mechanism = result.transactions.column("fraud_mechanism").drop_null().to_pylist()
    by_mechanism = {m: mechanism.count(m) for m in sorted(set(mechanism))}
    return result.transactions.num_rows, len(mechanism), by_mechanism


def simulate(
    world: str | Path,
    out: str | Path,
    *,
    consumers: int | None = None,
    start=None,
    end=None,
    seed: int | None = None,
    workers: int | None = None,
    shard_size: int | None = None,
    overwrite: bool = False,
    on_progress: Callable[[int, int, int], None] | None = None,
) -> Summary:
    """Simulate a world and write its ledger to `out`; returns a summary of the run."""
    began = time.perf_counter()
    overrides = tuple(
        sorted(
            {
                k: v
                for k, v in {
                    "consumers": consumers,
                    "start": start,
                    "end": end,
                    "seed": seed,
                    "shard_size": shard_size,
                }.items()
                if v is not None
            }.items()
        )
    )
    loaded = load_world(world, **dict(overrides))
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise LedgerError(f"{out}: exists and is not a directory; choose another --out")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise LedgerError(
            f"{out}: already exists and is not empty; choose another --out or pass --overwrite"
        )
    partial = out.parent / f".{out.name}.partial"
    if partial.exists():
        shutil.rmtree(partial)
    parts = partial / "_parts"
    (partial / "transactions").mkdir(parents=True)
    parts.mkdir()

    n, size = loaded.spec.simulation.consumers, loaded.spec.simulation.shard_size
    shards = [(i, lo, min(n, lo + size)) for i, lo in enumerate(range(0, n, size))]
    workers = max(1, min(workers or os.cpu_count() or 1, len(shards)))
    path = str(loaded.path)
    rows = fraud_rows = 0
    by_mechanism: dict[str, int] = {}
    done = 0
    if workers == 1:
        results = (_run_shard(path, overrides, i, lo, hi, str(parts)) for i, lo, hi in shards)
        executor = None
    else:
        # NOTE: fork (where it exists) lets workers inherit the world already built here and
        # needs no `if __name__ == "__main__"` guard in the caller's script.
        _world(path, overrides)
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        executor = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(method))
        futures = [
            executor.submit(_run_shard, path, overrides, i, lo, hi, str(parts))
            for i, lo, hi in shards
        ]
        results = (f.result() for f in futures)
    try:
        for shard_rows, shard_fraud, shard_mechanisms in results:
            rows += shard_rows
            fraud_rows += shard_fraud
            for m, c in shard_mechanisms.items():
                by_mechanism[m] = by_mechanism.get(m, 0) + c
            done += 1
            if on_progress:
                on_progress(done, len(shards), rows)
    finally:
        if executor is not None:
            executor.shutdown(cancel_futures=True)

    _, arrays, labels, fraud = _world(path, overrides)
    tables = {
        name: _concat(parts, name, len(shards)) for name in ("consumers", "cards", "compromises")
    }
    merchant_ids = _concat(parts, "merchants", len(shards)).column("merchant_id").to_numpy()
    tables["merchants"] = merchants_table(merchant_ids, arrays, labels)
    tables["fraudsters"] = fraud.table
    for name, table in tables.items():
        ledger.write_parquet(table, partial / f"{name}.parquet")
    shutil.rmtree(parts)
    ledger.write_manifest(partial, _manifest(loaded, shards, rows, tables))
    _publish(partial, out)
    return Summary(
        path=out,
        world=loaded.name,
        consumers=n,
        cards=tables["cards"].num_rows,
        merchants=tables["merchants"].num_rows,
        rows=rows,
        fraud_rows=fraud_rows,
        fraud_by_mechanism=by_mechanism,
        seconds=time.perf_counter() - began,
    )


def _concat(parts: Path, name: str, n_shards: int) -> pa.Table:
    return pa.concat_tables(
        [pq.read_table(parts / f"{name}-{i:05d}.parquet") for i in range(n_shards)]
    )


def _manifest(world: World, shards: list, rows: int, tables: dict[str, pa.Table]) -> dict:
    import numba
    import simpy

    from cardworld import __version__

    sim = world.spec.simulation
    return {
        "format": ledger.FORMAT,
        "world": world.name,
        "seed": sim.seed,
        "config_hash": world.config_hash,
        "start": sim.start.isoformat(),
        "end": sim.end.isoformat(),
        "consumers": sim.consumers,
        "shards": [
            {"index": i, "consumers": [lo, hi], "file": f"transactions/part-{i:05d}.parquet"}
            for i, lo, hi in shards
        ],
        "row_counts": {"transactions": rows, **{name: t.num_rows for name, t in tables.items()}},
        "versions": {
            "cardworld": __version__,
            "python": platform.python_version(),
            "numpy": np.__version__,
            "numba": numba.__version__,
            "pyarrow": pa.__version__,
            "simpy": simpy.__version__,
        },
    }


def _publish(partial: Path, out: Path) -> None:
    """Move the finished ledger into place; an existing one is replaced only now."""
    if out.exists():
        old = out.parent / f".{out.name}.old"
        if old.exists():
            shutil.rmtree(old)
        os.replace(out, old)
        os.replace(partial, out)
        shutil.rmtree(old)
    else:
        os.replace(partial, out)
