"""The GPU's overlapped Lanczos step, run here on the host: both projection
passes always and one transfer (``_Basis.project_twice``), the Gram matrix
handed to ``tall_qr``, and the next product launched before the host checks
the Ritz pairs.  On numpy the same code runs in order, so it must take the
steps the plain step takes and give its answers, up to rounding; the product
launched ahead is used, except after the last check and a widening."""
import numpy as np
import pytest
import scipy.sparse.linalg as spla

import randla
from randla._backend import NUMPY
from randla.eig import _lanczos
from randla.eig._dropins import _rounding_floor
from randla.eig._lanczos import _Basis, block_lanczos
from randla.eig._operand import Operand


def _strided(M):
    """M as a non-contiguous view: dense products stay on BLAS (not numba's
    sweeps), so the basis is the BLAS one the GPU uses."""
    view = np.zeros((M.shape[0], 2 * M.shape[1]), dtype=M.dtype)[:, ::2]
    view[:] = M
    return view


def _low_rank(m, n, values, seed):
    rng = np.random.default_rng(seed)
    U = np.linalg.qr(rng.standard_normal((m, len(values))))[0]
    V = np.linalg.qr(rng.standard_normal((n, len(values))))[0]
    return (U * values) @ V.T


def _symmetric(values, seed):
    Q = np.linalg.qr(np.random.default_rng(seed).standard_normal((len(values),) * 2))[0]
    return (Q * values) @ Q.T


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_project_twice_removes_the_basis_and_reports_in_one_go(dtype):
    n, d, b = 300, 24, 4
    rng = np.random.default_rng(0)
    basis = _Basis(NUMPY, n, d + 8, np.linalg.qr(rng.standard_normal((n, d)))[0].astype(dtype))
    V = basis.view()
    # mostly inside V: one pass would leave W' about 400 eps off orthogonal
    # to V, relative to W' (two: below 1 eps)
    W = (V @ rng.standard_normal((d, b)) + 1e-3 * rng.standard_normal((n, b))).astype(dtype)
    W_in = W.copy()
    projected, C, before, gram = basis.project_twice(W)
    eps = np.finfo(dtype).eps
    np.testing.assert_array_equal(W, W_in)                 # W itself is left alone
    assert projected.dtype == dtype and gram.dtype == dtype
    assert C.dtype == np.float64 and before.dtype == np.float64
    assert C.shape == (d, b) and gram.shape == (b, b) and before.shape == (b,)
    length = np.linalg.norm(projected.astype(np.float64), axis=0)
    assert np.abs(V.T @ projected).max(axis=0).max() <= 20 * eps * length.max()
    scale = np.linalg.norm(W_in.astype(np.float64), axis=0)
    assert np.abs(V.astype(np.float64) @ C + projected - W_in).max() <= 20 * eps * scale.max()
    np.testing.assert_allclose(gram, projected.T @ projected,
                               rtol=0, atol=20 * eps * np.abs(gram).max())
    np.testing.assert_allclose(before, scale, rtol=10 * eps)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_tall_qr_from_a_given_gram_matrix_matches_its_own(dtype):
    Y = np.random.default_rng(2).standard_normal((500, 6)).astype(dtype)
    Q, R = NUMPY.tall_qr(Y)
    Qg, Rg = NUMPY.tall_qr(Y, gram=Y.T @ Y)
    assert Qg.dtype == dtype and Rg.dtype == dtype
    np.testing.assert_array_equal(Q, Qg)
    np.testing.assert_array_equal(R, Rg)


@pytest.fixture
def overlap(monkeypatch):
    """A switch for the overlapped step on the host; counts its projections."""
    calls = []
    real = _Basis.project_twice

    def counted(self, W):
        calls.append(W.shape)
        return real(self, W)

    monkeypatch.setattr(_Basis, "project_twice", counted)

    def switch(on):
        calls.clear()
        monkeypatch.setattr(_lanczos, "_overlapped", lambda bk: on)
        return calls

    return switch


def _both(overlap, run):
    """run() with the overlapped step, then with the plain one."""
    calls = overlap(True)
    overlapped = run()
    assert calls, "the overlapped step did not run"
    calls = overlap(False)
    plain = run()
    assert not calls
    return overlapped, plain


