"""GPU benchmarks (issue 7): randla on CuPy arrays against CuPy's and PyTorch's own routines.

Every class skips (setup raises NotImplementedError) when CuPy is not
importable or no CUDA device exists; CuPy is imported only inside setup, so
the suite imports and passes ``asv check`` on a CPU-only machine.  PyTorch is
optional: its benchmarks skip (``SkipNotImplemented``) without it.  Every
timed function ends with ``cupy.cuda.Device().synchronize()`` (a whole-device
barrier, so it also waits for PyTorch's kernels), so times are real.

On a machine without asv (the GPU machine), from the repository root::

    PYTHONPATH=. python asv_benchmarks/run_quick.py bench_gpu --json gpu.json

Classes (peers timed in the same class; ``"small"`` sizes are for quick runs,
``RANDLA_BENCH_SIZES=small`` selects them):

- ``Lstsq``: the standard problem (condition number 1e10, optimal residual
  1e-6) built on the GPU, 100000 x 2000 (small: 20000 x 500), float64 and
  float32.  ``randla.lstsq`` (auto, and with ``check_finite=False``) against
  ``cupy.linalg.lstsq`` (an SVD), CuPy Householder QR + triangular solve, and
  ``torch.linalg.lstsq`` (driver "gels", the only one on CUDA) on the same
  memory.  ``track_backward_error_*``: sketched Karlson-Walden estimate over
  ||A||_F (Gaussian sketch d = 4n, seed 12345, the same for every solver;
  QR form, all on the GPU; for float32 data the float32 matrix is the data
  and the estimate is computed in float64).  ``cupy.linalg.lstsq`` runs with
  ``rcond=None``, its default cutoff ``eps * max(m, n)``: in float32 that is
  1.2e-2 at 100000 x 2000, so it truncates this problem's spectrum (its
  backward error shows it).  One residual pass of the refinement
  (``as_operand(A).residual(X, B)``: ``R = B - A X`` and ``G = A^T R``,
  n x 1 X) is timed beside one GEMV ``A @ x``; ``track_*_bandwidth`` give
  bytes of A / best time in GB/s, however many reads of A the implementation
  makes (compare with HBM: H100 ~3350 GB/s, H200 ~4800 GB/s).
- ``Svds``: ``A = U diag(1/i) V^T`` (U, V from CuPy QR of Gaussians),
  20000 x 5000, k = 20 (small: 2000 x 500, k = 10), float64.
  ``randla.svds(tol=1e-8)`` against ``cupyx.scipy.sparse.linalg.svds(tol=1e-8)``
  and ``torch.svd_lowrank(q=k+10, niter=2)``.  ``track_sv_error_*``: the
  largest relative error of the top k singular values against the exact
  1/i the matrix was built with (rounding in forming A moves them by about
  1e-15 absolute, so no reference SVD is computed).
- ``DenseGeneration``: a Gaussian ``DenseOperator(1000, 1_000_000)``
  (1e9 float64 entries, 8 GB; small: 1000 x 10000) made on the device with
  ``todense(xp=cupy)``, against ``cupy.random.default_rng(0).standard_normal``
  of the same shape; ``track_*_write_bandwidth`` in GB/s.
- ``SASOApply``: ``left_sketch(SASO(8000, 100000, k=8), A)`` for A
  100000 x 2000 float64 (small: 800, 10000, 10000 x 200) against one GEMV
  ``A @ x`` (one read of A, the cost floor) and the same operator as a
  cupyx CSR matrix ``S @ A`` (cuSPARSE; only the product is timed).
- ``Trace``: ``randla.trace(A, matvecs=100, method="hutchinson")`` on a dense
  SPD ``A = G G^T / n`` (G Gaussian), n = 20000 (small: 2000), against the
  same Hutchinson written in plain CuPy (Rademacher block, one ``A @ X``) and
  the product ``A @ X`` alone; ``track_overhead_ratio`` = best randla time /
  best plain-CuPy time.

Problems are built on the GPU in ``setup`` and cached at module level (asv
re-runs setup before every sample; ``run_quick.py`` runs one parameter
combination after the other in one process, so each is built once).
Timed runs: ``number = 1``, ``repeat = (1, 3, 10.0)`` (at least 1, at most 3
samples, no new one after 10 s); the expensive classes warm up in setup on a
small problem (``warmup_time = 0``) instead of repeating a slow call.
"""
import math
import time

