"""``sybil``: clients whose updates are near-copies of another client's."""

from __future__ import annotations

import numpy as np

from ..run import Run
from .round_data import RoundData
from .statistic import RoundStatisticDetector

#: Cosine distances below this count as this (an exact copy's is 0, or rounding's ±1e-16): the log stays finite.
COPY_DISTANCE = 1e-12


def log_nearest_distance(distances: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For every row of a matrix of pairwise cosine distances, the log of its distance to its nearest other
    row (at least :data:`COPY_DISTANCE`), and which row that is."""
    distances = distances.copy()
    np.fill_diagonal(distances, np.inf)
    nearest = distances.argmin(axis=1)
    return np.log(np.maximum(distances[np.arange(len(nearest)), nearest], COPY_DISTANCE)), nearest


class SybilDetector(RoundStatisticDetector):
    """How much closer each client's update is to its nearest other client's than the round's clients usually are.

    Honest clients train on different data with different SGD noise, so their
    updates are never near-identical; colluding sybils, and attacks that send
    one crafted update from several clients ("a little is enough", Baruch et
    al. 2019; min-max, Shejwalkar & Houmansadr 2021), are. This is the
    similarity FoolsGold (Fung et al., *The limitations of federated learning
    in sybil settings*, RAID 2020) penalises. The statistic is the *logarithm*
    of the cosine distance to the nearest other update, so the robust z measures
    ratios ("ten times closer than usual"): a copy stays far from the honest
    clients on that scale even when copies are 40 % of the round, where on the
    similarity itself (1 against an honest 0.96) the copies drag the median and
    the MAD until they look ordinary. ``abs_floor`` (0.3, a factor of 1.35)
    keeps rounds whose clients are all about equally close from turning small
    ratios into large z. Only clients that sent a non-zero update are compared
    (at least ``min_clients`` of them): a zero update has no direction.
    """

    name = "sybil"
    reference = "Fung et al. 2020, FoolsGold (RAID)"
    summary = "near-identical updates from several clients"
    family = "collusion"
    side = "less"
    same_data = True
    abs_floor = 0.3

    def __init__(self, *, threshold: float = 3.5, spike: float | None = 30.0, min_clients: int = 4) -> None:
        """``spike`` (on here alone, at 30): one round of a near-copy reaches the threshold, so that an attacker
        who takes a new id every round or copies only for a few rounds is flagged (docs/detectors.md, ``sybil``)."""
        super().__init__(threshold=threshold, spike=spike, min_clients=min_clients)

    def start(self, run: Run) -> None:
        super().start(run)
        #: Per round, each client's nearest other client, as positions in ``run.all_clients`` (two int arrays, the
        #: round's clients and theirs: 16 bytes a client and round), for the evidence.
        self._nearest: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def statistics(self, data: RoundData) -> dict[str, np.ndarray]:
        # the clients that sent something, compared among themselves: a zero update is at distance 1 from every
        # other, and where stragglers sent several, the round's usual nearest distance was theirs, 1, and every
        # honest client that trained stood out as a near copy (z up to 10)
        moved = np.flatnonzero(data.moved)
        gaps, nearest = np.full(len(data.clients), np.nan), np.arange(len(data.clients))
        if moved.size >= self.min_clients:
            gaps[moved], closest = log_nearest_distance(data.moved_cosine_distances)
            nearest[moved] = moved[closest]
        self._nearest[data.round] = (data.index.copy(), data.index[nearest])
        return {"nearest distance": gaps}

    def explain(self, key: str) -> str:
        return "update a near copy of another client's, or copied by it (log distance to its nearest)"

    def round_detail(self, cid: str, r: int) -> str:
        clients, nearest = self._nearest[r]
        everyone = self._run.all_clients
        at = np.flatnonzero(clients == everyone.index(cid))
        return f"; its nearest: {everyone[int(nearest[at[0]])]}" if at.size else ""
