"""One pass over a run's rounds: each round is read once and shared by every detector."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

import numpy as np

from .blas import single_threaded_blas
from .detectors.round_data import RoundData
from .detectors.history import DIRECTION_MEMORY, DirectionHistory
from .run import Layer, Run, RunFormatError

Progress = Callable[[int, int], None]  # (rounds done, rounds in all)


class RoundGram:
    """The clients × clients dot products of a round's whole updates, summed layer by layer: float32 BLAS for each
    layer, float64 for the sums, one clients × clients matrix for all the layers.

    A client whose squares overflow float32 (values beyond ~1e19: a boosted update, not a broken one) has its
    products of that layer redone in float64, where no float32 value can overflow them; a non-finite squared
    norm then means the update itself holds NaN or Inf.
    """

    def __init__(self, n: int) -> None:
        self._sums = np.zeros((n, n))  # of which matrix() takes the upper triangle

    def add(self, block: np.ndarray) -> np.ndarray:
        """Add one layer's clients × parameters block; return each client's squared norm of it (float64)."""
        if not block.shape[1]:
            return np.zeros(block.shape[0])
        with np.errstate(over="ignore", invalid="ignore"):
            # numpy computes a product with its own transpose as a SYRK (one triangle, half the multiplications of a
            # general product, then mirrored), through its own OpenBLAS: on a 20 x 1M float32 round 15 ms where
            # scipy's ssyrk took 19 (AMD EPYC, numpy 2.4's OpenBLAS 0.3.31 against scipy 1.17's 0.3.30)
            product = block @ block.T
            squares = np.diag(product).astype(np.float64)
            bad = np.flatnonzero(~np.isfinite(squares))
            overflowed = bad[np.isfinite(block[bad]).all(axis=1)] if bad.size else bad  # finite values, squares too big
            if overflowed.size:
                wide = block.astype(np.float64)
                rows = wide @ wide[overflowed].T
                product = product.astype(np.float64)
                product[:, overflowed] = rows
                product[overflowed, :] = rows.T
                squares[overflowed] = rows[overflowed, np.arange(overflowed.size)]
            self._sums += product  # a broken client's +Inf and -Inf meet here: the scan sets it apart
        return squares

    def matrix(self) -> np.ndarray:
        """The symmetric sums of every layer added: their upper triangle, mirrored (the float64 products redone for an
        overflowed client, or a general product, may differ in the last bit between a pair and its mirror)."""
        gram = np.triu(self._sums)
        gram += np.triu(gram, 1).T
        return gram


class _RoundBuffers:
    """One float32 array per layer, reused from round to round and grown when a round has more clients.

    Reading into the same memory every round spares allocating and faulting in
    the pages of a whole round (80 MB for 20 clients × 1M parameters) each time.
    """

    def __init__(self, layers: list[Layer]) -> None:
        self.layers = layers
        self._arrays: dict[str, np.ndarray] = {}
        self._capacity = 0

    def views(self, n: int) -> dict[str, np.ndarray]:
        """Per layer, a C-contiguous ``(n, *shape)`` view of the buffer."""
        if n > self._capacity:
            self._capacity = max(n, 2 * self._capacity)
            self._arrays = {layer.name: np.empty((self._capacity, *layer.shape), np.float32) for layer in self.layers}
        return {name: array[:n] for name, array in self._arrays.items()}


class _Released(Mapping[str, np.ndarray]):
    """What a round's ``RoundData.updates`` becomes once the scan has moved on to the next round."""

    def __init__(self, round_number: int) -> None:
        self.round = round_number

    def _fail(self) -> RuntimeError:
        return RuntimeError(
            f"round {self.round}'s updates were released when the scan moved on to the next round; "
            "use (or copy) them while observing that round"
        )

    def __getitem__(self, name: str) -> np.ndarray:
        raise self._fail()

    def __iter__(self) -> Iterator[str]:
        raise self._fail()

    def __len__(self) -> int:
        raise self._fail()


