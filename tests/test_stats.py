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
    assert bonferroni_z(3.0, 1) == 3.0 and bonferroni_z(0.5, 7) == 0.0 and bonferroni_z(-2.0, 7) == -2.0
    assert bonferroni_z(40.0, 150) == pytest.approx(float(np.sqrt(40.0**2 - 2 * np.log(150))))
