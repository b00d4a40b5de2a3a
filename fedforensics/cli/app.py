"""The one typer app that every command module registers on."""

from __future__ import annotations

import functools
import inspect
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, TypeVar

import click
import typer
from rich.console import Console
from rich.text import Text
from typer.core import TyperCommand

from recorder import RecorderError

from ..errors import FedForensicsError, one_line
from ..interrupts import Terminated, exit_for, raise_if_interrupted, recording_interrupts, stopped_by
from ..report.files import named_descriptor
from ..run import raised_by_hdf5
from ..report.terminal import plain

app = typer.Typer(
    name="fedforensics",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)


class OutputConsole(Console):
    """A console whose reader may stop early (``| head``): the command goes on.

    rich exits with status 1 on a broken pipe, before the report files the command was asked for are
    written, and 1 means "--fail-on reached". Here the rest of this console's printing is dropped, the
    command carries on (files written, exit code as it would be), and ``closed_early`` tells ``main`` that
    standard output was cut: the reader chose to stop, so no error line, but the exit status says the output
    was cut short (:data:`EXIT_PIPE_CLOSED`), so ``set -o pipefail`` pipelines do not take it for a whole one.
    """

    closed_early = False

    def on_broken_pipe(self) -> None:
        self.quiet = True
        self.closed_early = True
        os.dup2(os.open(os.devnull, os.O_WRONLY), self.file.fileno())  # the interpreter's last flush must not fail


console = OutputConsole()
err_console = OutputConsole(stderr=True)

F = TypeVar("F", bound=Callable[..., object])

EXIT_BAD_INPUT = 2
#: An error of fedforensics' own (a defect), apart from 1 (--fail-on reached) for a CI job to tell.
EXIT_INTERNAL_ERROR = 3
EXIT_PIPE_CLOSED = 128 + 13  # what a shell reports for a process ended by SIGPIPE, as `git log | head` is


