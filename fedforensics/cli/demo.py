"""``fedforensics demo``: the built-in federation with a backdoor, audited end to end."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.text import Text

from ..audit import AuditOptions, run_audit
from ..errors import FedForensicsError
from ..report.files import check_outputs
from ..run import open_run
from .analyze import show_and_write
from .app import command, console, user_errors
from .progress import progress_bar

DEMO_FILES = ("run.h5", "report.json", "report.html", "trigger.npz")
DEMO_SOURCE = "fedforensics demo"  #: the run's meta "source": the demo's own folder


def _folder(value: str) -> Path:
    """--out: a folder's name, not empty."""
    if not value:
        raise typer.BadParameter("an empty name: give a folder's name")
    return Path(value)


def _earlier_demo(run_path: Path) -> bool:
    """Whether ``run_path`` is a run the demo wrote: its files beside it are the demo's own to replace."""
    try:
        with open_run(run_path) as run:
            return run.meta.get("source") == DEMO_SOURCE
    except FedForensicsError:  # absent, not a run, no meta: not the demo's
        return False


@command()
@user_errors
def demo(
    out: Annotated[Path, typer.Option("--out", parser=_folder, metavar="FOLDER", help="Folder for the run file and the reports (created if missing; the folder it is in must exist). An earlier demo's files in it are replaced; other files of the same names (run.h5, report.json, report.html, trigger.npz) only with --overwrite.")] = Path("fedforensics-demo"),
    seed: Annotated[int, typer.Option(help="Seed of the demo federation.")] = 0,
    inversion: Annotated[bool, typer.Option("--inversion/--no-inversion", help="Also run Neural Cleanse trigger inversion on the final global model.")] = True,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace files of the demo's names in --out that an earlier demo did not write.")] = False,
) -> None:
    """Simulate the built-in federation and audit it: the whole tool in under a minute (about 25 s on 2 cores).

    Ten clients train the digits CNN with FedAvg for 30 rounds; two of them
    plant a backdoor (a small "+" makes the model answer 6). The run is
    recorded, analyzed (with trigger inversion on the final model, using the
    run's held-out split as clean data), and the run file, the JSON and the
    HTML report (and the attackers' trigger, trigger.npz) are written to --out. Needs torch ([bold]pip install -e ".\\[torch]"[/]).

    Exit codes: 0 the demo ran; 2 bad input; 3 a defect of fedforensics itself; 130 interrupted (Ctrl-C),
    143 terminated; 141 standard output was closed early (`| head`).
    """
    from ..simulate import SimulationConfig, simulate

    config = SimulationConfig(seed=seed)
    config.check()  # before anything is created
    if out.exists() and not out.is_dir():
        raise FedForensicsError(f"--out {out} is a file; give a folder")
    if not out.exists() and not out.parent.is_dir():
        raise FedForensicsError(f"--out {out}: folder {out.parent} does not exist")
    run_path, json_path, html_path, trigger_path = paths = [out / name for name in DEMO_FILES]
    if out.is_dir():  # before the simulation: e.g. a folder named report.json in it
        check_outputs(paths, [])
        foreign = [path.name for path in paths if path.exists()] if not _earlier_demo(run_path) else []
        if foreign and not overwrite:
            raise FedForensicsError(
                f"--out {out} holds {', '.join(foreign)}, which no earlier demo wrote there: "
                "give another folder, or --overwrite to replace them"
            )
    out.mkdir(exist_ok=True)
    for path in paths:  # an earlier demo's files go first: interrupted, this one leaves no mixed set
        path.unlink(missing_ok=True)
    with progress_bar("simulating rounds") as update:
        result = simulate(config, run_path, overwrite=True, progress=update, source=DEMO_SOURCE)
    console.print(Text(
        f"simulated {config.rounds} rounds of {config.clients} clients; attackers {', '.join(result.malicious)}; "
        f"accuracy {result.accuracy:.1%}, backdoor success {result.attack_success:.1%}"
    ))
    options = AuditOptions(outputs=[json_path, html_path])
    if inversion:
        from ..simulate.triggers import make_trigger

        trigger = make_trigger(config.trigger, (1, 8, 8))
        np.savez(trigger_path, mask=trigger.mask, pattern=trigger.pattern)
        options.model, options.probe_trigger = "fedforensics.zoo:digits_cnn", trigger_path
    report = run_audit(run_path, options, progress_bar)
    show_and_write(report, json_path, html_path)
    console.print(Text(f"run file: {run_path}"))
    if inversion:  # what --probe-trigger was given: the trigger the attackers stamped, to test the model with
        console.print(Text(f"the attackers' trigger (mask, pattern): {trigger_path}"))
    console.print(Text.assemble("next: ", (f"fedforensics analyze {shlex.quote(str(run_path))}", "bold"), f" or open {html_path} in a browser"))
