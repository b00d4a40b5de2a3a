"""How much of the clients' differences repeats from round to round: the context of a flag.

The detectors accumulate evidence over rounds on the premise that an honest client's difference from
the others is partly noise (minibatches, a moving model) and averages out, while an attacker pulls the
same way every round. When honest clients train on a few dozen samples each, local training is nearly
full-batch and an honest update repeats its client's quirks every round: nothing averages out, and
honest clients are flagged (docs/detection.md, "Tiny shards flag honest clients"). This module measures
that premise on the run itself, so the report can say when it does not hold.
"""

from __future__ import annotations

import numpy as np

from .detectors.base import RoundData
from .detectors.spread_shift import sample_columns
from .run import Layer

#: Median cosine between a client's deviations from the median in consecutive rounds of its own, at and above
#: which the report says honest differences persist. Over the 373 cached federations of docs/detection.md it
#: ranges 0.11–0.997 (at most 0.90, median 0.75, on the demo grid's CNN). At 0.95 and above lie 19 of them (the 15
#: of tiny shards, softmax regressions of the red team, a 20-client MLP at Dirichlet 0.2), and 70 of the 94 honest
#: clients flagged in all 373: 70 of their 527 honest clients, against 24 of 3,750 in the others.
PERSISTENT = 0.95
#: Coordinates of the model the deviations are compared on (evenly spaced, as ``spread-shift``'s).
COORDINATES = 1024


class DeviationPersistence:
    """Per round, each client's deviation from the coordinate-wise median on a grid of coordinates, as a
    unit vector; the cosine with the same client's deviation in the last round it took part in."""

    def __init__(self, layers: list[Layer], coordinates: int = COORDINATES) -> None:
        self._columns = sample_columns(layers, coordinates)
        self._last: dict[str, np.ndarray] = {}
        self.cosines: list[float] = []

    def observe(self, data: RoundData) -> None:
        if len(data.clients) < 4 or not self._columns:  # the detectors' smallest comparable round
            return
        sample = np.concatenate([data.flat(name)[:, columns] for name, columns in self._columns], axis=1)
        deviation = sample.astype(np.float64) - np.median(sample, axis=0)
        lengths = np.linalg.norm(deviation, axis=1)
        for cid, row, length in zip(data.clients, deviation, lengths):
            if not length > 0:  # at the median: no direction this round
                continue
            unit = row / length
            if cid in self._last:
                self.cosines.append(float(unit @ self._last[cid]))
            self._last[cid] = unit

    @property
    def median(self) -> float | None:
        """The run's median cosine (``None`` with no client seen in two comparable rounds)."""
        return float(np.median(self.cosines)) if self.cosines else None
