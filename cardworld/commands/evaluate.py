"""`cardworld evaluate REAL SYNTH --out REPORT_DIR`: quality and privacy of a synthetic table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cardworld.commands.report_dir import report_dir


def evaluate(
    real: Annotated[Path, typer.Argument(help="real table (CSV/Parquet) the model trained on")],
    synth: Annotated[Path, typer.Argument(help="synthetic table (CSV/Parquet)")],
    out: Annotated[Path, typer.Option("--out", help="report directory to write")],
    holdout: Annotated[
        Path | None, typer.Option("--holdout", help="real rows kept out of training")
    ] = None,
    group_by: Annotated[
        str | None, typer.Option("--group-by", help="group column (guessed when absent)")
    ] = None,
    order_by: Annotated[str | None, typer.Option("--order-by", help="order column")] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="replace the report in --out, once complete")
    ] = False,
) -> None:
    """Compare SYNTH with REAL; write figures.json, plots and index.html to --out."""
    from cardworld.synthesizer.evaluate import evaluate_tables
    from cardworld.synthesizer.tables import read_table

    inputs = [real, synth, *([holdout] if holdout is not None else [])]
    with report_dir(out, overwrite=overwrite, inputs=inputs) as folder:
        figures = evaluate_tables(
            read_table(real).events,
            read_table(synth).events,
            group_by=group_by,
            order_by=order_by,
            holdout=read_table(holdout).events if holdout is not None else None,
            out=folder,
        )
    p = figures["privacy"]
    auc = figures["discriminator"]["auc"]
    typer.echo(
        f"quality {figures['quality_score']}/10, privacy {p['privacy_score']}/10, "
        f"exact row overlap {p['exact_row_overlap']:.2%}"
        + ("" if auc is None else f", discriminator AUC {auc}")
        + f"; report in {out / 'index.html'}"
    )
