"""Robust statistics shared by the detectors.

Everything compares clients with the *median* and the median absolute deviation
(MAD), never the mean and standard deviation: a ×10 boosted update dominates a
mean, and "distance to the mean" then ranks it least suspicious (Rousseeuw &
Croux 1993; Hampel 1974 for the 1.4826 consistency constant).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

#: Makes the MAD a consistent estimator of the standard deviation for normal data.
MAD_CONSISTENCY = 1.4826

#: Cosine distances below float32's resolution are ties: updates recorded as float32 cannot tell them apart.
FLOAT32_RESOLUTION = float(np.finfo(np.float32).eps)
# Small-sample correction of the MAD (Croux & Rousseeuw 1992, Table 1): without it,
# a round of 5–10 clients underestimates the spread and inflates every z-score.
_SMALL_SAMPLE = {2: 1.196, 3: 1.495, 4: 1.363, 5: 1.206, 6: 1.200, 7: 1.140, 8: 1.129, 9: 1.107}


def mad_factor(n: int) -> float:
    """Factor that turns the MAD of ``n`` normal values into an unbiased estimate of their standard deviation."""
    return MAD_CONSISTENCY * (_SMALL_SAMPLE.get(n, n / (n - 0.8)) if n > 1 else 1.0)


def _median(values: np.ndarray) -> float:
    """``np.median`` of a non-empty 1-D float64 array without NaN, to the bit, at a tenth of its cost on a round's clients.

    (np.median's generic machinery costs ~20 µs a call; the detectors call it
    thousands of times on arrays of a few dozen values.)
    """
    ordered = np.sort(values)
    mid = ordered.size // 2
    if ordered.size % 2:
        return float(ordered[mid])
    return float((ordered[mid - 1] + ordered[mid]) / 2)  # np.median's mean of the two middle values


def column_median(matrix: np.ndarray) -> np.ndarray:
    """``np.median(matrix, axis=0)`` of a 2-D float array with at least one row, to the bit but for the sign of a
    median zero where 0.0 and -0.0 tie (NaN where a column holds one),
    at a third of its cost: one sort of the columns rather than np.median's partition about two middle ranks
    (1.6 ms against 0.55 ms for the 20 × 4,096 samples several detectors take every round)."""
    ordered = np.sort(matrix, axis=0)  # NaN sorts last
    rows = ordered.shape[0]
    mid = rows // 2
    median = ordered[mid] if rows % 2 else (ordered[mid - 1] + ordered[mid]) / 2
    median[np.isnan(ordered[-1])] = np.nan  # as np.median: a column with a NaN has a NaN median
    return median


def robust_scale(values: np.ndarray, floor: float = 0.0) -> float:
    """``1.4826 · MAD`` of the finite ``values`` (small-sample corrected), never below ``floor``."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return float("nan")
    mad = _median(np.abs(finite - _median(finite)))
    return max(mad_factor(finite.size) * mad, floor)


def robust_z(values: np.ndarray, *, rel_floor: float = 0.0, abs_floor: float = 1e-12) -> np.ndarray:
    """Robust z-scores ``(x − median) / (1.4826 · MAD)`` of a 1-D array.

    The scale is floored at ``rel_floor · median(|x|)`` and at ``abs_floor``, so
    that clients which are all nearly identical do not turn a negligible
    difference into a huge score. The median and scale are those of the finite values; NaN gives NaN (not
    reported), ±Inf gives ±Inf (infinitely far: a reported loss of Inf), as a value near float64's limit does.
    """
    values = np.asarray(values, dtype=np.float64)
    out = np.full(values.shape, np.nan)
    finite = np.isfinite(values)
    if finite.sum() == 0:
        return out
    kept = values[finite]
    with np.errstate(over="ignore"):  # a value near float64's limit (a metric of 1e308) is z ±Inf
        out[finite] = (kept - _median(kept)) / robust_spread(kept, rel_floor=rel_floor, abs_floor=abs_floor)
    infinite = np.isinf(values)
    out[infinite] = values[infinite]
    return out


def robust_spread(values: np.ndarray, *, rel_floor: float = 0.0, abs_floor: float = 1e-12) -> float:
    """The scale :func:`robust_z` divides by: ``1.4826 · MAD`` of the finite ``values``, floored at
    ``rel_floor · median(|x|)`` and at ``abs_floor``; NaN when none is finite."""
    values = np.asarray(values, dtype=np.float64)
    kept = values[np.isfinite(values)]
    if kept.size == 0:
        return float("nan")
    return robust_scale(kept, max(abs_floor, rel_floor * _median(np.abs(kept))))


