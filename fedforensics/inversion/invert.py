"""Trigger inversion of a run's global model: which model, Neural Cleanse on it, the probe, the timeline."""

from __future__ import annotations

import contextlib
import os
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..errors import FedForensicsError, one_line
from ..run import Run
from ..scan import Progress
from .attribution import CleanPush
from .inputs import (
    FLAT_INPUTS, ModelFactory, build_model, check_clean_data, check_model, check_trigger, evaluating, load_state, load_trigger,
)
from .neural_cleanse import BATCH, LabelTrigger, NeuralCleanse, NeuralCleanseResult
from .probe import TriggerProbe, partial_triggers, probe_triggers

__all__ = ["RoundInversion", "TriggerInversionReport", "check_inputs", "invert_run"]


@dataclass
class RoundInversion:
    """Neural Cleanse on the global model the clients received in ``round``."""

    round: int
    result: NeuralCleanseResult

    def to_json(self) -> dict[str, Any]:
        return {"round": self.round, **self.result.to_json()}


@dataclass
class TriggerInversionReport:
    """Trigger inversion of one run: the chosen model's per-label results, its probe, and an optional timeline.

    Attributes
    ----------
    round : the round of the inverted model: the last round for the final state, else the round
        whose clients received it (``Run.global_state``).
    model : ``"final"`` (the state after the last round) or ``"global"`` (a round's global model).
    result : Neural Cleanse on that model (masks and patterns in ``result.masks``/``result.patterns``).
    probe : prediction histograms on the clean data, under each flagged label's recovered
        trigger and under the auditor's trigger and its partial variants.
    timeline : Neural Cleanse on every k-th round's global model (empty unless asked for).
    samples : clean samples used (half to optimise, half to check).
    seconds : wall time of the whole inversion.
    clean_push : each client's push toward the strongest flagged label (:mod:`.attribution`); ``None`` when no
        label is flagged, or before it is measured.
    """

    round: int
    model: str
    result: NeuralCleanseResult
    probe: TriggerProbe
    timeline: list[RoundInversion] = field(default_factory=list)
    samples: int = 0
    seconds: float = 0.0
    clean_push: CleanPush | None = None

    @property
    def classes(self) -> list[LabelTrigger]:
        """Neural Cleanse per label, in label order."""
        return self.result.classes

    @property
    def model_named(self) -> str:
        """The inverted model in words: "the final model (after round 29)", "the global model of round 12"."""
        return f"the final model (after round {self.round})" if self.model == "final" else f"the global model of round {self.round}"

    @property
    def flagged_labels(self) -> list[int]:
        """The flagged labels, strongest first."""
        return self.result.flagged_labels

    def to_json(self) -> dict[str, Any]:
        return {
            "round": self.round,
            "model": self.model,
            **self.result.to_json(),
            "samples": self.samples,
            "probe": self.probe.to_json(),
            "timeline": [entry.to_json() for entry in self.timeline],
            "clean_push": self.clean_push.to_json() if self.clean_push is not None else None,
        }


def invert_run(
    run: Run,
    model_factory: ModelFactory,
    x: np.ndarray,
    y: np.ndarray,
    round: int | None = None,
    every: int | None = None,
    probe_trigger: str | os.PathLike[str] | tuple[np.ndarray, np.ndarray] | None = None,
    seed: int = 0,
    progress: Progress | None = None,
    inversion: NeuralCleanse | None = None,
) -> TriggerInversionReport:
    """Run Neural Cleanse on a run's global model and probe it with the triggers found (and the auditor's).

    Parameters
    ----------
    run : an open run.
    model_factory : returns an ``nn.Module`` whose ``state_dict`` matches ``run.layers``.
    x, y : clean samples ``(N, C, H, W)`` and labels ``(N,)`` the auditor trusts.
    round : the global model of this round; default the final state, else the last round's global model.
    every : also invert the global model of every ``every``-th round, to show when a backdoor appeared.
    probe_trigger : a trigger ``.npz`` (mask, pattern) or a ``(mask, pattern)`` pair to probe the model with.
    seed : seeds Neural Cleanse (starts, split, batches).
    progress : called with ``(done, total)``.
    inversion : the Neural Cleanse parameters (default ``NeuralCleanse(seed=seed)``).

    Raises
    ------
    FedForensicsError
        The model does not match the run or the data, the round is not in the run, or the trigger is unusable.
    """
    started = time.perf_counter()
    torch.set_num_threads(1)  # the search is many small batches: more threads only contend
    inversion = inversion if inversion is not None else NeuralCleanse(seed=seed)
    model, x, y, user_trigger = check_inputs(run, model_factory, x, y, round, probe_trigger, inversion=inversion)  # the state loaded
    _, chosen, kind = _chosen_state(run, round)
    timeline_rounds = run.rounds[::every] if every else []
    models = len(timeline_rounds) + 1

    def stage(i: int) -> Progress | None:
        if progress is None:
            return None
        return lambda done, total: progress(i * total + done, models * total)

    with _model_failures():
        result = inversion.invert(model, x, y, progress=stage(0))
        triggers = {f"recovered {label}": result.trigger(label) for label in result.flagged_labels}
        targets = {f"recovered {label}": label for label in result.flagged_labels}
        if user_trigger is not None:
            triggers.update(partial_triggers(*user_trigger))
        probe = probe_triggers(model, x, triggers, targets)
        timeline = []
        for i, r in enumerate(timeline_rounds, start=1):
            global_state = run.global_state(r)
            if not _finite(global_state) or not _scores_finite(load_state(model, global_state, f"the global model of round {r}"), x):
                continue  # FedAvg spread a NaN into it, or its scores are NaN: nothing to invert
            timeline.append(RoundInversion(r, inversion.invert(model, x, y, progress=stage(i))))
    return TriggerInversionReport(chosen, kind, result, probe, timeline, len(y), time.perf_counter() - started)


