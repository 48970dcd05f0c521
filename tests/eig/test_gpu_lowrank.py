"""The low-rank and eigen drivers on CuPy data: same code path, same answers as numpy.

Each driver runs on a CuPy array (and, where it matters, a cupyx CSR matrix or
LinearOperator) and is checked against the numpy run of the same call with
the same ``rng``: the Gaussian test matrices are bit-identical on both
devices, so the results agree to rounding.  Skipped (with the reason) where
CuPy or a CUDA device is missing.
"""
import numpy as np
import pytest
import scipy.sparse.linalg as spla

import randla
from randla._testing import require_gpu
from randla.eig import epsi, lazy_epsi, nystrom, qb, randomized_svd, range_finder
from randla.eig._operand import gaussian
from randla.sketch import as_rng_state

cp = require_gpu()

import cupyx.scipy.sparse as cusparse  # noqa: E402
import cupyx.scipy.sparse.linalg as cusparse_linalg  # noqa: E402

pytestmark = pytest.mark.gpu
M, N, K = 300, 120, 6


def orthonormal(n, r, rng):
    return np.linalg.qr(rng.standard_normal((n, r)))[0]


def known_svd(s, m=M, n=N, seed=0):
    """A = U diag(s) Vᵀ (host float64) with random orthonormal U, V."""
    rng = np.random.default_rng(seed)
    U, V = orthonormal(m, s.size, rng), orthonormal(n, s.size, rng)
    return (U * s) @ V.T, U, V


def known_eig(lam, seed=0):
    """Symmetric A = Q diag(lam) Qᵀ (host float64)."""
    Q = orthonormal(lam.size, lam.size, np.random.default_rng(seed))
    A = (Q * lam) @ Q.T
    return (A + A.T) / 2, Q


def sin_angle(X, Y):
    """Largest sine of the principal angles between span(X) and span(Y) (host arrays)."""
    Qx, Qy = np.linalg.qr(X)[0], np.linalg.qr(Y)[0]
    return float(np.linalg.norm(Qy - Qx @ (Qx.T @ Qy), 2))


POLY1 = 1.0 / np.arange(1, N + 1)


def host(x):
    assert isinstance(x, cp.ndarray), type(x)
    return cp.asnumpy(x)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_gaussian_test_matrix_is_bit_identical_on_the_gpu(dtype):
    state = as_rng_state(2024)
    on_host, after_host = gaussian(N, 17, state, np.dtype(dtype), np)
    on_gpu, after_gpu = gaussian(N, 17, state, np.dtype(dtype), cp)
    assert on_gpu.dtype == dtype and on_gpu.shape == (N, 17)
    np.testing.assert_array_equal(host(on_gpu), on_host)
    assert after_gpu == after_host


@pytest.mark.parametrize("power_iters, method", [(0, "subspace"), (2, "subspace"),
                                                 (1, "krylov")])
def test_range_finder_and_qb_match_numpy(power_iters, method):
    A = known_svd(POLY1)[0]
    ref = range_finder(A, K, power_iters=power_iters, method=method, rng=3)
    res = range_finder(cp.asarray(A), K, power_iters=power_iters, method=method, rng=3)
    Q = host(res.Q)
    assert res.Q.dtype == np.float64 and Q.shape == ref.Q.shape
    assert (res.passes, res.matvecs) == (ref.passes, ref.matvecs)
    # Same Gaussians: the same basis up to rounding (compare the projectors).
    assert np.linalg.norm(Q @ Q.T - ref.Q @ ref.Q.T, 2) <= 1e-8
    assert isinstance(res.error_estimate, float)
    assert res.error_estimate == pytest.approx(ref.error_estimate, rel=1e-6)
    ref_qb = qb(A, K, power_iters=power_iters, method=method, rng=3)
    res_qb = qb(cp.asarray(A), K, power_iters=power_iters, method=method, rng=3)
    QB = host(res_qb.Q) @ host(res_qb.B)
    assert np.linalg.norm(QB - ref_qb.Q @ ref_qb.B) <= 1e-10 * np.linalg.norm(A)


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-10), (np.float32, 1e-4)])
@pytest.mark.parametrize("order", ["C", "F"])
def test_randomized_svd_matches_numpy(dtype, rtol, order):
    A = np.asarray(known_svd(POLY1, seed=1)[0].astype(dtype), order=order)
    ref = randomized_svd(A, K, rng=5)
    res = randomized_svd(cp.asarray(A, order=order), K, rng=5)
    U, s, Vt = host(res.U), host(res.s), host(res.Vt)
    assert U.dtype == s.dtype == Vt.dtype == dtype
    assert U.shape == (M, K) and s.shape == (K,) and Vt.shape == (K, N)
    np.testing.assert_allclose(s, ref.s, rtol=rtol)
    # The rank-K approximations agree (a sign-free comparison of the vectors).
    diff = (U * s) @ Vt - (ref.U * ref.s) @ ref.Vt
    assert np.linalg.norm(diff.astype(np.float64)) <= 100 * rtol
    assert res.error_estimate == pytest.approx(ref.error_estimate, rel=1e3 * rtol)
    assert (res.passes, res.matvecs) == (ref.passes, ref.matvecs)


