"""``opposition``: updates that push against what the clients agree on, in the layer where they agree most."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..output_layer import find_output_layer
from ..run import Run
from ..stats import column_median
from .accumulate import EVIDENCE_ROUNDS
from .level import LevelDetector
from .round_data import RoundData


def consensus_push(sample: np.ndarray) -> tuple[float, np.ndarray]:
    """For a clients × coordinates sample of one layer: how far beyond chance the clients agree there (their
    median cosine to the coordinate-wise median, times the square root of the coordinates), and each client's
    push along that median, ``−(u · m) / median |u · m|``: −1 for a typical client, +1 for one reversed."""
    sample = sample.astype(np.float64)
    median = column_median(sample)
    push = sample @ median
    with np.errstate(invalid="ignore", divide="ignore"):
        cosine = push / (np.linalg.norm(sample, axis=1) * np.linalg.norm(median))
        typical = float(np.median(np.abs(push)))
    if not typical > 0:
        return -math.inf, np.full(len(sample), np.nan)
    agreement = float(np.median(np.nan_to_num(cosine, nan=0.0))) * math.sqrt(sample.shape[1])
    return agreement, -push / typical


#: The median cosine that lets a round through on a consensus layer too small to show ``min_agreement`` × its
#: scale (a cosine is at most 1: a layer of 6 coordinates never showed 2.5; review).
SMALL_LAYER_COSINE = 0.5


def medians_of_the_others(sample: np.ndarray) -> np.ndarray:
    """Row ``i``: the coordinate-wise median of every row of ``sample`` (clients × coordinates, at least 2 rows) but
    row ``i`` — each client's reference free of its own share — from one sort of the columns: without its own value,
    a client's column's middle ranks are those of the whole column shifted past its rank."""
    n = len(sample)
    order = np.argsort(sample, axis=0)
    ordered = np.take_along_axis(sample, order, axis=0)
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(n)[:, None], axis=0)  # rank[i, j]: where sample[i, j] sorts in column j
    low, high = (n - 2) // 2, (n - 1) // 2  # the middle ranks among n - 1 values (one when n - 1 is odd)
    # among the others, rank r is the column's rank r below the client's own value and r + 1 from it on
    middle = [np.where(rank > r, ordered[r], ordered[r + 1]) for r in dict.fromkeys((low, high))]
    return (middle[0] + middle[-1]) / 2


def others_agreement(sample: np.ndarray) -> float:
    """How far beyond chance the clients of a clients × coordinates sample agree, free of each one's own share in the
    reference: the median over clients of the cosine between a client's row and the coordinate-wise median of the
    others (:func:`medians_of_the_others`), times the square root of the coordinates. For independent updates a
    client's cosine to the others' median is about 0 ± 1/√coordinates at any number of clients, so this is a z on
    the scale of one client. (A client's cosine to the median of all, itself included, is 0.26 for independent
    updates of 10 clients and 0.47 of 4; to the median of a fixed other half of the clients it fell to 0 where
    reversed updates sat in one half and cancelled its median: a review, one reversed client of 4 switched the
    detector off.)"""
    if len(sample) < 2:
        return math.nan
    sample = sample.astype(np.float64)
    others = medians_of_the_others(sample)
    with np.errstate(invalid="ignore", divide="ignore"):
        cosines = (sample * others).sum(axis=1) / (np.linalg.norm(sample, axis=1) * np.linalg.norm(others, axis=1))
    return float(np.median(np.nan_to_num(cosines, nan=0.0))) * math.sqrt(sample.shape[1])


class OppositionDetector(LevelDetector):
    """How hard each client pushes against the clients' consensus, in the layer where they agree most.

    Sign-flipping clients (Li et al., *RSA*, AAAI 2019) send their update reversed;
    inner-product manipulation (Xie et al., *Fall of empires*, UAI 2020) sends the honest
    mean times −ε (a push of about ε: at the paper's 0.5, under the threshold, and left to
    the other detectors); label flippers train the shared features against the others'. Under label skew a reversed update hides among honest ones in the whole
    update's direction: an honest client's update differs most in the output layer,
    where it pushes its own classes, and there a reversed one is as far from the others
    as it was before. In the layers the clients share, they agree, and a reversed
    update opposes them.

    Per round, on up to ``coordinates`` evenly spaced coordinates of each analysable
    layer *before* the output layer (``fedforensics.output_layer``: the last weight matrix
    or kernel and what follows it, or the one whose bias's updates sum to zero where the
    last one's do not; a model of vectors only has none, and all its layers count): the coordinate-wise
    median of the clients' updates (Yin et al., ICML 2018) and each client's cosine to
    it. The *consensus layer* is the
    one whose median cosine times the square root of its coordinates is highest
    (agreement beyond chance). A client's push there is ``−(u · m) / median |u · m|``:
    −1 for a typical honest client, +1 for a typical update reversed, near 0 for an
    update too small or too noisy to push either way (a client with a handful of
    samples). Its run score is the *median* over its rounds (at least ``min_rounds``):
    a level, not an accumulation, so that a difference repeated round after round does
    not grow into evidence, and the threshold keeps its meaning: the default flags a
    client that, in most of its rounds, pushed back at least 0.6 times as hard as a typical
    client pushed forward. A model with no layer before its output layer (softmax
    regression) is not scored: there is no shared layer to agree in.

    Parameters
    ----------
    threshold
        Run score at which a client is flagged.
    min_clients
        Rounds with fewer clients are not scored (a median of two is no reference).
    min_rounds
        Rounds a client must have been scored in before its median counts.
    coordinates
        Coordinates of each layer compared (at most; evenly spaced).
    min_agreement
        Rounds whose consensus layer the clients agree in less than this are not scored (:func:`others_agreement`:
        a typical client's cosine to the median of the other clients times √coordinates; a client's is about
        0 ± 1 for independent updates): with one class per client there is no consensus to push against. On a
        consensus layer of fewer than (2 · min_agreement)² coordinates, a median cosine of 0.5 is enough; -inf
        scores every round, inf none.
    """

    name = "opposition"
    reference = (
        "Li et al. 2019, RSA (AAAI): sign-flipping clients; Xie et al. 2020, Fall of empires (UAI): inner-product "
        "manipulation; Yin et al. 2018 (ICML): the coordinate-wise median as reference"
    )
    summary = "update pushing against the clients' consensus, in the layer where they agree most"
    family = "direction"
    bounds = {"min_agreement": (lambda v: not math.isnan(v), "must be a number (-inf scores every round, inf none)")}
    #: FedAvg moves the model toward a client with far more data; where its labels differ, the many small clients
    #: then pull back, and it pushes against their consensus, the harder the longer its update (red team 5: an honest
    #: silo of 23× the median count at 2.5× the threshold).
    large_data = True

    def __init__(
        self, *, threshold: float = 0.6, min_clients: int = 4, min_rounds: int = EVIDENCE_ROUNDS, coordinates: int = 1024,
        min_agreement: float = 2.5,
    ) -> None:
        self.threshold = threshold
        self.min_clients = min_clients
        self.min_rounds = min_rounds
        self.coordinates = coordinates
        self.min_agreement = min_agreement

    def start(self, run: Run) -> None:
        super().start(run)
        self._consensus: dict[int, str] = {}
        self._compared = 0  # rounds of at least min_clients clients, whose agreement was measured
        analysable = run.analysable_layers
        head = find_output_layer(run)  # a model of vectors only has none
        self._layers = [
            (layer.name, slice(0, layer.size, -(-layer.size // self.coordinates)))  # at most `coordinates` of them
            for layer in (head.layers_before(analysable) if head is not None else analysable)
            if layer.size >= 2
        ]

    def observe(self, data: RoundData) -> None:
        if len(data.clients) < self.min_clients or not self._layers:
            return
        self._compared += 1
        best, consensus, pushes, chosen = -math.inf, "", np.empty(0), np.empty(0)
        for name, columns in self._layers:
            sample = data.flat(name)[:, columns]
            agreement, push = consensus_push(sample)
            if agreement > best:
                best, consensus, pushes, chosen = agreement, name, push, sample
        if not best > 0:  # no layer where the clients lean the same way (all updates zero: none at all)
            return
        # a cosine is at most 1: on a layer of a few coordinates, a median cosine of SMALL_LAYER_COSINE is enough
        # (inf stays the gate that lets no round through)
        required = self.min_agreement
        if math.isfinite(required):
            required = min(required, SMALL_LAYER_COSINE * math.sqrt(chosen.shape[1]))
        if others_agreement(chosen) >= required:
            self._consensus[data.round] = consensus
            self.record(data, pushes)

    def evidence_layer(self, r: int) -> str | None:
        return self._consensus[r]

    def evidence_detail(self, cid: str, r: int, value: float, level: float) -> str:
        return (
            f"its update pushed against the clients' consensus in {self._consensus[r]}: {value:.2f}× as hard as a "
            f"typical client pushed forward (median over its rounds {level:.2f})"
        )

    def outcome(self) -> dict[str, Any]:
        if not self._layers:
            return {"applicable": False, "note": "the model has no analysable layer before its output layer: nothing shared to agree in"}
        layers: dict[str, int] = {}
        for name in self._consensus.values():
            layers[name] = layers.get(name, 0) + 1
        outcome: dict[str, Any] = {"extras": {"consensus_layers": layers}}
        if len(self._consensus) < self.min_rounds <= self._compared:  # the gate left no client enough rounds: say so
            outcome["applicable"] = False
            if self.min_agreement == math.inf:
                outcome["note"] = "min_agreement=inf scores no round"
            else:
                outcome["note"] = (
                    f"no client could be scored: the clients agreed in a layer (min_agreement={self.min_agreement:g}) "
                    f"in {len(self._consensus)} of the {self._compared} rounds compared, fewer than the "
                    f"{self.min_rounds} a client is scored over (updates of clients holding different classes, or noise "
                    "as large as the updates under differential privacy, leave no consensus to push against)"
                )
        return outcome
