"""The detector contract, modelled on scikit-learn and PyOD.

A detector is a small class with a ``name``, the ``reference`` it comes from,
parameters stored by ``__init__`` (thresholds are parameters, kept apart from
scoring), and a method that scores a run. Scoring streams over rounds: the
analysis reads each round once (:class:`~.round_data.RoundData`) and hands it to every
detector's :meth:`Detector.observe`; :meth:`Detector.finish` returns a
:class:`DetectorResult` (per-round and per-client scores, flags, evidence).
Detectors never print; they report progress only through the scan.
"""

from __future__ import annotations

import inspect
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

from ..errors import FedForensicsError
from ..json_values import json_float, setting_json
from ..run import Run
from .accumulate import at_or_above
from .round_data import RoundData
from .round_table import RoundTable, rounds_json


def _positive(value: Any) -> bool:
    return value > 0


#: A parameter's test and, for the error, what its value must be.
Bound = tuple[Callable[[Any], bool], str]

#: What the parameter names several detectors share mean a value must be, checked before a scan (scikit-learn
#: validates its estimators' parameters the same way, by name, at fit): name -> (test, requirement). A detector's
#: own parameters are bounded in its class (:attr:`Detector.bounds`).
PARAMETER_BOUNDS: dict[str, Bound] = {
    "threshold": (_positive, "must be positive (a score reaches it to flag; inf flags nobody)"),
    "spike": (lambda v: v is None or v > 0, "must be positive, or none to switch the single-round term off"),
    "extreme_share": (lambda v: v is None or 0 < v <= 1, "must be a share in (0, 1], or none to switch the term off"),
    "min_clients": (lambda v: v >= 2, "must be at least 2 (a statistic compares clients)"),
    "min_rounds": (lambda v: v >= 1, "must be at least 1"),
    "coordinates": (lambda v: v >= 1, "must be at least 1 (coordinates to compare the clients on)"),
}


@dataclass
class Evidence:
    """One fact behind a verdict: which detector saw what, where and when."""

    detector: str
    client: str
    round: int | None
    layer: str | None
    value: float
    detail: str

    def to_json(self) -> dict[str, Any]:
        """This fact as plain JSON data (a non-finite value as ``None``)."""
        return {
            "detector": self.detector,
            "client": self.client,
            "round": self.round,
            "layer": self.layer,
            "value": json_float(self.value),
            "detail": self.detail,
        }


#: The families of evidence a detector belongs to (docs/detectors.md, step 4): a verdict counts them as independent
#: facts, so a family the rule does not know (a typo) would count as one more.
FAMILIES = ("magnitude", "direction", "collusion", "behaviour")
#: The one family the flags of the ``large_data`` detectors make for a client whose reported sample counts explain
#: its update's length (:meth:`~fedforensics.verdict.ConsensusRule.judge`); a detector's ``explained_by`` may name it.
DATA_SIZE = "data size"


#: What a detector's "first flagged" round means, in the reports' words (:attr:`DetectorResult.first_flagged`).
FIRST_FLAGGED_MEANING = (
    "the first round by which the client's evidence, accumulated over its rounds so far, reached the threshold "
    "(its evidence may name earlier rounds, which alone did not); run-level: flagged on a statistic of the whole run, "
    "which has no round"
)
#: How an evidence line of a per-round statistic gives the round's z ("... (round z = +10.8)"): the reports look for it
#: to explain the figure (:data:`ROUND_Z_MEANING`) where a line they show has one.
ROUND_Z = "round z = "
#: What the "round z" of an evidence line is, for the reports' readers (the statistic's own name is in the line).
ROUND_Z_MEANING = (
    "how far the client's value lay from that round's median, in robust standard deviations of the round's values "
    "(estimated from their median absolute deviation), its sign the side of the median; a round of fewer than 10 "
    "clients put on the 10-client scale (docs/detectors.md, step 1)"
)


