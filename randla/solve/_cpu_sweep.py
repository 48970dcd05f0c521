"""One read of A for the two products of a refinement iteration, on the CPU.

``sweep(A, Z, B)`` returns ``T = B - A Z`` (or ``T = A Z`` without B) and
``G = A.T T`` while streaming each row of A from memory once: a group of
eight rows is dotted with every column of Z, in tiles of four rows by four
columns so that each vector loaded feeds four multiply-adds (four by two
for two columns left over), and the same rows, still in cache, are added
into a per-block column accumulator, two columns and four rows per trip
(15-20 % faster than one column from 2 columns up; eight rows per trip
kept 16 broadcast entries of T live, which spill from AVX2's 16 vector
registers: 16 columns at 50000 x 2000 took 157-196 ms against 140-148,
and 4 columns at 20000 x 5000 in a block Lanczos run 52-55 against 48-51
ms, medians, on a 2-core AVX2 machine).  With one
column a pipelined kernel adds each group into the accumulator while it
dots the next group, so the reads from memory never pause.  Two
BLAS GEMVs read A twice, and the refinement iterations are bound by memory
bandwidth, so this halves their cost (about 1.1-1.2 times one ``A @ z`` on
the CI machine against 2 to 2.2 times for the two GEMVs).  With more columns
it stays ahead of two GEMMs, which run far below their peak on so few
columns: at 20000 x 5000, 36-40 ms for 4 columns (two GEMMs 100-116 ms) and
52-56 ms for 8 (109-130 ms); this is what makes a block Lanczos step of
``randla.svds`` one read of A.

Column-major A (Fortran order, and the transposed operand of a min-norm
solve) is swept in chunks of rows whose column segments stay in cache:
``A Z`` is built up column by column in a small buffer, then the same
segments, read from cache, are dotted with it: 1.5 times one ``A @ x`` at
40000 x 1000 and 1.8 times at 100000 x 2000 (short strided segments keep
less of A in flight than rows do), against about 2 for the two GEMVs.

Blocks of rows are fixed by m alone and their column sums are added in a
fixed order, so the result does not depend on the number of threads.
C-contiguous float32/float64 A with at most ``MAX_COLUMNS`` right-hand sides,
F-contiguous with at most ``MAX_COLUMN_MAJOR_COLUMNS``; :func:`supported`
says when it applies.  ``A z`` is
accumulated in float64 whatever A's precision (the block sums of ``A.T t``
are kept in A's precision): a float32 row-major sweep took 1.4 times an
``A @ x`` at 100000 x 1000, against 1.2 for float64.  Numba is
imported on the first sweep.
"""
from __future__ import annotations

import functools

import numpy as np

__all__ = ["FULL", "LOWER", "MAX_COLUMNS", "MAX_COLUMN_MAJOR_COLUMNS", "matmul",
           "supported", "sweep"]

# Columns up to which the sweeps beat two BLAS GEMMs on the CI machine:
# row-major 124 against 218 ms with 16 columns at 50000 x 2000 (and 118
# against 152-166 at 20000 x 5000); column-major only up to 8 (352 against
# 223 ms with 16).  ``matmul`` (row-major) serves 16 as well (3.7 against
# 4.6 ms for a triangular 2000 x 2000 factor).
MAX_COLUMNS = 16
MAX_COLUMN_MAJOR_COLUMNS = 8
# Blocks of rows, each with its own k x n column sums: 16 keep two to
# sixteen threads busy, and fewer sums to allocate and add than 64 did (41-43
# against 46-49 ms at 20000 x 5000 with 4 columns; no change with one).
_MAX_BLOCKS = 16
_MIN_BLOCK_ROWS = 256
# Columns of eight rows added into the block sums at a time: 16 KiB of
# float64, within L1 while every column of T goes over them.
_ROW_CHUNK = 256
# Columns per step of the one-column kernel, which adds one group of eight
# rows into the column sums while it dots the next group: 64 KiB of each row
# (whole rows up to n = 8192).  Shorter steps cost more than they overlap on
# a 2-core AVX2 machine: a sweep of 20000 x 5000 took 23-25 ms in steps of
# 8192 columns against 31-34 with 384, 100000 x 2000 49-60 against 57-61,
# and a whole 100000 x 2000 solve 4.04-4.61 s against 4.26-5.02 (five each,
# alternating); at n <= 1000 no difference.
_PIPELINE_CHUNK = 8192
# Fast-math flags of every kernel: reassoc lets the dot products vectorise;
# the order of a row's sum is fixed by the compiled code, not by the thread
# count.
_FASTMATH = {"reassoc", "contract", "nsz"}
# Column-major chunks are larger (L3 rather than L2): their column segments
# are short (131 rows at n = 2000), and longer ones keep more of A in flight.
_COLUMN_CHUNK_ENTRIES = 1 << 18


