"""The host Lanczos basis: projections and restarts on numba's threads."""
import numba
import numpy as np
import pytest

from randla.eig import _cpu_basis
from randla.eig._cpu_basis import ChunkedBasis


@pytest.fixture(params=["shipped", "small"])
def chunk(request, monkeypatch):
    """The shipped row chunks, or chunks small enough that every case spans
    several, with a ragged last one."""
    if request.param == "small":
        monkeypatch.setattr(_cpu_basis, "_CHUNK", 7)


def _orthonormal(rng, n, d, dtype):
    return np.linalg.qr(rng.standard_normal((n, d)))[0].astype(dtype)


def _reference(V, W, dgks):
    """Classical Gram–Schmidt in float64 BLAS, a second time as the basis does."""
    V, W = V.astype(np.float64), W.astype(np.float64)
    before = np.linalg.norm(W, axis=0)
    C = V.T @ W
    W = W - V @ C
    if (np.linalg.norm(W, axis=0) < dgks * before).any():
        C2 = V.T @ W
        W, C = W - V @ C2, C + C2
    return W, C, before


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-13), (np.float32, 2e-5)])
@pytest.mark.parametrize("n, d, b", [(1, 0, 1), (50, 3, 1), (1300, 17, 1), (1300, 40, 4),
                                     (3000, 5, 3)])
@pytest.mark.parametrize("along", [0.0, 20.0])      # 20: most of W lies in span(V)
def test_project_matches_gram_schmidt(n, d, b, dtype, rtol, along, chunk):
    rng = np.random.default_rng(n + d + b)
    V = _orthonormal(rng, n, d + b, dtype)
    W = (rng.standard_normal((n, b)) + along * V[:, :d + b] @ rng.standard_normal((d + b, b))
         ).astype(dtype)
    basis = ChunkedBasis(n, d + b + 2, V[:, :d])
    basis.append(V[:, d:])                 # written by the projection, not before it
    W_in = W.copy()
    W_out, C, before = basis.project(W, 1 / np.sqrt(2))
    np.testing.assert_array_equal(W, W_in)                     # the caller's W is kept
    np.testing.assert_array_equal(basis.view(), V)
    W_ref, C_ref, before_ref = _reference(V, W, 1 / np.sqrt(2))
    scale = max(float(np.abs(W).max()), 1.0) * np.sqrt(n)
    assert W_out.dtype == C.dtype == dtype and before.dtype == np.float64
    np.testing.assert_allclose(W_out, W_ref, rtol=0, atol=rtol * scale)
    np.testing.assert_allclose(C, C_ref, rtol=0, atol=rtol * scale)
    np.testing.assert_allclose(before, before_ref, rtol=1e-6 if dtype == np.float32 else 1e-13)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_projection_leaves_w_orthogonal_to_the_basis(dtype, chunk):
    # most of W along V: one Gram–Schmidt pass leaves rounding of W's size
    # along V, which the second pass removes
    rng = np.random.default_rng(11)
    V = _orthonormal(rng, 2000, 30, dtype)
    W = (rng.standard_normal((2000, 3)) + 1e4 * V @ rng.standard_normal((30, 3))
         ).astype(dtype)
    basis = ChunkedBasis(2000, 30, V)
    W_out, _, _ = basis.project(W, 1 / np.sqrt(2))
    eps = np.finfo(dtype).eps
    along = np.linalg.norm(V.T.astype(np.float64) @ W_out, axis=0)
    assert (along <= 20 * eps * np.linalg.norm(W_out.astype(np.float64), axis=0)).all()


def test_append_keeps_its_own_copy():
    rng = np.random.default_rng(2)
    V = _orthonormal(rng, 100, 4, np.float64)
    basis = ChunkedBasis(100, 4, V[:, :2])
    block = V[:, 2:].copy()
    basis.append(block)
    block *= 3                  # as a product that writes to its input might
    np.testing.assert_array_equal(basis.view(), V)


def test_restart_checks_the_shape_of_y():
    V = _orthonormal(np.random.default_rng(0), 50, 4, np.float64)
    basis = ChunkedBasis(50, 4, V)
    for Y in (np.eye(3)[:, :2], np.eye(4, 5)):
        with pytest.raises(ValueError, match="restart"):
            basis.restart(Y)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("keep", [1, 9, 12])
def test_restart_keeps_v_times_y(dtype, keep, chunk):
    rng = np.random.default_rng(keep)
    V = _orthonormal(rng, 1100, 12, dtype)
    Y = rng.standard_normal((12, keep))
    basis = ChunkedBasis(1100, 12, V[:, :10])
    basis.append(V[:, 10:])
    basis.restart(Y)
    assert basis.used == keep
    expected = V.astype(np.float64) @ Y
    np.testing.assert_allclose(basis.view(), expected, rtol=0,
                               atol=(1e-13 if dtype == np.float64 else 1e-5) * 12)


def test_append_grows_the_store():
    rng = np.random.default_rng(0)
    V = _orthonormal(rng, 300, 9, np.float64)
    basis = ChunkedBasis(300, 2, V[:, :2])
    for j in range(2, 9, 3):
        basis.append(V[:, j:j + 3])
    np.testing.assert_array_equal(basis.view(), V)


def test_results_do_not_depend_on_the_thread_count():
    rng = np.random.default_rng(3)
    V = _orthonormal(rng, 20000, 30, np.float64)
    W = rng.standard_normal((20000, 4)) + 10 * V @ rng.standard_normal((30, 4))
    Y = rng.standard_normal((30, 12))
    before = numba.get_num_threads()
    results = []
    try:
        for threads in (1, min(2, numba.config.NUMBA_NUM_THREADS)):
            numba.set_num_threads(threads)
            basis = ChunkedBasis(20000, 30, V[:, :26])
            basis.append(V[:, 26:])
            projected = basis.project(W, 1 / np.sqrt(2))
            basis.restart(Y)
            results.append((*projected, basis.view().copy()))
    finally:
        numba.set_num_threads(before)
    for one, two in zip(*results):
        np.testing.assert_array_equal(one, two)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_times_is_v_times_y_and_keeps_the_basis(dtype, chunk):
    rng = np.random.default_rng(5)
    V = _orthonormal(rng, 1100, 12, dtype)
    Y = rng.standard_normal((12, 5))
    basis = ChunkedBasis(1100, 16, V[:, :9])
    basis.append(V[:, 9:])                 # still pending: times writes it first
    product = basis.times(Y)
    assert product.shape == (1100, 5) and product.dtype == dtype
    np.testing.assert_allclose(product, V.astype(np.float64) @ Y, rtol=0,
                               atol=(1e-13 if dtype == np.float64 else 1e-5) * 12)
    np.testing.assert_array_equal(basis.view(), V)
    with pytest.raises(ValueError, match="times"):
        basis.times(np.eye(11, 2))