@dataclass
class DetectorResult:
    """What one detector concluded about a run.

    Attributes
    ----------
    scores
        Run-level score per client (higher is more suspicious); NaN when the
        detector could not score that client.
    flagged
        Clients whose score reached ``threshold``.
    round_scores
        Per round, per client score (the per-round statistic, e.g. a robust z).
    first_flagged
        For each flagged client, the first round at which the evidence
        accumulated up to that round already reached the threshold.
    evidence
        Facts behind each flag, strongest first.
    extras
        Detector-specific, JSON-serialisable data the reports draw (a per-round table may be a
        :class:`~.round_table.RoundTable`, written out as ``{round: {client: value}}``).
    family
        What kind of evidence the detector looks at (``magnitude``, ``direction``,
        ``collusion``, ``behaviour``); the verdict counts agreeing families, not detectors.
    standalone
        Whether this detector's flag alone makes a client suspicious (see :attr:`Detector.standalone`).
    label_mix
        Whether an honest client with an unusual label mix reaches this flag by construction
        (see :attr:`Detector.label_mix`).
    large_data
        Whether an honest client with far more data than the others reaches this flag by construction
        (see :attr:`Detector.large_data`).
    same_data
        Whether two honest clients with the same data reach this flag together where differences persist
        (see :attr:`Detector.same_data`).
    explained_by
        Families of standalone flags that one cause raises together with this detector's, in an honest client
        (see :attr:`Detector.explained_by`).
    summary
        What the detector finds, in a few words (:attr:`Detector.summary`).
    statistic_scores
        Per statistic of the detector (a :class:`~.statistic.RoundStatisticDetector`'s keys: ``layer-deviation``'s
        layer slices, ``output-bias``'s classes), each client's run-level score before the correction for their
        number. Kept for the audit's own use (the localization table's AUROC against the truth), not written to the
        JSON: slices × clients numbers.
    """

    name: str
    reference: str
    params: dict[str, Any]
    threshold: float
    scores: dict[str, float]
    flagged: list[str]
    round_scores: Mapping[int, Mapping[str, float]]
    first_flagged: dict[str, int]
    evidence: list[Evidence]
    applicable: bool = True
    note: str = ""
    extras: dict[str, Any] = field(default_factory=dict, repr=False)
    family: str = ""
    standalone: bool = True
    label_mix: bool = False
    large_data: bool = False
    same_data: bool = False
    explained_by: frozenset[str] = frozenset()
    summary: str = ""
    statistic_scores: Mapping[str, Mapping[str, float]] = field(default_factory=dict, repr=False)

    @property
    def adds_family(self) -> bool:
        """Whether a flag of this detector counts as a family of evidence in a verdict: not for one that is neither
        standalone nor free of the label mix (``output-bias``: its flag is the client's label histogram)."""
        return self.standalone or not self.label_mix

    def to_json(self, deferred: bool = False) -> dict[str, Any]:
        """Plain JSON data. With ``deferred``, each per-round table is a :class:`~.round_table.DeferredJSON`
        instead, for a writer that expands them one at a time (they are most of a long run's report)."""
        return {
            "name": self.name,
            "family": self.family,
            "standalone": self.standalone,
            "label_mix": self.label_mix,
            "large_data": self.large_data,
            "same_data": self.same_data,
            "explained_by": sorted(self.explained_by),
            "reference": self.reference,
            "summary": self.summary,
            "params": {k: setting_json(v) for k, v in self.params.items()},
            "applicable": self.applicable,
            "note": self.note,
            "threshold": setting_json(self.threshold),
            "scores": {cid: json_float(v) for cid, v in self.scores.items()},
            "flagged": list(self.flagged),
            "first_flagged": dict(self.first_flagged),
            "round_scores": rounds_json(self.round_scores, deferred, json_float),
            "evidence": [e.to_json() for e in self.evidence],
            "extras": {
                key: rounds_json(value, deferred) if isinstance(value, RoundTable) else value for key, value in self.extras.items()
            },
        }


