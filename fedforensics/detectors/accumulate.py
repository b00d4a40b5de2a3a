"""Evidence accumulated across rounds: from per-round robust z-scores to one score per client.

Per-round flags alone cannot be a verdict: a robust z above 3 happens to 1–6 % of
honest client-rounds. A client's run-level score therefore combines

* its **mean** per-round z (winsorised at ``CLIP``, over at least
  ``EVIDENCE_ROUNDS`` rounds): how many of a round's MADs it sits from the round's median, on
  average. Honest noise averages out; an attacker who pulls the same way round
  after round keeps its distance. The mean is not standardised a second time
  across clients: with ten clients, the spread of honest means is set by the
  majority that sits near the median, and re-scaling by it turns an honest
  client with a persistently different data shard into a 9-sigma outlier;
* optionally (``spike``, off by default; ``sybil`` sets it) its strongest single round, scaled so
  that a per-round z of ``spike`` scores ``term_score`` (the detector's default threshold, a constant: scores
  do not depend on the threshold set, so at that default such a round flags the client). Honest clients of
  non-IID federations reach per-round z ≈ 85 in single late rounds on their update's norm, so
  a single round of most statistics is no verdict (and a one-shot model replacement among many
  rounds goes unflagged: docs/detection.md, "Where it fails"); a near-copy of another client's
  update is (``sybil``: honest clients reached z 14.4 at most);
* optionally (``extreme_share``; ``norm`` sets it) the share of its rounds in which its z reached
  ``CLIP``, scaled so that a share of ``extreme_share`` scores ``term_score`` (the detector's default threshold), once
  ``EVIDENCE_ROUNDS`` such rounds are in: an attacker who strikes in one round of
  three, 100 MADs out each time, has a mean winsorised z of about 3.4, under the
  threshold, yet sits beyond ``CLIP`` in a third of its rounds; of 18,816 honest
  clients of 895 cached federations, 3 had their update norm there in a quarter of
  their rounds, all three flagged by the mean already (docs/detectors.md, ``norm``).
  It is an upper quantile of the client's per-round z: the rounds in between cannot
  dilute it, nor can one extreme round make it.

The first round at which the evidence gathered *up to that round* reached the
threshold is the round of first detection.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

Side = Literal["greater", "less", "two-sided"]

#: Rounds a client must have been scored in before a mean over them counts as evidence.
EVIDENCE_ROUNDS = 3
#: Per-round z-scores are winsorised here before their mean: one astronomical round (a ×1e30 update)
#: counts as a very strong round, not as the whole run.
CLIP = 10.0
#: What a term of single rounds scores when it triggers (a per-round z of ``spike``, a share ``extreme_share`` of
#: rounds at ``CLIP``): the detector's *default* threshold, so that at the defaults it flags; the score does not
#: depend on the threshold set (scores and thresholds are apart: a higher threshold flags fewer clients through
#: these terms too). ``RoundStatisticDetector`` passes its class's default; this is the base's.
TERM_SCORE = 3.5


def oriented(z: np.ndarray, side: Side) -> np.ndarray:
    """Turn signed z-scores into 'higher is more suspicious'."""
    if side == "greater":
        return z
    if side == "less":
        return -z
    return np.abs(z)


def at_or_above(scores: Mapping[str, float], threshold: float) -> list[str]:
    """The clients whose score reaches ``threshold``, highest first (a NaN score never does)."""
    return sorted((c for c, s in scores.items() if s >= threshold), key=lambda c: -scores[c])


@dataclass
class Conclusion:
    """What :meth:`RoundScores.conclude` found for one statistic: run-level scores, flags, and the rounds behind them."""

    scores: dict[str, float]
    flagged: list[str]
    first_flagged: dict[str, int]
    strongest: dict[str, list[tuple[int, float, float]]]  # client -> [(round, oriented z, signed z)], strongest first
    highs: dict[str, list[tuple[int, float]]]  # client -> [(round, score)] each new high at or above the threshold

    def first_reaching(self, cid: str, reached: Callable[[float], bool]) -> int | None:
        """The first round at which ``cid``'s score up to then satisfied ``reached`` (a monotone test of a score,
        never met below the threshold: the threshold after a correction that lowers scores), or ``None``."""
        return next((r for r, score in self.highs.get(cid, []) if reached(score)), None)


class RoundScores:
    """Accumulates one statistic's per-round z-scores into each client's evidence, round by round.

    What it keeps is a few numbers per client, whatever the run's length: the running sum and
    count of the client's winsorised z (its mean), its strongest round so far (for ``spike``), how many of its
    rounds reached ``CLIP`` (for ``extreme_share``), the
    first round at which its evidence up to then reached ``threshold``, its ``keep`` strongest
    rounds (the evidence a flag lists), and the rounds its score rose to a new high at or above ``threshold``
    (where a detector's corrected score first reached it: a few, unless a flagged client's score keeps rising,
    at most one a round). Of each round it keeps only the largest |z| (the
    localization table's per-round separation). ``ids`` is the run's client list; rows are added
    with the positions of their clients in it.
    """

    def __init__(
        self, ids: Sequence[str], side: Side, threshold: float, spike: float | None, keep: int = 3,
        extreme_share: float | None = None, term_score: float = TERM_SCORE,
    ) -> None:
        n = len(ids)
        self.ids, self.side, self.threshold, self.extreme_share = ids, side, threshold, extreme_share
        # an infinite spike is no term (as the notes read it), not a term of 0 that scores rare clients "typical"
        self.spike = spike if spike is not None and math.isfinite(spike) else None
        self.term_score = term_score
        self._sum = np.zeros(n)
        self._count = np.zeros(n, dtype=np.int64)
        self._extreme = np.zeros(n, dtype=np.int64)  # rounds whose oriented z reached CLIP
        self._peak = np.full(n, -np.inf)
        self._score = np.zeros(n)
        self._first = np.full(n, -1, dtype=np.int64)
        self._top = np.full((n, keep), -np.inf)  # oriented z of the strongest rounds, strongest first
        self._top_round = np.full((n, keep), -1, dtype=np.int64)
        self._top_signed = np.zeros((n, keep))
        self._high = np.full(n, -np.inf)
        self._highs: list[tuple[int, np.ndarray, np.ndarray]] = []  # per round: (round, client rows, scores) that rose
        self.rounds = array("q")
        self._round_peak = array("d")

    def add(self, round_number: int, index: np.ndarray, z: np.ndarray) -> None:
        """Take in one round's z of the clients at ``index``: NaN entries (not scored) are skipped, ±Inf ones (a value
        infinitely far, as a reported loss of Inf is) count as ±``CLIP``, where winsorising puts every far value."""
        z = np.array(z, dtype=np.float64)
        infinite = np.isinf(z)
        z[infinite] = np.copysign(CLIP, z[infinite])
        finite = np.isfinite(z)
        if not finite.any():
            return
        at, z = index[finite], z[finite]
        self.rounds.append(round_number)
        self._round_peak.append(float(np.abs(z).max()))
        self._sum[at] += np.clip(z, -CLIP, CLIP)  # the same additions, in the same order, as a cumulative sum
        self._count[at] += 1
        count = self._count[at]
        # under EVIDENCE_ROUNDS rounds there is no mean yet: unscored (NaN), not "typical" (0), unless a term of
        # single rounds speaks (fmax: NaN gives way to a number)
        score = np.where(count >= EVIDENCE_ROUNDS, oriented(self._sum[at] / count, self.side), np.nan)
        strength = oriented(z, self.side)
        if self.spike is not None:  # a per-round z of `spike` scores `term_score`
            self._peak[at] = np.maximum(self._peak[at], strength)
            score = np.fmax(score, self._peak[at] * self.term_score / self.spike)
        if self.extreme_share is not None:  # that share of rounds at CLIP scores `term_score`
            self._extreme[at] += strength >= CLIP
            extreme = self._extreme[at]
            score = np.fmax(score, np.where(extreme >= EVIDENCE_ROUNDS, extreme / count / self.extreme_share * self.term_score, np.nan))
        self._score[at] = score
        # new highs at or above the threshold only: a correction a detector applies never raises a score (Bonferroni),
        # so nothing below it can reach the threshold corrected, and a drifting score keeps no history below it
        rose = (score > self._high[at]) & (score >= self.threshold)
        if rose.any():
            self._highs.append((round_number, at[rose], score[rose]))
            self._high[at[rose]] = score[rose]
        reached = at[(self._first[at] < 0) & (score >= self.threshold)]
        self._first[reached] = round_number
        # the `keep` strongest rounds: the new round goes last, so a stable sort keeps the earlier of equal rounds
        # first, and a round enters only where it beats the weakest kept (most clients, most rounds: none)
        if self._top.shape[1]:  # keep=0: no rounds kept
            enters = strength > self._top[at, -1]
            if enters.any():
                self._keep_strongest(round_number, at[enters], strength[enters], z[enters])

    def _keep_strongest(self, round_number: int, at: np.ndarray, strength: np.ndarray, z: np.ndarray) -> None:
        keep = self._top.shape[1]
        top = np.concatenate([self._top[at], strength[:, None]], axis=1)
        order = np.argsort(-top, axis=1, kind="stable")[:, :keep]
        self._top[at] = np.take_along_axis(top, order, axis=1)
        rounds = np.concatenate([self._top_round[at], np.full((at.size, 1), round_number)], axis=1)
        self._top_round[at] = np.take_along_axis(rounds, order, axis=1)
        signed = np.concatenate([self._top_signed[at], z[:, None]], axis=1)
        self._top_signed[at] = np.take_along_axis(signed, order, axis=1)

    @property
    def round_peaks(self) -> dict[int, float]:
        """Per round, the largest |z| of any client."""
        return dict(zip(self.rounds, self._round_peak))

    def conclude(self) -> Conclusion:
        """Run-level scores, flags at the threshold, the first round each flag was reached, and each client's
        strongest rounds."""
        seen = np.flatnonzero(self._count > 0)
        scores = {self.ids[j]: float(self._score[j]) for j in seen}
        flagged = at_or_above(scores, self.threshold)
        position = {self.ids[j]: j for j in seen}
        first = {cid: int(self._first[position[cid]]) for cid in flagged}
        strongest = {
            self.ids[j]: [
                (int(r), float(o), float(v))
                for r, o, v in zip(self._top_round[j], self._top[j], self._top_signed[j])
                if r >= 0
            ]
            for j in seen
        }
        highs: dict[str, list[tuple[int, float]]] = {self.ids[j]: [] for j in seen}
        for r, rows, values in self._highs:
            for j, value in zip(rows.tolist(), values.tolist()):
                highs[self.ids[j]].append((r, value))
        return Conclusion(scores, flagged, first, strongest, highs)
