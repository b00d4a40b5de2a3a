"""``fedforensics analyze``: audit a finished federation."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..analysis import AuditReport
from ..audit import AuditOptions, run_audit
from ..detectors import get_detector
from ..detectors.history import DIRECTION_MEMORY
from ..notes import listed
from ..errors import FedForensicsError
from ..report.files import all_or_none
from ..report.json import write_json
from ..report.terminal import plain, render_audit, trigger_inversion_table
from ..settings import parse_settings
from .app import QUIET_HELP, command, console, output_file, print_written, quiet_if, to_stderr, user_errors
from .progress import progress_bar, writing


DETECTOR_HELP = (
    "Run only these detectors (repeatable), by the names of the report's detector table, e.g. norm, layer-deviation, "
    "cosine-hdbscan (all of them: docs/detectors.md; an unknown name is answered with the list). The verdicts rest on "
    "them alone. Default: all."
)
MODEL_HELP = (
    "MODULE:CALLABLE returning the nn.Module of the run (state_dict keys and shapes as recorded), for trigger "
    "inversion: a module of an installed package, or e.g. mymodel:build for a mymodel.py in the current folder"
)
DATA_HELP = (
    "Clean samples for trigger inversion: an .npz with x (N,C,H,W) or grey (N,H,W), floats scaled as the model saw its "
    "inputs in training (integers are refused: divide grey levels by 255 for a model trained on [0, 1]), and y (N,), "
    "whole-number labels (or Keras's layout: x_train, y_train and optionally x_test, y_test, read as one set); or a "
    "folder of MNIST IDX files (grey levels / 255, as simulate reads them). At least 2 samples of each of 2 labels. "
    "Default with --model: the run's clean_data attachment, if any."
)
SET_HELP = (
    "Set a parameter of a detector or of the verdict rule (repeatable), e.g. norm.threshold=4.5 or "
    "verdict.strong=3. The parameters and their defaults: docs/detectors.md."
)
EXAMPLES = """[bold]Examples[/]

  fedforensics analyze run.h5 --json report.json --html report.html

  fedforensics analyze run.h5 --model fedforensics.zoo:digits_cnn

  fedforensics analyze run.h5 --set norm.threshold=4.5 --fail-on malicious

  fedforensics analyze run.h5 --set cosine-hdbscan.min_rounds=5

  fedforensics analyze run.h5 -q --json /dev/stdout | jq .verdict_counts"""


class FailOn(str, Enum):
    suspicious = "suspicious"
    malicious = "malicious"


@command(epilog=EXAMPLES)
@user_errors
def analyze(
    run_file: Annotated[Path, typer.Argument(help="A run file written by the recorder.", show_default=False)],
    json_path: Annotated[Optional[Path], typer.Option("--json", parser=output_file, metavar="FILE", help="Write the JSON report here (schema: docs/report-schema.md).")] = None,
    html_path: Annotated[Optional[Path], typer.Option("--html", parser=output_file, metavar="FILE", help="Write a self-contained HTML report here.")] = None,
    fail_on: Annotated[Optional[FailOn], typer.Option("--fail-on", help="Exit 1 when a client reaches this verdict (for CI pipelines). Default: exit 0 whatever the verdicts.")] = None,
    detectors: Annotated[Optional[list[str]], typer.Option("--detector", "-d", help=DETECTOR_HELP)] = None,
    model: Annotated[Optional[str], typer.Option("--model", help=MODEL_HELP + " (examples below).")] = None,
    data: Annotated[Optional[Path], typer.Option("--data", help=DATA_HELP)] = None,
    round_: Annotated[Optional[str], typer.Option("--round", help="Global model to invert: a round number (default: the final state, else the last round's global).")] = None,
    rounds: Annotated[Optional[str], typer.Option("--rounds", help="'all': also invert every k-th round's global model (k from --every) to show when a backdoor appeared.")] = None,
    every: Annotated[Optional[int], typer.Option("--every", min=1, help="With --rounds all: invert every k-th round (default 5).")] = None,
    probe_trigger: Annotated[Optional[Path], typer.Option("--probe-trigger", help="A trigger (.npz with mask (H,W) in [0,1] or boolean, and pattern (H,W) or (C,H,W)) to probe the model with, and its partial variants.")] = None,
    settings: Annotated[Optional[list[str]], typer.Option("--set", metavar="DETECTOR.PARAM=VALUE", help=SET_HELP)] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help=QUIET_HELP)] = False,
    direction_memory: Annotated[int, typer.Option("--direction-memory", min=1, metavar="MIB", help="Memory for the clients' accumulated update directions; beyond it they are compared through a count sketch where that saves memory (cosines off by about sqrt(2/width); the report says so). For fleets of thousands of clients.")] = DIRECTION_MEMORY // 2**20,
) -> None:
    """Audit a run: which clients were malicious, what they did, when, and in which layers.

    Scores every client with every detector (layer deviation, norms, cosine
    clustering, client metrics, ...), combines them into a verdict per client
    with its evidence, and prints the report. With [bold]--model[/] it also runs
    Neural Cleanse trigger inversion on the global model (the model code is the
    one you name: nothing named inside the run file is ever imported).

    Exit codes: 0 the audit ran; 1 --fail-on was reached; 2 bad input; 3 a defect of fedforensics itself
    (FEDFORENSICS_TRACEBACK=1 shows where); 130 interrupted (Ctrl-C), 143 terminated (reports put in place only before it);
    141 standard output was closed before the report was written out (`| head`), as for any Unix tool.
    """
    if fail_on is FailOn.malicious and detectors and all(not get_detector(name).standalone for name in detectors):
        raise FedForensicsError(
            f"--fail-on malicious can never fire with only corroborating detectors ({', '.join(dict.fromkeys(detectors))}): "
            "alone their flags judge no client malicious; add a standalone detector (-d norm, ...)"
        )
    options = AuditOptions(
        detectors=detectors,
        model=model,
        data=data,
        round=round_,
        rounds=rounds,
        every=every,
        probe_trigger=probe_trigger,
        outputs=[p for p in (json_path, html_path) if p is not None],
        direction_memory=direction_memory * 2**20,
        settings=parse_settings(settings or []),
    )
    report = run_audit(run_file, options, progress_bar)
    with quiet_if(quiet):
        show_and_write(report, json_path, html_path)
        if report.settings.describe():
            console.print(plain(f"parameters set: {report.settings.describe()} (the others are the defaults)"))
    if fail_on is not None:
        reached = ("malicious",) if fail_on is FailOn.malicious else ("malicious", "suspicious")
        reaching = [v.client for v in report.verdicts if v.verdict in reached]
        if reaching:  # one line on stderr as for every other non-zero exit, --quiet too: a CI log says why it failed
            many = len(reaching) > 1
            to_stderr(plain(f"--fail-on {fail_on.value}: {len(reaching)} client{'s' * many} reached it ({listed(reaching)})"))
            raise typer.Exit(1)


def show_and_write(report: AuditReport, json_path: Path | None, html_path: Path | None) -> None:
    """Print the audit and write the reports asked for: all of them, or none (each complete or absent)."""
    inversion = report.trigger_inversion
    render_audit(console, report, trigger_inversion_table(inversion, report.rule) if inversion is not None else None)
    with writing([json_path, html_path]), all_or_none():
        if json_path is not None:
            write_json(report, json_path)
        if html_path is not None:
            from ..report.html import write_html

            write_html(report, html_path)
    print_written("report", json_path, html_path)
