"""``client-metrics``: training metrics a client reported that no honest client would."""

from __future__ import annotations

import numpy as np

from ..run import Run
from .base import DATA_SIZE
from .round_data import LOCAL_STEPS, RoundData
from .statistic import RoundStatisticDetector


class ClientMetricsDetector(RoundStatisticDetector):
    """Robust z of every reported client metric per round, accumulated over the run.

    A label-flipping client cannot fit its flipped labels on top of the global
    model: its training accuracy stays far below the others' (the label-flipping
    seed post; Tolpegin et al., *Data poisoning attacks against federated
    learning systems*, ESORICS 2020). Two-sided: a metric too good is as odd
    as one too bad.

    Not standalone: a client's loss and accuracy are set by its own data (a shard
    of one or two classes is fitted easily), and they are what the client chose to
    report; they corroborate a flag on its update but never raise suspicion alone.
    Nor do they add a family beside ``magnitude`` flags alone: a client whose local
    training diverges (a loss far above the others') sends a far longer update in the
    same rounds, one event seen twice; nor beside the flags its data size explains (far
    more data are far more SGD steps: a loss and an accuracy unlike the others').
    """

    name = "client-metrics"
    reference = "Tolpegin et al. 2020 (label flipping); seed post on training accuracy"
    summary = "clients whose reported training metrics are outliers"
    family = "behaviour"
    standalone = False
    explained_by = frozenset({"magnitude", DATA_SIZE})
    reads_updates = False
    side = "two-sided"
    abs_floor = 0.05

    def applicable(self, run: Run) -> str:
        if not any(run.metric_names(r) for r in run.rounds):
            return "no client metrics were recorded"
        return ""

    def statistics(self, data: RoundData) -> dict[str, np.ndarray]:
        # a client's step count is a setting of its training, not an outcome: it scales the update's length instead
        return {
            name: values for name, values in data.metrics.items()
            if name != LOCAL_STEPS and np.isfinite(values).sum() >= self.min_clients
        }  # fmt: skip

    def explain(self, key: str) -> str:
        return f"reported {key} unlike the other clients'"
