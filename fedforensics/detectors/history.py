"""Each client's update direction accumulated over the rounds it took part in."""

from __future__ import annotations

import numpy as np

from ..stats import cosine_from_gram


class DirectionHistory:
    """Mean of each client's unit-norm updates (memory: clients × parameters, float32).

    Normalising every round's update first keeps the large updates of the
    first rounds from outweighing the rest, so clients that joined in
    different rounds stay comparable. One instance is shared by every detector
    of a scan, so the accumulation happens once per round.

    The sums are the rows of one float32 matrix (a row per client, in order of
    first appearance, grown by doubling), so the pairwise products at the end are
    one BLAS call on it rather than on a stacked copy.
    """

    def __init__(self, capacity: int = 0) -> None:
        """``capacity``: how many clients to make room for at once (the scan passes the run's count)."""
        self._capacity = capacity
        self._rows: dict[str, int] = {}
        self._sums = np.zeros((0, 0), np.float32)  # widened to the update's size by the first add
        self._counts: dict[str, int] = {}
        self._distances: tuple[list[str], np.ndarray] | None = None

    def _row(self, cid: str, size: int) -> np.ndarray:
        row = self._rows.get(cid)
        if row is None:
            row = self._rows[cid] = len(self._rows)
            if row >= self._sums.shape[0]:
                grown = np.zeros((max(self._capacity, 4, 2 * row), size), np.float32)  # rows never written cost no memory
                if row:
                    grown[:row] = self._sums[:row]
                self._sums = grown
        return self._sums[row]

    def add(self, clients: list[str], blocks: list[np.ndarray], norms: np.ndarray) -> None:
        """Add one round: ``blocks`` are the layers' clients × parameters views, ``norms`` the whole-update norms."""
        from scipy.linalg.blas import saxpy  # here, not at import: scipy.linalg takes a quarter second to import

        self._distances = None
        size = sum(block.shape[1] for block in blocks)
        for i, cid in enumerate(clients):
            total = self._row(cid, size)
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
            from ..scan import single_threaded_blas

            ids = list(self._rows)
            gram = np.zeros((len(ids), len(ids)))
            if ids:
                sums = self._sums[: len(ids)]  # the scale per client cancels in a cosine
                with single_threaded_blas():
                    gram = (sums @ sums.T).astype(np.float64)
            self._distances = (ids, cosine_from_gram(gram))
        return self._distances
