"""One round of a run as every detector receives it (:class:`RoundData`), made by the scan (:mod:`fedforensics.scan`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from ..errors import FedForensicsError
from ..run import Layer
from ..stats import cosine_from_gram
from .history import DirectionHistory
from .pieces import max_abs_rows

#: The client metric under which a client may report the optimizer steps it took in a round (docs/format.md): where
#: every client of a round reports it, magnitudes are compared as at the round's median step count (:attr:`RoundData.work`).
LOCAL_STEPS = "local_steps"


@dataclass
class RoundData:
    """One round, read once and shared by every detector.

    ``clients`` holds only the clients whose update is finite; the others are
    listed in ``nonfinite`` (a NaN would poison every median), and those that took
    no part (a zero update, no samples claimed) in ``idle``. The updates stay
    one block per layer; the scan computes the whole updates' Gram matrix (the sum of
    the layers'; each layer's squared norms are kept, its matrix is not: clients² numbers a
    layer), and what is derived from it (norms, cosine distances) is computed once, on first
    use, and shared by every detector.
    """

    round: int
    clients: list[str]
    index: np.ndarray  # int64 (n_clients,): each client's position in the run's client list (``Run.all_clients``)
    layers: list[Layer]
    updates: dict[str, np.ndarray]  # layer name -> float32 (n_clients, *shape)
    num_samples: np.ndarray  # (n_clients,)
    metrics: dict[str, np.ndarray]  # metric name -> float64 (n_clients,), NaN where unreported
    gram: np.ndarray  # float64 (n_clients, n_clients): dot products of the whole updates
    layer_sq_norms: dict[str, np.ndarray]  # layer name -> float64 (n_clients,): squared L2 norm of each client's layer
    nonfinite: list[str] = field(default_factory=list)
    #: Clients that sent back the model they were given (a zero update) and claimed no samples: nothing to train on.
    #: FedAvg weighs them 0 and they changed nothing, so they are not among ``clients``, whom the detectors compare.
    idle: list[str] = field(default_factory=list)
    #: The global model this round's clients received held NaN/Inf: their NaN/Inf updates are its doing.
    global_nonfinite: bool = False
    #: Every client's update direction summed over the rounds so far, this one included, when a detector of the
    #: scan ``uses_directions`` (one instance for the whole scan), else ``None``.
    history: DirectionHistory | None = None
    #: What detectors derive from this round alike and share (a grid sample of the updates), by what it is.
    shared: dict[Any, Any] = field(default_factory=dict)
    #: Layer name -> float64 (n_clients,): each client's largest |value| of that layer, where already found
    #: (the scan reads it while it adds the round to the directions, for a detector that ``reads_max_abs``);
    #: :meth:`max_abs` finds the others.
    layer_max_abs: dict[str, np.ndarray] = field(default_factory=dict)

    def flat(self, name: str) -> np.ndarray:
        """One layer's updates as a clients × parameters view (no copy)."""
        return self.updates[name].reshape(len(self.clients), -1)

    def max_abs(self, name: str) -> np.ndarray:
        """Each client's largest |value| of layer ``name`` (max |Δ|), float64, found once a round."""
        found = self.layer_max_abs.get(name)
        if found is None:
            found = self.layer_max_abs[name] = max_abs_rows(self.flat(name))
        return found

    @cached_property
    def size(self) -> int:
        """Parameters of an update: the sum of its layers' sizes."""
        return sum(layer.size for layer in self.layers)

    @cached_property
    def work(self) -> tuple[np.ndarray, str]:
        """What each client's update length grows with, and its unit: the optimizer steps it reported
        (:data:`LOCAL_STEPS`) where every client of the round reported a positive finite number, else its sample
        count, which sets the steps where the clients share their epochs and batch size."""
        steps = self.metrics.get(LOCAL_STEPS)
        if steps is not None and bool(np.all(np.isfinite(steps) & (steps > 0))):
            return np.asarray(steps, dtype=np.float64), "step count"
        return np.asarray(self.num_samples, dtype=np.float64), "sample count"

    @cached_property
    def norms(self) -> np.ndarray:
        """L2 norm of each client's whole update."""
        return np.sqrt(np.clip(np.diag(self.gram), 0.0, None))

    @cached_property
    def mostly_idle(self) -> np.ndarray | None:
        """Which clients sent a zero update, where half or more of the round did (``None`` otherwise): stragglers
        returning the model they were sent. Their median norm is 0, no reference for the size of a step (every client
        that trained sat at z = 10 on ``norm``: a review), so the magnitude statistics compare the clients that moved
        among themselves, where at least their ``min_clients`` did; ``free-rider`` judges the others."""
        idle = self.norms == 0
        return idle if idle.any() and 2 * int(idle.sum()) >= len(self.clients) else None

    @cached_property
    def median_norm(self) -> float:
        """The median of :attr:`norms` (of the clients that moved, in a :attr:`mostly_idle` round): taken once a
        round, not once for each of a deep model's layers."""
        idle = self.mostly_idle
        moved = self.norms if idle is None else self.norms[~idle]
        return float(np.median(moved)) if moved.size else 0.0  # every update zero: nothing moved

    @property
    def accumulated(self) -> DirectionHistory:
        """Gone: :attr:`history`, which the scan fills when a detector sets ``uses_directions = True``."""
        raise FedForensicsError(
            "RoundData.accumulated is gone: set uses_directions = True on the detector and read data.history"
        )

    @cached_property
    def cosine_distances(self) -> np.ndarray:
        """Pairwise cosine distances ``1 − cos`` between the clients' updates (a zero update is at 1)."""
        return cosine_from_gram(self.gram)

    @cached_property
    def moved(self) -> np.ndarray:
        """Which clients' updates are not zero: a zero update has no direction to compare."""
        return self.norms > 0

    @cached_property
    def moved_cosine_distances(self) -> np.ndarray:
        """:attr:`cosine_distances` among the clients that :attr:`moved` only (a zero update, at distance 1 from
        every other, would be an outlier by construction)."""
        moved = self.moved
        return self.cosine_distances if moved.all() else self.cosine_distances[np.ix_(moved, moved)]