#: One-sided tail probabilities at which :data:`ROBUST_Z_TAIL` gives the quantiles.
TAIL_PROBABILITIES = (1e-1, 3e-2, 1e-2, 3e-3, 1e-3, 3e-4, 1e-4, 3e-5, 1e-5)
#: For n clients, the |z| that one client's robust z exceeds with each probability of
#: :data:`TAIL_PROBABILITIES` under a Gaussian null (Monte Carlo, 4·10⁷ values per n:
#: benchmarks/robust_z_tail.py). Among 4 clients z ≥ 13 is as likely as z ≥ 5.7 among 10.
ROBUST_Z_TAIL: dict[int, tuple[float, ...]] = {
    3: (0.977, 3.910, 12.219, 41.221, 124.651, 416.396, 1246.462, 4038.821, 11628.21),
    4: (0.944, 2.093, 3.933, 7.471, 13.175, 24.337, 42.758, 79.110, 140.594),
    5: (1.172, 2.708, 5.096, 9.706, 17.147, 31.721, 55.396, 102.826, 176.068),
    6: (1.095, 2.165, 3.489, 5.555, 8.297, 12.708, 18.521, 27.856, 40.422),
    7: (1.208, 2.369, 3.820, 6.099, 9.112, 13.980, 20.534, 31.233, 45.096),
    8: (1.175, 2.142, 3.214, 4.714, 6.497, 9.107, 12.212, 16.639, 22.485),
    9: (1.225, 2.225, 3.337, 4.905, 6.768, 9.474, 12.743, 17.438, 23.079),
    10: (1.220, 2.124, 3.058, 4.283, 5.651, 7.513, 9.636, 12.538, 15.941),
}
#: The round size the thresholds were set on (docs/detectors.md), and the scale smaller rounds are moved to.
REFERENCE_CLIENTS = 10


def on_reference_scale(z: np.ndarray, n: int) -> np.ndarray:
    """Robust z-scores of a round of ``n`` clients, as the z of equal Gaussian-null tail probability among 10.

    A robust z's scale is a median of few deviations: among 5 clients |z| ≥ 5.1 is as likely
    (one-sided 1 %) as |z| ≥ 3.1 among 10, so a threshold set on 10-client rounds flags more
    honest clients in smaller ones. The tail probability of ``|z|`` is read off
    :data:`ROBUST_Z_TAIL` for ``n`` and turned back into a z through the row for 10
    (log-log interpolation; outside the table, the ratio at its nearest end). The result
    is never larger than ``|z|`` (the bulk of small rounds is a little narrower), keeps the
    sign, and is ``z`` itself for rounds of 10 or more clients, and of fewer than 3, which
    have no row (two values are always one scale apart).
    """
    z = np.asarray(z, dtype=np.float64)
    if n >= REFERENCE_CLIENTS or n not in ROBUST_Z_TAIL:
        return z
    source = np.log(ROBUST_Z_TAIL[n])
    target = np.log(ROBUST_Z_TAIL[REFERENCE_CLIENTS])
    size = np.abs(z)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_size = np.log(size)
        moved = np.interp(log_size, source, target)
        moved = np.where(log_size < source[0], log_size + (target[0] - source[0]), moved)
        moved = np.where(log_size > source[-1], log_size + (target[-1] - source[-1]), moved)
        return np.sign(z) * np.minimum(np.exp(moved), size)


def bonferroni_z(z: float, tests: float) -> float:
    """The z-score that keeps the same false-alarm rate after taking the maximum of ``tests`` z-scores.

    Converts ``z`` to a p-value, multiplies it by ``tests`` (Bonferroni) and
    converts back, so one threshold serves a detector with one statistic and
    one with a hundred (every class of an output layer, every layer slice).
    One- and two-sided tests give the same corrected z (the factor 2 of a
    two-sided p-value goes in and comes out again). A product of ½ or more is no
    evidence: there the z less the z at which the product reaches ½, 0 at that
    point and below it beneath, so that such clients keep the order of their
    statistics (they all scored 0, and tied in an evaluation's AUROC).
    :func:`bonferroni_zs` does many at once.
    """
    return float(bonferroni_zs(np.array([z], dtype=float), tests)[0])


