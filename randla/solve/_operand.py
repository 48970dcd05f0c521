"""The matrix of a least-squares problem, seen only through products.

:class:`Operand` wraps a dense array, a sparse matrix or a LinearOperator
(numpy/scipy on the host or CuPy/cupyx on the GPU) and offers the few products the solvers need, counting every
read of A (``passes``).  For dense A the two products an iteration needs,
``A.T @ (A @ z)`` and ``(r, A.T @ r)`` with ``r = b - A @ x``, are computed in
ONE sweep over cache-sized row panels of A (row i only needs ``a_i @ z``), so
an iteration streams A from memory once instead of twice.  On the GPU one
CUDA kernel does the same (``_gpu_sweep``; a panel loop would cost a kernel
launch per panel).  A is never copied,
except to cast integers to float (as scipy does) and to convert sparse formats
other than CSR and CSC to CSR.
"""
from __future__ import annotations

import numpy as np

from .._backend import get_backend
from .._operand import real_operand

__all__ = ["Operand", "as_operand"]

# Row panels of about this many entries (1 MiB of float64) stay in L2 cache.
_PANEL_ENTRIES = 1 << 17
# Up to this many right-hand sides the fused GEMV sweep beats two GEMMs.
_FUSED_MAX_COLUMNS = 2
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
        # the panel sweep pays off on the host only; the GPU has its own kernel
        self.fused = self.dense and not self.backend.is_gpu
        self.gpu_dense = self.dense and self.backend.is_gpu
        self.passes = 0

    @property
    def T(self) -> "Operand":
        """The transposed operand (a view; passes are counted separately)."""
        At = self.A.adjoint() if self.linear_operator else self.A.T
        return Operand(At, self.dtype, self.damp)

    def sketch(self, S):
        """S @ A, one pass."""
        from ..sketch import left_sketch
        self.passes += 1
        return left_sketch(S, self.A).astype(self.dtype, copy=False)

    def matmat(self, X):
        """A @ X for X of shape (n, k), one pass."""
        self.passes += 1
        if self.linear_operator:
            return self.xp.asarray(self.A.matmat(X)).astype(self.dtype, copy=False)
        return self.A @ X

    def rmatmat(self, Y):
        """A.T @ Y for Y of shape (m, k), one pass."""
        self.passes += 1
        if self.linear_operator:
            return self.xp.asarray(self.A.adjoint().matmat(Y)).astype(self.dtype, copy=False)
        if self.fused:
            # (Y^T A)^T runs as a plain GEMM on row-major A: 2.5x faster than A.T @ Y
            # with 16 columns on the CI machine (OpenBLAS 0.3.31)
            return (Y.T @ self.A).T
        return self.xp.asarray(self.A.T @ Y)

    def _panels(self):
        m, n = self.shape
        rows = max(16, _PANEL_ENTRIES // max(n, 1))
        for i0 in range(0, m, rows):
            yield i0, min(m, i0 + rows)

    def _gpu_sweep(self, columns):
        if not (GPU_SWEEP and self.gpu_dense):
            return None
        from . import _gpu_sweep
        return _gpu_sweep if _gpu_sweep.supported(self.A, columns) else None

    def normal(self, Z):
        """(A.T A + damp^2 I) Z for Z of shape (n, k)."""
        kernel = self._gpu_sweep(Z.shape[1])
        if kernel is not None:
            self.passes += 1
            out = kernel.sweep(self.A, Z)[1]
        elif self.fused and Z.shape[1] <= _FUSED_MAX_COLUMNS:
            self.passes += 1
            out = np.zeros_like(Z)
            part = np.empty_like(Z)
            for i0, i1 in self._panels():
                panel = self.A[i0:i1]
                np.matmul(panel.T, panel @ Z, out=part)
                out += part
        else:
            out = self.rmatmat(self.matmat(Z))
        if self.damp:
            out += self.damp ** 2 * Z
        return out

    def residual(self, X, B):
        """R = B - A X and the gradient G = A.T R - damp^2 X, in one pass when dense."""
        kernel = self._gpu_sweep(X.shape[1])
        if kernel is not None:
            self.passes += 1
            R, G = kernel.sweep(self.A, X, B)
        elif self.fused and X.shape[1] <= _FUSED_MAX_COLUMNS:
            self.passes += 1
            R = np.empty(B.shape, dtype=self.dtype)
            G = np.zeros_like(X)
            part = np.empty_like(X)
            for i0, i1 in self._panels():
                panel = self.A[i0:i1]
                np.subtract(B[i0:i1], panel @ X, out=R[i0:i1])
                np.matmul(panel.T, R[i0:i1], out=part)
                G += part
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
    if get_backend(A).issparse(A):
        A = A.tocsr()
    return Operand(A, real, damp)
