"""One read of A for the two products of a refinement iteration, on the CPU.

``sweep(A, Z, B)`` returns ``T = B - A Z`` (or ``T = A Z`` without B) and
``G = A.T T`` while streaming each row of A from memory once: a group of four
rows is dotted with every column of Z, and the same four rows, still in L1
cache, are added into a per-block column accumulator.  Two BLAS GEMVs read A
twice, and the refinement iterations are bound by memory bandwidth, so this
halves their cost (about 1.2 times one ``A @ z`` on the CI machine against
2 to 2.2 times for the two GEMVs).

Column-major A (Fortran order, and the transposed operand of a min-norm
solve) is swept in chunks of rows whose column segments stay in cache:
``A Z`` is built up column by column in a small buffer, then the same
segments, read from cache, are dotted with it: 1.5 times one ``A @ x`` at
40000 x 1000 and 1.8 times at 100000 x 2000 (short strided segments keep
less of A in flight than rows do), against about 2 for the two GEMVs.

Blocks of rows are fixed by m alone and their column sums are added in a
fixed order, so the result does not depend on the number of threads.
C- or F-contiguous float32/float64 A with at most ``MAX_COLUMNS``
right-hand sides; :func:`supported` says when it applies.  ``A z`` is
accumulated in float64 whatever A's precision (the block sums of ``A.T t``
are kept in A's precision): a float32 row-major sweep took 1.4 times an
``A @ x`` at 100000 x 1000, against 1.2 for float64.  Numba is
imported on the first sweep.
"""
from __future__ import annotations

import functools

import numpy as np

__all__ = ["FULL", "LOWER", "MAX_COLUMNS", "UPPER", "matmul", "supported", "sweep"]

# Up to 8 columns the sweep beats BLAS (a GEMM with few columns runs near
# GEMV speed); with 16 the two GEMMs are faster on the CI machine.
MAX_COLUMNS = 8
_MAX_BLOCKS = 64
_MIN_BLOCK_ROWS = 256
# Rows swept by every column in turn: about 512 KiB of float64, within L2.
_CHUNK_ENTRIES = 1 << 16
# Column-major chunks are larger (L3 rather than L2): their column segments
# are short (131 rows at n = 2000), and longer ones keep more of A in flight.
_COLUMN_CHUNK_ENTRIES = 1 << 18


def supported(A, columns: int, layouts: str = "CF") -> bool:
    """Whether :func:`sweep` (C or F order) and :func:`matmul` (``layouts="C"``)
    serve A with this many columns of the other operand."""
    return (isinstance(A, np.ndarray) and A.dtype in (np.float32, np.float64)
            and (("C" in layouts and A.flags.c_contiguous)
                 or ("F" in layouts and A.flags.f_contiguous))
            and 1 <= columns <= MAX_COLUMNS)


