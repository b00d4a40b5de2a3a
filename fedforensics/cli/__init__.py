"""The ``fedforensics`` command line: one typer app, one module per command."""

from __future__ import annotations

from .app import app, err_console, fail

# Each module registers its command on ``app`` when imported.
from . import analyze, demo, evaluate, inspect, simulate  # noqa: E402,F401


def main() -> None:
    """Entry point of the ``fedforensics`` console script.

    Usage errors (an unknown option, a bad value, a missing argument) get the one line
    every other bad input gets, exit code 2, instead of click's framed box.
    """
    import click

    try:
        code = app(standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError:  # `fedforensics` alone: the help (printed already), then 0
        code = 0
    except click.exceptions.UsageError as exc:
        where = f" (see: {exc.ctx.command_path} --help)" if exc.ctx is not None else ""
        raise SystemExit(fail(exc.format_message() + where).exit_code) from None
    except click.exceptions.Abort:  # Ctrl-C outside a command's own handling
        err_console.print("interrupted")
        code = 130
    raise SystemExit(code if isinstance(code, int) else 0)
