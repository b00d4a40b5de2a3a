"""One pass over a run's rounds: each round is read once and shared by every detector."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from .detectors.base import RoundData
from .run import Run

Progress = Callable[[int, int], None]  # (rounds done, rounds in all)


def scan(run: Run, progress: Progress | None = None) -> Iterator[RoundData]:
    """Yield every round of ``run`` as :class:`RoundData`, in order.

    Memory holds one round at a time. Clients whose update holds NaN/Inf are
    moved to ``RoundData.nonfinite`` so that they cannot poison the statistics.
    """
    layers = run.analysable_layers
    total = len(run.rounds)
    for done, r in enumerate(run.rounds, start=1):
        clients = run.clients(r)
        updates = {layer.name: run.layer_updates(r, layer.name) for layer in layers}
        finite = np.ones(len(clients), dtype=bool)
        for array in updates.values():
            finite &= np.isfinite(array.reshape(len(clients), -1)).all(axis=1)
        counts = run.num_samples(r)
        samples = np.array([counts[c] for c in clients], dtype=np.int64)
        per_client = run.metrics(r)
        names = run.metric_names(r)
        metrics = {m: np.array([per_client[c].get(m, np.nan) for c in clients]) for m in names}
        if not finite.all():
            keep = np.flatnonzero(finite)
            updates = {name: array[keep] for name, array in updates.items()}
            samples = samples[keep]
            metrics = {m: values[keep] for m, values in metrics.items()}
        yield RoundData(
            round=r,
            clients=[c for c, ok in zip(clients, finite) if ok],
            layers=layers,
            updates=updates,
            num_samples=samples,
            metrics=metrics,
            nonfinite=[c for c, ok in zip(clients, finite) if not ok],
        )
        if progress is not None:
            progress(done, total)