def sweep(A, Z, B=None):
    """``(T, A.T @ T)`` with ``T = B - A @ Z``, or ``T = A @ Z`` when B is None.

    A is C- or F-contiguous (m, n); Z is (n, k) and B (m, k),
    k <= MAX_COLUMNS, both cast to A's dtype.
    """
    m, n = A.shape
    k = Z.shape[1]
    blocks = max(1, min(_MAX_BLOCKS, m // _MIN_BLOCK_ROWS))
    rows = -(-m // blocks)
    Zt = np.ascontiguousarray(Z.T, dtype=A.dtype)
    T = np.empty((k, m), dtype=A.dtype)
    partial = np.empty((blocks, k, n), dtype=A.dtype)
    Bt = T if B is None else np.ascontiguousarray(B.T, dtype=A.dtype)
    if A.flags.c_contiguous:
        chunk = max(4, _CHUNK_ENTRIES // max(n, 1))
        _kernel()(A, Zt, Bt, B is not None, T, partial, rows, chunk)
    else:
        chunk = min(rows, max(16, _COLUMN_CHUNK_ENTRIES // max(n, 1)))
        _column_kernel()(A.T, Zt, Bt, B is not None, T, partial, rows, chunk)
    return np.ascontiguousarray(T.T), partial.sum(axis=0).T


@functools.cache
def _kernel():
    from numba import njit, prange

    # reassoc lets the dot products vectorise; the order of a row's sum is
    # fixed by the compiled code, not by the thread count.
    @njit(parallel=True, cache=True, fastmath={"reassoc", "contract", "nsz"})
    def row_sweep(A, Zt, Bt, has_b, T, partial, rows, chunk):
        m, n = A.shape
        for blk in prange(partial.shape[0]):
            g = np.zeros((Zt.shape[0], n), dtype=partial.dtype)
            for c0 in range(blk * rows, min(m, (blk + 1) * rows), chunk):
                c1 = min(m, blk * rows + rows, c0 + chunk)
                # the chunk stays in cache while every column goes over it
                for c in range(Zt.shape[0]):
                    z = Zt[c]
                    gc = g[c]
                    i = c0
                    while i + 4 <= c1:          # four rows: four streams in flight
                        s0 = 0.0
                        s1 = 0.0
                        s2 = 0.0
                        s3 = 0.0
                        for j in range(n):
                            s0 += A[i, j] * z[j]
                            s1 += A[i + 1, j] * z[j]
                            s2 += A[i + 2, j] * z[j]
                            s3 += A[i + 3, j] * z[j]
                        if has_b:
                            s0 = Bt[c, i] - s0
                            s1 = Bt[c, i + 1] - s1
                            s2 = Bt[c, i + 2] - s2
                            s3 = Bt[c, i + 3] - s3
                        T[c, i] = s0
                        T[c, i + 1] = s1
                        T[c, i + 2] = s2
                        T[c, i + 3] = s3
                        for j in range(n):
                            gc[j] += (s0 * A[i, j] + s1 * A[i + 1, j]
                                      + s2 * A[i + 2, j] + s3 * A[i + 3, j])
                        i += 4
                    while i < c1:
                        s = 0.0
                        for j in range(n):
                            s += A[i, j] * z[j]
                        if has_b:
                            s = Bt[c, i] - s
                        T[c, i] = s
                        for j in range(n):
                            gc[j] += s * A[i, j]
                        i += 1
            partial[blk] = g

    return row_sweep


@functools.cache
def _column_kernel():
    from numba import njit, prange

    @njit(parallel=True, cache=True, fastmath={"reassoc", "contract", "nsz"})
    def column_sweep(At, Zt, Bt, has_b, T, partial, rows, chunk):
        n, m = At.shape
        for blk in prange(partial.shape[0]):
            g = np.zeros((Zt.shape[0], n), dtype=partial.dtype)
            t = np.empty(chunk, dtype=np.float64)      # A z in float64, as rows do
            for c0 in range(blk * rows, min(m, (blk + 1) * rows), chunk):
                c1 = min(m, blk * rows + rows, c0 + chunk)
                tc = t[:c1 - c0]
                for c in range(Zt.shape[0]):
                    z = Zt[c]
                    tc[:] = 0.0
                    j = 0
                    while j + 8 <= n:           # eight column streams in flight
                        a0 = At[j, c0:c1]
                        a1 = At[j + 1, c0:c1]
                        a2 = At[j + 2, c0:c1]
                        a3 = At[j + 3, c0:c1]
                        a4 = At[j + 4, c0:c1]
                        a5 = At[j + 5, c0:c1]
                        a6 = At[j + 6, c0:c1]
                        a7 = At[j + 7, c0:c1]
                        for i in range(tc.shape[0]):
                            tc[i] += ((a0[i] * z[j] + a1[i] * z[j + 1])
                                      + (a2[i] * z[j + 2] + a3[i] * z[j + 3])
                                      + (a4[i] * z[j + 4] + a5[i] * z[j + 5])
                                      + (a6[i] * z[j + 6] + a7[i] * z[j + 7]))
                        j += 8
                    while j < n:
                        a0 = At[j, c0:c1]
                        for i in range(tc.shape[0]):
                            tc[i] += a0[i] * z[j]
                        j += 1
                    if has_b:
                        for i in range(tc.shape[0]):
                            tc[i] = Bt[c, c0 + i] - tc[i]
                    for i in range(tc.shape[0]):
                        T[c, c0 + i] = tc[i]
                    # the chunk's column segments are still in cache
                    gc = g[c]
                    j = 0
                    while j + 4 <= n:
                        a0 = At[j, c0:c1]
                        a1 = At[j + 1, c0:c1]
                        a2 = At[j + 2, c0:c1]
                        a3 = At[j + 3, c0:c1]
                        s0 = 0.0
                        s1 = 0.0
                        s2 = 0.0
                        s3 = 0.0
                        for i in range(tc.shape[0]):
                            s0 += a0[i] * tc[i]
                            s1 += a1[i] * tc[i]
                            s2 += a2[i] * tc[i]
                            s3 += a3[i] * tc[i]
                        gc[j] += s0
                        gc[j + 1] += s1
                        gc[j + 2] += s2
                        gc[j + 3] += s3
                        j += 4
                    while j < n:
                        a0 = At[j, c0:c1]
                        s = 0.0
                        for i in range(tc.shape[0]):
                            s += a0[i] * tc[i]
                        gc[j] += s
                        j += 1
            partial[blk] = g

    return column_sweep


FULL, UPPER, LOWER = 0, 1, 2
_ROW_CHUNKS = 16


def matmul(M, X, triangle: int = FULL):
    """``M @ X`` for C-contiguous M and X with at most MAX_COLUMNS columns
    (both of M's dtype),
    on numba's threads: inside the refinement loop this keeps the sweeps
    from competing with BLAS worker threads, which spin for about 0.1 s after
    each multithreaded call on the 2-core CI machine.  ``triangle`` (UPPER
    or LOWER) says M is triangular: the zero half is not read.
    """
    Xt = np.ascontiguousarray(X.T, dtype=M.dtype)
    out = np.empty((Xt.shape[0], M.shape[0]), dtype=M.dtype)
    _matmul_kernel()(M, Xt, out, triangle, _row_chunks(*M.shape, triangle))
    return out.T


@functools.lru_cache(maxsize=16)
def _row_chunks(rows, cols, triangle):
    """Bounds of _ROW_CHUNKS runs of rows holding equal numbers of entries read."""
    if triangle == UPPER:
        work = np.maximum(cols - np.arange(rows), 0)
    elif triangle == LOWER:
        work = np.minimum(np.arange(1, rows + 1), cols)
    else:
        work = np.full(rows, cols)
    total = np.concatenate([[0], np.cumsum(work)])
    bounds = np.searchsorted(total, np.linspace(0, total[-1], _ROW_CHUNKS + 1))
    bounds[0], bounds[-1] = 0, rows
    return bounds


@functools.cache
def _matmul_kernel():
    from numba import njit, prange

    @njit(parallel=True, cache=True, fastmath={"reassoc", "contract", "nsz"})
    def rows_dot(M, Xt, out, triangle, bounds):
        cols = M.shape[1]
        for chunk in prange(len(bounds) - 1):
            for i in range(bounds[chunk], bounds[chunk + 1]):
                j0 = min(i, cols) if triangle == UPPER else 0
                j1 = min(i + 1, cols) if triangle == LOWER else cols
                # slices, so the loops run from 0 and vectorise (a loop
                # from j0 to j1 ran six times slower)
                row = M[i, j0:j1]
                for c in range(Xt.shape[0]):
                    x = Xt[c, j0:j1]
                    s = 0.0
                    for j in range(row.shape[0]):
                        s += row[j] * x[j]
                    out[c, i] = s

    return rows_dot
