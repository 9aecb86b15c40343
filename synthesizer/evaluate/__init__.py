"""A first evaluation of a synthetic table against the real one: JSON figures and an HTML page."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from cardworld.synthesizer.evaluate.metrics import compute, guess_group_column


def evaluate_tables(
    real: pd.DataFrame,
    synth: pd.DataFrame,
    *,
    group_by: str | None = None,
    order_by: str | None = None,
    holdout: pd.DataFrame | None = None,
    out: str | Path | None = None,
) -> dict:
    """Quality and privacy figures; with ``out``, also figures.json, PNGs and index.html there."""
    group_by = group_by or guess_group_column(real)
    figures, plots = compute(real, synth, group_by=group_by, order_by=order_by, holdout=holdout)
    if out is not None:
        from cardworld.synthesizer.evaluate.metrics import prepare
        from cardworld.synthesizer.evaluate.report import write_report

        write_report(Path(out), figures, plots, prepare(real), prepare(synth))
    return figures


__all__ = ["evaluate_tables"]
