"""``cosine-hdbscan``: FLAME's clustering of update directions."""

from __future__ import annotations

from collections import Counter
from typing import ClassVar

import numpy as np

from ..run import Run
from ..stats import classical_mds
from .accumulate import EVIDENCE_ROUNDS, first_rounds
from .base import Detector, DetectorResult, Evidence, RoundData
from .history import DirectionHistory


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
    (mean unit update) is an outlier of the same clustering. The share votes only
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
        A client clustered in fewer rounds has no outlier rate to vote with (its
        score is at most 0.5, below any useful threshold): being outside a small
        round's majority once or twice is chance, as it is for the z-score
        detectors' means, which count from ``EVIDENCE_ROUNDS`` rounds.
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
    label_mix = True

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
        self._outlier: dict[int, dict[str, bool]] = {}

    def observe(self, data: RoundData) -> None:
        if len(data.clients) < self.min_clients:
            return
        outliers = flame_outliers(data.cosine_distances)
        self._outlier[data.round] = dict(zip(data.clients, map(bool, outliers)))
        self._history = data.accumulated

    def _rates(self, upto: float) -> tuple[dict[str, float], dict[str, float]]:
        """Each client's outlier rate over its clustered rounds up to ``upto``, and the rate that votes
        (0 below ``min_rounds`` rounds, or when chance explains it: see the class)."""
        from scipy.stats import binom  # scikit-learn's HDBSCAN has imported scipy.stats already

        hits: Counter[str] = Counter()
        seen: Counter[str] = Counter()
        for r, flags in self._outlier.items():
            if r <= upto:
                for cid, out in flags.items():
                    seen[cid] += 1
                    hits[cid] += out
        ids = list(seen)
        k = np.array([hits[c] for c in ids])
        n = np.array([seen[c] for c in ids])
        pooled = k.sum() / max(1, n.sum())
        chance = binom.sf(k - 1, n, pooled)  # P(at least k outliers in n rounds at the pooled rate)
        votes = (n >= self.min_rounds) & (chance <= self.alpha / max(1, len(ids)))
        rates = {cid: float(h / m) for cid, h, m in zip(ids, k, n)}
        return rates, {cid: rates[cid] if vote else 0.0 for cid, vote in zip(ids, votes)}

    def finish(self) -> DetectorResult:
        ids, distances = self._history.cosine_distances() if self._history is not None else ([], None)
        accumulated = dict.fromkeys(ids, False)
        if len(ids) >= self.min_clients:
            accumulated = dict(zip(ids, map(bool, flame_outliers(distances))))
        else:
            distances = None
        rates, votes = self._rates(np.inf)
        scores, flagged = self.flag(
            {cid: 0.5 * votes.get(cid, 0.0) + 0.5 * accumulated.get(cid, False) for cid in ids}, self._run.all_clients
        )
        # The accumulated directions are clustered once, at the end: each round's votes count beside that.
        first = first_rounds(
            self._outlier,
            flagged,
            lambda r: {cid: 0.5 * vote + 0.5 * accumulated.get(cid, False) for cid, vote in self._rates(r)[1].items()},
            self.threshold,
        )
        evidence = []
        for cid in flagged:
            rounds = [r for r, flags in self._outlier.items() if flags.get(cid)]
            evidence.append(
                Evidence(
                    self.name, cid, rounds[0] if rounds else None, None, scores[cid],
                    f"outside the majority cluster in {len(rounds)} of its rounds and on its accumulated update",
                )
            )
        view = distances if distances is not None and len(ids) <= self.view_clients else None
        order = sorted(range(len(ids)), key=lambda i: (accumulated[ids[i]], ids[i]))
        return self.result(
            scores=scores,
            flagged=flagged,
            round_scores={r: {c: float(o) for c, o in flags.items()} for r, flags in self._outlier.items()},
            first_flagged=first,
            evidence=evidence,
            extras={
                "outlier_rate": rates,
                "accumulated_outliers": [c for c, out in accumulated.items() if out],
                "distance_clients": [ids[i] for i in order],
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
