"""EPSI and Lazy-EPSI: convergence on known spectra, honest non-convergence."""
import dataclasses
import pathlib
import re
import sys

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.linalg import aslinearoperator

from randla.eig import epsi, lazy_epsi
from randla.eig._epsi import _sweeps_left

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from _matrices import (SPECTRA, known_eig, known_svd, one_blas_thread,  # noqa: E402,F401
                       sin_angle)

M, N, K = 300, 120, 6


def true_residuals(A, V, values, hermitian):
    """‖M v_j − θ_j v_j‖ / θ_1 computed from scratch."""
    if hermitian:
        MV, theta = A @ V, values
    else:
        MV, theta = A.T @ (A @ V), values ** 2
    return np.linalg.norm(MV - V * theta, axis=0) / theta[0]


@pytest.mark.parametrize("name", ["poly1", "poly05", "exp"])
def test_lazy_epsi_singular_vectors_converge(name):
    A, U, s, V = known_svd(M, N, SPECTRA[name](N), seed=1)
    res = lazy_epsi(A, K, tol=1e-10, rng=0)
    assert res.converged.all() and res.residuals.max() <= 1e-10
    np.testing.assert_allclose(res.residuals, true_residuals(A, res.vectors, res.values, False),
                               rtol=1e-3, atol=1e-15)
    np.testing.assert_allclose(res.values, s[:K], rtol=1e-10)
    # Residual r and gap g bound the angle by about r/g (Davis–Kahan).
    assert sin_angle(res.vectors, V[:, :K]) < 1e-7
    assert sin_angle(res.left_vectors, U[:, :K]) < 1e-7
    assert res.vectors.shape == (N, K) and res.left_vectors.shape == (M, K)
    # Every sweep costs exactly two passes of K vectors.
    assert res.sweeps >= 1


@pytest.mark.parametrize("name", ["poly1", "exp"])
def test_lazy_epsi_hermitian_with_nystrom_converges(name):
    A, Q, lam = known_eig(N, SPECTRA[name](N), seed=2)
    res = lazy_epsi(A, K, hermitian=True, sketch_size=40, tol=1e-10, rng=0)
    assert res.converged.all()
    assert res.left_vectors is None
    np.testing.assert_allclose(res.values, lam[:K], rtol=1e-9)
    np.testing.assert_allclose(res.residuals, true_residuals(A, res.vectors, res.values, True),
                               rtol=1e-3, atol=1e-15)
    assert sin_angle(res.vectors, Q[:, :K]) < 1e-7


def test_epsi_single_vector():
    A, U, s, V = known_svd(M, N, SPECTRA["poly05"](N), seed=4)
    res = epsi(A, tol=1e-11, rng=3)
    assert res.converged[0] and res.values.shape == (1,)
    assert abs(res.values[0] - s[0]) <= 1e-10 * s[0]
    assert sin_angle(res.vectors, V[:, :1]) < 1e-8


def test_epsi_accepts_linear_operator():
    A, U, s, V = known_svd(M, N, SPECTRA["poly1"](N), seed=4)
    res = epsi(aslinearoperator(A), tol=1e-11, rng=3)
    assert res.converged[0] and abs(res.values[0] - s[0]) <= 1e-10 * s[0]


def test_lazy_epsi_beats_subspace_iteration_from_same_sketch():
    # Same start (a randomized SVD of width 40), same number of passes over A:
    # Lazy-EPSI sweeps against plain subspace iterations on the K start vectors.
    A, U, s, V = known_svd(M, N, SPECTRA["poly05"](N), seed=5)
    res = lazy_epsi(A, K, sketch_size=40, tol=1e-12, maxiter=6, rng=7)
    X = res_start = lazy_epsi(A, K, sketch_size=40, tol=1e-12, maxiter=0, rng=7).vectors
    assert res_start.shape == (N, K)
    for _ in range(res.sweeps):
        X = np.linalg.qr(A.T @ (A @ X))[0]
    theta = np.linalg.svd(A @ X, compute_uv=False)
    assert np.abs(res.values - s[:K]).max() < 1e-3 * np.abs(theta - s[:K]).max()


