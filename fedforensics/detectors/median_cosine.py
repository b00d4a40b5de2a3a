"""``median-cosine``: how far each update points from the other clients', robustly."""

from __future__ import annotations

import numpy as np

from .round_data import RoundData
from .statistic import RoundStatisticDetector


def median_distance_to_others(distances: np.ndarray) -> np.ndarray:
    """For every row, the median of its cosine distances to the *other* rows."""
    n = distances.shape[0]
    off_diagonal = distances[~np.eye(n, dtype=bool)].reshape(n, n - 1)
    return np.median(off_diagonal, axis=1)


class MedianCosineDetector(RoundStatisticDetector):
    """Median cosine distance from each client's update to the other clients' updates, per round.

    The median over the other clients is a reference a minority of attackers
    cannot drag (unlike the mean, which a ×10 boosted update dominates). Its
    robust z per round, averaged over the client's rounds, singles out a client
    that keeps pointing a little away from the rest — a backdoor, flipped labels,
    noise — even when no single round does. Cosine distances of updates as in
    FLAME (Nguyen et al. 2022); the median as the robust reference as in
    coordinate-wise median aggregation (Yin et al., ICML 2018).
    """

    name = "median-cosine"
    reference = "Nguyen et al. 2022 (FLAME's cosine distances); Yin et al. 2018 (median as robust reference)"
    summary = "update direction far from the other clients', round after round"
    family = "direction"
    side = "greater"
    abs_floor = 0.01

    def __init__(self, *, threshold: float = 5.0, spike: float | None = None, min_clients: int = 4) -> None:
        super().__init__(threshold=threshold, spike=spike, min_clients=min_clients)

    def statistics(self, data: RoundData) -> dict[str, np.ndarray]:
        # a zero update points nowhere: at distance 1 from every other it read "points away" (a fresh-eyes user),
        # and it moved every other client's median towards 1; what it is, a model sent back unchanged, is
        # free-rider's to say. The others are compared among themselves, where there are min_clients of them.
        distances = np.full(len(data.clients), np.nan)
        if np.count_nonzero(data.moved) >= self.min_clients:
            distances[data.moved] = median_distance_to_others(data.moved_cosine_distances)
        return {"round": distances}

    def explain(self, key: str) -> str:
        return "its update points away from the other clients' in this round"
