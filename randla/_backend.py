"""The one place that knows numpy from CuPy.

:func:`get_backend` maps input arrays to a :class:`Backend`: the array
namespace (``numpy`` or ``cupy``) and the matching ``scipy`` / ``cupyx.scipy``
modules.  CuPy is imported only when a CuPy array is actually passed in, so
``import randla`` works (and stays fast) without it.
"""
from __future__ import annotations

import contextlib
import functools
import importlib
from dataclasses import dataclass
from functools import cached_property
from types import ModuleType

import numpy as np

__all__ = ["Backend", "get_backend", "is_cupy_object", "NUMPY"]


def is_cupy_object(x) -> bool:
    """True for CuPy arrays, cupyx sparse matrices and cupyx LinearOperators
    (subclasses included), without importing CuPy."""
    return any(cls.__module__ == "cupy" or cls.__module__.startswith(("cupy.", "cupyx."))
               for cls in type(x).__mro__)


# Rows per product when tall_qr works by blocks of rows (10 columns of them
# are 640 KiB, within the level-2 cache).
_QR_BLOCK_ROWS = 8192
# Widest GPU block whose CholeskyQR factors tall_qr computes on the host.
_HOST_FACTOR_COLUMNS = 64


@dataclass(frozen=True)
class Backend:
    """Array namespace and the scipy-like modules that go with it.

    Attributes
    ----------
    name : {"numpy", "cupy"}
        Which library holds the arrays.
    """

    name: str

    @property
    def is_gpu(self) -> bool:
        return self.name == "cupy"

    @cached_property
    def xp(self) -> ModuleType:
        """``numpy`` or ``cupy``."""
        return importlib.import_module(self.name)

    def _scipy(self, submodule: str) -> ModuleType:
        prefix = "cupyx.scipy" if self.is_gpu else "scipy"
        return importlib.import_module(f"{prefix}.{submodule}")

    @cached_property
    def linalg(self) -> ModuleType:
        """``scipy.linalg`` or ``cupyx.scipy.linalg``."""
        return self._scipy("linalg")

    @cached_property
    def fft(self) -> ModuleType:
        """``scipy.fft`` or ``cupyx.scipy.fft``."""
        return self._scipy("fft")

    @cached_property
    def sparse(self) -> ModuleType:
        """``scipy.sparse`` or ``cupyx.scipy.sparse``."""
        return self._scipy("sparse")

    @cached_property
    def sparse_linalg(self) -> ModuleType:
        """``scipy.sparse.linalg`` or ``cupyx.scipy.sparse.linalg``."""
        return self._scipy("sparse.linalg")

    def issparse(self, x) -> bool:
        """True if ``x`` is a sparse matrix or array of this backend."""
        return bool(self.sparse.issparse(x))

    def is_linear_operator(self, x) -> bool:
        """True if ``x`` is a LinearOperator of this backend."""
        return isinstance(x, self.sparse_linalg.LinearOperator)

    # Dense factorisations.  The few places where numpy/scipy and CuPy differ
    # in name or signature are bridged here, so drivers call one spelling.
    # On the host they go through numpy.linalg, not scipy.linalg: the numpy and
    # scipy wheels each bundle their own OpenBLAS with its own thread pool, and
    # a scipy factorisation right after a numpy product waits for the numpy
    # pool's spinning threads to give the cores back (60-100 ms per switch
    # measured on the 2-core CI machine, for a 200 x 200 Cholesky).

    def to_host(self, x) -> np.ndarray:
        """``x`` as a numpy array (a device-to-host copy for CuPy data)."""
        return self.xp.asnumpy(x) if self.is_gpu else np.asarray(x)

    def qr(self, A, mode: str = "reduced"):
        """Householder QR of a tall matrix: ``(Q, R)`` economic, or ``R`` alone
        (``min(m, n) x n``) for ``mode="r"``."""
        if mode not in ("reduced", "r"):
            raise ValueError(f"mode must be 'reduced' or 'r', got {mode!r}")
        return self.xp.linalg.qr(A, mode=mode)

    def tall_qr(self, Y, *, q: bool = True, gram=None):
        """Economic QR ``(Q, R)`` of a tall block: CholeskyQR2, Householder where unsafe.

        Two passes of ``Q = Y C^{-1}`` with ``C^T C = Y^T Y`` are Gram
        products and products with the small inverse, far faster on a tall
        m x k block than Householder's panel sweeps, which read the whole
        block once per column (10^6 x 40 on the CI machine: about 0.5 s
        against 0.9-3.6 s; a product with the inverse also ran twice as fast
        as a triangular solve with m right-hand sides).  They are accurate
        while cond(Y) < eps^{-1/2}; when the first Cholesky fails, or leaves
        a Q whose Gram matrix is further than 1/2 from I, Householder QR
        takes over.  The inverse comes from an LU factorisation, so ``Q R``
        matches Y to a few units of roundoff more than with triangular
        solves (still O(eps)).  R is upper triangular in both branches; Q is
        C-ordered after CholeskyQR2.  A single column is scaled by its norm
        (one pass, not four), unless squares of its entries could fall among
        the subnormal numbers or overflow: then Householder QR.

        ``gram``, where the caller has it already, is ``Yᵀ Y`` in Y's dtype
        (a host or device array): the first Gram product is saved, and on a
        GPU, for a block of at most 64 columns (whose small factors are
        computed on the host) given a host array, its transfer and
        synchronisation.

        With ``q=False`` only R is computed: ``(None, R)``, the same R.  On
        the host the products with the small inverses run a block of rows at
        a time: with ``q=False`` the first one's blocks only feed the second
        Gram matrix, and the second product overwrites the first's result (a
        fresh array of 10^6 x 10 cost 13-167 ms on the CI machine, most of it
        faulting in memory).
        """
        xp = self.xp
        if Y.ndim == 2 and Y.shape[1] == 1:
            with np.errstate(over="ignore", under="ignore"):
                R = xp.linalg.norm(Y, axis=0, keepdims=True)
            finfo = np.finfo(Y.dtype)
            if np.sqrt(Y.shape[0] * float(finfo.tiny)) < float(R[0, 0]) < np.inf:
                return (xp.ascontiguousarray(Y / R) if q else None), R
            return self._householder(Y, q)
        # The k x k factors of a narrow GPU block are computed on the host: a
        # cuSOLVER Cholesky or inverse with its error check cost 0.3-0.4 ms
        # each on an H200, most of a Lanczos step's time.
        small = NUMPY if self.is_gpu and Y.shape[1] <= _HOST_FACTOR_COLUMNS else self
        to_small = self.to_host if small is NUMPY else (lambda M: M)
        try:
            C1 = small.cholesky(small.xp.asarray(to_small(Y.T @ Y if gram is None else gram)))
            Q, G = self._times_and_gram(Y, xp.asarray(small._triangular_inverse(C1)), keep=q)
            G = to_small(G)
            eye = small.xp.eye(G.shape[0], dtype=G.dtype)
            if not float(small.xp.linalg.norm(G - eye)) <= 0.5:
                return self._householder(Y, q)
            C2 = small.cholesky(G)
        except np.linalg.LinAlgError:
            return self._householder(Y, q)
        R = xp.asarray(C2 @ C1)
        if not q:
            return None, R
        return self._times_in_place(Q, xp.asarray(small._triangular_inverse(C2))), R

    def _householder(self, Y, q):
        return self.qr(Y) if q else (None, self.qr(Y, mode="r"))

    def _times_and_gram(self, Y, T, keep):
        """``(Y T, (Y T)ᵀ (Y T))``, the first None unless ``keep``; on the host
        a block of rows at a time, so that without ``keep`` no m-row array is
        made, and with it the Gram matrix is summed the same way."""
        if self.is_gpu:
            Q = Y @ T
            return (Q if keep else None), Q.T @ Q
        Q = np.empty((Y.shape[0], T.shape[1]), dtype=np.result_type(Y, T)) if keep else None
        G = np.zeros((T.shape[1], T.shape[1]), dtype=np.result_type(Y, T))
        for start in range(0, Y.shape[0], _QR_BLOCK_ROWS):
            rows = slice(start, start + _QR_BLOCK_ROWS)
            block = Y[rows] @ T
            G += block.T @ block
            if keep:
                Q[rows] = block
        return Q, G

    def _times_in_place(self, Q, T):
        """``Q @ T`` for a small square T, written over Q on the host."""
        if self.is_gpu:
            return Q @ T
        for start in range(0, Q.shape[0], _QR_BLOCK_ROWS):
            rows = slice(start, start + _QR_BLOCK_ROWS)
            Q[rows] = Q[rows] @ T
        return Q

    def _triangular_inverse(self, C):
        # numpy's inverse, not scipy's triangular solve: switching between
        # the two libraries' OpenBLAS pools costs milliseconds each time
        return self.xp.linalg.inv(C)

    def svd(self, A, compute_uv: bool = True):
        """Thin SVD ``(U, s, Vt)`` (or ``s`` alone); on the host, falls back
        from the divide-and-conquer driver to gesvd when gesdd fails."""
        try:
            return self.xp.linalg.svd(A, full_matrices=False, compute_uv=compute_uv)
        except np.linalg.LinAlgError:
            if self.is_gpu:
                raise
            return self.linalg.svd(A, full_matrices=False, compute_uv=compute_uv,
                                   check_finite=False, lapack_driver="gesvd")

    def eigh(self, A):
        """Eigenvalues (ascending) and eigenvectors of a symmetric matrix (lower triangle)."""
        return self.xp.linalg.eigh(A)

    def cholesky(self, A):
        """Upper triangular C with ``CᵀC = A``.

        Raises
        ------
        numpy.linalg.LinAlgError
            If A is not (numerically) positive definite, on either backend.
        """
        if self.is_gpu:
            import cupyx
            with cupyx.errstate(linalg="raise"):
                return self.xp.linalg.cholesky(A).T.copy()
        return np.linalg.cholesky(A).T.copy()

    def single_threaded_blas(self):
        """A context in which host BLAS and LAPACK calls run on one thread.

        For the small factorisations between numba sweeps: OpenBLAS's worker
        threads spin for about 0.1 s after a multithreaded call, and on the
        2-core CI machine that stalls the numba threads of the next sweeps
        (up to 1 ms per call of a 60-microsecond kernel).  A no-op on the GPU.
        """
        controller = None if self.is_gpu else _blas_controller()
        if controller is None:
            return contextlib.nullcontext()
        return controller.limit(limits=1, user_api="blas")

    def solve_triangular(self, R, B, *, trans: bool = False, lower: bool = False):
        """``R⁻¹ B`` (or ``R⁻ᵀ B`` with ``trans=True``) for triangular R."""
        return self.linalg.solve_triangular(R, B, trans=1 if trans else 0, lower=lower,
                                            check_finite=False)


