"""The matrix an eig routine works on, seen only through products.

:class:`Operand` wraps a dense array, a scipy.sparse matrix or a
LinearOperator and counts block passes (calls) and vector products (columns)
with A and Aᵀ, so every driver can report its cost exactly.  It is private and
mutable only in its counters; results copy the counts out.
"""
from __future__ import annotations

import numpy as np
from scipy.sparse.linalg import LinearOperator, aslinearoperator

from .._operand import real_operand
from ..sketch import DenseOperator

__all__ = ["Operand", "gaussian"]


class Operand:
    """A real m x n matrix applied as ``A @ X`` and ``A.T @ X``.

    Parameters
    ----------
    A : array_like, scipy.sparse matrix or LinearOperator
    name : str
        Argument name used in error messages.
    """

    def __init__(self, A, name: str = "A"):
        A, self.dtype = real_operand(A, name, allow_empty=False,
                                     complex_hint="randla.eig works on real data")
        self.A = A
        self.shape = tuple(int(s) for s in A.shape)
        self.passes = 0
        self.matvecs = 0

    def _count(self, X):
        self.passes += 1
        self.matvecs += X.shape[1]

    def matmat(self, X: np.ndarray) -> np.ndarray:
        """``A @ X`` for an n x b array X, in the working precision."""
        self._count(X)
        X = np.asarray(X, dtype=self.dtype)
        if isinstance(self.A, LinearOperator):
            return np.asarray(self.A.matmat(X), dtype=self.dtype)
        if _row_major(self.A):
            # OpenBLAS runs a thin product 1.3-2x faster with the big operand on the
            # right (measured on 20000 x 5000, 20-60 columns).
            return np.ascontiguousarray((X.T @ self.A.T).T)
        return np.asarray(self.A @ X, dtype=self.dtype)

    def rmatmat(self, X: np.ndarray) -> np.ndarray:
        """``A.T @ X`` for an m x b array X, in the working precision."""
        self._count(X)
        X = np.asarray(X, dtype=self.dtype)
        if isinstance(self.A, LinearOperator):
            return np.asarray(self.A.rmatmat(X), dtype=self.dtype)
        if _row_major(self.A):
            return np.ascontiguousarray((np.ascontiguousarray(X.T) @ self.A).T)
        return np.asarray(self.A.T @ X, dtype=self.dtype)

    def transposed(self) -> "Operand":
        """The operand of ``A.T``, sharing the counters' starting values (zero)."""
        At = Operand.__new__(Operand)
        At.dtype = self.dtype
        At.A = self.A.T if not isinstance(self.A, LinearOperator) else aslinearoperator(self.A).T
        At.shape = (self.shape[1], self.shape[0])
        At.passes = self.passes
        At.matvecs = self.matvecs
        return At


def _row_major(A) -> bool:
    return isinstance(A, np.ndarray) and A.flags.c_contiguous and not A.flags.f_contiguous


def gaussian(n: int, b: int, state, dtype):
    """An n x b standard Gaussian test matrix and the state after it."""
    S = DenseOperator(b, n, rng=state, scale=1.0, dtype=dtype)
    return S.todense().T, S.next_state
