"""``spread-shift``: updates moved from the clients' median by a multiple of their spread, coordinate by coordinate."""

from __future__ import annotations

import numpy as np

from ..run import Run
from .grid import grid_sample, grid_width, sample_columns
from .round_data import RoundData
from .statistic import RoundStatisticDetector


def spread_alignment(sample: np.ndarray) -> np.ndarray:
    """Per client (row of a clients × coordinates sample), the cosine between its deviation from the
    coordinate-wise median and the coordinate-wise median absolute deviation; NaN for a client at the median.

    An update that moves each coordinate by the same multiple of the clients' spread there — ``μ − z·σ``
    — has a deviation parallel to the spread: −1 (or +1). An honest deviation has signs of its own.
    """
    deviation = sample.astype(np.float64)
    return alignment_in_place(deviation, np.empty_like(deviation))


def alignment_in_place(deviation: np.ndarray, scratch: np.ndarray) -> np.ndarray:
    """:func:`spread_alignment` of the float64 sample ``deviation``, which it overwrites (with the deviations),
    using ``scratch`` (of the same shape) for the sorts: the detector keeps both from round to round, since
    on a virtual machine the page faults of two fresh arrays a round cost twice the arithmetic.
    """
    n = deviation.shape[0]
    lower, upper = (n - 1) // 2, n // 2
    # float64: a finite float32 update far out (1e30) must not overflow. Medians by a sort along the
    # clients (np.median's machinery costs 5× more).
    np.copyto(scratch, deviation)
    scratch.sort(axis=0)
    deviation -= 0.5 * (scratch[lower] + scratch[upper])
    np.abs(deviation, out=scratch)
    scratch.sort(axis=0)
    spread = 0.5 * (scratch[lower] + scratch[upper])
    with np.errstate(invalid="ignore", divide="ignore"):
        cosine = deviation @ spread / (np.linalg.norm(deviation, axis=1) * np.linalg.norm(spread))
    cosine[~np.isfinite(cosine)] = np.nan
    return cosine


class SpreadShiftDetector(RoundStatisticDetector):
    """Cosine between each client's deviation from the coordinate-wise median and the clients' spread.

    "A little is enough" (Baruch et al., NeurIPS 2019) sends the honest mean
    moved by ``z`` standard deviations in *every* coordinate, ``μ − z·σ``, and
    the min-max attack of Shejwalkar & Houmansadr (NDSS 2021) moves it along
    ``−σ/‖σ‖`` as far as the honest clients' largest distance allows: both
    stay inside the honest spread by distance and norm, which is their design,
    but their deviation from the median is the spread vector itself, while an
    honest deviation (data, SGD noise) has signs of its own. Per round, on
    ``coordinates`` coordinates evenly spaced over the model, the cosine between
    each deviation from the coordinate-wise median and the coordinate-wise
    median absolute deviation; robust z per round, two-sided (``μ + z·σ`` is the
    same attack), accumulated over the run. Blind by construction to
    perturbations that do not follow the spread (min-max's ``−sign(μ)`` and
    ``−μ/‖μ‖`` variants), and to ALIE's ``z = 0``, which ``mean-copy`` sees.

    Parameters
    ----------
    coordinates
        How many coordinates of the model a round is compared on (about; evenly spaced): the
        median and spread of each cost a sort of the clients' values there.
    """

    name = "spread-shift"
    reference = (
        "Baruch et al. 2019, A little is enough (NeurIPS); Shejwalkar & Houmansadr 2021, "
        "Manipulating the Byzantine (NDSS): the attacks it answers"
    )
    summary = "update moved from the clients' median along their spread, in every coordinate"
    family = "direction"
    side = "two-sided"
    abs_floor = 0.01

    def __init__(
        self,
        *,
        threshold: float = 5.0,
        spike: float | None = None,
        min_clients: int = 4,
        coordinates: int = 4096,
    ) -> None:
        super().__init__(threshold=threshold, spike=spike, min_clients=min_clients)
        self.coordinates = coordinates

    def start(self, run: Run) -> None:
        super().start(run)
        self._columns = sample_columns(run.analysable_layers, self.coordinates)
        self._work = np.empty((2, 0, grid_width(self._columns)))  # the sample and the sorts' scratch, grown to the largest round

    def statistics(self, data: RoundData) -> dict[str, np.ndarray]:
        if not self._columns:
            return {}
        n = len(data.clients)
        if self._work.shape[1] < n:
            self._work = np.empty((2, n, self._work.shape[2]))
        sample, scratch = self._work[0, :n], self._work[1, :n]
        np.copyto(sample, grid_sample(data, self._columns))  # sorted in place: the shared sample is read-only
        return {"alignment": alignment_in_place(sample, scratch)}

    def explain(self, key: str) -> str:
        return "update moved from the clients' median by a multiple of their spread in every coordinate"
