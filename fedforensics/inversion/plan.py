"""Trigger inversion as ``fedforensics analyze --model`` asks for it: checked up front, run after the audit.

:func:`plan_inversion` turns the command's options into an :class:`InversionPlan`,
refusing bad input (a model that cannot be imported, does not match the run or
does not return differentiable class scores, unusable or too few clean samples, a round
not in the run, a bad trigger file) with one line
before the detectors' long scan starts; :meth:`InversionPlan.execute` runs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..errors import FedForensicsError
from ..run import Run
from ..scan import Progress
from .attribution import CleanPush, clean_push
from .inputs import ModelFactory, check_clean_data, load_clean_data, load_model_factory, load_trigger
from .invert import TriggerInversionReport, check_inputs, invert_run

if TYPE_CHECKING:
    from ..audit import AuditOptions

__all__ = ["CLEAN_DATA", "InversionPlan", "plan_inversion"]

CLEAN_DATA = "clean_data"
"""The run attachment (arrays ``x`` and ``y``) used as clean data when ``--data`` is not given."""


@dataclass
class InversionPlan:
    """Trigger inversion with checked inputs, ready to run on an open run.

    Attributes
    ----------
    run : the open run whose global model is inverted.
    model_factory : the auditor's ``MODULE:CALLABLE``, imported.
    x, y : clean samples (float32 ``(N, C, H, W)``) and labels ``(N,)``.
    round : the global model of this round; ``None`` for the final state, else the last round's global.
    every : also invert every ``every``-th round's global model (``None``: no timeline).
    probe_trigger : the auditor's trigger ``(mask, pattern)`` to probe the model with, if given.
    """

    run: Run
    model_factory: ModelFactory
    x: np.ndarray
    y: np.ndarray
    round: int | None = None
    every: int | None = None
    probe_trigger: tuple[np.ndarray, np.ndarray] | None = None

    def execute(self, progress: Progress | None = None) -> TriggerInversionReport:
        """Run Neural Cleanse and the probe (:func:`~fedforensics.inversion.invert_run`); ``progress`` gets ``(done, total)``."""
        return invert_run(
            self.run, self.model_factory, self.x, self.y,
            round=self.round, every=self.every, probe_trigger=self.probe_trigger, progress=progress,
        )  # fmt: skip

    def attribute(self, label: int, progress: Progress | None = None) -> CleanPush:
        """Each client's clean push toward ``label`` (:func:`~fedforensics.inversion.attribution.clean_push`)."""
        return clean_push(self.run, self.model_factory, self.x, self.y, label, progress=progress)


def plan_inversion(run: Run, options: AuditOptions) -> InversionPlan:
    """Check every trigger-inversion option of ``options`` against ``run`` and return the plan.

    The model is ``options.model``; the clean data ``options.data``, else the run's
    ``clean_data`` attachment (arrays only: nothing named in a run file is ever imported).

    Raises
    ------
    FedForensicsError
        One line saying which option is unusable and why.
    """
    if options.model is None:
        raise FedForensicsError("trigger inversion needs --model MODULE:CALLABLE")
    factory = load_model_factory(options.model)
    round_ = _round(run, options.round)
    every = _every(options.rounds, options.every)
    source = str(options.data) if options.data is not None else f"{run.path}, attachment {CLEAN_DATA!r}"
    x, y = load_clean_data(options.data) if options.data is not None else _attached_data(run, source)
    trigger = load_trigger(options.probe_trigger, x.shape[1:]) if options.probe_trigger is not None else None
    _, x, y, trigger = check_inputs(run, factory, x, y, round_, trigger, source)
    return InversionPlan(run, factory, x, y, round_, every, trigger)


def _round(run: Run, value: str | None) -> int | None:
    """``--round``: a round number (that the run has it, :func:`check_inputs` checks), or ``None`` for the default."""
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise FedForensicsError(f"--round {value!r}: expected a round number of {run.path}") from None


def _every(rounds: str | None, every: int | None) -> int | None:
    """``--rounds all --every K``: invert every K-th round (K = 5 when not given; ``None`` without ``--rounds``)."""
    if rounds is None:
        return None
    if rounds != "all":
        raise FedForensicsError(f"--rounds {rounds!r}: the only value is 'all' (every k-th round, k from --every)")
    every = 5 if every is None else every
    if every < 1:
        raise FedForensicsError(f"--every {every}: expected a whole number ≥ 1")
    return every


def _attached_data(run: Run, source: str) -> tuple[np.ndarray, np.ndarray]:
    """The clean data the trainer attached to the run (``source`` in messages), checked as a ``--data`` file would be."""
    attached = run.attachment(CLEAN_DATA)
    if attached is None:
        raise FedForensicsError(
            f"trigger inversion needs clean data: pass --data CLEAN.npz (x (N, C, H, W), y (N,)); "
            f"{run.path} has no {CLEAN_DATA!r} attachment"
        )
    missing = [key for key in ("x", "y") if key not in attached]
    if missing:
        raise FedForensicsError(f"{run.path}: attachment {CLEAN_DATA!r} has no array {' or '.join(missing)}; pass --data CLEAN.npz")
    return check_clean_data(attached["x"], attached["y"], source)
