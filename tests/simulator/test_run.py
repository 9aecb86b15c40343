"""Running at scale: the same bytes on any number of workers, on Dask, after a kill and resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import cardworld
from cardworld.simulator import ledger
from cardworld.simulator.run import consumers_per_file, simulate

from ..test_cli import CLI  # noqa: TID252


@pytest.fixture(scope="module")
def many_files(tmp_path_factory):
    """A tiny-world variant cut into many small part files, and its uninterrupted ledger."""
    tmp = tmp_path_factory.mktemp("many")
    world = tmp / "many.toml"
    world.write_text(
        'extends = "tiny"\nname = "many"\ndescription = "small part files"\n[simulation]\nconsumers = 160\nrows_per_file = 5000\n'
    )
    reference = tmp / "reference"
    simulate(world, reference, workers=1)
    return world, reference


def test_layout_depends_on_the_world_only(many_files):
    world, reference = many_files
    per_file = consumers_per_file(cardworld.load_world(world))
    manifest = json.loads((reference / "manifest.json").read_text())
    assert len(manifest["blocks"]) == -(-160 // per_file) > 5


@pytest.mark.parametrize(("workers", "shard_size"), [(2, None), (2, 45), (1, 1000)])
def test_identical_bytes_for_any_workers_and_shard_size(
    tmp_path, many_files, ledger_bytes, workers, shard_size
):
    world, reference = many_files
    out = tmp_path / "ledger"
    simulate(world, out, workers=workers, shard_size=shard_size)
    assert ledger_bytes(out) == ledger_bytes(reference)


def test_merchants_are_written_in_whole_row_groups_as_blocks_finish(
    tmp_path, monkeypatch, many_files
):
    world, reference = many_files
    monkeypatch.setitem(ledger.MERCHANT_OPTIONS, "row_group_size", 700)
    out = tmp_path / "ledger"
    simulate(world, out, workers=2)
    groups = pq.ParquetFile(out / "merchants.parquet").metadata
    sizes = [groups.row_group(i).num_rows for i in range(groups.num_row_groups)]
    assert len(sizes) > 3 and set(sizes[:-1]) == {700} and 0 < sizes[-1] <= 700
    written = pq.read_table(out / "merchants.parquet")
    assert written.equals(pq.read_table(reference / "merchants.parquet"))


def test_identical_bytes_on_a_dask_cluster_of_processes(tmp_path, many_files, ledger_bytes):
    from distributed import LocalCluster

    world, reference = many_files
    out = tmp_path / "ledger"
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        simulate(world, out, scheduler=cluster.scheduler_address)
    assert ledger_bytes(out) == ledger_bytes(reference)


def test_resume_after_kill_gives_identical_bytes(tmp_path, many_files, ledger_bytes):
    world, reference = many_files
    out = tmp_path / "ledger"
    partial = tmp_path / ".ledger.partial" / "_parts"
    cmd = [CLI, "simulate", "--world", str(world), "--out", str(out), "--workers", "2"]
    process = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.time() + 300
    while time.time() < deadline and len(list(partial.glob("done-*.json"))) < 2:
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)  # the CLI and its worker processes, mid-run
    process.wait()
    done_before = len(list(partial.glob("done-*.json")))
    assert 2 <= done_before < len(json.loads((reference / "manifest.json").read_text())["blocks"])
    assert not out.exists()  # nothing looks like a complete ledger

    summary = simulate(world, out, workers=2, resume=True)
    assert summary.blocks_resumed >= done_before
    assert 0 < summary.rows_resumed < summary.rows  # rows/s counts only the rows made now
    assert summary.rows_per_second == pytest.approx(
        (summary.rows - summary.rows_resumed) / summary.seconds
    )
    assert ledger_bytes(out) == ledger_bytes(reference)
    assert cardworld.verify(out) == []
    # Once finished, there is nothing to resume: said so, and the ledger left as it is.
    with pytest.raises(cardworld.LedgerError, match="a finished ledger, nothing to resume"):
        simulate(world, out, workers=2, resume=True)
    assert ledger_bytes(out) == ledger_bytes(reference)


def _children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # a process that ended meanwhile
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc; Linux only")
def test_workers_end_when_the_run_is_killed(tmp_path, many_files):
    world, _ = many_files
    cmd = [CLI, "simulate", "--world", str(world), "--out", str(tmp_path / "l"), "--workers", "2"]
    process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and len(workers := _children(process.pid)) < 2:
        time.sleep(0.05)
    assert len(workers) >= 2 and process.poll() is None
    process.kill()  # the main process alone: no pool shutdown runs
    process.wait()
    deadline = time.time() + 30
    while time.time() < deadline and any(_alive(w) for w in workers):
        time.sleep(0.1)
    assert not any(_alive(w) for w in workers)


def test_resume_refuses_a_partial_run_of_another_world(tmp_path, many_files):
    world, _ = many_files
    out = tmp_path / "ledger"
    partial = tmp_path / ".ledger.partial" / "_parts"
    partial.mkdir(parents=True)
    (partial / "plan.json").write_text(
        json.dumps({"config_hash": "other", "consumers_per_file": 1, "blocks": 1})
    )
    with pytest.raises(cardworld.LedgerError, match="cannot resume") as err:
        simulate(world, out, resume=True, workers=1)
    assert "config_hash was other, now " in str(err.value)
    assert "run again without --resume" in str(err.value)


def test_ledgers_can_live_at_an_fsspec_url(many_files):
    world, reference = many_files
    url = "memory://cardworld-test/ledger"
    simulate(world, url, workers=1)
    assert cardworld.verify(url) == []
    assert (
        cardworld.transactions(url).count_rows() == cardworld.transactions(reference).count_rows()
    )


PEAK_RSS = """
import resource, sys, datetime as dt
from cardworld.simulator.run import simulate
simulate(sys.argv[1], sys.argv[2], consumers=300, start=dt.date(int(sys.argv[3]), 1, 1), end=dt.date(2019, 12, 31), workers=1)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def test_memory_does_not_grow_with_the_number_of_years(tmp_path):
    world = tmp_path / "w.toml"
    world.write_text(
        'extends = "tiny"\nname = "w"\ndescription = "memory"\n[simulation]\nrows_per_file = 50000\n'
    )

    def peak_kib(first_year: int) -> int:
        out = tmp_path / f"from{first_year}"
        done = subprocess.run(
            [sys.executable, "-c", PEAK_RSS, str(world), str(out), str(first_year)],
            capture_output=True,
            text=True,
            cwd=tmp_path,  # not the repository root, whose cardworld/ would shadow the install
        )
        assert done.returncode == 0, done.stderr
        return int(done.stdout.split()[-1])

    one_year, twelve_years = peak_kib(2019), peak_kib(2008)
    # Twelve years write ~12x the rows (about 1.7M): holding them would add well over
    # 200 MiB. Memory bounded by one part file stays within 100 MiB of the one-year run.
    assert twelve_years < one_year + 100 * 1024, (one_year, twelve_years)
