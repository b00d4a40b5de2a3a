"""A client's level over its rounds: the median of a per-round value, for detectors scored on their own scale.

Unlike the mean of robust z-scores (:mod:`.accumulate`), a median of the value itself does
not grow with the rounds: a difference repeated round after round stays the size it is, and
a threshold keeps its meaning (``opposition``'s push, ``avoidance``'s fold).
"""

from __future__ import annotations

import math
from abc import abstractmethod
from typing import Any, ClassVar

import numpy as np

from ..run import Run
from .base import Detector, DetectorResult, Evidence
from .round_data import RoundData
from .round_table import RoundTable

Series = dict[str, list[tuple[int, float]]]


def client_series(table: RoundTable) -> Series:
    """Per client, its (round, value) pairs in round order, infinities kept and NaN left out."""
    series: Series = {}
    for r in sorted(table):
        for cid, value in table[r].items():
            if not math.isnan(value):
                series.setdefault(cid, []).append((r, value))
    return series


def levels(series: Series, min_rounds: int) -> dict[str, float]:
    """Per client scored in at least ``min_rounds`` rounds, the median of its values."""
    return {cid: float(np.median([v for _, v in values])) for cid, values in series.items() if len(values) >= min_rounds}


def first_at_level(values: list[tuple[int, float]], threshold: float, min_rounds: int) -> int | None:
    """The first round at which the median of the client's values so far (over ``min_rounds`` or more) reached
    ``threshold``."""
    for k in range(min_rounds, len(values) + 1):
        if np.median([v for _, v in values[:k]]) >= threshold:
            return values[k - 1][0]
    return None


def strongest_rounds(values: list[tuple[int, float]], count: int) -> list[tuple[int, float]]:
    """The ``count`` rounds of highest value, highest first."""
    return sorted(values, key=lambda rv: -rv[1])[:count]


class LevelDetector(Detector):
    """Base of the detectors scored by a client's level: a value per client and round (:meth:`record`), the run
    score its median over at least ``min_rounds`` rounds, flagged at ``threshold``, the evidence its strongest
    rounds. A subclass sets ``threshold`` and ``min_rounds`` in ``__init__``, calls ``super().start(run)`` and
    describes a round's value (:meth:`evidence_detail`)."""

    threshold: float
    min_rounds: int
    #: How many of a flagged client's strongest rounds its evidence lists.
    evidence_rounds: ClassVar[int] = 3

    def start(self, run: Run) -> None:
        self._run = run
        self._values = RoundTable(run.all_clients)

    def record(self, data: RoundData, values: np.ndarray) -> None:
        """This round's value of each of its clients (NaN: not scored)."""
        self._values.add(data.round, data.index, values)

    @abstractmethod
    def evidence_detail(self, cid: str, r: int, value: float, level: float) -> str:
        """One sentence on flagged client ``cid``'s value in round ``r``, beside its ``level`` over the run."""

    def evidence_layer(self, r: int) -> str | None:
        """The layer round ``r``'s value was measured in, if one."""
        return None

    def outcome(self) -> dict[str, Any]:
        """The rest of the result: ``applicable``, ``note``, ``extras`` (none by default)."""
        return {}

    def finish(self) -> DetectorResult:
        series = client_series(self._values)
        scores, flagged = self.flag(levels(series, self.min_rounds), self._run.all_clients)
        first = {cid: first_at_level(series[cid], self.threshold, self.min_rounds) for cid in flagged}
        evidence = [
            Evidence(self.name, cid, r, self.evidence_layer(r), value, self.evidence_detail(cid, r, value, scores[cid]))
            for cid in flagged
            for r, value in strongest_rounds(series[cid], self.evidence_rounds)
        ]
        return self.result(
            scores=scores,
            flagged=flagged,
            round_scores=self._values,
            first_flagged={cid: r for cid, r in first.items() if r is not None},
            evidence=evidence,
            **self.outcome(),
        )
