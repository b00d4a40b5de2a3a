"""A client's level over its rounds: the median of a per-round value, for detectors scored on their own scale.

Unlike the mean of robust z-scores (:mod:`.accumulate`), a median of the value itself does
not grow with the rounds: a difference repeated round after round stays the size it is, and
a threshold keeps its meaning (``opposition``'s push, ``avoidance``'s fold).
"""

from __future__ import annotations

import math

import numpy as np

from .round_table import RoundTable

Series = dict[str, list[tuple[int, float]]]


def client_series(table: RoundTable) -> Series:
    """Per client, its (round, value) pairs in round order, infinities kept and NaN left out."""
    series: Series = {}
    for r in sorted(table):
        for cid, value in table[r].items():
            if not math.isnan(value):
                series.setdefault(cid, []).append((r, value))
    return series


def levels(series: Series, min_rounds: int) -> dict[str, float]:
    """Per client scored in at least ``min_rounds`` rounds, the median of its values."""
    return {cid: float(np.median([v for _, v in values])) for cid, values in series.items() if len(values) >= min_rounds}


def first_at_level(values: list[tuple[int, float]], threshold: float, min_rounds: int) -> int | None:
    """The first round at which the median of the client's values so far (over ``min_rounds`` or more) reached
    ``threshold``."""
    for k in range(min_rounds, len(values) + 1):
        if np.median([v for _, v in values[:k]]) >= threshold:
            return values[k - 1][0]
    return None


def strongest_rounds(values: list[tuple[int, float]], count: int) -> list[tuple[int, float]]:
    """The ``count`` rounds of highest value, highest first."""
    return sorted(values, key=lambda rv: -rv[1])[:count]
