"""Which clients pushed the model toward the label trigger inversion flags: each client's *clean push*.

Neural Cleanse (:mod:`.neural_cleanse`) says that the federation's model holds a backdoor toward a label ``t``; it
does not say who planted it. A backdoor attacker trains on images stamped with its trigger and relabelled ``t``, so
the model it sends, beside the trigger, leans toward ``t`` on clean inputs too: part of what it learned from its
relabelled images carries over to unstamped ones. Each round, each client's model (the global model it received
plus its update) and the global model are evaluated on the clean inputs of the other labels; the client's push is
the mean log-probability of ``t`` under its model less under the global model's. As the detectors do with a
statistic of the update (:mod:`fedforensics.detectors.accumulate`), the push becomes a robust z across the round's
clients (on the 10-client scale: :func:`~fedforensics.stats.on_reference_scale`), winsorised at ``CLIP``, and a
client's score is its mean over its rounds (at least ``EVIDENCE_ROUNDS``).

Validation-based defences evaluate clients' models on held-out data in the same spirit (BaFFLe, Andreina et al.,
ICDCS 2021, per-class error rates); this statistic looks only at the label the inversion named. An honest client
whose shard holds many images of ``t`` pushes toward ``t`` too, so the push alone judges no one: the verdict rule
takes it as corroboration of the update statistics (:meth:`fedforensics.verdict.ConsensusRule.corroborate`;
docs/detectors.md, "clean push").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..detectors.accumulate import CLIP, EVIDENCE_ROUNDS
from ..errors import FedForensicsError, RunFormatError, one_line
from ..run import Run
from ..scan import Progress
from ..stats import on_reference_scale, robust_z
from .inputs import ModelFactory, build_model, evaluating, load_state
from .neural_cleanse import BATCH

__all__ = ["CleanPush", "clean_push"]

#: The fewest clients a round must compare, as the detectors' default ``min_clients``.
MIN_CLIENTS = 4
#: The clean inputs of the other labels each model is evaluated on, at most (a seeded draw of them).
MAX_SAMPLES = 1000


@dataclass
class CleanPush:
    """Each client's clean push toward ``label``.

    Attributes
    ----------
    label : the label trigger inversion flagged (its strongest).
    scores : client -> mean per-round robust z of its push (clients with fewer than ``EVIDENCE_ROUNDS`` scored
        rounds are left out).
    rounds : client -> how many rounds its push was scored in.
    samples : the clean inputs each model was evaluated on.
    """

    label: int
    scores: dict[str, float]
    rounds: dict[str, int]
    samples: int

    def strongest(self, n: int = 5) -> list[tuple[str, float]]:
        """The ``n`` clients of the largest push, with it, largest first (ties by id)."""
        return sorted(self.scores.items(), key=lambda item: (-item[1], item[0]))[:n]

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "samples": self.samples,
            "scores": {cid: round(score, 4) for cid, score in self.scores.items()},
            "rounds": dict(self.rounds),
        }


def clean_push(
    run: Run,
    model_factory: ModelFactory,
    x: np.ndarray,
    y: np.ndarray,
    label: int,
    progress: Progress | None = None,
    max_samples: int = MAX_SAMPLES,
    seed: int = 0,
) -> CleanPush:
    """Each client's clean push toward ``label`` over the run (module docstring).

    ``x, y`` are the clean data trigger inversion used (float32 ``(N, C, H, W)``, checked); at most ``max_samples``
    of the inputs not labelled ``label`` are drawn (``seed``). Rounds of fewer than ``MIN_CLIENTS`` clients of a
    finite push, and rounds whose global model cannot be read, are skipped; a client's model whose scores are not
    finite scores NaN in its round (left out of its mean). ``progress`` gets ``(rounds done, rounds)``.
    """
    torch.set_num_threads(1)  # small batches: more threads only contend on this kind of machine
    others = np.flatnonzero(y != label)
    if len(others) > max_samples:
        others = np.sort(np.random.default_rng(seed).choice(others, max_samples, replace=False))
    batches = torch.from_numpy(np.ascontiguousarray(x[others])).split(BATCH)
    model = build_model(model_factory)

    def mean_log_p(state: dict[str, np.ndarray], which: str) -> float:
        load_state(model, state, which)
        try:  # the auditor's model, on a state the checks before the inversion never loaded
            with evaluating(model):
                log_p = torch.cat([torch.log_softmax(model(batch).double(), dim=1)[:, label] for batch in batches])
        except Exception as exc:  # a model that refuses a client's weights was "internal error", exit 3 (a review)
            raise FedForensicsError(f"the model failed on {which} measuring the clean push: {one_line(exc)}") from None
        return float(log_p.mean())

    def client_log_p(r: int, cid: str, start: dict[str, np.ndarray]) -> float:
        try:
            update = run.update(r, cid)
        except (KeyError, RunFormatError):  # no readable update: NaN, left out of the client's mean
            return float("nan")
        local = {k: np.asarray(v, np.float64) + update[k] if k in update else v for k, v in start.items()}
        return mean_log_p(local, f"client {cid}'s model of round {r}")

    zs: dict[str, list[float]] = {}
    rounds = [r for r in run.rounds if len(run.clients(r)) >= MIN_CLIENTS]
    for done, r in enumerate(rounds, 1):
        try:
            start = run.global_state(r)
        except RunFormatError:  # a damaged round: the report's damaged parts say so
            start = None
        base = mean_log_p(start, f"the global model of round {r}") if start is not None else float("nan")
        if np.isfinite(base):
            clients = run.clients(r)
            pushes = np.array([client_log_p(r, cid, start) - base for cid in clients])
            # the clients compared are those of a finite push: a round whose NaN updates left three scored one of
            # them 10 on a spread of three values, as no detector compares so few (a review)
            compared = int(np.isfinite(pushes).sum())
            z = np.clip(on_reference_scale(robust_z(pushes), compared), -CLIP, CLIP)
            for cid, value in zip(clients, z if compared >= MIN_CLIENTS else []):
                if np.isfinite(value):
                    zs.setdefault(cid, []).append(float(value))
        if progress is not None:
            progress(done, len(rounds))
    scores = {cid: float(np.mean(v)) for cid, v in zs.items() if len(v) >= EVIDENCE_ROUNDS}
    return CleanPush(label, scores, {cid: len(v) for cid, v in zs.items()}, len(others))
