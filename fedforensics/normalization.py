"""Whether an update's excess length lies before the model's last BatchNorm, which absorbs it.

A BatchNorm layer (Ioffe & Szegedy 2015) divides its input by the batch's spread, so
the layers before it are scale-invariant: a step there rotates their weights, and
its length says how far only relative to their own norm (van Laarhoven 2017,
*L2 regularization versus batch and weight normalization*). An honest client whose
last local batch holds 2 or 3 samples normalizes them by the spread of 2 or 3 numbers
and takes a far longer step in those layers: in a fresh-eyes auditor's federations
(docs/detection.md, "A twelfth check"), clients of 34, 66, 67 or 99 samples at batch 32
sent updates 7–15× the round's median length, every round, the first convolution ×9–15
and the hidden linear layer ×7–12, while the output layer behind the last BatchNorm was
ordinary (×0.7–2.2). A scaled update (model replacement, a boosted backdoor) lengthens
every layer alike: in the 41 cached federations of BatchNorm models with scaled, crafted
and data-poisoning attackers, no attacker's update was so in any round.

So a client whose update is longer than the round's median while the layers after the
model's last BatchNorm (found by its buffers, running statistics, in the state's order) are not
even :data:`HEAD_SHARE` as much longer, in most of its rounds, has a magnitude that the
normalization may explain: its magnitude flags are not strong alone (``verdict.py``).
Normalizations without running statistics (LayerNorm, GroupNorm) cannot be told from
other layers in a run file and are not considered.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .run import Layer

#: A BatchNorm layer's running statistics (PyTorch's and Keras's names): moving averages of the batches' statistics,
#: not trained, each round's change ``(1 − 0.9ᵏ)·(batch statistic − running one)`` set by the k batches a client took.
RUNNING_STATISTICS = ("running_mean", "running_var", "moving_mean", "moving_variance")
#: The buffers by which a BatchNorm layer is recognized in a state.
BATCHNORM_BUFFERS = (*RUNNING_STATISTICS, "num_batches_tracked")
#: The layers after the last BatchNorm lengthened at most this share of the whole update's excess over the median.
HEAD_SHARE = 0.5


def after_last_batchnorm(layers: Sequence[Layer]) -> list[str]:
    """The analysable layers that follow the last BatchNorm's buffers in the state's order (the output layer, in the
    usual models); empty when the model has none or nothing analysable follows them."""
    last = max((i for i, layer in enumerate(layers) if layer.name.endswith(BATCHNORM_BUFFERS)), default=None)
    if last is None:
        return []
    return [layer.name for layer in layers[last + 1 :] if layer.analysable and layer.size > 0]


def normalized_excess_clients(
    clients: list[str], norms: np.ndarray, head_sq_norms: np.ndarray
) -> list[str]:
    """The clients of a round (of 3 or more) whose update is longer than the round's median while their layers after
    the last BatchNorm (``head_sq_norms``: their squared norm per client) are at most :data:`HEAD_SHARE` times as
    long, relative to those layers' median, as the whole update is relative to its median."""
    head = np.sqrt(np.clip(head_sq_norms, 0.0, None))
    typical, typical_head = float(np.median(norms)), float(np.median(head))
    if len(clients) < 3 or typical <= 0 or typical_head <= 0:
        return []
    whole = norms / typical
    return [cid for cid, w, h in zip(clients, whole, head / typical_head) if w > 1.0 and h <= HEAD_SHARE * w]
