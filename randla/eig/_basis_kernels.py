"""The numba kernels of ``_cpu_basis.ChunkedBasis``.

They live here, at module level, because numba caches a kernel that calls
other functions only when both are module-level (built inside a lazy
factory, every process compiled them again: 16-22 s for a small sparse
eigsh).  Imported on the first projection, never with ``randla``.
"""
import numpy as np
from numba import njit, prange

from ..solve._row_kernels import four_by_one, four_by_two

_FASTMATH = {"reassoc", "contract", "nsz"}

# store[t, j, i] is entry (t * chunk + i, j) of V; the last chunk's rows
# past n are never read.  Partial sums are laid out (chunk, column of W,
# column of V).  Each task copies its rows of W column by column (``Wt``,
# b x chunk: in L1 for a few columns), so every inner loop runs down
# contiguous columns.


@njit(inline="always", cache=True)
def rows_of(store, n, t):
    chunk = store.shape[2]
    return t * chunk, min(n, (t + 1) * chunk) - t * chunk


@njit(inline="always", cache=True)
def load_columns(W, first, rows):
    Wt = np.empty((W.shape[1], rows), dtype=W.dtype)
    for i in range(rows):
        for c in range(W.shape[1]):
            Wt[c, i] = W[first + i, c]
    return Wt


@njit(inline="always", cache=True)
def sums(S, d, Wt, rows, partial_t, squares_t):
    # partial_t[c, j] = S[j] · Wt[c] in W's precision, in the sweep's tiles
    # of four columns of V by two of W (or one), so each vector loaded feeds
    # more than one multiply-add (a dot at a time fed one: Vᵀ W of 2 x 10^5
    # x 80 by 2 columns took 4.9-5.0 ms against 3.8-4.0, about the memory's
    # 35 GB/s; 10^4 x 74, in cache, 126-128 against 102-109 us; alternating
    # in one process)
    zero = Wt.dtype.type(0)
    b = Wt.shape[0]
    for c in range(b):
        s = 0.0
        for i in range(rows):
            s += np.float64(Wt[c, i]) * np.float64(Wt[c, i])
        squares_t[c] = s
    j = 0
    while j + 4 <= d:
        s0, s1, s2, s3 = S[j, :rows], S[j + 1, :rows], S[j + 2, :rows], S[j + 3, :rows]
        c = 0
        while c + 2 <= b:
            four_by_two(s0, s1, s2, s3, Wt, c, partial_t, j, zero)
            c += 2
        if c < b:
            four_by_one(s0, s1, s2, s3, Wt[c], partial_t, c, j, zero)
        j += 4
    while j < d:
        sj = S[j, :rows]
        for c in range(b):
            p = zero
            for i in range(rows):
                p += sj[i] * Wt[c, i]
            partial_t[c, j] = p
        j += 1


@njit(inline="always", cache=True)
def put_columns(S, used, block, first, rows):
    # the chunk's rows of block (n x k) as its columns used .. used + k
    for j in range(block.shape[1]):
        for i in range(rows):
            S[used + j, i] = block[first + i, j]


