"""Truncated SVD: randla.svds against scipy's svds (ARPACK, PROPACK) and a
scikit-learn-style randomized SVD, on a dense matrix with singular values 1/i.

``SparseSVDS`` times the top 10 singular values of a 10^6 x 10^5 CSR matrix
(10 nonzeros per row) against ARPACK, ``SparseEigsh`` the top 10 eigenvalues
of a 2 x 10^5 sparse symmetric matrix (20 nonzeros per row), ``DenseEigsh``
the top 6 of a dense symmetric 5000 x 5000 one.

Every peer is timed in the same class as randla, so ratios come from one
``asv run`` on one machine.  Sizes: ``"small"`` (2000 x 500, k = 10, for
``--quick``) and ``"20000x5000"`` (k = 20, the issue's target).  The matrix is
``C_m X C_nᵀ`` with C the orthonormal DCT-II matrices and X a signed partial
permutation carrying the spectrum, so its singular values are exactly 1/i and
it is built in seconds (a random orthogonal factor of that size takes minutes).

Peers:
- ``randla``: ``randla.svds(A, k, tol=1e-8)`` (block Lanczos on AᵀA, 4 columns
  per step, each step one read of A), and ``randla_tol0`` with ``tol=0``.
- ``arpack`` / ``propack``: ``scipy.sparse.linalg.svds`` with tol=0 (the
  machine-precision answer MEASURED.md quotes) and ``arpack_tol1e-8``.
- ``sklearn_style``: the randomized SVD of scikit-learn's ``randomized_svd``
  (oversampling 10, ``n_iter='auto'`` = 7 here, LU re-normalisation), written
  out below because scikit-learn is not a dependency.

Thread settings: nothing is pinned; OpenBLAS uses its default (2 threads on
the CI machine).  Set ``OPENBLAS_NUM_THREADS`` before ``asv run`` to measure
other settings (MEASURED.md's peer timings used one thread).

``RANDLA_BENCH_SIZES`` (comma-separated, e.g. ``small``) restricts the sizes,
so that ``RANDLA_BENCH_SIZES=small asv run --quick`` stays quick.

track_ benchmarks record the largest relative singular-value error of each
method, the passes and matvecs of randla.svds and of Lazy-EPSI, the Frobenius error of
``randla.eig.randomized_svd`` against the scikit-learn-style one at the same
16 passes over A, and the matvecs Lazy-EPSI and subspace iteration (block
width = sketch width, from the same sketch) need for eigen-residuals 1e-10;
``LazyEpsiAgainstSubspaceIteration`` repeats that comparison for sketch widths
60, 100 and 160 and reports the shared start's matvecs apart.
"""

import numpy as np
import scipy.fft
import scipy.linalg
import scipy.sparse
import scipy.sparse.linalg

import randla
from randla.eig import lazy_epsi, randomized_svd

from ._memory import allocated_peak
from ._sizes import selected_sizes

_SIZES = {"small": (2000, 500, 10), "20000x5000": (20000, 5000, 20)}
_CACHE = {}


def _matrix(size):
    """A (m x n, C-ordered float64) with singular values exactly 1/i, and k."""
    if size not in _CACHE:
        _CACHE.clear()
        m, n, k = _SIZES[size]
        rng = np.random.default_rng(0)
        X = np.zeros((m, n))
        X[rng.choice(m, n, replace=False), rng.permutation(n)] = (
            rng.choice([-1.0, 1.0], n) / np.arange(1, n + 1))
        A = scipy.fft.dct(X, axis=0, norm="ortho")
        del X
        A = np.ascontiguousarray(scipy.fft.dct(A, axis=1, norm="ortho", overwrite_x=True))
        _CACHE[size] = (A, k)
    return _CACHE[size]


