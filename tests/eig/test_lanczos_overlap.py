"""The GPU's overlapped Lanczos step, run here on the host: both projection
passes always and one transfer (``_Basis.project_twice``), the Gram matrix
handed to ``tall_qr``, and the next product launched before the host checks
the Ritz pairs.  On numpy the same code runs in order, so it must give what
the plain step gives, up to rounding."""
import numpy as np
import pytest
import scipy.sparse.linalg as spla

import randla
from randla._backend import NUMPY
from randla.eig import _lanczos
from randla.eig._lanczos import _Basis


def _matrix(m, n, values, seed):
    rng = np.random.default_rng(seed)
    U = np.linalg.qr(rng.standard_normal((m, len(values))))[0]
    V = np.linalg.qr(rng.standard_normal((n, len(values))))[0]
    return (U * values) @ V.T


def _basis(n, d, seed):
    Q = np.linalg.qr(np.random.default_rng(seed).standard_normal((n, d)))[0]
    return _Basis(NUMPY, n, d + 8, Q)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_project_twice_removes_the_basis_and_reports_in_one_go(dtype):
    n, d, b = 300, 24, 4
    basis = _basis(n, d, 0)
    V = basis.view().astype(dtype)
    basis.store = basis.store.astype(dtype, order="F")
    rng = np.random.default_rng(1)
    # mostly inside V: the first pass cancels most of each column
    W = (V @ rng.standard_normal((d, b)) + 1e-3 * rng.standard_normal((n, b))).astype(dtype)
    W_in = W.copy()
    projected, C, before, gram = basis.project_twice(W)
    eps = np.finfo(dtype).eps
    np.testing.assert_array_equal(W, W_in)                 # W itself is left alone
    assert projected.dtype == dtype and gram.dtype == dtype
    assert C.dtype == np.float64 and before.dtype == np.float64
    assert C.shape == (d, b) and gram.shape == (b, b) and before.shape == (b,)
    # W = V C + W', W' ⟂ V to rounding, G = W'ᵀW', before = column norms of W
    scale = np.linalg.norm(W_in.astype(np.float64), axis=0)
    assert np.abs(V.T @ projected).max() <= 20 * eps * scale.max()
    rebuilt = V.astype(np.float64) @ C + projected
    assert np.abs(rebuilt - W_in).max() <= 20 * eps * scale.max()
    np.testing.assert_allclose(gram, projected.T @ projected,
                               rtol=0, atol=20 * eps * np.abs(gram).max())
    np.testing.assert_allclose(before, scale, rtol=10 * eps)


def test_tall_qr_from_a_given_gram_matrix_matches_its_own():
    Y = np.random.default_rng(2).standard_normal((500, 6))
    Q, R = NUMPY.tall_qr(Y)
    Qg, Rg = NUMPY.tall_qr(Y, gram=Y.T @ Y)
    np.testing.assert_array_equal(Q, Qg)
    np.testing.assert_array_equal(R, Rg)


@pytest.fixture
def overlapped(monkeypatch):
    calls = []
    real = _Basis.project_twice

    def counted(self, W):
        calls.append(W.shape)
        return real(self, W)

    monkeypatch.setattr(_lanczos, "_overlapped", lambda bk: True)
    monkeypatch.setattr(_Basis, "project_twice", counted)
    return calls


def _with_and_without(overlapped, monkeypatch, run):
    with_overlap = run()
    assert overlapped, "the overlapped step did not run"
    monkeypatch.setattr(_lanczos, "_overlapped", lambda bk: False)
    overlapped.clear()
    without = run()
    assert not overlapped
    return with_overlap, without


# A non-contiguous view keeps dense products on BLAS (not the numba sweep),
# so the basis is the BLAS one the GPU uses, and dense svds keeps A V.
@pytest.mark.parametrize("kind", ["strided", "operator"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_svds_overlapped_matches_the_plain_step(overlapped, monkeypatch, kind, dtype):
    values = 1.0 / np.arange(1, 61)
    A = _matrix(400, 150, values, 3).astype(dtype)
    if kind == "strided":
        operand = np.zeros((400, 300), dtype=dtype)[:, ::2]
        operand[:] = A
    else:
        operand = spla.aslinearoperator(A)
    k = 8

    def run():
        return randla.svds(operand, k=k, rng=5)

    (u, s, vt), (u0, s0, vt0) = _with_and_without(overlapped, monkeypatch, run)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(s, s0, rtol=tol)
    np.testing.assert_allclose(s[::-1], values[:k], rtol=tol * 10)
    # the same singular subspaces
    for X, X0 in ((u, u0), (vt.T, vt0.T)):
        assert np.linalg.norm(X @ X.T - X0 @ X0.T, 2) <= (1e-8 if dtype == np.float64 else 1e-2)


@pytest.mark.parametrize("k", [1, 6])
def test_eigsh_overlapped_matches_the_plain_step(overlapped, monkeypatch, k):
    rng = np.random.default_rng(4)
    G = rng.standard_normal((300, 300))
    A = spla.aslinearoperator((G + G.T) / 2)

    def run():
        return randla.eigsh(A, k=k, rng=1)

    (w, X), (w0, X0) = _with_and_without(overlapped, monkeypatch, run)
    np.testing.assert_allclose(w, w0, rtol=1e-12)
    reference = np.linalg.eigvalsh((G + G.T) / 2)
    expected = reference[np.argsort(-np.abs(reference), kind="stable")[:k]]
    np.testing.assert_allclose(np.sort(w), np.sort(expected), rtol=1e-10)
    assert np.linalg.norm(X @ X.T - X0 @ X0.T, 2) <= 1e-8