class Detector(ABC):
    """Base class of every detector.

    Subclasses set ``name``, ``reference``, ``summary`` and ``family``, store their
    parameters in ``__init__`` (keyword-only, with documented defaults) and
    implement :meth:`start`, :meth:`observe` and :meth:`finish`.
    """

    name: ClassVar[str]
    reference: ClassVar[str]
    summary: ClassVar[str]
    #: The kind of evidence: detectors of one family see the same facts, so they do not
    #: corroborate each other (three magnitude statistics of one skewed client are one fact).
    family: ClassVar[str]
    #: Whether a flag of this detector alone makes a client suspicious. ``False`` for a statistic
    #: that an honest client's own data sets by construction, such as the output-layer bias change
    #: (the client's label histogram minus its predictions) or its training loss: under label skew
    #: such a flag is a fact about the data, and it counts only beside a flag of a standalone detector.
    standalone: ClassVar[bool] = True
    #: Whether an honest client whose label mix is unlike the others' reaches this flag by construction:
    #: its output-bias change is its label histogram (iDLG), and its update direction stays outside
    #: FLAME's majority cluster round after round. Flags of such detectors alone are one fact about the
    #: client's data, so together they count as one family, whatever their families; one that is not
    #: standalone either (output-bias) adds no family to a verdict at all.
    label_mix: ClassVar[bool] = False
    #: Whether an honest client with far more data than the others reaches this flag by construction: with a
    #: fixed number of local epochs, k times the data are k times the SGD steps (a longer update) and less SGD
    #: noise (an update nearer the others' mean). For a client whose reported sample counts could explain its update
    #: in most of its rounds, such flags together count as one family and none makes it malicious alone
    #: (:meth:`~fedforensics.verdict.ConsensusRule.judge`); the report's notes name the clients flagged by them alone
    #: (what remains once `norm` and `layer-deviation` compare clients as at the round's median count:
    #: :attr:`.statistic.RoundStatisticDetector.grows_with_data`).
    large_data: ClassVar[bool] = False
    #: Whether two honest clients with the same data reach this flag together by construction where the clients'
    #: differences persist from round to round (:mod:`fedforensics.persistence`): trained near full-batch on the same
    #: label mix, they send nearly the same update every round, as copies do. There such a flag is not strong alone:
    #: without another family it leaves a client suspicious (:meth:`~fedforensics.verdict.ConsensusRule.judge`).
    same_data: ClassVar[bool] = False
    #: Whether the detector reads ``RoundData.history``, the clients' accumulated directions: the scan keeps them
    #: (clients × parameters of memory) only when one does, and adds every round to them whoever reads it.
    uses_directions: ClassVar[bool] = False
    #: Whether the detector reads ``RoundData.max_abs`` (each client's max |Δ| of a layer): where one does and the
    #: scan sums the directions, it reads them from the same cache-sized pieces.
    reads_max_abs: ClassVar[bool] = False
    #: Whether the detector reads each round's global model (``Run.global_state``): a malformed one leaves that
    #: round out of its comparison, which the audit's notes say of the detectors that ran.
    reads_global_model: ClassVar[bool] = False
    #: Whether the detector reads the clients' updates (all but one read their training metrics instead): where no
    #: update moved (every one zero, or a model of integer buffers only) it has nothing to compare and does not apply.
    reads_updates: ClassVar[bool] = True
    #: Families of standalone flags that one cause raises together with this detector's flag in an honest client:
    #: beside flags of those families only, this detector's flag is part of that fact and adds no family of its own
    #: (a client whose local training diverges reports a loss unlike the others' *and* sends a far longer update).
    explained_by: ClassVar[frozenset[str]] = frozenset()
    #: The bounds of the detector's own parameters (name -> (test, requirement)), beside :data:`PARAMETER_BOUNDS`.
    bounds: ClassVar[Mapping[str, Bound]] = {}
    #: The score at which a client is flagged: a parameter of ``__init__``, stored by every detector.
    threshold: float

    def get_params(self) -> dict[str, Any]:
        """The detector's parameters, as passed to ``__init__`` (scikit-learn's convention)."""
        signature = inspect.signature(type(self).__init__)
        names = [
            p.name for p in signature.parameters.values() if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]
        missing = [p for p in names if not hasattr(self, p)]
        if missing:
            raise FedForensicsError(
                f"{type(self).__name__}: __init__ takes {', '.join(missing)} but does not store "
                f"{'them' if len(missing) > 1 else 'it'} as self.{missing[0]} (scikit-learn's convention, "
                "which get_params, the reports and --set rely on)"
            )
        return {p: getattr(self, p) for p in names}

    def check_params(self) -> None:
        """Refuse a parameter value outside its meaning (``threshold=0`` divided by zero later; a negative
        one flagged every client), by the names of :data:`PARAMETER_BOUNDS` and the class's :attr:`bounds`."""
        bounds = dict(PARAMETER_BOUNDS)
        for cls in reversed(type(self).__mro__):  # a subclass's bounds beside its parents' (review: they replaced them)
            bounds.update(cls.__dict__.get("bounds", {}))
        for name, value in self.get_params().items():
            test, requirement = bounds.get(name, (None, ""))
            if test is None:
                continue
            try:
                ok = test(value)
            except TypeError:  # get_detector("norm", threshold="4") from Python: Python's comparison error, not one line
                raise FedForensicsError(f"{self.name}: {name}={value!r} is not a number: it {requirement}") from None
            if not ok:
                raise FedForensicsError(f"{self.name}: {name}={value!r} {requirement}")

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"

    def flag(self, scores: Mapping[str, float], clients: Iterable[str]) -> tuple[dict[str, float], list[str]]:
        """``scores`` with NaN for each of ``clients`` it lacks (clients the detector could not score),
        and the clients at or above ``self.threshold``, highest first (none at an infinite threshold, which
        switches the flags off, even of a score of +inf)."""
        scores = dict(scores)
        for cid in clients:
            scores.setdefault(cid, float("nan"))
        return scores, at_or_above(scores, self.threshold) if math.isfinite(self.threshold) else []

    def result(self, **fields: Any) -> DetectorResult:
        """A :class:`DetectorResult` carrying this detector's name, reference, family, roles,
        parameters and ``self.threshold`` (every detector stores one), plus ``fields`` (scores,
        flags, evidence...). A detector that scored no client is not applicable to the run: it has no
        evidence either way, and an evaluation must not count its silence as a miss."""
        scores = fields.get("scores", {})
        if fields.get("applicable", True) and not fields.get("flagged") and not any(math.isfinite(v) for v in scores.values()):
            fields["applicable"] = False
            usual = (
                "no client could be scored (too few clients in every round, no update to compare, or no client in "
                "enough rounds for the detector's minimum)"
            )
            # the detector's own remark (a part of the run it could not read) is one more reason, beside the usual ones
            fields["note"] = f"{usual}; {fields['note']}" if fields.get("note") else usual
        return DetectorResult(
            name=self.name,
            family=self.family,
            standalone=self.standalone,
            label_mix=self.label_mix,
            large_data=self.large_data,
            same_data=self.same_data,
            explained_by=self.explained_by,
            reference=self.reference,
            summary=self.summary,
            params=self.get_params(),
            threshold=self.threshold,
            **fields,
        )

    @abstractmethod
    def start(self, run: Run) -> None:
        """Reset state before the first round of ``run``."""

    @abstractmethod
    def observe(self, data: RoundData) -> None:
        """Take one round into account."""

    @abstractmethod
    def finish(self) -> DetectorResult:
        """Conclude after the last round."""

    def score(self, run: Run) -> DetectorResult:
        """Score ``run`` on its own (the analysis runs all detectors in one pass instead)."""
        from ..scan import scan  # here: the scan imports this package (for RoundData), which imports this module

        if not isinstance(run, Run):  # a path failed deep in start() as "'str' object has no attribute 'all_clients'"
            raise FedForensicsError(f"{self.name}: score takes a Run (fedforensics.open_run(path)), not {type(run).__name__}")
        self.check_params()
        self.start(run)
        moved = UpdateMotion(run)
        for data in scan(run, directions=self.uses_directions, max_abs=self.reads_max_abs):
            moved.observe(data)
            self.observe(data)
        return moved.judged(self, self.finish())


