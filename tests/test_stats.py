"""fedforensics.stats: the small-round scale of robust z-scores (on_reference_scale) and the column median."""

from __future__ import annotations

import numpy as np
import pytest

from fedforensics.stats import (
    REFERENCE_CLIENTS,
    ROBUST_Z_TAIL,
    TAIL_PROBABILITIES,
    column_median,
    on_reference_scale,
    robust_z,
)


def _round_z(n: int, rows: int, seed: int) -> np.ndarray:
    """Every client's robust z in ``rows`` rounds of ``n`` Gaussian clients."""
    rng = np.random.default_rng(seed)
    return np.concatenate([robust_z(row) for row in rng.standard_normal((rows, n))])


@pytest.mark.parametrize("n", [4, 5, 6, 8])
def test_a_small_rounds_z_reaches_the_10_client_quantiles_as_often_as_10_clients_do(n):
    """Fresh Gaussian rounds, not the table's draws: after the move, |z| exceeds the 10-client
    1 % and 0.1 % quantiles about 2 % and 0.2 % of the time (two-sided); the raw z far more often."""
    z = _round_z(n, 40_000, seed=n)
    moved = np.abs(on_reference_scale(z, n))
    reference = dict(zip(TAIL_PROBABILITIES, ROBUST_Z_TAIL[REFERENCE_CLIENTS]))
    for p, tolerance in ((1e-2, 0.15), (1e-3, 0.35)):
        share = float(np.mean(moved >= reference[p]))
        assert abs(share / (2 * p) - 1) < tolerance, (n, p, share)
    assert np.mean(np.abs(z) >= reference[1e-3]) > 1.4 * 2e-3  # why the move exists


def test_rounds_of_ten_or_more_and_of_two_are_left_alone():
    z = np.array([-7.0, -1.0, 0.0, 0.5, 3.0, 40.0])
    for n in (2, 10, 11, 50):
        assert np.array_equal(on_reference_scale(z, n), z)


@pytest.mark.parametrize("n", sorted(set(ROBUST_Z_TAIL) - {REFERENCE_CLIENTS}))
def test_the_move_is_monotone_keeps_the_sign_and_never_enlarges(n):
    z = np.concatenate([-np.geomspace(1e-3, 1e6, 400)[::-1], [0.0], np.geomspace(1e-3, 1e6, 400)])
    moved = on_reference_scale(z, n)
    assert np.all(np.diff(moved) >= 0)
    assert np.array_equal(np.sign(moved), np.sign(z))
    assert np.all(np.abs(moved) <= np.abs(z))
    assert np.isnan(on_reference_scale(np.array([np.nan]), n)).all()


