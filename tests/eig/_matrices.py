"""Known-spectrum test matrices for tests/eig (ALGORITHMS.md §4), and its fixtures."""
import functools

import numpy as np
import pytest
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

SPECTRA = {
    "poly1": lambda r: 1.0 / np.arange(1, r + 1),
    "poly05": lambda r: np.arange(1, r + 1) ** -0.5,
    "exp": lambda r: 10.0 ** (-np.arange(r) / 10),
    # A step down to a plateau just below it: a small gap after 10 values.
    "step": lambda r: np.r_[np.ones(10), 0.8 * np.ones(r - 10)],
}


@pytest.fixture(autouse=True)
def one_blas_thread():
    """One BLAS thread: on the shared 2-core machine two-thread OpenBLAS calls on small
    matrices run many times slower (MEASURED.md).  Results do not depend on it."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield


@pytest.fixture
def ncv_as_given(monkeypatch):
    """The drop-ins keep a given ncv even where randla's default basis is
    larger and fits its memory bound: the small-basis runs (restarts every
    few steps) that only a huge n reaches otherwise."""
    monkeypatch.setattr("randla.eig._dropins._RAISE_NCV_BYTES", 0)


def laplacian_1d(n):
    """The n x n second-difference matrix (CSR): its top eigenvalues are a
    tight cluster below 4, a slow case for Krylov methods."""
    return sp.diags([-np.ones(n - 1), 2 * np.ones(n), -np.ones(n - 1)], [-1, 0, 1],
                    format="csr")


def orthonormal(n, r, rng):
    return np.linalg.qr(rng.standard_normal((n, r)))[0]


def known_svd(m, n, s, seed=0):
    """A = U diag(s) Vᵀ with random orthonormal U (m x r), V (n x r); returns A, U, s, V.

    Cached: callers must not modify the arrays.
    """
    return _known_svd(m, n, tuple(np.asarray(s, dtype=np.float64)), seed)


@functools.lru_cache(maxsize=64)
def _known_svd(m, n, s, seed):
    rng = np.random.default_rng(seed)
    s = np.asarray(s)
    U, V = orthonormal(m, s.size, rng), orthonormal(n, s.size, rng)
    arrays = ((U * s) @ V.T, U, s, V)
    for a in arrays:
        a.flags.writeable = False
    return arrays


def known_eig(n, lam, seed=0):
    """Symmetric A = Q diag(lam) Qᵀ; returns A, Q, lam."""
    rng = np.random.default_rng(seed)
    lam = np.asarray(lam, dtype=np.float64)
    Q = orthonormal(n, lam.size, rng)
    A = (Q * lam) @ Q.T
    return (A + A.T) / 2, Q, lam


def sin_angle(X, Y):
    """Largest sine of the principal angles between span(X) and span(Y)."""
    Qx, Qy = np.linalg.qr(X)[0], np.linalg.qr(Y)[0]
    return float(np.linalg.norm(Qy - Qx @ (Qx.T @ Qy), 2))


def clustered_sparse(m=5000, n=500, seed=0):
    """CSR with 10 nonzeros per row at random columns, column j scaled by
    (j + 1)^-1/2: singular values 10 and 11 are only about 5 % apart."""
    rng = np.random.default_rng(seed)
    cols = rng.integers(0, n, size=m * 10)
    vals = rng.standard_normal(m * 10) / np.sqrt(cols + 1.0)
    A = sp.csr_array((vals, cols, np.arange(0, m * 10 + 1, 10)), shape=(m, n))
    A.sum_duplicates()
    return A


def non_finite_identity(bad, kind):
    """A 40 x 40 identity with one entry ``bad`` (NaN or inf) as a dense array,
    CSR array or LinearOperator, and the ValueError message its routines give."""
    from scipy.sparse.linalg import aslinearoperator
    A = np.eye(40)
    A[3, 4] = bad
    A = {"dense": A, "sparse": sp.csr_array(A), "operator": aslinearoperator(A)}[kind]
    return A, "A returned non-finite" if kind == "operator" else "A has non-finite entries"
