"""Speed and memory of the sketch layer (``randla.sketch``) against its peers.

Every peer is timed in the same benchmark class as the randla routine it is
compared with, so ratios come from one ``asv run`` on one machine.  Each
class takes a ``size`` parameter: ``"small"`` keeps ``asv run --quick`` fast,
``"issue"`` is the size issue 3 sets its targets at (SASO: A 100000 x 2000
float64 C-ordered, d = 8000, k = 8; generation: 1e8 entries; SRTT: A
100000 x 200, d = 2000).  ``RANDLA_BENCH_SIZES=small`` runs only the small size.

Thread settings: nothing is pinned here, so the library defaults apply.  On the
2-core CI-class machine numba runs its parallel kernels on 2 threads
(``NUMBA_NUM_THREADS`` defaults to the core count), OpenBLAS (numpy's and
scipy's) uses 2 threads and ``scipy.fft`` is called by randla with
``workers=-1`` (2 workers); numpy's Generator and scipy.sparse products are
single-threaded.  Numba kernels and BLAS never run at the same time in these
benchmarks.  Set ``NUMBA_NUM_THREADS`` / ``OPENBLAS_NUM_THREADS`` before
``asv run`` to measure other settings.

Large arrays are made in ``setup`` and kept in a module-level cache, because
asv re-runs ``setup`` before every timed sample; no benchmark writes to them.
"""
import math
import os

import numpy as np
import scipy.linalg

from randla.sketch import SASO, SRTT, DenseOperator

from ._memory import allocated_peak
from ._sizes import selected_sizes

SIZES = selected_sizes(["small", "issue"])
_CACHE = {}


def _matrix(m, n):
    """A fixed m x n float64 C-ordered matrix, entries uniform on [0, 1).

    Filled in place, so making it allocates exactly m*n*8 bytes (no
    temporaries): the matrix alone sets the baseline of the peak RSS.
    Only the latest shape is kept, so two large matrices never coexist.
    """
    if (m, n) not in _CACHE:
        _CACHE.clear()
        a = np.empty((m, n))
        np.random.default_rng(0).random(out=a)
        _CACHE[(m, n)] = a
    return _CACHE[(m, n)]


def _warm_up_kernels():
    # Load the numba kernels (compiled or from the on-disk cache) outside the
    # timed region, for the dtype and layout the benchmarks use.
    a = np.zeros((64, 4))
    SASO(8, 64, k=8, rng=0) @ a
    SASO(8, 64, k=8, rng=0) @ np.asfortranarray(a)
    for distribution in ("gaussian", "rademacher", "uniform"):
        DenseOperator(4, 64, distribution, rng=0).todense()
    SRTT(8, 64, rng=0) @ a


class SASOApply:
    """S @ A for a SASO (k = 8) and the peers that compute the same kind of sketch.

    Ratios the issue asks for: ``time_saso_apply / time_matvec`` (cost floor:
    one streaming read of A), ``time_scipy_csr / time_saso_apply`` and
    ``time_clarkson_woodruff / time_saso_apply``.  Note that scipy's
    ``clarkson_woodruff_transform`` is a CountSketch (k = 1 nonzero per
    column), so it does 1/8 of the SASO's arithmetic, and its time includes
    drawing its sparse matrix.
    """

    params = SIZES
    param_names = ["size"]
    timeout = 600
    shapes = {"small": (10000, 200, 800), "issue": (100000, 2000, 8000)}   # m, n, d

    def setup(self, size):
        m, n, d = self.shapes[size]
        self.A = _matrix(m, n)
        self.x = np.ones(n)
        self.d = d
        self.S = SASO(d, m, k=8, rng=0)
        self.S_csr = self.S.tosparse().tocsr()
        _warm_up_kernels()

    def time_saso_apply(self, size):
        self.S @ self.A

    def time_matvec(self, size):
        self.A @ self.x

    def time_scipy_csr(self, size):
        # The same operator as a prebuilt CSR matrix: only the product is timed.
        self.S_csr @ self.A

    def time_clarkson_woodruff(self, size):
        scipy.linalg.clarkson_woodruff_transform(self.A, self.d, rng=0)

    def time_saso_construct_and_indices(self, size):
        # Operator construction plus generation of its m*k row indices and signs.
        SASO(self.d, self.A.shape[0], k=8, rng=0).columns()

    def time_saso_tosparse(self, size):
        # Cost of building the scipy route's matrix from the operator.
        self.S.tosparse().tocsr()


