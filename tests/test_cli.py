"""The command line as a user runs it: the installed `cardworld` script in a subprocess."""

from __future__ import annotations

import dataclasses
import errno
import os
import shutil
import subprocess
import sys
import types
from pathlib import Path

import numba
import pytest

import cardworld
from cardworld.errors import ConfigError, LedgerError
from cardworld.simulator import run
from cardworld.simulator.kernels.jit import compilations

CLI = shutil.which("cardworld") or str(Path(sys.executable).parent / "cardworld")


def cardworld_cli(*args: str, cwd=None, columns: str | None = "400") -> subprocess.CompletedProcess:
    # A wide console, so that rich does not wrap the messages the tests look for
    # (columns=None: the width a pipe gets by default).
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    if columns is not None:
        env["COLUMNS"] = columns
    return subprocess.run(
        [CLI, *args], capture_output=True, text=True, cwd=cwd, timeout=600, env=env
    )


def test_simulate_writes_a_valid_ledger_and_prints_a_summary(tmp_path):
    out = tmp_path / "ledger"
    result = cardworld_cli(
        "simulate", "--world", "tiny", "--out", str(out), "--consumers", "20", "--workers", "1"
    )
    assert result.returncode == 0, result.stderr
    for word in ("transactions", "fraud rate", "rows/s", "consumers"):
        assert word in result.stdout
    assert cardworld.verify(out) == []
    assert cardworld.read_table(out, "consumers").num_rows == 20
    again = cardworld_cli("simulate", "--world", "tiny", "--out", str(out), "--consumers", "20")
    assert again.returncode == 2 and "already exists" in again.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["simulate", "--world", "atlantis", "--out", "x"], "unknown world 'atlantis'"),
        (
            ["simulate", "--world", "tiny", "--out", "x", "--start", "2019-02-30"],
            "--start must be a date",
        ),
        (["simulate", "--world", "tiny", "--out", "x", "--consumers", "0"], "--consumers"),
        (["verify", "nowhere"], "nowhere: does not exist; expected a cardworld ledger"),
        (
            ["simulate", "--world", "tiny", "--out", "foo://x/led", "--consumers", "5"],
            "error: --out foo://x/led: fsspec cannot open foo:// here (Protocol not known: foo)",
        ),
        (["verify", "foo://bucket/x"], "error: foo://bucket/x: fsspec cannot open foo:// here"),
    ],
)
def test_bad_input_is_one_clear_error_with_exit_code_2(tmp_path, args, message):
    result = cardworld_cli(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["simulate", "--world", "tiny", "--out", "x", "--seed", "-1"],
            "error: Invalid value for '--seed': ",
        ),
        (["simulate", "--world", "tiny", "--bogus"], "error: No such option: --bogus"),
        (["verify"], "error: Missing argument"),
        (
            ["synth", "sample", "m", "--groups", "0", "--out", "y.csv"],
            "Invalid value for '--groups'",
        ),
    ],
)
def test_a_bad_flag_is_one_line_naming_it_and_the_help_to_read(tmp_path, args, line):
    result = cardworld_cli(*args, cwd=tmp_path)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and line in result.stderr, result.stderr
    command = " ".join(a for a in args[:2] if not a.startswith("-"))
    assert result.stderr.rstrip().endswith(f"(see `cardworld {command} --help`)")
    assert list(tmp_path.iterdir()) == []


def test_version_and_short_help():
    version = cardworld_cli("--version")
    assert version.returncode == 0 and version.stdout == f"cardworld {cardworld.__version__}\n"
    for args in (["-h"], ["simulate", "-h"], ["synth", "fit", "-h"]):
        shown = cardworld_cli(*args)
        assert shown.returncode == 0 and "Usage: cardworld" in shown.stdout, args


