"""``output-bias``: which class's output bias a client pushes, and how hard."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..run import Layer, Run
from .accumulate import Conclusion
from .base import RoundData
from .statistic import RoundStatisticDetector


def output_bias(layers: list[Layer]) -> Layer | None:
    """The output layer's bias: the last analysable one-dimensional layer with more than one entry."""
    for layer in reversed(layers):
        if layer.analysable and len(layer.shape) == 1 and layer.size > 1:
            return layer
    return None


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
    """

    name = "output-bias"
    reference = "Bilgin 2021, Anomaly localization in model gradients under backdoor attacks against FL"
    summary = "signed change of each class's output bias: names the likely target label"
    family = "magnitude"
    standalone = False
    side = "two-sided"
    rel_floor = 0.1

    def __init__(self, *, threshold: float = 5.0, spike: float | None = None, min_clients: int = 4) -> None:
        super().__init__(threshold=threshold, spike=spike, min_clients=min_clients)

    def start(self, run: Run) -> None:
        self._layer = output_bias(run.layers)
        super().start(run)

    def applicable(self, run: Run) -> str:
        return "" if self._layer is not None else "no one-dimensional output bias in the model"

    def statistics(self, data: RoundData) -> dict[str, np.ndarray]:
        bias = data.updates[self._layer.name]
        return {f"class {k}": bias[:, k] for k in range(bias.shape[1])}

    def layer_of(self, key: str) -> str | None:
        return self._layer.name

    def explain(self, key: str, value: float) -> str:
        return f"moves the output bias of {key} unlike the others (likely target: {key})"

    def extras(self, conclusions: dict[str, Conclusion]) -> dict[str, Any]:
        target: dict[str, str] = {}
        best: dict[str, float] = {}
        for key, conclusion in conclusions.items():
            for cid, score in conclusion.scores.items():
                if score > best.get(cid, -np.inf):
                    best[cid], target[cid] = score, key.removeprefix("class ")
        return {"layer": self._layer.name, "likely_target": target}
