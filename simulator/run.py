"""Running a world: cut it into files of consumers, simulate them on worker processes or a
Dask cluster, and assemble the ledger atomically.

The ledger's layout is fixed by the world alone: consumers are cut into blocks sized so a
block writes about `rows_per_file` transactions (one part file each). Tasks are runs of
whole blocks, so neither the number of workers nor the task size (`shard_size`) changes a
byte of the output. Memory is bounded by one block per worker.

Blocks write into a hidden `.NAME.partial` directory beside the output; a block is done
when its marker is written (after all its files). `resume=True` keeps done blocks and
redoes the rest; only when every block and table is written and the manifest is complete
is the directory renamed to the output path. A failed run leaves no directory that looks
like a ledger.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import json
import multiprocessing
import os
import platform
import posixpath
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from cardworld import __version__
from cardworld.errors import ConfigError, LedgerError
from cardworld.simulator import ledger
from cardworld.simulator.fraud import build_fraud
from cardworld.simulator.kernels.idset import IdSet
from cardworld.simulator.kernels.jit import compilations
from cardworld.simulator.merchants import merchants_table
from cardworld.simulator.purchases import expected_rows, release_buffers, simulate_shard
from cardworld.simulator.world_arrays import build_arrays
from cardworld.worlds.load import load_world
from cardworld.worlds.schema import World

if TYPE_CHECKING:
    from distributed import Client

PART_TABLES = ("consumers", "cards", "compromises", "homes")


@dataclass(frozen=True)
class Summary:
    path: str
    world: str
    consumers: int
    cards: int
    merchants: int
    rows: int
    fraud_rows: int
    fraud_by_mechanism: dict[str, int]
    seconds: float
    blocks_resumed: int = 0  # part files a killed run had finished, kept by --resume
    rows_resumed: int = 0  # and their rows
    # Kernels this process compiled rather than loaded from numba's cache: a first run,
    # whose time is mostly compiling (workers compile their own too).
    compiled: int = 0

    @property
    def fraud_rate(self) -> float:
        return self.fraud_rows / self.rows if self.rows else 0.0

    @property
    def rows_per_second(self) -> float:
        """Rows this run simulated (not those a resumed run kept) per second."""
        return (self.rows - self.rows_resumed) / self.seconds if self.seconds else 0.0


_BUILT: dict[str, tuple] = {}


def _built(world: World) -> tuple:
    """Arrays, labels and the fraud world of a world, built once per process."""
    if world.config_hash not in _BUILT:
        arrays, labels = build_arrays(world)
        _BUILT[world.config_hash] = (arrays, labels, build_fraud(world, arrays, labels))
    return _BUILT[world.config_hash]


def consumers_per_file(world: World) -> int:
    """Consumers per part file: about `rows_per_file` expected transactions each."""
    rows_per_file = world.spec.simulation.rows_per_file
    return max(1, int(round(rows_per_file / max(expected_rows(world), 1.0))))


@contextlib.contextmanager
def _long_lived_objects_frozen() -> Iterator[None]:
    """Keep the objects that exist now (modules, the world's arrays) out of the garbage
    collector's way until the block is simulated.

    NOTE: a block makes many small objects (the timeline's events and segments), and each
    of the collections they trigger walked every object of the process: 8% of a block's
    time, 2% when frozen. Only a process's main thread freezes (a Dask worker runs blocks
    in several threads, which would unfreeze each other's), and a process that froze
    objects itself is left as it is.
    """
    if gc.get_freeze_count() or threading.current_thread() is not threading.main_thread():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _run_blocks(
    world: World, url: str, blocks: list[tuple[int, int, int]], keep_buffers: bool = False
) -> list[dict]:
    """Simulate blocks of consumers and write their files; returns each block's counts and
    the manifest record of its transactions file. The thread's row buffers are let go at
    the end unless `keep_buffers` (a process of our own, which runs block after block)."""
    fs, root = ledger.storage(url)
    try:
        return [_run_block(world, fs, root, *block) for block in blocks]
    finally:
        if not keep_buffers:
            release_buffers()


def _run_block(world: World, fs, root: str, index: int, lo: int, hi: int) -> dict:
    """Simulate consumers [lo, hi) as block `index` and write its files; returns its counts."""
    arrays, labels, fraud = _built(world)
    with _long_lived_objects_frozen():
        ids = np.arange(lo, hi, dtype=np.int64)
        result = simulate_shard(world, arrays, labels, fraud, ids)
    name = f"transactions/part-{index:05d}.parquet"
    record = ledger.write_parquet(
        fs, result.transactions, posixpath.join(root, name), ledger.TRANSACTION_OPTIONS
    )
    parts = {
        "consumers": result.consumers,
        "cards": result.cards,
        "compromises": result.compromises,
        "homes": result.homes,
        "merchants": pa.table({"merchant_id": result.merchant_ids}),
    }
    for table_name, table in parts.items():
        ledger.write_arrow(
            fs, table, posixpath.join(root, "_parts", f"{table_name}-{index:05d}.arrow")
        )
    mechanism = result.transactions.column("fraud_mechanism").drop_null().to_pylist()
    counts = {
        "block": index,
        "rows": result.transactions.num_rows,
        "fraud_rows": len(mechanism),
        "fraud_by_mechanism": {m: mechanism.count(m) for m in sorted(set(mechanism))},
        "file": {name: record},
    }
    ledger.write_json(fs, counts, posixpath.join(root, "_parts", f"done-{index:05d}.json"))
    return counts


def simulate(
    world: str | Path | World,
    out: str | Path,
    *,
    consumers: int | None = None,
    start=None,
    end=None,
    seed: int | None = None,
    workers: int | None = None,
    shard_size: int | None = None,
    scheduler: str | None = None,
    resume: bool = False,
    overwrite: bool = False,
    on_progress: Callable[[int, int, int], None] | None = None,
) -> Summary:
    """Simulate a world and write its ledger to `out` (a path or an fsspec URL).

    workers: local worker processes (default: all cores); scheduler: the address of a
    Dask scheduler (tcp://host:port) to run on instead. shard_size: consumers per task,
    rounded up to whole part files. resume: keep the blocks a killed run finished.
    """
    began = time.perf_counter()
    compiled_before = compilations()
    overrides = {"consumers": consumers, "start": start, "end": end, "seed": seed}
    if isinstance(world, World):
        if any(v is not None for v in overrides.values()):
            raise ConfigError("pass overrides to load_world when giving a World object")
        loaded = world
    else:
        loaded = load_world(world, **overrides)
    fs, root = ledger.storage(out, flag="--out")
    if fs.exists(root) and not fs.isdir(root):
        raise LedgerError(f"{out}: exists and is not a directory; choose another --out")
    partial = posixpath.join(posixpath.dirname(root), f".{posixpath.basename(root)}.partial")
    partial_url = fs.unstrip_protocol(partial)
    if fs.exists(root) and fs.ls(root):
        if resume and not overwrite and not fs.exists(partial):
            raise LedgerError(
                f"{out}: a finished ledger, nothing to resume (`cardworld verify {out}` checks "
                "it; --overwrite without --resume simulates it again)"
            )
        if not overwrite:
            raise LedgerError(
                f"{out}: already exists and is not empty; choose another --out or pass "
                "--overwrite (overwrite=True from Python)"
            )
        _check_replaceable(fs, root, out)

    n = loaded.spec.simulation.consumers
    per_file = consumers_per_file(loaded)
    blocks = [(i, lo, min(n, lo + per_file)) for i, lo in enumerate(range(0, n, per_file))]
    plan = {
        "cardworld": __version__,
        "config_hash": loaded.config_hash,
        "consumers_per_file": per_file,
        "blocks": len(blocks),
    }
    # Connected before the partial directory is made: a wrong address leaves nothing behind.
    with _dask_client(scheduler) as client:
        finished = _prepare_partial(fs, partial, plan, resume)
        todo = [b for b in blocks if b[0] not in finished]
        per_task = max(1, -(-(shard_size or per_file) // per_file))
        tasks = [todo[i : i + per_task] for i in range(0, len(todo), per_task)]

        counts = list(finished.values())
        rows = sum(c["rows"] for c in counts)
        parts = posixpath.join(partial, "_parts")
        arrays, labels, fraud = _built(loaded)
        merchants = _MerchantsFile(fs, posixpath.join(partial, "merchants.parquet"), arrays, labels)
        merchants.take(fs, parts, finished)
        if on_progress:
            on_progress(len(counts), len(blocks), rows)
        for task_counts in _execute(loaded, partial_url, tasks, workers, client):
            counts.extend(task_counts)
            rows += sum(c["rows"] for c in task_counts)
            merchants.take(fs, parts, [c["block"] for c in task_counts])
            if on_progress:
                on_progress(len(counts), len(blocks), rows)

        tables = _write_tables(fs, partial, len(blocks), merchants, fraud.table)
        files = {name: record for c in counts for name, record in c["file"].items()}
        files.update({f"{name}.parquet": record for name, record in tables.items()})
        row_counts = {name: record["rows"] for name, record in tables.items()}
        ledger.write_manifest(fs, partial, _manifest(loaded, blocks, rows, row_counts), files)
        _publish(fs, partial, root)

    by_mechanism: dict[str, int] = {}
    for c in counts:
        for m, k in c["fraud_by_mechanism"].items():
            by_mechanism[m] = by_mechanism.get(m, 0) + k
    return Summary(
        path=str(out),
        world=loaded.name,
        consumers=n,
        cards=row_counts["cards"],
        merchants=row_counts["merchants"],
        rows=rows,
        fraud_rows=sum(c["fraud_rows"] for c in counts),
        fraud_by_mechanism=dict(sorted(by_mechanism.items())),
        seconds=time.perf_counter() - began,
        blocks_resumed=len(finished),
        rows_resumed=sum(c["rows"] for c in finished.values()),
        compiled=compilations() - compiled_before,
    )


def _write_tables(fs, partial: str, n_blocks: int, merchants, fraudsters: pa.Table) -> dict:
    """The entity tables from the blocks' parts, written side by side (pyarrow encodes
    without holding the GIL); returns each table's manifest record, by table name."""
    parts = posixpath.join(partial, "_parts")
    tables = {name: _concat(fs, parts, name, n_blocks) for name in PART_TABLES}
    tables["fraudsters"] = fraudsters
    with ThreadPoolExecutor(len(tables) + 1) as pool:
        written = {
            name: pool.submit(
                ledger.write_parquet, fs, table, posixpath.join(partial, f"{name}.parquet")
            )
            for name, table in tables.items()
        }
        written["merchants"] = pool.submit(merchants.close, fs)
        records = {name: future.result() for name, future in written.items()}
    fs.rm(parts, recursive=True)
    return records


def _prepare_partial(fs, partial: str, plan: dict, resume: bool) -> dict[int, dict]:
    """Set up the partial directory; with resume, the counts of blocks already done."""
    plan_path = posixpath.join(partial, "_parts", "plan.json")
    if resume and fs.exists(plan_path):
        found = json.loads(fs.cat_file(plan_path))
        if found != plan:
            changed = "; ".join(
                f"{key} was {str(found.get(key))[:16]}, now {str(plan.get(key))[:16]}"
                for key in sorted(set(found) | set(plan))
                if found.get(key) != plan.get(key)
            )
            raise LedgerError(
                f"{partial}: cannot resume: it was started for another world, options or "
                f"cardworld version ({changed}); run again without --resume to start over"
            )
        done = {}
        for path in fs.glob(posixpath.join(partial, "_parts", "done-*.json")):
            counts = json.loads(fs.cat_file(path))
            done[counts["block"]] = counts
        return done
    if fs.exists(partial):
        fs.rm(partial, recursive=True)
    fs.makedirs(posixpath.join(partial, "transactions"), exist_ok=True)
    fs.makedirs(posixpath.join(partial, "_parts"), exist_ok=True)
    ledger.write_json(fs, plan, plan_path)
    return {}


@contextlib.contextmanager
def _dask_client(scheduler: str | None) -> Iterator[Client | None]:
    """A client of the Dask scheduler at `scheduler`, or None to run here."""
    if not scheduler:
        yield None
        return
    try:
        from distributed import Client
    except ImportError:
        raise ConfigError("--scheduler needs Dask: pip install 'cardworld[dask]'") from None
    try:
        client = Client(scheduler, timeout="30s")
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigError(
            f"--scheduler {scheduler}: could not reach a Dask scheduler there ({exc}); "
            "expected the address a running scheduler prints, such as tcp://HOST:8786"
        ) from None
    with client:
        yield client


def _execute(
    world: World, url: str, tasks: list, workers: int | None, client: Client | None
) -> Iterator[list[dict]]:
    """Run tasks here, on local worker processes, or on a Dask cluster; yield as they finish."""
    if not tasks:
        return
    if client is not None:
        from distributed import as_completed as dask_completed

        remote_world = client.scatter(world, broadcast=True)
        futures = [
            client.submit(_run_blocks, remote_world, url, task, pure=False) for task in tasks
        ]
        for future in dask_completed(futures):
            yield future.result()
        return
    import os

    workers = max(1, min(workers or os.cpu_count() or 1, len(tasks)))
    if workers == 1:
        try:
            for task in tasks:
                yield _run_blocks(world, url, task, keep_buffers=True)
        finally:
            release_buffers()  # hundreds of megabytes the caller's process need not keep
        return
    # NOTE: fork (where it exists) lets workers inherit the arrays already built here and
    # needs no `if __name__ == "__main__"` guard in the caller's script.
    _built(world)
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    context = multiprocessing.get_context(method)
    with ProcessPoolExecutor(
        workers, context, initializer=_worker_start, initargs=(os.getpid(),)
    ) as executor:
        futures = [
            executor.submit(_run_blocks, world, url, task, keep_buffers=True) for task in tasks
        ]
        try:
            for future in as_completed(futures):
                yield future.result()
        except BaseException:
            for future in futures:
                future.cancel()
            raise


def _worker_start(parent: int) -> None:
    """A worker process's start: it ends with its parent, and keeps freed memory."""
    _end_with_parent(parent)
    _keep_freed_memory()


def _end_with_parent(parent: int) -> None:
    """Have Linux end this process when the process that started it dies (elsewhere,
    nothing to do).

    NOTE: a run killed with SIGTERM or SIGKILL ends at once, without shutting its process
    pool down, and its workers went on simulating (and holding their memory) until their
    tasks were done. Ctrl-C reaches the workers itself (the terminal signals the whole
    process group).
    """
    prctl = _libc_function("prctl") if sys.platform.startswith("linux") else None
    if prctl is None:
        return
    pr_set_pdeathsig = 1
    prctl(pr_set_pdeathsig, signal.SIGTERM)
    if os.getppid() != parent:  # the parent died before the request: end now
        os.kill(os.getpid(), signal.SIGTERM)


def _libc_function(name: str):
    """A function of the C library (libc.so.6), or None where it has none by that name."""
    try:
        return getattr(ctypes.CDLL("libc.so.6"), name)
    except (OSError, AttributeError):
        return None


def _keep_freed_memory() -> None:
    """Have glibc's malloc keep the memory a block frees for the next block instead of
    handing it back to the system, and have pyarrow allocate through it (elsewhere,
    nothing to do).

    NOTE: by default glibc returns a freed region of more than a few megabytes (a block's
    NumPy arrays under 32 MB, numba's allocations, Python objects) to the system, and the
    next block's pages fault and are zeroed again. Keeping them ran a worker's blocks 9%
    faster (median of 8 runs of 8 blocks each). A worker's memory then stays at its peak,
    which a block bounds anyway. Only our own worker processes do this: a caller's process
    or a Dask worker is left alone.
    """
    mallopt = _libc_function("mallopt") if platform.libc_ver()[0] == "glibc" else None
    if mallopt is None:
        return
    m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's mallopt parameters
    mallopt(m_mmap_threshold, 32 << 20)  # glibc's largest: allocate below it from the heap
    mallopt(m_trim_threshold, (1 << 31) - 1)  # and never shrink the heap
    # pyarrow's own allocator (mimalloc) gives freed pages back to the system as well: a
    # block's columns and its Parquet file then fault in afresh. Through malloc they come
    # from the kept heap: workers' system time 1.0 against 1.7 s, and the whole run 10%
    # faster (2,000 consumers x 10 years, 2 workers, three runs of each, alternating).
    pa.set_memory_pool(pa.system_memory_pool())


def _concat(fs, parts: str, name: str, n_blocks: int) -> pa.Table:
    return pa.concat_tables(
        [
            ledger.read_arrow(fs, posixpath.join(parts, f"{name}-{i:05d}.arrow"))
            for i in range(n_blocks)
        ]
    )


class _MerchantsFile:
    """merchants.parquet, written while the blocks run: each block's merchants not seen in
    an earlier block, in block order (so the bytes do not depend on which worker finishes
    first), sorted by id within a block. Memory: the ids seen and one row group.

    NOTE: a large world references millions of merchants; building their rows here as the
    blocks come in keeps them out of the run's tail and out of any one process's memory.
    Its row groups (ledger.MERCHANT_OPTIONS) are written as soon as they are whole.
    """

    def __init__(self, fs, path: str, arrays, labels) -> None:
        self.path, self.arrays, self.labels = path, arrays, labels
        self.seen = IdSet()
        self.pending: list[pa.Table] = []
        self.ready: set[int] = set()
        self.next_block = 0
        self.rows = 0
        schema = merchants_table(np.empty(0, np.int64), arrays, labels).schema
        options = dict(ledger.MERCHANT_OPTIONS)
        self.row_group_size = options.pop("row_group_size")
        self.tmp = posixpath.join(posixpath.dirname(path), f".{posixpath.basename(path)}.tmp")
        self.handle = fs.open(self.tmp, "wb")
        self.writer = pq.ParquetWriter(self.handle, schema, **options)

    def take(self, fs, parts: str, blocks) -> None:
        """Note that `blocks` finished (their id parts are written), and add the merchants
        of every block that is now next in block order."""
        self.ready.update(blocks)
        while self.next_block in self.ready:
            path = posixpath.join(parts, f"merchants-{self.next_block:05d}.arrow")
            ids = ledger.read_arrow(fs, path).column("merchant_id").to_numpy()  # sorted, unique
            new = ids[self.seen.add(ids)]
            self.pending.append(merchants_table(new, self.arrays, self.labels))
            self.next_block += 1
        self._flush(whole_groups_only=True)

    def _flush(self, whole_groups_only: bool) -> None:
        """Write the pending rows in whole row groups (and the last, shorter one unless
        whole_groups_only, which keeps it pending instead)."""
        if not self.pending:
            return
        table = pa.concat_tables(self.pending)
        n = table.num_rows
        if whole_groups_only:
            n -= n % self.row_group_size
        if n:
            self.writer.write_table(table.slice(0, n), row_group_size=self.row_group_size)
            self.rows += n
        self.pending = [table.slice(n)]

    def close(self, fs) -> dict:
        """Finish the file and move it into place; returns its manifest record."""
        self._flush(whole_groups_only=False)
        self.writer.close()
        ledger.sync(fs, self.handle)
        self.handle.close()
        fs.mv(self.tmp, self.path)
        return {
            "sha256": ledger.sha256(fs, self.path),
            "bytes": fs.size(self.path),
            "rows": self.rows,
        }


def _manifest(world: World, blocks: list, rows: int, row_counts: dict[str, int]) -> dict:
    import numba
    import simpy

    sim = world.spec.simulation
    return {
        "format": ledger.FORMAT,
        "world": world.name,
        "seed": sim.seed,
        "config_hash": world.config_hash,
        "start": sim.start.isoformat(),
        "end": sim.end.isoformat(),
        "consumers": sim.consumers,
        "blocks": [
            {"index": i, "consumers": [lo, hi], "file": f"transactions/part-{i:05d}.parquet"}
            for i, lo, hi in blocks
        ],
        "row_counts": {"transactions": rows, **dict(sorted(row_counts.items()))},
        "versions": {
            "cardworld": __version__,
            "python": platform.python_version(),
            "numpy": np.__version__,
            "numba": numba.__version__,
            "pyarrow": pa.__version__,
            "simpy": simpy.__version__,
        },
    }


def _check_replaceable(fs, root: str, out) -> None:
    """--overwrite replaces a ledger, never a folder of other files or the working directory."""
    if not fs.exists(posixpath.join(root, ledger.MANIFEST)):
        raise LedgerError(
            f"{out}: is not a cardworld ledger (no {ledger.MANIFEST}), and --overwrite replaces "
            "only a ledger; choose another --out"
        )
    protocols = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
    if "file" in protocols:
        here = Path.cwd().resolve()
        if here == Path(root).resolve() or Path(root).resolve() in here.parents:
            raise LedgerError(f"{out}: holds the working directory; choose another --out")


def _publish(fs, partial: str, root: str) -> None:
    """Move the finished ledger into place; an existing one is replaced only now."""
    if fs.exists(root):
        old = posixpath.join(posixpath.dirname(root), f".{posixpath.basename(root)}.old")
        if fs.exists(old):
            fs.rm(old, recursive=True)
        fs.mv(root, old, recursive=True)
        fs.mv(partial, root, recursive=True)
        fs.rm(old, recursive=True)
    else:
        fs.mv(partial, root, recursive=True)
