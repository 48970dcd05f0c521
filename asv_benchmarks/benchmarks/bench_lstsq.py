"""Least squares: randla.lstsq against scipy.linalg.lstsq (gelsd, gelsy) and lsqr.

Every peer is timed in the same class as randla, so ratios come from one
``asv run`` on one machine.  Problems are the ALGORITHMS.md standard problem
(condition number 1e10, optimal residual 1e-6), dense float64 C-ordered.
Sizes: ``"small"`` (2000 x 50, for ``--quick``; there randla's ``auto`` uses
LAPACK), ``"1000x1000"`` (a square system of condition 1e10 with b = A x,
where ``auto`` must use LAPACK and cost no more than 1.1 times scipy),
``"40000x1000"`` and ``"100000x2000"`` (the issue's targets), and
100000 x 2000 with 16 right-hand sides.  ``Sparse`` is a 200000 x 500 CSR
matrix with 10 nonzeros per row and columns scaled to condition about 1e6,
against scipy.sparse.linalg.lsqr run to the backward error randla reaches.

Thread settings: nothing is pinned; numba and OpenBLAS use the library
defaults (2 threads on the CI machine).  Set ``OPENBLAS_NUM_THREADS`` /
``NUMBA_NUM_THREADS`` before ``asv run`` to measure other settings.

``RANDLA_BENCH_SIZES`` (comma-separated, e.g. ``small``) restricts the sizes,
so that ``RANDLA_BENCH_SIZES=small asv run --quick`` stays quick.

track_ benchmarks record the backward error (sketched Karlson-Walden estimate
over ||A||_F, the same independent sketch for every solver) and randla's
iterations and passes over A.  Problems are built in ``setup`` and cached at
module level (asv re-runs setup before every sample).
"""

import numpy as np
import scipy.linalg
import scipy.sparse as sp
import scipy.sparse.linalg

import randla
from randla.solve import spir, standard_problem
from randla.solve._problems import _haar

from ._memory import allocated_peak
from ._sizes import selected_sizes

_SIZES = {"small": (2000, 50, 1), "1000x1000": (1000, 1000, 1),
          "40000x1000": (40000, 1000, 1), "100000x2000": (100000, 2000, 1),
          "100000x2000x16": (100000, 2000, 16)}
_CACHE = {}


def _problem(size):
    if size not in _CACHE:
        _CACHE.clear()
        m, n, nrhs = _SIZES[size]
        if m == n:
            _CACHE[size] = _square_problem(n)
            return _CACHE[size]
        A, b, x, r = standard_problem(m, n, 1e10, 1e-6, rng=0)
        if nrhs > 1:
            X = np.random.default_rng(1).standard_normal((n, nrhs))
            b = A @ X + r[:, None]
        _CACHE[size] = (A, b)
    return _CACHE[size]


def _square_problem(n):
    """A square A = U diag(s) Vᵀ, Haar U and V, s from 1 to 1e-10 (condition
    number 1e10, as the standard problem), and b = A x: a square system has
    no room for the standard problem's residual."""
    rng = np.random.default_rng(0)
    U, V = _haar(rng, n, n), _haar(rng, n, n)
    A = np.ascontiguousarray((U * np.logspace(0, -10, n)) @ V.T)
    return A, A @ rng.standard_normal(n)


def _backward_error(A, b, x):
    """Sketched Karlson-Walden estimate / ||A||_F (worst column), one fixed sketch."""
    from randla.solve._operand import as_operand
    from randla.solve._preconditioner import choose_sketch_size, sketch_and_factor
    op = as_operand(A)
    m, n = A.shape
    P, _ = sketch_and_factor(op, None, d=choose_sketch_size(m, n), sketch="saso", rng=12345,
                             cutoff=0.0)
    X = x.reshape(n, -1)
    R, G = op.residual(X, np.asarray(b).reshape(m, -1))
    est = P.kw(G, np.linalg.norm(R, axis=0), np.linalg.norm(X, axis=0))
    norm = sp.linalg.norm(A) if sp.issparse(A) else np.linalg.norm(A)
    return float(np.max(est) / norm)


def _warm_up():
    A, b, _, _ = standard_problem(300, 20, rng=0)
    randla.lstsq(A, b, method="randomized", rng=0)


class DenseLstsq:
    params = [selected_sizes(_SIZES)]
    param_names = ["size"]
    timeout = 600

    def setup(self, size):
        self.A, self.b = _problem(size)
        _warm_up()

    def time_randla_auto(self, size):
        randla.lstsq(self.A, self.b, rng=0)

    def time_randla_randomized(self, size):
        randla.lstsq(self.A, self.b, method="randomized", rng=0)

    def time_scipy_gelsd(self, size):
        scipy.linalg.lstsq(self.A, self.b, lapack_driver="gelsd")

    def time_scipy_gelsy(self, size):
        scipy.linalg.lstsq(self.A, self.b, lapack_driver="gelsy")

    def peakmem_baseline(self, size):
        # setup alone: building the standard problem dominates the two below
        pass

    def peakmem_randla_randomized(self, size):
        randla.lstsq(self.A, self.b, method="randomized", rng=0)

    def peakmem_scipy_gelsd(self, size):
        scipy.linalg.lstsq(self.A, self.b, lapack_driver="gelsd")


