"""``median-cosine``: how far each update points from the other clients', robustly."""

from __future__ import annotations

import numpy as np

from ..run import Run
from .base import RoundData
from .history import DirectionHistory
from .statistic import RoundStatisticDetector


def median_distance_to_others(distances: np.ndarray) -> np.ndarray:
    """For every row, the median of its cosine distances to the *other* rows."""
    n = distances.shape[0]
    off_diagonal = distances[~np.eye(n, dtype=bool)].reshape(n, n - 1)
    return np.median(off_diagonal, axis=1)


class MedianCosineDetector(RoundStatisticDetector):
    """Median cosine distance from each client's update to the other clients' updates.

    The median over the other clients is a reference a minority of attackers
    cannot drag (unlike the mean, which a ×10 boosted update dominates). It is
    scored twice: every round (accumulated across rounds), and once on each
    client's update direction accumulated over the run, where a client that
    keeps pointing a little away from the rest — a backdoor, flipped labels,
    noise — stands out even when no single round does. Cosine distances of
    updates as in FLAME (Nguyen et al. 2022); the median as the robust
    reference as in coordinate-wise median aggregation (Yin et al., ICML 2018).
    """

    name = "median-cosine"
    reference = "Nguyen et al. 2022 (FLAME's cosine distances); Yin et al. 2018 (median as robust reference)"
    summary = "update direction far from the other clients', per round and accumulated over the run"
    family = "direction"
    side = "greater"
    abs_floor = 0.01

    def __init__(self, *, threshold: float = 5.0, spike: float | None = None, min_clients: int = 4) -> None:
        super().__init__(threshold=threshold, spike=spike, min_clients=min_clients)

    def start(self, run: Run) -> None:
        super().start(run)
        self._history: DirectionHistory | None = None

    def statistics(self, data: RoundData) -> dict[str, np.ndarray]:
        self._history = data.accumulated
        return {"round": median_distance_to_others(data.cosine_distances)}

    def run_statistics(self) -> dict[str, dict[str, float]]:
        if self._history is None:
            return {}
        ids, distances = self._history.cosine_distances()
        if len(ids) < self.min_clients:
            return {}
        return {"accumulated": dict(zip(ids, map(float, median_distance_to_others(distances))))}

    def explain(self, key: str, value: float) -> str:
        if key == "accumulated":
            return "its update direction, accumulated over the run, points away from the other clients'"
        return "its update points away from the other clients' in this round"