def test_nonconvergence_is_reported_when_sketch_makes_system_indefinite():
    # Start from random vectors with Â unshrunk (shrink=1): the Rayleigh quotients
    # are far below Â's top eigenvalues, so σ̂I − Â is indefinite, the guard fails
    # and the vectors take power steps instead; in 15 sweeps the last of them
    # does not converge, and the iteration must say so.
    A, U, s, V = known_svd(M, N, SPECTRA["poly1"](N), seed=6)
    start = np.random.default_rng(0).standard_normal((N, K))
    res = lazy_epsi(A, K, shrink=1.0, v0=start, tol=1e-10, maxiter=15, rng=0)
    assert not res.converged.all()
    assert res.fallbacks > 0
    # What it reports is the truth about the vectors it returns.
    # (to rounding: those that converged are at 1e-15)
    np.testing.assert_allclose(res.residuals, true_residuals(A, res.vectors, res.values, False),
                               rtol=1e-6, atol=1e-13)
    assert np.array_equal(res.converged, res.residuals <= 1e-10)


@pytest.mark.parametrize("seed", range(4))
def test_a_start_far_below_the_sketch_still_converges(seed):
    # v0 of random or constant columns: Rayleigh quotients far below Â's top
    # value fail the guard at every shrink; the power steps taken instead lift
    # them until EPSI's own steps take over (they were left as they were: no
    # progress, and epsi(v0=ones) stopped after 4 sweeps at 0.24 against 1)
    A, U, s, V = known_svd(M, N, SPECTRA["poly1"](N), seed=seed)
    v0 = np.random.default_rng(seed).standard_normal((N, 5))
    res = lazy_epsi(A, 5, v0=v0, tol=1e-10, rng=seed)
    assert res.converged.all() and res.fallbacks > 0
    np.testing.assert_allclose(res.values, s[:5], rtol=1e-10)
    single = epsi(A, v0=np.ones(N), rng=seed)
    assert single.converged.all()
    assert single.values[0] == pytest.approx(s[0], rel=1e-10)


def test_counts_are_exact():
    A = known_svd(M, N, SPECTRA["exp"](N), seed=8)[0]
    res = lazy_epsi(A, K, sketch_size=20, power_iters=1, tol=1e-8, rng=0)
    # Sketch: rsvd(20, q=1) = 4 passes with 20+20+22+22 vectors; start RR: 2 passes of K;
    # each sweep: 2 passes of K.
    assert res.passes == 4 + 2 + 2 * res.sweeps
    assert res.matvecs == 84 + 2 * K + 2 * K * res.sweeps
    # Hermitian: Nyström from orth(A G) is 2 passes of 20; start RR and each sweep: 1 of K.
    A, _, _ = known_eig(N, SPECTRA["poly1"](N), seed=2)
    res = lazy_epsi(A, K, hermitian=True, sketch_size=20, tol=1e-8, rng=0)
    assert res.passes == 2 + 1 + res.sweeps
    assert res.matvecs == 40 + K + K * res.sweeps


@pytest.mark.parametrize("kind", ["sparse", "float32"])
def test_input_kinds(kind):
    A, U, s, V = known_svd(M, N, SPECTRA["exp"](N), seed=9)
    if kind == "sparse":
        res = lazy_epsi(sp.csr_array(A), K, tol=1e-10, rng=0)
        np.testing.assert_allclose(res.values, s[:K], rtol=1e-10)
    else:
        res = lazy_epsi(A.astype(np.float32), K, tol=1e-5, rng=0)
        assert res.values.dtype == res.vectors.dtype == np.float32
        np.testing.assert_allclose(res.values, s[:K], rtol=1e-5)


def test_reproducible_and_frozen():
    A = known_svd(M, N, SPECTRA["poly1"](N), seed=1)[0]
    a, b = lazy_epsi(A, K, rng=3), lazy_epsi(A, K, rng=3)
    assert np.array_equal(a.vectors, b.vectors) and a.sweeps == b.sweeps
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.sweeps = 0


@pytest.mark.parametrize("kwargs, error", [
    (dict(k=0), ValueError), (dict(k=N), ValueError), (dict(k=K, tol=0), ValueError),
    (dict(k=K, shrink=1.5), ValueError), (dict(k=K, sketch_size=K), ValueError),
    (dict(k=K, maxiter=-1), ValueError), (dict(k=K, v0=np.ones((N, K + 1))), ValueError),
    (dict(k=K, hermitian=True), ValueError), (dict(k=2.0), TypeError), (dict(k="2"), TypeError),
    (dict(k=K, hermitian="yes"), TypeError), (dict(k=K, shrink=True), ValueError),
    (dict(k=K, tol=True), ValueError),
])
def test_bad_arguments(kwargs, error):
    A = known_svd(M, N, SPECTRA["poly1"](N), seed=1)[0]
    with pytest.raises(error):
        lazy_epsi(A, **kwargs)