def test_nystrom_matches_numpy():
    A = known_eig(POLY1, seed=2)[0]
    ref = nystrom(A, K, rng=4)
    res = nystrom(cp.asarray(A), K, rng=4)
    U, lam = host(res.U), host(res.eigenvalues)
    assert U.dtype == lam.dtype == np.float64 and U.shape == (N, K)
    np.testing.assert_allclose(lam, ref.eigenvalues, rtol=1e-10)
    assert np.linalg.norm((U * lam) @ U.T - (ref.U * ref.eigenvalues) @ ref.U.T) <= 1e-9
    assert res.error_estimate == pytest.approx(ref.error_estimate, rel=1e-6)
    assert (res.passes, res.matvecs) == (ref.passes, ref.matvecs)


def test_lazy_epsi_singular_vectors_match_numpy():
    A, U, V = known_svd(POLY1, seed=3)
    ref = lazy_epsi(A, K, tol=1e-10, rng=0)
    res = lazy_epsi(cp.asarray(A), K, tol=1e-10, rng=0)
    values, vectors, left = host(res.values), host(res.vectors), host(res.left_vectors)
    assert values.dtype == vectors.dtype == left.dtype == np.float64
    # Small diagnostics are host arrays.
    assert isinstance(res.residuals, np.ndarray) and isinstance(res.converged, np.ndarray)
    assert res.converged.all() and ref.converged.all()
    np.testing.assert_allclose(values, ref.values, rtol=1e-10)
    np.testing.assert_allclose(values, POLY1[:K], rtol=1e-10)
    assert sin_angle(vectors, ref.vectors) < 1e-7 and sin_angle(vectors, V[:, :K]) < 1e-7
    assert sin_angle(left, U[:, :K]) < 1e-7
    # The residuals it reports are those of the vectors it returns.
    true = np.linalg.norm(A.T @ (A @ vectors) - vectors * values ** 2, axis=0) / values[0] ** 2
    np.testing.assert_allclose(res.residuals, true, rtol=1e-3, atol=1e-15)


def test_lazy_epsi_hermitian_and_epsi_match_numpy():
    A, Q = known_eig(POLY1, seed=4)
    res = lazy_epsi(cp.asarray(A), K, hermitian=True, sketch_size=40, tol=1e-10, rng=0)
    ref = lazy_epsi(A, K, hermitian=True, sketch_size=40, tol=1e-10, rng=0)
    assert res.converged.all() and res.left_vectors is None
    np.testing.assert_allclose(host(res.values), ref.values, rtol=1e-10)
    assert sin_angle(host(res.vectors), Q[:, :K]) < 1e-7
    top = epsi(cp.asarray(known_svd(POLY1, seed=5)[0]), tol=1e-11, rng=3)
    assert top.converged[0] and abs(float(top.values[0]) - 1.0) <= 1e-10


def test_lazy_epsi_float32():
    A = known_svd(10.0 ** (-np.arange(N) / 10), seed=6)[0].astype(np.float32)
    res = lazy_epsi(cp.asarray(A), K, tol=1e-5, rng=0)
    values = host(res.values)
    assert values.dtype == host(res.vectors).dtype == np.float32 and res.converged.all()
    np.testing.assert_allclose(values, 10.0 ** (-np.arange(K) / 10), rtol=1e-5)