def _lanczos_run(A, k, **options):
    op = Operand(A)
    return block_lanczos(op, k, floor=_rounding_floor(op.dtype, op.shape[1]), rng=3, **options)


@pytest.mark.parametrize("case", ["restarts, A V kept", "widens a cluster"])
def test_products_launched_ahead_are_used_where_they_still_hold(overlap, case):
    if case == "restarts, A V kept":
        # svds-like: M = AᵀA, a small basis restarted every few steps, A V
        # kept through the restarts
        values = 1.0 / np.arange(1, 81) ** 0.5
        A = _strided(_low_rank(300, 120, values, 5))
        options = dict(normal=True, tol=1e-10, maxiter=500, block=2, max_basis=14,
                       keep_images=True)
        k = 4
    else:
        # six copies of 1 above the rest, one column per step: the run widens
        lam = np.r_[np.ones(6), np.linspace(-0.5, 0.5, 54)]
        A = _strided(_symmetric(lam, 6))
        options = dict(normal=False, tol=0.0, maxiter=1000, block=1, max_basis=12)
        k = 3
    overlapped, plain = _both(overlap, lambda: _lanczos_run(A, k, **options))
    assert plain.converged.all() and overlapped.converged.all()
    assert overlapped.steps == plain.steps
    # one product per step (two passes for AᵀA off the fused sweep), plus
    # those launched before the last check and before each widening, unused
    per_product = 2 if options["normal"] else 1
    assert plain.passes == per_product * plain.steps
    wasted = (overlapped.passes - plain.passes) / per_product
    assert 1 <= wasted <= (1 if case == "restarts, A V kept" else 4)
    np.testing.assert_allclose(overlapped.values, plain.values, rtol=1e-12)
    if case == "restarts, A V kept":
        np.testing.assert_allclose(overlapped.images, A @ overlapped.vectors,
                                   rtol=0, atol=1e-13)
    else:
        np.testing.assert_allclose(overlapped.values, 1.0, rtol=0, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_svds_overlapped_matches_the_plain_step(overlap, dtype):
    values = 1.0 / np.arange(1, 61)
    A = _strided(_low_rank(400, 150, values, 3).astype(dtype))
    k = 8
    (u, s, vt), (u0, s0, vt0) = _both(overlap, lambda: randla.svds(A, k=k, rng=5))
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(s, s0, rtol=tol)
    np.testing.assert_allclose(s[::-1], values[:k], rtol=tol * 10)
    for X, X0 in ((u, u0), (vt.T, vt0.T)):      # the same singular subspaces
        assert np.linalg.norm(X @ X.T - X0 @ X0.T, 2) <= (1e-8 if dtype == np.float64 else 1e-2)


@pytest.mark.parametrize("k", [1, 6])
def test_eigsh_overlapped_matches_the_plain_step(overlap, k):
    G = np.random.default_rng(4).standard_normal((300, 300))
    M = (G + G.T) / 2
    (w, X), (w0, X0) = _both(overlap, lambda: randla.eigsh(_strided(M), k=k, rng=1))
    np.testing.assert_allclose(w, w0, rtol=1e-12)
    reference = np.linalg.eigvalsh(M)
    expected = reference[np.argsort(-np.abs(reference), kind="stable")[:k]]
    np.testing.assert_allclose(np.sort(w), np.sort(expected), rtol=1e-10)
    assert np.linalg.norm(X @ X.T - X0 @ X0.T, 2) <= 1e-8


def test_a_linear_operator_is_not_called_ahead(overlap):
    # its products may be host code that runs at once: a call made ahead
    # would only be wasted where the run stops
    M = _symmetric(np.r_[np.linspace(2, 1, 6), np.linspace(0.5, -0.5, 94)], 7)
    calls = []

    def matmat(X):
        calls.append(X.shape[1])
        return M @ X

    A = spla.LinearOperator(M.shape, matvec=lambda x: M @ x, matmat=matmat, dtype=M.dtype)

    def run():
        calls.clear()
        result = _lanczos_run(A, 4, normal=False, tol=0.0, maxiter=200, block=2, max_basis=30)
        return result, list(calls)

    (res, used), (res0, used0) = _both(overlap, run)
    assert res.steps == res0.steps and used == used0 and len(used) == res.steps
    np.testing.assert_allclose(res.values, res0.values, rtol=1e-12)
