"""The one exception family of cardworld: every user-facing failure is a CardworldError."""

from __future__ import annotations


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
