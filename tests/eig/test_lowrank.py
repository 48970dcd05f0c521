"""Range finder, QB, randomized SVD and Nyström on known-spectrum matrices."""
import dataclasses
import math
import pathlib
import sys
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.linalg import aslinearoperator

import randla
from randla.eig import nystrom, qb, randomized_svd, range_finder

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from _matrices import (one_blas_thread, SPECTRA, known_eig, known_svd,  # noqa: E402,F401
                       non_finite_identity)

M, N, K, P = 200, 100, 10, 10


@pytest.fixture(scope="module", params=sorted(SPECTRA))
def spectrum_matrix(request):
    s = SPECTRA[request.param](N)
    A, _, s, _ = known_svd(M, N, s, seed=3)
    return request.param, A, s


def hmt_deviation_bound(s, k, p, t=math.e, u=4.0):
    """Halko–Martinsson–Tropp (2011) Thm 10.7 with t = e, u = 4.

    ‖A − QQᵀA‖_F <= (1 + t√(3k/(p+1))) (Σ_{j>k} σ_j²)^½ + u t √(k+p)/(p+1) σ_{k+1}
    fails with probability at most 5 t^-p + 2 e^{-u²/2} (< 1e-3 for p = 10).
    """
    tail = math.sqrt(float(np.sum(s[k:] ** 2)))
    return (1 + t * math.sqrt(3 * k / (p + 1))) * tail + u * t * math.sqrt(k + p) / (p + 1) * s[k]


def test_qb_error_within_hmt_bound(spectrum_matrix):
    name, A, s = spectrum_matrix
    bound = hmt_deviation_bound(s, K, P)
    for seed in range(10):
        res = qb(A, K, oversample=P, rng=seed)
        assert np.linalg.norm(A - res.Q @ res.B) <= bound, (name, seed)


def test_randomized_svd_truncation_within_hmt_bound(spectrum_matrix):
    # ‖A − [QB]_k‖² = ‖A − QB‖² + ‖B − B_k‖², and ‖B − B_k‖_F <= tail, so the rank-k
    # error is at most sqrt(bound² + tail²).
    name, A, s = spectrum_matrix
    tail = math.sqrt(float(np.sum(s[K:] ** 2)))
    bound = math.sqrt(hmt_deviation_bound(s, K, P) ** 2 + tail ** 2)
    for seed in range(10):
        res = randomized_svd(A, K, oversample=P, power_iters=0, rng=seed)
        assert np.linalg.norm(A - (res.U * res.s) @ res.Vt) <= bound, (name, seed)
        assert res.U.shape == (M, K) and res.s.shape == (K,) and res.Vt.shape == (K, N)


@pytest.mark.parametrize("power_iters, method", [(0, "subspace"), (2, "subspace"),
                                                 (1, "krylov")])
def test_error_estimate_covers_true_error(spectrum_matrix, power_iters, method):
    name, A, s = spectrum_matrix
    trials, covered, ratios = 50, 0, []
    for seed in range(trials):
        res = randomized_svd(A, K, power_iters=power_iters, method=method, rng=seed)
        true = np.linalg.norm(A - (res.U * res.s) @ res.Vt)
        covered += res.error_estimate >= true
        ratios.append(res.error_estimate / true)
    assert covered >= 0.95 * trials, (name, covered)
    # It errs high, but not wildly: within a factor 3 in the median run.
    assert np.median(ratios) <= 3.0, (name, np.median(ratios))


def test_power_iterations_and_krylov_improve_accuracy():
    A, _, s, _ = known_svd(M, N, SPECTRA["poly05"](N), seed=4)
    optimal = math.sqrt(float(np.sum(s[K:] ** 2)))
    errors = {}
    for q, method in [(0, "subspace"), (3, "subspace"), (3, "krylov")]:
        res = randomized_svd(A, K, power_iters=q, method=method, rng=5)
        errors[q, method] = np.linalg.norm(A - (res.U * res.s) @ res.Vt) / optimal
    assert errors[3, "subspace"] < errors[0, "subspace"]
    assert errors[3, "subspace"] < 1.01 and errors[3, "krylov"] < 1.01


def test_exact_rank_is_recovered():
    s = np.r_[np.linspace(3, 1, K)]
    A, U, s, V = known_svd(M, N, s, seed=7)
    res = randomized_svd(A, K, power_iters=1, rng=0)
    np.testing.assert_allclose(res.s, s, rtol=1e-12)
    np.testing.assert_allclose(np.abs(res.U.T @ U), np.eye(K), atol=1e-10)
    assert res.error_estimate <= 1e-12 * np.linalg.norm(A)
    Ar = range_finder(A, K, oversample=0, rng=1)
    assert np.linalg.norm(A - Ar.Q @ (Ar.Q.T @ A)) <= 1e-12 * np.linalg.norm(A)


