"""Commands that make and check ledgers: simulate, demo, worlds, verify."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from cardworld.commands.console import make_console
from cardworld.commands.out_path import check_folder, writing_to

console = make_console()

DEMO_DIR = Path("cardworld-demo")


def _date(value: str | None, flag: str) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{flag} must be a date YYYY-MM-DD, found {value!r}") from None


def run_simulation(world: str, out: str | Path, **options):
    """Simulate with a progress bar, print the summary table, return the summary."""
    from cardworld.simulator.run import simulate as simulate_world

    columns = (
        TextColumn("[bold]simulating"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("shards"),
        TextColumn("{task.fields[rows]:,} rows"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    # The bar shows from the first shard's news on: a bad --out or world fails before it.
    progress = Progress(*columns, console=console, transient=True)
    task = progress.add_task("simulate", total=None, rows=0)

    def on_progress(done: int, total: int, rows: int) -> None:
        progress.start()
        progress.update(task, completed=done, total=total, rows=rows)

    try:
        summary = simulate_world(world, out, on_progress=on_progress, **options)
    except KeyboardInterrupt:
        progress.stop()
        console.print(
            "[yellow]interrupted[/yellow]: the part files finished so far are kept; run the "
            "same command with --resume to simulate only the rest"
        )
        raise
    finally:
        progress.stop()
    table = Table(title=f"ledger {summary.path}", show_header=False)
    table.add_row("world", summary.world)
    table.add_row("consumers", f"{summary.consumers:,}")
    table.add_row("cards", f"{summary.cards:,}")
    table.add_row("merchants", f"{summary.merchants:,}")
    table.add_row("transactions", f"{summary.rows:,}")
    if summary.blocks_resumed:
        table.add_row(
            "resumed",
            f"{summary.blocks_resumed:,} part files ({summary.rows_resumed:,} rows) kept from "
            "the interrupted run",
        )
    table.add_row("fraud rate", f"{summary.fraud_rate:.4%} ({summary.fraud_rows:,} rows)")
    for mechanism, count in summary.fraud_by_mechanism.items():
        table.add_row(
            f"  fraud: {mechanism}", f"{count / max(summary.rows, 1):.4%} ({count:,} rows)"
        )
    table.add_row("time", f"{summary.seconds:.1f} s")
    table.add_row(
        "rows/s" + (" (simulated now)" if summary.blocks_resumed else ""),
        f"{summary.rows_per_second:,.0f}",
    )
    console.print(table)
    if summary.compiled:
        console.print(
            "A first run: most of its time went to compiling the kernels. numba keeps them "
            "in its cache, so the next run starts at once."
        )
    return summary


def simulate(
    world: str = typer.Option(
        ...,
        "--world",
        help="A shipped world name (see `cardworld worlds`) or a path to a world.toml.",
    ),
    out: str = typer.Option(
        ..., "--out", help="The ledger directory to write (a path or an fsspec URL)."
    ),
    consumers: int | None = typer.Option(
        None, "--consumers", min=1, help="Override the world's number of consumers."
    ),
    start: str | None = typer.Option(None, "--start", help="Override the first day (YYYY-MM-DD)."),
    end: str | None = typer.Option(None, "--end", help="Override the last day (YYYY-MM-DD)."),
    seed: int | None = typer.Option(None, "--seed", min=0, help="Override the world's seed."),
    workers: int | None = typer.Option(
        None, "--workers", min=1, help="Worker processes (default: all cores)."
    ),
    shard_size: int | None = typer.Option(
        None, "--shard-size", min=1, help="Consumers per task (rounded up to whole part files)."
    ),
    scheduler: str | None = typer.Option(
        None,
        "--scheduler",
        help="Run on this Dask scheduler (tcp://host:port), not local processes.",
    ),
    resume: bool = typer.Option(
        False, "--resume", help="Keep the part files a killed run finished; redo the rest."
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace an existing ledger at --out."
    ),
) -> None:
    """Simulate a world and write its labeled transaction ledger."""
    with writing_to(out):
        run_simulation(
            world,
            out,
            consumers=consumers,
            start=_date(start, "--start"),
            end=_date(end, "--end"),
            seed=seed,
            workers=workers,
            shard_size=shard_size,
            scheduler=scheduler,
            resume=resume,
            overwrite=overwrite,
        )


def demo(
    out: Path = typer.Option(DEMO_DIR, "--out", help="Where to put the demo's ledger and outputs."),
    consumers: int = typer.Option(300, "--consumers", min=1, help="Consumers in the demo world."),
) -> None:
    """The main job on the embedded `us` world: simulate a slice, export it, report on it."""
    from cardworld.errors import ConfigError
    from cardworld.simulator.export import export
    from cardworld.simulator.report import build_report

    ledger_dir = out / "ledger"
    check_folder(out)
    if ledger_dir.exists() and not (ledger_dir / "manifest.json").is_file():
        raise ConfigError(
            f"--out {out}: already holds {ledger_dir}, which is not a cardworld ledger (no "
            "manifest.json); the demo writes its ledger there, so choose another --out or "
            f"move {ledger_dir} away"
        )
    with writing_to(out):
        run_simulation(
            "us",
            ledger_dir,
            consumers=consumers,
            start=dt.date(2018, 1, 1),
            end=dt.date(2020, 12, 31),
            overwrite=True,
        )
        with console.status("exporting to the TabFormer CSV schema and drawing the report"):
            csv = out / "transactions-tabformer.csv"
            export(ledger_dir, csv, format="tabformer", overwrite=True)
            page = build_report(ledger_dir, out / "report")
    # Paths are text, not markup; each line prints whole, never wrapped, to copy as it is.
    console.print(f"\n[bold green]Done.[/] In [bold]{escape(str(out))}[/]:")
    made = (
        (f"{ledger_dir}/", "the ledger (Parquet, with manifest.json)"),
        (str(csv), "the same rows in IBM TabFormer's CSV schema"),
        (str(page), "the report: open it in a browser"),
    )
    width = max(len(path) for path, _ in made)
    for path, what in made:
        console.print(f"  {escape(path.ljust(width))}  {what}")
    console.print("Next:")
    commands = (
        f"cardworld verify {ledger_dir}",
        f"python -c \"import cardworld; print(cardworld.read_transactions('{ledger_dir}').head())\"",
        "cardworld simulate --world us --out my-ledger --consumers 2000 --start 2010-01-01",
    )
    for command in commands:
        console.print(f"  {command}", markup=False, highlight=False)


def worlds() -> None:
    """List the shipped worlds."""
    from cardworld.worlds.load import load_world, shipped_worlds

    table = Table("world", "consumers", "period", "description")
    for name in shipped_worlds():
        spec = load_world(name).spec
        table.add_row(
            name,
            f"{spec.simulation.consumers:,}",
            f"{spec.simulation.start} .. {spec.simulation.end}",
            spec.description,
        )
    console.print(table)


def verify(
    ledger_dir: str = typer.Argument(..., help="A ledger directory (a path or an fsspec URL)."),
) -> None:
    """Check a ledger's files against the checksums in its manifest."""
    from cardworld.simulator.ledger import verify as verify_ledger

    problems = verify_ledger(ledger_dir)
    if problems:
        for problem in problems:
            console.print(f"[red]{problem}[/]")
        raise typer.Exit(1)
    console.print(f"[green]ok[/]: every file of {ledger_dir} matches its manifest")
