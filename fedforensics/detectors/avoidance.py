"""``avoidance``: updates that leave alone the coordinates the last global update changed most."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .accumulate import EVIDENCE_ROUNDS
from .global_step import LastStepDetector
from .round_data import RoundData


#: Coordinates a round's comparison rests on at least: on a few, an honest client's share is all chance (a review
#: flagged 4 of 60 honest clients of a 10-parameter model, one or two of its coordinates compared).
MIN_COMPARED = 32


def top_share_folds(sample: np.ndarray, step: np.ndarray, top: float) -> np.ndarray:
    """Per client (row of a clients × coordinates sample), how many times less of its squared update it puts on
    the ``top`` share of coordinates where ``step`` (the last global update, same coordinates) is largest than
    the round's median client does: 1 for a typical client, +inf for one that leaves them untouched; NaN for a
    client that sent nothing at all, and for every client of a round whose ``top`` share of the coordinates the
    global model moved on, rounded up, is fewer than :data:`MIN_COMPARED` (3,100 moved or fewer at 1 %)."""
    moved = np.flatnonzero(np.isfinite(step) & (step != 0))
    folds = np.full(sample.shape[0], np.nan)
    k = math.ceil(top * moved.size)
    if k < MIN_COMPARED:
        return folds
    chosen = moved[np.argpartition(np.abs(step[moved]), moved.size - k)[moved.size - k :]]
    squares = np.square(sample, dtype=np.float64)
    total = squares.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = squares[:, chosen].sum(axis=1) / total
        typical = float(np.nanmedian(share)) if np.isfinite(share).any() else math.nan
        if typical > 0:
            folds = typical / share
    folds[~(total > 0)] = np.nan
    return folds


class AvoidanceDetector(LastStepDetector):
    """How much less of its update a client puts where the last global update moved the model most.

    Neurotoxin (Zhang et al., *Neurotoxin: durable backdoors in federated learning*,
    ICML 2022, Algorithm 1) takes the last global update as the benign clients'
    gradient, masks its top-k % coordinates and trains the backdoor on the others, so
    that honest updates, which keep changing those coordinates, do not overwrite it;
    projected into the honest norm, it is an ordinary update by every other statistic.
    An honest update puts a good share of its squared size on those coordinates,
    about what the round's median client puts there (over the honest clients of 709
    cached federations, label-skewed ones included, at most 27.5 times less, median
    over their rounds, at the defaults; 6.98 outside large rounds of a tiny model);
    Algorithm 1's attacker puts none.

    Per round (from the second: the first has no last global update), on up to
    ``coordinates`` evenly spaced coordinates of the analysable layers: the last global
    update (this round's global model minus the previous recorded round's), its ``top``
    share of coordinates by magnitude, and each client's *fold*, the round's median
    share of the squared update on them over the client's own (+inf for a client that
    leaves them untouched). The run score is the median fold over the client's rounds
    (at least ``min_rounds``), a level like ``opposition``'s. Neurotoxin's official
    code can take the mask from the attacker's own gradient on clean data instead, which
    overlaps the global update's top coordinates only in part (folds of 1.5–1.9 in four
    such federations, on the top 5 % of every coordinate: docs/detection.md, "A fourth
    check"): this detector does not see that variant. The top share compared (1 %) sits
    well inside the 5 % such attackers mask; sampled coordinates at the very edge of
    their mask would let part of their update in.

    Parameters
    ----------
    threshold
        Median fold at which a client is flagged (the default: 100 times less than the median client, 3.6
        times the largest honest level of the cached federations, 27.5: one-class clients of a 3,274-parameter
        model in label-skewed rounds of 150, compared on 33 coordinates; Algorithm 1's attacker scores +inf).
    top
        Share of the sampled coordinates, those the last global update changed most, compared.
    min_clients
        Rounds with fewer clients are not scored (a median of two is no reference).
    min_rounds
        Rounds a client must have been scored in before its median counts.
    coordinates
        Coordinates of the model sampled (at most; evenly spaced over its layers).
    """

    name = "avoidance"
    reference = "Zhang et al. 2022, Neurotoxin: durable backdoors in federated learning (ICML), Algorithm 1"
    summary = "update that leaves alone the coordinates the last global update changed most"
    family = "direction"
    bounds = {"top": (lambda v: 0 < v <= 1, "must be a share in (0, 1] (of the coordinates the last global update changed most)")}

    def __init__(
        self,
        *,
        threshold: float = 100.0,
        top: float = 0.01,
        min_clients: int = 4,
        min_rounds: int = EVIDENCE_ROUNDS,
        coordinates: int = 8192,
    ) -> None:
        self.threshold = threshold
        self.top = top
        self.min_clients = min_clients
        self.min_rounds = min_rounds
        self.coordinates = coordinates

    def compare(self, data: RoundData, sample: np.ndarray, step: np.ndarray) -> np.ndarray:
        return top_share_folds(sample, step, self.top)

    def outcome(self) -> dict[str, Any]:
        outcome = super().outcome()
        if self._width and math.ceil(self.top * self._width) < MIN_COMPARED:
            needed = math.floor((MIN_COMPARED - 1) / self.top) + 1
            outcome["applicable"] = False  # the reason, not one more beside the usual ones (a review)
            outcome["note"] = (
                f"{self._width:,} coordinates are compared, and the top {self.top:.0%} of them (those the last global "
                f"update moved most) must hold at least {MIN_COMPARED}, which takes {needed:,} compared: too few, a model "
                "this small (or `coordinates` set this low) is not compared"
                + (f"; {outcome['note']}" if outcome.get("note") else "")
            )
        return outcome

    def evidence_detail(self, cid: str, r: int, value: float, level: float) -> str:
        where = f"the {self.top:.0%} of coordinates the last global update changed most"
        if math.isinf(value):
            sentence = f"its update left {where} untouched, where the round's median client put part of its own"
        else:
            sentence = f"its update put {value:.3g}× less of its squared size on {where} than the round's median client"
        return f"{sentence} (median over its rounds: {_fold(level)})"


def _fold(fold: float) -> str:
    """A fold for a sentence."""
    return "untouched" if math.isinf(fold) else f"{fold:.3g}× less"