def test_passes_widths_and_counts():
    A = known_svd(M, N, SPECTRA["poly1"](N), seed=1)[0]
    r0 = range_finder(A, K, oversample=P, rng=0)
    assert (r0.Q.shape[1], r0.passes, r0.matvecs) == (K + P, 1, K + P)
    r2 = range_finder(A, K, oversample=P, power_iters=2, rng=0)
    # Two iterations: 1 + 2·2 passes, plus P fresh columns joining the last one.
    assert (r2.Q.shape[1], r2.passes, r2.matvecs) == (K + 2 * P, 5, 5 * (K + P) + P)
    rk = range_finder(A, K, oversample=P, power_iters=2, method="krylov", rng=0)
    assert rk.Q.shape[1] == 3 * (K + P) + P and rk.passes == 5
    for Q in (r0.Q, r2.Q, rk.Q):
        np.testing.assert_allclose(Q.T @ Q, np.eye(Q.shape[1]), atol=1e-12)
    b = qb(A, K, power_iters=2, rng=0)
    assert b.passes == 6
    np.testing.assert_allclose(b.B, b.Q.T @ A, atol=1e-13)


@pytest.mark.parametrize("kind", ["dense", "sparse", "linop"])
def test_input_kinds_agree_and_float32_stays_float32(kind):
    A = known_svd(M, N, SPECTRA["exp"](N), seed=2)[0]
    wrap = {"dense": lambda X: X, "sparse": sp.csr_array, "linop": aslinearoperator}[kind]
    ref = randomized_svd(A, K, rng=9)
    res = randomized_svd(wrap(A), K, rng=9)
    np.testing.assert_allclose(res.s, ref.s, rtol=1e-12)
    res32 = randomized_svd(wrap(A.astype(np.float32)), K, rng=9)
    assert res32.U.dtype == res32.s.dtype == res32.Vt.dtype == np.float32
    np.testing.assert_allclose(res32.s, ref.s, rtol=1e-4)


def test_same_rng_same_result_and_results_frozen():
    A = known_svd(M, N, SPECTRA["poly1"](N), seed=2)[0]
    a, b = randomized_svd(A, K, rng=11), randomized_svd(A, K, rng=11)
    assert np.array_equal(a.U, b.U) and np.array_equal(a.s, b.s)
    assert a.error_estimate == b.error_estimate
    assert not np.array_equal(a.U, randomized_svd(A, K, rng=12).U)
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.s = None


def test_input_not_mutated():
    A = known_svd(M, N, SPECTRA["poly1"](N), seed=2)[0]
    A_copy = A.copy()
    randomized_svd(A, K, rng=0)
    nystrom(A.T @ A, K, rng=0)
    assert np.array_equal(A, A_copy)


def test_nystrom_exact_rank_and_accuracy():
    lam = np.r_[np.linspace(5, 1, 8), np.zeros(N - 8)]
    A, Q, lam = known_eig(N, lam, seed=3)
    res = nystrom(A, 8, rng=0)
    np.testing.assert_allclose(res.eigenvalues, lam[:8], rtol=1e-10)
    np.testing.assert_allclose(np.abs(res.U.T @ Q[:, :8]), np.eye(8), atol=1e-8)
    assert res.passes == 1 and res.matvecs == 18
    assert res.error_estimate <= 1e-8 * np.linalg.norm(A)


@pytest.mark.parametrize("name", ["poly1", "exp", "step"])
def test_nystrom_error_estimate_covers_true_error(name):
    A, _, lam = known_eig(N, SPECTRA[name](N), seed=5)
    trials, covered = 50, 0
    for seed in range(trials):
        res = nystrom(A, K, rng=seed)
        true = np.linalg.norm(A - (res.U * res.eigenvalues) @ res.U.T)
        covered += res.error_estimate >= true
        assert np.all(res.eigenvalues >= 0) and np.all(np.diff(res.eigenvalues) <= 0)
        # Nyström never overestimates: Â ≼ A, so each eigenvalue is at most the true one.
        assert np.all(res.eigenvalues <= lam[:K] * (1 + 1e-12))
    assert covered >= 0.95 * trials, covered