def supported(A, columns: int, layouts: str = "CF") -> bool:
    """Whether :func:`sweep` (C or F order) and :func:`matmul` (``layouts="C"``)
    serve A with this many columns of the other operand."""
    if not (isinstance(A, np.ndarray) and A.dtype in (np.float32, np.float64)
            and columns >= 1):
        return False
    return (("C" in layouts and A.flags.c_contiguous and columns <= MAX_COLUMNS)
            or ("F" in layouts and A.flags.f_contiguous
                and columns <= MAX_COLUMN_MAJOR_COLUMNS))


def sweep(A, Z, B=None):
    """``(T, A.T @ T)`` with ``T = B - A @ Z``, or ``T = A @ Z`` when B is None.

    A is C- or F-contiguous (m, n); Z is (n, k) and B (m, k), both cast to
    A's dtype, with k as :func:`supported` allows.
    """
    m, n = A.shape
    k = Z.shape[1]
    blocks = max(1, min(_MAX_BLOCKS, m // _MIN_BLOCK_ROWS))
    rows = -(-m // blocks)
    Zt = np.ascontiguousarray(Z.T, dtype=A.dtype)
    T = np.empty((k, m), dtype=A.dtype)
    partial = np.empty((blocks, k, n), dtype=A.dtype)
    Bt = T if B is None else np.ascontiguousarray(B.T, dtype=A.dtype)
    if A.flags.c_contiguous and k == 1:
        _one_column_kernel()(A, Zt[0], Bt[0], B is not None, T[0], partial[:, 0],
                             rows, _PIPELINE_CHUNK)
    elif A.flags.c_contiguous:
        _kernel()(A, Zt, Bt, B is not None, T, partial, rows, _ROW_CHUNK)
    else:
        chunk = min(rows, max(16, _COLUMN_CHUNK_ENTRIES // max(n, 1)))
        _column_kernel()(A.T, Zt, Bt, B is not None, T, partial, rows, chunk)
    return np.ascontiguousarray(T.T), partial.sum(axis=0).T


@functools.cache
def _kernel():
    from ._row_kernels import row_sweep
    return row_sweep


@functools.cache
def _one_column_kernel():
    from numba import njit, prange

    # The row kernel for one column, software-pipelined: while the column sums
    # take in group i (eight rows, read back from cache), the dots of group
    # i + 1 stream the next rows from memory, chunk by chunk, so memory does
    # not wait for the second phase.  With chunks of 384 columns that took
    # 12.1 against 13.5 ms for the row kernel (which finishes each group
    # before it reads the next) at 40000 x 1000 and 54.4 against 58.0 ms at
    # 100000 x 2000 when first measured; on a 2-core AVX2 machine whole rows
    # (no overlap within a row) were faster still (see _PIPELINE_CHUNK).
    # Pipelining the general kernel
    # the same way made it slower for 2 to 16 columns (55.8 against 50.4 ms
    # for 4 columns at 20000 x 5000): its dots of a group's chunk no longer
    # keep their sums in registers.
    @njit(parallel=True, cache=True, fastmath=_FASTMATH)
    def one_column_sweep(A, z, b, has_b, t, partial, rows, chunk):
        m, n = A.shape
        for blk in prange(partial.shape[0]):
            g = partial[blk]
            g[:] = 0.0
            r1 = min(m, (blk + 1) * rows)
            i = blk * rows
            if i + 8 <= r1:        # the first group's dots, on their own
                s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = 0.0
                for j in range(n):
                    w = z[j]
                    s0 += A[i, j] * w
                    s1 += A[i + 1, j] * w
                    s2 += A[i + 2, j] * w
                    s3 += A[i + 3, j] * w
                    s4 += A[i + 4, j] * w
                    s5 += A[i + 5, j] * w
                    s6 += A[i + 6, j] * w
                    s7 += A[i + 7, j] * w
                t[i], t[i + 1], t[i + 2], t[i + 3] = s0, s1, s2, s3
                t[i + 4], t[i + 5], t[i + 6], t[i + 7] = s4, s5, s6, s7
                if has_b:
                    for r in range(i, i + 8):
                        t[r] = b[r] - t[r]
            while i + 8 <= r1:
                nxt = i + 8
                more = nxt + 8 <= r1
                y0, y1, y2, y3 = t[i], t[i + 1], t[i + 2], t[i + 3]
                y4, y5, y6, y7 = t[i + 4], t[i + 5], t[i + 6], t[i + 7]
                s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = 0.0
                for j0 in range(0, n, chunk):
                    j1 = min(n, j0 + chunk)
                    a0 = A[i, j0:j1]
                    a1 = A[i + 1, j0:j1]
                    a2 = A[i + 2, j0:j1]
                    a3 = A[i + 3, j0:j1]
                    a4 = A[i + 4, j0:j1]
                    a5 = A[i + 5, j0:j1]
                    a6 = A[i + 6, j0:j1]
                    a7 = A[i + 7, j0:j1]
                    gc = g[j0:j1]
                    for j in range(j1 - j0):
                        gc[j] += (((y0 * a0[j] + y1 * a1[j]) + (y2 * a2[j] + y3 * a3[j]))
                                  + ((y4 * a4[j] + y5 * a5[j]) + (y6 * a6[j] + y7 * a7[j])))
                    if more:
                        a0 = A[nxt, j0:j1]
                        a1 = A[nxt + 1, j0:j1]
                        a2 = A[nxt + 2, j0:j1]
                        a3 = A[nxt + 3, j0:j1]
                        a4 = A[nxt + 4, j0:j1]
                        a5 = A[nxt + 5, j0:j1]
                        a6 = A[nxt + 6, j0:j1]
                        a7 = A[nxt + 7, j0:j1]
                        zc = z[j0:j1]
                        for j in range(j1 - j0):
                            w = zc[j]
                            s0 += a0[j] * w
                            s1 += a1[j] * w
                            s2 += a2[j] * w
                            s3 += a3[j] * w
                            s4 += a4[j] * w
                            s5 += a5[j] * w
                            s6 += a6[j] * w
                            s7 += a7[j] * w
                if more:
                    t[nxt], t[nxt + 1], t[nxt + 2], t[nxt + 3] = s0, s1, s2, s3
                    t[nxt + 4], t[nxt + 5], t[nxt + 6], t[nxt + 7] = s4, s5, s6, s7
                    if has_b:
                        for r in range(nxt, nxt + 8):
                            t[r] = b[r] - t[r]
                i = nxt
            while i < r1:          # the last rows of the block, one at a time
                s = 0.0
                for j in range(n):
                    s += A[i, j] * z[j]
                if has_b:
                    s = b[i] - s
                t[i] = s
                for j in range(n):
                    g[j] += s * A[i, j]
                i += 1

    return one_column_sweep


@functools.cache
def _column_kernel():
    from numba import njit, prange

    @njit(parallel=True, cache=True, fastmath=_FASTMATH)
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


FULL, LOWER = 0, 2
_ROW_CHUNKS = 16


def matmul(M, X, triangle: int = FULL):
    """``M @ X`` for a C-contiguous M and an X with at most MAX_COLUMNS
    columns (any layout, cast to M's dtype), on numba's threads: inside the
    refinement loop this keeps the sweeps from competing with BLAS worker
    threads, which spin for about 0.1 s after each multithreaded call on the
    2-core CI machine.  ``triangle=LOWER`` says M is lower triangular: the
    zero half is not read.
    """
    Xt = np.ascontiguousarray(X.T, dtype=M.dtype)
    out = np.empty((Xt.shape[0], M.shape[0]), dtype=M.dtype)
    _matmul_kernel()(M, Xt, out, triangle, _row_chunks(*M.shape, triangle))
    return out.T


@functools.lru_cache(maxsize=16)
def _row_chunks(rows, cols, triangle):
    """Bounds of _ROW_CHUNKS runs of rows holding equal numbers of entries read."""
    if triangle == LOWER:
        work = np.minimum(np.arange(1, rows + 1), cols)
    else:
        work = np.full(rows, cols)
    total = np.concatenate([[0], np.cumsum(work)])
    bounds = np.searchsorted(total, np.linspace(0, total[-1], _ROW_CHUNKS + 1))
    bounds[0], bounds[-1] = 0, rows
    return bounds


@functools.cache
def _matmul_kernel():
    from ._row_kernels import rows_dot
    return rows_dot
