"""BLAS on one thread while an analysis runs (numpy's and scipy's OpenBLAS)."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from functools import lru_cache


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
    other). Nor did a second thread of our own pay here: reading round r + 1
    while the detectors worked on round r took as long as doing one after the
    other (the Gram of 80 MB ran no faster on two threads than on one).
    """
    controller = _blas_controller()
    if controller is None:
        return nullcontext()
    return controller.limit(limits=1, user_api="blas")  # type: ignore[attr-defined]
