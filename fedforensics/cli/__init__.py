"""The ``fedforensics`` command line: one typer app, one module per command."""

from __future__ import annotations

import io
import sys

from ..interrupts import Terminated, exit_for, raise_if_interrupted, recording_interrupts, stopped_by

try:  # Ctrl-C while the command line's modules load (numpy, h5py, rich: a second) stops it as it does later
    with recording_interrupts():  # one Python drops or wraps there is still seen
        from rich.text import Text

        from .app import EXIT_PIPE_CLOSED, app, console, fail, to_stderr, usage_line

        # Each module registers its command on ``app`` when imported.
        from . import analyze, demo, evaluate, inspect, simulate  # noqa: E402,F401

        raise_if_interrupted()  # dropped where it landed (a weak reference's callback)
except BaseException as exc:
    stopped = stopped_by(exc)  # Python 3.11 wraps one in a RuntimeError inside a class body (rich's dataclasses; QA)
    missing = exc.name.partition(".")[0] if isinstance(exc, ModuleNotFoundError) and exc.name else None
    if stopped is None and missing not in (None, "fedforensics"):
        # a recorder-only install (numpy, h5py, the package --no-deps) printed a traceback for rich (a fresh-eyes user)
        sys.stderr.write(
            f"error: the fedforensics command needs the analyzer's dependencies, and {missing!r} is not installed "
            "(a recorder-only install?): install the package without --no-deps, as the README says\n"
        )
        raise SystemExit(2) from None
    if stopped is None:
        raise
    words, status = exit_for(stopped)
    sys.stderr.write(words + "\n")
    raise SystemExit(status) from None


def main() -> None:
    """Entry point of the ``fedforensics`` console script.

    Usage errors (an unknown option, a bad value, a missing argument) get the one line
    every other bad input gets, exit code 2, instead of click's framed box. A terminal that cannot show
    a character of the report (a latin-1 locale) gets a ``?`` for it instead of a crash; a reader that
    stopped early gets the exit status of SIGPIPE once the report files are written.
    """
    import click

    for stream in (sys.stdout, sys.stderr):  # a C locale's surrogateescape cannot encode '–' either
        if isinstance(stream, io.TextIOWrapper) and (stream.errors == "strict" or not _utf8(stream.encoding)):
            stream.reconfigure(errors="replace")
    console.closed_early = False
    try:
        with recording_interrupts():
            code = app(standalone_mode=False)
            raise_if_interrupted()  # lost where it landed, after the last place that checks
    except SystemExit as exc:  # a console of typer's or rich's own (--help) meeting a closed pipe exits 1
        if not isinstance(exc.__context__, BrokenPipeError):
            raise
        code = EXIT_PIPE_CLOSED
    except click.exceptions.NoArgsIsHelpError:  # `fedforensics` alone: the help (printed already), then 0
        code = 0
    except click.exceptions.UsageError as exc:
        raise SystemExit(fail(usage_line(exc)).exit_code) from None
    except (click.exceptions.Abort, KeyboardInterrupt, Terminated) as exc:  # outside a command's own handling (typer
        words, code = exit_for(Terminated if isinstance(exc, Terminated) else KeyboardInterrupt)  # building it)
        to_stderr(Text(words))
    code = code if isinstance(code, int) else 0
    raise SystemExit(EXIT_PIPE_CLOSED if code == 0 and console.closed_early else code)


def _utf8(encoding: str | None) -> bool:
    return (encoding or "").lower().replace("-", "").replace("_", "") == "utf8"