def sklearn_style_svd(A, k, n_oversamples=10, n_iter=None, seed=0):
    """scikit-learn's randomized_svd algorithm (Halko et al. with LU normalisation).

    Gaussian start of width k + n_oversamples; n_iter ('auto': 7 if k < 0.1 min(m, n),
    else 4) rounds of A·Q and Aᵀ·Q, each re-normalised by the L factor of a
    pivoted LU; a final QR of A·Q; B = QᵀA; SVD of B.  2 n_iter + 2 passes over A.
    """
    m, n = A.shape
    if n_iter is None:
        n_iter = 7 if k < 0.1 * min(m, n) else 4
    Q = np.random.default_rng(seed).standard_normal((n, k + n_oversamples))
    for _ in range(n_iter):
        Q = scipy.linalg.lu(A @ Q, permute_l=True)[0]
        Q = scipy.linalg.lu(A.T @ Q, permute_l=True)[0]
    Q = np.linalg.qr(A @ Q)[0]
    Ub, s, Vt = np.linalg.svd(Q.T @ A, full_matrices=False)
    return Q @ Ub[:, :k], s[:k], Vt[:k]


def _solve(method, A, k):
    """Singular values (descending) from one method."""
    if method == "randla":
        s = randla.svds(A, k, tol=1e-8, rng=0, return_singular_vectors=False)
    elif method == "randla_block8":
        s = randla.svds(A, k, tol=1e-8, rng=0, return_singular_vectors=False,
                        options={"block_size": 8})
    elif method == "randla_tol0":
        s = randla.svds(A, k, tol=0, rng=0, return_singular_vectors=False)
    elif method == "arpack":
        s = scipy.sparse.linalg.svds(A, k, tol=0, rng=0, return_singular_vectors=False)
    elif method == "arpack_tol1e-8":
        s = scipy.sparse.linalg.svds(A, k, tol=1e-8, rng=0, return_singular_vectors=False)
    elif method == "propack":
        s = scipy.sparse.linalg.svds(A, k, tol=0, solver="propack", rng=0,
                                     return_singular_vectors=False)
    else:
        s = sklearn_style_svd(A, k)[1]
    return np.sort(s)[::-1]


_METHODS = ["randla", "randla_tol0", "arpack", "arpack_tol1e-8", "propack", "sklearn_style"]


class TruncatedSVD:
    params = [selected_sizes(_SIZES), _METHODS]
    param_names = ["size", "method"]
    number = 1
    repeat = (1, 3, 120.0)
    timeout = 600

    def setup(self, size, method):
        self.A, self.k = _matrix(size)
        # Warm numba's Philox kernels outside the timing.
        randla.svds(self.A[:200, :100], 3, rng=0)

    def time_svds(self, size, method):
        _solve(method, self.A, self.k)

    def track_max_relative_sigma_error(self, size, method):
        s = _solve(method, self.A, self.k)
        exact = 1.0 / np.arange(1, self.k + 1)
        return float(np.max(np.abs(s - exact) / exact))

    track_max_relative_sigma_error.unit = "relative error"


class _CountingOperator(scipy.sparse.linalg.LinearOperator):
    """A seen through its products, counting the calls (passes) and columns
    (matvecs) of both directions."""

    def __init__(self, A):
        super().__init__(A.dtype, A.shape)
        self.A, self.passes, self.matvecs = A, 0, 0

    def _count(self, X):
        self.passes += 1
        self.matvecs += 1 if X.ndim == 1 else X.shape[1]

    def _matvec(self, x):
        self._count(x)
        return self.A @ x

    def _matmat(self, X):
        self._count(X)
        return self.A @ X

    def _rmatvec(self, x):
        self._count(x)
        return self.A.T @ x

    def _rmatmat(self, X):
        self._count(X)
        return self.A.T @ X