@pytest.mark.parametrize("call, error", [
    (lambda A: randomized_svd(A, 0), ValueError),
    (lambda A: randomized_svd(A, N + 1), ValueError),
    (lambda A: randomized_svd(A, 2.0), TypeError),
    (lambda A: randomized_svd(A, K, oversample=-1), ValueError),
    (lambda A: randomized_svd(A, K, power_iters=-1), ValueError),
    (lambda A: randomized_svd(A, K, method="lanczos"), ValueError),
    (lambda A: randomized_svd(A + 1j, K), TypeError),
    (lambda A: randomized_svd(A[0], K), ValueError),
    (lambda A: nystrom(A, K), ValueError),
    (lambda A: range_finder(A, K, rng="seed"), TypeError),
])
def test_bad_arguments(call, error):
    A = known_svd(M, N, SPECTRA["poly1"](N), seed=2)[0]
    with pytest.raises(error):
        call(A)


def test_zero_matrix_gives_zero_error_estimate():
    # Exactly dependent sketch columns (R singular): the leave-one-out distances are
    # found by projection instead of R⁻¹, and are exactly zero here.
    for power_iters in (0, 1):
        res = range_finder(np.zeros((60, 40)), 4, power_iters=power_iters, rng=0)
        assert res.error_estimate == 0.0


@pytest.mark.parametrize("power_iters, method", [(0, "subspace"), (1, "subspace"),
                                                 (2, "subspace"), (2, "krylov")])
def test_exactly_low_rank_basis_stays_orthonormal(power_iters, method):
    # Rank 1: every column beyond the first is rounding noise, yet the basis (fresh
    # columns included) must stay orthonormal and the SVD exact.
    A = np.ones((60, 40))
    r = range_finder(A, 3, power_iters=power_iters, method=method, rng=0)
    np.testing.assert_allclose(r.Q.T @ r.Q, np.eye(r.Q.shape[1]), atol=1e-12)
    res = randomized_svd(A, 3, power_iters=power_iters, method=method, rng=0)
    np.testing.assert_allclose(res.s, [np.sqrt(60 * 40), 0, 0], atol=1e-10)
    assert res.error_estimate <= 1e-10


def test_krylov_basis_filling_the_space_keeps_a_finite_error_estimate():
    # 30 x 30 with blocks of 15: the third Krylov block has nothing left to add,
    # and the fresh columns must still be the ones the error samples come from.
    A = np.random.default_rng(0).standard_normal((30, 30))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        r = range_finder(A, 10, oversample=5, power_iters=3, method="krylov", rng=1)
    np.testing.assert_allclose(r.Q.T @ r.Q, np.eye(r.Q.shape[1]), atol=1e-12)
    true_error = np.linalg.norm(A - r.Q @ (r.Q.T @ A))
    assert np.isfinite(r.error_estimate) and true_error <= 1e-12 * np.linalg.norm(A)


@pytest.mark.parametrize("method", ["subspace", "krylov"])
@pytest.mark.parametrize("power_iters", [1, 2])
@pytest.mark.parametrize("shape", [(9, 50), (2, 2), (3, 3), (5, 3), (2, 3)])
def test_fewer_rows_or_columns_than_oversample_match_numpy(shape, power_iters, method):
    # The default 10 fresh columns outnumber min(m, n): the basis fills the space
    # instead, so every truncation is numpy's to rounding.
    A = np.random.default_rng(0).standard_normal(shape)
    U, s, Vt = np.linalg.svd(A, full_matrices=False)
    for k in sorted({1, 2, min(shape)}):
        res = randomized_svd(A, k, power_iters=power_iters, method=method, rng=0)
        np.testing.assert_allclose(res.s, s[:k], rtol=1e-12, atol=1e-14 * s[0])
        np.testing.assert_allclose(res.U.T @ res.U, np.eye(k), atol=1e-13)
        np.testing.assert_allclose(res.Vt @ res.Vt.T, np.eye(k), atol=1e-13)
        best = math.sqrt(float(np.sum(s[k:] ** 2)))
        assert abs(np.linalg.norm(A - (res.U * res.s) @ res.Vt) - best) <= 1e-13 * s[0]
        b = qb(A, k, power_iters=power_iters, method=method, rng=0)
        assert b.B.shape[0] <= min(shape) and b.Q.shape[1] == b.B.shape[0]
        assert np.linalg.norm(A - b.Q @ b.B) <= 1e-13 * s[0]