def test_errors_name_the_flags_and_paths_the_user_gave(tmp_path, tiny_ledger):
    afile = tmp_path / "afile"
    afile.write_text("mine")
    (tmp_path / "dd" / "ledger").mkdir(parents=True)
    cases = [
        (
            [
                "simulate",
                "--world",
                "tiny",
                "--out",
                "x",
                "--start",
                "2019-03-31",
                "--end",
                "2019-01-01",
            ],
            "error: --end 2019-01-01: is before --start 2019-03-31",
        ),
        (
            ["calibrate", "--world", "tiny", "--start", "1850-01-01", "--end", "1850-02-01"],
            "error: --start 1850-01-01: the tiny world covers 1985-2026 (drift.csv)",
        ),
        (
            ["calibrate", "--world", "tiny", "--param", "errors.bad_pin"],
            "error: --param errors.bad_pin: parameters are tuned only with --fit",
        ),
        (["demo", "--out", "afile"], "error: --out afile: is a file, not a directory"),
        (
            ["demo", "--out", "dd"],
            "error: --out dd: already holds dd/ledger, which is not a cardworld ledger",
        ),
        (
            ["simulate", "--world", "tiny", "--consumers", "3", "--out", "afile/led"],
            "error: --out afile/led: afile is a file, not a directory",
        ),
        (
            ["export", str(tiny_ledger), "--out", "afile/E.csv"],
            "error: --out afile/E.csv: afile is a file, not a directory",
        ),
        (
            ["calibrate", "--world", "tiny", "--ledger", str(tiny_ledger), "--consumers", "10"],
            f"error: --consumers: set(s) the sample to simulate, but --ledger {tiny_ledger}",
        ),
    ]
    if Path("/proc/self").is_dir():  # a file system that takes no new files
        cases.append(
            (["export", str(tiny_ledger), "--out", "/proc/E.csv"], "error: --out /proc/E.csv: ")
        )
    for args, message in cases:
        result = cardworld_cli(*args, cwd=tmp_path)
        assert result.returncode == 2, (args, result.stderr)
        assert result.stderr.startswith(message), (args, result.stderr)
        assert ".partial" not in result.stderr and ".tmp" not in result.stderr
    assert afile.read_text() == "mine" and list((tmp_path / "dd" / "ledger").iterdir()) == []


def test_an_error_is_one_line_however_long_when_not_a_terminal(tmp_path, tiny_ledger):
    deep = tmp_path / "afile" / ("a-rather-long-folder-name-" * 6) / "transactions.csv"
    (tmp_path / "afile").write_text("mine")
    result = cardworld_cli("export", str(tiny_ledger), "--out", str(deep), columns=None)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and str(deep) in result.stderr, result.stderr