def _subspace_iteration_matvecs(A, k, width, tol=1e-10):
    """Matvecs (the start's included) of block subspace iteration of the given
    width on AᵀA, from the start Lazy-EPSI takes (a randomized SVD of that
    width with one power iteration), until the k leading eigen-residuals are
    at most tol times the largest eigenvalue; NaN if 500 sweeps do not do."""
    start = randomized_svd(A, width, oversample=0, power_iters=1, rng=0)
    matvecs, X = start.matvecs, start.Vt.T
    for _ in range(500):
        AX = A @ X
        Ut, s, Tt = np.linalg.svd(AX, full_matrices=False)
        V = X @ Tt.T
        MV = A.T @ (Ut * s)
        matvecs += 2 * width
        res = np.linalg.norm(MV[:, :k] - V[:, :k] * s[:k] ** 2, axis=0) / s[0] ** 2
        if res.max() <= tol:
            return matvecs
        X = np.linalg.qr(MV)[0]
    return float("nan")


class RandlaCounts:
    """Passes and matvecs of randla.svds and Lazy-EPSI (tol=1e-8), and the
    two accuracy comparisons.  svds's products are counted through a
    LinearOperator, which runs the same iteration with two products per
    step where the dense path reads A once for both."""

    params = [selected_sizes(_SIZES)]
    param_names = ["size"]
    timeout = 600

    def setup(self, size):
        self.A, self.k = _matrix(size)

    def _epsi(self, tol):
        n = min(self.A.shape)
        return lazy_epsi(self.A, self.k, sketch_size=min(max(3 * self.k, self.k + 30), n),
                         tol=tol, rng=0)

    def _svds_counts(self):
        op = _CountingOperator(self.A)
        randla.svds(op, self.k, tol=1e-8, rng=0, return_singular_vectors=False)
        return op

    def track_svds_products_tol1e8(self, size):
        return self._svds_counts().passes

    def track_svds_matvecs_tol1e8(self, size):
        return self._svds_counts().matvecs

    def track_lazy_epsi_passes_tol1e8(self, size):
        return self._epsi(1e-8).passes

    def track_lazy_epsi_matvecs_tol1e8(self, size):
        return self._epsi(1e-8).matvecs

    def _frobenius(self, U, s, Vt):
        A = self.A
        # ‖A − UΣVᵀ‖² = ‖A‖² − ‖UᵀA‖² + ‖UᵀA − ΣVᵀ‖² for orthonormal U.
        UtA = U.T @ A
        return float(np.sqrt(max(np.sum(A * A) - np.sum(UtA * UtA), 0.0)
                             + np.sum((UtA - s[:, None] * Vt) ** 2)))

    def track_frobenius_error_randla_16_passes(self, size):
        res = randomized_svd(self.A, self.k, power_iters=7, rng=0)
        assert res.passes == 16
        return self._frobenius(res.U, res.s, res.Vt)

    def track_frobenius_error_sklearn_style_16_passes(self, size):
        return self._frobenius(*sklearn_style_svd(self.A, self.k, n_iter=7))

    def track_matvecs_lazy_epsi_to_1e10(self, size):
        res = self._epsi(1e-10)
        return res.matvecs if res.converged.all() else float("nan")

    def track_matvecs_subspace_iteration_to_1e10(self, size):
        width = min(max(3 * self.k, self.k + 30), min(self.A.shape))
        return _subspace_iteration_matvecs(self.A, self.k, width)

    track_svds_products_tol1e8.unit = "products"
    track_svds_matvecs_tol1e8.unit = "matvecs"
    track_lazy_epsi_passes_tol1e8.unit = "passes"
    track_lazy_epsi_matvecs_tol1e8.unit = "matvecs"
    track_frobenius_error_randla_16_passes.unit = "Frobenius error"
    track_frobenius_error_sklearn_style_16_passes.unit = "Frobenius error"
    track_matvecs_lazy_epsi_to_1e10.unit = "matvecs"
    track_matvecs_subspace_iteration_to_1e10.unit = "matvecs"