class _Command(TyperCommand):
    """A command whose usage errors know it: click raises "Option '--json' requires an argument." without the
    context, and the error line then lacked the "(see: fedforensics analyze --help)" every other one has."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            if exc.ctx is None:
                exc.ctx = ctx
            raise


def usage_line(exc: click.UsageError) -> str:
    """A usage error's line: its message, then where the help is.

    Click 8.4 and later suggest a mistyped command's name themselves, after the one typer's group already put in the
    message: "No such command 'analyse'. Did you mean 'analyze'? Did you mean 'analyze'?" (a fresh-eyes user)."""
    message = exc.message if "Did you mean" in exc.message else exc.format_message()
    return message + (f" (see: {exc.ctx.command_path} --help)" if exc.ctx is not None else "")


def command(epilog: str | None = None) -> Callable[[F], F]:
    """Register a command whose ``--help`` is its docstring, each paragraph reflowed to the terminal, then ``epilog``
    (examples: its lines kept as written, at the full width, where an option's narrow column would cut them).

    Rich help keeps a docstring's line breaks: a paragraph wrapped at the source's width came out
    broken mid-sentence on a narrower terminal ("141 standard output was" on a line of its own).
    """

    def register(func: F) -> F:
        paragraphs = inspect.cleandoc(func.__doc__ or "").split("\n\n")
        help_text = "\n\n".join(" ".join(p.split()) for p in paragraphs)
        return app.command(cls=_Command, help=help_text, epilog=epilog)(func)  # type: ignore[return-value]

    return register


def to_stderr(line: Text) -> None:
    """Print one line on standard error, if it can take it (``2>/dev/full``, a closed descriptor: the exit code
    alone then says why the command failed; an error writing it must not turn into another exit code)."""
    try:
        err_console.print(line, highlight=False, soft_wrap=True)
    except (OSError, ValueError):  # ValueError: a closed stream
        pass


def fail(message: str) -> typer.Exit:
    """Print one readable error line and return the exit (code 2) to raise.

    The message is text, not markup: it quotes the user's file names and ids, brackets and all."""
    to_stderr(Text.assemble(("error:", "bold red"), " ", message))
    return typer.Exit(EXIT_BAD_INPUT)


QUIET_HELP = "Print nothing on standard output (errors still go to standard error): with --json /dev/stdout, the JSON alone."


@contextmanager
def quiet_if(quiet: bool) -> Iterator[None]:
    """Standard output's console prints nothing inside, when ``quiet``."""
    before = console.quiet
    console.quiet = quiet or before
    try:
        yield
    finally:
        console.quiet = before


def print_written(what: str, json_path: Path | None, html_path: Path | None) -> None:
    """Say where the reports went (``what``: "report", "evaluation"), once they are all in place."""
    for kind, path in (("JSON", json_path), ("HTML", html_path)):
        if path is not None:
            console.print(plain(f"{kind} {what}: {path}"))


def output_file(value: str) -> Path:
    """An option's file to write: a name ending in a path separator means a folder, which it is not."""
    if not value:
        raise typer.BadParameter("an empty name: give a file's name")
    if value.endswith(("/", os.sep)):
        raise typer.BadParameter(f"{value!r} ends in {value[-1]!r}, so it names a folder: give a file's name")
    return Path(value)


def os_error(exc: OSError) -> str:
    """One line for an operating-system error: the file, then the system's reason."""
    reason = exc.strerror or str(exc)
    return f"{exc.filename}: {reason}" if exc.filename else reason


def user_errors(func: F) -> F:
    """Turn the user-facing errors a command raises into one line and exit code 2 (what HDF5 raises reading a
    damaged file too); Ctrl-C and SIGTERM stop it with 130 and 143, its clean-up done; any other error is a defect
    of ours: one line and exit code 3 (``FEDFORENSICS_TRACEBACK`` set keeps the traceback)."""

    @functools.wraps(func)
    def wrapper(*args: object, **kwargs: object) -> object:
        with recording_interrupts():  # around the handlers too: they read the record (review)
            try:
                result = func(*args, **kwargs)
                raise_if_interrupted()  # a Ctrl-C (or SIGTERM) lost where it landed is no success either
                return result
            except (FedForensicsError, RecorderError) as exc:
                raise fail(str(exc)) from None
            except BrokenPipeError as exc:
                if exc.filename is None or named_descriptor(exc.filename) == 1:  # a report into our own stdout
                    console.on_broken_pipe()
                    return None
                raise fail(os_error(exc)) from None
            except OSError as exc:  # the machine refused a file (no space, no permission): still one line
                raise fail(os_error(exc)) from None
            except MemoryError as exc:  # numpy says how much it asked for
                raise fail(f"not enough memory: {exc}" if str(exc) else "not enough memory") from None
            except (typer.Exit, click.ClickException, click.exceptions.Abort):  # the command's own exits and usage errors
                raise
            except RecursionError:  # a run's meta nested thousands deep: data no report can hold
                raise fail("the input is nested too deeply to read or write (a run's meta of thousands of levels?)") from None
            except Exception as exc:
                stopped = stopped_by(exc)  # a signal's exception Python wrapped (a RuntimeError in a class body) or dropped
                if stopped is not None:
                    words, status = exit_for(stopped)
                    err_console.print(words)
                    sys.exit(status)
                if raised_by_hdf5(exc):  # a damaged file found where it is first read, past the checks on opening
                    raise fail(f"damaged run file ({one_line(exc)})") from None
                if os.environ.get("FEDFORENSICS_TRACEBACK"):
                    raise
                registry = sys.modules.get("fedforensics.detectors")  # loaded where a command ran detectors
                plugin = registry.plugin_raising(exc) if registry is not None else None
                culprit = f"detector plugin {plugin}" if plugin else "fedforensics"  # a plugin's bug was called ours
                err_console.print(
                    f"internal error: {type(exc).__name__}: {one_line(exc)} — a defect of {culprit}, not of your input; "
                    "FEDFORENSICS_TRACEBACK=1 shows where",
                    markup=False, highlight=False, soft_wrap=True,
                )
                sys.exit(EXIT_INTERNAL_ERROR)
            except KeyboardInterrupt:
                err_console.print("interrupted")
                sys.exit(130)
            except Terminated:
                err_console.print("terminated")
                sys.exit(143)

    return wrapper  # type: ignore[return-value]


def _print_version(value: bool) -> None:
    if value:
        from recorder import __version__

        console.print(f"fedforensics {__version__}")
        raise typer.Exit()


EXAMPLES = """[bold]Examples[/]

  fedforensics demo                                 [dim]# try it on a built-in run[/]

  fedforensics inspect run.h5                       [dim]# what a run file holds[/]

  fedforensics analyze run.h5 --html report.html    [dim]# audit a federation[/]

  fedforensics analyze run.h5 --fail-on malicious   [dim]# for CI: exit 1 if found[/]

  fedforensics evaluate runs/*.h5                   [dim]# detectors vs. the truth[/]



Options of a command: fedforensics COMMAND --help. The run file's format: docs/format.md."""


DESCRIPTION = (
    "Forensics for federated learning.\n\n"
    "Record every client update with the [bold]recorder[/] while training, then [bold]inspect[/] or "
    "[bold]analyze[/] the run file; [bold]evaluate[/] detectors against ground truth; [bold]demo[/] runs it "
    "all on a built-in federation."
)


@app.callback(help=DESCRIPTION, epilog=EXAMPLES)
def _main(
    version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """The options every command shares (``--version``, ``--help``)."""
