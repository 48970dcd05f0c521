"""The block Lanczos basis on the host, projected on numba's threads.

Each Lanczos step removes the basis V (n x d) from the new block W (n x b):
``C = Vᵀ W``, ``W -= V C``, and where that cancelled much of a column, once
more.  These products read all of V for a few columns of work, so memory
bounds them.  Where the products with A run on numba's threads (dense
sweeps, sparse products), BLAS must stay on one thread between them (its
spinning workers stall numba's), and there it read V four times for the
pair of projections.  Here a chunk's rows serve the subtraction and the
next projection's ``Vᵀ W`` while they are in cache: three reads of V (two
where one projection suffices), on every core.

The store is split into chunks of ``_CHUNK`` rows, and within a chunk it is
column by column: the d columns in use are one contiguous run of memory per
chunk, whatever room the store keeps for later columns.  A row-major store
with that room read rows of d entries at a stride of its width, and that ran
far below the memory's speed (10^5 rows, width 104, b = 4: a ``Vᵀ W`` took
7.0 ms for d = 8 and 7.7 ms for d = 24 where 0.6 and 1.0 ms read V
stored without gaps; the three passes of a projection 17 and 19 ms, now
1.8 and 4.3 ms; at d = 60, 11.3 against 9.8 ms).  In the sparse svds
benchmark (10^6 x 10^5, k = 10, 15 steps of 4 columns) the projections
took 110-130 ms instead of 230-290 ms.

Chunks are fixed (results do not depend on the thread count): the kernels
return per-chunk partial sums, which numpy adds in chunk order.  Kernels
compile on first use (``cache=True``), never at import
(``_basis_kernels.py``).
"""
from __future__ import annotations

import functools

import numpy as np

__all__ = ["ChunkedBasis"]

_CHUNK = 512


class ChunkedBasis:
    """An orthonormal basis of a host float32/float64 space, grown in place.

    The store holds ``capacity`` columns (doubled when full) in chunks of
    rows, each chunk column by column (see the module's docstring); ``view()``
    copies the used columns out as an n x d array.  A block appended waits
    to be written until the next :meth:`project`, which writes it while that
    chunk is in cache anyway, or the next ``view()``.  :meth:`restart` and
    :meth:`times` call BLAS from each of numba's threads: the Lanczos
    drivers keep BLAS to one thread meanwhile (otherwise its threads and
    numba's oversubscribe the cores; the results are the same).
    """

    def __init__(self, n: int, capacity: int, first):
        chunks = -(-n // _CHUNK)
        self.n = n
        self.store = np.empty((chunks, max(capacity, first.shape[1]), min(n, _CHUNK)),
                              dtype=first.dtype)
        self.used = 0
        self.pending = None
        self.append(first)

    @staticmethod
    def serves(Q) -> bool:
        """Whether a host basis of Q's kind can be kept here."""
        return isinstance(Q, np.ndarray) and Q.dtype in (np.float32, np.float64)

    def view(self):
        """The used columns, a fresh n x d C-ordered array."""
        self._write_pending()
        V = np.empty((self.n, self.used), dtype=self.store.dtype)
        _kernels().copy_out(self.store, self.used, V)
        return V

    def times(self, Y):
        """``V @ Y`` (n x k, C-ordered) without copying V out."""
        self._write_pending()
        Y = self._small(Y, "times")
        out = np.empty((self.n, Y.shape[1]), dtype=self.store.dtype)
        _kernels().times(self.store, self.used, Y, out)
        return out

    def append(self, Q):
        self._write_pending()
        end = self.used + Q.shape[1]
        if end > self.store.shape[1]:
            grown = np.empty((self.store.shape[0], 2 * end, self.store.shape[2]),
                             dtype=self.store.dtype)
            grown[:, :self.used] = self.store[:, :self.used]
            self.store = grown
        # a copy: the caller goes on to hand Q to A's products, which may write to it
        self.pending = np.array(Q, dtype=self.store.dtype, order="C", copy=True)

    def _write_pending(self):
        if self.pending is not None:
            _kernels().write(self.store, self.used, self.pending)
            self.used, self.pending = self.used + self.pending.shape[1], None

    def _small(self, Y, what):
        Y = np.ascontiguousarray(Y, dtype=self.store.dtype)
        if Y.ndim != 2 or Y.shape[0] != self.used or Y.shape[1] > self.used:
            raise ValueError(f"{what}: Y must be {self.used} x (at most {self.used}), "
                             f"got shape {Y.shape}")
        return Y

    def restart(self, Y):
        """Keep the columns V Y (at most as many as V has)."""
        self._write_pending()
        Y = self._small(Y, "restart")
        _kernels().restart(self.store, self.n, self.used, Y)
        self.used = Y.shape[1]

    def project(self, W, dgks: float):
        """W with the span of V removed, Gram–Schmidt once, or twice where a
        column kept less than ``dgks`` of its norm.

        Returns ``(W', C, before)``: ``W = V C + W'`` (C summed over both
        passes) and the column norms of W (host float64)."""
        W = np.array(W, dtype=self.store.dtype, order="C", copy=True)
        pending = self.pending if self.pending is not None else np.empty((self.n, 0), W.dtype)
        d = self.used + pending.shape[1]
        chunks = self.store.shape[0]
        partial = np.empty((chunks, W.shape[1], d), dtype=W.dtype)
        squares = np.empty((chunks, W.shape[1]))
        kernels = _kernels()
        kernels.gram(self.store, self.used, pending, W, partial, squares)
        self.used, self.pending = d, None
        Ct = partial.sum(axis=0)
        before = np.sqrt(squares.sum(axis=0))
        kernels.subtract(self.store, d, W, Ct, True, partial, squares)
        after = np.sqrt(squares.sum(axis=0))
        if (after < dgks * before).any():
            C2t = partial.sum(axis=0)
            kernels.subtract(self.store, d, W, C2t, False, partial, squares)
            Ct = Ct + C2t
        return W, Ct.T, before


@functools.cache
def _kernels():
    from . import _basis_kernels
    return _basis_kernels
