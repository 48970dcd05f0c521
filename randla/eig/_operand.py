"""The matrix an eig routine works on, seen only through products.

:class:`Operand` wraps a dense array, a sparse matrix or a LinearOperator,
host (numpy / scipy) or GPU (CuPy / cupyx), and counts block passes (calls)
and vector products (columns) with A and Aᵀ, so every driver can report its
cost exactly.  Products come back in A's array library.  It is private and
mutable only in its counters and its scale; results copy the counts out.

The products are those of ``scale * A``, with ``scale`` a power of 2 fixed at
the first product: 1 unless A's norm is far from 1 (beyond 2^+-128 in
float64), where the Gram matrices, squared norms and AᵀA products of the
drivers would under- or overflow.  The drivers divide the values they
return by ``scale``; vectors and bases need nothing.
"""
from __future__ import annotations

import numpy as np

from .._backend import get_backend
from .._operand import (one_sweep_scales, product_scale, real_operand, refuse_non_finite,
                        require_adjoint)
from .._sparse_products import SparseProducts
from ..sketch import DenseOperator, RNGState
from ..solve import _cpu_sweep

__all__ = ["Operand", "gaussian"]

# Entries from which dense products with few columns run on numba's threads
# when a driver asks (see Operand.numba_matmat).
_NUMBA_MATMAT_ENTRIES = 2_000_000
# The probe of Operand's scale: fixed, so that results depend on rng alone.
_PROBE_STATE = RNGState(0x5CA1E, 0)


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
        self.scale = 1.0
        self._scale_fixed = False
        self._linear_operator = self.backend.is_linear_operator(A)
        self._adjoint_checked = False
        self._row_major = _row_major(A, self.backend)
        self._host_sparse = self.backend.issparse(A) and not self.backend.is_gpu
        self._sparse_products = SparseProducts(A) if self._host_sparse else None

    def matmat(self, X, numba: bool = False):
        """``scale * A @ X`` for an n x b array X, in the working precision.

        ``numba``: on numba's threads where :meth:`numba_matmat` allows, for
        callers that keep BLAS on one thread meanwhile (its spinning workers
        stall numba's)."""
        if numba and self.numba_matmat(X.shape[1]):
            return self._calibrated(self._numba_matmat, X)
        return self._calibrated(self._matmat, X)

    def rmatmat(self, X):
        """``scale * A.T @ X`` for an m x b array X, in the working precision."""
        return self._calibrated(self._rmatmat, X)

    def _calibrated(self, product, X):
        """product(X); the first product also refuses a non-finite image
        (NaN or inf in A), fixes ``scale`` from the size of its image and,
        where that moves it from 1, is made again (one more pass; two where
        it would scale A up, after a Gaussian probe)."""
        X = self.xp.asarray(X, dtype=self.dtype)
        out = product(X)
        if self._scale_fixed:
            return out
        self._scale_fixed = True
        measured, image = X, _image(out)
        if not bool(self.xp.isfinite(image).all()) and bool(self.xp.isfinite(X).all()):
            # NaN or inf in A, or finite entries whose products overflow (A of
            # 1e308): a block 2^-(maxexp/2) as large tells which, and measures A
            measured = X * self.dtype.type(2.0 ** -(np.finfo(self.dtype).maxexp // 2))
            image = _image(product(measured))
            refuse_non_finite(self.A, image, self.name)
        factor = product_scale(measured, image, self.dtype)
        if factor is None:
            return out
        if factor > 1.0:
            # |A X| / |X| only bounds ||A|| from below: a caller's v0 near A's
            # null space would scale A up until AᵀA overflows.  A Gaussian
            # probe (one more product, only here) bounds it from below too,
            # within about sqrt(n) of ||A||: the larger bound wins.
            probe = gaussian(X.shape[0], 1, _PROBE_STATE, self.dtype, self.xp)[0]
            probe_factor = product_scale(probe, _image(product(probe)), self.dtype)
            if probe_factor is not None:
                factor = min(factor, probe_factor)
        self.scale = factor
        return out if self.scale == 1.0 else product(X)

    def _scaled(self, X):
        # the input, not the output, is scaled: for A of tiny (huge) entries
        # A (c X) stays near 1 where A X would underflow (overflow)
        return X if self.scale == 1.0 else X * self.dtype.type(self.scale)

    def _count(self, X):
        self.passes += 1
        self.matvecs += X.shape[1]

    def _matmat(self, X):
        self._count(X)
        xp = self.xp
        X = self._scaled(X)
        if self._linear_operator:
            return xp.asarray(self.A.matmat(X), dtype=self.dtype)
        if self._host_sparse:
            return self._sparse_products(X)
        if self._row_major:
            # OpenBLAS runs a thin product 1.3-2x faster with the big operand on the
            # right (measured on 20000 x 5000, 20-60 columns); cuBLAS does not mind.
            return xp.ascontiguousarray((X.T @ self.A.T).T)
        return xp.asarray(self.A @ X, dtype=self.dtype)

    def _numba_matmat(self, X):
        # column-major n x b: the Lanczos basis copies it into its own layout anyway
        self._count(X)
        return _cpu_sweep.matmul(self.A, self._scaled(X))

    def _rmatmat(self, X):
        self._count(X)
        xp = self.xp
        X = self._scaled(X)
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

    def numba_matmat(self, columns: int) -> bool:
        """Whether ``matmat(X, numba=True)`` runs on numba's threads for this
        many columns: host row-major dense A with at least
        ``_NUMBA_MATMAT_ENTRIES`` entries.  OpenBLAS runs such thin products
        at 2-3 times a matrix-vector product, numba's kernel at about one
        (5000 x 5000, 4 columns: 5.4 against 15-17 ms, one ``A @ x`` 5.7 ms;
        eigsh of a dense symmetric 5000 x 5000 matrix, k = 6: 1.53 against
        4.5 s, ARPACK 3.1 s); below about 1400 x 1400 its per-step costs
        outweigh that (2000 x 2000: 0.30 against 0.55 s; 1000 x 1000: 0.135
        against 0.115 s)."""
        return (self._row_major and not self.backend.is_gpu
                and self.shape[0] * self.shape[1] >= _NUMBA_MATMAT_ENTRIES
                and _cpu_sweep.supported(self.A, columns, layouts="C"))

    def on_numba(self, columns: int, normal: bool = False) -> bool:
        """Whether products with this many columns (``normal``: with A and Aᵀ
        through :meth:`normal_matmat`; else :meth:`matmat` with ``numba``)
        may run on numba's threads: a host dense sweep or product, or host
        sparse data, whose products gather or scatter there (see
        ``randla._sparse_products``)."""
        return self._host_sparse or (self.fused_normal(columns) if normal
                                     else self.numba_matmat(columns))

    def normal_matmat(self, X):
        """``(scale A @ X, scale² A.T @ (A @ X))`` for an n x b array X.

        Host dense A with few columns reads A once for both products (one
        pass, see ``randla.solve._cpu_sweep``); otherwise two passes.
        """
        X = self.xp.asarray(X, dtype=self.dtype)
        if not self.fused_normal(X.shape[1]):
            AX = self.matmat(X)
            return AX, self.rmatmat(AX)
        return self._calibrated(self._fused_normal, X)

    def _fused_normal(self, X):
        if not one_sweep_scales(self.scale, self.dtype):     # A of entries near 1e308
            AX = self._matmat(X)
            return AX, self._rmatmat(AX)
        self.passes += 1
        self.matvecs += 2 * X.shape[1]
        AX, AtAX = _cpu_sweep.sweep(self.A, self._scaled(X))
        if self.scale != 1.0:
            AtAX *= self.dtype.type(self.scale)
        return AX, AtAX

    def gaussian(self, b: int, state):
        """An n x b standard Gaussian test matrix on A's device, and the state after it."""
        return gaussian(self.shape[1], b, state, self.dtype, self.xp)


def _image(out):
    """A X from a product's result (``normal_matmat`` gives ``(A X, AᵀA X)``)."""
    return out[0] if isinstance(out, tuple) else out


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
