"""``cosine-hdbscan``: FLAME's clustering of update directions."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from typing import ClassVar

import numpy as np

from ..errors import FedForensicsError
from ..run import Run
from ..stats import classical_mds
from .accumulate import EVIDENCE_ROUNDS
from .base import Detector, DetectorResult, Evidence
from .history import DirectionHistory
from .round_data import RoundData
from .round_table import RoundTable


def flame_outliers(distances: np.ndarray) -> np.ndarray:
    """FLAME's rule: HDBSCAN on cosine distances, ``min_cluster_size = n//2 + 1``; outside the majority cluster is out.

    Returns a boolean mask of the outliers.
    """
    from sklearn.cluster import HDBSCAN  # here, not at import: scikit-learn takes ~1 s to import

    n = distances.shape[0]
    labels = HDBSCAN(
        metric="precomputed", min_cluster_size=max(2, n // 2 + 1), min_samples=1, allow_single_cluster=True, copy=True
    ).fit(distances).labels_
    clustered = Counter(int(l) for l in labels if l >= 0)
    if not clustered:
        return np.ones(n, dtype=bool)
    majority = clustered.most_common(1)[0][0]
    return labels != majority


class CosineHDBSCANDetector(Detector):
    """FLAME (Nguyen et al., *FLAME: Taming backdoors in federated learning*, USENIX Security 2022).

    Every round, HDBSCAN clusters the pairwise cosine distances of the updates
    with ``min_cluster_size = n//2 + 1``, ``min_samples = 1`` and a single cluster
    allowed; the clients outside the majority cluster are that round's outliers.
    Applied per round alone it flags 2–3 honest clients a round even without an
    attack, so the run-level score votes: half of it is the share of a client's
    rounds in which it was an outlier, half whether its *accumulated* direction
    (sum of its unit updates) is an outlier of the same clustering. The share votes only
    when it is improbable by chance: when the updates form no dense majority
    (high-dimensional, diffuse updates of a device fleet; 46 % of client-rounds
    outliers in ``benchmarks/fleet_bench.py``), a client seen in three rounds is an
    outlier in all three one time in ten, and among a thousand clients that is a
    hundred honest ones. So a client's outlier count must lie in the binomial tail
    of the run's pooled outlier rate at level ``alpha`` divided by the number of
    clients (Bonferroni).

    Parameters
    ----------
    threshold
        Run-level score at which a client is flagged: the default 0.95 means an
        outlier on the accumulated directions and in at least 90 % of its rounds
        (honest clients of the clean demo federations were outliers in up to 85 %).
    min_clients
        Rounds with fewer clients are not clustered.
    min_rounds
        A client clustered in fewer rounds has no outlier rate to vote with and is
        left unscored (NaN), and out of the clustering of the accumulated directions
        too: being outside a small round's majority once or twice is chance, as it
        is for the z-score detectors' means, which count from ``EVIDENCE_ROUNDS`` rounds.
    alpha
        Family-wise level of the binomial test above: the chance that any client whose
        rounds were outliers at the run's pooled rate, independently, votes at all.
    """

    #: Beyond this many clients the report carries no distance matrix or embedding: the matrix grows
    #: with the square of the clients (1,500 clients made 20 MB of a 48 MB JSON report), its classical
    #: MDS with the cube, and a picture of it is no longer readable.
    view_clients: ClassVar[int] = 500

    name = "cosine-hdbscan"
    reference = "Nguyen et al. 2022, FLAME: Taming Backdoors in Federated Learning (USENIX Security)"
    summary = "HDBSCAN on cosine distances; outside the majority cluster, per round and accumulated"
    family = "direction"
    bounds = {
        "alpha": (lambda v: 0 < v <= 1 or v == math.inf, "must be a level in (0, 1], or inf to switch the test off"),
        # the score is at most 1: a threshold above it would flag nobody without saying so (a fresh-eyes user)
        "threshold": (lambda v: 0 < v <= 1 or v == math.inf, "must be in (0, 1] (the score is at most 1), or inf to flag nobody"),
    }
    label_mix = True
    uses_directions = True

    def __init__(
        self, *, threshold: float = 0.95, min_clients: int = 4, min_rounds: int = EVIDENCE_ROUNDS, alpha: float = 0.05
    ) -> None:
        self.threshold = threshold
        self.min_clients = min_clients
        self.min_rounds = min_rounds
        self.alpha = alpha

    def start(self, run: Run) -> None:
        self._run = run
        self._history: DirectionHistory | None = None
        self._outlier = RoundTable(run.all_clients)  # per round, 1.0 for each client outside the majority, else 0.0

    def observe(self, data: RoundData) -> None:
        if data.history is None:  # a scan of one's own without them: half the score would be lost in silence (review)
            raise FedForensicsError(
                f"{self.name} needs the clients' accumulated directions: scan(run, directions=True), as analyze() and "
                "Detector.score() do"
            )
        # a zero update has no direction: at distance 1 from every other it was outside the majority by construction
        # (a fresh-eyes user's client sending the model back was 'malicious' on that beside free-rider); such a
        # client is not clustered in that round, and the others are clustered among themselves
        if np.count_nonzero(data.moved) < self.min_clients:
            return
        self._outlier.add(data.round, data.index[data.moved], flame_outliers(data.moved_cosine_distances).astype(np.float64))
        self._history = data.history

    def _tallies(self) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
        """Round by round: the round, the positions of its outliers, and each client's outlier count and
        clustered rounds up to it (one pair of arrays, updated in place)."""
        hits, seen = np.zeros(len(self._outlier.ids)), np.zeros(len(self._outlier.ids))
        for r in self._outlier:
            index, out = self._outlier.arrays(r)
            hits[index] += out
            seen[index] += 1
            yield r, index[out > 0], hits, seen

    def _votes(self, hits: np.ndarray, seen: np.ndarray) -> np.ndarray:
        """Each client's outlier rate (``hits`` of its ``seen`` clustered rounds) where it votes, else 0: below
        ``min_rounds`` rounds, or when chance explains it (see the class)."""
        from scipy.stats import binom  # scikit-learn's HDBSCAN has imported scipy.stats already

        rates = np.zeros(hits.shape)
        present = seen > 0
        k, n = hits[present], seen[present]
        pooled = k.sum() / max(1, n.sum())
        chance = binom.sf(k - 1, n, pooled)  # P(at least k outliers in n rounds at the pooled rate)
        votes = (n >= self.min_rounds) & (chance <= self.alpha / max(1, k.size))
        rates[present] = np.where(votes, k / n, 0.0)
        return rates

    def finish(self) -> DetectorResult:
        everyone = self._outlier.ids
        position = {cid: j for j, cid in enumerate(everyone)}
        hits, seen = np.zeros(len(everyone)), np.zeros(len(everyone))
        for _, _, hits, seen in self._tallies():
            pass
        # the accumulated directions of the clients clustered in min_rounds rounds or more, who can vote: a client
        # of fewer cannot reach the threshold, and a fleet whose ids change every round would need n × n distances
        # over all of them (3.3 GB at 10,000 ids, QA)
        voters = [cid for cid in everyone if seen[position[cid]] >= self.min_rounds]
        ids, distances = self._history.cosine_distances(voters) if self._history is not None else ([], None)
        accumulated = dict.fromkeys(ids, False)
        if len(ids) >= self.min_clients:
            accumulated = dict(zip(ids, map(bool, flame_outliers(distances))))
        else:
            distances = None
        on_accumulated = np.array([accumulated.get(cid, False) for cid in everyone], dtype=np.float64)
        score = 0.5 * self._votes(hits, seen) + 0.5 * on_accumulated
        scores, flagged = self.flag({cid: float(score[position[cid]]) for cid in voters}, everyone)  # others: unscored
        # The accumulated directions are clustered once, at the end: each round's votes count beside that. One
        # replay of the rounds finds where each flag's evidence up to then first reached the threshold.
        pending = {position[cid] for cid in flagged}
        first: dict[str, int] = {}
        first_outlier: dict[str, int] = {}
        for r, outliers, hits_upto, seen_upto in self._tallies():
            for j in outliers:
                first_outlier.setdefault(everyone[j], r)
            if pending:
                upto = 0.5 * self._votes(hits_upto, seen_upto) + 0.5 * on_accumulated
                for j in [j for j in pending if seen_upto[j] > 0 and upto[j] >= self.threshold]:
                    first[everyone[j]] = r
                    pending.discard(j)
        # the evidence's round is where the vote reached the threshold (its first_flagged), not the first outlier round:
        # that one, before an attack began, read as when the attack was seen (QA); the detail names it
        evidence = [
            Evidence(
                self.name, cid, first.get(cid), None, scores[cid],
                f"outside the majority cluster in {int(hits[position[cid]])} of its rounds"
                + (f" (first in round {first_outlier[cid]})" if cid in first_outlier else "")
                + (" and on its accumulated update" if accumulated.get(cid) else ", not on its accumulated update")
                # the evidence's round, which the reports print beside this, read as the accumulated update's (a review)
                + (f": enough to flag it by round {first[cid]}" if cid in first else ""),
            )
            for cid in flagged
        ]
        rates = {cid: float(hits[j] / seen[j]) for j, cid in enumerate(everyone) if seen[j] > 0}
        view = distances if distances is not None and len(ids) <= self.view_clients else None
        order = sorted(range(len(ids)), key=lambda i: (accumulated[ids[i]], ids[i]))
        return self.result(
            scores=scores,
            flagged=flagged,
            round_scores=self._outlier,
            first_flagged={cid: first[cid] for cid in flagged if cid in first},
            evidence=evidence,
            extras={
                "outlier_rate": rates,
                "accumulated_outliers": [c for c, out in accumulated.items() if out],
                "distance_clients": [ids[i] for i in order],
                # the clients the view leaves out, clustered in fewer than min_rounds rounds (left out silently: a review)
                "too_few_rounds": [cid for cid in everyone if seen[position[cid]] < self.min_rounds],
                "view_omitted": (
                    f"{len(ids):,} clients are too many for a readable distance matrix (more than {self.view_clients})"
                    if distances is not None and view is None
                    else None
                ),
                "distance_matrix": view[np.ix_(order, order)].round(4).tolist() if view is not None else None,
                "embedding": (
                    {cid: [float(x) for x in xy] for cid, xy in zip(ids, classical_mds(view))} if view is not None else {}
                ),
            },
        )