def test_epsi_checks_its_sketch_size_and_tol():
    A = known_svd(M, N, SPECTRA["poly1"](N), seed=1)[0]
    with pytest.raises(TypeError, match="sketch_size must be an integer"):
        epsi(A, sketch_size="20", rng=0)
    with pytest.raises(ValueError, match="sketch_size must be an integer >= 2"):
        epsi(A, sketch_size=1, rng=0)
    with pytest.raises(ValueError, match="tol"):       # True is not a tolerance
        epsi(A, tol=True, rng=0)
    # None is the default width, as in lazy_epsi
    default = epsi(A, rng=0)
    np.testing.assert_array_equal(epsi(A, sketch_size=None, rng=0).vectors, default.vectors)


def test_slow_start_still_converges():
    # the contraction improves after a slow start (0.96 per sweep at sweep 6,
    # 0.84 later): lazy_epsi never gives up on a prediction
    A = known_svd(2000, 300, SPECTRA["poly05"](300), seed=1)[0]
    res = lazy_epsi(A, 10, sketch_size=12, tol=1e-12, maxiter=150, rng=0)
    assert res.converged.all()


def test_float32_default_tol_is_reachable():
    # float32 residuals stall at a few units of roundoff, far above 1e-10: the default
    # tol is 100 units there, while an explicit tol keeps its meaning.
    A = known_svd(M, N, SPECTRA["poly05"](N), seed=9)[0].astype(np.float32)
    res = lazy_epsi(A, K, rng=0)
    assert res.converged.all() and res.residuals.max() <= 100 * np.finfo(np.float32).eps
    np.testing.assert_allclose(res.residuals,
                               true_residuals(A.astype(np.float64), res.vectors, res.values,
                                              False), rtol=0.1, atol=1e-6)
    assert epsi(A, rng=0).converged[0]
    strict = lazy_epsi(A, K, tol=1e-10, rng=0)
    # stopped at the rounding floor by the stall rule, long before maxiter
    assert not strict.converged.any() and strict.sweeps < 50


def test_hermitian_default_sketch_converges_on_slow_decay():
    # 0.9^i with the default sketch of 12: from plain Nyström the residual rose for
    # four sweeps and the iteration stopped after six, 0.05 off the top eigenvalue.
    # One subspace iteration on the Nyström test matrix converges in about 30.
    A, Q, lam = known_eig(100, 0.9 ** np.arange(100), seed=3)
    res = lazy_epsi(A, 1, hermitian=True, rng=1)
    assert res.converged.all() and res.sweeps < 50
    assert abs(res.values[0] - 1.0) <= 1e-12
    np.testing.assert_allclose(res.residuals, true_residuals(A, res.vectors, res.values, True),
                               rtol=1e-3, atol=1e-15)


def test_stall_rule_counts_progress_of_the_ritz_values():
    # Without the power iteration this start leaves a residual that rises for four
    # sweeps while the Ritz value still improves: the iteration must go on.
    A, Q, lam = known_eig(80, 0.9 ** np.arange(80), seed=3)
    res = lazy_epsi(A, 1, hermitian=True, power_iters=0, maxiter=100, rng=9)
    assert res.converged.all()
    np.testing.assert_allclose(res.residuals, true_residuals(A, res.vectors, res.values, True),
                               rtol=1e-3, atol=1e-15)
    # The rule itself, on the largest residuals and Ritz values of six sweeps of the
    # n = 300 run of the review: no residual 10 % below 0.040 in the last four sweeps,
    # but the value rose by far more than tol; at a rounding floor neither moves.
    residuals = [0.111, 0.055, 0.040, 0.042, 0.051, 0.061, 0.066]
    sums = list(1 - np.array([0.123, 0.104, 0.097, 0.090, 0.082, 0.069, 0.051]))
    assert _sweeps_left(residuals, sums, 50, 1e-10)
    assert not _sweeps_left(residuals, sums[:3] + [sums[2]] * 4, 50, 1e-10)
    assert not _sweeps_left(residuals, sums, 6, 1e-10)
    floor = [1e-13, 2e-13, 1.5e-13, 1.2e-13, 1.1e-13]
    assert not _sweeps_left(floor, [1.0, 1.0, 1.0 + 2e-16, 1.0, 1.0 - 2e-16], 50, 1e-10)