def scan(
    run: Run, progress: Progress | None = None, direction_memory: int = DIRECTION_MEMORY, directions: bool = False,
    max_abs: bool = False,
) -> Iterator[RoundData]:
    """Yield every round of ``run`` that holds an update as :class:`RoundData`, in order.

    Memory holds one round's updates whatever the run's length: every round is
    read into the same buffers (:class:`_RoundBuffers`), so a round's
    ``RoundData.updates`` are valid only until the next round is requested;
    afterwards reading them raises (copy what must outlive the round; the
    quantities derived from them — Gram matrices, norms, accumulated directions —
    are computed while it is current). The Gram matrix of the whole updates is
    computed with the read, layer by layer (:class:`RoundGram`: each layer's
    squared norms kept, its products added into one matrix): every norm and
    cosine distance derives from it, and finiteness from the layers' squared
    norms — a client whose squared norm is not finite (NaN, Inf, or too
    large for float32) is moved to ``RoundData.nonfinite`` so that it cannot
    poison the statistics, and one that sent a zero update and claimed no
    samples to ``RoundData.idle`` (it took no part). BLAS runs on one thread while the scan runs, the
    consumer's code included (:func:`single_threaded_blas`). With ``directions``
    (a detector's ``uses_directions``), every round is added to the clients'
    accumulated directions before it is yielded (``RoundData.history``: every
    client's update, whoever reads it), within ``direction_memory`` bytes
    (:class:`DirectionHistory` sketches them beyond); with ``max_abs`` too (a detector's ``reads_max_abs``), each
    client's max |Δ| of every layer is read on the way (``RoundData.max_abs``).
    """
    layers = run.analysable_layers
    total = len(run.rounds)
    if not total:
        return
    position = {cid: i for i, cid in enumerate(run.all_clients)}
    # one for the whole scan, accumulated across rounds
    history = DirectionHistory(len(position), direction_memory) if directions else None
    buffers = _RoundBuffers(layers)
    with single_threaded_blas():
        for done, r in enumerate(run.rounds, start=1):
            clients = run.clients(r)
            n = len(clients)
            if not n:  # every client failed (or none was asked): nothing to compare
                if progress is not None:
                    progress(done, total)
                continue
            run.check_updates(r, layers)
            updates = buffers.views(n)
            for layer in layers:
                run.layer_updates(r, layer.name, out=updates[layer.name])
            products = RoundGram(n)
            sq_norms = {name: products.add(array.reshape(n, -1)) for name, array in updates.items()}
            gram = products.matrix()
            del products  # its n x n sums: not kept beside the Gram while the detectors take the round (review)
            finite = np.ones(n, dtype=bool)
            for values in sq_norms.values():
                finite &= np.isfinite(values)
            counts = run.num_samples(r)
            samples = np.array([counts[c] for c in clients], dtype=np.int64)
            per_client = run.metrics(r)
            metrics = {m: np.array([per_client[c].get(m, np.nan) for c in clients]) for m in run.metric_names(r)}
            global_nonfinite = False
            if not finite.all():
                # Did the client break, or the model it was sent? After one NaN update FedAvg spreads it to
                # the global model, and from then on every client's update (local − global) holds NaN.
                try:
                    state = run.global_state(r)
                    global_nonfinite = not all(np.isfinite(state[layer.name]).all() for layer in layers)
                except RunFormatError:  # malformed (the damaged parts note names it): the updates tell, as a broken
                    global_nonfinite = not finite.any()  # model breaks every update (local − global) and a client only its own
            # a client that sent back the model it was given and claimed no samples (nothing to train on) took no
            # part: FedAvg weighs it 0 and it changed nothing; compared, its zero update sat at z = -10 on norm
            # (an honest device without new data in 4 of its 10 rounds was suspicious)
            idle = finite & (np.diag(gram) == 0) & (samples == 0)
            if not finite.all() or idle.any():
                keep = np.flatnonzero(finite & ~idle)
                updates = {name: array[keep] for name, array in updates.items()}
                gram = gram[np.ix_(keep, keep)]
                sq_norms = {name: values[keep] for name, values in sq_norms.items()}
                samples = samples[keep]
                metrics = {m: values[keep] for m, values in metrics.items()}
            kept = [c for c, ok, out in zip(clients, finite, idle) if ok and not out]
            data = RoundData(
                round=r,
                clients=kept,
                index=np.array([position[c] for c in kept], dtype=np.int64),
                layers=layers,
                updates=updates,
                num_samples=samples,
                metrics=metrics,
                gram=gram,
                layer_sq_norms=sq_norms,
                nonfinite=[c for c, ok in zip(clients, finite) if not ok],
                idle=[c for c, out in zip(clients, idle) if out],
                global_nonfinite=global_nonfinite,
                history=history,
            )
            if history is not None and kept:  # a round whose every update held NaN/Inf adds nothing
                maxima = history.add(kept, [data.flat(layer.name) for layer in layers], data.norms, max_abs)
                if maxima is not None:  # max |Δ| of every layer, read on the way (RoundData.max_abs)
                    data.layer_max_abs.update(zip((layer.name for layer in layers), maxima))
            yield data
            data.updates = _Released(r)  # the next round overwrites the buffers: never read them stale
            if progress is not None:
                progress(done, total)
