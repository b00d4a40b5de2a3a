"""``fedforensics evaluate``: judge every detector against ground truth."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..evaluate import evaluate_runs
from ..report.evaluation import evaluation_tables, write_evaluation_html
from ..report.files import all_or_none, check_outputs, write_atomic
from ..report.terminal import plain
from ..settings import parse_settings
from .analyze import DATA_HELP, DETECTOR_HELP, MODEL_HELP, SET_HELP
from .app import QUIET_HELP, command, console, output_file, print_written, quiet_if, user_errors
from .progress import progress_bar, writing


EXAMPLES = """[bold]Examples[/]

  fedforensics evaluate run.h5                          [dim]# against the run's recorded ground truth[/]

  fedforensics evaluate run.h5 --truth truth.txt        [dim]# malicious ids, one per line[/]

  fedforensics evaluate run.h5 -d norm -d median-cosine  [dim]# two detectors, and a consensus of them alone[/]

  fedforensics evaluate *.h5 --set norm.threshold=4.5 --json evaluation.json --html evaluation.html"""


@command(epilog=EXAMPLES)
@user_errors
def evaluate(
    run_files: Annotated[list[Path], typer.Argument(help="Run files with known malicious clients.", show_default=False)],
    truth: Annotated[Optional[Path], typer.Option("--truth", help="Malicious client ids for every run: one per line (surrounding whitespace ignored), or a JSON list in a .json file, taken exactly (default: each run's recorded ground truth). Refused when none of its ids is a client of the runs, or when a line's surrounding whitespace makes it another client.")] = None,
    json_path: Annotated[Optional[Path], typer.Option("--json", parser=output_file, metavar="FILE", help="Write the evaluation as JSON here (schema: docs/report-schema.md).")] = None,
    html_path: Annotated[Optional[Path], typer.Option("--html", parser=output_file, metavar="FILE", help="Write the evaluation as a self-contained HTML page here.")] = None,
    detectors: Annotated[Optional[list[str]], typer.Option("--detector", "-d", help=DETECTOR_HELP)] = None,
    settings: Annotated[Optional[list[str]], typer.Option("--set", metavar="DETECTOR.PARAM=VALUE", help=SET_HELP)] = None,
    model: Annotated[Optional[str], typer.Option("--model", help=MODEL_HELP + "; each run is audited as analyze --model audits it: Neural Cleanse on its final model and, where it flags a label, the clients' clean push toward it beside the verdicts (docs/detectors.md, step 5).")] = None,
    data: Annotated[Optional[Path], typer.Option("--data", help=DATA_HELP.replace("the run's", "each run's"))] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help=QUIET_HELP)] = False,
) -> None:
    """Judge every detector and the consensus verdict against ground truth.

    For each run and pooled over runs: precision, recall, F1, false-positive
    rate, AUROC of the scores, and the round in which each true attacker was
    first flagged. A run given twice (by the same path, a link or a hard link) is
    refused; a copy of it under another name counts as another run.

    A detector flags a client whose score reaches its threshold; the consensus
    flags a client judged malicious or suspicious. Precision: flagged attackers
    over flagged clients; recall: flagged attackers over attackers; F1 their
    harmonic mean; FPR: flagged honest clients over honest clients. AUROC: the
    chance that the scores rank an attacker above an honest client (ties count
    half, an unscored client ranks lowest: the table's caption says how many each
    detector left unscored); the consensus ranks by verdict, then score. First
    flagged: the round at which the evidence gathered up to then reached the
    threshold; for the consensus, the round by which the verdict rule would
    first have judged the client so; "never": not flagged;
    "run-level": flagged on a statistic of the whole run, which has no round.
    Pooled: counts summed, AUROC over every client of every run. The fields:
    docs/report-schema.md.

    Exit codes: 0 the evaluation ran; 2 bad input (e.g. a run without ground truth and no --truth); 3 a
    defect of fedforensics itself; 130 interrupted (Ctrl-C), 143 terminated; 141 standard output was closed
    early (`| head`).
    """
    parsed = parse_settings(settings or [])
    inputs = [*run_files, *([truth] if truth else []), *([data] if data else [])]
    check_outputs([p for p in (json_path, html_path) if p is not None], inputs)
    with progress_bar("scanning the rounds of every run") as update:
        evaluation = evaluate_runs(run_files, truth, update, parsed, detectors, model, data)
    with quiet_if(quiet):
        for table in evaluation_tables(evaluation):
            console.print(table)
        if parsed.describe():
            console.print(plain(f"parameters set: {parsed.describe()} (the others are the defaults)"))
        if model is not None:
            console.print(plain(f"each run audited with --model {model}: trigger inversion and the clean push (docs/detectors.md, step 5)"))
        with writing([json_path, html_path]), all_or_none():
            if json_path is not None:
                write_atomic(json_path, json.dumps(evaluation.to_json(), indent=2, allow_nan=False) + "\n")
            if html_path is not None:
                write_evaluation_html(evaluation, html_path)
        print_written("evaluation", json_path, html_path)