@pytest.mark.parametrize("v0, error, message", [
    (np.full(40, np.nan), ValueError, "v0 must be finite"),
    (np.zeros(40), ValueError, "linearly independent"),
    (np.ones(40) + 1j, TypeError, "real numbers"),
])
def test_epsi_refuses_a_start_vector_it_cannot_use(v0, error, message):
    # a NaN v0 gave values [nan] and an all-zero one was accepted
    A = np.random.default_rng(0).standard_normal((60, 40))
    with pytest.raises(error, match=message):
        epsi(A, v0=v0)


def test_lazy_epsi_refuses_dependent_start_columns():
    A = np.random.default_rng(0).standard_normal((60, 40))
    V = np.random.default_rng(1).standard_normal((40, 3))
    assert np.allclose(lazy_epsi(A, 3, v0=V, rng=0).values,
                       np.linalg.svd(A, compute_uv=False)[:3], rtol=1e-10)
    V[:, 2] = V[:, 0]
    with pytest.raises(ValueError, match="linearly independent"):
        lazy_epsi(A, 3, v0=V, rng=0)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_a_is_a_value_error(bad):
    A = np.random.default_rng(0).standard_normal((60, 40))
    A[5, 7] = bad
    for call in (lambda: epsi(A, rng=0), lambda: lazy_epsi(A, 3, rng=0),
                 lambda: lazy_epsi(A[:40] + A[:40].T, 3, hermitian=True, rng=0)):
        with pytest.raises(ValueError, match="A has non-finite entries"):
            call()


def test_start_columns_of_very_different_sizes_are_independent():
    A = np.random.default_rng(0).standard_normal((60, 40))
    V = np.random.default_rng(1).standard_normal((40, 3))
    V[:, 1] *= 1e-20
    assert np.allclose(lazy_epsi(A, 3, v0=V, rng=0).values,
                       np.linalg.svd(A, compute_uv=False)[:3], rtol=1e-10)
    assert epsi(A, v0=np.full(40, 1.7e308), rng=0).values[0] == pytest.approx(
        np.linalg.norm(A, 2), rel=1e-10)


def test_epsi_of_a_single_column_names_the_shape_not_k():
    with pytest.raises(ValueError, match="min\\(A.shape\\) >= 2"):
        epsi(np.ones((5, 1)))


@pytest.mark.parametrize("hermitian, columns", [(False, [1]), (False, [1, 2, 3]), (True, [2, 3])])
def test_a_start_of_lower_eigenvectors_is_not_reported_converged(hermitian, columns):
    # such a v0 is a fixed point (residual 0 at sweep 0); Â ≼ M shows its
    # values are not M's top ones (sigma_2 came back as the top, converged)
    rng = np.random.default_rng(0)
    U, _ = np.linalg.qr(rng.standard_normal((100, 60)))
    V, _ = np.linalg.qr(rng.standard_normal((60, 60)))
    A = (U * (1 / np.arange(1, 61))) @ V.T
    M = A.T @ A if hermitian else A
    v0 = V[:, columns]
    res = (epsi(M, hermitian=hermitian, v0=v0[:, 0], rng=0) if len(columns) == 1
           else lazy_epsi(M, len(columns), hermitian=hermitian, v0=v0, rng=0))
    assert not res.converged.any()
    # the same start with the top vectors converges, as does the sketch's own start
    top = lazy_epsi(M, len(columns), hermitian=hermitian, v0=V[:, :len(columns)], rng=0)
    assert top.converged.all()


@pytest.mark.parametrize("shape", [(2, 30), (39,), (60, 2)])
def test_epsi_v0_of_another_shape_is_refused(shape):
    # any array with n entries was taken (a 2 x 30 one for n = 60), and a
    # wrong length was reported as its reshaped (39, 1)
    A = np.random.default_rng(0).standard_normal((80, 60))
    with pytest.raises(ValueError, match=re.escape(f"v0 must have shape (60,), got {shape}")):
        epsi(A, v0=np.ones(shape), rng=0)
    assert epsi(A, v0=np.ones((60, 1)), rng=0).values.shape == (1,)
