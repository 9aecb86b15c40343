"""The `cardworld targets` command: per-transaction targets of a ledger, as Parquet."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from cardworld.commands.console import make_console

console = make_console()


def targets(
    ledger_dir: Path = typer.Argument(
        ..., help="A ledger directory (with a transactions/ dataset)."
    ),
    config: Path = typer.Option(
        ..., "--config", help=r"A targets TOML file (\[\[target]] tables)."
    ),
    out: Path = typer.Option(
        ..., "--out", help="The Parquet file to write: txn_id plus one column per target."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --out file."),
) -> None:
    """Compute training targets for every transaction of a ledger."""
    from cardworld.simulator.targets.compute import write_targets
    from cardworld.simulator.targets.spec import load_targets

    target_set = load_targets(config)
    begin = time.perf_counter()
    with console.status(f"computing {len(target_set)} targets over {ledger_dir}"):
        rows = write_targets(ledger_dir, target_set, out, overwrite=overwrite)
    seconds = time.perf_counter() - begin
    console.print(
        f"wrote {out}: {rows:,} rows x {len(target_set)} targets "
        f"({', '.join(target_set.names)}) in {seconds:.1f} s"
    )
