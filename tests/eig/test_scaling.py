"""A far from norm 1: every eig routine answers for c A what it answers for A, times c.

Before the operand scaled itself, Gram matrices and AᵀA products of A with
entries near 1e-200 underflowed: svds returned singular values off by 0.8
of σ₁, Lazy-EPSI reported convergence 1e-3 from the answer, and the error
estimates of the range finder were 0; at 1e200 svds refused A as non-finite.
The trace estimators' standard errors were 0 at 1e-200 and inf at 1e200.
"""
import pathlib
import warnings
import sys

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.linalg import aslinearoperator

import randla
from randla.eig import epsi, lazy_epsi, nystrom, qb, randomized_svd, range_finder

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from _matrices import SPECTRA, known_eig, known_svd, one_blas_thread  # noqa: E402,F401

# 2^-700 scales exactly; 1e-200 and 1e200 round every entry of c A
SCALES = (2.0 ** -700, 1e-200, 1e200)
S = SPECTRA["poly1"](80)


def _matrix():
    return known_svd(200, 120, S)[0]


def _symmetric():
    return known_eig(120, S)[0]


def _extra(c):
    """Passes the scale costs: the first product again, after a probe for tiny A."""
    return 2 if c < 1 else 1


def _close(scaled, reference, c, rtol=1e-12):
    """scaled / c equals reference to rtol of its largest entry."""
    scaled = np.asarray(scaled, dtype=np.float64) / c
    reference = np.asarray(reference, dtype=np.float64)
    return np.max(np.abs(scaled - reference)) <= rtol * np.max(np.abs(reference))


@pytest.mark.parametrize("c", SCALES)
@pytest.mark.parametrize("kind", ["dense", "sparse", "operator"])
def test_svds_of_a_scaled_matrix_are_the_scaled_singular_values(c, kind):
    A = _matrix()
    scaled = {"dense": lambda: c * A, "sparse": lambda: sp.csr_array(c * A),
              "operator": lambda: aslinearoperator(c * A)}[kind]()
    u, s, vh = randla.svds(scaled, k=5, tol=1e-10, rng=0)
    assert _close(s, S[:5][::-1], c, rtol=1e-9)
    assert np.allclose(np.abs(np.sum(vh * known_svd(200, 120, S)[3][:, :5][:, ::-1].T, axis=1)),
                       1, atol=1e-8)


@pytest.mark.parametrize("c", SCALES)
def test_eigsh_of_a_scaled_matrix_are_the_scaled_eigenvalues(c):
    w = randla.eigsh(c * _symmetric(), k=5, rng=0, return_eigenvectors=False)
    assert _close(np.sort(w), S[:5][::-1], c)


@pytest.mark.parametrize("c", SCALES)
@pytest.mark.parametrize("hermitian", [False, True])
def test_lazy_epsi_of_a_scaled_matrix_converges_to_the_scaled_values(c, hermitian):
    A = _symmetric() if hermitian else _matrix()
    reference = lazy_epsi(A, 5, hermitian=hermitian, rng=0)
    res = lazy_epsi(c * A, 5, hermitian=hermitian, rng=0)
    assert res.converged.all() and reference.converged.all()
    assert _close(res.values, S[:5], c)
    # the same sweeps; where A's scale is fixed its first product is made
    # again, and a tiny A takes a Gaussian probe first
    assert res.sweeps == reference.sweeps and res.passes == reference.passes + _extra(c)
    assert epsi(c * A, hermitian=hermitian, rng=0).converged.all()


@pytest.mark.parametrize("c", SCALES)
def test_low_rank_factors_and_error_estimates_scale_with_a(c):
    A = _matrix()
    for routine in (range_finder, qb, randomized_svd):
        reference, res = routine(A, 10, rng=0), routine(c * A, 10, rng=0)
        # where A's scale is fixed its first product is made again (and a tiny
        # A takes a Gaussian probe first)
        assert res.passes == reference.passes + _extra(c)
        assert res.error_estimate / c == pytest.approx(reference.error_estimate, rel=1e-9)
        assert res.error_estimate > 0
    assert _close(randomized_svd(c * A, 10, rng=0).s, randomized_svd(A, 10, rng=0).s, c, 1e-9)
    B, Q = qb(c * A, 10, rng=0).B, qb(A, 10, rng=0).Q
    assert _close(B, Q.T @ A, c, rtol=1e-9)
    reference, res = nystrom(_symmetric(), 10, rng=0), nystrom(c * _symmetric(), 10, rng=0)
    assert _close(res.eigenvalues, reference.eigenvalues, c, rtol=1e-9)
    assert res.error_estimate / c == pytest.approx(reference.error_estimate, rel=1e-6)


