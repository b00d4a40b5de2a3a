"""Each client's update direction accumulated over the rounds it took part in."""

from __future__ import annotations

import numpy as np


class DirectionHistory:
    """Mean of each client's unit-norm updates (memory: clients × parameters, float32).

    Normalising every round's update first keeps the large updates of the
    first rounds from outweighing the rest, so clients that joined in
    different rounds stay comparable.
    """

    def __init__(self) -> None:
        self._sums: dict[str, np.ndarray] = {}
        self._counts: dict[str, int] = {}

    def add(self, clients: list[str], matrix: np.ndarray, norms: np.ndarray) -> None:
        unit = matrix / np.where(norms > 0, norms, 1.0)[:, None].astype(np.float32)
        for cid, row in zip(clients, unit):
            if cid in self._sums:
                self._sums[cid] += row
            else:
                self._sums[cid] = row.astype(np.float32, copy=True)
            self._counts[cid] = self._counts.get(cid, 0) + 1

    def matrix(self) -> tuple[list[str], np.ndarray]:
        """Client ids and their mean unit updates as rows."""
        ids = list(self._sums)
        if not ids:
            return [], np.zeros((0, 0), np.float32)
        return ids, np.stack([self._sums[c] / self._counts[c] for c in ids])