@pytest.mark.parametrize("kwargs, passes", [
    (dict(k=25, power_iters=1), 3),
    # blocks of 20: the first iteration's block fills the 30 columns, so it is the last
    (dict(k=10, power_iters=3, method="krylov"), 3),
])
def test_basis_is_never_wider_than_min_shape(kwargs, passes):
    A = np.random.default_rng(0).standard_normal((100, 30))
    for X in (A, A.T):
        r = range_finder(X, rng=0, **kwargs)
        assert r.Q.shape == (X.shape[0], 30) and r.passes == passes
        np.testing.assert_allclose(r.Q.T @ r.Q, np.eye(30), atol=1e-13)
        b = qb(X, rng=0, **kwargs)
        assert b.B.shape == (30, X.shape[1])
        # a full basis is exact, and the fresh columns' estimate says so
        assert np.linalg.norm(X - b.Q @ b.B) <= 1e-13 * np.linalg.norm(X)
        assert b.error_estimate <= 1e-12 * np.linalg.norm(X)


@pytest.mark.parametrize("kind", ["dense", "sparse", "float32"])
def test_nystrom_of_zero_matrix(kind):
    Z = {"dense": np.zeros((20, 20)), "sparse": sp.csr_array((20, 20)),
         "float32": np.zeros((20, 20), dtype=np.float32)}[kind]
    res = nystrom(Z, 2, rng=0)
    assert np.array_equal(res.eigenvalues, np.zeros(2)) and res.error_estimate == 0.0
    assert res.U.dtype == res.eigenvalues.dtype == Z.dtype
    np.testing.assert_allclose(res.U.T @ res.U, np.eye(2), atol=1e-6)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
@pytest.mark.parametrize("kind", ["dense", "sparse", "operator"])
def test_non_finite_a_is_a_value_error_naming_a(bad, kind):
    # it used to surface as LinAlgError "SVD did not converge"
    A, message = non_finite_identity(bad, kind)
    for call in (lambda: range_finder(A, 5, rng=0), lambda: qb(A, 5, rng=0),
                 lambda: randomized_svd(A, 5, rng=0), lambda: nystrom(A, 5, rng=0)):
        with pytest.raises(ValueError, match=message):
            call()


def test_a_product_that_overflows_is_named_as_such():
    A = np.full((30, 30), 1.7e308)      # a sum of two such entries overflows
    with pytest.raises(ValueError, match="overflowed"):
        randla.trace(A, matvecs=4, rng=0)
    # the low-rank routines measure such an A at a smaller scale instead
    Q = range_finder(A, 5, rng=0).Q
    small = A * 2.0 ** -1000
    assert np.linalg.norm(small - Q @ (Q.T @ small)) <= 1e-12 * np.linalg.norm(small)


@pytest.mark.parametrize("routine", [range_finder, qb, randomized_svd])
def test_a_basis_of_min_shape_columns_reports_a_rounding_error(routine):
    # without power iterations, leaving a column out of a full basis misses a
    # direction of A: the estimate was 10.8 for a true error of 3e-14
    A = np.random.default_rng(0).standard_normal((50, 30))
    if routine is randomized_svd:       # all 30 kept: no truncation error either
        res = routine(A, 30, power_iters=0, rng=1)
        Q = res.U
    else:                               # 25 + 10 oversampling, capped at 30
        res = routine(A, 25, power_iters=0, rng=1)
        Q = res.Q
    assert Q.shape[1] == 30
    assert np.linalg.norm(A - Q @ (Q.T @ A)) <= res.error_estimate < 1e-10


def test_a_full_nystrom_sketch_reports_a_rounding_error():
    G = np.random.default_rng(0).standard_normal((30, 30))
    P = G @ G.T
    res = nystrom(P, 30, rng=0)
    assert res.error_estimate < 1e-10 * np.linalg.norm(P)
    assert np.linalg.norm(P - (res.U * res.eigenvalues) @ res.U.T) < 1e-10 * np.linalg.norm(P)


@pytest.mark.parametrize("shape", [(1, 1), (1, 5), (5, 1)])
def test_matrices_with_one_row_or_column(shape):
    # the one-column basis is the whole range: no leave-one-out is needed
    A = np.arange(1.0, 1.0 + np.prod(shape)).reshape(shape)
    sigma = np.linalg.norm(A)
    for method in ("subspace", "krylov"):
        res = randomized_svd(A, 1, rng=0, method=method)
        assert res.s[0] == pytest.approx(sigma, rel=1e-14) and res.error_estimate < 1e-12
    for routine in (range_finder, qb):
        assert routine(A, 1, rng=0).error_estimate < 1e-11
    if shape == (1, 1):
        res = nystrom(A, 1, rng=0)
        assert res.eigenvalues[0] == pytest.approx(1.0) and res.error_estimate < 1e-12


