"""One pass over a run's rounds: each round is read once and shared by every detector."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from .detectors.base import RoundData
from .detectors.history import DirectionHistory
from .run import Run

Progress = Callable[[int, int], None]  # (rounds done, rounds in all)


def _layer_grams(updates: dict[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
    """Per layer, the clients × clients dot products (float32 BLAS, kept as float64)."""
    grams = {}
    for name, array in updates.items():
        block = array.reshape(n, -1)
        grams[name] = (block @ block.T).astype(np.float64) if block.shape[1] else np.zeros((n, n))
    return grams


def scan(run: Run, progress: Progress | None = None) -> Iterator[RoundData]:
    """Yield every round of ``run`` as :class:`RoundData`, in order.

    Memory holds about one round at a time. The per-layer Gram matrices are
    computed here, in the same pass as the read: every norm and cosine distance
    derives from them, and so does finiteness — a client whose squared norm is
    not finite (NaN, Inf, or too large for float32) is moved to
    ``RoundData.nonfinite`` so that it cannot poison the statistics.
    """
    layers = run.analysable_layers
    total = len(run.rounds)
    history = DirectionHistory()  # one for the whole scan: accumulated across rounds
    for done, r in enumerate(run.rounds, start=1):
        clients = run.clients(r)
        n = len(clients)
        updates = {layer.name: run.layer_updates(r, layer.name) for layer in layers}
        grams = _layer_grams(updates, n)
        finite = np.ones(n, dtype=bool)
        for gram in grams.values():
            finite &= np.isfinite(np.diag(gram))
        counts = run.num_samples(r)
        samples = np.array([counts[c] for c in clients], dtype=np.int64)
        per_client = run.metrics(r)
        metrics = {m: np.array([per_client[c].get(m, np.nan) for c in clients]) for m in run.metric_names(r)}
        if not finite.all():
            keep = np.flatnonzero(finite)
            updates = {name: array[keep] for name, array in updates.items()}
            grams = {name: gram[np.ix_(keep, keep)] for name, gram in grams.items()}
            samples = samples[keep]
            metrics = {m: values[keep] for m, values in metrics.items()}
        yield RoundData(
            round=r,
            clients=[c for c, ok in zip(clients, finite) if ok],
            layers=layers,
            updates=updates,
            num_samples=samples,
            metrics=metrics,
            layer_grams=grams,
            nonfinite=[c for c, ok in zip(clients, finite) if not ok],
            history=history,
        )
        if progress is not None:
            progress(done, total)
