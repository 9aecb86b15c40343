"""The consoles the commands print to.

rich wraps printed text at the console's width (80 columns when the output is not a
terminal), which breaks a path or a command the user is meant to copy in the middle. Text
is printed soft-wrapped instead: one printed line is one line of output, and a terminal
folds it only on screen. Tables still fit the width; their columns fold rather than cut
what a user needs to read in full. Output that is not a terminal (a pipe, a log, a test)
has no width of its own: it gets WIDE columns unless COLUMNS says otherwise, so tables
print whole there.
"""

from __future__ import annotations

import os

from rich.console import Console

WIDE = 160


def make_console(*, stderr: bool = False) -> Console:
    """A console whose printed text is never broken into several lines."""
    console = Console(stderr=stderr, soft_wrap=True)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = WIDE
    return console
