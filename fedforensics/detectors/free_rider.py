"""``free-rider``: updates that replay the server's last step, or send the model back unchanged, instead of training."""

from __future__ import annotations

import math

import numpy as np

from ..run import Run
from ..stats import FLOAT32_RESOLUTION
from .accumulate import EVIDENCE_ROUNDS
from .global_step import LastStepDetector
from .round_data import RoundData


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


#: What a round in which a client sent the model back unchanged scores: 1.5 times the default threshold (40), so
#: that a client doing so in most of its rounds is flagged, but not ``strong`` on this alone: an honest client that
#: did not train sends the same (a straggler's reply returned unchanged, a shard smaller than one batch).
SENT_BACK = 60.0


def plain_free_rides(data: RoundData) -> np.ndarray:
    """Which clients of the round sent the model they were given back unchanged (an update of exactly zero: every
    layer's largest |Δ| is 0) while reporting samples, in a round where fewer than half the clients did (where
    half or more sent nothing, training itself stood still: no one client's doing)."""
    plain = ~data.moved & (np.asarray(data.num_samples) > 0)
    if not plain.any() or 2 * np.count_nonzero(~data.moved) >= len(data.clients):
        return np.zeros(len(data.clients), dtype=bool)
    for layer in data.layers:  # the norms come from a float32 Gram: a tiny update's square can round to 0
        plain &= data.max_abs(layer.name) == 0
    return plain


class FreeRiderDetector(LastStepDetector):
    """How much closer a client's update is to the server's last step than clients' updates are to each other;
    an update of exactly zero from a client that reports samples scores :data:`SENT_BACK`.

    A free rider takes the global model without training on data of its own and sends something that passes
    for an update. The *plain* free rider (Fraboni et al. 2021) sends the model it received back unchanged, an
    update of exactly zero, while its reported sample count gives it a share of the average: a fact, not a
    statistic, which scores :data:`SENT_BACK` that round. The *delta-weights* free rider (Lin et al.,
    *Free-riders in federated learning: attacks and defenses*, 2019) sends the difference between the last two
    global models, the server's last step, and Fraboni et al. (*Free-rider attacks on model aggregation in federated learning*, AISTATS 2021)
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
    summary = "update that replays the server's last step, or sends the model back unchanged, instead of training"
    family = "collusion"
    large_data = True

    def __init__(
        self, *, threshold: float = 40.0, min_clients: int = 4, min_rounds: int = EVIDENCE_ROUNDS, coordinates: int = 8192
    ) -> None:
        self.threshold = threshold
        self.min_clients = min_clients
        self.min_rounds = min_rounds
        self.coordinates = coordinates

    def start(self, run: Run) -> None:
        super().start(run)
        self._sent_back: set[tuple[int, str]] = set()  # (round, client): the model sent back unchanged

    def compare(self, data: RoundData, sample: np.ndarray, step: np.ndarray) -> np.ndarray:
        closeness = replay_closeness(sample, step)
        plain = plain_free_rides(data)
        closeness[plain] = SENT_BACK
        self._sent_back.update((data.round, data.clients[i]) for i in np.flatnonzero(plain))
        return closeness

    def evidence_detail(self, cid: str, r: int, value: float, level: float) -> str:
        if (r, cid) in self._sent_back:
            return (
                "it sent back the model it was given, unchanged (an update of exactly zero), while reporting samples: "
                f"a plain free rider's update, or a client that did not train (median over its rounds {level:.3g})"
            )
        if math.isinf(value):
            return f"its update was the server's last step itself: a replay, not training (median over its rounds {level:.3g}×)"
        return (
            f"its update was {value:.3g}× closer to the server's last step than a client's usually is to its nearest "
            f"other client: a replay, not training (median over its rounds {level:.3g}×)"
        )
