"""How much of the clients' differences repeats from round to round: the context of a flag.

The detectors accumulate evidence over rounds on the premise that an honest client's difference from
the others is partly noise (minibatches, a moving model) and averages out, while an attacker pulls the
same way every round. When honest clients train on a few dozen samples each, local training is nearly
full-batch and an honest update repeats its client's quirks every round: nothing averages out, and
honest clients are flagged (docs/detection.md, "Tiny shards flagged honest clients"). This module measures
that premise on the run itself, so the verdict rule and the report can say when it does not hold.
"""

from __future__ import annotations

import numpy as np

from .detectors.round_data import RoundData
from .detectors.grid import grid_sample, sample_columns
from .run import Layer
from .stats import column_median

#: Median cosine between a client's deviations from the median in two consecutive rounds, at and above which
#: honest differences persist: the verdict rule's default ``persistence``, at which one family's flag is set aside.
#: Over the 373 cached federations of docs/detection.md it ranges 0.11–0.997 (at most 0.90, median 0.75, on the
#: demo grid's CNN; −1 in one whose boosted attackers swing the model back and forth every round). At 0.95 and
#: above lie 20 of them (12 of the 15 of tiny shards, six softmax regressions of the red team, a 20-client MLP at
#: Dirichlet 0.2), with 74 of the 98 honest clients flagged in all 373 (74 of their 572 honest clients, against 24
#: of 3,750 in the others); there, 73 honest clients and 4 attackers were flagged by one family below twice its
#: threshold, against 24 honest and 179 attackers in the other 353.
PERSISTENT = 0.95
#: Coordinates of the model the deviations are compared on (evenly spaced, as ``spread-shift``'s).
COORDINATES = 1024
#: Histogram bins per unit of cosine: the median is kept to 1 / BINS.
BINS = 1000


class DeviationPersistence:
    """Per round, each client's deviation from the coordinate-wise median on a grid of coordinates, as a
    unit vector; the cosine with the same client's deviation in the round before, when it took part in both.

    Memory is one round's deviations and a histogram of the cosines (to 0.001), whatever the run's length
    and number of clients.
    """

    def __init__(self, layers: list[Layer], coordinates: int = COORDINATES) -> None:
        self._columns = sample_columns(layers, coordinates)
        self._previous: dict[str, np.ndarray] = {}
        self._histogram = np.zeros(2 * BINS + 1, dtype=np.int64)  # cosine c counted at round((c + 1) * BINS)

    def observe(self, data: RoundData) -> None:
        """Take round ``data``'s deviations, and their cosines with the clients' deviations of the round before."""
        if len(data.clients) < 4 or not self._columns:  # the detectors' smallest comparable round
            self._previous = {}
            return
        sample = grid_sample(data, self._columns)
        deviation = sample - column_median(sample)
        lengths = np.linalg.norm(deviation, axis=1)
        current = {cid: row / length for cid, row, length in zip(data.clients, deviation, lengths) if length > 0}
        cosines = [float(unit @ self._previous[cid]) for cid, unit in current.items() if cid in self._previous]
        if cosines:
            bins = np.rint((np.clip(cosines, -1.0, 1.0) + 1.0) * BINS).astype(np.int64)
            np.add.at(self._histogram, bins, 1)
        self._previous = current

    @property
    def pairs(self) -> int:
        """How many (client, consecutive rounds) pairs were compared."""
        return int(self._histogram.sum())

    @property
    def median(self) -> float | None:
        """The run's median cosine, to 0.001 (``None`` with no client seen in two consecutive comparable rounds); of an
        even number of pairs, the mean of the two middle ones (it was the upper one)."""
        if not self.pairs:
            return None
        lower, upper = np.searchsorted(np.cumsum(self._histogram), [(self.pairs + 1) // 2, self.pairs // 2 + 1])
        return round((lower + upper) / (2 * BINS) - 1.0, 3)
