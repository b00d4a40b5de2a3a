"""Robust statistics shared by the detectors.

Everything compares clients with the *median* and the median absolute deviation
(MAD), never the mean and standard deviation: a ×10 boosted update dominates a
mean, and "distance to the mean" then ranks it least suspicious (Rousseeuw &
Croux 1993; Hampel 1974 for the 1.4826 consistency constant).
"""

from __future__ import annotations

import numpy as np

#: Makes the MAD a consistent estimator of the standard deviation for normal data.
MAD_CONSISTENCY = 1.4826
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
    difference into a huge score. Non-finite values give NaN.
    """
    values = np.asarray(values, dtype=np.float64)
    out = np.full(values.shape, np.nan)
    finite = np.isfinite(values)
    if finite.sum() == 0:
        return out
    kept = values[finite]
    center = _median(kept)
    floor = max(abs_floor, rel_floor * _median(np.abs(kept)))
    out[finite] = (kept - center) / robust_scale(kept, floor)
    return out


def bonferroni_z(z: float, tests: int, *, two_sided: bool) -> float:
    """The z-score that keeps the same false-alarm rate after taking the maximum of ``tests`` z-scores.

    Converts ``z`` to a p-value, multiplies it by ``tests`` (Bonferroni) and
    converts back, so one threshold serves a detector with one statistic and
    one with a hundred (every class of an output layer, every layer slice).
    """
    if tests <= 1 or not np.isfinite(z):
        return z
    from scipy.stats import norm  # here, not at import: scipy.stats takes ~0.6 s to import, and inspect never needs it

    sides = 2.0 if two_sided else 1.0
    log_p = np.log(sides) + norm.logsf(z) + np.log(tests)
    if log_p >= np.log(sides) + np.log(0.5):
        return min(z, 0.0) if z < 0 else 0.0
    if z < 30:
        return float(norm.isf(np.exp(log_p) / sides))
    # far in the tail: z² ≈ −2 log p
    return float(np.sqrt(max(z * z - 2.0 * np.log(tests), 0.0)))


def cosine_from_gram(gram: np.ndarray) -> np.ndarray:
    """Pairwise cosine distances ``1 − cos`` from a matrix of dot products (a zero vector is at 1 from all)."""
    norms = np.sqrt(np.clip(np.diag(gram), 0.0, None))
    safe = np.where(norms > 0, norms, 1.0)
    cos = np.where(np.outer(norms, norms) > 0, gram / np.outer(safe, safe), 0.0)
    dist = 1.0 - np.clip(cos, -1.0, 1.0)
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

    ``None`` when one of the two classes is empty (the AUROC is undefined).
    """
    scores = np.asarray(scores, dtype=np.float64)
    positives = np.asarray(positives, dtype=bool)
    pos, neg = scores[positives], scores[~positives]
    if pos.size == 0 or neg.size == 0:
        return None
    pos = np.where(np.isfinite(pos), pos, -np.inf)
    neg = np.where(np.isfinite(neg), neg, -np.inf)
    greater = (pos[:, None] > neg[None, :]).sum()
    ties = (pos[:, None] == neg[None, :]).sum()
    return float((greater + 0.5 * ties) / (pos.size * neg.size))
