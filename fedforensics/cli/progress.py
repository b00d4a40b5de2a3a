"""A rich progress bar for long work, fed through the analysis' progress callbacks."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Callable

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from ..interrupts import raise_if_interrupted
from ..report.files import named_descriptor
from ..report.terminal import plain
from .app import err_console


@contextmanager
def progress_bar(description: str) -> Iterator[Callable[[int, int], None]]:
    """Yield a ``(done, total)`` callback that advances a bar on stderr, when stderr is a terminal.

    Piped or redirected, there is no bar (rich would leave an empty line where it stood).
    """
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("left"),  # an estimate: a long inversion showed only the time spent (a fresh-eyes user)
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
        disable=not err_console.is_terminal,
    ) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            raise_if_interrupted()  # each round a checkpoint for a Ctrl-C Python dropped where it landed
            # the work after the last step (the detectors' conclusions: 8 s for a fleet) showed a full bar, still (QA)
            finishing = f"{description} (finishing)" if total and done >= total else description
            bar.update(task, completed=done, total=total, description=finishing)

        yield update


def writing(paths: list[Path | None]) -> AbstractContextManager[object]:
    """A spinner on stderr naming the reports being written, when stderr is a terminal and there are any: a
    fleet's HTML report took 14 s after the terminal report with nothing on the screen (QA)."""
    given = [path for path in paths if path is not None]
    # a report into a descriptor or a device is written while the spinner runs: on a terminal, the JSON began on
    # the spinner's line (review)
    if not given or not err_console.is_terminal or any(named_descriptor(p) is not None or (p.exists() and not p.is_file()) for p in given):
        return nullcontext()
    return err_console.status(plain(f"writing {', '.join(map(str, given))}"), spinner="line")
