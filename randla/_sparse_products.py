"""Block products of a host CSR/CSC matrix with dense blocks, on numba's threads.

scipy's ``A @ X`` for a sparse A and an n x b block runs on one thread, and
its loop over the b columns is slower per column than a matrix-vector product
(about 700 ms for b = 20 against 20 ms for one vector, 10^6 x 10^5 CSR with
10^7 nonzeros, on the CI machine).  The block drivers of ``randla.eig``
multiply by sparse A every pass, so they use :func:`sparse_product`.

A CSR structure S (``indptr``, ``indices``, ``data``) computes ``S @ X`` by
gathering rows of X into each row of the result; threads own rows of the
result, and every entry is summed in the order of the stored nonzeros, so the
result does not depend on the number of threads.  A CSR matrix A is S for
``A @ X``, a CSC matrix is S for ``A.T @ Y``.  The other direction would
scatter into rows of the result: split among threads it doubled the random
accesses, which bound it, and ran slower than scipy's one thread, so it stays
with scipy.  Nothing is copied: the index arrays and values are read in place.

The kernel is compiled on first use (``cache=True``), never at import.
"""
from __future__ import annotations

import functools

import numpy as np

__all__ = ["sparse_product"]


def sparse_product(A, X, transpose: bool = False):
    """``A @ X`` (or ``A.T @ X``) for a host sparse A and a 2-D block X.

    Gathers on numba's threads when A's format makes the product a gather
    (CSR for ``A @ X``, CSC for ``A.T @ X``), A has float32/float64 values,
    X is a numpy array of the same dtype with more than one column;
    otherwise scipy computes it.  The result is a C-ordered array.
    """
    gather = getattr(A, "format", None) == ("csc" if transpose else "csr")
    if not (gather and isinstance(X, np.ndarray) and X.ndim == 2 and X.shape[1] > 1
            and A.dtype in (np.float32, np.float64) and X.dtype == A.dtype):
        return np.ascontiguousarray((A.T if transpose else A) @ X)
    out = np.zeros((A.shape[1] if transpose else A.shape[0], X.shape[1]), dtype=A.dtype)
    if A.nnz:
        _gather()(A.indptr, A.indices, A.data, np.ascontiguousarray(X), out)
    return out


@functools.cache
def _gather():
    from numba import njit, prange

    @njit(parallel=True, cache=True)
    def gather(indptr, indices, data, X, out):
        b = X.shape[1]
        for i in prange(out.shape[0]):
            for p in range(indptr[i], indptr[i + 1]):
                v = data[p]
                j = indices[p]
                for c in range(b):
                    out[i, c] += v * X[j, c]

    return gather
