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
claiming a large count among equal shards, cannot make the slope alone. Where
fewer differ, a few clients far below the median count among equal shards
(20–35 samples beside 75: one SGD step beside three) are lifted towards the
median by the same slope, but never past the round's median value
(:func:`small_counts_lifted`): their counts may excuse a short update, as a
fresh-eyes engineer's honest tiny clients needed, never make one long. And a
count beyond the others' spread is believed only up to Tukey's far-out fence on
the log counts (in a federation of 12 silos whose largest holds 69× the median, a
claim of 2⁶² samples counts as 489×). A client reporting no samples is compared as
it is, and takes no part in the slope.
"""

from __future__ import annotations

import warnings

import numpy as np

#: Counts within this factor of each other give no slope (their log-difference is mostly noise).
MIN_RATIO = 1.25
#: Pairs of clients a slope is estimated from at most (a round of 65 clients has 2,080).
MAX_PAIRS = 2048
#: Exponent bounds: more SGD steps never shorten an update, nor lengthen it more than in proportion.
EXPONENT_RANGE = (0.0, 1.0)
#: Tukey's fences: a log count beyond the quartiles by this many interquartile ranges is held at the fence.
FENCE = 3.0


def _log_counts(num_samples: np.ndarray) -> np.ndarray | None:
    """Each client's log count, NaN for a client that reports no samples; ``None`` where fewer than 3 report some."""
    counts = np.asarray(num_samples, dtype=np.float64)
    reported = counts > 0
    if reported.sum() < 3:
        return None
    logs = np.full(counts.shape, np.nan)
    logs[reported] = np.log(counts[reported])
    return logs


def count_offsets(num_samples: np.ndarray) -> np.ndarray | None:
    """Each client's log count minus the round's median log count, held within Tukey's fences; NaN for a client
    that reports no samples. ``None`` where the counts do not differ: fewer than 3 clients report samples, or no
    more than half of them are :data:`MIN_RATIO` or more away from the median."""
    logs = _log_counts(num_samples)
    if logs is None:
        return None
    reported = ~np.isnan(logs)
    q1, median, q3 = np.percentile(logs[reported], [25, 50, 75])
    spread = FENCE * (q3 - q1)
    offsets = np.clip(logs, q1 - spread, q3 + spread) - median
    away = np.abs(offsets[reported]) >= np.log(MIN_RATIO)
    return offsets if away.sum() * 2 > reported.sum() else None


def small_count_offsets(num_samples: np.ndarray) -> np.ndarray | None:
    """Where :func:`count_offsets` finds that the counts do not differ: each client's log count minus the round's
    median log count where it is :data:`MIN_RATIO` or more below it, else 0 (NaN for no samples); ``None`` where no
    client is that far below, or fewer than 3 clients report samples."""
    logs = _log_counts(num_samples)
    if logs is None:
        return None
    offsets = logs - np.nanmedian(logs)
    below = offsets <= -np.log(MIN_RATIO)  # False for NaN
    if not below.any():
        return None
    return np.where(below | np.isnan(offsets), offsets, 0.0)


def small_counts_lifted(values: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """``values`` (statistics × clients, magnitudes) with the clients below the median count (:func:`small_count_offsets`)
    lifted as :func:`at_median_count` lifts them, but never past the row's median value, nor lowered."""
    values = np.atleast_2d(np.asarray(values, dtype=np.float64))
    lifted = at_median_count(values, offsets)
    with warnings.catch_warnings():  # a row of no finite value has no median: nothing is lifted in it
        warnings.simplefilter("ignore", RuntimeWarning)
        ceiling = np.nanmedian(np.where(np.isfinite(values), values, np.nan), axis=1, keepdims=True)
    return np.fmax(values, np.fmin(lifted, ceiling))


def count_exponents(values: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Per row of ``values`` (statistics × clients, magnitudes ≥ 0), its Theil–Sen exponent on the clients' log-count
    ``offsets`` (:func:`count_offsets`).

    Pairs of clients whose counts are within :data:`MIN_RATIO` of each other, or whose magnitude is zero, negative
    or not finite, give no slope; a row without any slope gets 0. Beyond :data:`MAX_PAIRS` pairs, a fixed random
    sample of them is used (drawn without listing every pair of a large round).
    """
    values = np.atleast_2d(np.asarray(values, dtype=np.float64))
    n = offsets.size
    if n * (n - 1) // 2 <= MAX_PAIRS:
        i, j = np.triu_indices(n, 1)
    else:
        i, j = np.random.default_rng(0).integers(0, n, size=(2, 2 * MAX_PAIRS))
    with np.errstate(invalid="ignore"):
        step = offsets[j] - offsets[i]
        apart = np.abs(step) >= np.log(MIN_RATIO)  # False where a count is missing (NaN) or the pair is one client
    i, j, step = i[apart][:MAX_PAIRS], j[apart][:MAX_PAIRS], step[apart][:MAX_PAIRS]
    if not step.size:
        return np.zeros(values.shape[0])
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


def at_median_count(values: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """``values`` (statistics × clients, magnitudes) as each client would have shown them with the round's median
    count: each row divided by ``exp(b · offset)`` with its own exponent ``b`` (:func:`count_exponents`); a client
    without an offset (no samples reported) is left as it is."""
    values = np.atleast_2d(np.asarray(values, dtype=np.float64))
    exponents = count_exponents(values, offsets)
    return values * np.exp(-exponents[:, None] * np.nan_to_num(offsets)[None, :])


def majority_holder(clients: list[str], num_samples: np.ndarray) -> tuple[str, float] | None:
    """The client that carried more than half of a round's FedAvg weight (its reported sample count over the
    round's total), with its share; ``None`` when none did or the round has fewer than 3 clients (of two, one
    holds half or more whenever their counts differ)."""
    total = float(np.sum(num_samples, dtype=np.float64))  # int64 counts near 2**63 overflow an integer sum
    if len(clients) < 3 or total <= 0:
        return None
    top = int(np.argmax(num_samples))
    share = float(num_samples[top]) / total
    return (clients[top], share) if share > 0.5 else None


#: A client that reports this many times the round's median sample count trains that many times as many SGD steps.
LARGE_DATA = 2.0


def large_data_clients(clients: list[str], num_samples: np.ndarray, norms: np.ndarray) -> list[str]:
    """The clients of a round (of 3 or more) whose update its data could explain: a sample count at least
    :data:`LARGE_DATA` × the round's median, and an update at least as long as the median and no more times
    it than that.

    k times the SGD steps lengthen an update at most about k times (less, as the local model converges); an
    update longer than its data are large — a boosted one — is not explained by them, nor is one shorter than
    the median (more steps do not shorten an update: a copy of the others' mean, claiming a large count, is).
    """
    median = float(np.median(num_samples)) if len(clients) >= 3 else 0.0
    if median <= 0:
        return []
    typical = float(np.median(norms))
    return [
        cid for cid, n, norm in zip(clients, num_samples, norms)
        if n >= LARGE_DATA * median and typical <= norm <= n / median * typical
    ]
