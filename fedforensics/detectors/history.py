"""Each client's update direction accumulated over the rounds it took part in."""

from __future__ import annotations

import numpy as np
from scipy.linalg.blas import saxpy

from ..stats import cosine_from_gram


class DirectionHistory:
    """Mean of each client's unit-norm updates (memory: clients × parameters, float32).

    Normalising every round's update first keeps the large updates of the
    first rounds from outweighing the rest, so clients that joined in
    different rounds stay comparable. One instance is shared by every detector
    of a scan, so the accumulation happens once per round.
    """

    def __init__(self) -> None:
        self._sums: dict[str, np.ndarray] = {}
        self._counts: dict[str, int] = {}
        self._distances: tuple[list[str], np.ndarray] | None = None

    def add(self, clients: list[str], blocks: list[np.ndarray], norms: np.ndarray) -> None:
        """Add one round: ``blocks`` are the layers' clients × parameters views, ``norms`` the whole-update norms."""
        self._distances = None
        size = sum(block.shape[1] for block in blocks)
        for i, cid in enumerate(clients):
            total = self._sums.get(cid)
            if total is None:
                total = self._sums[cid] = np.zeros(size, np.float32)
            scale = 1.0 / norms[i] if norms[i] > 0 else 0.0
            col = 0
            for block in blocks:
                width = block.shape[1]
                # In-place y += a·x without a temporary the size of the update.
                saxpy(np.ascontiguousarray(block[i], dtype=np.float32), total[col : col + width], a=scale)
                col += width
            self._counts[cid] = self._counts.get(cid, 0) + 1

    @property
    def counts(self) -> dict[str, int]:
        """Rounds accumulated per client."""
        return dict(self._counts)

    def cosine_distances(self) -> tuple[list[str], np.ndarray]:
        """Client ids and the pairwise cosine distances of their accumulated directions (computed once per round)."""
        if self._distances is None:
            ids = list(self._sums)
            gram = np.zeros((len(ids), len(ids)))
            if ids:
                stacked = np.stack([self._sums[c] for c in ids])  # the scale per client cancels in a cosine
                gram = (stacked @ stacked.T).astype(np.float64)
            self._distances = (ids, cosine_from_gram(gram))
        return self._distances