def bonferroni_zs(z: np.ndarray, tests: np.ndarray | float) -> np.ndarray:
    """:func:`bonferroni_z` of every element of ``z``, any shape (``tests`` one count, or one per element), in a few array
    operations: a fleet's ten thousand clients took ten thousand scalar calls into scipy, 5 s of an analysis."""
    shape = np.shape(z)
    z = np.asarray(z, dtype=float).ravel()
    tests = np.broadcast_to(np.asarray(tests, dtype=float), shape).ravel()
    out = z.copy()
    todo = np.flatnonzero((tests > 1) & np.isfinite(z))  # one test, NaN or ±inf: unchanged
    if not todo.size:
        return out.reshape(shape)
    from scipy.stats import norm  # here, not at import: scipy.stats takes ~0.6 s to import, and inspect never needs it

    zt, count = z[todo], tests[todo]
    log_p = norm.logsf(zt) + np.log(count)
    plain = log_p >= np.log(0.5)  # the corrected p is no evidence: z less the z where it is ½ (continuous there)
    out[todo[plain]] = zt[plain] - norm.isf(0.5 / count[plain])
    near = ~plain & (zt < 30)
    out[todo[near]] = norm.isf(np.exp(log_p[near]))
    far = ~plain & ~near  # far in the tail: z² ≈ −2 log p
    out[todo[far]] = np.sqrt(np.maximum(zt[far] * zt[far] - 2.0 * np.log(count[far]), 0.0))
    return out.reshape(shape)


#: Elements of a cosine-distance matrix computed at a time (a band of rows): 32 MiB for each of a band's float64 temporaries.
COSINE_BLOCK = 1 << 22


def cosine_from_gram(gram: np.ndarray, overwrite: bool = False) -> np.ndarray:
    """Pairwise cosine distances ``1 − cos`` (float64) from a matrix of dot products (a zero vector is at 1 from all).

    Computed a band of rows at a time, so that a fleet's n × n matrix has no n × n
    temporaries beside it (ten thousand clients: 800 MB each, several at once before);
    with ``overwrite`` the distances replace ``gram`` itself (float64), for a caller
    that has no further use for it.
    """
    n = gram.shape[0]
    norms = np.sqrt(np.clip(np.diag(gram), 0.0, None))
    safe = np.where(norms > 0, norms, 1.0)
    dist = gram if overwrite and gram.dtype == np.float64 else np.empty((n, n))
    step = max(1, COSINE_BLOCK // max(n, 1))
    for start in range(0, n, step):
        rows = slice(start, start + step)
        cos = gram[rows] / (safe[rows, None] * safe[None, :])
        cos[~(norms[rows, None] * norms[None, :] > 0)] = 0.0
        np.clip(cos, -1.0, 1.0, out=cos)
        np.subtract(1.0, cos, out=dist[rows])
    np.fill_diagonal(dist, 0.0)
    return dist


def classical_mds(distances: np.ndarray, dims: int = 2) -> np.ndarray:
    """Classical multidimensional scaling (Torgerson 1952): points whose distances approximate ``distances``."""
    n = distances.shape[0]
    if n == 0:
        return np.zeros((0, dims))
    centering = np.eye(n) - np.ones((n, n)) / n
    gram = -0.5 * centering @ (distances**2) @ centering
    values, vectors = np.linalg.eigh(gram)
    order = np.argsort(values)[::-1][:dims]
    coords = vectors[:, order] * np.sqrt(np.clip(values[order], 0.0, None))
    if coords.shape[1] < dims:
        coords = np.pad(coords, ((0, 0), (0, dims - coords.shape[1])))
    return coords


def auroc(scores: np.ndarray, positives: np.ndarray) -> float | None:
    """Area under the ROC curve of ``scores`` for boolean labels ``positives`` (ties count half).

    A NaN (missing) score ranks lowest, tied with −∞; +∞ ranks highest (``avoidance``'s score of a client that
    leaves every compared coordinate alone: its strongest evidence, which ranked lowest until a review).
    ``None`` when one of the two classes is empty (the AUROC is undefined).
    """
    scores = np.asarray(scores, dtype=np.float64)
    positives = np.asarray(positives, dtype=bool)
    pos, neg = scores[positives], scores[~positives]
    if pos.size == 0 or neg.size == 0:
        return None
    pos = np.where(np.isnan(pos), -np.inf, pos)
    neg = np.where(np.isnan(neg), -np.inf, neg)
    greater = (pos[:, None] > neg[None, :]).sum()
    ties = (pos[:, None] == neg[None, :]).sum()
    return float((greater + 0.5 * ties) / (pos.size * neg.size))


def in_most_rounds(counted: Mapping[str, int], participation: Mapping[str, Sequence[int]]) -> set[str]:
    """The clients ``counted`` in more than half of the rounds they took part in (``participation``)."""
    return {cid for cid, rounds in counted.items() if rounds > len(participation[cid]) / 2}
