"""Which layers of a run are the model's output layer (its last weight and bias), from the layer table and,
where the order of the layers misleads, from what softmax cross-entropy leaves in the updates."""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass

import numpy as np

from .run import Layer, Run

#: A bias whose updates sum to at most this share of their absolute sum (median client) moves as softmax's does:
#: float32 rounding leaves 10⁻⁸–10⁻⁷, SGD's weight decay (which pulls the bias, not its sum, to zero) up to about
#: 3·10⁻³ (docs/detectors.md, "Which layer is the output layer").
ZERO_SUM = 5e-3
#: The order's guess gives way only when its bias is clearly not a softmax bias: biases followed by a ReLU sit at
#: 3·10⁻² (a GRU's) to 0.9; between the two bounds it stands.
NOT_ZERO_SUM = 2e-2

#: How many of the first rounds are read to see which biases' updates sum to zero.
ROUNDS_READ = 3


@dataclass(frozen=True)
class OutputLayer:
    """The output layer: its weight (matrix or kernel) and its bias (None if it has none); ``found_by`` says how:
    ``"order"`` (the last weight of the layer table and the bias after it) or ``"zero-sum"`` (the one bias whose
    updates sum to zero over the classes, where the last weight's do not)."""

    weight: Layer
    bias: Layer | None
    found_by: str

    def names(self) -> set[str]:
        """The names of its layers."""
        return {self.weight.name} | ({self.bias.name} if self.bias is not None else set())

    def layers_before(self, analysable: list[Layer]) -> list[Layer]:
        """The analysable layers before it in the forward pass, as far as the table tells: found by order,
        those before its weight; found by its updates, every layer but its own."""
        if self.found_by == "order":
            return analysable[: [layer.name for layer in analysable].index(self.weight.name)]
        return [layer for layer in analysable if layer.name not in self.names()]


def _fitting_bias(analysable: list[Layer], at: int) -> Layer | None:
    """The first one-dimensional layer after the weight at ``at`` with as many entries as the weight has rows
    (PyTorch's Linear) or columns (a Keras Dense kernel), before the next weight."""
    weight = analysable[at]
    for layer in analysable[at + 1 :]:
        if len(layer.shape) >= 2:
            return None
        if layer.size > 1 and layer.size in (weight.shape[0], weight.shape[-1]):
            return layer
    return None


def by_order(layers: list[Layer]) -> OutputLayer | None:
    """The last weight of the layer table (its last analysable layer of two or more dimensions) and the first
    one-dimensional layer after it that fits it: where a model declares its classifier last, as most do. A model
    whose last weight has no such bias has none, rather than whichever normalisation scale came before it; a
    model of vectors only has no output layer."""
    # a layer of no parameter (shape (3, 0)) classifies nothing: taken for the last weight, it turned output-bias off
    # and moved opposition's layers (another writer's file, a format review)
    analysable = [layer for layer in layers if layer.analysable and layer.size]
    weights = [i for i, layer in enumerate(analysable) if len(layer.shape) >= 2]
    if not weights:
        return None
    return OutputLayer(analysable[weights[-1]], _fitting_bias(analysable, weights[-1]), "order")


def _zero_sum_ratio(run: Run, layer: Layer) -> float:
    """How far the updates of ``layer`` in the first rounds are from summing to zero over its entries, for the
    median client: |Σₖ uₖ| / Σₖ |uₖ| (NaN when no update moved).

    The gradient of softmax cross-entropy with respect to the logits is the predictions minus the one-hot
    labels, whose entries sum to zero; so do, step after step, the updates of the output bias (SGD, with or
    without momentum; not Adam, which rescales each entry). A layer that feeds a normalisation which removes
    the mean (LayerNorm) shares the property; a layer followed by ReLU does not.
    """
    ratios: list[np.ndarray] = []
    for r in run.rounds[:ROUNDS_READ]:
        updates = run.layer_updates(r, layer.name).astype(np.float64)
        with np.errstate(invalid="ignore", over="ignore"):  # a NaN/Inf update is left out, not warned about
            total = np.abs(updates).sum(axis=1)
            moved = np.isfinite(total) & (total > 0)
            ratios.append(np.abs(updates[moved].sum(axis=1)) / total[moved])
    values = np.concatenate(ratios) if ratios else np.empty(0)
    return float(np.median(values)) if values.size else math.nan


def find_output_layer(run: Run) -> OutputLayer | None:
    """The run's output layer: :func:`by_order`, unless its bias's updates are clearly not a softmax bias's
    (:data:`NOT_ZERO_SUM`) while exactly one other weight's bias's sum to zero (:data:`ZERO_SUM`) and looks like
    a head: no other such bias has its size (layers that feed a LayerNorm share the property, and a residual
    stream's width repeats) and no normalisation layer has it either (a LayerNorm's scale and shift are as wide
    as the layer that feeds it; the classes have none). Otherwise the guess stands. The first rounds' updates of
    the candidate biases are read (a few numbers a client), once per run: the detectors that ask share it."""
    if run not in _found:
        _found[run] = _find(run)
    return _found[run]


#: Each open run's output layer, found once (the runs are not kept alive by it).
_found: weakref.WeakKeyDictionary[Run, OutputLayer | None] = weakref.WeakKeyDictionary()


def _find(run: Run) -> OutputLayer | None:
    guess = by_order(run.layers)
    if guess is None or guess.bias is None or not _zero_sum_ratio(run, guess.bias) >= NOT_ZERO_SUM:
        return guess
    analysable = run.analysable_layers
    pairs = [
        (weight, bias)
        for at, weight in enumerate(analysable)
        if len(weight.shape) >= 2 and (bias := _fitting_bias(analysable, at)) is not None and bias is not guess.bias
    ]
    zero_sum = [(weight, bias) for weight, bias in pairs if _zero_sum_ratio(run, bias) <= ZERO_SUM]
    biases = {bias.name for _, bias in pairs} | {guess.bias.name}
    normalisation = {layer.size for layer in analysable if len(layer.shape) == 1 and layer.name not in biases}
    heads = [
        (weight, bias)
        for weight, bias in zero_sum
        if sum(other.size == bias.size for _, other in zero_sum) == 1 and bias.size not in normalisation
    ]
    if len(heads) != 1:
        return guess
    return OutputLayer(heads[0][0], heads[0][1], "zero-sum")
