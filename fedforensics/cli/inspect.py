"""``fedforensics inspect``: what a run file holds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..report.files import check_outputs, write_atomic
from ..report.json import finite
from ..report.terminal import render_summary
from ..run import open_run
from ..summary import summarize
from .app import QUIET_HELP, command, console, output_file, quiet_if, user_errors


EXAMPLES = """[bold]Examples[/]

  fedforensics inspect run.h5

  fedforensics inspect run.h5 --json summary.json       [dim]# the summary as JSON too[/]

  fedforensics inspect run.h5 -q --json /dev/stdout     [dim]# the JSON alone[/]"""


@command(epilog=EXAMPLES)
@user_errors
def inspect(
    run_file: Annotated[Path, typer.Argument(help="A run file written by the recorder.", show_default=False)],
    as_json: Annotated[Optional[Path], typer.Option("--json", parser=output_file, metavar="FILE", help="Also write the summary as JSON to this path.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help=QUIET_HELP)] = False,
) -> None:
    """Summarise a run file: rounds, clients, layers, size, metrics, ground truth, NaN/Inf.

    Exit codes: 0 a valid run file; 2 an invalid or unreadable one (with one line on stderr); 3 a defect of
    fedforensics itself; 130 interrupted (Ctrl-C), 143 terminated; 141 standard output was closed early (`| head`).
    """
    if as_json is not None:
        check_outputs([as_json], [run_file])
    with open_run(run_file) as run, run.guarded():  # a writer may be adding rounds: a change is one clear error
        run.validate()
        summary = summarize(run)
    with quiet_if(quiet):
        render_summary(console, summary)
    if as_json is not None:
        write_atomic(as_json, json.dumps(finite(summary.to_document()), indent=2, allow_nan=False) + "\n")
