"""Block products of a host CSR/CSC matrix with dense blocks, on numba's threads.

scipy's ``A @ X`` for a sparse A and an n x b block runs on one thread, and
its loop over the b columns is slower per column than a matrix-vector product
(about 700 ms for b = 20 against 20 ms for one vector, 10^6 x 10^5 CSR with
10^7 nonzeros, on the CI machine).  The block drivers of ``randla.eig``
multiply by sparse A every pass, so they use :func:`sparse_product`.

A CSR structure S (``indptr``, ``indices``, ``data``) computes ``S @ X`` by
gathering rows of X into each row of the result; threads own rows of the
result, and every entry is summed in the order of the stored nonzeros, so the
result does not depend on the number of threads (one column: 10 against
scipy's 17 ms at the size above, 5.0 against 6.0 ms for a 2 x 10^5 matrix
with 20 nonzeros per row).  A CSR matrix A is S for
``A @ X``, a CSC matrix is S for ``A.T @ Y``.  The other direction would
scatter into rows of the result (``S.T @ Y``).  Split among threads by rows
of S, each thread adding into a private copy of the result, it ran no faster
than scipy's one thread (45-50 ms for 4 columns at the size above): the
random updates of a 3.2 MB result bound it.  Split by columns of S instead,
each thread owns a range of result rows (with two threads, half of the
result, nearer its cache) and walks all rows of S, reading in each only the run of
nonzeros whose columns fall in its range: with sorted indices those runs are
contiguous, and :func:`row_splits` finds where they start, once per matrix
(one position per row and thread, no copy of A).  That took 19 against
scipy's 31 ms for 4 columns, 15 against 18 ms for one (CI machine, two
threads, best of six).  Every entry is summed in row order either way,
as a single thread would, so no split changes the result.  Nothing is
copied: the index arrays and values are read in place.

The kernels are compiled on first use (``cache=True``), never at import.
"""
from __future__ import annotations

import functools

import numpy as np

__all__ = ["SparseProducts", "sparse_product", "row_splits"]


def sparse_product(A, X, transpose: bool = False, splits=None):
    """``A @ X`` (or ``A.T @ X``) for a host sparse A and a 2-D block X.

    On numba's threads where A has float32/float64 values and X is a numpy
    array of the same dtype: a gather where A's format stores the rows of
    the product's matrix (CSR for ``A @ X``, CSC for ``A.T @ X``), a scatter
    split by result rows where it stores the columns (CSR for ``A.T @ X``,
    CSC for ``A @ X``) and ``splits``, from :func:`row_splits` of this same
    A, is given; otherwise scipy computes it.  The result is a C-ordered
    array.
    """
    fmt = getattr(A, "format", None)
    gather = fmt == ("csc" if transpose else "csr")
    scatter = splits is not None and fmt == ("csr" if transpose else "csc")
    on_numba = (isinstance(X, np.ndarray) and X.ndim == 2
                and A.dtype in (np.float32, np.float64) and X.dtype == A.dtype)
    if not (on_numba and (gather or scatter)):
        return np.ascontiguousarray((A.T if transpose else A) @ X)
    rows, width = (A.shape[1], A.shape[0]) if transpose else A.shape
    if X.shape[0] != width:
        raise ValueError(f"X has {X.shape[0]} rows; the product needs {width}")
    if scatter and splits.shape[1] != (A.shape[0] if fmt == "csr" else A.shape[1]):
        raise ValueError("splits do not belong to this matrix (use row_splits(A))")
    kernels = _kernels()
    if gather:
        # each row is zeroed by the kernel as it starts it (in cache): a
        # zeroed 10^6 x 4 block cost a memset of 32 MB per product
        out = np.empty((rows, X.shape[1]), dtype=A.dtype)
        kernels.gather(A.indptr, A.indices, A.data, np.ascontiguousarray(X), out)
        return out
    out = np.zeros((rows, X.shape[1]), dtype=A.dtype)
    if A.nnz:
        kernels.scatter(A.indptr, A.indices, A.data, splits, np.ascontiguousarray(X), out)
    return out