@njit(inline="always", cache=True)
def minus_columns(S, used, Ct, Wt, rows):
    # Wt[c] -= sum_j Ct[c, j] S[j], four columns of V by two of W a trip:
    # each S[j] loaded feeds both, and each W entry is stored once per four
    # columns (a column of each a trip stored after every multiply-add: a
    # subtraction and the next Vᵀ W took 7.8-8.3 against 5.8-5.9 ms at
    # 2 x 10^5 x 80 by 2 columns, 4.5-5.1 against 3.2 ms at 10^5 x 60 by 4)
    b = Wt.shape[0]
    c = 0
    while c < b:
        pair = c + 1 < b
        c1 = c + 1 if pair else c
        w0, w1 = Wt[c], Wt[c1]
        j = 0
        while j + 4 <= used:
            s0, s1, s2, s3 = S[j], S[j + 1], S[j + 2], S[j + 3]
            f0, f1, f2, f3 = Ct[c, j], Ct[c, j + 1], Ct[c, j + 2], Ct[c, j + 3]
            g0, g1, g2, g3 = Ct[c1, j], Ct[c1, j + 1], Ct[c1, j + 2], Ct[c1, j + 3]
            if pair:
                for i in range(rows):
                    v0, v1, v2, v3 = s0[i], s1[i], s2[i], s3[i]
                    w0[i] -= (f0 * v0 + f1 * v1) + (f2 * v2 + f3 * v3)
                    w1[i] -= (g0 * v0 + g1 * v1) + (g2 * v2 + g3 * v3)
            else:
                for i in range(rows):
                    w0[i] -= (f0 * s0[i] + f1 * s1[i]) + (f2 * s2[i] + f3 * s3[i])
            j += 4
        while j < used:
            sj = S[j]
            f0, g0 = Ct[c, j], Ct[c1, j]
            if pair:
                for i in range(rows):
                    w0[i] -= f0 * sj[i]
                    w1[i] -= g0 * sj[i]
            else:
                for i in range(rows):
                    w0[i] -= f0 * sj[i]
            j += 1
        c += 2


@njit(parallel=True, cache=True)
def write(store, used, block):
    # store[:, used:used + k] = block (n x k)
    for t in prange(store.shape[0]):
        first, rows = rows_of(store, block.shape[0], t)
        put_columns(store[t], used, block, first, rows)


@njit(parallel=True, cache=True, fastmath=_FASTMATH)
def gram(store, used, pending, W, partial, squares):
    # first writes the pending block after V's columns, then Vᵀ W
    n = W.shape[0]
    d = used + pending.shape[1]
    for t in prange(store.shape[0]):
        first, rows = rows_of(store, n, t)
        S = store[t]
        put_columns(S, used, pending, first, rows)
        Wt = load_columns(W, first, rows)
        sums(S, d, Wt, rows, partial[t], squares[t])


@njit(parallel=True, cache=True, fastmath=_FASTMATH)
def subtract(store, used, W, Ct, then_gram, partial, squares):
    # W -= V C, then (then_gram) Vᵀ W of the result
    n, b = W.shape
    for t in prange(store.shape[0]):
        first, rows = rows_of(store, n, t)
        S = store[t]
        Wt = load_columns(W, first, rows)
        minus_columns(S, used, Ct, Wt, rows)
        for i in range(rows):
            for c in range(b):
                W[first + i, c] = Wt[c, i]
        if then_gram:
            sums(S, used, Wt, rows, partial[t], squares[t])


@njit(parallel=True, cache=True)
def copy_out(store, used, out):
    # out = V (n x used)
    for t in prange(store.shape[0]):
        first, rows = rows_of(store, out.shape[0], t)
        S = store[t]
        for i in range(rows):
            for j in range(used):
                out[first + i, j] = S[j, i]


@njit(inline="always", cache=True)
def chunk_times(S, used, Y, rows):
    # (V Y)ᵀ on the chunk's rows, k x rows: a BLAS product, on one thread
    # inside this task where the driver keeps BLAS to one thread, as the
    # Lanczos drivers do (2 x 10^5 x 100 by 100 x 50: 42 against 91 ms
    # for a loop over the chunk)
    if rows == S.shape[1]:
        return np.dot(Y.T, S[:used])
    return np.dot(Y.T, np.ascontiguousarray(S[:used, :rows]))


@njit(parallel=True, cache=True)
def times(store, used, Y, out):
    # out = V Y (n x k)
    for t in prange(store.shape[0]):
        first, rows = rows_of(store, out.shape[0], t)
        kept = chunk_times(store[t], used, Y, rows)
        for i in range(rows):
            for c in range(Y.shape[1]):
                out[first + i, c] = kept[c, i]


@njit(parallel=True, cache=True)
def restart(store, n, used, Y):
    # the store's first k columns = V Y
    for t in prange(store.shape[0]):
        first, rows = rows_of(store, n, t)
        S = store[t]
        kept = chunk_times(S, used, Y, rows)
        for c in range(Y.shape[1]):
            for i in range(rows):
                S[c, i] = kept[c, i]
