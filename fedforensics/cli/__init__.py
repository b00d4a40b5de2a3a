"""The ``fedforensics`` command line: one typer app, one module per command."""

from __future__ import annotations

import io
import sys

from .app import EXIT_PIPE_CLOSED, OutputConsole, app, err_console, fail

# Each module registers its command on ``app`` when imported.
from . import analyze, demo, evaluate, inspect, simulate  # noqa: E402,F401


def main() -> None:
    """Entry point of the ``fedforensics`` console script.

    Usage errors (an unknown option, a bad value, a missing argument) get the one line
    every other bad input gets, exit code 2, instead of click's framed box. A terminal that cannot show
    a character of the report (a latin-1 locale) gets a ``?`` for it instead of a crash; a reader that
    stopped early gets the exit status of SIGPIPE once the report files are written.
    """
    import click

    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper) and stream.errors == "strict":
            stream.reconfigure(errors="replace")
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
    code = code if isinstance(code, int) else 0
    raise SystemExit(EXIT_PIPE_CLOSED if code == 0 and OutputConsole.closed_early else code)
