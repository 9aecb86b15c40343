"""Records to tokens and back: one module per column kind, and the table layout that joins them."""

from __future__ import annotations

from cardworld.synthesizer.codec.table import Encoded, Field, TableCodec

__all__ = ["Encoded", "Field", "TableCodec"]
