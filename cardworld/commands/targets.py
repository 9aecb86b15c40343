"""The `cardworld targets` command: per-transaction targets of a ledger, as Parquet."""

from __future__ import annotations

import time
import warnings
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
    with (
        console.status(f"computing {len(target_set)} targets over {ledger_dir}"),
        warnings.catch_warnings(record=True) as caught,
    ):
        warnings.simplefilter("always")
        rows = write_targets(ledger_dir, target_set, out, overwrite=overwrite)
    seconds = time.perf_counter() - begin
    # cardworld's own warnings (a category or MCC that occurs nowhere, often a typo in the config)
    # as one line each, naming the config; others as Python shows them.
    for message in dict.fromkeys(str(w.message) for w in caught if w.category is UserWarning):
        console.print(f"[yellow]warning: {config}: {message}[/yellow]", soft_wrap=True)
    for w in caught:
        if w.category is not UserWarning:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    console.print(
        f"wrote {out}: {rows:,} rows x {len(target_set)} targets "
        f"({', '.join(target_set.names)}) in {seconds:.1f} s"
    )
