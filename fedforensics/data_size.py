"""How much of an update's size its client's data explain: magnitudes rescaled to the round's median sample count.

With a fixed number of local epochs a client with k times the data takes k times
the SGD steps, and its update grows with them: over the cached federations whose
clients hold unequal shards, the honest clients' update norm grows as
``count ** b`` with a per-run median ``b`` of 0.42 (middle half 0.33–0.53). A
statistic of magnitude compared across a round's clients then ranks the largest
sites first whatever they did (docs/detection.md, "Quantity skew").

The exponent is not assumed but estimated from the round itself, by Theil–Sen
(Theil 1950; Sen 1968: the median of the pairwise slopes of log magnitude on log
count), which a minority of clients cannot move, and bounded to [0, 1]: more
steps never shorten an update, nor lengthen it more than in proportion. It is
estimated only where the counts themselves differ — more than half the clients
of a round away from its median count — so that one client, an attacker
claiming a large count among equal shards, cannot make the slope alone.
"""

from __future__ import annotations

import numpy as np

#: Counts within this factor of each other give no slope (their log-difference is mostly noise).
MIN_RATIO = 1.25
#: Pairs of clients a slope is estimated from at most (a round of 65 clients has 2,080).
MAX_PAIRS = 2048
#: Exponent bounds: more SGD steps never shorten an update, nor lengthen it more than in proportion.
EXPONENT_RANGE = (0.0, 1.0)


def counts_differ(num_samples: np.ndarray) -> bool:
    """Whether more than half of a round's clients report a count at least :data:`MIN_RATIO` from the median's."""
    counts = np.asarray(num_samples, dtype=np.float64)
    if counts.size < 3 or not (counts > 0).all():
        return False
    logs = np.log(counts)
    away = np.abs(logs - np.median(logs)) >= np.log(MIN_RATIO)
    return bool(away.sum() * 2 > counts.size)


def count_exponents(values: np.ndarray, num_samples: np.ndarray) -> np.ndarray:
    """Per row of ``values`` (statistics × clients, magnitudes ≥ 0), its Theil–Sen exponent on the clients' counts.

    Pairs of clients whose counts are within :data:`MIN_RATIO` of each other, or whose magnitude is zero or not
    finite, give no slope; a row without any slope gets 0.
    """
    values = np.atleast_2d(np.asarray(values, dtype=np.float64))
    logs = np.log(np.asarray(num_samples, dtype=np.float64))
    i, j = np.triu_indices(logs.size, 1)
    step = logs[j] - logs[i]
    apart = np.abs(step) >= np.log(MIN_RATIO)
    i, j, step = i[apart], j[apart], step[apart]
    if not step.size:
        return np.zeros(values.shape[0])
    if step.size > MAX_PAIRS:  # a fixed sample of the pairs: their median slope estimates the same exponent
        keep = np.sort(np.random.default_rng(0).choice(step.size, MAX_PAIRS, replace=False))
        i, j, step = i[keep], j[keep], step[keep]
    with np.errstate(divide="ignore", invalid="ignore"):
        magnitude = np.log(values)
        slopes = (magnitude[:, j] - magnitude[:, i]) / step
    finite = np.isfinite(slopes)
    if finite.all():
        exponents = np.median(slopes, axis=1)
    else:
        slopes[~finite] = np.nan
        exponents = np.zeros(values.shape[0])
        has = finite.any(axis=1)
        exponents[has] = np.nanmedian(slopes[has], axis=1)
    return np.clip(exponents, *EXPONENT_RANGE)


def at_median_count(values: np.ndarray, num_samples: np.ndarray) -> np.ndarray:
    """``values`` (statistics × clients, magnitudes) as each client would have shown them with the round's median count.

    Each row is divided by ``(count / median count) ** b`` with its own exponent ``b`` (:func:`count_exponents`);
    returned unchanged where the counts do not differ (:func:`counts_differ`).
    """
    values = np.atleast_2d(np.asarray(values, dtype=np.float64))
    if not counts_differ(num_samples):
        return values
    logs = np.log(np.asarray(num_samples, dtype=np.float64))
    exponents = count_exponents(values, num_samples)
    return values * np.exp(-exponents[:, None] * (logs - np.median(logs))[None, :])
