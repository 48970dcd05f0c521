"""The matrix an eig routine works on, seen only through products.

:class:`Operand` wraps a dense array, a sparse matrix or a LinearOperator,
host (numpy / scipy) or GPU (CuPy / cupyx), and counts block passes (calls)
and vector products (columns) with A and Aᵀ, so every driver can report its
cost exactly.  Products come back in A's array library.  It is private and
mutable only in its counters; results copy the counts out.
"""
from __future__ import annotations

from .._backend import get_backend
from .._operand import real_operand, require_adjoint
from .._sparse_products import SparseProducts
from ..sketch import DenseOperator
from ..solve import _cpu_sweep

__all__ = ["Operand", "gaussian"]


class Operand:
    """A real m x n matrix applied as ``A @ X`` and ``A.T @ X``.

    Parameters
    ----------
    A : array_like, sparse matrix or LinearOperator
        Of either backend (numpy / scipy or CuPy / cupyx).
    name : str
        Argument name used in error messages.

    Attributes
    ----------
    backend : randla._backend.Backend
        A's backend; ``xp`` is its array namespace.
    """

    def __init__(self, A, name: str = "A"):
        A, self.dtype = real_operand(A, name, allow_empty=False,
                                     complex_hint="randla.eig works on real data")
        self.A = A
        self.name = name
        self.backend = get_backend(A)
        self.xp = self.backend.xp
        self.shape = tuple(int(s) for s in A.shape)
        self.passes = 0
        self.matvecs = 0
        self._linear_operator = self.backend.is_linear_operator(A)
        self._adjoint_checked = False
        self._row_major = _row_major(A, self.backend)
        self._host_sparse = self.backend.issparse(A) and not self.backend.is_gpu
        self._sparse_products = SparseProducts(A) if self._host_sparse else None

    def _count(self, X):
        self.passes += 1
        self.matvecs += X.shape[1]

    def matmat(self, X):
        """``A @ X`` for an n x b array X, in the working precision."""
        self._count(X)
        xp = self.xp
        X = xp.asarray(X, dtype=self.dtype)
        if self._linear_operator:
            return xp.asarray(self.A.matmat(X), dtype=self.dtype)
        if self._host_sparse:
            return self._sparse_products(X)
        if self._row_major:
            # OpenBLAS runs a thin product 1.3-2x faster with the big operand on the
            # right (measured on 20000 x 5000, 20-60 columns); cuBLAS does not mind.
            return xp.ascontiguousarray((X.T @ self.A.T).T)
        return xp.asarray(self.A @ X, dtype=self.dtype)

    def rmatmat(self, X):
        """``A.T @ X`` for an m x b array X, in the working precision."""
        self._count(X)
        xp = self.xp
        X = xp.asarray(X, dtype=self.dtype)
        if self._linear_operator:
            if not self._adjoint_checked:       # once, not on every product
                require_adjoint(self.A, self.name, "this routine")
                self._adjoint_checked = True
            return xp.asarray(self.A.rmatmat(X), dtype=self.dtype)
        if self._host_sparse:
            return self._sparse_products(X, transpose=True)
        if self._row_major:
            return xp.ascontiguousarray((xp.ascontiguousarray(X.T) @ self.A).T)
        return xp.asarray(self.A.T @ X, dtype=self.dtype)

    def fused_normal(self, columns: int) -> bool:
        """Whether :meth:`normal_matmat` reads A once for this many columns:
        host dense A with few columns.  (Host CSR A gains nothing from one
        read: a gather-then-scatter kernel took 50 ms at 10^6 x 10^5 with
        10^7 nonzeros and 4 columns, the two passes 47 ms, both bound by
        random accesses.)"""
        return not self.backend.is_gpu and _cpu_sweep.supported(self.A, columns)

    def on_numba(self, columns: int, normal: bool = False) -> bool:
        """Whether products with this many columns (``normal``: with A and Aᵀ
        through :meth:`normal_matmat`) may run on numba's threads: a host
        dense sweep, or host sparse data, whose products gather or scatter
        there (see ``randla._sparse_products``)."""
        return self._host_sparse or (normal and self.fused_normal(columns))

    def normal_matmat(self, X):
        """``(A @ X, A.T @ (A @ X))`` for an n x b array X.

        Host dense A with few columns reads A once for both products (one
        pass, see ``randla.solve._cpu_sweep``); otherwise two passes.
        """
        X = self.xp.asarray(X, dtype=self.dtype)
        if not self.fused_normal(X.shape[1]):
            AX = self.matmat(X)
            return AX, self.rmatmat(AX)
        self.passes += 1
        self.matvecs += 2 * X.shape[1]
        return _cpu_sweep.sweep(self.A, X)

    def gaussian(self, b: int, state):
        """An n x b standard Gaussian test matrix on A's device, and the state after it."""
        return gaussian(self.shape[1], b, state, self.dtype, self.xp)


def _row_major(A, backend) -> bool:
    if backend.is_linear_operator(A) or backend.issparse(A):
        return False
    return bool(A.flags.c_contiguous and not A.flags.f_contiguous)


def gaussian(n: int, b: int, state, dtype, xp):
    """An n x b standard Gaussian test matrix in namespace ``xp``, and the state after it.

    numpy and CuPy get the same entries, bit for bit, from the same state.
    """
    S = DenseOperator(b, n, rng=state, scale=1.0, dtype=dtype)
    return S.todense(dtype=dtype, xp=xp).T, S.next_state