@functools.cache
def _blas_controller():
    """threadpoolctl's view of the loaded BLAS libraries (None in a source
    checkout without threadpoolctl, where calls keep their threads)."""
    try:
        import threadpoolctl
    except ImportError:
        return None
    return threadpoolctl.ThreadpoolController()


NUMPY = Backend("numpy")
_CUPY = Backend("cupy")


def get_backend(*arrays) -> Backend:
    """The backend of the given arrays (``None`` entries are ignored).

    Anything that is not a CuPy object (numpy arrays, lists, scipy.sparse
    matrices, LinearOperators) belongs to the numpy backend.

    Raises
    ------
    TypeError
        If CuPy and host objects are mixed: randla never moves data between
        host and device behind the caller's back.
    """
    kinds = {is_cupy_object(a) for a in arrays if a is not None}
    if kinds == {True, False}:
        raise TypeError("cannot mix CuPy (GPU) and host (numpy/scipy) operands; "
                        "move them to one device first")
    return _CUPY if kinds == {True} else NUMPY


def working_float(dtype) -> np.dtype:
    """The real floating type computations on data of ``dtype`` use.

    float32 and complex64 compute in float32, float16 is raised to float32,
    everything numeric else (integers, bool, float64, complex128) in float64,
    as scipy.linalg casts.
    """
    dtype = np.dtype(dtype).newbyteorder("=")    # big-endian float32 is float32 too
    if dtype.kind not in "biufc":
        raise TypeError(f"expected numeric data, got dtype {dtype}")
    if dtype in (np.float16, np.float32, np.complex64):
        return np.dtype(np.float32)
    return np.dtype(np.float64)
