"""An --out path the user gave, named in the error when writing there fails.

simulate and export write to a hidden temporary beside --out (`.NAME.partial`,
`.NAME.tmp`) and move it into place when complete; an OSError met on the way names that
internal path. Here it becomes one line that names the path the user passed and what is
wrong with it.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from pathlib import Path

from cardworld.errors import ConfigError


@contextlib.contextmanager
def writing_to(out: str | Path, flag: str = "--out") -> Iterator[None]:
    """Turn an OSError about writing `out` (the path, a temporary beside it, or a path
    inside it) into a ConfigError naming `flag` and `out`; other errors pass unchanged."""
    try:
        yield
    except OSError as exc:
        if not _about(exc, out):
            raise
        raise ConfigError(_message(exc, Path(out), flag)) from None


def _about(exc: OSError, out: str | Path) -> bool:
    if exc.filename is None or "://" in str(out):
        return False
    place = Path(os.path.abspath(out))
    failed = Path(os.path.abspath(exc.filename))
    beside = failed.parent == place.parent and failed.name.startswith(f".{place.name}.")
    return failed == place or beside or failed in place.parents or failed.is_relative_to(place)


def _message(exc: OSError, out: Path, flag: str) -> str:
    place = Path(os.path.abspath(out))
    # A file where a folder on the way must be (written as the user wrote the path).
    blocker = next((p for p in reversed(out.parents) if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        return f"{flag} {out}: {blocker} is a file, not a directory; choose another {flag}"
    if exc.errno == errno.ENOTDIR and out.exists() and not out.is_dir():
        return f"{flag} {out}: is a file, not a directory; choose another {flag}"
    reason = exc.strerror or str(exc)
    if exc.errno == errno.ENOENT and place.parent.is_dir():
        reason = "it refuses new files"  # /proc, /sys: there, yet nothing can be made
    return (
        f"{flag} {out}: cannot write in {place.parent} ({reason}); expected a path in a "
        "writable directory"
    )


def check_folder(out: Path, flag: str = "--out") -> None:
    """`out` must be a directory or not exist yet."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{flag} {out}: is a file, not a directory; choose another {flag}")
