"""The host's single-read kernel for ``(b - A z, A.T (b - A z))``."""
import numba
import numpy as np
import pytest

from randla.solve import _cpu_sweep


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 1e-4)])
@pytest.mark.parametrize("m, n", [(1, 1), (7, 3), (1037, 61), (3000, 200)])
@pytest.mark.parametrize("k", [1, 2, 5, _cpu_sweep.MAX_COLUMNS])
def test_sweep_matches_two_products(m, n, k, dtype, rtol):
    rng = np.random.default_rng(m + n + k)
    A = rng.standard_normal((m, n)).astype(dtype)
    Z = rng.standard_normal((n, k)).astype(dtype)
    B = rng.standard_normal((m, k)).astype(dtype)
    assert _cpu_sweep.supported(A, k)
    for rhs, T_ref in ((B, B.astype(np.float64) - A.astype(np.float64) @ Z),
                       (None, A.astype(np.float64) @ Z)):
        T, G = _cpu_sweep.sweep(A, Z, rhs)
        assert T.shape == (m, k) and G.shape == (n, k)
        assert T.dtype == G.dtype == dtype
        G_ref = A.T.astype(np.float64) @ T.astype(np.float64)
        scale = np.abs(A).max() * (np.abs(Z).max() * n + np.abs(B).max())
        np.testing.assert_allclose(T, T_ref, rtol=0, atol=rtol * scale)
        np.testing.assert_allclose(G, G_ref, rtol=0, atol=rtol * scale * np.abs(A).max() * m)


def test_sweep_does_not_depend_on_the_thread_count():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((20000, 50))
    Z, B = rng.standard_normal((50, 2)), rng.standard_normal((20000, 2))
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = _cpu_sweep.sweep(A, Z, B)
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        two = _cpu_sweep.sweep(A, Z, B)
    finally:
        numba.set_num_threads(before)
    assert all(np.array_equal(a, b) for a, b in zip(one, two))


def test_sweep_refuses_what_it_cannot_do():
    A = np.ones((10, 5))
    assert not _cpu_sweep.supported(np.asfortranarray(A), 1)
    assert not _cpu_sweep.supported(A.astype(np.int64), 1)
    assert not _cpu_sweep.supported(A, 0)
    assert not _cpu_sweep.supported(A, _cpu_sweep.MAX_COLUMNS + 1)
    assert not _cpu_sweep.supported(A[:, ::2], 1)


@pytest.mark.parametrize("shape", [(1, 1), (5, 5), (130, 130), (40, 70), (70, 40)])
@pytest.mark.parametrize("triangle, part", [(_cpu_sweep.FULL, lambda M: M),
                                            (_cpu_sweep.UPPER, np.triu),
                                            (_cpu_sweep.LOWER, np.tril)])
def test_matmul_reads_only_the_named_triangle(shape, triangle, part):
    rng = np.random.default_rng(shape[0])
    M = rng.standard_normal(shape)
    X = rng.standard_normal((shape[1], 3))
    # garbage in the half it must skip would show in the result
    np.testing.assert_allclose(_cpu_sweep.matmul(M, X, triangle), part(M) @ X,
                               rtol=1e-13, atol=1e-13)
