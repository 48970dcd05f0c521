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

import math

import numpy as np

from .._backend import get_backend
from .._operand import one_sweep_scales, real_operand, require_adjoint

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

    def _split_scale(self, X):
        """a_scale as ``(c_in, c_out)`` for a product with X: the input, not the
        output, is scaled, so that for A of tiny (huge) entries A (c X) stays
        near 1 where A X would underflow (overflow).  Where c X itself would
        overflow (or lose precision to underflow), part of the factor goes
        to the output: c_out A (c_in X).  Powers of 2: exact."""
        c = self.a_scale
        size = float(self.xp.max(self.xp.abs(X))) if c != 1.0 and X.size else 0.0
        if size == 0 or not math.isfinite(size):
            return c, 1.0
        info = np.finfo(self.dtype)
        exponent = math.frexp(size)[1]                  # size < 2^exponent
        highest = min(info.maxexp - 2 - exponent, info.maxexp - 2)
        lowest = max(info.minexp + info.nmant + 2 - exponent, info.minexp + 2)
        if lowest > highest:
            return c, 1.0
        c_in = min(max(c, math.ldexp(1.0, lowest)), math.ldexp(1.0, highest))
        return c_in, c / c_in

    def _fusable(self, X):
        """Whether A^T (A (c X)) c can run as one sweep (see one_sweep_scales),
        with c X itself in range."""
        return self.a_scale == 1.0 or (one_sweep_scales(self.a_scale, self.dtype)
                                       and self._split_scale(X)[1] == 1.0)

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

    def copy_into(self, out):
        """A itself written into ``out`` (m x n, any layout), one pass: the
        "sketch" of an A no taller than its sketch would be."""
        self.passes += 1
        if self.linear_operator:
            out[...] = self.xp.asarray(self.A.matmat(self.xp.eye(self.shape[1], dtype=self.dtype)))
        elif self.backend.issparse(self.A):
            out[...] = self.A.toarray()
        else:
            out[...] = self.A
        if self.a_scale != 1.0:
            out *= self.a_scale
        return out

    def matmat(self, X):
        """A @ X for X of shape (n, k), one pass."""
        self.passes += 1
        c_in, c_out = self._split_scale(X)
        X = X if c_in == 1.0 else c_in * X
        if self.linear_operator:
            out = self.xp.asarray(self.A.matmat(X)).astype(self.dtype, copy=False)
        elif self.host_sparse:
            out = self._sparse(X, transpose=False)
        else:
            out = self.A @ X
        if c_out != 1.0:
            out *= c_out
        return out

    def rmatmat(self, Y):
        """A.T @ Y for Y of shape (m, k), one pass."""
        self.passes += 1
        c_in, c_out = self._split_scale(Y)
        Y = Y if c_in == 1.0 else c_in * Y
        if self.linear_operator:
            out = self.xp.asarray(self.A.adjoint().matmat(Y)).astype(self.dtype, copy=False)
        elif self.host_dense:
            # (Y^T A)^T runs as a plain GEMM on row-major A: 2.5x faster than A.T @ Y
            # with 16 columns on the CI machine (OpenBLAS 0.3.31)
            out = (Y.T @ self.A).T
        elif self.host_sparse:
            out = self._sparse(Y, transpose=True)
        else:
            out = self.xp.asarray(self.A.T @ Y)
        if c_out != 1.0:
            out *= c_out
        return out

    def _sparse(self, X, transpose):
        """A @ X or A.T @ X for host sparse A, on numba's threads where it can."""
        return self._sparse_products(X, transpose=transpose).astype(self.dtype, copy=False)

    def _sweep(self, X):
        """The single-read kernel of this operand's backend for X, or None
        (also where the scale keeps the two products apart)."""
        if not self._fusable(X):
            return None
        columns = X.shape[1]
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
        kernel = self._sweep(Z)
        if kernel is not None:
            self.passes += 1
            out = kernel.sweep(self.A, Z if self.a_scale == 1.0 else self.a_scale * Z)[1]
            if self.a_scale != 1.0:
                out *= self.a_scale
        else:
            out = self.rmatmat(self.matmat(Z))
        if self.damp:
            out += self.damp ** 2 * Z
        return out

    def residual(self, X, B):
        """R = B - A X and the gradient G = A.T R - damp^2 X, in one pass when dense."""
        kernel = self._sweep(X)
        if kernel is not None:
            self.passes += 1
            R, G = kernel.sweep(self.A, X if self.a_scale == 1.0 else self.a_scale * X, B)
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
                           "scipy.linalg.lstsq, or randla.lstsq, which hands complex "
                           "data to it)")
    require_adjoint(A, name, "each randomized least-squares driver")
    if get_backend(A).issparse(A):
        A = A.tocsr()
    return Operand(A, real, damp)
