"""``norm``: the L2 norm of each update, compared across the round's clients."""

from __future__ import annotations

from typing import Any

import numpy as np

from .accumulate import Conclusion
from .round_data import RoundData
from .statistic import RoundStatisticDetector


class NormDetector(RoundStatisticDetector):
    """Robust z of each client's update norm per round, accumulated over the run.

    A boosted "model replacement" update (Bagdasaryan et al., *How to backdoor
    federated learning*, AISTATS 2020) is far larger than honest ones; a
    norm-matched noise update is not, which is why this test is two-sided and
    only one of several. The per-round median norm is reported as the clipping
    bound that norm bounding (Sun et al., *Can you really backdoor federated
    learning?*, 2019) and FLAME (Nguyen et al., USENIX Security 2022) would
    have applied, with the clients it would have clipped.

    Besides the mean of a client's per-round z, the share of its rounds in which its
    norm sat 10 MADs (``CLIP``) or more from the round's median scores: at the
    defaults a client is flagged once that share reaches ``extreme_share`` (and 3
    rounds). A boosted update sent in one round of three (an attacker who spaces its
    attacks) is diluted in the mean, not in that share (:mod:`.accumulate`).
    """

    name = "norm"
    reference = "Sun et al. 2019 (norm bounding); Bagdasaryan et al. 2020 (model replacement)"
    summary = "L2 norm of each update: boosted or shrunk updates"
    family = "magnitude"
    large_data = True
    grows_with_data = True
    side = "two-sided"
    rel_floor = 0.1
    keep_values = True  # the norms, for the clipping bound

    def __init__(
        self, *, threshold: float = 3.5, spike: float | None = None, min_clients: int = 4, extreme_share: float | None = 0.25
    ) -> None:
        super().__init__(threshold=threshold, spike=spike, min_clients=min_clients)
        self.extreme_share = extreme_share

    def statistics(self, data: RoundData) -> dict[str, np.ndarray]:
        return {"l2": data.norms}

    def explain(self, key: str) -> str:
        return "update norm far from the round's median norm"

    def extras(self, conclusions: dict[str, Conclusion]) -> dict[str, Any]:
        norms = self.kept_values("l2")
        bounds: dict[int, float] = {}
        clipped: dict[str, list[int]] = {}
        factor: dict[str, float] = {}
        for r in norms:
            index, values = norms.arrays(r)
            bound = bounds[r] = float(np.median(values))
            for i in np.flatnonzero(values > bound):
                cid = norms.ids[index[i]]
                clipped.setdefault(cid, []).append(r)
                ratio = float(values[i]) / bound if bound > 0 else float("inf")  # most clients sent nothing
                factor[cid] = max(factor.get(cid, 1.0), ratio)
        return {
            "norms": norms,
            "clip_bound": {str(r): b for r, b in bounds.items()},
            "clipped_rounds": clipped,
            "max_clip_factor": factor,
        }