def test_the_demos_commands_print_whole_when_not_a_terminal(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from cardworld.cli import app

    monkeypatch.delenv("COLUMNS", raising=False)
    out = tmp_path / ("a-long-demo-folder-name-" * 3)
    result = CliRunner().invoke(app, ["demo", "--out", str(out), "--consumers", "3"])
    assert result.exit_code == 0, result.output
    ledger_dir = out / "ledger"
    command = (
        f"  python -c \"import cardworld; print(cardworld.read_transactions('{ledger_dir}')"
        '.head())"'
    )
    assert command in result.output.splitlines()
    assert f"  cardworld verify {ledger_dir}" in result.output.splitlines()
    # What was made, one line each, the descriptions in one column.
    lines = result.output.splitlines()
    made = lines[lines.index(next(x for x in lines if x.startswith("Done."))) + 1 :][:3]
    assert [line.strip().startswith(str(out)) for line in made] == [True] * 3
    assert len({line.index("  the ") for line in made}) == 1


def test_worlds_lists_the_shipped_worlds():
    result = cardworld_cli("worlds")
    assert result.returncode == 0
    assert "tiny" in result.stdout and "us" in result.stdout


def test_verify_finds_missing_and_corrupted_files(tmp_path, tiny_ledger):
    copy = tmp_path / "copy"
    shutil.copytree(tiny_ledger, copy)
    assert cardworld_cli("verify", str(copy)).returncode == 0
    (copy / "transactions" / "part-00001.parquet").unlink()
    data = bytearray((copy / "cards.parquet").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (copy / "cards.parquet").write_bytes(bytes(data))
    result = cardworld_cli("verify", str(copy))
    assert result.returncode == 1
    assert "missing: transactions/part-00001.parquet" in result.stdout
    assert "corrupted: cards.parquet" in result.stdout


def test_a_failed_run_leaves_no_ledger(tmp_path, monkeypatch):
    calls = {"n": 0}
    real = run._run_blocks

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("worker died")
        return real(*args, **kwargs)

    monkeypatch.setattr(run, "_run_blocks", failing)
    out = tmp_path / "ledger"
    with pytest.raises(RuntimeError, match="worker died"):
        run.simulate("tiny", out, consumers=250, workers=1)  # 3 part files, the 2nd fails
    assert not out.exists()
    with pytest.raises(LedgerError):
        cardworld.verify(out)


def test_overwrite_replaces_a_ledger_only_when_the_new_one_is_complete(tmp_path):
    out = tmp_path / "ledger"
    run.simulate("tiny", out, consumers=10, workers=1)
    run.simulate("tiny", out, consumers=12, workers=1, overwrite=True)
    assert cardworld.read_table(out, "consumers").num_rows == 12
    assert cardworld.verify(out) == []


def test_demo_runs_the_main_job(tmp_path):
    result = cardworld_cli("demo", "--consumers", "15", "--out", str(tmp_path / "demo"))
    assert result.returncode == 0, result.stderr
    assert cardworld.verify(tmp_path / "demo" / "ledger") == []
    rows = cardworld.transactions(tmp_path / "demo" / "ledger").count_rows()
    csv = (tmp_path / "demo" / "transactions-tabformer.csv").read_text().splitlines()
    assert csv[0].startswith("User,Card,Year,Month,Day,Time,Amount") and len(csv) == rows + 1
    assert (tmp_path / "demo" / "report" / "index.html").is_file()
    assert "Done." in result.stdout


def test_the_summary_says_when_a_run_compiled_its_kernels(tmp_path, monkeypatch, capsys):
    # Compiling every kernel takes about a minute, so the run itself is stood in for.
    from cardworld.commands.simulate import run_simulation

    real = run.simulate
    for compiled, said in ((0, False), (5, True)):

        def simulated(*args, compiled=compiled, **kwargs):
            return dataclasses.replace(real(*args, **kwargs), compiled=compiled)

        monkeypatch.setattr(run, "simulate", simulated)
        run_simulation("tiny", tmp_path / f"ledger{compiled}", consumers=5, workers=1)
        assert ("A first run" in capsys.readouterr().out) is said


def test_an_interrupted_run_says_how_to_go_on(tmp_path, monkeypatch, capsys):
    from cardworld.commands.simulate import run_simulation

    def interrupted(*args, on_progress, **kwargs):
        on_progress(1, 3, 100)  # the bar is showing when Ctrl-C comes
        raise KeyboardInterrupt

    monkeypatch.setattr(run, "simulate", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_simulation("tiny", tmp_path / "ledger", consumers=5, workers=1)
    said = capsys.readouterr().out
    assert "interrupted" in said and "run the same command with --resume" in said


def test_compilations_counts_kernels_compiled_rather_than_loaded(monkeypatch):
    module = types.ModuleType("cardworld._compile_probe")
    module.double = numba.njit(lambda x: 2 * x)
    monkeypatch.setitem(sys.modules, module.__name__, module)
    before = compilations()
    assert module.double(21) == 42
    assert compilations() == before + 1
    module.double(4)  # the same signature: nothing new to compile
    assert compilations() == before + 1


def test_overwrite_replaces_only_a_ledger(tmp_path, monkeypatch):
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(LedgerError, match="not a cardworld ledger .* replaces only a ledger"):
        run.simulate("tiny", folder, consumers=5, workers=1, overwrite=True)
    assert (folder / "notes.txt").read_text() == "mine"
    out = tmp_path / "ledger"
    run.simulate("tiny", out, consumers=5, workers=1)
    monkeypatch.chdir(out)
    with pytest.raises(LedgerError, match="holds the working directory"):
        run.simulate("tiny", out, consumers=5, workers=1, overwrite=True)
    assert cardworld.verify(out) == []


def test_an_error_shows_brackets_as_written(tmp_path, tiny_ledger):
    config = tmp_path / "empty.toml"
    config.write_text('dtype = "float32"\n')
    result = cardworld_cli(
        "targets", str(tiny_ledger), "--config", str(config), "--out", str(tmp_path / "t.parquet")
    )
    assert result.returncode == 2
    assert "expected one or more [[target]] tables" in result.stderr


def test_a_damaged_part_file_is_one_error_line_not_a_traceback(tmp_path, tiny_ledger):
    copy = tmp_path / "ledger"
    shutil.copytree(tiny_ledger, copy)
    part = sorted((copy / "transactions").glob("*.parquet"))[0]
    part.write_bytes(part.read_bytes()[:1000])
    config = tmp_path / "targets.toml"
    config.write_text('[[target]]\nname = "day"\naggregate = "sum"\nwindow = "day"\n')
    result = cardworld_cli(
        "targets", str(copy), "--config", str(config), "--out", str(tmp_path / "t.parquet")
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert part.name in result.stderr and "cardworld verify" in result.stderr


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        ("[]", "expected a JSON object, found list"),
        ('{"format": "cardworld-ledger/1"}', "'files' must map each file to its record"),
        ('{"format": "cardworld-ledger/1", "files": 5}', "'files' must map each file"),
    ],
)
def test_a_wrong_shaped_manifest_is_a_ledger_error(tmp_path, tiny_ledger, manifest, message):
    copy = tmp_path / "ledger"
    shutil.copytree(tiny_ledger, copy)
    (copy / "manifest.json").write_text(manifest)
    with pytest.raises(LedgerError, match=message):
        cardworld.verify(copy)


def test_synth_fit_refuses_a_file_as_out_before_training(tmp_path, tiny_ledger):
    taken = tmp_path / "model"
    taken.write_text("mine")
    result = cardworld_cli("synth", "fit", str(tiny_ledger), "--out", str(taken))
    assert (
        result.returncode == 2
        and "is a file; expected a synthesizer model directory" in result.stderr
    )
    assert taken.read_text() == "mine"
    negative = cardworld_cli(
        "synth", "fit", str(tiny_ledger), "--out", str(tmp_path / "m"), "--seed", "-1"
    )
    assert negative.returncode == 2 and "Traceback" not in negative.stderr
    for flag, value in (("--width", "0"), ("--max-minutes", "-1"), ("--epochs", "0")):
        bad = cardworld_cli(
            "synth", "fit", str(tiny_ledger), "--out", str(tmp_path / "m"), flag, value
        )
        assert bad.returncode == 2 and f"Invalid value for '{flag}'" in bad.stderr


def test_a_bad_scheduler_address_is_a_config_error_that_leaves_nothing(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="--scheduler notaurl: could not reach a Dask scheduler"):
        run.simulate("tiny", tmp_path / "ledger", consumers=5, scheduler="notaurl")
    assert list(tmp_path.iterdir()) == []  # neither the ledger nor its .partial run

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    # A killed run's partial directory, kept for --resume, is not touched either.
    monkeypatch.setattr(run, "_run_blocks", killed)
    with pytest.raises(KeyboardInterrupt):
        run.simulate("tiny", tmp_path / "ledger", consumers=5, workers=1)
    marker = tmp_path / ".ledger.partial" / "_parts" / "done-00000.json"
    marker.write_text("{}")  # stands for a block the killed run finished
    for resume in (True, False):
        with pytest.raises(ConfigError, match="--scheduler notaurl"):
            run.simulate(
                "tiny", tmp_path / "ledger", consumers=5, scheduler="notaurl", resume=resume
            )
        assert marker.read_text() == "{}"


def test_a_scheduler_without_dask_installed_is_a_config_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # as where Dask is not installed
    with pytest.raises(ConfigError) as error:
        run.simulate("tiny", tmp_path / "ledger", consumers=5, scheduler="tcp://127.0.0.1:1")
    assert str(error.value) == "--scheduler needs Dask: pip install 'cardworld[dask]'"
    assert list(tmp_path.iterdir()) == []


def test_report_checks_its_out_before_writing_and_keeps_a_report_unless_told(tmp_path, tiny_ledger):
    out = tmp_path / "new" / "report"
    bad = cardworld_cli("report", str(tmp_path / "nowhere"), "--out", str(out))
    assert bad.returncode == 2 and "nowhere: does not exist; expected a cardworld" in bad.stderr
    assert not (tmp_path / "new").exists()
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "index.html").write_text("mine")
    (kept / "stale.png").write_text("a plot the new report does not draw")
    refused = cardworld_cli("report", str(tiny_ledger), "--out", str(kept))
    assert refused.returncode == 2
    assert "already exists and is not empty; choose another --out or pass --overwrite" in (
        refused.stderr
    )
    assert (kept / "index.html").read_text() == "mine"
    replaced = cardworld_cli("report", str(tiny_ledger), "--out", str(kept), "--overwrite")
    assert replaced.returncode == 0, replaced.stderr
    assert f"report: {kept / 'index.html'}" in replaced.stdout.replace("\n", "")
    assert (kept / "report.json").is_file() and (kept / "index.html").read_text() != "mine"
    assert not (kept / "stale.png").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["kept"]  # no temporary folder left


def _run_report_command(command: str, tmp_path, out, monkeypatch, write, overwrite=True):
    """Run `report` or `evaluate` in this process on inputs in `tmp_path`, with
    `write(folder)` standing in for the code that writes the report (build_report,
    evaluate_tables)."""
    from cardworld.commands.evaluate import evaluate
    from cardworld.commands.report import report

    if command == "report":
        monkeypatch.setattr(
            "cardworld.simulator.report.build_report",
            lambda ledger_dir, folder: write(Path(folder)) or Path(folder) / "index.html",
        )
        report(tmp_path / "ledger", out, overwrite=overwrite)
    else:
        table = tmp_path / "table.csv"
        table.write_text("acct_id,amount\n1,2\n1,3\n2,4\n")
        figures = {
            "quality_score": 5,
            "privacy": {"privacy_score": 5, "exact_row_overlap": 0},
            "discriminator": {"auc": 0.5},
        }
        monkeypatch.setattr(
            "cardworld.synthesizer.evaluate.evaluate_tables",
            lambda *args, out, **kwargs: write(Path(out)) or figures,
        )
        evaluate(table, table, out, None, None, None, overwrite)


def _old_report(folder):
    folder.mkdir()
    (folder / "index.html").write_text("old page")
    (folder / "report.json").write_text("{}")
    (folder / "plots").mkdir()
    (folder / "plots" / "stale.png").write_bytes(b"\x89PNG old")


def _kept_report(tmp_path, monkeypatch, mounted: bool):
    """An old report at tmp_path/kept, on a mount point when `mounted`."""
    kept = tmp_path / "kept"
    _old_report(kept)
    if mounted:
        _mounted(monkeypatch, kept)
    return kept


def _mounted(monkeypatch, folder) -> None:
    """Make `folder` act as a mount point (a container's volume): renaming it fails."""
    ismount, rename = os.path.ismount, Path.rename

    def refused(self, target):
        if self == folder:
            raise OSError(errno.EBUSY, "Device or resource busy", str(self))
        return rename(self, target)

    monkeypatch.setattr(os.path, "ismount", lambda path: Path(path) == folder or ismount(path))
    monkeypatch.setattr(Path, "rename", refused)


@pytest.mark.parametrize("mounted", [False, True])
@pytest.mark.parametrize("command", ["report", "evaluate"])
def test_a_failed_overwrite_leaves_the_old_report_as_it_was(
    tmp_path, monkeypatch, ledger_bytes, command, mounted
):
    kept = _kept_report(tmp_path, monkeypatch, mounted)
    before = ledger_bytes(kept)

    def write_then_fail(folder):
        (folder / "index.html").write_text("half of a new page")
        raise RuntimeError("the disk is full")

    with pytest.raises(RuntimeError, match="the disk is full"):
        _run_report_command(command, tmp_path, kept, monkeypatch, write_then_fail)
    assert ledger_bytes(kept) == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


@pytest.mark.parametrize("mounted", [False, True])
@pytest.mark.parametrize("command", ["report", "evaluate"])
def test_an_overwrite_replaces_the_whole_report(
    tmp_path, monkeypatch, ledger_bytes, command, mounted
):
    kept = _kept_report(tmp_path, monkeypatch, mounted)

    def write(folder):
        (folder / "index.html").write_text("new page")

    _run_report_command(command, tmp_path, kept, monkeypatch, write)
    assert ledger_bytes(kept) == {"index.html": b"new page"}
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    fresh = tmp_path / "new" / "report"  # and a new folder is written the same way
    _run_report_command(command, tmp_path, fresh, monkeypatch, write, overwrite=False)
    assert ledger_bytes(fresh) == {"index.html": b"new page"}
    assert [p.name for p in (tmp_path / "new").iterdir()] == ["report"]


def test_overwrite_replaces_only_a_report_holding_no_input(tmp_path, monkeypatch, ledger_bytes):
    def write(folder):
        raise AssertionError("wrote a report")

    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "todo.txt").write_text("mine")
    with pytest.raises(ConfigError, match="is not a report .no index.html., and --overwrite"):
        _run_report_command("report", tmp_path, notes, monkeypatch, write)
    assert (notes / "todo.txt").read_text() == "mine"
    holder = tmp_path / "holder"  # a report folder that holds the command's inputs
    _old_report(holder)
    for command in ("report", "evaluate"):
        with pytest.raises(ConfigError, match="an input of this command, which --overwrite"):
            _run_report_command(command, holder, holder, monkeypatch, write)
    assert (holder / "index.html").read_text() == "old page"


def test_evaluate_checks_its_out_and_leaves_no_folder_when_it_fails(tmp_path):
    table = tmp_path / "table.csv"
    table.write_text("acct_id,amount\n1,2\n1,3\n2,4\n2,5\n3,1\n3,7\n")
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "index.html").write_text("mine")
    refused = cardworld_cli("evaluate", str(table), str(table), "--out", str(kept))
    assert refused.returncode == 2 and "already exists and is not empty" in refused.stderr
    assert (kept / "index.html").read_text() == "mine"
    unwritable = tmp_path / "new" / ("x" * 300)  # a name too long: fails after `new` is made
    failed = cardworld_cli("evaluate", str(table), str(table), "--out", str(unwritable))
    assert failed.returncode == 2 and "File name too long" in failed.stderr
    assert not (tmp_path / "new").exists()
