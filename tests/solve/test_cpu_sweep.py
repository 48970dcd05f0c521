"""The host's single-read kernel for ``(b - A z, A.T (b - A z))``."""
import numba
import numpy as np
import pytest

from randla.solve import _cpu_sweep


@pytest.fixture(params=["full", "small"])
def chunk_entries(request, monkeypatch):
    """The kernels' cache chunks as shipped, or small enough that every block
    of rows spans several chunks with a ragged last one."""
    if request.param == "small":
        monkeypatch.setattr(_cpu_sweep, "_ROW_CHUNK", 24)
        monkeypatch.setattr(_cpu_sweep, "_PIPELINE_CHUNK", 24)
        monkeypatch.setattr(_cpu_sweep, "_COLUMN_CHUNK_ENTRIES", 1000)


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 1e-4)])
@pytest.mark.parametrize("m, n", [(1, 1), (7, 3), (1037, 61), (3000, 200), (3000, 600)])
@pytest.mark.parametrize("k", [1, 2, 5, 8, 13, _cpu_sweep.MAX_COLUMNS])
def test_sweep_matches_two_products(m, n, k, dtype, rtol, order, chunk_entries):
    rng = np.random.default_rng(m + n + k)
    A = np.asarray(rng.standard_normal((m, n)).astype(dtype), order=order)
    Z = rng.standard_normal((n, k)).astype(dtype)
    B = rng.standard_normal((m, k)).astype(dtype)
    if order == "F" and k > _cpu_sweep.MAX_COLUMN_MAJOR_COLUMNS and not A.flags.c_contiguous:
        assert not _cpu_sweep.supported(A, k)
        return
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


@pytest.mark.parametrize("k", [1, 2])       # the one-column kernel and the general one
@pytest.mark.parametrize("order", ["C", "F"])
def test_float32_products_accumulate_in_float64(order, k):
    # non-negative data: float32 accumulation over 1000 terms would be off by
    # several units in the last place, float64 accumulation by at most one
    rng = np.random.default_rng(0)
    A = np.asarray(rng.random((2000, 1000)).astype(np.float32), order=order)
    Z = rng.random((1000, k)).astype(np.float32)
    reference = A.astype(np.float64) @ Z.astype(np.float64)
    T, _ = _cpu_sweep.sweep(A, Z)
    assert np.abs(T - reference).max() <= np.finfo(np.float32).eps * np.abs(reference).max()


@pytest.mark.parametrize("k", [1, 2])
@pytest.mark.parametrize("order", ["C", "F"])
def test_sweep_does_not_depend_on_the_thread_count(order, k):
    rng = np.random.default_rng(0)
    A = np.asarray(rng.standard_normal((20000, 50)), order=order)
    Z, B = rng.standard_normal((50, k)), rng.standard_normal((20000, k))
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
    assert _cpu_sweep.supported(A, 1) and _cpu_sweep.supported(np.asfortranarray(A), 1)
    assert not _cpu_sweep.supported(np.asfortranarray(A), 1, layouts="C")
    assert not _cpu_sweep.supported(A.astype(np.int64), 1)
    assert not _cpu_sweep.supported(A, 0)
    assert not _cpu_sweep.supported(A, _cpu_sweep.MAX_COLUMNS + 1)
    assert _cpu_sweep.supported(A, _cpu_sweep.MAX_COLUMN_MAJOR_COLUMNS + 1)
    assert not _cpu_sweep.supported(np.asfortranarray(A),
                                    _cpu_sweep.MAX_COLUMN_MAJOR_COLUMNS + 1)
    assert not _cpu_sweep.supported(A[:, ::2], 1)


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-13), (np.float32, 1e-5)])
@pytest.mark.parametrize("shape", [(1, 1), (5, 5), (130, 130), (40, 70), (70, 40)])
@pytest.mark.parametrize("triangle, part", [(_cpu_sweep.FULL, lambda M: M),
                                            (_cpu_sweep.LOWER, np.tril)])
@pytest.mark.parametrize("columns", [1, 3, 4, 7, 16])
def test_matmul_reads_only_the_named_triangle(shape, triangle, part, dtype, tol, columns):
    rng = np.random.default_rng(shape[0])
    M = rng.standard_normal(shape).astype(dtype)
    X = rng.standard_normal((shape[1], columns)).astype(dtype)
    # garbage in the half it must skip would show in the result
    product = _cpu_sweep.matmul(M, X, triangle)
    assert product.dtype == dtype
    reference = part(M).astype(np.float64) @ X.astype(np.float64)
    np.testing.assert_allclose(product, reference, rtol=0,
                               atol=tol * np.abs(M).max() * np.abs(X).max() * shape[1])


@pytest.mark.parametrize("columns", [1, 4, 6])
def test_matmul_does_not_depend_on_the_thread_count(columns):
    import numba
    rng = np.random.default_rng(1)
    M = rng.standard_normal((203, 57))
    X = rng.standard_normal((57, columns))
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = _cpu_sweep.matmul(M, X)
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        two = _cpu_sweep.matmul(M, X)
    finally:
        numba.set_num_threads(before)
    assert np.array_equal(one, two)


def test_single_threaded_blas_limits_and_restores_the_threads():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    from randla._backend import NUMPY
    before = [info["num_threads"] for info in threadpoolctl.threadpool_info()
              if info["user_api"] == "blas"]
    with NUMPY.single_threaded_blas():
        inside = [info["num_threads"] for info in threadpoolctl.threadpool_info()
                  if info["user_api"] == "blas"]
    after = [info["num_threads"] for info in threadpoolctl.threadpool_info()
             if info["user_api"] == "blas"]
    assert before, "threadpoolctl sees no BLAS under numpy"
    assert inside == [1] * len(before)
    assert after == before
