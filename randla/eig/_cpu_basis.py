"""The block Lanczos basis on the host: row-major, projected on numba's threads.

Each Lanczos step removes the basis V (n x d) from the new block W (n x b):
``C = Vᵀ W``, ``W -= V C``, and where that cancelled much of a column, once
more.  These products read all of V for a few columns of work, so memory
bounds them.  Where the products with A run on numba's threads (dense
sweeps, sparse products), BLAS must stay on one thread between them (its
spinning workers stall numba's), and there it read V four times for the
pair of projections.  Here V is stored row by row, so a chunk of rows is one
contiguous stream, and a chunk's rows serve the subtraction and the next
projection's ``Vᵀ W`` while they are in cache: three reads of V (two where
one projection suffices), on every core.  On ``bench_eig.SparseEigsh`` (a
2 x 10^5 sparse symmetric matrix, then with one column per step, up to 40
basis columns, 655 steps) the projections, the appends and the restarts took
about 10 ms a step instead of about 20, and eigsh 10.6-12.2 s instead of
16.5-18.9 s (ARPACK 19.8-24.5 s; single runs in separate processes).

Rows are split into chunks of ``_CHUNK`` rows (fixed, so results do not
depend on the thread count): the kernels return per-chunk partial sums,
which numpy adds in chunk order.

Kernels compile on first use (``cache=True``), never at import.
"""
from __future__ import annotations

import functools

import numpy as np

__all__ = ["RowMajorBasis"]

_CHUNK = 512
_FASTMATH = {"reassoc", "contract", "nsz"}


class RowMajorBasis:
    """An orthonormal basis of a host float32/float64 space, grown in place.

    The store is row-major with room for ``capacity`` columns (doubled when
    full); ``view()`` is the used columns (a strided view, no copy).  A block
    appended waits to be written until the next :meth:`project`, which writes
    it while that row is in cache anyway (a write of its own touches every
    row: 2 ms for one column of 2 x 10^5 rows), or the next ``view()``.
    """

    def __init__(self, n: int, capacity: int, first):
        self.store = np.empty((n, max(capacity, first.shape[1])), dtype=first.dtype)
        self.used = 0
        self.pending = None
        self.append(first)

    @staticmethod
    def serves(Q) -> bool:
        """Whether a host basis of Q's kind can be kept here."""
        return isinstance(Q, np.ndarray) and Q.dtype in (np.float32, np.float64)

    def view(self):
        self._write_pending()
        return self.store[:, :self.used]

    def append(self, Q):
        self._write_pending()
        end = self.used + Q.shape[1]
        if end > self.store.shape[1]:
            grown = np.empty((self.store.shape[0], 2 * end), dtype=self.store.dtype)
            grown[:, :self.used] = self.store[:, :self.used]
            self.store = grown
        # a copy: the caller goes on to hand Q to A's products, which may write to it
        self.pending = np.array(Q, dtype=self.store.dtype, order="C", copy=True)

    def _write_pending(self):
        if self.pending is not None:
            end = self.used + self.pending.shape[1]
            self.store[:, self.used:end] = self.pending
            self.used, self.pending = end, None

    def restart(self, Y):
        """Keep the columns V Y (at most as many as V has)."""
        self._write_pending()
        Y = np.ascontiguousarray(Y, dtype=self.store.dtype)
        if Y.ndim != 2 or Y.shape[0] != self.used or Y.shape[1] > self.used:
            raise ValueError(f"restart: Y must be {self.used} x (at most {self.used}), "
                             f"got shape {Y.shape}")
        _kernels().times_small(self.store, self.used, Y, _CHUNK)
        self.used = Y.shape[1]

    def project(self, W, dgks: float):
        """W with the span of V removed, Gram–Schmidt once, or twice where a
        column kept less than ``dgks`` of its norm.

        Returns ``(W', C, before)``: ``W = V C + W'`` (C summed over both
        passes) and the column norms of W (host float64)."""
        W = np.array(W, dtype=self.store.dtype, order="C", copy=True)
        pending = self.pending if self.pending is not None else self.store[:, :0]
        d = self.used + pending.shape[1]
        chunks = -(-W.shape[0] // _CHUNK)
        partial = np.empty((chunks, W.shape[1], d), dtype=W.dtype)
        squares = np.empty((chunks, W.shape[1]))
        kernels = _kernels()
        kernels.gram(self.store, self.used, pending, W, partial, squares, _CHUNK)
        self.used, self.pending = d, None
        Ct = partial.sum(axis=0)
        before = np.sqrt(squares.sum(axis=0))
        kernels.subtract(self.store, d, W, Ct, True, partial, squares, _CHUNK)
        after = np.sqrt(squares.sum(axis=0))
        if (after < dgks * before).any():
            C2t = partial.sum(axis=0)
            kernels.subtract(self.store, d, W, C2t, False, partial, squares, _CHUNK)
            Ct = Ct + C2t
        return W, Ct.T, before


@functools.cache
def _kernels():
    from types import SimpleNamespace

    from numba import njit, prange

    # V is the first ``used`` columns of the row-major ``store``; partial
    # sums are laid out (chunk, column of W, column of V).
    @njit(parallel=True, cache=True, fastmath=_FASTMATH)
    def gram(store, used, pending, W, partial, squares, chunk):
        # first writes the pending block's row into the store, after V's
        n = store.shape[0]
        b = W.shape[1]
        d = used + pending.shape[1]
        for t in prange(partial.shape[0]):
            acc = partial[t]
            acc[:, :] = 0
            squares[t, :] = 0.0
            rows = range(t * chunk, min(n, (t + 1) * chunk))
            for r in rows:
                for i in range(pending.shape[1]):
                    store[r, used + i] = pending[r, i]
            for r in rows:
                for c in range(b):
                    w = W[r, c]
                    squares[t, c] += np.float64(w) * np.float64(w)
                    for j in range(d):
                        acc[c, j] += store[r, j] * w

    @njit(parallel=True, cache=True, fastmath=_FASTMATH)
    def subtract(store, used, W, Ct, then_gram, partial, squares, chunk):
        n = store.shape[0]
        b = W.shape[1]
        for t in prange(partial.shape[0]):
            acc = partial[t]
            if then_gram:
                acc[:, :] = 0
                squares[t, :] = 0.0
            for r in range(t * chunk, min(n, (t + 1) * chunk)):
                for c in range(b):
                    s = W.dtype.type(0)
                    for j in range(used):
                        s += store[r, j] * Ct[c, j]
                    w = W[r, c] - s
                    W[r, c] = w
                    if then_gram:
                        squares[t, c] += np.float64(w) * np.float64(w)
                        for j in range(used):
                            acc[c, j] += store[r, j] * w

    @njit(parallel=True, cache=True, fastmath=_FASTMATH)
    def times_small(store, used, Y, chunk):
        # rows of V Y overwrite the same rows' first k columns
        n = store.shape[0]
        k = Y.shape[1]
        for t in prange(-(-n // chunk)):
            row = np.empty(k, dtype=store.dtype)
            for r in range(t * chunk, min(n, (t + 1) * chunk)):
                row[:] = 0
                for j in range(used):
                    v = store[r, j]
                    for i in range(k):
                        row[i] += v * Y[j, i]
                for i in range(k):
                    store[r, i] = row[i]

    return SimpleNamespace(gram=gram, subtract=subtract, times_small=times_small)
