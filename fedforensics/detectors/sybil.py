"""``sybil``: clients whose updates are near-copies of another client's."""

from __future__ import annotations

import numpy as np

from .base import RoundData
from .statistic import RoundStatisticDetector


class SybilDetector(RoundStatisticDetector):
    """Each client's highest cosine similarity to any other client of the round.

    Honest clients train on different data with different SGD noise, so their
    updates are never near-identical; colluding sybils, and attacks that send
    one crafted update from several clients ("a little is enough", Baruch et
    al. 2019; min-max, Shejwalkar & Houmansadr 2021), are. This is the
    similarity FoolsGold (Fung et al., *The limitations of federated learning
    in sybil settings*, RAID 2020) penalises.
    """

    name = "sybil"
    reference = "Fung et al. 2020, FoolsGold (RAID)"
    summary = "near-identical updates from several clients"
    family = "collusion"
    side = "greater"
    abs_floor = 0.02

    def statistics(self, data: RoundData) -> dict[str, np.ndarray]:
        distances = data.cosine_distances.copy()
        np.fill_diagonal(distances, np.inf)
        return {"similarity": 1.0 - distances.min(axis=1)}

    def explain(self, key: str, value: float) -> str:
        return "update nearly identical to another client's (cosine similarity)"
