"""The one typer app that every command module registers on."""

from __future__ import annotations

import functools
import sys
from typing import Callable, TypeVar

import typer
from rich.console import Console

from recorder import RecorderError

from ..errors import FedForensicsError

app = typer.Typer(
    name="fedforensics",
    help="Forensics for federated learning: record every client update, audit the run, "
    "judge detectors against ground truth.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)

console = Console()
err_console = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., object])

EXIT_BAD_INPUT = 2


def fail(message: str) -> typer.Exit:
    """Print one readable error line and return the exit (code 2) to raise."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(EXIT_BAD_INPUT)


def os_error(exc: OSError) -> str:
    """One line for an operating-system error: the file, then the system's reason."""
    reason = exc.strerror or str(exc)
    return f"{exc.filename}: {reason}" if exc.filename else reason


def user_errors(func: F) -> F:
    """Turn the user-facing errors a command raises into one line and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args: object, **kwargs: object) -> object:
        try:
            return func(*args, **kwargs)
        except (FedForensicsError, RecorderError) as exc:
            raise fail(str(exc)) from None
        except OSError as exc:  # the machine refused a file (no space, no permission): still one line
            raise fail(os_error(exc)) from None
        except KeyboardInterrupt:
            err_console.print("interrupted")
            sys.exit(130)

    return wrapper  # type: ignore[return-value]


def _print_version(value: bool) -> None:
    if value:
        from recorder import __version__

        console.print(f"fedforensics {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """Forensics for federated learning.

    Record every client update with the [bold]recorder[/] while training, then
    [bold]inspect[/] or [bold]analyze[/] the run file; [bold]evaluate[/] detectors
    against ground truth; [bold]demo[/] runs it all on a built-in federation.
    """