@pytest.mark.parametrize("c", [1e-30, 1e30])
def test_float32_matrices_far_from_one_keep_their_values(c):
    # float32 squares leave its range far sooner: (1e-30)^2 is 0
    A = _matrix().astype(np.float32)
    s = randla.svds(A * np.float32(c), k=5, rng=0, return_singular_vectors=False)
    assert s.dtype == np.float32
    assert _close(s, S[:5][::-1], c, rtol=1e-4)
    res = lazy_epsi(A * np.float32(c), 5, rng=0)
    assert res.converged.all() and _close(res.values, S[:5], c, rtol=1e-4)


def test_a_matrix_near_one_is_not_rescaled():
    A = _matrix()
    assert range_finder(A, 10, rng=0).passes == 1
    assert range_finder(1e30 * A, 10, rng=0).passes == 1      # within 2^+-128: as it is


@pytest.mark.parametrize("c", SCALES)
@pytest.mark.parametrize("method", ["hutchinson", "hutch++", "nystrom++", "xtrace", "xnystrace"])
def test_trace_of_a_scaled_matrix_is_the_scaled_trace_with_its_error_bar(c, method):
    # the standard error squared its samples: 0 at 1e-200 (a false "exact"),
    # inf at 1e200; the Gram matrices of the sketches overflowed at 1e200
    M = _symmetric()
    reference = randla.eig.trace(M, matvecs=60, method=method, rng=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = randla.eig.trace(c * M, matvecs=60, method=method, rng=0)
        diag = randla.eig.diag_estimate(c * M, matvecs=60, rng=0)
    assert res.matvecs == reference.matvecs
    assert res.estimate / c == pytest.approx(reference.estimate, rel=1e-12)
    assert res.stderr / c == pytest.approx(reference.stderr, rel=1e-12)
    assert np.allclose(res.samples / c, reference.samples, rtol=1e-12, atol=0)
    diag_reference = randla.eig.diag_estimate(M, matvecs=60, rng=0)
    assert np.allclose(diag.estimate / c, diag_reference.estimate, rtol=1e-12, atol=0)
    assert np.allclose(diag.stderr / c, diag_reference.stderr, rtol=1e-12, atol=0)


@pytest.mark.parametrize("c", [1e-200, 1e200])
def test_adaptive_trace_reads_atol_in_the_callers_units(c):
    M = _symmetric()
    reference = randla.eig.trace(M, atol=0.5, rng=0)
    res = randla.eig.trace(c * M, atol=0.5 * c, rng=0)
    assert res.converged and res.matvecs == reference.matvecs
    assert res.estimate / c == pytest.approx(reference.estimate, rel=1e-12)


def test_a_start_vector_near_the_null_space_does_not_fix_the_scale():
    # the scale came from |A v0| / |v0| alone: 1e-100 here, so A was scaled
    # up by 2^332 and AᵀA overflowed ("non-finite entries"); a Gaussian probe
    # now bounds ||A|| from below as well (found by a review)
    d = np.linspace(1, 2, 60)
    d[-1] = 1e-100
    v0 = np.zeros(60)
    v0[-1] = 1
    top = np.sort(d)[-3:]
    s = randla.svds(sp.diags(d).tocsr(), k=3, v0=v0, rng=0, return_singular_vectors=False)
    assert np.allclose(s, top, rtol=1e-12)
    s = randla.svds(np.diag(d), k=3, v0=v0, rng=0, options={"block_size": 1},
                    return_singular_vectors=False)
    assert np.allclose(s, top, rtol=1e-12)
    d[-1] = 1e-170
    w = randla.eigsh(sp.diags(d).tocsr(), k=3, v0=v0, rng=0, return_eigenvectors=False)
    assert np.allclose(np.sort(w), top, rtol=1e-12)


@pytest.mark.parametrize("block", [2, 3, 4])
def test_a_start_column_in_the_null_space_keeps_the_krylov_relation(block):
    # its product is 0, and the factor of the new block dropped a direction
    # other columns weighed on: with 2 or 3 columns per step svds ran out of
    # steps with residuals stuck near 1e-7 (4 converged, in 76 steps, not 24)
    d = np.linspace(1, 2, 60)
    d[-1] = 1e-100
    v0 = np.zeros(60)
    v0[-1] = 1
    s = randla.svds(np.diag(d), k=3, v0=v0, rng=0, options={"block_size": block},
                    return_singular_vectors=False)
    np.testing.assert_allclose(s, np.sort(d)[-3:], rtol=1e-12)
    # and the start costs no more steps than a random one (4 columns: 76, not 24)
    from randla.eig._lanczos import block_lanczos, default_max_basis
    from randla.eig._operand import Operand
    steps = [block_lanczos(Operand(np.diag(d)), 3, normal=True, tol=0.0, maxiter=600,
                           block=block, max_basis=default_max_basis(3, block, 60), rng=0,
                           floor=1e-13, start=start).steps
             for start in (v0, None)]
    assert steps[0] <= steps[1] + 5


def test_a_new_block_with_a_zero_column_is_factored_exactly():
    from randla._backend import get_backend
    from randla.eig._lanczos import _extend
    # a Householder factor's arbitrary first direction is e_1, here mostly
    # inside V, and w, which it weighs on, is not
    rng = np.random.default_rng(0)
    n = 50
    e1 = np.eye(n)[:, 0]
    V = np.linalg.qr(np.column_stack([e1 + 0.25 * rng.standard_normal(n) / np.sqrt(n),
                                      rng.standard_normal((n, 3))]))[0]
    w = rng.standard_normal(n)
    w -= V @ (V.T @ w)
    W = np.column_stack([np.zeros(n), w, 2 * w])    # rank one
    bk = get_backend(W)

    def fresh(count, *bases):
        Z = rng.standard_normal((n, count))
        for basis in bases:
            Z -= basis @ (basis.T @ Z)
        return np.linalg.qr(Z)[0]

    Q, B, weak = _extend(bk, lambda: V, W, float(np.linalg.norm(W)), fresh, n - 4)
    assert weak
    assert Q.shape == (n, 3)
    np.testing.assert_allclose(Q @ B, W, rtol=0, atol=1e-14 * np.linalg.norm(W))
    np.testing.assert_allclose(Q.T @ Q, np.eye(3), atol=1e-14)
    assert np.abs(V.T @ Q).max() <= 1e-14
    # rounding along V heavier than a direction ⟂ V just above rounding: the
    # noise direction came first and left a part along V in the other
    # (|Vᵀ Q| 4e-3 when all directions were factored together)
    x = w / np.linalg.norm(w)
    W = np.column_stack([3e-16 * x, V @ rng.standard_normal(4) * 5e-16])
    Q, B, weak = _extend(bk, lambda: V, W, 1.0, fresh, n - 4)
    assert weak
    assert Q.shape == (n, 2)
    np.testing.assert_allclose(Q @ B, W, rtol=0, atol=1e-15)
    np.testing.assert_allclose(Q.T @ Q, np.eye(2), atol=1e-14)
    assert np.abs(V.T @ Q).max() <= 1e-14


def test_subnormal_matrices_get_a_factor_their_precision_holds():
    # 1e-40 in float32 (1e-312 in float64) asked for 2^130 (2^1036): inf in
    # float32, OverflowError in float64
    S = np.random.default_rng(0).standard_normal((50, 50))
    S = S + S.T
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est = randla.eig.trace(S.astype(np.float32) * np.float32(1e-40), matvecs=20, rng=0)
    assert np.isfinite(est.estimate) and np.isfinite(est.stderr)
    assert est.estimate / 1e-40 == pytest.approx(randla.eig.trace(S, matvecs=20, rng=0).estimate,
                                                 rel=1e-3)
    G = np.random.default_rng(1).standard_normal((200, 50))
    assert np.allclose(randomized_svd(G * 1e-312, 5, rng=0).s / 1e-312,
                       randomized_svd(G, 5, rng=0).s, rtol=1e-3)