class SparseProducts:
    """``A @ X`` and ``A.T @ X`` for one host sparse A, as :func:`sparse_product`
    computes them, with A's :func:`row_splits` found on the first product that
    scatters and kept for the others."""

    def __init__(self, A):
        self.A = A
        self._splits = None
        self._split = False

    def __call__(self, X, transpose: bool = False):
        if not self._split and getattr(self.A, "format", None) == ("csr" if transpose
                                                                   else "csc"):
            self._splits, self._split = row_splits(self.A), True
        return sparse_product(self.A, X, transpose=transpose, splits=self._splits)


# Ranges for the scatter: one per numba thread, at most this many (every
# range walks all rows, and the splits take one index per row and range).
_MAX_RANGES = 8


def row_splits(A):
    """Where each row of A's stored structure (rows of a CSR, columns of a
    CSC matrix) crosses into the next range of result rows, for
    :func:`sparse_product`'s scatter.

    One range per numba thread (``numba.get_num_threads()`` now), at most
    ``_MAX_RANGES``, each with about the same number of nonzeros (counted on
    a regular sample of about 10^6 of them).  Returns a
    (ranges - 1) x rows array of positions in ``A.indices``, of
    ``A.indptr``'s dtype (4 MB per range at 10^6 rows with 32-bit indices), or None unless
    A is CSR or CSC with sorted indices (then scipy scatters).
    """
    if getattr(A, "format", None) not in ("csr", "csc") or not A.has_sorted_indices:
        return None
    import numba

    parts = max(1, min(numba.get_num_threads(), _MAX_RANGES))
    rows, width = (A.shape[0], A.shape[1]) if A.format == "csr" else (A.shape[1], A.shape[0])
    # result rows where the running count of nonzeros crosses each share,
    # counted on about 2^20 of them (all of 10^7 took 27 ms of one thread)
    sample = A.indices[::max(1, A.nnz // (1 << 20))]
    filled = np.cumsum(np.bincount(sample, minlength=width))
    bounds = np.searchsorted(filled, len(sample) * np.arange(1, parts) / parts, side="right")
    splits = np.empty((parts - 1, rows), dtype=A.indptr.dtype)
    if parts > 1 and rows:
        _kernels().split_rows(A.indptr, A.indices, bounds.astype(A.indices.dtype), splits)
    return splits


@functools.cache
def _kernels():
    from types import SimpleNamespace

    from numba import njit, prange

    @njit(parallel=True, cache=True)
    def gather(indptr, indices, data, X, out):
        b = X.shape[1]
        for i in prange(out.shape[0]):
            for c in range(b):
                out[i, c] = 0.0
            for p in range(indptr[i], indptr[i + 1]):
                v = data[p]
                j = indices[p]
                for c in range(b):
                    out[i, c] += v * X[j, c]

    @njit(parallel=True, cache=True)
    def split_rows(indptr, indices, bounds, splits):
        # splits[t, i]: the first position of row i with index >= bounds[t]
        for i in prange(splits.shape[1]):
            lo = indptr[i]
            for t in range(splits.shape[0]):
                hi = indptr[i + 1]
                while lo < hi:
                    mid = (lo + hi) // 2
                    if indices[mid] < bounds[t]:
                        lo = mid + 1
                    else:
                        hi = mid
                splits[t, i] = lo

    @njit(parallel=True, cache=True)
    def scatter(indptr, indices, data, splits, Y, out):
        # out = S.T @ Y; task t owns the result rows between bounds t and t + 1
        parts = splits.shape[0] + 1
        b = Y.shape[1]
        for t in prange(parts):
            for i in range(Y.shape[0]):
                start = indptr[i] if t == 0 else splits[t - 1, i]
                end = indptr[i + 1] if t == parts - 1 else splits[t, i]
                for p in range(start, end):
                    v = data[p]
                    j = indices[p]
                    for c in range(b):
                        out[j, c] += v * Y[i, c]

    return SimpleNamespace(gather=gather, split_rows=split_rows, scatter=scatter)
