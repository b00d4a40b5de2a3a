"""``accumulated-sybil``: clients whose departures from the round's median, over the run, point alike."""

from __future__ import annotations

import numpy as np

from ..run import Run
from ..stats import FLOAT32_RESOLUTION, REFERENCE_CLIENTS, bonferroni_zs, column_median, cosine_from_gram, on_reference_scale, robust_z
from .accumulate import EVIDENCE_ROUNDS
from .base import Detector, DetectorResult, Evidence
from .grid import grid_sample, grid_width, sample_columns
from .round_data import RoundData
from .sybil import SybilDetector, log_nearest_distance


class AccumulatedSybilDetector(Detector):
    """How much closer each client's mean departure from the round's median is to its nearest other client's than the clients' usually are.

    FoolsGold (Fung et al., *The limitations of federated learning in sybil settings*,
    RAID 2020) compares clients on their update *histories*, not on single rounds:
    colluders that each hide a shared poisoning direction in their own noise look
    like honest clients in every round (``sybil`` compares one round at a time), but
    the shared part adds up round after round while the noise averages out.

    A client's history here is the mean, over its rounds, of its unit update minus the
    round's coordinate-wise median unit update, on ``coordinates`` coordinates evenly
    spaced over the model (``spread-shift``'s grid), less the clients' coordinate-wise
    median of these means. The round's median comes out because every update of a
    round carries that round's common direction: summed as they are, the histories of
    clients that took part in the same rounds share those rounds' directions (in a
    clean federation where four clients took part in every round and the others in one
    in ten, the four were 44 times closer to one another than usual, and
    ``malicious``). The clients' median comes out because colluders drag each round's
    median towards their shared direction, which leaves its opposite in every honest
    departure (with 10 colluders of 40, honest histories became as alike as theirs). A
    round in which a client sent nothing adds nothing to its history, and its zero update
    is not in the round's median (a round with fewer than ``min_clients`` non-zero updates
    adds nothing at all).

    The statistic is the logarithm of the cosine distance from a client's history to
    its nearest other client's, as a robust z across the clients with at least
    ``min_rounds`` non-zero updates (one-sided: closer than usual; scale floored at
    ``sybil``'s 0.3, so that z measures a ratio: the default threshold asks for about six
    times closer than usual), on the 10-client scale for fewer clients, and
    Bonferroni-corrected for more than ten (one test per ten clients), so that the
    threshold means the same in a fleet. It is judged once, on the whole history: a
    flag has no first round.

    Parameters
    ----------
    threshold
        Score at which a client is flagged.
    min_clients
        Rounds with fewer clients that sent a non-zero update add nothing (a median of two is
        no reference), and fewer clients with a history are not compared.
    min_rounds
        A client with fewer rounds of a non-zero update has no history yet: one or two departures, as
        noisy as a round's.
    coordinates
        How many coordinates, evenly spaced over the model, the histories are kept on.
    """

    name = "accumulated-sybil"
    reference = "Fung et al. 2020, FoolsGold (RAID): similarity of the clients' update histories"
    summary = "departures from the round's median that add up like another client's"
    family = "collusion"
    same_data = True
    abs_floor = SybilDetector.abs_floor

    def __init__(
        self, *, threshold: float = 6.0, min_clients: int = 4, min_rounds: int = EVIDENCE_ROUNDS, coordinates: int = 4096
    ) -> None:
        self.threshold = threshold
        self.min_clients = min_clients
        self.min_rounds = min_rounds
        self.coordinates = coordinates

    def start(self, run: Run) -> None:
        self._run = run
        self._columns = sample_columns(run.analysable_layers, self.coordinates)
        width = grid_width(self._columns)
        self._history = np.zeros((len(run.all_clients), width))
        self._rounds = np.zeros(len(run.all_clients), dtype=np.int64)
        self._sample = np.empty((0, width))

    def observe(self, data: RoundData) -> None:
        n, moved = len(data.clients), data.moved
        if int(moved.sum()) < self.min_clients or not self._columns:
            return
        if self._sample.shape[0] < n:
            self._sample = np.empty((n, self._sample.shape[1]))
        scale = np.divide(1.0, data.norms, out=np.zeros(n), where=moved)[:, None]
        sample = np.multiply(grid_sample(data, self._columns), scale, out=self._sample[:n])  # unit updates
        # the median of the clients that moved: with the zero rows of stragglers in it, a round where most sent
        # nothing had a median of 0, and the few that trained each added the round's whole common direction
        sample -= column_median(sample[moved])
        sample[~moved] = 0.0  # a client that sent nothing departs from nothing
        self._history[data.index] += sample
        self._rounds[data.index] += moved

    def finish(self) -> DetectorResult:
        everyone = self._run.all_clients
        eligible = np.flatnonzero(self._rounds >= self.min_rounds)
        if eligible.size < max(self.min_clients, 2):
            scores, flagged = self.flag({}, everyone)
            return self.result(scores=scores, flagged=flagged, round_scores={}, first_flagged={}, evidence=[])
        kept = [everyone[i] for i in eligible]
        # Each client's mean departure, less the clients' coordinate-wise median of them: colluders drag each
        # round's median towards their shared direction, which leaves its opposite in every honest departure.
        history = self._history[eligible] / self._rounds[eligible, None]
        history -= column_median(history)
        distances = cosine_from_gram(history @ history.T, overwrite=True)
        gap, nearest = log_nearest_distance(distances)
        z = -on_reference_scale(robust_z(gap, abs_floor=self.abs_floor), len(kept))
        tests = max(1.0, len(kept) / REFERENCE_CLIENTS)
        scores, flagged = self.flag(dict(zip(kept, bonferroni_zs(z, tests).tolist())), everyone)
        usual = float(np.exp(np.median(gap)))
        evidence = []
        for cid in flagged:
            i = kept.index(cid)
            d = float(np.exp(gap[i]))
            # a ratio to a floored zero (344,614,746,309× closer, QA) says less than "the same"
            closer = (
                f"are {kept[nearest[i]]}'s, to float32's resolution: one copies the other (cosine distance below "
                f"{FLOAT32_RESOLUTION:.2g} against a usual {usual:.3g})"
                if d <= FLOAT32_RESOLUTION
                else f"point {usual / d:,.0f}× closer to {kept[nearest[i]]}'s than a client's usually do to its nearest "
                f"(cosine distance {d:.3g} against {usual:.3g})"
            )
            evidence.append(
                Evidence(self.name, cid, None, None, scores[cid], f"its departures from the round's median, over the run, {closer}")
            )
        return self.result(
            scores=scores,
            flagged=flagged,
            round_scores={},
            first_flagged={},
            evidence=evidence,
            extras={"nearest": {cid: kept[j] for cid, j in zip(kept, nearest)}, "copies": copy_groups(kept, distances)},
        )


def copy_groups(ids: list[str], distances: np.ndarray) -> list[list[str]]:
    """The groups of two or more ``ids`` whose pairwise cosine distance is within float32's resolution: clients that
    sent the same updates over the run, up to scale (directions are compared), in the order of ``ids``. Which of a
    group trained and which copied, the updates cannot say (sybils all copy; in a mimic attack one of them is the
    honest client copied)."""
    parent = list(range(len(ids)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in np.argwhere(np.triu(distances <= FLOAT32_RESOLUTION, k=1)):
        parent[root(int(i))] = root(int(j))
    groups: dict[int, list[str]] = {}
    for i, cid in enumerate(ids):
        groups.setdefault(root(i), []).append(cid)
    return [group for group in groups.values() if len(group) > 1]
