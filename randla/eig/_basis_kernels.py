"""The numba kernels of ``_cpu_basis.ChunkedBasis``.

They live here, at module level, because numba caches a kernel that calls
other functions only when both are module-level (built inside a lazy
factory, every process compiled them again: 16-22 s for a small sparse
eigsh).  Imported on the first projection, never with ``randla``.
"""
import numpy as np
from numba import njit, prange

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
    for c in range(Wt.shape[0]):
        s = 0.0
        for i in range(rows):
            s += np.float64(Wt[c, i]) * np.float64(Wt[c, i])
        squares_t[c] = s
    for j in range(d):
        for c in range(Wt.shape[0]):
            s = Wt.dtype.type(0)
            for i in range(rows):
                s += S[j, i] * Wt[c, i]
            partial_t[c, j] = s


@njit(inline="always", cache=True)
def put_columns(S, used, block, first, rows):
    # the chunk's rows of block (n x k) as its columns used .. used + k
    for j in range(block.shape[1]):
        for i in range(rows):
            S[used + j, i] = block[first + i, j]


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
        for j in range(used):
            for c in range(b):
                f = Ct[c, j]
                for i in range(rows):
                    Wt[c, i] -= f * S[j, i]
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