@pytest.mark.parametrize("rows", [1, 2, 3, 4, 5, 20, 21])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_column_median_is_numpys_median_to_the_bit_with_nan_and_inf(rows, dtype):
    rng = np.random.default_rng(rows)
    matrix = rng.standard_normal((rows, 300)).astype(dtype)
    matrix[0, 3] = np.nan
    matrix[rows - 1, 7] = np.inf
    matrix[rows // 2, 9] = -np.inf
    matrix[:, 11] = 2.5  # ties
    expected = np.median(matrix, axis=0)
    got = column_median(matrix)
    assert got.dtype == expected.dtype
    assert np.array_equal(got, expected, equal_nan=True)
    assert np.isnan(got[3])


def test_bonferroni_z_is_the_quantile_of_the_multiplied_p_value():
    """One threshold for a detector of one statistic and of a hundred: z of p becomes z of tests × p (a two-sided
    p-value's factor 2 goes in and out again, so one- and two-sided tests share it; review: a flag said otherwise)."""
    from scipy.stats import norm

    from fedforensics.stats import bonferroni_z

    for p in (1e-3, 1e-6, 1e-12):
        for tests in (2, 7, 150):
            assert bonferroni_z(float(norm.isf(p)), tests) == pytest.approx(norm.isf(tests * p), rel=1e-9)
    assert bonferroni_z(3.0, 1) == 3.0
    # no evidence (a product of ½ or more): the z less the z where the product is ½, so that such clients keep their
    # order (they all scored 0, and tied in an evaluation's AUROC); continuous where the product reaches ½
    half = float(norm.isf(0.5 / 7))
    assert bonferroni_z(0.5, 7) == pytest.approx(0.5 - half) and bonferroni_z(-2.0, 7) == pytest.approx(-2.0 - half)
    assert bonferroni_z(half - 1e-9, 7) == pytest.approx(0.0, abs=1e-6) == bonferroni_z(half + 1e-9, 7)
    assert bonferroni_z(-1.0, 7) < bonferroni_z(0.0, 7) < bonferroni_z(1.0, 7) < 0.0
    assert bonferroni_z(40.0, 150) == pytest.approx(float(np.sqrt(40.0**2 - 2 * np.log(150))))


def _scalar_bonferroni(z: float, tests: float) -> float:
    """The scalar formula bonferroni_z had before it was vectorized (session 32), branch by branch (with session 45's
    continuation below the point of no evidence)."""
    from scipy.stats import norm

    if tests <= 1 or not np.isfinite(z):
        return z
    log_p = norm.logsf(z) + np.log(tests)
    if log_p >= np.log(0.5):
        return float(z - norm.isf(0.5 / tests))
    if z < 30:
        return float(norm.isf(np.exp(log_p)))
    return float(np.sqrt(max(z * z - 2.0 * np.log(tests), 0.0)))


def test_bonferroni_zs_gives_every_element_the_scalar_formula_to_the_bit():
    """A fleet's 10,000 clients took 80,000 scalar calls into scipy (5 s); the array version must not move a score."""
    from fedforensics.stats import bonferroni_zs

    rng = np.random.default_rng(0)
    z = np.concatenate([rng.normal(0, 4, 500), [np.nan, np.inf, -np.inf, 0.0, 29.999, 30.0, 45.0, 1e6, -50.0]])
    tests = rng.integers(1, 200, z.size).astype(float)
    tests[:20] = 1.0
    expected = np.array([_scalar_bonferroni(float(a), float(t)) for a, t in zip(z, tests)])
    assert np.array_equal(bonferroni_zs(z, tests), expected, equal_nan=True)
    assert np.array_equal(bonferroni_zs(z, 7.0), [_scalar_bonferroni(float(a), 7.0) for a in z], equal_nan=True)
    grid = z[:500].reshape(20, 25)  # any shape (review: 0-d and 2-D inputs raised IndexError)
    assert np.array_equal(bonferroni_zs(grid, tests[:500].reshape(20, 25)), expected[:500].reshape(20, 25), equal_nan=True)
    assert bonferroni_zs(4.0, 5).shape == () and float(bonferroni_zs(4.0, 5)) == _scalar_bonferroni(4.0, 5)


def test_cosine_from_gram_in_bands_is_the_whole_matrix_formula_to_the_bit(monkeypatch):
    """The distances are computed a band of rows at a time (no n × n temporaries at fleet scale): the same
    numbers as the one-shot formula, zero vectors at distance 1, and ``overwrite`` reuses the Gram's memory."""
    import fedforensics.stats as stats

    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(37, 9))
    vectors[[4, 20]] = 0.0  # zero updates
    vectors[7] *= 1e-170  # a norm near float64's smallest: its own product underflows to 0
    gram = vectors @ vectors.T
    norms = np.sqrt(np.clip(np.diag(gram), 0.0, None))
    safe = np.where(norms > 0, norms, 1.0)
    expected = 1.0 - np.clip(np.where(np.outer(norms, norms) > 0, gram / np.outer(safe, safe), 0.0), -1.0, 1.0)
    np.fill_diagonal(expected, 0.0)
    monkeypatch.setattr(stats, "COSINE_BLOCK", 5 * 37)  # bands of 5 rows
    assert np.array_equal(stats.cosine_from_gram(gram), expected)
    assert (expected[4, np.arange(37) != 4] == 1.0).all()
    copy = gram.copy()
    out = stats.cosine_from_gram(copy, overwrite=True)
    assert out is copy and np.array_equal(out, expected)
    kept = gram.copy()
    stats.cosine_from_gram(kept)
    assert np.array_equal(kept, gram)  # without overwrite the Gram is left alone
    single = gram.astype(np.float32)  # float32 products: float64 distances, and the Gram left alone even with overwrite
    distances = stats.cosine_from_gram(single, overwrite=True)
    assert distances.dtype == np.float64 and distances is not single and np.array_equal(single, gram.astype(np.float32))


def test_the_mad_scale_has_its_small_sample_factor_and_its_floors():
    """Croux & Rousseeuw's correction from 2 values on; the floors of a spread of (nearly) equal values."""
    from fedforensics.stats import mad_factor, robust_scale, robust_spread

    assert mad_factor(2) == pytest.approx(1.4826 * 1.196) and mad_factor(1) == pytest.approx(1.4826)
    assert mad_factor(20) == pytest.approx(1.4826 * 20 / 19.2)
    assert robust_scale(np.ones(5), floor=0.5) == 0.5  # a MAD of 0 is floored
    assert robust_scale(np.array([0.0, 1.0, 2.0, 3.0, 4.0])) == pytest.approx(1.4826 * 1.206)
    # a MAD of 0 among values near 1: the relative floor (10 % of the median |x|), not the absolute one
    assert robust_spread(np.array([1.0, 1.0, 1.0, 1.001]), rel_floor=0.1) == pytest.approx(0.1)
    assert robust_spread(np.zeros(4)) == 1e-12