@contextlib.contextmanager
def _model_failures() -> Iterator[None]:
    """Turn an error the auditor's model raised in its forward pass, midway through the search (the checks before
    it passed: a model that fails on some batches only), into bad input, exit 2; any other error stays a defect of
    fedforensics. A fresh-eyes user's model that failed on its 51st call was reported as the latter."""
    try:
        yield
    except Exception as exc:
        if isinstance(exc, FedForensicsError) or not _raised_in_a_forward(exc):
            raise
        raise FedForensicsError(f"the model failed during trigger inversion: {one_line(exc)}") from None


def _raised_in_a_forward(exc: BaseException) -> bool:
    """Whether ``exc`` came out of an ``nn.Module`` call: the search calls no module but the auditor's model."""
    frames = traceback.extract_tb(exc.__traceback__)
    return any(f.name in ("_call_impl", "_wrapped_call_impl") and f.filename.endswith(os.path.join("nn", "modules", "module.py")) for f in frames)


def check_inputs(
    run: Run,
    model_factory: ModelFactory,
    x: np.ndarray,
    y: np.ndarray,
    round: int | None = None,
    probe_trigger: str | os.PathLike[str] | tuple[np.ndarray, np.ndarray] | None = None,
    source: str = "clean data",
    inversion: NeuralCleanse | None = None,
) -> tuple[torch.nn.Module, np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
    """Check what :func:`invert_run` is given, cheaply (a forward and backward pass on two samples with the
    factory's weights, a forward pass on the clean data with the state to invert), before any long work.

    ``source`` names the clean data in messages; ``inversion`` is the search they are for (default
    ``NeuralCleanse()``), which sets how many samples of a label are needed.

    Returns the model the factory built (the state to invert loaded), ``x`` as float32, ``y`` as int64 and
    the probe trigger as ``(mask, pattern)`` (``None`` without one).

    Raises
    ------
    FedForensicsError
        As :func:`invert_run`.
    """
    model = build_model(model_factory)
    check_model(model, run)
    if not run.rounds:
        raise FedForensicsError(f"{run.path} has no rounds: there is no global model to invert")
    if round is not None and round not in run.rounds:
        raise FedForensicsError(f"round {round} is not in {run.path} (rounds {run.rounds[0]}..{run.rounds[-1]})")
    state, chosen, kind = _chosen_state(run, round)
    which = "the final model" if kind == "final" else f"the global model of round {chosen}"
    broken = [name for name, value in state.items() if not _finite({name: value})]
    if broken:
        raise FedForensicsError(
            f"{which} holds NaN or Inf (in {', '.join(broken[:3])}{', ...' if len(broken) > 3 else ''}): "
            "there is nothing to invert; give a --round from before it broke, or analyze without --model"
        )
    x, y = check_clean_data(x, y, source, inversion)
    _check_scores(model, x, y, source)
    load_state(model, state, which)
    try:
        finite = _scores_finite(model, x)
    except Exception as exc:  # e.g. a forward that only fails on a larger batch
        raise FedForensicsError(f"the model fails on the clean data: {one_line(exc)}") from None
    peak = float(np.abs(x).max())
    if not finite and peak > 1 and _scores_finite(model, x / peak):  # the same weights on the inputs scaled to [-1, 1]
        raise FedForensicsError(
            f"{source}: {which} gives NaN or Inf class scores on these inputs, which run from {x.min():g} to {x.max():g}, "
            "and finite ones on them scaled to [-1, 1]: give them scaled as the model was trained on"
        )
    if not finite:
        raise FedForensicsError(
            f"{which} gives NaN or Inf class scores on the clean data although its weights are finite (a negative "
            "BatchNorm variance after averaging does that): there is nothing to invert; give a --round from before it "
            "broke, or analyze without --model"
        )
    return model, x, y, _trigger(probe_trigger, x.shape[1:])


def _chosen_state(run: Run, round: int | None) -> tuple[dict[str, np.ndarray], int, str]:
    """The state to invert (checked by :func:`check_inputs`), its round and kind."""
    if round is None:
        final = run.final_state()
        if final is not None:
            return final, run.rounds[-1], "final"
        round = run.rounds[-1]
    return run.global_state(round), round, "global"


def _finite(state: dict[str, np.ndarray]) -> bool:
    """Whether every number of a model state is finite (a model FedAvg spread a NaN into cannot be inverted)."""
    return all(np.isfinite(v).all() for v in state.values() if np.issubdtype(np.asarray(v).dtype, np.number))


def _scores_finite(model: torch.nn.Module, x: np.ndarray, batch_size: int = BATCH) -> bool:
    """Whether the model's class scores for the clean inputs are all finite (evaluation mode), in batches so that
    a large clean set costs one batch's activations, not all of them at once."""
    with evaluating(model):
        return all(bool(torch.isfinite(model(batch)).all()) for batch in torch.from_numpy(x).split(batch_size))


def _check_scores(model: torch.nn.Module, x: np.ndarray, y: np.ndarray, source: str) -> None:
    """Refuse a model whose output on two clean samples is not a tensor of class scores (N, classes) differentiable
    with respect to the inputs, and labels beyond its classes."""
    inputs = torch.from_numpy(x[:2]).requires_grad_(True)
    try:
        with evaluating(model, gradients=True):
            scores = model(inputs)
    except Exception as exc:  # the auditor's model on the auditor's data: a mismatch is bad input
        flat = (  # images into a first linear layer: the model of a loop that flattened its inputs itself
            f" ({FLAT_INPUTS})"
            if "mat1 and mat2" in str(exc) else ""
        )
        raise FedForensicsError(
            f"the model cannot take the clean data's inputs of shape {x.shape[1:]}: {one_line(exc)}{flat}"
        ) from None
    if not isinstance(scores, torch.Tensor):
        raise FedForensicsError(f"the model returns a {type(scores).__name__}; trigger inversion needs a tensor of class scores (N, classes)")
    if scores.dim() != 2 or len(scores) != len(inputs):
        raise FedForensicsError(
            f"the model returns shape {tuple(scores.shape)} for {len(inputs)} inputs; trigger inversion needs class scores ({len(inputs)}, classes)"
        )
    if scores.shape[1] < 2:
        raise FedForensicsError(f"the model returns {scores.shape[1]} class score per input; trigger inversion needs 2 classes or more")
    if not scores.is_floating_point():
        raise FedForensicsError(f"the model returns {scores.dtype} class scores; trigger inversion needs floating-point scores (logits)")
    rows = scores.detach()
    if bool((rows >= 0).all()) and bool(torch.allclose(rows.sum(dim=1), torch.ones_like(rows[:, 0]), atol=1e-4)):
        # a softmax at the end flattens the loss the search descends (a fresh-eyes user's backdoor index fell 11.8 -> 7.4)
        raise FedForensicsError(
            "the model returns probabilities (each row of its scores sums to 1): trigger inversion needs logits, the "
            "scores before the softmax; drop the model's final softmax (a log-softmax is fine)"
        )
    _check_differentiable(scores, inputs)
    if y.max() >= scores.shape[1]:
        raise FedForensicsError(f"{source}: y holds label {int(y.max())} but the model has {scores.shape[1]} classes")


def _check_differentiable(scores: torch.Tensor, inputs: torch.Tensor) -> None:
    """Refuse class scores without a gradient with respect to the inputs: the search follows it to the trigger."""
    try:
        gradient = torch.autograd.grad(scores.sum(), inputs, allow_unused=True)[0] if scores.requires_grad else None
    except Exception as exc:
        raise FedForensicsError(f"the model's class scores cannot be differentiated with respect to its input: {one_line(exc)}") from None
    if gradient is None:
        raise FedForensicsError(
            "the model's class scores are not differentiable with respect to its input (a forward under torch.no_grad() "
            "or a .detach() does that): trigger inversion follows their gradient"
        )


def _trigger(spec: str | os.PathLike[str] | tuple[np.ndarray, np.ndarray] | None, image_shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray] | None:
    if spec is None:
        return None
    if isinstance(spec, tuple):
        return check_trigger(*spec, image_shape)
    return load_trigger(spec, image_shape)
