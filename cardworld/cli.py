"""The `cardworld` command line: thin wrappers over the Python API.

Each command lives in cardworld/commands/; this module assembles them and turns a
CardworldError (bad input, a broken ledger) into one red line and exit code 2.
"""

from __future__ import annotations

import sys

import typer
from rich.markup import escape

from cardworld import __version__
from cardworld.commands import report as report_commands
from cardworld.commands import simulate as simulate_commands
from cardworld.commands.console import make_console
from cardworld.commands.evaluate import evaluate
from cardworld.commands.synth import synth_app
from cardworld.commands.targets import targets
from cardworld.errors import CardworldError

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="Simulate credit-card worlds, synthesize ledgers, compute training targets.",
)


def _version(value: bool) -> None:
    if value:
        print(f"cardworld {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """The options of `cardworld` itself (--version); the help text is the app's."""


app.command("demo")(simulate_commands.demo)
app.command("worlds")(simulate_commands.worlds)
app.command("simulate")(simulate_commands.simulate)
app.command("verify")(simulate_commands.verify)
app.command("calibrate")(report_commands.calibrate)
app.command("export")(report_commands.export)
app.command("report")(report_commands.report)
app.command("targets")(targets)
app.add_typer(synth_app, name="synth")
app.command("evaluate")(evaluate)


def main() -> None:
    try:
        # Outside standalone mode click returns the code of a typer.Exit instead of exiting.
        code = app(standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except CardworldError as exc:
        _fail(str(exc))
    except (typer.Exit, SystemExit) as exc:
        sys.exit(getattr(exc, "exit_code", getattr(exc, "code", 0)))
    except typer.Abort:
        sys.exit(130)
    except Exception as exc:
        # Click's exceptions (typer's own copy of click in recent typers, click itself in
        # older ones: hence duck typing) arrive here in non-standalone mode.
        if type(exc).__name__ == "NoArgsIsHelpError":
            exc.show()
            sys.exit(exc.exit_code)
        if hasattr(exc, "format_message") and hasattr(exc, "exit_code"):
            # A bad flag or value: one line like any other bad input, with where to look.
            ctx = getattr(exc, "ctx", None)
            where = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
            _fail(exc.format_message() + where)
        message = _file_error(exc)
        if message is None:
            raise
        _fail(message)


def _fail(message: str) -> None:
    """One red line on stderr and exit code 2."""
    # The message is text, not markup: "[[target]]" or "[population]" must show as written.
    # Never wrapped: a long path stays on the one line.
    make_console(stderr=True).print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    sys.exit(2)


def _file_error(exc: Exception) -> str | None:
    """A message for a bad or damaged file met inside a library before cardworld could
    name the problem; None for anything else (a bug: the traceback is kept)."""
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.filename}: {exc.strerror or exc}"
    if isinstance(exc, UnicodeDecodeError):
        return f"a file is not UTF-8 text ({exc.reason} at byte {exc.start})"
    if type(exc).__module__.startswith("pyarrow"):
        return (
            f"{exc} (a damaged or unreadable Parquet/Arrow file; `cardworld verify LEDGER` "
            "checks a ledger against its manifest)"
        )
    if type(exc).__name__ == "EmptyDataError":
        return f"an empty CSV file: {exc}"
    return None