class LazyEpsiAgainstSubspaceIteration:
    """Matvecs to eigen-residuals 1e-10 (k leading singular vectors) from one
    shared start, for several sketch widths: the start alone (a randomized SVD
    of that width, one power iteration), Lazy-EPSI and subspace iteration of
    that width, each with the start included.  What each method spends beyond
    the start is its total minus ``track_start``.  A wider sketch costs more
    to start and lets both converge in fewer sweeps; Lazy-EPSI's sweeps cost
    2k matvecs, subspace iteration's twice the width.
    """

    params = [selected_sizes(_SIZES), [60, 100, 160]]
    param_names = ["size", "width"]
    timeout = 900

    def setup(self, size, width):
        self.A, self.k = _matrix(size)
        if width > min(self.A.shape):
            raise NotImplementedError("width beyond the matrix")

    def track_start(self, size, width):
        return randomized_svd(self.A, width, oversample=0, power_iters=1, rng=0).matvecs

    def track_lazy_epsi(self, size, width):
        res = lazy_epsi(self.A, self.k, sketch_size=width, tol=1e-10, rng=0)
        return res.matvecs if res.converged.all() else float("nan")

    def track_subspace_iteration(self, size, width):
        return _subspace_iteration_matvecs(self.A, self.k, width)

    track_start.unit = "matvecs"
    track_lazy_epsi.unit = "matvecs"
    track_subspace_iteration.unit = "matvecs"


_SPARSE_SIZES = {"small": (20000, 2000), "1e6x1e5": (1_000_000, 100_000)}
_SPARSE_CACHE = {}


def _sparse_matrix(size):
    """A CSR matrix with 10 nonzeros per row at random columns, column j
    scaled by (j + 1)^-1/2 so that the leading singular values decay."""
    if size not in _SPARSE_CACHE:
        _SPARSE_CACHE.clear()
        m, n = _SPARSE_SIZES[size]
        per_row = 10
        rng = np.random.default_rng(0)
        cols = rng.integers(0, n, size=m * per_row)
        vals = rng.standard_normal(m * per_row) / np.sqrt(cols + 1.0)
        A = scipy.sparse.csr_array((vals, cols, np.arange(0, m * per_row + 1, per_row)),
                                   shape=(m, n))
        A.sum_duplicates()
        _SPARSE_CACHE[size] = A
    return _SPARSE_CACHE[size]


class SparseSVDS:
    """Top-10 singular values of a sparse CSR matrix: randla.svds (tol=1e-8)
    against ARPACK (tol=0); the issue's target size is 1e6 x 1e5.

    ``randla`` uses the defaults (4 columns per step: a CSR gather for A X
    and a scatter split by result rows for Aᵀ Y, both on numba's threads);
    ``randla_block8`` takes 8.
    """

    params = [selected_sizes(_SPARSE_SIZES), ["randla", "randla_block8", "arpack"]]
    param_names = ["size", "method"]
    number = 1
    repeat = (1, 3, 120.0)
    timeout = 600

    def setup(self, size, method):
        self.A = _sparse_matrix(size)
        randla.svds(self.A[:2000, :500], 3, rng=0)

    def time_svds(self, size, method):
        _solve(method, self.A, 10)

    def track_max_relative_difference_to_arpack(self, size, method):
        s = _solve(method, self.A, 10)
        reference = _solve("arpack", self.A, 10)
        return float(np.max(np.abs(s - reference) / reference))

    track_max_relative_difference_to_arpack.unit = "relative difference"


_SYMMETRIC_SIZES = {"small": 20000, "2e5": 200_000}
_SYMMETRIC_CACHE = {}


def _sparse_symmetric(size):
    """S + Sᵀ with S a 2 x 10^5 CSR matrix of 10 uniform [0, 1) entries per row
    at random places: one Perron value near 10, then a cluster at the edge of
    a semicircle near 5.5 (a hard case: 5.49, 5.51, ...)."""
    if size not in _SYMMETRIC_CACHE:
        _SYMMETRIC_CACHE.clear()
        n = _SYMMETRIC_SIZES[size]
        S = scipy.sparse.random(n, n, density=10 / n, random_state=np.random.default_rng(0),
                                format="csr")
        _SYMMETRIC_CACHE[size] = (S + S.T).tocsr()
    return _SYMMETRIC_CACHE[size]


