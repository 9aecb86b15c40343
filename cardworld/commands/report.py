"""Commands that read ledgers for people and other tools: report, calibrate, export."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cardworld.commands.console import make_console
from cardworld.commands.out_path import writing_to
from cardworld.commands.report_dir import report_dir
from cardworld.commands.simulate import _date

console = make_console()


def report(
    ledger_dir: Path = typer.Argument(..., help="A ledger directory."),
    out: Path = typer.Option(..., "--out", help="The report directory to write."),
    overwrite: bool = typer.Option(
        False,
        "--overwrite",
        help="Replace the report in --out, once the new one is complete.",
    ),
) -> None:
    """Write an HTML report with plots, and report.json with every figure, for a ledger."""
    from cardworld.simulator.report import build_report

    with report_dir(out, overwrite=overwrite, inputs=[ledger_dir]) as folder:
        with console.status("reading the ledger and drawing the report"):
            page = build_report(ledger_dir, folder)
    console.print(f"[green]report[/]: {out / page.name} (figures in {out / 'report.json'})")


def calibrate(
    world: str = typer.Option(
        ..., "--world", help="A shipped world name or a path to a world.toml."
    ),
    ledger: Path | None = typer.Option(
        None, "--ledger", help="Measure this existing ledger of the world instead of simulating."
    ),
    consumers: int | None = typer.Option(
        None,
        "--consumers",
        min=1,
        help="Consumers in the sample (default: the world's, at most 400).",
    ),
    start: str | None = typer.Option(None, "--start", help="First day of the sample (YYYY-MM-DD)."),
    end: str | None = typer.Option(None, "--end", help="Last day of the sample (YYYY-MM-DD)."),
    seed: int | None = typer.Option(None, "--seed", min=0, help="Override the world's seed."),
    workers: int | None = typer.Option(None, "--workers", min=1, help="Worker processes."),
    keep: Path | None = typer.Option(None, "--keep", help="Keep the sample ledger here."),
    fit: bool = typer.Option(False, "--fit", help="Tune the --param parameters to the targets."),
    param: list[str] = typer.Option(
        [],
        "--param",
        help="With --fit: a parameter to tune, KEY or KEY=LOW:HIGH (a dotted world key such "
        "as errors.bad_pin, or TABLE.COLUMN such as goods.amount_median, scaled). Repeatable.",
    ),
    target: list[str] = typer.Option(
        [], "--target", help="With --fit: fit only these targets (default: all). Repeatable."
    ),
    out: Path | None = typer.Option(
        None, "--out", help="With --fit: the fitted world file to write (default: NAME-fit.toml)."
    ),
    max_evaluations: int = typer.Option(
        24, "--max-evaluations", min=1, help="With --fit: samples to simulate at most."
    ),
) -> None:
    """Compare a world's sample with its calibration targets; --fit tunes named parameters."""
    from cardworld.errors import ConfigError
    from cardworld.simulator import calibrate as cal

    sample = {
        "consumers": consumers,
        "start": _date(start, "--start"),
        "end": _date(end, "--end"),
        "seed": seed,
        "workers": workers,
    }
    if param and not fit:
        raise ConfigError(
            f"--param {param[0]}: parameters are tuned only with --fit; add --fit, or drop --param"
        )
    if fit:
        if ledger is not None:
            raise ConfigError(
                f"--ledger {ledger}: --fit simulates a new sample for each candidate, so it "
                "cannot measure an existing ledger; drop --ledger or --fit"
            )
        if not param:
            raise ConfigError("--fit needs at least one --param to tune")
        from cardworld.worlds.load import load_world

        out = out or Path(f"{load_world(world).name}-fit.toml")

        def on_evaluation(n: int, values: dict[str, float], score: float) -> None:
            shown = ", ".join(f"{k}={v:.4g}" for k, v in values.items())
            console.print(f"  sample {n}: {shown} -> score {score:.3g}")

        result = cal.fit(
            world,
            param,
            out,
            targets=target or None,
            max_evaluations=max_evaluations,
            on_evaluation=on_evaluation,
            **sample,
        )
        _print_comparisons("before the fit", result.before)
        _print_comparisons("after the fit", result.after)
        console.print(f"[green]fitted world[/]: {result.path} ({result.evaluations} samples)")
        return

    columns = (TextColumn("[bold]simulating a sample"), BarColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("sample", total=None)

        def on_progress(done: int, total: int, rows: int) -> None:
            progress.update(task, completed=done, total=total)

        result = cal.calibrate(world, ledger=ledger, keep=keep, on_progress=on_progress, **sample)
    title = (
        f"{result.world}: {result.consumers:,} consumers, {result.period[0]} to "
        f"{result.period[1]}, {result.rows:,} rows"
    )
    _print_comparisons(title, result.comparisons)
    skipped = [c for c in result.comparisons if c.skipped]
    if skipped:
        console.print(
            f"[yellow]{len(skipped)} target(s) skipped[/], not measurable on this sample: "
            + ", ".join(c.name for c in skipped)
        )
    missed = [c.name for c in result.comparisons if c.missed]
    if missed:
        console.print(f"[red]{len(missed)} target(s) missed[/]: {', '.join(missed)}")
        raise typer.Exit(1)
    met = len(result.comparisons) - len(skipped)
    console.print(f"[green]all {met} measurable targets met[/]")


def _print_comparisons(title: str, comparisons) -> None:
    table = Table(title=title)
    # Names and notes fold rather than being cut: a user looks the target up by its name.
    table.add_column("target", overflow="fold")
    for name in ("value", "measured", "tolerance", "ok", "source"):
        table.add_column(name)
    table.add_column("note", overflow="fold")
    for c in comparisons:
        measured = "n/a" if c.measured is None else f"{c.measured:.4g}"
        if c.skipped:
            ok, note = "[yellow]skipped[/]", c.skipped
        else:
            ok = "[green]yes[/]" if c.passed else "[red]no[/]"
            note = c.note or ("" if c.measured is not None else "not measurable on the sample")
        table.add_row(c.name, f"{c.value:.4g}", measured, f"±{c.tolerance:.3g}", ok, c.source, note)
    console.print(table)


def export(
    ledger_dir: Path = typer.Argument(..., help="A ledger directory."),
    format: str = typer.Option(
        "tabformer", "--format", help="tabformer (IBM TabFormer's CSV) or flat (one table)."
    ),
    out: Path = typer.Option(
        ..., "--out", help="The file to write: .csv, .csv.gz, or .parquet (flat only)."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --out file."),
) -> None:
    """Export a ledger's transactions as TabFormer's CSV or as a flat table."""
    from cardworld.simulator.export import export as export_ledger

    columns = (
        TextColumn("[bold]exporting"),
        BarColumn(),
        TextColumn("{task.completed:,} rows"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("export", total=None)

        def on_progress(rows: int, total: int) -> None:
            progress.update(task, completed=rows, total=total or None)

        with writing_to(out):
            rows = export_ledger(
                ledger_dir, out, format=format, on_progress=on_progress, overwrite=overwrite
            )
    console.print(f"[green]exported[/] {rows:,} rows to {out} ({format})")
