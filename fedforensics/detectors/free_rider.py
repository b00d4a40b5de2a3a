"""``free-rider``: updates that replay the server's last step instead of training."""

from __future__ import annotations

import math

import numpy as np

from ..stats import FLOAT32_RESOLUTION
from .accumulate import EVIDENCE_ROUNDS
from .global_step import LastStepDetector


def replay_closeness(sample: np.ndarray, step: np.ndarray) -> np.ndarray:
    """Per client (row of a clients × coordinates sample), how many times closer its update is to ``step`` (the
    server's last step, same coordinates) than a client's update usually is to its nearest other client's, in
    cosine distance: about 1 or less for an update trained on the client's data, far more for a replay of the last
    step; +inf for an exact replay, NaN for a client that sent nothing and for every client of a round whose
    server did not move or whose clients mostly sent one and the same update."""
    norms = np.linalg.norm(sample, axis=1)
    closeness = np.full(sample.shape[0], np.nan)
    length = float(np.linalg.norm(step))
    sent = norms > 0
    if not length > 0 or np.count_nonzero(sent) < 2:
        return closeness
    units = sample[sent] / norms[sent, None]
    between = 1.0 - units @ units.T
    np.fill_diagonal(between, np.inf)
    typical = float(np.median(between.min(axis=1)))
    if not typical > FLOAT32_RESOLUTION:  # most clients sent the same update: no scale to measure a replay against
        return closeness
    to_step = np.clip(1.0 - units @ (step / length), 0.0, None)
    with np.errstate(divide="ignore"):
        closeness[sent] = typical / to_step
    return closeness


class FreeRiderDetector(LastStepDetector):
    """How much closer a client's update is to the server's last step than clients' updates are to each other.

    A free rider takes the global model without training on data of its own and sends something that passes
    for an update. The *delta-weights* free rider (Lin et al., *Free-riders in federated learning: attacks
    and defenses*, 2019) sends the difference between the last two global models, the server's last step,
    and Fraboni et al. (*Free-rider attacks on model aggregation in federated learning*, AISTATS 2021)
    disguise it with noise. An update trained on a client's own data points where its data lead from the
    model it received; the last step is the previous round's aggregate, which the next round's updates
    follow only in part (the cosine of an honest update to it, median over a client's rounds, was at most
    0.90 over the cached federations; a replayer's 0.99-1.00). As a level of that cosine would need a
    threshold of its own for every kind of training (one small local step follows the last step closely),
    it is compared with how close the round's clients come to each other: per round, on up to
    ``coordinates`` evenly spaced coordinates, each client's cosine distance to the last step divided into
    the round's median distance from a client to its nearest other client. The run score is the median over
    the client's rounds (at least ``min_rounds``), a level like ``opposition``'s.

    A client holding far more data than the others makes most of the step it then follows (``large_data``:
    honest silos came up to 20.9 times closer, in IID federations of lognormal sample counts).

    Parameters
    ----------
    threshold
        Median closeness at which a client is flagged (the default: about twice the largest honest level of the
        cached federations, 20.9; the red teams' replayers, with 10 % noise, 61-157).
    min_clients
        Rounds with fewer clients are not scored (two give no nearest-neighbour scale).
    min_rounds
        Rounds a client must have been scored in before its median counts.
    coordinates
        Coordinates of the model sampled (at most; evenly spaced over its layers).
    """

    name = "free-rider"
    reference = (
        "Lin et al. 2019, Free-riders in federated learning: attacks and defenses (arXiv:1911.12560); Fraboni et "
        "al. 2021, Free-rider attacks on model aggregation in federated learning (AISTATS)"
    )
    summary = "update that replays the server's last step instead of training"
    family = "collusion"
    large_data = True

    def __init__(
        self, *, threshold: float = 40.0, min_clients: int = 4, min_rounds: int = EVIDENCE_ROUNDS, coordinates: int = 8192
    ) -> None:
        self.threshold = threshold
        self.min_clients = min_clients
        self.min_rounds = min_rounds
        self.coordinates = coordinates

    def compare(self, sample: np.ndarray, step: np.ndarray) -> np.ndarray:
        return replay_closeness(sample, step)

    def evidence_detail(self, r: int, value: float, level: float) -> str:
        if math.isinf(value):
            return f"its update was the server's last step itself: a replay, not training (median over its rounds {level:.3g}×)"
        return (
            f"its update was {value:.3g}× closer to the server's last step than a client's usually is to its nearest "
            f"other client: a replay, not training (median over its rounds {level:.3g}×)"
        )