class _EigshAgainstArpack:
    """The k largest-magnitude eigenvalues of ``self.A`` (set by a subclass's
    setup; k set by the subclass): randla.eigsh against ARPACK, both at tol=0."""

    def _values(self, method):
        if method == "randla":
            w = randla.eigsh(self.A, self.k, rng=0, return_eigenvectors=False)
        else:
            w = scipy.sparse.linalg.eigsh(self.A, self.k, rng=0, return_eigenvectors=False)
        return np.sort(w)

    def time_eigsh(self, size, method):
        self._values(method)

    def track_max_difference_to_arpack(self, size, method):
        w = self._values(method)
        reference = np.sort(scipy.sparse.linalg.eigsh(self.A, self.k, rng=0,
                                                      return_eigenvectors=False))
        return float(np.max(np.abs(w - reference)) / np.max(np.abs(reference)))

    track_max_difference_to_arpack.unit = "relative to the largest"


class SparseEigsh(_EigshAgainstArpack):
    """Ten largest-magnitude eigenvalues of a sparse symmetric matrix with
    about 20 nonzeros per row: randla.eigsh against ARPACK (both tol=0).

    Products are cheap here, so randla takes two columns per step (ARPACK
    takes one), and projecting the new block out of the basis costs about as
    much as the product.
    """

    params = [selected_sizes(_SYMMETRIC_SIZES), ["randla", "arpack"]]
    param_names = ["size", "method"]
    number = 1
    repeat = (1, 2, 120.0)
    timeout = 900
    k = 10

    def setup(self, size, method):
        self.A = _sparse_symmetric(size)
        randla.eigsh(self.A[:2000, :2000], 3, rng=0)


_DENSE_SYMMETRIC_SIZES = {"small": 1000, "5000": 5000}


class DenseEigsh(_EigshAgainstArpack):
    """Six largest-magnitude eigenvalues of a dense symmetric Gaussian matrix
    (G + Gᵀ, C-ordered): randla.eigsh against ARPACK (both tol=0).

    randla takes 4 columns per step; from about 1400 x 1400 its products run
    on numba's threads, below that on OpenBLAS's.
    """

    params = [selected_sizes(_DENSE_SYMMETRIC_SIZES), ["randla", "arpack"]]
    param_names = ["size", "method"]
    number = 1
    repeat = (1, 3, 120.0)
    timeout = 600
    k = 6

    def setup(self, size, method):
        n = _DENSE_SYMMETRIC_SIZES[size]
        G = np.random.default_rng(0).standard_normal((n, n))
        self.A = G + G.T
        # the kernels of the size's own path (numba's from 1500 x 1500, C-ordered)
        randla.eigsh(np.ascontiguousarray(self.A[:1500, :1500]), 3, rng=0)


class PeakMemory:
    """Memory of randla.svds on the target size: A itself plus O((m + n) k).

    ``peakmem_svds`` is the process's peak RSS, which building A in ``setup``
    (two DCTs of an m x n array) can dominate: compare it with
    ``peakmem_baseline`` (setup alone).  ``track_svds_allocated_bytes`` is
    what svds itself allocates at its peak (tracemalloc: numpy buffers, not
    BLAS's or numba's scratch), to compare with A's own ``m n 8`` bytes.
    """

    params = [selected_sizes(_SIZES)]
    param_names = ["size"]
    timeout = 600

    def setup(self, size):
        self.A, self.k = _matrix(size)
        # a first call compiles kernels and fills caches, which tracemalloc
        # would count; on a small C-ordered copy, so that peakmem_baseline
        # stays the memory of setup alone
        randla.svds(np.ascontiguousarray(self.A[:2000, :500]), self.k, tol=1e-8, rng=0)

    def peakmem_baseline(self, size):
        pass

    def peakmem_svds(self, size):
        randla.svds(self.A, self.k, tol=1e-8, rng=0)

    def track_svds_allocated_bytes(self, size):
        return allocated_peak(lambda: randla.svds(self.A, self.k, tol=1e-8, rng=0))[1]

    track_svds_allocated_bytes.unit = "bytes"
