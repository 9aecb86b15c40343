"""The sequence language model synthesizer of grouped, ordered tables.

``Synthesizer`` loads torch on first use, so importing the package stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cardworld.synthesizer.synthesizer import Synthesizer, SynthesizerConfig

__all__ = ["Synthesizer", "SynthesizerConfig"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from cardworld.synthesizer import synthesizer

        return getattr(synthesizer, name)
    raise AttributeError(f"module 'cardworld.synthesizer' has no attribute {name!r}")