class SASOMemory:
    """Memory of S @ A for a SASO (k = 8), sizes as in :class:`SASOApply`.

    ``peakmem_*`` report the peak RSS of the whole benchmark process.  Its
    baseline is the interpreter with numpy, scipy and the numba kernels loaded
    plus A itself, m*n*8 bytes (1.6e9 bytes at the issue size, 1.6e7 for
    "small"); ``peakmem_baseline`` measures exactly that, so
    ``peakmem_saso_apply - peakmem_baseline`` is the extra memory of S @ A.
    The target is the output, d*n*8 bytes (1.28e8 at the issue size), plus
    O(m*k) index storage (int32 row and float64 value per nonzero: 12*m*k =
    9.6e6 bytes at the issue size).

    ``track_saso_extra_rss`` measures that difference inside one process: the
    peak RSS after S @ A minus the RSS just before it (Linux only).  It sees
    memory numba allocates inside a kernel; it would be an upper bound if the
    process had peaked higher earlier, which it does not here (making A
    allocates no temporaries).

    ``track_saso_extra_bytes`` is the same figure without the RSS noise, minus
    the output: the tracemalloc peak during S @ A (numpy registers its array
    buffers with tracemalloc) minus the output's size.  It does not see memory
    numba allocates inside a kernel (per-task scratch); the RSS figures do.
    """

    params = SIZES
    param_names = ["size"]
    timeout = 600
    shapes = SASOApply.shapes

    def setup(self, size):
        m, n, d = self.shapes[size]
        self.A = _matrix(m, n)
        self.S = SASO(d, m, k=8, rng=0)
        _warm_up_kernels()

    def peakmem_baseline(self, size):
        pass

    def peakmem_saso_apply(self, size):
        self.S @ self.A

    def track_saso_extra_rss(self, size):
        try:
            with open("/proc/self/statm") as statm:
                resident_pages = int(statm.read().split()[1])
        except OSError:
            raise NotImplementedError("needs /proc/self/statm (Linux)") from None
        import resource   # Unix only, like /proc
        before = resident_pages * os.sysconf("SC_PAGE_SIZE")
        self.S @ self.A
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before

    track_saso_extra_rss.unit = "bytes"

    def _extra_bytes(self):
        out, peak = allocated_peak(lambda: self.S @ self.A)
        return peak - out.nbytes

    def track_saso_extra_bytes(self, size):
        return self._extra_bytes()

    track_saso_extra_bytes.unit = "bytes"

    def track_saso_extra_bytes_per_nonzero(self, size):
        # Extra bytes divided by m*k: O(1) (about 12) when the index storage
        # is the only memory beyond the output.
        return self._extra_bytes() / (self.S.m * self.S.k)

    track_saso_extra_bytes_per_nonzero.unit = "bytes"


class DenseGeneration:
    """Dense operator generation against numpy's Generator for the same count.

    randla draws Philox4x32-10 in a parallel numba kernel; the peers are what a
    numpy user writes (``default_rng(0)``, PCG64, one thread): Gaussian
    ``standard_normal``, uniform ``uniform(-sqrt 3, sqrt 3)`` (randla's uniform
    has variance 1), Rademacher ``integers(0, 2, int8) * 2.0 - 1.0`` (the
    fastest of the numpy routes tried: int8, int64 with in-place scaling,
    ``choice``, ``where(random() < 0.5)``).  Throughput ratio =
    ``time_numpy / time_randla`` for the same distribution and size.
    """

    params = (["gaussian", "rademacher", "uniform"], SIZES)
    param_names = ["distribution", "size"]
    timeout = 600
    shapes = {"small": (100, 10000), "issue": (1000, 100000)}   # d x m, d*m entries

    def setup(self, distribution, size):
        self.shape = self.shapes[size]
        _warm_up_kernels()

    def time_randla(self, distribution, size):
        DenseOperator(*self.shape, distribution, rng=0).todense()

    def time_numpy(self, distribution, size):
        rng = np.random.default_rng(0)
        if distribution == "gaussian":
            rng.standard_normal(self.shape)
        elif distribution == "uniform":
            rng.uniform(-math.sqrt(3.0), math.sqrt(3.0), self.shape)
        else:
            rng.integers(0, 2, self.shape, dtype=np.int8) * 2.0 - 1.0


class SRTTApply:
    """S @ A for an SRTT (signs, DCT-II, row sampling) and a dense Gaussian of the same d.

    The SASO of the same d is timed too, for reference.  Times include
    generating each operator.
    """

    params = SIZES
    param_names = ["size"]
    timeout = 600
    shapes = {"small": (10000, 50, 500), "issue": (100000, 200, 2000)}   # m, n, d

    def setup(self, size):
        m, n, d = self.shapes[size]
        self.A = _matrix(m, n)
        self.d = d
        _warm_up_kernels()

    def time_srtt(self, size):
        SRTT(self.d, self.A.shape[0], rng=0) @ self.A

    def time_gaussian(self, size):
        DenseOperator(self.d, self.A.shape[0], rng=0) @ self.A

    def time_saso(self, size):
        SASO(self.d, self.A.shape[0], k=8, rng=0) @ self.A
