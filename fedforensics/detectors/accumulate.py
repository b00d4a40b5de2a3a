"""Evidence accumulated across rounds: from per-round robust z-scores to one score per client.

Per-round flags alone cannot be a verdict: a robust z above 3 happens to 1–6 % of
honest client-rounds. A client's run-level score therefore combines

* its **mean** per-round z (winsorised at ``clip``), compared with the other
  clients' means by a second robust z whose scale never falls below
  ``1/sqrt(k)`` for a client seen in ``k`` rounds (the spread of a mean of ``k``
  unit-variance scores) — sustained, moderate deviations add up, and honest
  clients of a non-IID federation, which differ persistently, set the scale;
* its strongest single round, scaled so that a per-round z of ``spike`` reaches
  the threshold — a one-shot model replacement is not averaged away.

The first round at which the evidence gathered *up to that round* reached the
threshold is the round of first detection.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ..stats import mad_factor

Side = Literal["greater", "less", "two-sided"]


def _oriented(z: np.ndarray, side: Side) -> np.ndarray:
    """Turn signed z-scores into 'higher is more suspicious'."""
    if side == "greater":
        return z
    if side == "less":
        return -z
    return np.abs(z)


@dataclass
class Conclusion:
    scores: dict[str, float]
    flagged: list[str]
    first_flagged: dict[str, int]
    strongest: dict[str, list[tuple[int, float]]]  # client -> [(round, oriented z)], strongest first


class RoundScores:
    """Collects per-round z-scores of one statistic and concludes per client."""

    def __init__(self, side: Side, *, clip: float = 10.0) -> None:
        self.side = side
        self.clip = clip
        self.rounds: list[int] = []
        self.by_round: dict[int, dict[str, float]] = {}
        self._history: dict[str, list[tuple[int, float]]] = defaultdict(list)

    def add(self, round_number: int, clients: list[str], z: np.ndarray) -> None:
        """Record the per-round z of ``clients`` (NaN entries are skipped)."""
        scores = {}
        for cid, value in zip(clients, np.asarray(z, dtype=np.float64)):
            if np.isfinite(value):
                scores[cid] = float(value)
                self._history[cid].append((round_number, float(value)))
        if scores:
            self.rounds.append(round_number)
            self.by_round[round_number] = scores

    def _scores_upto(self, last_round: float, threshold: float, spike: float) -> dict[str, float]:
        """Run-level score of every client from the rounds up to ``last_round``."""
        ids, means, counts, peaks = [], [], [], []
        for cid, history in self._history.items():
            values = np.array([v for r, v in history if r <= last_round])
            if values.size == 0:
                continue
            ids.append(cid)
            means.append(float(np.mean(np.clip(values, -self.clip, self.clip))))
            counts.append(values.size)
            peaks.append(float(np.max(_oriented(values, self.side))))
        if not ids:
            return {}
        mean = np.array(means)
        center = float(np.median(mean))
        spread = mad_factor(mean.size) * float(np.median(np.abs(mean - center)))
        scale = np.maximum(spread, 1.0 / np.sqrt(np.array(counts)))
        sustained = _oriented((mean - center) / scale, self.side)
        # a per-round z of `spike` reaches the threshold (an infinite threshold disables flags)
        single = np.array(peaks) * (threshold / spike if np.isfinite(threshold) else 0.0)
        return {cid: float(v) for cid, v in zip(ids, np.maximum(sustained, single))}

    def conclude(self, threshold: float, spike: float) -> Conclusion:
        """Run-level scores, flags at ``threshold``, and the first round each flag was reached."""
        final = self._scores_upto(self.rounds[-1], threshold, spike) if self.rounds else {}
        flagged = sorted((c for c, s in final.items() if s >= threshold), key=lambda c: -final[c])
        first: dict[str, int] = {}
        pending = set(flagged)
        for r in self.rounds:  # only flagged clients get a first round: stop once each has one
            if not pending:
                break
            for cid, score in self._scores_upto(r, threshold, spike).items():
                if score >= threshold and cid in pending:
                    first[cid] = r
                    pending.discard(cid)
        strongest = {
            cid: sorted(((r, float(_oriented(np.array([v]), self.side)[0])) for r, v in history), key=lambda t: -t[1])
            for cid, history in self._history.items()
        }
        return Conclusion(final, flagged, {c: first[c] for c in flagged if c in first}, strongest)
