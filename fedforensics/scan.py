"""One pass over a run's rounds: each round is read once and shared by every detector."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .detectors.base import RoundData
from .detectors.history import DirectionHistory
from .run import Layer, Run

Progress = Callable[[int, int], None]  # (rounds done, rounds in all)


@lru_cache(maxsize=1)
def _blas_controller() -> object | None:
    try:
        import scipy.linalg.blas  # noqa: F401  scipy ships its own OpenBLAS: load it so that it is limited too
        from threadpoolctl import ThreadpoolController  # scikit-learn's dependency
    except ImportError:
        return None
    return ThreadpoolController()  # looks the loaded libraries up once (~10 ms); limiting then costs microseconds


def single_threaded_blas() -> AbstractContextManager[object]:
    """A context in which BLAS (numpy's and scipy's OpenBLAS) runs on one thread; a no-op without threadpoolctl.

    The products of an analysis have a clients × clients result over a million
    columns (Gram matrices, ``y += a·x``), which OpenBLAS splits badly over
    threads: on a 2-core machine the Gram of a 20 × 1M round took 14 ms on one
    thread and 83 ms on two while another process kept a core busy, and the whole
    analysis ran 5× slower or worse (OpenBLAS's threads spin waiting for each
    other). The scan runs its own second thread instead (:class:`_Reader`).
    """
    controller = _blas_controller()
    if controller is None:
        return nullcontext()
    return controller.limit(limits=1, user_api="blas")  # type: ignore[attr-defined]


def layer_gram(block: np.ndarray) -> np.ndarray:
    """The clients × clients dot products of one layer's clients × parameters block (float32 BLAS, kept as float64)."""
    if not block.shape[1]:
        return np.zeros((block.shape[0], block.shape[0]))
    return (block @ block.T).astype(np.float64)


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


@dataclass
class _Round:
    """A round as read (and Gram-multiplied) by the reader thread, before the finiteness check."""

    round: int
    clients: list[str]
    updates: dict[str, np.ndarray]  # views of ``buffers``
    grams: dict[str, np.ndarray]
    num_samples: np.ndarray
    metrics: dict[str, np.ndarray]
    buffers: _RoundBuffers


def _read_round(run: Run, layers: list[Layer], r: int, buffers: _RoundBuffers) -> _Round:
    clients = run.clients(r)
    n = len(clients)
    updates = buffers.views(n)
    for layer in layers:
        run.layer_updates(r, layer.name, out=updates[layer.name])
    grams = {name: layer_gram(array.reshape(n, -1)) for name, array in updates.items()}
    counts = run.num_samples(r)
    per_client = run.metrics(r)
    metrics = {m: np.array([per_client[c].get(m, np.nan) for c in clients]) for m in run.metric_names(r)}
    return _Round(r, clients, updates, grams, np.array([counts[c] for c in clients], dtype=np.int64), metrics, buffers)


class _Reader:
    """Reads the rounds in a background thread, one round ahead of the detectors, into two alternating buffer sets.

    HDF5's reads and BLAS release the GIL, so reading round r + 1 and computing its
    Gram matrices overlap with the detectors' work on round r (on two cores the
    scan then takes about the longer of the two, not their sum). Values do not
    depend on the overlap: each round is read and multiplied exactly as it would be
    in the consumer's thread.
    """

    def __init__(self, run: Run, layers: list[Layer]) -> None:
        self._free: queue.SimpleQueue[_RoundBuffers | None] = queue.SimpleQueue()
        for _ in range(2):
            self._free.put(_RoundBuffers(layers))
        self._ready: queue.SimpleQueue[_Round | BaseException] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, args=(run, layers), name="fedforensics-scan-reader", daemon=True)
        self._thread.start()

    def _work(self, run: Run, layers: list[Layer]) -> None:
        try:
            for r in run.rounds:
                buffers = self._free.get()
                if buffers is None or self._stop.is_set():
                    return
                self._ready.put(_read_round(run, layers, r, buffers))
        except BaseException as exc:  # handed to the consumer, raised there
            self._ready.put(exc)

    def next(self) -> _Round:
        """The next round, once read (raises what the reader raised)."""
        item = self._ready.get()
        if isinstance(item, BaseException):
            raise item
        return item

    def release(self, buffers: _RoundBuffers) -> None:
        """The consumer is done with a round: its buffers may take the round after next."""
        self._free.put(buffers)

    def close(self) -> None:
        self._stop.set()
        self._free.put(None)
        self._thread.join()


def scan(run: Run, progress: Progress | None = None) -> Iterator[RoundData]:
    """Yield every round of ``run`` as :class:`RoundData`, in order.

    Memory holds two rounds' updates whatever the run's length: a background
    thread reads round r + 1 while the consumer works on round r, and both go
    into buffers reused from round to round (:class:`_Reader`). A round's
    ``RoundData.updates`` are therefore valid only until the next round is
    requested; afterwards reading them raises (copy what must outlive the round;
    the quantities derived from them — Gram matrices, norms, accumulated
    directions — are computed while it is current). The per-layer Gram matrices
    are computed with the read: every norm and cosine distance derives from them,
    and so does finiteness — a client whose squared norm is not finite (NaN, Inf,
    or too large for float32) is moved to ``RoundData.nonfinite`` so that it
    cannot poison the statistics. BLAS runs on one thread while the scan runs,
    the consumer's code included (:func:`single_threaded_blas`).
    """
    layers = run.analysable_layers
    total = len(run.rounds)
    if not total:
        return
    history = DirectionHistory(capacity=len(run.all_clients))  # one for the whole scan: accumulated across rounds
    with single_threaded_blas():
        reader = _Reader(run, layers)
        try:
            for done in range(1, total + 1):
                read = reader.next()
                n = len(read.clients)
                updates, grams, samples, metrics = read.updates, read.grams, read.num_samples, read.metrics
                finite = np.ones(n, dtype=bool)
                for gram in grams.values():
                    finite &= np.isfinite(np.diag(gram))
                if not finite.all():
                    keep = np.flatnonzero(finite)
                    updates = {name: array[keep] for name, array in updates.items()}
                    grams = {name: gram[np.ix_(keep, keep)] for name, gram in grams.items()}
                    samples = samples[keep]
                    metrics = {m: values[keep] for m, values in metrics.items()}
                data = RoundData(
                    round=read.round,
                    clients=[c for c, ok in zip(read.clients, finite) if ok],
                    layers=layers,
                    updates=updates,
                    num_samples=samples,
                    metrics=metrics,
                    layer_grams=grams,
                    nonfinite=[c for c, ok in zip(read.clients, finite) if not ok],
                    history=history,
                )
                yield data
                data.updates = _Released(read.round)  # its buffers take the round after next: never read them stale
                reader.release(read.buffers)
                if progress is not None:
                    progress(done, total)
        finally:
            reader.close()
