"""What ``fedforensics analyze`` does, as one function: validate the options, audit, invert."""

from __future__ import annotations

import os
import re
import shlex
import sys
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from recorder.journal import journal_paths

from .analysis import AuditReport, analyze
from .detectors.history import DIRECTION_MEMORY
from .errors import FedForensicsError
from .report.files import check_writable, named_descriptor
from .run import Run, open_run
from .scan import Progress
from .settings import Settings

#: A model factory a run may name for the inversion hint: dotted Python identifiers, a colon, dotted identifiers.
MODEL_FACTORY = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")

ProgressFactory = Callable[[str], AbstractContextManager[Progress]]


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


def check_outputs(outputs: list[Path], inputs: list[Path]) -> None:
    """Refuse, before any long work, outputs that cannot be written, that would overwrite an input
    (``--json run.h5`` replaced the run under audit with its report; an input's journal is the
    undo an interrupted writer left, which reading it needs) or each other."""
    read = {where for given in inputs for where in (_resolved(given), *map(_resolved, journal_paths(given)))}
    seen: dict[Path, Path] = {}
    for path in outputs:
        if str(path) == "-":  # it would have written a file named '-'
            raise FedForensicsError("'-' (standard output) is not supported for reports: give a file name")
        where = _resolved(path)
        if where in read:
            raise FedForensicsError(f"{path} is a file being read: give the report another name")
        if where in seen:
            raise FedForensicsError(f"{seen[where]} is named for two reports: give each its own file")
        seen[where] = path
        check_output(path)


def _resolved(path: Path) -> Path:
    """``path`` with its links followed; a loop of links is refused by name (it was a traceback)."""
    try:
        return path.resolve()
    except RuntimeError:
        raise FedForensicsError(f"{path} is a loop of symbolic links") from None


def check_output(path: Path) -> None:
    """Refuse an output path that cannot be written.

    A regular file's folder must take a new file (the report is written beside its place and renamed). A
    descriptor of this process (``/dev/stdout``, ``/dev/fd/3``) must be open, and a device or FIFO writable:
    they are written as they are, and a non-root user cannot create files in ``/dev``, which refused
    ``--json /dev/stdout`` for everyone but root.
    """
    descriptor = named_descriptor(path)
    if descriptor is not None:
        try:
            os.fstat(descriptor)
        except OSError:
            raise FedForensicsError(f"cannot write {path}: descriptor {descriptor} is not open") from None
        return
    if path.is_symlink():  # the report goes where the link points: its folder is the one to check
        path = _resolved(path)
    if path.exists() and not path.is_file() and not path.is_dir():  # a device or a FIFO
        if not os.access(path, os.W_OK):
            raise FedForensicsError(f"cannot write {path}: permission denied")
        return
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise FedForensicsError(f"{path} is a directory; give a file name")
    if parent.exists() and not parent.is_dir():
        raise FedForensicsError(f"cannot write {path}: {parent} is a file, not a folder")
    if not parent.is_dir():
        raise FedForensicsError(f"cannot write {path}: folder {parent} does not exist")
    try:  # the folder may exist and still refuse files (permissions, a read-only mount, a name too long)
        check_writable(path)
    except OSError as exc:
        raise FedForensicsError(f"cannot write {path}: {exc.strerror or exc}") from None


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
        with progress("scanning rounds") as update:
            with run.guarded():
                report = analyze(run, detectors, rule, progress=update, direction_memory=options.direction_memory)
        if inversion_plan is not None:
            with progress("trigger inversion") as update:
                report.trigger_inversion = inversion_plan.execute(progress=update)
        else:
            hint = inversion_hint(run, path)
            if hint:
                report.notes.append(hint)
    return report


def inversion_hint(run: Run, path: Path) -> str:
    """The command that would run trigger inversion with the model the run names, if it names one.

    The name is only printed: a module path read from a run file is untrusted input and is never
    imported unless the auditor passes it with ``--model`` themselves.
    """
    factory = run.sound_meta.get("model_factory")
    if not isinstance(factory, str) or not MODEL_FACTORY.fullmatch(factory):
        return ""  # not MODULE:CALLABLE: nothing to suggest, least of all shell syntax pasted from a run file
    usable = "attachments" not in run.damaged_parts() and run.attachment("clean_data") is not None
    data = "" if usable else " --data CLEAN.npz"
    return (
        f"trigger inversion was not run; the run names its model {factory!r}. To invert its global model, "
        f"after checking that module: fedforensics analyze {shlex.quote(str(path))} --model {factory}{data}"
    )
