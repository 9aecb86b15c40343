"""The one exception family of cardworld: every user-facing failure is a CardworldError."""

from __future__ import annotations

import textwrap


class CardworldError(Exception):
    """Base of every error cardworld raises on bad input or a failed run."""


class WorldError(CardworldError):
    """A world file or table is invalid: names the file, the key and what was expected."""


class LedgerError(CardworldError):
    """A ledger directory is missing, incomplete or corrupted."""


class ConfigError(CardworldError):
    """A configuration (targets, synthesizer, CLI flags) is invalid."""


class DataError(CardworldError):
    """An input table (DataFrame, CSV, Parquet) does not have the expected shape."""


def reason(exc: BaseException, width: int = 200) -> str:
    """What went wrong in an error another library raised, for a message of our own: its
    first line, shortened at a word to `width` characters (its type's name if it says
    nothing)."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    return textwrap.shorten(first, width, placeholder=" ...")
