"""The --out folder of a command that writes a report (report, evaluate): checked before any
work, written as a hidden folder beside it (inside it, when it is a mount point or its parent
is read-only) and moved into place only when complete, so a failed run leaves what was there
before and a replaced report keeps no stale file. `synth fit` checks its model --out the same
way (check_out_dir) and leaves the writing to Synthesizer.save, which stages its own."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from cardworld.errors import ConfigError
from cardworld.simulator import ledger

REPORT_PAGE = "index.html"  # every report has one: what --overwrite may replace


@contextlib.contextmanager
def report_dir(out: Path, *, overwrite: bool, inputs: Sequence[Path] = ()) -> Iterator[Path]:
    """Check `out` (not a file; empty or absent unless `overwrite`, and then a report that
    holds none of the command's `inputs`), then yield a new hidden folder beside it to write
    the report in. When the block succeeds that folder replaces `out`; when it fails, it is
    removed with any folder made for `out`, and what `out` held is left as it was."""
    check_out_dir(out, overwrite=overwrite, inputs=inputs)
    # A symlink's folder is replaced, not the link; '.' or '..' has a name to rename.
    place = out.resolve()
    # The outermost folder on the way to `out` that is not there yet (None when out is).
    created = next((p for p in reversed([place, *place.parents]) if not p.exists()), None)
    staging = None
    try:
        place.mkdir(parents=True, exist_ok=True)  # a name the file system refuses fails now
        # A mount point (a container's volume) cannot be renamed, and a folder whose parent
        # is read-only has nowhere beside it: the report is staged inside the folder then.
        inside = os.path.ismount(place) or not os.access(place.parent, os.W_OK)
        staging = Path(
            tempfile.mkdtemp(prefix=f".{place.name[:64]}.", dir=place if inside else place.parent)
        )
        shutil.copymode(place, staging)  # mkdtemp's folder is private
        yield staging
        if inside:
            _move_up(place, staging)
        else:
            ledger.replace_directory(staging, place)
    except BaseException:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
        raise


def check_out_dir(
    out: Path,
    *,
    overwrite: bool,
    inputs: Sequence[Path] = (),
    marker: str = REPORT_PAGE,
    what: str = "report",
) -> None:
    """Refuse an --out folder that is a file, holds the working directory, or is not empty
    unless `overwrite`; --overwrite replaces only a `what` (a folder with the file `marker`)
    that holds none of the command's `inputs`, never a folder of other files."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: is a file; expected a {what} directory to write")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise ConfigError(
                f"--out {out}: already exists and is not empty; choose another --out or pass "
                "--overwrite"
            )
        if not (out / marker).is_file():
            raise ConfigError(
                f"--out {out}: is not a {what} (no {marker}), and --overwrite replaces only a "
                f"{what}; choose another --out"
            )
        for path in inputs:
            if Path(path).resolve().is_relative_to(out.resolve()):
                raise ConfigError(
                    f"--out {out}: holds {path}, an input of this command, which --overwrite "
                    "would delete; choose another --out"
                )
    place = out.resolve()
    here = Path.cwd().resolve()
    if place.exists() and (place == here or place in here.parents):
        raise ConfigError(f"--out {out}: holds the working directory; choose another --out")


def _move_up(place: Path, staging: Path) -> None:
    """Replace what `place` holds by the finished report staged in its subfolder `staging`.
    Each entry moves by a rename; the old ones are deleted first."""
    for entry in place.iterdir():
        if entry != staging:
            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
    for entry in staging.iterdir():
        entry.rename(place / entry.name)
    staging.rmdir()
