"""Sparse block products on numba's threads agree with scipy's."""
import numba
import numpy as np
import pytest
import scipy.sparse as sp

from randla._sparse_products import SparseProducts, row_splits, sparse_product


def _matrix(fmt, dtype, rng=0, shape=(300, 120), density=0.05):
    # built by hand: scipy.sparse.random_array's seeding keyword changed in 1.15
    g = np.random.default_rng(rng)
    dense = g.standard_normal(shape) * (g.random(shape) < density)
    return sp.csr_array(dense).asformat(fmt).astype(dtype)


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo"])
@pytest.mark.parametrize("transpose", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("b", [1, 7, 20])
@pytest.mark.parametrize("split", [False, True])
def test_products_match_scipy(fmt, transpose, dtype, b, split):
    A = _matrix(fmt, dtype)
    rows = A.shape[0] if transpose else A.shape[1]
    X = np.random.default_rng(1).standard_normal((rows, b)).astype(dtype)
    expected = (A.T if transpose else A) @ X
    splits = row_splits(A) if split else None
    assert (splits is None) == (not split or fmt == "coo")
    result = sparse_product(A, X, transpose=transpose, splits=splits)
    assert result.shape == expected.shape and result.dtype == dtype
    assert result.flags.c_contiguous
    np.testing.assert_allclose(result, expected, rtol=10 * np.finfo(dtype).eps,
                               atol=10 * np.finfo(dtype).eps * np.abs(expected).max())


@pytest.mark.parametrize("fmt, transpose", [("csr", False), ("csr", True), ("csc", False),
                                            ("csc", True)])
def test_each_column_of_a_block_product_is_its_own_product_exactly(fmt, transpose):
    # every entry is summed in the order of the stored nonzeros, whatever
    # the width of the block
    A = _matrix(fmt, np.float64)
    rows = A.shape[0] if transpose else A.shape[1]
    X = np.random.default_rng(5).standard_normal((rows, 23))
    splits = row_splits(A)
    whole = sparse_product(A, X, transpose=transpose, splits=splits)
    for c in range(X.shape[1]):
        alone = sparse_product(A, X[:, c:c + 1], transpose=transpose, splits=splits)
        np.testing.assert_array_equal(whole[:, c:c + 1], alone)


def test_gather_with_int64_indices_unsorted_and_empty_rows():
    A = _matrix("csr", np.float64, density=0.02)
    A.indices = A.indices.astype(np.int64)
    A.indptr = A.indptr.astype(np.int64)
    for i in range(A.shape[0]):        # reverse each row's nonzeros
        lo, hi = A.indptr[i], A.indptr[i + 1]
        A.indices[lo:hi] = A.indices[lo:hi][::-1].copy()
        A.data[lo:hi] = A.data[lo:hi][::-1].copy()
    assert np.any(np.diff(A.indptr) == 0)
    X = np.random.default_rng(2).standard_normal((A.shape[1], 5))
    np.testing.assert_allclose(sparse_product(A, X), A @ X, rtol=1e-14, atol=1e-14)


def test_all_zero_matrix_and_fortran_block():
    A = sp.csr_array((50, 20))
    X = np.asfortranarray(np.ones((20, 3)))
    np.testing.assert_array_equal(sparse_product(A, X), np.zeros((50, 3)))
    B = _matrix("csr", np.float64)
    Y = np.asfortranarray(np.random.default_rng(3).standard_normal((120, 4)))
    np.testing.assert_allclose(sparse_product(B, Y), B @ Y, rtol=1e-14, atol=1e-14)


def test_gather_does_not_depend_on_the_thread_count():
    A = _matrix("csr", np.float64, shape=(2000, 300), density=0.05)
    X = np.random.default_rng(4).standard_normal((300, 9))
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = sparse_product(A, X)
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        two = sparse_product(A, X)
    finally:
        numba.set_num_threads(before)
    np.testing.assert_array_equal(one, two)


@pytest.mark.parametrize("fmt, transpose", [("csr", True), ("csc", False)])
@pytest.mark.parametrize("threads", [1, 2, 3, 5])
def test_split_scatter_sums_each_entry_in_row_order(fmt, transpose, threads, monkeypatch):
    # any split gives what one thread adding row after row gives, bit for bit;
    # more ranges than rows of the result and empty ranges included
    monkeypatch.setattr(numba, "get_num_threads", lambda: threads)
    A = _matrix(fmt, np.float64, shape=(400, 3) if fmt == "csr" else (3, 400), density=0.5)
    structure = A if fmt == "csr" else A.T.tocsr()
    Y = np.random.default_rng(5).standard_normal((structure.shape[0], 4))
    splits = row_splits(A)
    assert splits.shape == (threads - 1, structure.shape[0])
    expected = np.zeros((structure.shape[1], 4))
    for i in range(structure.shape[0]):
        for p in range(structure.indptr[i], structure.indptr[i + 1]):
            expected[structure.indices[p]] += structure.data[p] * Y[i]
    result = sparse_product(A, Y, transpose=transpose, splits=splits)
    np.testing.assert_array_equal(result, expected)


def test_split_ranges_balance_nonzeros():
    # nonzeros crowd into the first columns: equal column ranges would not balance
    g = np.random.default_rng(6)
    cols = np.minimum((g.random(20000) ** 3 * 1000).astype(int), 999)
    A = sp.csr_array((np.ones(20000), (np.arange(20000) // 10, cols)), shape=(2000, 1000))
    A.sum_duplicates()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(numba, "get_num_threads", lambda: 4)
        splits = row_splits(A)
    bounds = np.vstack([A.indptr[:-1], splits, A.indptr[1:]])
    shares = np.diff(bounds, axis=0).sum(axis=1)
    assert shares.sum() == A.nnz and shares.max() <= 1.3 * A.nnz / 4


def test_unsorted_indices_scatter_with_scipy():
    A = _matrix("csr", np.float64, density=0.3)
    lo, hi = A.indptr[5], A.indptr[6]
    A.indices[lo:hi] = A.indices[lo:hi][::-1].copy()
    A.data[lo:hi] = A.data[lo:hi][::-1].copy()
    A.has_sorted_indices = False
    assert row_splits(A) is None
    Y = np.random.default_rng(7).standard_normal((A.shape[0], 3))
    np.testing.assert_allclose(sparse_product(A, Y, transpose=True, splits=None), A.T @ Y,
                               rtol=1e-14, atol=1e-14)


def test_wrong_shapes_and_foreign_splits_are_errors():
    A = _matrix("csr", np.float64, shape=(50, 20), density=0.3)
    splits = row_splits(A)
    for rows in (49, 51):
        with pytest.raises(ValueError, match="rows"):
            sparse_product(A, np.ones((rows, 3)), transpose=True, splits=splits)
        with pytest.raises(ValueError, match="rows"):
            sparse_product(A.tocsr(), np.ones((rows - 30, 3)))
    other = _matrix("csr", np.float64, shape=(60, 20), density=0.3)
    with pytest.raises(ValueError, match="splits"):
        sparse_product(A, np.ones((50, 2)), transpose=True, splits=row_splits(other))


@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_sparse_products_find_splits_once_and_agree(fmt, monkeypatch):
    from randla import _sparse_products
    calls = []
    original = _sparse_products.row_splits
    monkeypatch.setattr(_sparse_products, "row_splits", lambda A: calls.append(1) or original(A))
    A = _matrix(fmt, np.float64, shape=(300, 120), density=0.1)
    products = SparseProducts(A)
    g = np.random.default_rng(8)
    for _ in range(3):
        X, Y = g.standard_normal((120, 3)), g.standard_normal((300, 3))
        np.testing.assert_allclose(products(X), A @ X, rtol=1e-14, atol=1e-14)
        np.testing.assert_allclose(products(Y, transpose=True), A.T @ Y, rtol=1e-14,
                                   atol=1e-14)
    assert len(calls) == 1
