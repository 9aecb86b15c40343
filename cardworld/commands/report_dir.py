"""The --out folder of a command that writes a report (report, evaluate): checked before any
work, and removed again, with any folder made for it, when the command fails."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path

from cardworld.errors import ConfigError


@contextlib.contextmanager
def report_dir(out: Path, *, overwrite: bool) -> Iterator[Path]:
    """Check `out` (not a file; empty or absent unless `overwrite`), then run the block that
    writes the report there; if it fails, remove the folders that did not exist before."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: is a file; expected a report directory to write")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise ConfigError(
            f"--out {out}: already exists and is not empty; choose another --out or pass "
            "--overwrite"
        )
    # The outermost folder on the way to `out` that is not there yet (None when out is).
    created = next((p for p in reversed([out, *out.parents]) if not p.exists()), None)
    try:
        yield out
    except BaseException:
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
        raise