class UpdateMotion:
    """Whether any client update of a run moved: where none did (all zero, or no floating-point layer), a score of
    0 for everyone is no evidence either way, and an evaluation must not count it, nor a reader of the scores: the
    detectors that read the updates are then unscored, as where a detector cannot score a run."""

    NOTE = "no client update moved (all zero, or no floating-point layer): nothing to compare"

    def __init__(self, run: Run) -> None:
        self._analysable = bool(run.analysable_layers)
        self.compared: dict[int, int] = {}  # round -> clients whose update could be compared
        self.still: list[int] = []  # rounds in which every compared update was zero

    def observe(self, data: RoundData) -> None:
        """Count round ``data``'s compared clients, and the round as still if none of their updates moved."""
        if data.clients:  # a round whose every update held NaN/Inf has none to compare
            self.compared[data.round] = len(data.clients)
            if self._analysable and not data.moved.any():
                self.still.append(data.round)

    @property
    def nothing_moved(self) -> bool:
        """Whether rounds were compared and in none did an update move (or the run has no analysable layer to move)."""
        return bool(self.compared) and (not self._analysable or len(self.still) == len(self.compared))

    def judged(self, detector: Detector, result: DetectorResult) -> DetectorResult:
        """``result``, unscored when nothing moved and ``detector`` reads the updates."""
        if not (self.nothing_moved and detector.reads_updates):  # unapplicable already, it says why: nothing moved
            return result
        return replace(
            result, applicable=False, note=self.NOTE, scores=dict.fromkeys(result.scores, math.nan), flagged=[],
            round_scores={}, first_flagged={}, evidence=[],
        )
