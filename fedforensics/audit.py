"""What ``fedforensics analyze`` does, as one function: validate the options, audit, invert."""

from __future__ import annotations

import re
import shlex
import sys
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .analysis import AuditReport, analyze
from .detectors.history import DIRECTION_MEMORY
from .errors import FedForensicsError
from .output_layer import find_output_layer
from .report.files import check_outputs
from .run import Run, open_run
from .scan import Progress
from .settings import Settings

#: A model factory a run may name for the inversion hint: dotted Python identifiers, a colon, dotted identifiers.
MODEL_FACTORY = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")

ProgressFactory = Callable[[str], AbstractContextManager[Progress]]
#: The stage of an audit that reads every round once: the one a caller counting rounds follows.
SCANNING = "scanning rounds"


@dataclass
class AuditOptions:
    """Options of an audit, as the CLI received them."""

    detectors: list[str] | None = None
    model: str | None = None
    data: Path | None = None
    round: str | None = None
    rounds: str | None = None
    every: int | None = None  # --every (with --rounds all; default 5)
    probe_trigger: Path | None = None
    outputs: list[Path] = field(default_factory=list)
    direction_memory: int = DIRECTION_MEMORY  # bytes
    settings: Settings = field(default_factory=Settings)  # --set DETECTOR.PARAMETER=VALUE


def _no_progress(description: str) -> AbstractContextManager[Progress]:
    return nullcontext(lambda done, total: None)


def run_audit(path: Path, options: AuditOptions, progress: ProgressFactory = _no_progress) -> AuditReport:
    """Open ``path``, run the detectors (and trigger inversion when a model is given)."""
    inputs = [path, options.data, options.probe_trigger]
    check_outputs(options.outputs, [p for p in inputs if p is not None])
    if options.model is None and (options.data or options.round or options.rounds or options.probe_trigger):
        raise FedForensicsError("--data, --round, --rounds and --probe-trigger need --model")
    if options.every is not None and options.rounds is None:  # it was silently ignored
        raise FedForensicsError("--every needs --rounds all (it sets which rounds' global models are inverted)")
    detectors = options.settings.build_detectors(options.detectors)
    rule = options.settings.build_rule()
    if options.model is None:
        options.settings.refuse_push_settings("without --model")
    for detector in detectors:
        detector.check_params()  # before the file is even opened
    with open_run(path) as run:
        inversion_plan = None
        if options.model is not None:
            from .inversion.plan import plan_inversion

            inversion_plan = plan_inversion(run, options)  # fails fast on bad model/data
            source = getattr(sys.modules.get(options.model.partition(":")[0]), "__file__", None)
            if source:  # --json model.py would replace the auditor's model code
                check_outputs(options.outputs, [Path(source)])
        inversion = None
        if inversion_plan is not None:  # first: what it finds about the model is evidence for the verdicts
            # guarded as the scan is: the push reads every update, and a chunk that no longer decompresses was
            # HDF5's bare "Can't synchronously read data" without the file's name (a review)
            with run.guarded():
                with progress("trigger inversion (search epochs)") as update:  # a count of what, not bare numbers (QA)
                    inversion = inversion_plan.execute(progress=update)
                if inversion.flagged_labels and rule.judges_push:  # switched off: not measured either
                    label = inversion.flagged_labels[0]
                    with progress(f"clean push toward label {label} (rounds)") as update:
                        inversion.clean_push = inversion_plan.attribute(label, progress=update)
        with progress(SCANNING) as update:
            with run.guarded():
                report = analyze(
                    run, detectors, rule, progress=update, direction_memory=options.direction_memory,
                    clean_push=inversion.clean_push if inversion is not None else None,
                )  # fmt: skip
        report.trigger_inversion = inversion
        if inversion_plan is None:
            hint = inversion_hint(run, path)
            if hint:
                report.notes.append(hint)
    return report


def inversion_hint(run: Run, path: Path) -> str:
    """The command that would run trigger inversion with the model the run names, if it names one; else, for a
    classifier (a run with an output layer), what it would look for and the command's form ('' otherwise).

    The name is only printed: a module path read from a run file is untrusted input and is never
    imported unless the auditor passes it with ``--model`` themselves.
    """
    factory = run.sound_meta.get("model_factory")
    usable = "attachments" not in run.damaged_parts() and run.attachment("clean_data") is not None
    data = "" if usable else " --data CLEAN.npz"
    if not isinstance(factory, str) or not MODEL_FACTORY.fullmatch(factory):
        # not MODULE:CALLABLE: nothing to suggest, least of all shell syntax pasted from a run file; but where the
        # model is a classifier, say what inversion would look for (a fresh-eyes user's two backdoor attackers among
        # label-skewed clients went unflagged, and nothing in the report pointed at the model); "can miss": a plain
        # "miss" read as a finding, a missed backdoor, in the audit of a clean run (a fresh-eyes auditor)
        if find_output_layer(run) is None:
            return ""
        return (
            "trigger inversion was not run: the update statistics can miss a backdoor planted by several attackers "
            "together or among label-skewed clients (docs/detection.md, 'Where it fails'), which the model itself "
            f"may show: fedforensics analyze {shlex.quote(str(path))} --model MODULE:FACTORY{data}"
        )
    return (
        f"trigger inversion was not run; the run names its model {factory!r}. To invert its global model, "
        f"after checking that module: fedforensics analyze {shlex.quote(str(path))} --model {factory}{data}"
    )