@pytest.mark.parametrize("shape", [(50, 30), (30, 50), (50, 50), (200, 40)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_full_basis_estimate_bounds_its_rounding(shape, dtype):
    # eps^2 on square A (Y projected against a square Q) bounded nothing
    for seed in range(10):
        A = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
        res = range_finder(A, min(shape), power_iters=0, rng=seed)
        error = np.linalg.norm(A - res.Q @ (res.Q.T @ A))
        assert error <= res.error_estimate <= 1e3 * error


def test_entries_whose_products_overflow_are_measured_at_a_smaller_scale():
    # diag(1.7e308): a Gaussian block's product overflowed, which read as an error
    D = np.diag(np.linspace(1.7e308, 1e307, 30))
    small = randomized_svd(D * 2.0 ** -1000, 3, rng=0).s      # the same matrix, exactly scaled
    assert np.allclose(randomized_svd(D, 3, rng=0).s, small * 2.0 ** 1000, rtol=1e-12)
    assert np.allclose(np.sort(randla.svds(D, 3, rng=0, return_singular_vectors=False)),
                       np.sort(np.diag(D))[-3:], rtol=1e-12)


def test_randomized_svd_estimate_errs_high_with_a_full_basis():
    # a rounding-level QB error summed with the discarded singular values fell
    # short of the true error (by rounding) in 24 of 30 runs
    for seed in range(10):
        rng = np.random.default_rng(seed)
        U = np.linalg.qr(rng.standard_normal((100, 100)))[0]
        V = np.linalg.qr(rng.standard_normal((100, 100)))[0]
        A = (U / np.arange(1, 101)) @ V.T
        res = randomized_svd(A, 95, oversample=10, rng=seed)
        error = np.linalg.norm(A - (res.U * res.s) @ res.Vt)
        assert error <= res.error_estimate <= 1.01 * error


@pytest.mark.parametrize("levels, k, power_iters", [
    ((5, 1.0, 25, 1e-2, 30, 1e-4), 10, 2), ((30, 1.0, 30, 1e-8), 10, 2),
    ((10, 1.0, 50, 1e-3), 20, 1)])
def test_error_estimate_covers_a_full_krylov_basis_of_a_clustered_spectrum(levels, k, power_iters):
    # the Krylov blocks lose rank and fill all 60 columns partly with rounding:
    # leave-one-out distances of the fresh columns, which no longer fit, read
    # 0.9-2.0e-4 for an error of 2.7-2.9e-4 in every seed
    rng = np.random.default_rng(0)
    U, _ = np.linalg.qr(rng.standard_normal((100, 60)))
    V, _ = np.linalg.qr(rng.standard_normal((60, 60)))
    s = np.concatenate([np.full(count, value) for count, value in zip(levels[::2], levels[1::2])])
    A = (U * s) @ V.T
    for seed in range(5):
        res = qb(A, k, power_iters=power_iters, method="krylov", rng=seed)
        assert res.Q.shape[1] == 60
        assert np.linalg.norm(A - res.Q @ res.B) <= res.error_estimate


@pytest.mark.parametrize("power_iters, method", [(0, "subspace"), (2, "subspace"),
                                                 (1, "krylov")])
def test_error_estimate_covers_the_rounding_of_an_exactly_low_rank_matrix(power_iters, method):
    # the error is rounding (about 3e-15 relative); the fresh columns' samples
    # alone covered it in 9 of 18 runs
    rng = np.random.default_rng(1)
    A = rng.standard_normal((200, 5)) @ rng.standard_normal((5, 100))
    for seed in range(6):
        found = range_finder(A, 20, power_iters=power_iters, method=method, rng=seed)
        assert np.linalg.norm(A - found.Q @ (found.Q.T @ A)) <= found.error_estimate
        res = qb(A, 20, power_iters=power_iters, method=method, rng=seed)
        assert np.linalg.norm(A - res.Q @ res.B) <= res.error_estimate
        assert res.error_estimate <= 1e-12 * np.linalg.norm(A)


def test_nystrom_estimate_covers_the_rounding_of_an_exactly_low_rank_matrix():
    # rank 7, n = 100, k = 50: the error is rounding (about 9 eps ||A||_F);
    # without the rounding term the estimate covered it in 43 of 100 runs
    A = known_eig(100, np.r_[np.linspace(2, 1, 7), np.zeros(93)], seed=2)[0]
    trials, covered = 50, 0
    for seed in range(trials):
        res = nystrom(A, 50, rng=seed)
        true = np.linalg.norm(A - (res.U * res.eigenvalues) @ res.U.T)
        covered += res.error_estimate >= true
        assert res.error_estimate <= 1e-12 * np.linalg.norm(A)
    assert covered >= 0.95 * trials, covered
