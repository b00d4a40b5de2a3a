"""From detector results to one verdict per client, with its evidence.

The rule (documented in ``docs/detectors.md``):

* every detector's run-level score is divided by its threshold: its *strength*
  (1.0 = flagged);
* only a client flagged by at least one *standalone* detector can be judged
  malicious or suspicious; flags of the others (``output-bias``, ``client-metrics``:
  statistics an honest client's own data sets under label skew) corroborate;
* **malicious**: flagged by detectors of at least ``agree`` *families* of evidence
  (default 2: magnitude, direction, collusion, behaviour; three magnitude
  statistics of one client are one fact, not three; ``output-bias``, corroborating
  and set by an unusual label mix by construction, adds no family; when the only
  standalone flags are of detectors an unusual label mix sets, such as
  ``cosine-hdbscan``, they and any corroborating flag beside them (the client's
  training metrics, which its data set too) are one family together; a corroborating
  flag beside standalone flags only of families one cause raises with it, its
  ``explained_by``, adds none: diverging local training sets a client's loss and its
  update's norm at once), or by one standalone detector at ``strong`` times its
  threshold or more (default 2.0);
* **suspicious**: flagged by one family (fewer than ``agree``), or its update held NaN/Inf in some
  round (which breaks averaging whatever the intent; the analysis leaves out the rounds whose global model held
  NaN/Inf or broke most clients' training: :func:`most_diverged`); with trigger inversion (``analyze --model``), also
  a client otherwise benign whose clean push toward the flagged label reaches ``push`` while its score without the
  label-mix detectors reaches ``push_score`` (:meth:`ConsensusRule.corroborate`);
* **benign**: otherwise (its evidence, if a corroborating detector flagged it, is
  still listed);
* in a run whose clients repeat their differences from round to round (the median
  cosine of :mod:`fedforensics.persistence` at ``persistence`` or above), one family's
  flag below ``strong`` is not a verdict: there, evidence accumulated over the rounds
  is one observation repeated, and such flags were nearly all honest clients
  (docs/detectors.md). The client stays benign with its evidence listed. There, too,
  a *label-mix* detector's flag below ``strong`` (``cosine-hdbscan``'s vote over the
  rounds) adds no family beside other standalone flags, nor does a corroborating
  flag beside it, and it keeps the client suspicious rather than set aside;
* in such a run, too, a flag two honest clients with the same data reach together (``same_data``:
  ``sybil``'s and ``accumulated-sybil``'s near-copies, which such clients trained near full-batch send
  every round) is not strong alone: without another family it leaves the client suspicious;
* for a client whose reported sample counts explain its update's length in most of its
  rounds, the flags of the *large data* detectors (which far more data raise by
  construction) are one family together, its data size, and none of them is strong
  alone: such flags leave it suspicious, in persistent runs too, unless another family
  agrees;
* so are, for a client whose update was long while the layers after the model's last
  BatchNorm were not, in most of its rounds (``normalized``: a step the normalization
  absorbs, as an honest client's last batch of a few samples makes), the flags of the
  ``magnitude`` detectors: such flags leave it suspicious unless another family agrees.

The client's score is the sum of its strengths, each held within 0 and ``cap``, so a
client seen by several detectors ranks above one seen strongly by a single one.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from .detectors.base import DATA_SIZE, DetectorResult, Evidence
from .errors import FedForensicsError
from .persistence import PERSISTENT

Verdict = Literal["malicious", "suspicious", "benign"]
VERDICTS: tuple[Verdict, ...] = ("malicious", "suspicious", "benign")
#: The evidence of an update holding NaN or Inf (its round is the first such round): a fact, not a detector's score.
INTEGRITY = "integrity"
#: The evidence of a client's models pushing clean inputs toward the label trigger inversion flags.
CLEAN_PUSH = "clean-push"
#: The rule's parameters of the clean push, which only an audit with a model measures.
PUSH_PARAMETERS = ("push", "push_score")


def most_diverged(nonfinite: int, updates: int) -> bool:
    """Whether a round's NaN/Inf updates (``nonfinite`` of its ``updates``) are the doing of the global model they
    were sent rather than of their clients: more than half of the round's updates, and at least two. A finite model
    that training blows up (after PoisonedFL's scaled updates) makes most honest clients diverge at once, where one
    client's NaN is its own."""
    return nonfinite >= 2 and 2 * nonfinite > updates


#: What a verdict's "since" round (:attr:`ClientVerdict.first_round`) means, in the reports' words.
SINCE_MEANING = (
    "the first round by which the verdict rule would have judged the client malicious or suspicious "
    "(a malicious client may have been only suspicious then)"
)
#: What a verdict's score means, in the reports' words: a benign client's 1.49 beside "1.0: one detector at its
#: threshold" read as a flag (a fresh-eyes auditor).
SCORE_MEANING = (
    "the sum of each detector's score ÷ its threshold, each capped: detectors that each stay below their thresholds "
    "can pass 1 together"
)
#: What a detector marked "corroborates" (not standalone) means, in the reports' words.
CORROBORATES_MEANING = "its flag alone leaves a client benign"


@dataclass
class ClientVerdict:
    """The conclusion about one client."""

    client: str
    verdict: Verdict
    score: float
    flagged_by: list[str]
    strengths: dict[str, float]
    #: The facts behind the verdict: an update's NaN/Inf first (or the clean push that made the client suspicious), then
    #: the flagging detectors' (the strongest flag's first).
    evidence: list[Evidence] = field(default_factory=list)
    rounds: int = 0
    #: The earliest round by which the verdict rule would have judged it malicious or suspicious (not necessarily its
    #: verdict: a second family's later flag makes it malicious); None: benign, or no round says.
    first_round: int | None = None

    @property
    def made_by_push(self) -> bool:
        """Whether the clean push made this client suspicious (:meth:`ConsensusRule.corroborate`): its flags, if any,
        had left it benign, so they are not its verdict's grounds."""
        return any(e.detector == CLEAN_PUSH for e in self.evidence)

    @property
    def nearest(self) -> tuple[str, float] | None:
        """The detector whose score came nearest its threshold (the largest strength, NaN left out) and that strength; None
        where no detector could score the client."""
        finite = {name: s for name, s in self.strengths.items() if s == s}
        if not finite:
            return None
        name = max(finite, key=finite.__getitem__)
        return name, finite[name]

    def to_json(self) -> dict[str, Any]:
        """This verdict as plain JSON data, an entry of the report's ``verdicts`` (docs/report-schema.md)."""
        return {
            "id": self.client,
            "verdict": self.verdict,
            "score": round(self.score, 4),
            "rounds": self.rounds,
            "first_round": self.first_round,
            "flagged_by": self.flagged_by,
            "strengths": {k: (round(v, 4) if math.isfinite(v) else None) for k, v in self.strengths.items()},
            "evidence": [e.to_json() for e in self.evidence],
        }


@dataclass(frozen=True)
class ConsensusRule:
    """Parameters of the verdict rule."""

    agree: int = 2
    strong: float = 2.0
    cap: float = 5.0
    persistence: float = PERSISTENT
    #: The clean push (a mean robust z) and the score beside it (without the label-mix detectors) that make a benign
    #: client suspicious when trigger inversion flags a label (:meth:`corroborate`).
    push: float = 1.5
    push_score: float = 1.5

    def __post_init__(self) -> None:
        for name in ("agree", "strong", "cap", "persistence", "push", "push_score"):  # ConsensusRule(agree="2"): one line
            if not isinstance(getattr(self, name), numbers.Real):
                raise FedForensicsError(f"verdict: {name}={getattr(self, name)!r} is not a number")
        for name, ok, requirement in (
            ("agree", self.agree >= 1, "must be at least 1 (families that must agree)"),
            ("strong", self.strong > 0, "must be positive (times a threshold)"),
            ("cap", self.cap > 0, "must be positive (the most one detector adds to a score)"),
            ("persistence", self.persistence > 0, "must be positive (a median cosine; above 1 switches it off)"),
            ("push", self.push > 0, "must be positive (a clean push, a mean robust z)"),
            ("push_score", self.push_score > 0, "must be positive (a verdict score, a sum of strengths)"),
        ):
            if not ok:
                raise FedForensicsError(f"verdict: {name}={getattr(self, name)!r} {requirement}")

    def judge(
        self,
        clients: dict[str, int],
        results: list[DetectorResult],
        nonfinite: dict[str, list[int]],
        persistence: float | None = None,
        large_data: Collection[str] = (),
        normalized: Collection[str] = (),
    ) -> list[ClientVerdict]:
        """Verdicts for ``clients`` (id -> rounds taken part in), strongest suspects first; ``persistence`` is
        the run's median cosine of :class:`~fedforensics.persistence.DeviationPersistence` (``None``: unmeasured);
        ``large_data``: the clients whose reported sample counts explain their update's length in most of their
        rounds (:func:`~fedforensics.data_size.large_data_clients`); ``normalized``: those whose update's excess lay
        before the model's last BatchNorm in most of their rounds
        (:func:`~fedforensics.normalization.normalized_excess_clients`)."""
        persistent = self.persists(persistence)
        verdicts = []
        applicable = [r for r in results if r.applicable]
        for cid, rounds in clients.items():
            strengths = {}
            for result in applicable:
                score = result.scores.get(cid, math.nan)
                # NaN: not scored; +inf (a custom detector's "certainly") is the strongest flag there is
                strengths[result.name] = score / result.threshold if not math.isnan(score) else math.nan
            flagged_by = [name for name, s in strengths.items() if not math.isnan(s) and s >= 1.0]
            # where the client's own data explain its update's length, the flags far more data raise by construction
            # are one observation, its data size: one family at most, and none of them strong alone
            sized = {r.name for r in applicable if r.large_data} if cid in large_data else set()
            # where a BatchNorm absorbs the excess, a magnitude flag is a long step, not a scaled update
            absorbed = {r.name for r in applicable if r.family == "magnitude"} if cid in normalized else set()
            by_strength = sorted(applicable, key=lambda r: -strengths[r.name] if not math.isnan(strengths[r.name]) else 0.0)
            evidence = [e for r in by_strength if r.name in flagged_by for e in r.evidence if e.client == cid]
            bad = nonfinite.get(cid, [])
            if bad:
                evidence.insert(
                    0,
                    Evidence(INTEGRITY, cid, bad[0], None, float(len(bad)), f"update held NaN/Inf in {len(bad)} round(s)"),
                )
            verdict = self._verdict(strengths, applicable, sized, absorbed, persistent, bool(bad))
            first = (
                self._first_round(cid, strengths, applicable, sized, absorbed, persistent, bad) if verdict != "benign" else None
            )
            score = sum(min(max(s, 0.0), self.cap) for s in strengths.values() if not math.isnan(s))
            verdicts.append(ClientVerdict(cid, verdict, score, flagged_by, strengths, evidence, rounds, first))
        verdicts.sort(key=lambda v: (VERDICTS.index(v.verdict), -v.score, v.client))
        return verdicts

    def _verdict(
        self, strengths: dict[str, float], applicable: list[DetectorResult], sized: Collection[str],
        absorbed: Collection[str], persistent: bool, broken: bool,
    ) -> Verdict:
        """One client's verdict from its ``strengths`` (detector -> score / threshold), the large-data detectors
        ``sized`` for it, the magnitude detectors whose excess a BatchNorm ``absorbed`` for it, whether the run's
        differences persist, and whether an update of it held NaN/Inf."""
        flagged_by = {name for name, s in strengths.items() if not math.isnan(s) and s >= 1.0}
        standalone = [r.name for r in applicable if r.standalone and r.name in flagged_by]
        # where differences persist, two honest clients with the same data send near-copies every round: such a
        # flag at `strong` is not strong alone (it stays suspicious), as a data size's is not (a fresh-eyes user's
        # class pairs); below `strong` it is one family set aside, as any
        alike = {
            r.name for r in applicable
            if persistent and r.same_data and r.name in flagged_by and strengths[r.name] >= self.strong
        }  # fmt: skip
        explained = {*sized, *absorbed}  # flags an honest cause explains: none strong alone
        strongest = max((strengths[name] for name in standalone if name not in explained and name not in alike), default=0.0)
        strong_explained = any(strengths[name] >= self.strong for name in standalone if name in explained)
        flagging = [r for r in applicable if r.name in flagged_by and r.adds_family]
        label_mix_only = all(result.label_mix for result in flagging if result.standalone)
        # where differences persist, a label-mix detector's vote over the rounds is one observation repeated:
        # below `strong`, beside other standalone flags, it adds no family and keeps the client suspicious;
        # nor does a corroborating flag beside it (the client's training metrics), which the same data sets
        discounted = {
            result.name for result in flagging
            if persistent and not label_mix_only and result.standalone and result.label_mix and strengths[result.name] < self.strong
        }  # fmt: skip
        counted = [result for result in flagging if result.name not in discounted and (result.standalone or not discounted)]
        families = _families(counted, sized)
        if standalone and label_mix_only:
            # one fact about the client's data, not independent evidence: a corroborating flag (its training
            # metrics) beside standalone flags that only an unusual label mix raised is set by the same data
            families = {"label mix"}
        if standalone and (len(families) >= self.agree or strongest >= self.strong):
            return "malicious"
        if (standalone and (not persistent or discounted or strong_explained or alike)) or broken:
            return "suspicious"
        return "benign"

    def _first_round(
        self, cid: str, strengths: dict[str, float], applicable: list[DetectorResult], sized: Collection[str],
        absorbed: Collection[str], persistent: bool, nonfinite: list[int],
    ) -> int | None:
        """The earliest round by which this rule would have judged the client malicious or suspicious: each flag
        counts from its detector's ``first_flagged`` round (at its final strength), an update's NaN/Inf from its
        first such round. ``None`` when the verdict needs a flag of a statistic of the whole run, which has no
        round. (A corroborating detector's earlier flag is not the verdict's: it alone judges no one.)"""
        since = {
            r.name: r.first_flagged.get(cid) for r in applicable if not math.isnan(strengths[r.name]) and strengths[r.name] >= 1.0
        }
        for r in sorted({rnd for rnd in since.values() if rnd is not None} | set(nonfinite[:1])):
            upto = {name: (0.0 if name in since and (since[name] is None or since[name] > r) else s) for name, s in strengths.items()}
            if self._verdict(upto, applicable, sized, absorbed, persistent, bool(nonfinite) and nonfinite[0] <= r) != "benign":
                return r
        return None

    def corroborate(
        self, verdicts: list[ClientVerdict], push: Mapping[str, float], label: int, label_mix: Collection[str] = ()
    ) -> list[ClientVerdict]:
        """``verdicts`` with every benign client whose clean push toward ``label`` (client -> mean robust z,
        :func:`~fedforensics.inversion.attribution.clean_push`) reaches ``push`` and whose score without the
        ``label_mix`` detectors (:meth:`unmixed_score`) reaches ``push_score`` judged suspicious, the push its
        first evidence; strongest suspects first.

        Neither is enough alone: an honest client whose shard holds many images of the label pushes toward it, and
        honest clients of label-skewed runs reach scores of 4 and more (docs/detectors.md, "clean push"). The
        detectors an unusual label mix raises (``output-bias``, ``cosine-hdbscan``) are left out of the score beside
        it: the same label mix raises the push, so they would corroborate it with the same fact. The client's round
        of first detection is ``None``: the push is a mean over the run."""
        judged = []
        for v in verdicts:
            value = push.get(v.client, math.nan)
            unmixed = self.unmixed_score(v, label_mix)
            if v.verdict == "benign" and value >= self.push and unmixed >= self.push_score:
                evidence = Evidence(
                    CLEAN_PUSH, v.client, None, None, value,
                    f"its models pushed clean inputs of other labels toward label {label}, which trigger inversion "
                    f"flags (mean robust z {value:.2f}), beside update statistics no label mix explains that score "
                    f"{unmixed:.2f} together",
                )  # fmt: skip
                # first: the reports show a suspect's first evidence as its grounds, and a flag that left it benign
                # (output-bias's, marked "corroborates only") stood there for a verdict the push made (a review)
                v = replace(v, verdict="suspicious", evidence=[evidence, *v.evidence], first_round=None)
            judged.append(v)
        judged.sort(key=lambda v: (VERDICTS.index(v.verdict), -v.score, v.client))
        return judged

    def unmixed_score(self, verdict: ClientVerdict, label_mix: Collection[str]) -> float:
        """The client's score without the strengths of the ``label_mix`` detectors, each held within 0 and ``cap``."""
        return sum(
            min(max(s, 0.0), self.cap) for name, s in verdict.strengths.items() if not math.isnan(s) and name not in label_mix
        )

    @property
    def judges_push(self) -> bool:
        """Whether a clean push can make a client suspicious (``--set verdict.push=inf``, or ``push_score``: never)."""
        return math.isfinite(self.push) and math.isfinite(self.push_score)

    @property
    def fewer_families(self) -> str:
        """The flags short of a verdict in words: "one family" (``agree`` 2), "fewer than 3 families"."""
        return "one family" if self.agree == 2 else f"fewer than {self.agree} families"

    def persists(self, persistence: float | None) -> bool:
        """Whether a run of this median persistence has the flags of fewer than ``agree`` families set aside
        (never with ``agree`` 1: one family is a verdict then)."""
        return self.agree > 1 and persistence is not None and persistence >= self.persistence


def _families(flagging: list[DetectorResult], sized: Collection[str] = ()) -> set[str]:
    """The families of evidence these flags of one client make, the flags of ``sized`` detectors one family,
    :data:`DATA_SIZE`: a corroborating flag beside standalone flags only of families one cause raises with it (its
    ``explained_by``) adds none."""

    def family(result: DetectorResult) -> str:
        return DATA_SIZE if result.name in sized else result.family or result.name

    beside = {family(result) for result in flagging if result.standalone}
    return {family(result) for result in flagging if result.standalone or not beside <= result.explained_by}