class DenseMemory:
    """Memory of the dense solves beyond A and b.

    The ``peakmem_`` benchmarks of ``DenseLstsq`` are the process's peak RSS,
    which building the standard problem in ``setup`` dominates.  These are
    what each solve itself allocates at its peak (tracemalloc: numpy buffers,
    not LAPACK's or numba's scratch): randla should need O(d n + m) (the
    sketch, a few vectors), scipy also copies A for LAPACK.
    """

    params = [selected_sizes(_SIZES)]
    param_names = ["size"]
    timeout = 600

    def setup(self, size):
        self.A, self.b = _problem(size)
        _warm_up()      # compiled kernels, so tracemalloc counts the solve alone

    def track_allocated_bytes_randla(self, size):
        return allocated_peak(lambda: randla.lstsq(self.A, self.b, method="randomized",
                                                   rng=0))[1]

    def track_allocated_bytes_gelsd(self, size):
        return allocated_peak(lambda: scipy.linalg.lstsq(self.A, self.b))[1]

    track_allocated_bytes_randla.unit = "bytes"
    track_allocated_bytes_gelsd.unit = "bytes"


class DenseAccuracy:
    """Backward error (estimate / ||A||_F) and randla's work on the same problems."""

    params = [selected_sizes(_SIZES)]
    param_names = ["size"]
    timeout = 600

    def setup(self, size):
        self.A, self.b = _problem(size)

    def track_backward_error_randla(self, size):
        x = randla.lstsq(self.A, self.b, method="randomized", rng=0)[0]
        return _backward_error(self.A, self.b, x)

    def track_backward_error_gelsd(self, size):
        return _backward_error(self.A, self.b, scipy.linalg.lstsq(self.A, self.b)[0])

    def track_backward_error_gelsy(self, size):
        x = scipy.linalg.lstsq(self.A, self.b, lapack_driver="gelsy")[0]
        return _backward_error(self.A, self.b, x)

    def track_iterations_spir(self, size):
        return spir(self.A, self.b, rng=0).iterations

    def track_passes_spir(self, size):
        return spir(self.A, self.b, rng=0).passes


def _sparse_problem(m):
    key = ("sparse", m)
    if key not in _CACHE:
        _CACHE.clear()
        rng = np.random.default_rng(2)
        n, per_row = 500, 10
        cols = rng.integers(0, n, size=(m, per_row))
        vals = rng.standard_normal((m, per_row))
        A = sp.csr_array((vals.ravel(), cols.ravel(), np.arange(0, m * per_row + 1, per_row)),
                         shape=(m, n))
        A.sum_duplicates()
        A = (A @ sp.diags_array(np.logspace(0, -6, n))).tocsr()
        b = A @ rng.standard_normal(n) + 1e-6 * rng.standard_normal(m)
        _CACHE[key] = (A, b)
    return _CACHE[key]


class SparseLstsq:
    """200000 x 500 CSR (--quick: 20000 x 500) against scipy.sparse.linalg.lsqr."""

    params = [selected_sizes(["small", "200000x500"])]
    param_names = ["size"]
    timeout = 600

    def setup(self, size):
        self.A, self.b = _sparse_problem(20000 if size == "small" else 200000)
        # lsqr cannot reach roundoff-level backward error at this conditioning;
        # the cap keeps its timing finite (track_backward_error_lsqr shows where it got)
        self.lsqr_iterations = 2000 if size == "small" else 20000
        _warm_up()

    def _lsqr(self):
        return scipy.sparse.linalg.lsqr(self.A, self.b, atol=1e-14, btol=1e-14,
                                        iter_lim=self.lsqr_iterations)[0]

    def time_randla(self, size):
        randla.lstsq(self.A, self.b, rng=0)

    def time_scipy_lsqr(self, size):
        self._lsqr()

    def track_backward_error_randla(self, size):
        return _backward_error(self.A, self.b, randla.lstsq(self.A, self.b, rng=0)[0])

    def track_backward_error_lsqr(self, size):
        return _backward_error(self.A, self.b, self._lsqr())


_SWEEP_SIZES = {"small": (2000, 500), "100000x2000": (100000, 2000),
                "20000x5000": (20000, 5000)}
_SWEEP_CACHE = {}


class RefinementSweep:
    """One refinement pass over dense C-ordered A: randla's fused sweep
    (``T = B - A Z`` and ``A.T T`` in one read of A) against the two BLAS
    products it replaces, for 1, 4 and 16 columns.

    The sweep is every CG iteration of ``randla.lstsq`` (1 column; 16 with
    16 right-hand sides) and every block Lanczos step of ``randla.svds`` of
    dense A (4 columns, on ``AᵀA`` without B).  ``time_matvec`` is one
    ``A @ x``, the floor of one read of A.  asv times each benchmark in its
    own process; ``run_quick.py`` runs them one after another, where a
    sweep right after a multithreaded BLAS call can stall on OpenBLAS's
    spinning threads for up to about 0.1 s: read its minimum.
    """

    params = [selected_sizes(_SWEEP_SIZES), [1, 4, 16]]
    param_names = ["size", "columns"]
    timeout = 300

    def setup(self, size, columns):
        if size not in _SWEEP_CACHE:
            _SWEEP_CACHE.clear()
            m, n = _SWEEP_SIZES[size]
            _SWEEP_CACHE[size] = np.random.default_rng(0).standard_normal((m, n))
        self.A = _SWEEP_CACHE[size]
        m, n = self.A.shape
        rng = np.random.default_rng(1)
        self.Z = rng.standard_normal((n, columns))
        self.B = rng.standard_normal((m, columns))
        self.x = rng.standard_normal(n)
        from randla.solve._cpu_sweep import sweep
        self.sweep = sweep
        sweep(self.A[:64], self.Z, self.B[:64])     # compiled (or loaded) outside the timing

    def time_randla_sweep(self, size, columns):
        self.sweep(self.A, self.Z, self.B)

    def time_two_blas_products(self, size, columns):
        T = self.B - self.A @ self.Z
        self.A.T @ T

    def time_matvec(self, size, columns):
        self.A @ self.x
