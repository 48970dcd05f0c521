"""The CuPy path of randla.trace and randla.diag_estimate: same probes, same answers.

Each test runs the same call on numpy and on CuPy data with the same ``rng``;
the probes are bit-identical, so the two estimates differ only by rounding.
Skipped (with the reason) where CuPy or a CUDA device is missing.
"""
import numpy as np
import pytest
import scipy.sparse as sp

import randla
from randla._testing import require_gpu

cp = require_gpu()

import cupyx.scipy.sparse as csp  # noqa: E402
import cupyx.scipy.sparse.linalg as csla  # noqa: E402

pytestmark = pytest.mark.gpu
N = 300
METHODS = ["hutchinson", "hutch++", "nystrom++", "xtrace", "xnystrace"]
# Rounding alone separates the two runs: relative to the largest sample
# (the trace's scale), 1e-9 leaves a wide margin over float64 rounding
# amplified by the k x k triangular solves, 2e-3 over float32's.
RTOL = {np.float64: 1e-9, np.float32: 2e-3}


def _psd(dtype=np.float64, n=N):
    """Q diag(i^-1) Q^T: PSD, moderate decay, so no factor is ill-conditioned."""
    rng = np.random.default_rng(7)
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    A = (Q / np.arange(1.0, n + 1)) @ Q.T
    return ((A + A.T) / 2).astype(dtype)


def _laplacian(n=2000):
    """Path-graph Laplacian plus 0.1 I, in CSR: sparse, SPD, trace 2.1 n - 2."""
    main = np.full(n, 2.1)
    main[[0, -1]] = 1.1
    return sp.diags([main, -np.ones(n - 1), -np.ones(n - 1)], [0, 1, -1], format="csr")


def _assert_same(res_gpu, res_cpu, rtol):
    assert res_gpu.method == res_cpu.method and res_gpu.matvecs == res_cpu.matvecs
    assert isinstance(res_gpu.samples, np.ndarray)      # documented: host copy
    assert res_gpu.samples.shape == res_cpu.samples.shape
    scale = np.abs(res_cpu.samples).max()
    np.testing.assert_allclose(res_gpu.samples, res_cpu.samples, rtol=0, atol=rtol * scale)
    assert abs(res_gpu.estimate - res_cpu.estimate) <= rtol * scale
    assert abs(res_gpu.stderr - res_cpu.stderr) <= rtol * scale


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("method", METHODS)
def test_dense_trace_matches_numpy(method, dtype):
    A = _psd(dtype)
    cpu = randla.trace(A, matvecs=40, method=method, rng=11)
    gpu = randla.trace(cp.asarray(A), matvecs=40, method=method, rng=11)
    _assert_same(gpu, cpu, RTOL[dtype])
    # and close to the truth: on the host every method is within 0.8 stderr here
    assert abs(gpu.estimate - np.trace(A.astype(np.float64))) <= 5 * max(gpu.stderr, 1e-3)


@pytest.mark.parametrize("probes", ["gaussian", "sphere"])
def test_probe_kinds_match_numpy(probes):
    A = _psd()
    cpu = randla.trace(A, matvecs=40, method="hutch++", probes=probes, rng=5)
    gpu = randla.trace(cp.asarray(A), matvecs=40, method="hutch++", probes=probes, rng=5)
    _assert_same(gpu, cpu, RTOL[np.float64])


def test_adaptive_trace_matches_numpy():
    A = _psd()
    kwargs = dict(rtol=1e-2, matvecs=20, method="xtrace", rng=4)   # stops at 128
    cpu = randla.trace(A, **kwargs)
    gpu = randla.trace(cp.asarray(A), **kwargs)
    assert cpu.converged and gpu.converged
    _assert_same(gpu, cpu, RTOL[np.float64])


def test_cupyx_csr_and_linear_operator_match_numpy():
    L = _laplacian()
    exact = L.diagonal().sum()
    L_gpu = csp.csr_matrix(L)
    for method in ("hutchinson", "xtrace"):
        cpu = randla.trace(L, matvecs=60, method=method, rng=2)
        _assert_same(randla.trace(L_gpu, matvecs=60, method=method, rng=2), cpu, 1e-9)
        _assert_same(randla.trace(csla.aslinearoperator(L_gpu), matvecs=60, method=method,
                                  rng=2), cpu, 1e-9)
        assert abs(cpu.estimate - exact) <= 5 * cpu.stderr


def test_callable_with_cupy_backend():
    A = _psd()
    A_gpu = cp.asarray(A)
    widths = []

    def apply(X):
        assert isinstance(X, cp.ndarray) and X.shape[0] == N
        widths.append(X.shape[1])
        return A_gpu @ X

    cpu = randla.trace(lambda X: A @ X, n=N, matvecs=40, rng=9)
    gpu = randla.trace(apply, n=N, matvecs=40, rng=9, backend="cupy")
    assert sum(widths) == gpu.matvecs == 40
    _assert_same(gpu, cpu, RTOL[np.float64])
    with pytest.raises(TypeError, match="same kind of array"):
        randla.trace(lambda X: A @ cp.asnumpy(X), n=N, matvecs=40, rng=9, backend="cupy")
    with pytest.raises(ValueError, match="does not match"):
        randla.trace(A_gpu, matvecs=40, backend="numpy")


@pytest.mark.parametrize("method", ["hutch++", "nystrom++", "xtrace", "xnystrace"])
def test_low_rank_exact_on_gpu(method):
    """Rank 10 below the sketch size: the sketch's QR is rank-deficient (CholeskyQR2
    gives way to Householder on the device) and the debiased estimates are exact
    up to rounding, as on the host (relative error 1e-14 there)."""
    rng = np.random.default_rng(3)
    V = np.linalg.qr(rng.standard_normal((N, 10)))[0]
    A = (V * np.arange(1.0, 11.0)) @ V.T
    res = randla.trace(cp.asarray((A + A.T) / 2), matvecs=40, method=method, rng=1)
    assert abs(res.estimate - 55.0) <= 1e-10 * 55.0


def test_indefinite_detected_on_gpu():
    A = np.diag(np.r_[np.ones(50), -np.ones(50)])
    with pytest.raises(np.linalg.LinAlgError, match="positive semidefinite"):
        randla.trace(cp.asarray(A), matvecs=20, psd=True, rng=0)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("method", ["hutchinson", "diag++"])
def test_diag_estimate_matches_numpy(method, dtype):
    A = _psd(dtype)
    cpu = randla.diag_estimate(A, matvecs=60, method=method, rng=3)
    gpu = randla.diag_estimate(cp.asarray(A), matvecs=60, method=method, rng=3)
    assert gpu.matvecs == cpu.matvecs == 60 and gpu.method == method
    for got, want in ((gpu.estimate, cpu.estimate), (gpu.stderr, cpu.stderr)):
        assert isinstance(got, cp.ndarray) and got.dtype == want.dtype and got.shape == (N,)
        np.testing.assert_allclose(cp.asnumpy(got), want, rtol=0,
                                   atol=RTOL[dtype] * np.abs(np.diag(A)).max())


def test_diag_estimate_cupyx_csr():
    L = _laplacian()
    cpu = randla.diag_estimate(L, matvecs=30, rng=8)
    gpu = randla.diag_estimate(csp.csr_matrix(L), matvecs=30, rng=8)
    assert isinstance(gpu.estimate, cp.ndarray)
    np.testing.assert_allclose(cp.asnumpy(gpu.estimate), cpu.estimate, rtol=0, atol=1e-12)
