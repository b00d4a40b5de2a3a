"""Each client's update direction accumulated over the rounds it took part in."""

from __future__ import annotations

from collections.abc import Collection

import numpy as np

from ..blas import single_threaded_blas
from ..stats import cosine_from_gram
from .pieces import PIECE, largest_abs

#: How much memory the accumulated directions may take before they are kept as a sketch (bytes).
DIRECTION_MEMORY = 512 * 2**20
#: The narrowest sketch: cosines through it are off by about ``sqrt(2 / width)`` ≈ 0.02 at most.
MIN_SKETCH_WIDTH = 4096
#: Bytes of directions copied at a time to compare some of the clients (a band of columns of their rows).
GRAM_COPY = 32 * 2**20


class CountSketch:
    """A linear map of ``size`` coordinates onto ``width`` buckets that keeps inner products.

    Each coordinate is added, with a random sign, to one bucket (Charikar, Chen &
    Farach-Colton, *Finding frequent items in data streams*, 2002); the buckets are
    dealt by a random permutation, round-robin, so each holds ``size / width``
    coordinates. The sketch of a sum is the sum of the sketches, and for any two
    vectors the inner product of their sketches is unbiased, with a standard
    deviation of at most about ``sqrt(2 / width)·‖x‖·‖y‖``: a cosine is off by
    about ``sqrt(2 / width)``. The hash comes from a fixed seed, so an analysis
    stays reproducible. Besides its output it holds four arrays of the vector's size:
    :attr:`BYTES_PER_PARAMETER`.
    """

    #: What the hash (permutation, signs) and the work arrays take per coordinate of the vector.
    BYTES_PER_PARAMETER = 16

    def __init__(self, size: int, width: int, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.width = width
        self._folds = -(-size // width)
        padded = self._folds * width
        # slot i takes coordinate order[i]; its bucket is i mod width
        self._order = rng.permutation(padded).astype(np.int32 if padded < 2**31 else np.int64)
        self._signs = rng.integers(0, 2, padded).astype(np.float32) * 2 - 1
        self._vector = np.zeros(padded, np.float32)  # the padding past ``size`` stays zero
        self._dealt = np.empty(padded, np.float32)

    def __call__(self, parts: list[np.ndarray]) -> np.ndarray:
        """The sketch (``width`` values) of the vector whose consecutive ``parts`` are given."""
        col = 0
        for part in parts:
            self._vector[col : col + part.shape[0]] = part
            col += part.shape[0]
        np.multiply(self._vector, self._signs, out=self._vector)  # rewritten by the next call anyway
        np.take(self._vector, self._order, out=self._dealt)
        return self._dealt.reshape(self._folds, self.width).sum(axis=0)


class DirectionHistory:
    """Sum of each client's unit-norm updates (memory: clients × parameters, float32, within a budget).

    Normalising every round's update first keeps the large updates of the
    first rounds from outweighing the rest, so clients that joined in
    different rounds stay comparable; only cosines of the sums are used, so a sum
    is as good as a mean. The scan keeps one instance and adds every round to it
    once, whichever detectors read it.

    The sums are the rows of one float32 matrix (a row per client, in order of
    first appearance, grown by doubling), so the pairwise products at the end are
    one BLAS call on it rather than on a stacked copy. Only their cosines are
    ever used, so when ``capacity`` clients × parameters would not fit in
    ``memory`` bytes (a device fleet: 2,000 clients of a 1M-parameter model take
    8 GB), each row holds a :class:`CountSketch` of the sum instead, as wide as
    the budget allows (at least ``MIN_SKETCH_WIDTH``), unless the sketch and its own
    16 bytes per parameter would take more than the whole rows; :attr:`sketch_width` says so.
    """

    def __init__(self, capacity: int = 0, memory: int = DIRECTION_MEMORY) -> None:
        """``capacity``: how many clients to make room for at once (the scan passes the run's count)."""
        self._capacity = capacity
        self._memory = memory
        self._sketch: CountSketch | None = None
        self._rows: dict[str, int] = {}
        self._sums = np.zeros((0, 0), np.float32)  # widened to the update's (or sketch's) size by the first add
        self._distances: tuple[list[str], np.ndarray] | None = None

    @property
    def sketch_width(self) -> int | None:
        """The width of the sketch the directions are kept in, or ``None`` when they are kept whole."""
        return self._sketch.width if self._sketch is not None else None

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

    def add(
        self, clients: list[str], blocks: list[np.ndarray], norms: np.ndarray, max_abs: bool = False
    ) -> list[np.ndarray] | None:
        """Add one round: ``blocks`` are the layers' clients × parameters views, ``norms`` the whole-update norms.

        With ``max_abs``, returns each block's largest |value| per client (float64), read from each piece of a row
        while it is cached for the sum (a pass of its own over a round of 20 × 1M float32 took 3 ms more); else, or
        where the directions are sketched, ``None``."""
        from scipy.linalg.blas import saxpy  # here, not at import: scipy.linalg takes a quarter second to import

        self._distances = None
        size = sum(block.shape[1] for block in blocks)
        if self._sketch is None and not self._rows:  # the first round with clients decides
            rows = max(self._capacity, 1)
            width = max(self._memory // (4 * rows), MIN_SKETCH_WIDTH)
            # a sketch only where it saves: its rows plus its own arrays against the whole rows
            if width < size and rows * width * 4 + CountSketch.BYTES_PER_PARAMETER * size < rows * size * 4:
                self._sketch = CountSketch(size, width)
        if self._sketch is not None:
            for i, cid in enumerate(clients):
                scale = 1.0 / norms[i] if norms[i] > 0 else 0.0
                self._row(cid, self._sketch.width)[:] += scale * self._sketch([block[i] for block in blocks])
            return None
        maxima = [np.zeros(len(clients)) for _ in blocks]
        for i, cid in enumerate(clients):
            scale = 1.0 / norms[i] if norms[i] > 0 else 0.0
            total = self._row(cid, size)
            col = 0
            for block, largest in zip(blocks, maxima):
                row = np.ascontiguousarray(block[i], dtype=np.float32)
                for start in range(0, row.shape[0], PIECE):  # a zero-size parameter has none: BLAS refuses empty vectors
                    piece = row[start : start + PIECE]
                    if max_abs:
                        largest[i] = max(largest[i], largest_abs(piece))
                    # In-place y += a·x without a temporary the size of the update (piece by piece: the same sums).
                    saxpy(piece, total[col + start : col + start + piece.shape[0]], a=scale)
                col += row.shape[0]
        return maxima if max_abs else None

    def cosine_distances(self, among: Collection[str] | None = None) -> tuple[list[str], np.ndarray]:
        """Client ids and the pairwise cosine distances of their accumulated directions (every client's computed once
        per round), or of the clients ``among`` only, in the order they were first seen: n × n numbers, so a caller
        with tens of thousands of ids (a fleet whose ids change) keeps to those it can use."""
        if among is not None:
            wanted = set(among)
            return self._distances_of([cid for cid in self._rows if cid in wanted])
        if self._distances is None:
            self._distances = self._distances_of(list(self._rows))
        return self._distances

    def _distances_of(self, ids: list[str]) -> tuple[list[str], np.ndarray]:
        gram = np.zeros((len(ids), len(ids)))
        if ids:
            rows = [self._rows[cid] for cid in ids]
            with single_threaded_blas():  # the scale per client cancels in a cosine
                if len(rows) == len(self._rows):  # every row, in order: the matrix itself, no copy
                    sums = self._sums[: len(self._rows)]
                    gram = (sums @ sums.T).astype(np.float64)
                else:  # some rows: copied a band of columns at a time, not all at once (up to the whole budget again)
                    band = max(1, GRAM_COPY // (4 * len(rows)))
                    for start in range(0, self._sums.shape[1], band):
                        part = self._sums[rows, start : start + band]
                        gram += part @ part.T
        return ids, cosine_from_gram(gram, overwrite=True)