import randla

from ._sizes import selected_sizes

try:
    from asv_runner.benchmarks.mark import SkipNotImplemented
except ImportError:      # no asv here (run_quick.py): the runner knows this name
    class SkipNotImplemented(NotImplementedError):
        """Skips one benchmark function (asv's class of the same name when asv is there)."""

_LSTSQ_SIZES = {"small": (20000, 500), "100000x2000": (100000, 2000)}
_SVDS_SIZES = {"small": (2000, 500, 10), "20000x5000": (20000, 5000, 20)}
_GENERATION_SHAPES = {"small": (1000, 10_000), "1e9": (1000, 1_000_000)}
_SASO_SHAPES = {"small": (10000, 200, 800), "100000x2000": (100000, 2000, 8000)}  # m, n, d
_TRACE_SIZES = {"small": 2000, "20000": 20000}
_TRACE_MATVECS = 100
_CACHE = {}
_SOLUTIONS = {}      # results of the latest timed calls, reused by track_ functions


def _cupy():
    """CuPy, or NotImplementedError (asv's skip) without CuPy or a CUDA device."""
    try:
        import cupy
    except Exception as exc:      # ImportError, or CUDA libraries missing
        raise NotImplementedError(f"CuPy is not importable ({type(exc).__name__}: {exc})") \
            from None
    try:
        devices = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:      # CUDA driver or runtime missing
        raise NotImplementedError(f"no CUDA device ({type(exc).__name__}: {exc})") from None
    if devices == 0:
        raise NotImplementedError("no CUDA device")
    return cupy


def _torch():
    """PyTorch with CUDA, or SkipNotImplemented for the one benchmark that needs it."""
    try:
        import torch
    except ImportError:
        raise SkipNotImplemented("PyTorch is not installed") from None
    if not torch.cuda.is_available():
        raise SkipNotImplemented("PyTorch has no CUDA device")
    return torch


def _torch_if_present():
    """PyTorch with CUDA, or None (for warm-ups)."""
    try:
        return _torch()
    except NotImplementedError:
        return None


def _sync():
    import cupy
    cupy.cuda.Device().synchronize()


def _best_seconds(func, repeat=3):
    """Best wall time of func() over ``repeat`` runs after one warm-up, device synchronised."""
    func()
    _sync()
    best = math.inf
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        _sync()
        best = min(best, time.perf_counter() - start)
    return best


def _release_problems():
    """Drop the cached problems and results and return their memory to the device."""
    import cupy
    _CACHE.clear()
    _SOLUTIONS.clear()
    cupy.get_default_memory_pool().free_all_blocks()


def _cached(key, build):
    """build() once; only the latest problem is kept, so large ones never coexist."""
    if key not in _CACHE:
        _release_problems()
        _CACHE[key] = build()
    return _CACHE[key]


def _haar(rs, n):
    """An n x n Haar-distributed orthogonal matrix (QR of a Gaussian, signs fixed)."""
    import cupy
    Q, R = cupy.linalg.qr(rs.standard_normal((n, n)))
    return Q * cupy.sign(cupy.diagonal(R))


