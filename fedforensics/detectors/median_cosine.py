"""``median-cosine``: how far each update points from the round's coordinate-wise median."""

from __future__ import annotations

import numpy as np

from ..stats import cosine_to
from .base import RoundData
from .statistic import RoundStatisticDetector


class MedianCosineDetector(RoundStatisticDetector):
    """Cosine distance between each update and the coordinate-wise median update of the round.

    The coordinate-wise median (Yin et al., *Byzantine-robust distributed
    learning*, ICML 2018) is a reference that a minority of attackers cannot
    drag; a client that keeps pointing away from it round after round
    accumulates evidence, whatever its norm.
    """

    name = "median-cosine"
    reference = "Yin et al. 2018 (coordinate-wise median); cosine distance as in FLAME (Nguyen et al. 2022)"
    summary = "update direction far from the round's coordinate-wise median"
    side = "greater"
    abs_floor = 0.01

    def statistics(self, data: RoundData) -> dict[str, np.ndarray]:
        return {"direction": cosine_to(data.matrix, np.median(data.matrix, axis=0))}

    def explain(self, key: str, value: float) -> str:
        return "update points away from the coordinate-wise median of the round"
