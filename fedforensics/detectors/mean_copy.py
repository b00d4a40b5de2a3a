"""``mean-copy``: clients whose update is the mean of the other clients' updates."""

from __future__ import annotations

import numpy as np

from .round_data import RoundData
from .statistic import RoundStatisticDetector


#: A squared norm this many times the round's median (a norm a thousand times it) carries the Gram's sums: subtracting
#: its own terms from them would cancel float64's digits, so the sums over the other clients are taken without them.
DWARFING = 1e6


def cosine_to_mean_of_others(gram: np.ndarray) -> np.ndarray:
    """For every client, the cosine between its update and the sum of the other clients' updates.

    From the round's Gram matrix alone: ``u_i · Σ_{k≠i} u_k`` is row ``i``'s sum less its diagonal,
    and ``‖Σ_{k≠i} u_k‖²`` the whole matrix's sum less twice row ``i``'s plus the diagonal. For a
    client whose update dwarfs the others' (:data:`DWARFING`) the subtraction would cancel the
    others' share (a ×1e8 update's cosine read 0.70 for 0.66, and NaN at ×1e9), so its sums are
    taken over the other clients' products directly. NaN where either vector is zero.
    """
    diagonal = np.diag(gram)
    rows = gram.sum(axis=1)
    dot = rows - diagonal
    others = gram.sum() - 2.0 * rows + diagonal
    big = diagonal > DWARFING * np.median(diagonal)
    if big.any():
        outside = (~big).astype(np.float64)  # products with this are sums over the others (no n × n copy: a fleet's)
        rows_big = gram[big]  # the dwarfing clients' rows: few
        cross = rows_big @ outside  # each dwarfing client's products with the others
        block = rows_big[:, big]
        among = block.sum(axis=1)  # and with the dwarfing ones, itself included
        # the dwarfing terms among themselves first, so that they never absorb the others' digits
        dot[big] = cross + (among - np.diag(block))
        rest = outside @ (gram @ outside)  # the others' products among themselves (a dwarfing term times 0 is 0)
        others[big] = rest + 2.0 * (cross.sum() - cross) + (block.sum() - 2.0 * among + np.diag(block))
    with np.errstate(invalid="ignore", divide="ignore"):
        cosine = dot / np.sqrt(diagonal * others)
    cosine[~np.isfinite(cosine)] = np.nan
    return np.clip(cosine, -1.0, 1.0)


class MeanCopyDetector(RoundStatisticDetector):
    """Cosine between each client's update and the mean of the other clients' updates, per round.

    An honest update is the mean direction plus the client's own data and SGD
    noise, so it points away from the others' mean by an angle every honest
    client shares. "A little is enough" (Baruch et al., NeurIPS 2019) sends the
    honest mean shifted by ``z`` standard deviations per coordinate, and ``z`` is
    0 when a single attacker among ten follows the paper's rule: its update *is*
    the mean, closer to it than any honest update can be, which no norm or
    distance from the others reveals and which ``sybil`` (a copy of one other
    client) does not look for. Robust z per round, one-sided (too close),
    accumulated over the run like the other per-round statistics.
    """

    name = "mean-copy"
    reference = "Baruch et al. 2019, A little is enough: circumventing defenses for distributed learning (NeurIPS)"
    summary = "update nearly the mean of the other clients' updates, round after round"
    family = "collusion"
    large_data = True
    side = "greater"
    abs_floor = 0.02

    def statistics(self, data: RoundData) -> dict[str, np.ndarray]:
        return {"cosine": cosine_to_mean_of_others(data.gram)}

    def explain(self, key: str) -> str:
        return "update closer to the mean of the other clients' than honest training leaves one (cosine)"