@pytest.mark.parametrize("shape", [(M, N), (N, M)])
def test_svds_dense_matches_numpy_and_arpack(shape):
    A = known_svd(POLY1, seed=7)[0]
    A = A if shape[0] >= shape[1] else np.ascontiguousarray(A.T)
    u, s, vh = randla.svds(cp.asarray(A), K, rng=0)
    u_ref, s_ref, vh_ref = randla.svds(A, K, rng=0)
    S = spla.svds(A, K, rng=0, return_singular_vectors=False)
    u, s, vh = host(u), host(s), host(vh)
    assert u.shape == u_ref.shape and vh.shape == vh_ref.shape and s.dtype == np.float64
    assert np.all(np.diff(s) > 0), "ascending, as scipy returns them"
    assert np.abs(s - s_ref).max() <= 1e-10 * S.max() and np.abs(s - S).max() <= 1e-10 * S.max()
    assert sin_angle(u, u_ref) <= 1e-8 and sin_angle(vh.T, vh_ref.T) <= 1e-8
    np.testing.assert_allclose(A @ vh.T, u * s, atol=1e-12 * S.max())
    only = randla.svds(cp.asarray(A), K, rng=0, return_singular_vectors=False)
    np.testing.assert_allclose(host(only), s, rtol=1e-12)


@pytest.mark.parametrize("kind", ["csr", "linop"])
def test_svds_cupyx_sparse_and_linear_operator(kind):
    A = known_svd(POLY1, seed=8)[0]
    A[np.abs(A) < 0.002] = 0.0     # about a quarter of the entries: CSR keeps the rest
    wrap = {"csr": lambda X: cusparse.csr_matrix(X),
            "linop": cusparse_linalg.aslinearoperator}[kind]
    u, s, vh = randla.svds(wrap(cp.asarray(A)), K, rng=0)
    S = np.linalg.svd(A, compute_uv=False)[:K][::-1]
    assert isinstance(u, cp.ndarray) and isinstance(vh, cp.ndarray)
    np.testing.assert_allclose(host(s), S, atol=1e-10 * S.max())
    np.testing.assert_allclose(A @ host(vh).T, host(u) * host(s), atol=1e-10 * S.max())


def test_svds_float32():
    A = known_svd(10.0 ** (-np.arange(N) / 10), seed=9)[0]
    u, s, vh = randla.svds(cp.asarray(A, dtype=np.float32), K, rng=0)
    assert u.dtype == s.dtype == vh.dtype == np.float32
    exact = 10.0 ** (-np.arange(K) / 10)[::-1]
    assert np.abs(host(s) - exact).max() <= 1e-5


def test_eigsh_matches_numpy_and_arpack():
    lam = np.r_[-1.0, 0.9, -0.8, 0.7, 0.6, -0.5, 0.5 * POLY1[1:N - 5] ** 1.5]
    A = known_eig(lam, seed=10)[0]
    w, v = randla.eigsh(cp.asarray(A), K, rng=0)
    w_ref, v_ref = randla.eigsh(A, K, rng=0)
    W = spla.eigsh(A, K, rng=0, return_eigenvectors=False)
    w, v = host(w), host(v)
    assert np.all(np.diff(w) > 0) and v.shape == (N, K)
    np.testing.assert_allclose(w, w_ref, atol=1e-10)
    np.testing.assert_allclose(np.sort(w), np.sort(W), atol=1e-10)
    assert sin_angle(v, v_ref) <= 1e-8
    only = host(randla.eigsh(cp.asarray(A), K, rng=0, return_eigenvectors=False))
    np.testing.assert_allclose(only, randla.eigsh(A, K, rng=0, return_eigenvectors=False),
                               atol=1e-10)


def test_eigsh_hands_over_to_cupyx():
    lam = np.r_[10.0, 9.0, 8.0, 7.0, 6.0, 5.0, np.linspace(1, 0.01, N - 6)]
    A = known_eig(lam, seed=11)[0]
    w = randla.eigsh(cp.asarray(A), K, which="LA", return_eigenvectors=False)
    assert isinstance(w, cp.ndarray)
    np.testing.assert_allclose(np.sort(host(w)), np.sort(lam[:K]), rtol=1e-8)


@pytest.mark.parametrize("call", [
    lambda A: randla.eigsh(A, K, sigma=0.5),
    lambda A: randla.eigsh(A, K, which="LA", rng=0),
    lambda A: randla.svds(A, K, solver="arpack"),
    lambda A: randla.svds(A, K, which="SM", v0=cp.ones(N)),
])
def test_arguments_cupyx_lacks_are_refused(call):
    A = cp.asarray(known_eig(POLY1, seed=12)[0])
    with pytest.raises(ValueError, match="cupyx"):
        call(A)


def test_host_and_device_operands_do_not_mix():
    A = cp.asarray(known_svd(POLY1, seed=13)[0])
    with pytest.raises(TypeError):
        lazy_epsi(A, K, v0=np.ones((N, K)))
