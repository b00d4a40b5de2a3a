"""Detectors built from per-round, per-client statistics.

Each round, a detector computes one or more named statistics per client (an
update's norm, a metric, the change of one output class's bias...). Each is
turned into a robust z-score across that round's clients (for a round of fewer
than 10, moved to the 10-client scale the thresholds were set on:
:func:`~fedforensics.stats.on_reference_scale`), accumulated across rounds
(:mod:`.accumulate`), and a client's score is its strongest statistic.
Subclasses only say which statistics they compute and how to explain them.
"""

from __future__ import annotations

import inspect

from abc import abstractmethod
from collections import Counter
from typing import Any, ClassVar

import numpy as np

from ..data_size import at_median_count, count_offsets, small_count_offsets, small_counts_lifted
from ..errors import FedForensicsError
from ..run import Run
from ..stats import bonferroni_z, bonferroni_zs, on_reference_scale, robust_spread, robust_z
from .accumulate import Conclusion, RoundScores, Side, oriented
from .base import ROUND_Z, Detector, DetectorResult, Evidence
from .round_data import RoundData
from .round_table import RoundTable


class RoundStatisticDetector(Detector):
    """Base of the detectors that compare clients round by round.

    Parameters
    ----------
    threshold
        Run-level score at which a client is flagged.
    spike
        Per-round z at which one round alone scores the detector's default threshold (so flags the client at
        that threshold); ``None`` (default) is off: honest clients of non-IID federations reach z ≈ 85 in
        single late rounds (docs/detection.md), so a one-shot boosted update among many rounds goes
        unflagged ("Where it fails"). ``sybil`` sets it.
    min_clients
        Rounds with fewer clients are not scored (a median of two is no reference).
    """

    #: Which direction of a statistic is suspicious.
    side: ClassVar[Side] = "two-sided"
    #: Floors of the per-round scale (see :func:`fedforensics.stats.robust_z`).
    rel_floor: ClassVar[float] = 0.0
    abs_floor: ClassVar[float] = 1e-12
    #: How many of the strongest rounds each flagged client's evidence lists.
    evidence_rounds: ClassVar[int] = 3
    #: Whether to keep every round's statistics, for :meth:`extras` (:meth:`kept_values`; a block of
    #: statistics × clients float64 a round).
    keep_values: ClassVar[bool] = False
    #: Whether the statistics are magnitudes that grow with a client's data (more samples, more SGD steps): they
    #: are then compared as each client would have shown them with the round's median sample count
    #: (:func:`fedforensics.data_size.at_median_count`), where the round's counts differ.
    grows_with_data: ClassVar[bool] = False

    #: Share of a client's rounds at ``CLIP`` (per-round z of 10) or beyond that scores the class's default threshold
    #: (:mod:`.accumulate`); ``None`` is off. A subclass that uses it takes it as a parameter (``norm``: 0.25).
    extreme_share: float | None = None

    #: The base's default threshold (a robust z of 3.5).
    DEFAULT_THRESHOLD: ClassVar[float] = 3.5

    def __init__(self, *, threshold: float = DEFAULT_THRESHOLD, spike: float | None = None, min_clients: int = 4) -> None:
        self.threshold = threshold
        self.spike = spike
        self.min_clients = min_clients

    @property
    def default_threshold(self) -> float:
        """The threshold this detector's class defaults to: what a per-round z of ``spike`` scores, a constant apart
        from the threshold set (PyOD's rule: scores do not depend on the threshold)."""
        for cls in type(self).__mro__:  # the nearest __init__ that names a default (a subclass may take **kwargs)
            init = cls.__dict__.get("__init__")
            if init is None:
                continue
            parameter = inspect.signature(init).parameters.get("threshold")
            if parameter is not None and isinstance(parameter.default, (int, float)):
                return float(parameter.default)
        return RoundStatisticDetector.DEFAULT_THRESHOLD

    @abstractmethod
    def statistics(self, data: RoundData) -> dict[str, np.ndarray]:
        """Named statistics of one round, each a value per client of ``data.clients``."""

    @abstractmethod
    def explain(self, key: str) -> str:
        """One line that says what a high score on statistic ``key`` means."""

    def layer_of(self, key: str) -> str | None:
        """The layer a statistic belongs to, if any."""
        return None

    def round_detail(self, cid: str, r: int) -> str:
        """What more round ``r`` says of flagged client ``cid``, added to its evidence line ('' by default)."""
        return ""

    def applicable(self, run: Run) -> str:
        """Why the detector cannot score ``run`` ('' when it can)."""
        return ""

    def check_params(self) -> None:
        """The parameters' bounds, and an :meth:`explain` of the current form: one written for the earlier
        ``explain(key, value)`` failed only once the whole run was scanned and a client flagged (review)."""
        super().check_params()
        positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        required = [p.name for p in inspect.signature(self.explain).parameters.values() if p.kind in positional and p.default is p.empty]
        if len(required) > 1:
            raise FedForensicsError(
                f"{self.name}: explain takes the statistic's key alone, explain(self, key); drop its "
                f"{', '.join(repr(name) for name in required[1:])} (docs/detectors.md, 'Writing a detector')"
            )

    def extras(self, conclusions: dict[str, Conclusion]) -> dict[str, Any]:
        """Detector-specific data for the reports."""
        return {}

    def scale_floor(self, data: RoundData, key: str) -> float:
        """A floor of statistic ``key``'s per-round scale set by the round itself (beside ``abs_floor``)."""
        return 0.0

    # -- the streaming contract --------------------------------------------------
    def start(self, run: Run) -> None:
        self._series: dict[str, RoundScores] = {}
        self._round_scores = RoundTable(run.all_clients)
        self._kept: dict[int, tuple[tuple[str, ...], np.ndarray, np.ndarray]] = {}
        self._not_applicable = self.applicable(run)
        self._rescaled: dict[int, str] = {}  # round -> how its sizes were compared (at the median step or sample count)
        self._run = run

    def observe(self, data: RoundData) -> None:
        if self._not_applicable or len(data.clients) < self.min_clients:
            return
        raw = self.statistics(data)
        for key, values in raw.items():
            shape = np.shape(values)
            if shape != (len(data.clients),) or not np.issubdtype(np.asarray(values).dtype, np.number):
                raise FedForensicsError(
                    f"{self.name}: statistic {key!r} of round {data.round} must be one number per client "
                    f"({len(data.clients)}), got {'shape ' + str(shape) if shape != (len(data.clients),) else 'non-numbers'}"
                )
        if self.keep_values:  # every client's, those of a round left unscored below too (norm's clipping bound)
            self._kept[data.round] = (tuple(raw), data.index, np.array([np.asarray(v, np.float64) for v in raw.values()]))
        compared = raw
        idle = data.mostly_idle if self.grows_with_data else None
        # the clients that moved compared among themselves (RoundData.mostly_idle), where they are enough for a
        # reference; fewer stand out against the zeros as before (a client alone sending 1e30 while the others' steps
        # vanish in the global model's float32)
        if idle is not None and len(data.clients) - int(idle.sum()) >= self.min_clients:
            compared = {key: np.where(idle, np.nan, np.asarray(values, np.float64)) for key, values in raw.items()}
        work, unit = data.work if self.grows_with_data and raw else (None, "")
        offsets = count_offsets(work) if work is not None else None
        small = small_count_offsets(work) if work is not None and offsets is None else None
        measured = compared  # what the spread is measured in: the counts may move a client, never narrow it
        if offsets is not None or small is not None:
            stacked = np.array([np.asarray(v, np.float64) for v in measured.values()])
            rescaled = at_median_count(stacked, offsets) if offsets is not None else small_counts_lifted(stacked, small)
            compared = dict(zip(measured, rescaled))
            self._rescaled[data.round] = f"rescaled to the round's median {unit}" if offsets is not None else (
                f"of clients far below the round's median {unit} lifted towards it"
            )
        strongest_z = np.full(len(data.clients), np.nan)  # per client, its strongest oriented z over the statistics
        for key, values in compared.items():
            floor = max(self.abs_floor, self.scale_floor(data, key))
            if compared is not measured:  # the counts may move a client, never narrow the spread its z is measured in
                spread = robust_spread(measured[key], rel_floor=self.rel_floor, abs_floor=floor)
                floor = spread if spread > floor else floor  # (a NaN spread, of no finite value, leaves the floor)
            z = robust_z(values, rel_floor=self.rel_floor, abs_floor=floor)
            z = on_reference_scale(z, int(np.isfinite(np.asarray(values, dtype=np.float64)).sum()))
            series = self._series.get(key)
            if series is None:
                series = self._series[key] = RoundScores(
                    self._run.all_clients, self.side, self.threshold, self.spike, self.evidence_rounds, self.extreme_share,
                    term_score=self.default_threshold,
                )
            series.add(data.round, data.index, z)
            strength = oriented(z, self.side)
            strongest_z = np.fmax(strongest_z, np.where(np.isfinite(strength), strength, np.nan))
        self._round_scores.add(data.round, data.index, strongest_z)

    def kept_values(self, key: str) -> RoundTable:
        """Statistic ``key``'s value of every client in every round (kept when ``keep_values`` is set)."""
        table = RoundTable(self._run.all_clients)
        for r, (keys, index, values) in self._kept.items():
            if key in keys:
                table.add(r, index, values[keys.index(key)])
        return table

    def finish(self) -> DetectorResult:
        conclusions = {key: series.conclude() for key, series in self._series.items()}
        best = strongest(conclusions)
        tests = tests_per_client(conclusions)
        ids = list(best)
        corrected = bonferroni_zs(np.array([best[cid][0] for cid in ids]), np.array([tests[cid] for cid in ids]))
        scores, flagged = self.flag(dict(zip(ids, corrected.tolist())), self._run.all_clients)
        best_key = {cid: key for cid, (_, key) in best.items()}
        first = {}
        for cid in flagged:
            # the first round at which a statistic's score, corrected as the flag's is, reached the threshold
            def corrected_reaches(score: float, tests: int = tests[cid]) -> bool:
                return bonferroni_z(score, tests) >= self.threshold

            rounds = [r for c in conclusions.values() if (r := c.first_reaching(cid, corrected_reaches)) is not None]
            if rounds:
                first[cid] = min(rounds)
        evidence = [e for cid in flagged for e in self._evidence(cid, best_key[cid], conclusions[best_key[cid]])]
        return self.result(
            scores=scores,
            flagged=flagged,
            round_scores=self._round_scores,
            first_flagged=first,
            evidence=evidence,
            applicable=not self._not_applicable,
            note=self._not_applicable,
            extras=self.extras(conclusions) if not self._not_applicable else {},
            statistic_scores={key: conclusion.scores for key, conclusion in conclusions.items()},
        )

    def _evidence(self, cid: str, key: str, conclusion: Conclusion) -> list[Evidence]:
        line = self.explain(key)
        return [
            Evidence(
                self.name, cid, r, self.layer_of(key), z,
                f"{line}{self.round_detail(cid, r)} ({ROUND_Z}{_z(signed)}{self._as_compared(r)})",
            )  # fmt: skip
            for r, z, signed in conclusion.strongest[cid][: self.evidence_rounds]
        ]

    def _as_compared(self, r: int) -> str:
        return f", sizes {self._rescaled[r]}" if r in self._rescaled else ""


def tests_per_client(conclusions: dict[str, Conclusion]) -> Counter[str]:
    """How many statistics scored each client: the count its strongest score is corrected for (Bonferroni)."""
    return Counter(cid for conclusion in conclusions.values() for cid in conclusion.scores)


def strongest(conclusions: dict[str, Conclusion]) -> dict[str, tuple[float, str]]:
    """Per client, its highest run-level score over the statistics, and that statistic's key."""
    best: dict[str, tuple[float, str]] = {}
    for key, conclusion in conclusions.items():
        for cid, score in conclusion.scores.items():
            if score > best.get(cid, (-np.inf, ""))[0]:
                best[cid] = (score, key)
    return best


def _z(value: float) -> str:
    """A z-score for a sentence: one decimal, or three digits and an exponent once it is astronomical."""
    return f"{value:+.1f}" if abs(value) < 1e5 else f"{value:+.2e}"
