"""``output-bias``: which class's output bias a client pushes, and how hard."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..output_layer import find_output_layer
from ..run import Run
from .accumulate import Conclusion
from .round_data import RoundData
from .statistic import RoundStatisticDetector, strongest


class OutputBiasDetector(RoundStatisticDetector):
    """Robust z of the signed change of every class's output bias, per round.

    Bilgin (*Anomaly localization in model gradients under backdoor attacks
    against federated learning*, 2021) finds backdoor anomalies in the final
    layer's bias: poisoning one target class moves that class's bias, so the
    class a client pushes hardest names the likely backdoor target.

    Not standalone: the gradient of a softmax layer's bias is the client's label
    histogram minus its predictions (the label leakage of Zhao et al., iDLG, 2020),
    so under label skew an honest client moves it as much as an attacker does.
    It names the class and corroborates, but never raises suspicion alone.

    Parameters
    ----------
    max_classes
        An output bias with more entries is not scored: one statistic per class
        costs time in proportion to classes × rounds, and a vocabulary-sized output
        layer (a next-word model's 50,000 tokens) is not a label histogram to read.
    """

    name = "output-bias"
    reference = "Bilgin 2021, Anomaly localization in model gradients under backdoor attacks against FL"
    summary = "signed change of each class's output bias: names the likely target label"
    family = "magnitude"
    bounds = {"max_classes": (lambda v: v >= 1, "must be at least 1")}
    large_data = True
    standalone = False
    label_mix = True
    side = "two-sided"
    rel_floor = 0.1

    def __init__(
        self, *, threshold: float = 5.0, spike: float | None = None, min_clients: int = 4, max_classes: int = 1000
    ) -> None:
        super().__init__(threshold=threshold, spike=spike, min_clients=min_clients)
        self.max_classes = max_classes

    def start(self, run: Run) -> None:
        head = find_output_layer(run)
        self._layer = head.bias if head is not None else None
        super().start(run)

    def applicable(self, run: Run) -> str:
        if self._layer is None:
            return "no output bias in the model (a one-dimensional layer after its output weight, of its size)"
        if self._layer.size > self.max_classes:
            return f"the output bias {self._layer.name} has {self._layer.size:,} entries, more than max_classes={self.max_classes:,}"
        return ""

    def statistics(self, data: RoundData) -> dict[str, np.ndarray]:
        bias = data.updates[self._layer.name]
        return {f"class {k}": bias[:, k] for k in range(bias.shape[1])}

    def layer_of(self, key: str) -> str | None:
        return self._layer.name

    def explain(self, key: str) -> str:
        # an honest client's label mix moves it too (a fresh-eyes user: every label-skewed client had a "likely target"),
        # and a scaled or reversed update moves every class (a fresh-eyes auditor: scalers were given a "likely target")
        return (
            f"moves the output bias of {key} unlike the others (a backdoor's likely target, a label its data hold "
            "unusually much or little of, or any class where its whole update is scaled or reversed)"
        )

    def extras(self, conclusions: dict[str, Conclusion]) -> dict[str, Any]:
        target = {cid: key.removeprefix("class ") for cid, (_, key) in strongest(conclusions).items()}
        return {"layer": self._layer.name, "likely_target": target}
