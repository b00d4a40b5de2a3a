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
* optionally (``spike``, off by default) its strongest single round, scaled so
  that a per-round z of ``spike`` reaches the threshold. Honest clients of
  non-IID federations reach per-round z ≈ 85 in single late rounds, so a
  single round is no verdict (and a one-shot model replacement among many
  rounds goes unflagged: docs/detection.md, "Where it fails").

The first round at which the evidence gathered *up to that round* reached the
threshold is the round of first detection.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np

Side = Literal["greater", "less", "two-sided"]

#: Rounds a client must have been scored in before a mean over them counts as evidence.
EVIDENCE_ROUNDS = 3
#: Per-round z-scores are winsorised here before their mean: one astronomical round (a ×1e30 update)
#: counts as a very strong round, not as the whole run.
CLIP = 10.0


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


def first_rounds(
    rounds: Iterable[int], flagged: list[str], scores_upto: Callable[[int], Mapping[str, float]], threshold: float
) -> dict[str, int]:
    """For each flagged client, the first of ``rounds`` at which its score from the evidence up to that
    round (``scores_upto(round)``) reached ``threshold``; a client that never did has no entry."""
    first: dict[str, int] = {}
    pending = set(flagged)
    for r in rounds:  # only flagged clients get a first round: stop once each has one
        if not pending:
            break
        for cid, score in scores_upto(r).items():
            if cid in pending and score >= threshold:
                first[cid] = r
                pending.discard(cid)
    return {c: first[c] for c in flagged if c in first}


@dataclass
class Conclusion:
    scores: dict[str, float]
    flagged: list[str]
    first_flagged: dict[str, int]
    strongest: dict[str, list[tuple[int, float, float]]]  # client -> [(round, oriented z, signed z)], strongest first


class RoundScores:
    """Collects per-round z-scores of one statistic and concludes per client."""

    def __init__(self, side: Side) -> None:
        self.side = side
        self.rounds: list[int] = []
        self.by_round: dict[int, dict[str, float]] = {}  # the only copy: each client's history is read from it

    def add(self, round_number: int, clients: list[str], z: np.ndarray) -> None:
        """Record the per-round z of ``clients`` (NaN entries are skipped)."""
        scores = {}
        for cid, value in zip(clients, np.asarray(z, dtype=np.float64)):
            if np.isfinite(value):
                scores[cid] = float(value)
        if scores:
            self.rounds.append(round_number)
            self.by_round[round_number] = scores

    def _trajectory(self, history: list[tuple[int, float]], threshold: float, spike: float | None) -> np.ndarray:
        """A client's run-level score from its rounds up to each of them, in one pass over its history."""
        values = np.array([v for _, v in history])
        counts = np.arange(1, len(values) + 1)
        means = np.cumsum(np.clip(values, -CLIP, CLIP)) / counts
        scores = np.where(counts >= EVIDENCE_ROUNDS, oriented(means, self.side), 0.0)
        if spike is not None and np.isfinite(threshold):  # a per-round z of `spike` reaches the threshold
            scores = np.maximum(scores, np.maximum.accumulate(oriented(values, self.side)) * threshold / spike)
        return scores

    def conclude(self, threshold: float, spike: float | None) -> Conclusion:
        """Run-level scores, flags at ``threshold``, and the first round each flag was reached (the round
        after which the evidence up to it reached the threshold: one pass over each client's history, not a
        re-scoring of every client at every round, which grew with the square of the rounds)."""
        histories: dict[str, list[tuple[int, float]]] = defaultdict(list)  # client -> [(round, z)], in round order
        for r in self.rounds:
            for cid, value in self.by_round[r].items():
                histories[cid].append((r, value))
        trajectories = {cid: self._trajectory(history, threshold, spike) for cid, history in histories.items()}
        final = {cid: float(scores[-1]) for cid, scores in trajectories.items()}
        flagged = at_or_above(final, threshold)
        first = {}
        for cid in flagged:
            reached = np.flatnonzero(trajectories[cid] >= threshold)
            first[cid] = histories[cid][int(reached[0])][0]
        strongest = {
            cid: sorted(((r, float(oriented(np.array([v]), self.side)[0]), v) for r, v in history), key=lambda t: -t[1])
            for cid, history in histories.items()
        }
        return Conclusion(final, flagged, first, strongest)
