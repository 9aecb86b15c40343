"""The `cardworld` command line: thin wrappers over the Python API.

Each command lives in cardworld/commands/; this module assembles them and turns a
CardworldError (bad input, a broken ledger) into one red line and exit code 2.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.markup import escape

from cardworld.commands import report as report_commands
from cardworld.commands import simulate as simulate_commands
from cardworld.commands.evaluate import evaluate
from cardworld.commands.synth import synth_app
from cardworld.commands.targets import targets
from cardworld.errors import CardworldError

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Simulate credit-card worlds, synthesize ledgers, compute training targets.",
)

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
        # The message is text, not markup: "[[target]]" or "[population]" must show as written.
        Console(stderr=True).print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
        sys.exit(2)
    except (typer.Exit, SystemExit) as exc:
        sys.exit(getattr(exc, "exit_code", getattr(exc, "code", 0)))
    except typer.Abort:
        sys.exit(130)
    except Exception as exc:
        # Usage errors (typer's click exceptions) arrive here in non-standalone mode.
        if hasattr(exc, "show") and hasattr(exc, "exit_code"):
            exc.show()
            sys.exit(exc.exit_code)
        raise
