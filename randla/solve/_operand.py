"""The matrix of a least-squares problem, seen only through products.

:class:`Operand` wraps a dense array, a sparse matrix or a LinearOperator
(numpy/scipy on the host or CuPy/cupyx on the GPU) and offers the few
products the solvers need, counting every read of A (``passes``).  For dense A (C- or F-ordered) the two products an iteration
needs, ``A.T @ (A @ z)`` and ``(r, A.T @ r)`` with ``r = b - A @ x``, are
computed in ONE sweep over the rows of A (row i only needs ``a_i @ z``), so an
iteration streams A from memory once instead of twice: a numba kernel on the
host (``_cpu_sweep``), a CUDA kernel on the GPU (``_gpu_sweep``).  A is never copied,
except to cast integers to float (as scipy does) and to convert sparse formats
other than CSR and CSC to CSR.
"""
from __future__ import annotations

import numpy as np

from .._backend import get_backend
from .._operand import real_operand, require_adjoint

__all__ = ["Operand", "as_operand"]

# The fused single-read kernel of _gpu_sweep for one right-hand side on the
# GPU (a switch so that benchmarks can time the two-GEMV route against it).
GPU_SWEEP = True


class Operand:
    """A real m x n matrix with counted products, optionally damped.

    With ``damp > 0`` the products are those of the stacked matrix
    ``[A; damp*I]`` (ridge regression): the normal operator is
    ``A.T A + damp^2 I`` and the gradient ``A.T r - damp^2 x``.
    """

    def __init__(self, A, dtype, damp=0.0):
        self.A = A
        self.shape = tuple(A.shape)
        self.dtype = np.dtype(dtype)
        self.damp = float(damp)
        self.backend = get_backend(A)
        self.xp = self.backend.xp
        self.linear_operator = self.backend.is_linear_operator(A)
        self.dense = not (self.linear_operator or self.backend.issparse(A))
        self.host_dense = self.dense and not self.backend.is_gpu
        self.gpu_dense = self.dense and self.backend.is_gpu
        self.host_sparse = self.backend.issparse(A) and not self.backend.is_gpu
        if self.host_sparse:
            from .._sparse_products import SparseProducts
            self._sparse_products = SparseProducts(A)
        self.passes = 0
        # the powers of 2 the drivers scaled b and A by (see _drivers._prepare
        # and _preconditioner.sketch_and_factor): the products are those of
        # a_scale * A, whose solution x / a_scale is scaled back at the end;
        # b_scale is 1.0 or an array of one factor per column of b
        self.b_scale = 1.0
        self.a_scale = 1.0

    def rescale(self, factor: float):
        """From now on, products of ``factor`` times the current matrix (and
        damping); factor is a power of 2, so the scaling is exact."""
        self.a_scale *= factor
        self.damp *= factor

    def _scaled(self, X):
        # the inputs, not the outputs, are scaled: for A of tiny (huge) entries
        # the products A (c X) stay near 1 where A X would underflow (overflow)
        return X if self.a_scale == 1.0 else self.a_scale * X

    @property
    def T(self) -> "Operand":
        """The transposed operand (a view; passes are counted separately)."""
        At = self.A.adjoint() if self.linear_operator else self.A.T
        transposed = Operand(At, self.dtype)
        transposed.damp, transposed.a_scale, transposed.b_scale = (self.damp, self.a_scale,
                                                                  self.b_scale)
        return transposed

    def sketch(self, S, out=None):
        """S @ A, one pass; written into ``out`` (d x n, this operand's dtype,
        any layout) when given."""
        from ..sketch import left_sketch
        self.passes += 1
        if out is None:
            out = left_sketch(S, self.A).astype(self.dtype, copy=False)
        else:
            left_sketch(S, self.A, out=out)
        if self.a_scale != 1.0:
            out *= self.a_scale
        return out

    def matmat(self, X):
        """A @ X for X of shape (n, k), one pass."""
        self.passes += 1
        X = self._scaled(X)
        if self.linear_operator:
            return self.xp.asarray(self.A.matmat(X)).astype(self.dtype, copy=False)
        if self.host_sparse:
            return self._sparse(X, transpose=False)
        return self.A @ X

    def rmatmat(self, Y):
        """A.T @ Y for Y of shape (m, k), one pass."""
        self.passes += 1
        Y = self._scaled(Y)
        if self.linear_operator:
            return self.xp.asarray(self.A.adjoint().matmat(Y)).astype(self.dtype, copy=False)
        if self.host_dense:
            # (Y^T A)^T runs as a plain GEMM on row-major A: 2.5x faster than A.T @ Y
            # with 16 columns on the CI machine (OpenBLAS 0.3.31)
            return (Y.T @ self.A).T
        if self.host_sparse:
            return self._sparse(Y, transpose=True)
        return self.xp.asarray(self.A.T @ Y)

    def _sparse(self, X, transpose):
        """A @ X or A.T @ X for host sparse A, on numba's threads where it can."""
        return self._sparse_products(X, transpose=transpose).astype(self.dtype, copy=False)

    def _sweep(self, columns):
        """The single-read kernel of this operand's backend, or None."""
        if self.gpu_dense:
            if not GPU_SWEEP:
                return None
            from . import _gpu_sweep as kernel
        elif self.host_dense:
            from . import _cpu_sweep as kernel
        else:
            return None
        return kernel if kernel.supported(self.A, columns) else None

    def normal(self, Z):
        """(A.T A + damp^2 I) Z for Z of shape (n, k)."""
        kernel = self._sweep(Z.shape[1])
        if kernel is not None:
            self.passes += 1
            out = kernel.sweep(self.A, self._scaled(Z))[1]
            if self.a_scale != 1.0:
                out *= self.a_scale
        else:
            out = self.rmatmat(self.matmat(Z))
        if self.damp:
            out += self.damp ** 2 * Z
        return out

    def residual(self, X, B):
        """R = B - A X and the gradient G = A.T R - damp^2 X, in one pass when dense."""
        kernel = self._sweep(X.shape[1])
        if kernel is not None:
            self.passes += 1
            R, G = kernel.sweep(self.A, self._scaled(X), B)
            if self.a_scale != 1.0:
                G *= self.a_scale
        else:
            R = (B - self.matmat(X)).astype(self.dtype, copy=False)
            G = self.rmatmat(R)
        if self.damp:
            G -= self.damp ** 2 * X
        return R, G


def as_operand(A, name: str = "A", damp: float = 0.0) -> Operand:
    """Validate A (dense, sparse or LinearOperator, host or GPU) and wrap it.

    Dense data keeps its layout and precision (float32 stays float32);
    integers and booleans are cast to float64 as scipy does.  Complex data is
    refused: the randomized drivers are real.
    """
    A, real = real_operand(A, name, complex_hint="the randomized drivers are real (use "
                           "scipy.linalg.lstsq or method='lapack')")
    require_adjoint(A, name, "each randomized least-squares driver")
    if get_backend(A).issparse(A):
        A = A.tocsr()
    return Operand(A, real, damp)