def _sketch_factor(A):
    """R of a Gaussian sketch (d = 4n, seed 12345) of A in float64, for the KW estimate."""
    import cupy
    m, n = A.shape
    d = 4 * n
    rs = cupy.random.RandomState(12345)
    SA = cupy.zeros((d, n))
    rows = max(1, (1 << 27) // d)            # Gaussian blocks of about 1 GB
    for i0 in range(0, m, rows):
        block = A[i0:i0 + rows].astype(cupy.float64)
        SA += rs.standard_normal((d, block.shape[0])) @ block
    SA /= math.sqrt(d)
    return cupy.linalg.qr(SA, mode="r")


class _LstsqProblem:
    """A and b in one precision, with the data the backward-error estimate needs."""

    def __init__(self, A, b):
        self.A, self.b = A, b
        self._factor = None

    def backward_error(self, x):
        """Sketched Karlson-Walden estimate of x's backward error, over ||A||_F.

        ``||(A^T A + phi^2 I)^{-1/2} A^T r|| / ||x||`` with ``phi = ||r||/||x||``,
        A^T A replaced by R^T R of the sketch (within a small constant of the
        exact backward error), evaluated through the R factor of [R; phi I].
        """
        import cupy
        import cupyx.scipy.linalg
        if self._factor is None:
            self._factor = _sketch_factor(self.A)
        A64 = self.A.astype(cupy.float64, copy=False)
        x = cupy.asarray(x).astype(cupy.float64).reshape(-1)
        r = self.b.astype(cupy.float64) - A64 @ x
        g = A64.T @ r
        x_norm, r_norm = float(cupy.linalg.norm(x)), float(cupy.linalg.norm(r))
        if r_norm == 0:
            return 0.0
        n = self._factor.shape[0]
        phi = r_norm / x_norm
        R2 = cupy.linalg.qr(cupy.vstack([self._factor, phi * cupy.eye(n)]), mode="r")
        z = cupyx.scipy.linalg.solve_triangular(R2, g, trans="T")
        return float(cupy.linalg.norm(z)) / x_norm / float(cupy.linalg.norm(A64))


def _build_lstsq(size):
    """The standard problem on the GPU in float64 and float32: {dtype name: _LstsqProblem}."""
    import cupy
    m, n = _LSTSQ_SIZES[size]
    rs = cupy.random.RandomState(0)
    U, _ = cupy.linalg.qr(rs.standard_normal((m, n + 1)))
    V = _haar(rs, n)
    sigma = cupy.logspace(0, -10, n)
    A = cupy.ascontiguousarray((U[:, :n] * sigma) @ V.T)
    x = rs.standard_normal(n)
    x /= cupy.linalg.norm(x)
    b = A @ x + 1e-6 * U[:, n]
    del U, V
    return {"float64": _LstsqProblem(A, b),
            "float32": _LstsqProblem(A.astype(cupy.float32), b.astype(cupy.float32))}


def _lstsq_warm_up(cupy, dtype):
    # Load cuSOLVER/cuBLAS handles and compile randla's and CuPy's kernels for this
    # dtype on a small problem, outside the timed region.
    rs = cupy.random.RandomState(1)
    A = rs.standard_normal((4096, 64)).astype(dtype)
    b = rs.standard_normal(4096).astype(dtype)
    randla.lstsq(A, b, rng=0)
    randla.lstsq(A, b, rng=0, method="randomized")
    cupy.linalg.lstsq(A, b, rcond=None)
    _qr_solve(A, b)
    from randla.solve._operand import as_operand
    as_operand(A).residual(b[:64, None], b[:, None])
    torch = _torch_if_present()
    if torch is not None:
        torch.linalg.lstsq(torch.as_tensor(A, device="cuda"),
                           torch.as_tensor(b, device="cuda")[:, None], driver="gels")
    _sync()


def _qr_solve(A, b):
    import cupy
    import cupyx.scipy.linalg
    Q, R = cupy.linalg.qr(A)
    return cupyx.scipy.linalg.solve_triangular(R, Q.T @ b)


class _OneCallSamples:
    """asv settings shared by the GPU suites: one synchronised call per sample,
    at least one and at most three samples, none started after 10 s."""

    timeout = 300
    number = 1
    repeat = (1, 3, 10.0)


class Lstsq(_OneCallSamples):
    """Dense least squares on the GPU: randla.lstsq and its peers, their backward
    errors, and the bandwidth of one residual pass (see the module docstring)."""

    params = (selected_sizes(_LSTSQ_SIZES), ["float64", "float32"])
    param_names = ["size", "dtype"]
    timeout = 900
    warmup_time = 0

    def setup(self, size, dtype):
        cupy = _cupy()
        self.problem = _cached(("lstsq", size), lambda: _build_lstsq(size))[dtype]
        self.A, self.b = self.problem.A, self.problem.b
        self.key = (size, dtype)
        from randla.solve._operand import as_operand
        self.operand = as_operand(self.A)
        self.X = cupy.ones((self.A.shape[1], 1), dtype=self.A.dtype)
        _lstsq_warm_up(cupy, self.A.dtype)

    def _solve(self, solver):
        import cupy
        A, b = self.A, self.b
        if solver == "randla":
            x = randla.lstsq(A, b, rng=0)[0]
        elif solver == "randla_no_check":
            x = randla.lstsq(A, b, rng=0, check_finite=False)[0]
        elif solver == "cupy_lstsq":
            x = cupy.linalg.lstsq(A, b, rcond=None)[0]
        elif solver == "cupy_qr":
            x = _qr_solve(A, b)
        else:
            torch = _torch()
            A_t = torch.as_tensor(A, device="cuda")     # shares the CuPy memory
            b_t = torch.as_tensor(b, device="cuda")
            x = torch.linalg.lstsq(A_t, b_t[:, None], driver="gels").solution[:, 0]
        _sync()
        _SOLUTIONS[self.key + (solver,)] = x
        return x

    def _backward_error(self, solver):
        x = _SOLUTIONS.get(self.key + (solver,))
        if x is None:
            x = self._solve(solver)
        if solver == "torch_gels":
            import cupy
            x = cupy.asarray(x)
        return self.problem.backward_error(x)

    def time_randla(self, size, dtype):
        self._solve("randla")

    def time_randla_no_check(self, size, dtype):
        self._solve("randla_no_check")

    def time_cupy_lstsq(self, size, dtype):
        self._solve("cupy_lstsq")

    def time_cupy_qr(self, size, dtype):
        self._solve("cupy_qr")

    def time_torch_gels(self, size, dtype):
        self._solve("torch_gels")

    def track_backward_error_randla(self, size, dtype):
        return self._backward_error("randla")

    track_backward_error_randla.unit = "backward error / ||A||_F"

    def track_backward_error_cupy_lstsq(self, size, dtype):
        return self._backward_error("cupy_lstsq")

    track_backward_error_cupy_lstsq.unit = "backward error / ||A||_F"

    def track_backward_error_cupy_qr(self, size, dtype):
        return self._backward_error("cupy_qr")

    track_backward_error_cupy_qr.unit = "backward error / ||A||_F"

    def track_backward_error_torch_gels(self, size, dtype):
        return self._backward_error("torch_gels")

    track_backward_error_torch_gels.unit = "backward error / ||A||_F"

    def _residual_pass(self):
        self.operand.residual(self.X, self.b[:, None])
        _sync()

    def _matvec(self):
        self.A @ self.X[:, 0]
        _sync()

    def time_residual_pass(self, size, dtype):
        self._residual_pass()

    def time_matvec(self, size, dtype):
        self._matvec()

    def track_residual_pass_bandwidth(self, size, dtype):
        return self.A.nbytes / _best_seconds(self._residual_pass, 5) / 1e9

    track_residual_pass_bandwidth.unit = "GB/s (bytes of A)"

    def track_matvec_bandwidth(self, size, dtype):
        return self.A.nbytes / _best_seconds(self._matvec, 5) / 1e9

    track_matvec_bandwidth.unit = "GB/s (bytes of A)"


def _build_svds(size):
    """A = U diag(1/i) V^T (C-ordered float64) on the GPU, and the exact top-k values."""
    import cupy
    m, n, k = _SVDS_SIZES[size]
    rs = cupy.random.RandomState(0)
    U, _ = cupy.linalg.qr(rs.standard_normal((m, n)))
    V = _haar(rs, n)
    s = 1.0 / cupy.arange(1, n + 1, dtype=cupy.float64)
    A = cupy.ascontiguousarray((U * s) @ V.T)
    return A, s[:k].copy()


class Svds(_OneCallSamples):
    """Top-k singular triplets on the GPU: randla.svds, cupyx svds (Lanczos), torch.svd_lowrank."""

    params = [selected_sizes(_SVDS_SIZES)]
    param_names = ["size"]
    timeout = 600
    warmup_time = 0

    def setup(self, size):
        cupy = _cupy()
        self.A, self.reference = _cached(("svds", size), lambda: _build_svds(size))
        self.k = _SVDS_SIZES[size][2]
        self.size = size
        small = cupy.zeros((300, 100))          # singular values 1/i: converges quickly
        small[:100] = cupy.diag(1.0 / cupy.arange(1, 101))
        randla.svds(small, k=5, tol=1e-8, rng=0)
        import cupyx.scipy.sparse.linalg
        cupyx.scipy.sparse.linalg.svds(small, k=5, tol=1e-8)
        torch = _torch_if_present()
        if torch is not None:
            torch.svd_lowrank(torch.as_tensor(small, device="cuda"), q=10, niter=2)
        _sync()

    def _solve(self, solver):
        if solver == "randla":
            s = randla.svds(self.A, k=self.k, tol=1e-8, rng=0)[1]
        elif solver == "cupyx":
            import cupy
            import cupyx.scipy.sparse.linalg
            cupy.random.seed(0)                 # its Lanczos start vector comes from here
            s = cupyx.scipy.sparse.linalg.svds(self.A, k=self.k, tol=1e-8)[1]
        else:
            torch = _torch()
            torch.manual_seed(0)
            A_t = torch.as_tensor(self.A, device="cuda")
            s = torch.svd_lowrank(A_t, q=self.k + 10, niter=2)[1]
        _sync()
        _SOLUTIONS[(self.size, solver)] = s
        return s

    def _error(self, solver):
        import cupy
        s = _SOLUTIONS.get((self.size, solver))
        if s is None:
            s = self._solve(solver)
        s = cupy.sort(cupy.asarray(s).ravel())[::-1][:self.k]
        return float(cupy.max(cupy.abs(s - self.reference) / self.reference))

    def time_randla(self, size):
        self._solve("randla")

    def time_cupyx_svds(self, size):
        self._solve("cupyx")

    def time_torch_svd_lowrank(self, size):
        self._solve("torch")

    def track_sv_error_randla(self, size):
        return self._error("randla")

    track_sv_error_randla.unit = "max relative error, top k"

    def track_sv_error_cupyx_svds(self, size):
        return self._error("cupyx")

    track_sv_error_cupyx_svds.unit = "max relative error, top k"

    def track_sv_error_torch_svd_lowrank(self, size):
        return self._error("torch")

    track_sv_error_torch_svd_lowrank.unit = "max relative error, top k"



class DenseGeneration(_OneCallSamples):
    """A Gaussian DenseOperator made on the device against CuPy's default_rng."""

    params = [selected_sizes(_GENERATION_SHAPES)]
    param_names = ["size"]

    def setup(self, size):
        cupy = _cupy()
        self.shape = _GENERATION_SHAPES[size]
        _release_problems()                # room for two 8 GB outputs
        from randla.sketch import DenseOperator
        DenseOperator(4, 64, rng=0).todense(xp=cupy)
        cupy.random.default_rng(0).standard_normal((4, 64))
        _sync()

    def _randla(self):
        import cupy

        from randla.sketch import DenseOperator
        DenseOperator(*self.shape, rng=0).todense(xp=cupy)
        _sync()

    def _cupy(self):
        import cupy
        cupy.random.default_rng(0).standard_normal(self.shape)
        _sync()

    def time_randla(self, size):
        self._randla()

    def time_cupy_default_rng(self, size):
        self._cupy()

    def track_randla_write_bandwidth(self, size):
        return 8 * math.prod(self.shape) / _best_seconds(self._randla) / 1e9

    track_randla_write_bandwidth.unit = "GB/s"

    def track_cupy_write_bandwidth(self, size):
        return 8 * math.prod(self.shape) / _best_seconds(self._cupy) / 1e9

    track_cupy_write_bandwidth.unit = "GB/s"


def _build_saso(size):
    import cupy
    m, n, _ = _SASO_SHAPES[size]
    return cupy.random.RandomState(0).uniform(size=(m, n))


class SASOApply(_OneCallSamples):
    """S @ A for a SASO (k = 8) on the device, against one GEMV and cuSPARSE CSR @ dense."""

    params = [selected_sizes(_SASO_SHAPES)]
    param_names = ["size"]

    def setup(self, size):
        cupy = _cupy()
        from randla.sketch import SASO, left_sketch
        m, n, d = _SASO_SHAPES[size]
        self.A = _cached(("saso", size), lambda: _build_saso(size))
        self.x = cupy.ones(n)
        self.S = SASO(d, m, k=8, rng=0)
        self.S_csr = self.S.tosparse(xp=cupy)
        left_sketch(SASO(8, 64, k=8, rng=0), cupy.zeros((64, 4)))
        self.S_csr @ cupy.ones((m, 2))
        _sync()

    def time_saso_apply(self, size):
        from randla.sketch import left_sketch
        left_sketch(self.S, self.A)
        _sync()

    def time_matvec(self, size):
        self.A @ self.x
        _sync()

    def time_cupyx_csr(self, size):
        self.S_csr @ self.A
        _sync()


def _build_trace(size):
    """Dense SPD A = G G^T / n (float64, symmetrised) and its trace."""
    import cupy
    n = _TRACE_SIZES[size]
    G = cupy.random.RandomState(0).standard_normal((n, n))
    A = G @ G.T
    del G
    A = (A + A.T) / (2 * n)
    return A, float(cupy.trace(A))


def cupy_hutchinson(A, m, seed):
    """Plain Hutchinson as written with CuPy alone: Rademacher probes, one block product."""
    import cupy
    X = (cupy.random.default_rng(seed).random((A.shape[0], m)) < 0.5).astype(cupy.float64)
    X *= 2
    X -= 1
    return float(cupy.sum(X * (A @ X))) / m


class Trace(_OneCallSamples):
    """Hutchinson with 100 matvecs: randla.trace against the same estimator in plain CuPy."""

    params = [selected_sizes(_TRACE_SIZES)]
    param_names = ["size"]

    def setup(self, size):
        cupy = _cupy()
        self.A, self.exact = _cached(("trace", size), lambda: _build_trace(size))
        self.X = cupy.ones((self.A.shape[0], _TRACE_MATVECS))
        randla.trace(cupy.eye(8), matvecs=4, method="hutchinson", rng=0)
        cupy_hutchinson(cupy.eye(8), 4, 0)
        _sync()

    def _randla(self):
        estimate = randla.trace(self.A, matvecs=_TRACE_MATVECS, method="hutchinson",
                                rng=0).estimate
        _sync()
        return float(estimate)

    def _plain(self):
        estimate = cupy_hutchinson(self.A, _TRACE_MATVECS, 0)
        _sync()
        return estimate

    def time_randla_hutchinson(self, size):
        self._randla()

    def time_cupy_hutchinson(self, size):
        self._plain()

    def time_matvecs_only(self, size):
        self.A @ self.X
        _sync()

    def track_overhead_ratio(self, size):
        return _best_seconds(self._randla) / _best_seconds(self._plain)

    track_overhead_ratio.unit = "randla time / plain CuPy time"

    def track_relative_error_randla(self, size):
        return abs(self._randla() - self.exact) / self.exact

    track_relative_error_randla.unit = "relative error"

    def track_relative_error_cupy(self, size):
        return abs(self._plain() - self.exact) / self.exact

    track_relative_error_cupy.unit = "relative error"
