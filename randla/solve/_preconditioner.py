"""Sketch size, sketching, the sketched preconditioner and the sketched
Karlson-Walden backward-error estimate shared by every driver."""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np

from .._backend import NUMPY, Backend, get_backend
from ..sketch import SASO, as_rng_state, left_sketch, make_operator
from .._operand import power_of_two_scale

__all__ = ["choose_sketch_size", "host_pass_seconds", "Preconditioner", "sketch_and_factor"]

@dataclass(frozen=True)
class _SketchCostModel:
    """Rates behind choose_sketch_size on one kind of machine."""

    factor_flops_per_s: float      # QR of the d x n sketch, counted as 2 d n^2 flops
    stream_bytes_per_s: float      # one refinement pass over A
    ratios: tuple                  # candidate s = d / n
    rate_scale: float              # CG contracts the error by (rate_scale / s)**rate_power
    rate_power: float              # per iteration
    extra_passes: int              # residual sweeps and the sketch, besides CG

    def passes(self, s, eps):
        return (math.log(1 / eps) / (self.rate_power * math.log(s / self.rate_scale))
                + self.extra_passes)


# The 2-core CI machine: LAPACK's geqrt on the d x (n+1) sketch at 51-63
# Gflop/s, one fused refinement sweep over float64 A in about 1.2 times the
# time of A @ x; CG on the preconditioned normal equations contracts the
# error by about 1.2 / s per iteration with a sparse sign sketch (40000 x
# 1000, cond 1e10: 39, 31, 24 and 21 iterations for s = 3, 4, 6, 8).
_HOST_MODEL = _SketchCostModel(5.5e10, 2.7e10, (2, 3, 4, 5, 6, 8, 12, 16, 24),
                               rate_scale=1.2, rate_power=1.0, extra_passes=4)
# An H200: cuSOLVER's QR of an 8000 x 2001 sketch in 20 ms, one fused
# refinement pass over a 100000 x 2000 float64 A in 0.73 ms.  These rates
# were fitted with the condition-number bound (contraction 1/sqrt(s), no
# extra passes) and are kept with it until they are measured again on a GPU.
_GPU_MODEL = _SketchCostModel(3.2e12, 2.2e12, (2, 3, 4, 6, 8, 12, 16, 24),
                              rate_scale=1.0, rate_power=0.5, extra_passes=0)
# A host refinement pass over dense float64 A with several right-hand sides:
# the fused sweep costs about 0.23 of a single-column pass more per extra
# column (1.96, 2.89 and 4.43 passes for 4, 8 and 16 columns at 50000 x
# 2000, row-major) up to MAX_COLUMNS on row-major A (MAX_COLUMN_MAJOR_COLUMNS
# on column-major A); beyond, two skinny GEMMs cost about 3.2 single-column
# passes plus 4 m n k flops at 9e10 flop/s (fitted to 55-102 ms for 8-32
# columns at 40000 x 1000, 255-459 ms at 100000 x 2000).
_EXTRA_COLUMN_PASSES = 0.23
_GEMM_FIXED_PASSES = 3.2
_GEMM_FLOPS_PER_S = 9.0e10
# Shifted factors of the QR form kept for reuse (n x n each; one or two per
# solve is typical), and how many new ones one estimate may factor before
# the host turns to the SVD of R instead.
_CACHED_FACTORS = 4
_MAX_NEW_FACTORS = 4


# Rows a sketch has beyond n at least (an A with no more rows is factored
# itself: see sketch_and_factor).
_MIN_EXTRA_ROWS = 10


def host_pass_seconds(m: int, n: int, nrhs: int = 1, row_major: bool = True) -> float:
    """Modelled seconds of one refinement pass over a dense float64 m x n A
    with nrhs right-hand sides on the 2-core CI machine (the fused sweep up
    to its column limit, two GEMMs beyond)."""
    from ._cpu_sweep import MAX_COLUMN_MAJOR_COLUMNS, MAX_COLUMNS
    single = 8.0 * m * n / _HOST_MODEL.stream_bytes_per_s
    if nrhs > (MAX_COLUMNS if row_major else MAX_COLUMN_MAJOR_COLUMNS):
        return _GEMM_FIXED_PASSES * single + 4.0 * m * n * nrhs / _GEMM_FLOPS_PER_S
    return single * (1 - _EXTRA_COLUMN_PASSES + _EXTRA_COLUMN_PASSES * nrhs)


def choose_sketch_size(m: int, n: int, itemsize: int = 8, nnz: int | None = None,
                       gpu: bool = False, nrhs: int = 1, row_major: bool = True) -> int:
    """The sketch size d = s*n that minimises the modelled solve time.

    The QR factorisation of the d x n sketch costs about ``2 s n^3`` flops;
    the refinement needs about ``ln(1/u) / ln(s / 1.2)`` CG iterations (the
    contraction per iteration measured with sparse sign sketches) plus a few
    residual sweeps, each one pass over A (``itemsize*m*n`` bytes, or
    ``~1.5*itemsize*nnz`` sparse).  Larger s means fewer passes and a dearer
    factorisation; the ratio is clipped to ``n + 10 <= d <= m``.  ``gpu``
    selects the rates measured on a GPU instead of the 2-core CI machine's
    (with ``ln(1/u) / ln(sqrt(s))`` passes, the model they were fitted with).
    On the host, dense passes with ``nrhs`` right-hand sides cost more (see
    :func:`host_pass_seconds`; ``row_major`` says which sweep serves A), so
    more right-hand sides buy a larger sketch: 100000 x 2000 with 16 takes
    d = 16000 instead of 8000 (6.7-7.2 s instead of 8.1-8.4 s on the CI
    machine; 17 CG iterations instead of 26).  Sparse and GPU passes are
    modelled for one right-hand side whatever ``nrhs``.

    Parameters
    ----------
    m, n : int
        The long and the short side of A (``m >= n >= 1``; for wide A pass
        its transpose's shape).
    itemsize : int, default 8
        Bytes per entry of A (4: float32).
    nnz : int, optional
        Stored entries of a sparse A.
    gpu : bool, default False
        Use the GPU's rates.
    nrhs : int, default 1
        Right-hand sides solved together (0 counts as 1).
    row_major : bool, default True
        Whether the dense sweep sees A row-major (C order).

    Returns
    -------
    int
        d with ``n < d <= m`` where ``m > n + 10``, else ``d = m``.  With
        ``d = m`` the solvers factor A itself rather than a sketch.

    Raises
    ------
    ValueError
        If m, n or itemsize is not a positive integer, nrhs or nnz a negative
        one, or ``m < n``.

    Examples
    --------
    >>> from randla.solve import choose_sketch_size
    >>> choose_sketch_size(40000, 1000), choose_sketch_size(100000, 2000, gpu=True)
    (5000, 8000)
    >>> choose_sketch_size(100000, 2000), choose_sketch_size(100000, 2000, nrhs=16)
    (8000, 16000)
    """
    checked = [("m", m, 1), ("n", n, 1), ("nrhs", nrhs, 0), ("itemsize", itemsize, 1)]
    if nnz is not None:
        checked.append(("nnz", nnz, 0))
    for name, value, least in checked:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
            raise ValueError(f"{name} must be an integer >= {least}, got {value!r}")
    nrhs = max(int(nrhs), 1)      # no right-hand side: the passes still read A
    if m < n:
        raise ValueError(f"m must be the long side (m >= n), got m={m}, n={n}")
    eps = np.finfo(np.float32 if itemsize == 4 else np.float64).eps
    model = _GPU_MODEL if gpu else _HOST_MODEL
    pass_seconds = itemsize * (m * n if nnz is None else 1.5 * nnz) / model.stream_bytes_per_s
    if nnz is None and not gpu:
        pass_seconds *= host_pass_seconds(m, n, nrhs, row_major) / host_pass_seconds(m, n)

    def cost(s):
        factor = 2.0 * s * n ** 3 / model.factor_flops_per_s
        return factor + model.passes(s, eps) * pass_seconds

    s = min(model.ratios, key=cost)
    return int(min(m, max(s * n, n + _MIN_EXTRA_ROWS)))


@dataclass(frozen=True)
class Preconditioner:
    """P with A P well conditioned, from the factorisation of S A.

    SVD form: ``S A = U diag(sigma) V^T``, ``P = V[:, :r] diag(1/sigma[:r])``
    where r counts the singular values above the cutoff (rank deficiency).
    QR form: ``S A = Q R``, ``P = R^{-1}`` (full rank only).  The host
    solves with R (see :func:`_triangular_solve`: 0.6-1.2 ms a column at
    n = 2000 on the CI machine, where inverting R cost 90-190 ms a solve to
    save about 0.2 ms a product); a GPU multiplies by the explicit inverse,
    two GEMVs per iteration instead of two triangular solves, which run one
    row at a time there (the inverse's rounding errors only perturb the
    preconditioner, which the refinement's residuals recomputed from A and
    b do not depend on).  Arrays live on the data's backend; ``backend`` is
    that backend.
    """

    kind: str
    V: object | None              # n x r (SVD form)
    sigma: object | None          # r (SVD form)
    R: object | None              # n x n upper triangular (QR form)
    R_inv: object | None          # its inverse (QR form on a GPU)
    rank: int
    norm_estimate: float          # ||S A||_F, an estimate of ||A||_F (damping included)
    backend: Backend = NUMPY
    sketch_rows: int = 0          # rows d of the sketch factored (m: A itself)
    # solvers with the QR form's shifted factors by phi, reused for nearby
    # phi (see _shifted_solver)
    _factors: dict = field(default_factory=dict, repr=False, compare=False)
    # the factors as _mul uses them (row-major copies on the host), and the
    # GPU's Gram matrix R^T R with its bound
    _derived: dict = field(default_factory=dict, repr=False, compare=False)

    def apply(self, Y):
        """P @ Y."""
        if self.kind == "svd":
            return self._mul("V", Y / self.sigma[:, None])
        if self.R_inv is None:
            return _triangular_solve(self.R, Y)
        return self._mul("R_inv", Y)

    def apply_t(self, G):
        """P.T @ G."""
        if self.kind == "svd":
            return self._mul("V.T", G) / self.sigma[:, None]
        if self.R_inv is None:
            return _triangular_solve(self.R, G, trans=True)
        return self._mul("R_inv.T", G)

    def inverse_t(self, Z):
        """A vector h with P.T h = Z, in the row space of the sketch."""
        if self.kind == "svd":
            return self._mul("V", Z * self.sigma[:, None])
        return self._mul("R.T", Z)

    def _mul(self, name, X):
        """``M @ X`` for the factor M named ``"V"``, ``"V.T"``, ``"R_inv"``,
        ``"R_inv.T"`` or ``"R.T"`` (laid out row-major once on the host)."""
        return _product(self._laid_out(name), X, lower=name in _LOWER_TRIANGULAR)

    def _laid_out(self, name):
        """The factor named as in _mul, row-major on the host (copied once)."""
        if name not in self._derived:
            M = getattr(self, name.removesuffix(".T"))
            M = M.T if name.endswith(".T") else M
            self._derived[name] = M if self.backend.is_gpu else np.ascontiguousarray(M)
        return self._derived[name]

    def kw(self, G, r_norms, x_norms):
        """Sketched Karlson-Walden backward-error estimates, one per column.

        ``||(Sigma^2 + phi^2 I)^{-1/2} V^T g|| / ||x||`` with ``phi = ||r||/||x||``
        and Sigma, V from the sketch (within a small constant of the exact
        backward error; 0 when r = 0, ``||V^T g||/||r||`` when x = 0).
        ``r_norms`` and ``x_norms`` are arrays of the data's backend, and so
        is the result.
        """
        return self.estimator(r_norms, x_norms)(G)

    def estimator(self, r_norms, x_norms, bound: bool = False):
        """The map ``G -> kw(G, r_norms, x_norms)`` for fixed norms.

        Within a refinement step the norms stay fixed while CG asks for an
        estimate every iteration: the QR form factors ``R^T R + phi^2 I`` once
        here (one device-to-host copy of the norms) and then costs one
        product with the factor's inverse per column and call.  Factors are
        reused across calls for phi within 5 %; where more than
        ``_MAX_NEW_FACTORS`` new ones would be needed (many right-hand sides
        with scattered residuals) the host computes the SVD of R once and
        weights its singular values instead.  With
        ``bound`` the QR form skips that factorisation and uses phi = 0,
        which can only overestimate: ``||R^{-T} g|| / ||x||`` (for a first,
        rough look at the error, where a factorisation per phi would cost
        more than it tells).
        """
        xp = self.backend.xp
        if self.kind == "svd":
            return _svd_estimator(xp, lambda G: self._mul("V.T", G), self.sigma,
                                  r_norms, x_norms)
        # QR form: ||F^{-T} g|| / ||x|| with F^T F = R^T R + phi^2 I, per column.
        r_host, x_host = self.backend.to_host(r_norms), self.backend.to_host(x_norms)
        phis = [float(r) / float(x) if r > 0 and x > 0 else None
                for r, x in zip(r_host, x_host)]
        if (not bound and not self.backend.is_gpu
                and self._new_factors_needed(phis) > _MAX_NEW_FACTORS):
            # many right-hand sides with scattered phi: one SVD of R costs
            # about four shifted factorisations and serves every phi
            sigma, Vt = self._r_svd()
            return _svd_estimator(xp, lambda G: _product(Vt, G), sigma, r_norms, x_norms)
        apply_t = self.apply_t      # one object, so that the bound is shared below
        solvers = [None if phi is None else apply_t if bound else self._shifted_solver(phi)
                   for phi in phis]
        safe_x = xp.where(x_norms > 0, x_norms, 1)
        safe_r = xp.where(r_norms > 0, r_norms, 1)

        # one factor for every column (one right-hand side, the phi = 0 bound, a
        # shared phi): one product for all, fewer launches, which dominate on a GPU
        shared = solvers[0] if solvers and all(f is solvers[0] for f in solvers) else None

        def estimate(G):
            if not solvers:                 # no right-hand side
                return xp.zeros(0, dtype=xp.float64)
            if shared is not None:
                return (xp.linalg.norm(shared(G), axis=0) / safe_x).astype(xp.float64,
                                                                           copy=False)
            columns = []
            for j, solve in enumerate(solvers):
                if solve is None:   # r = 0: estimate 0; x = 0: ||g|| / ||r||
                    columns.append(xp.linalg.norm(G[:, j]) / safe_r[j] * (r_norms[j] > 0))
                else:
                    columns.append(xp.linalg.norm(solve(G[:, j:j + 1])) / safe_x[j])
            return xp.stack(columns).astype(xp.float64)
        return estimate

    def _cached_factor(self, phi):
        """The cached solver for a phi within 5 % of phi, or None."""
        for cached, solver in self._factors.items():
            if abs(phi - cached) <= 0.05 * cached:
                return solver
        return None

    def _new_factors_needed(self, phis):
        """How many shifted factorisations _shifted_solver would run for these
        phi in turn, the cache dropping its oldest factor as it does."""
        cached = list(self._factors)
        new = 0
        for phi in phis:
            if phi is not None and not any(abs(phi - c) <= 0.05 * c for c in cached):
                new += 1
                cached = (cached + [phi])[-_CACHED_FACTORS:]
        return new

    def _r_svd(self):
        """Singular values and right singular vectors (row-major V^T) of R, once.

        On all BLAS threads, unlike the small factorisations: it is several
        times their cost, and runs once per solve.
        """
        if "r_svd" not in self._derived:
            _, sigma, Vt = self.backend.svd(self.R)
            self._derived["r_svd"] = sigma, np.ascontiguousarray(Vt)
        return self._derived["r_svd"]

    def _shifted_solver(self, phi):
        """The map ``G -> F^{-T} G`` for the upper triangular F with
        ``F^T F = R^T R + phi'^2 I``, ``phi'`` within 5 % of phi.

        F is the R factor of ``[R; phi I]``: LAPACK's tpqrt on the host,
        which exploits the structure, and on the GPU
        :func:`_shifted_factor_via_gram`.  phi, the ratio ||r|| / ||x||,
        hardly moves once refinement has started, so a factor is reused for
        any phi within 5 % of its own: the weights ``1 / (sigma^2 + phi^2)``
        then change by at most 10 %.  CG asks for an estimate every
        iteration: the host solves with F (:func:`_triangular_solve`;
        inverting F cost 90-190 ms a solve at n = 2000), the GPU multiplies
        by the explicit inverse, where a triangular solve runs one row at a
        time.
        """
        solver = self._cached_factor(phi)
        if solver is not None:
            return solver
        with self.backend.single_threaded_blas():
            F = self._new_shifted_factor(phi)
        if self.backend.is_gpu:
            W = _gpu_triangular_inverse(self.backend, F).T

            def solver(G):
                return W @ G
        else:
            solver = functools.partial(_triangular_solve, F, trans=True)
        if len(self._factors) >= _CACHED_FACTORS:      # n x n each: keep the newest
            del self._factors[next(iter(self._factors))]
        self._factors[phi] = solver
        return solver

    def _new_shifted_factor(self, phi):
        if self.backend.is_gpu:
            return _shifted_factor_via_gram(self.backend, self.R, phi, self._derived)
        # LAPACK's triangular-pentagonal QR of [R; phi I]: exact, and about
        # as cheap as the Cholesky of R^T R + phi^2 I (blocks of 32: 0.18-0.20
        # s against 0.24-0.26 with 16 at n = 2000, one thread)
        from scipy.linalg import lapack
        n = self.R.shape[0]
        tpqrt = lapack.get_lapack_funcs("tpqrt", (self.R,))
        shift = np.zeros((n, n), dtype=self.R.dtype, order="F")
        np.fill_diagonal(shift, phi)
        F, _, _, info = tpqrt(n, min(32, n), np.array(self.R, order="F"), shift,
                              overwrite_a=True, overwrite_b=True)
        if info != 0:
            raise np.linalg.LinAlgError(f"tpqrt failed (info={info})")
        return _zero_below_diagonal(F)


def _shifted_factor_via_gram(backend, R, phi, cache):
    """Upper triangular F with ``F^T F = R^T R + phi^2 I`` without tpqrt (the GPU's route).

    The Cholesky factor of the shifted Gram matrix when rounding in
    ``R^T R`` (about ``u sqrt(n) ||R||^2``) is below a tenth of the shift,
    which keeps the estimate within about 10 %; a dense QR of the 2n x n
    stack ``[R; phi I]`` (several times dearer) otherwise.  ``cache`` keeps
    the Gram matrix and its bound between calls.
    """
    xp = backend.xp
    n = R.shape[0]
    if "gram" not in cache:
        gram = R.T @ R
        cache["gram"] = gram
        cache["gram_bound"] = float(xp.abs(gram).sum(axis=1).max())
    eps = float(np.finfo(R.dtype).eps)
    if eps * math.sqrt(n) * cache["gram_bound"] <= 0.1 * phi ** 2:
        try:
            return backend.cholesky(cache["gram"] + phi ** 2 * xp.eye(n, dtype=R.dtype))
        except np.linalg.LinAlgError:
            pass
    return backend.qr(xp.vstack([R, phi * xp.eye(n, dtype=R.dtype)]), mode="r")


# The factors _mul multiplies with that are lower triangular (on the host
# only R.T is used: R^-1 is applied by triangular solves).
_LOWER_TRIANGULAR = {"R_inv.T", "R.T"}


def _product(M, X, lower=False):
    """``M @ X``, M lower triangular with ``lower``.

    On the host, products with few columns run on numba's threads
    (``_cpu_sweep.matmul``, which skips the zero half of a lower triangular
    M), so the refinement loop makes no multithreaded BLAS call to compete
    with its sweeps.
    """
    from . import _cpu_sweep
    if _cpu_sweep.supported(M, X.shape[1], layouts="C") and X.dtype == M.dtype:
        return _cpu_sweep.matmul(M, X, _cpu_sweep.LOWER if lower else _cpu_sweep.FULL)
    return M @ X


def _triangular_solve(F, G, trans=False):
    """``F^{-1} G`` (``F^{-T} G`` with ``trans``) for the column-major upper
    triangular F on the host.

    One column: BLAS's trsv, which OpenBLAS runs on the calling thread (2 us
    at n = 50, where switching BLAS threads costs 10-20 us); several:
    LAPACK's trtrs on one BLAS thread, as between the sweeps.
    """
    from scipy.linalg import blas, lapack
    dtype = np.result_type(F, G)
    if F.dtype != dtype:        # never round G to a narrower F (not on the solvers' path)
        F = F.astype(dtype, order="F")
    G = np.asarray(G, dtype=dtype)
    if G.ndim == 1 or G.shape[1] == 1:
        trsv = blas.get_blas_funcs("trsv", (F,))
        return trsv(F, G.ravel(), trans=int(trans)).reshape(G.shape)
    trtrs = lapack.get_lapack_funcs("trtrs", (F,))
    with NUMPY.single_threaded_blas():
        H, info = trtrs(F, G, lower=0, trans=int(trans))
    if info != 0:
        raise np.linalg.LinAlgError(f"trtrs failed (info={info})")
    return H


def _svd_estimator(xp, project, sigma, r_norms, x_norms):
    """``G -> ||(Sigma^2 + phi^2 I)^{-1/2} V^T g|| / ||x||`` per column, with
    ``phi = ||r|| / ||x||`` and ``project(G) = V^T G`` (``||V^T g|| / ||r||``
    when x = 0, 0 when r = 0)."""
    safe_x = xp.where(x_norms > 0, x_norms, 1)
    safe_r = xp.where(r_norms > 0, r_norms, 1)
    phi = xp.where(x_norms > 0, r_norms / safe_x, 0)
    weights = 1 / xp.sqrt(sigma[:, None] ** 2 + phi ** 2)

    def estimate(G):
        Z = project(G)
        out = xp.where(x_norms > 0, xp.linalg.norm(Z * weights, axis=0) / safe_x,
                       xp.linalg.norm(Z, axis=0) / safe_r)
        return xp.where(r_norms > 0, out, 0).astype(xp.float64)
    return estimate


def _gpu_triangular_inverse(backend, R):
    """Inverse of the upper triangular R on a GPU (the host solves with R
    instead: see Preconditioner)."""
    return backend.solve_triangular(R, backend.xp.eye(R.shape[0], dtype=R.dtype))


# Columns per block of geqrt's factorisation of the sketch (see _r_factor).
_QR_BLOCK = 128


def _r_factor(backend, stacked, n):
    """The R factor of a Householder QR of the tall column-major ``stacked``
    (which it overwrites), split into its n x n upper triangle and the
    n x k block beside it.

    On the host LAPACK's geqrt, whose panels are factored recursively with
    level-3 BLAS: 15-25 % faster than geqrf (numpy.linalg.qr) on the CI
    machine for 4000 x 1001 and 8000 x 1001 sketches, in blocks of 128
    columns (8000 x 2001: 1.04-1.13 s against 1.12-1.18 s with 64; 5000 x
    1001: 0.198-0.208 against 0.207-0.213 s; best of 6, interleaved, two
    runs).  Both parts are copied out contiguous, so the d x (n + k) buffer
    is freed, and the n x n triangle is read in place by the BLAS and LAPACK
    calls that follow (a view of the (n + k)-row R made each of them copy
    it: 100-150 ms a copy at n = 2000 in fresh pages on the CI machine).
    """
    if backend.is_gpu:
        Raug = backend.qr(stacked, mode="r")
        return Raug[:n, :n], Raug[:n, n:]
    from scipy.linalg import lapack
    rows, cols = stacked.shape
    geqrt = lapack.get_lapack_funcs("geqrt", (stacked,))
    factored, _, info = geqrt(max(1, min(_QR_BLOCK, rows, cols)), stacked, overwrite_a=True)
    if info != 0:
        raise np.linalg.LinAlgError(f"geqrt failed (info={info})")
    R = _zero_below_diagonal(np.array(factored[:n, :n], order="F"))
    return R, np.array(factored[:n, n:], order="F")


def _frobenius_norm(xp, M) -> float:
    """||M||_F without squaring M's entries as they are (they may under- or
    overflow when squared).

    On the host BLAS's nrm2, which scales as it goes and needs no n x n
    temporaries: fresh pages cost about 1.2 ms per MB on the CI machine, and
    the three of the formula below took 70-130 ms at n = 2000 in a solve.
    """
    if xp is np and M.dtype in (np.float32, np.float64):
        from scipy.linalg import blas
        nrm2 = blas.get_blas_funcs("nrm2", (M,))
        return float(nrm2(M.ravel(order="K"))) if M.size else 0.0
    largest = float(xp.max(xp.abs(M))) if M.size else 0.0
    if largest == 0 or not math.isfinite(largest):
        return largest
    return largest * float(xp.sqrt(xp.sum((M / largest) ** 2)))


def _zero_below_diagonal(M):
    """M with the entries below its diagonal zeroed, in place (column-major M:
    np.triu would allocate, and fresh pages cost several ms per 10 MB here)."""
    for j in range(min(M.shape[0], M.shape[1])):
        M[j + 1:, j] = 0
    return M


def _full_rank(R, cutoff):
    """Whether no diagonal entry of the triangular R is below cutoff times the largest."""
    diag = get_backend(R).xp.abs(R.diagonal())
    return diag.size == 0 or float(diag.min()) > cutoff * float(diag.max())


def _conditioned_within(R, R_inv, cutoff):
    """Whether R's condition number, estimated as ``||R||_1 ||R^-1||_1 / sqrt(n)``,
    is at most ``1 / cutoff``.

    R's diagonal alone does not reveal its rank: A of exact rank n - 1 with
    singular values down to 0.03 gave an R whose diagonal was all above
    0.002 but whose smallest singular value was 1e-16, and a solution of
    norm 1e18 (gelsd's: 18).  The 1-norm condition number exceeds the
    2-norm one by about sqrt(n) on the standard problems (8 to 20 at n =
    200, 27 to 78 at n = 1000).  It is exact from the inverse R_inv where
    there is one (the GPU's), and otherwise LAPACK's trcon estimate, O(n^2)
    work from a few triangular solves (Higham's 1-norm estimator: a lower
    bound, within a factor of 3 of ``||R^-1||_1`` in all but contrived cases).
    """
    n = R.shape[0]
    if R_inv is None:
        from scipy.linalg import lapack
        trcon = lapack.get_lapack_funcs("trcon", (R,))
        with NUMPY.single_threaded_blas():
            rcond, info = trcon(R, norm="1", uplo="U", diag="N")
        if info != 0:
            raise np.linalg.LinAlgError(f"trcon failed (info={info})")
        estimate = 1.0 / float(rcond) if rcond > 0 else math.inf   # inf past the range
    else:
        with np.errstate(over="ignore"):   # an inverse of entries near the largest
            estimate = _one_norm(R) * _one_norm(R_inv)
    return bool(np.isfinite(estimate)) and estimate * cutoff <= math.sqrt(n)


def _one_norm(M) -> float:
    """The largest column sum of |M| (on the host LAPACK's lange, which needs
    no temporary copy of |M|)."""
    xp = get_backend(M).xp
    if xp is np and M.dtype in (np.float32, np.float64) and M.size:
        from scipy.linalg import lapack
        return float(lapack.get_lapack_funcs("lange", (M,))("1", M))
    return float(xp.abs(M).sum(axis=0).max()) if M.size else 0.0


def _svd_through_gram(backend, R):
    """Thin SVD of a float32 R from the eigendecomposition of ``R^T R`` in float64.

    The singular values come out to about 1e-8 of the largest, far below
    float32's own resolution, so the rank decision and the kept singular
    vectors are as good as a float32 SVD's; on a GPU the symmetric
    eigensolver is also several times faster than cuSOLVER's SVD.
    """
    xp = backend.xp
    wide = R.astype(xp.float64)
    w, V = backend.eigh(wide.T @ wide)
    w, V = w[::-1], V[:, ::-1]                       # descending
    s = xp.sqrt(xp.maximum(w, 0))
    U = (wide @ V) / xp.where(s > 0, s, 1)
    return U.astype(R.dtype), s.astype(R.dtype), xp.ascontiguousarray(V.T).astype(R.dtype)


def _extremes(xp, M):
    """``(min, max)`` of M as floats: NaN and inf reach them, and so does the
    size of the largest entry, without a temporary the size of M."""
    return (float(xp.min(M)), float(xp.max(M))) if M.size else (0.0, 0.0)


def _draw_operator(sketch, d, m, rng, dtype, scale=None):
    state = as_rng_state(rng)
    if sketch == "saso":
        return SASO(d, m, k=min(8, d), rng=state, dtype=dtype, scale=scale)
    return make_operator(sketch, d, m, rng=state, dtype=dtype, scale=scale)


def sketch_and_factor(op, B, *, d, sketch, rng, cutoff, preconditioner="svd",
                      fallback=False):
    """Sketch A and B, factor S A, and return the preconditioner and x0.

    B may be None (no right-hand side to sketch).  x0 is the sketch-and-solve
    solution ``argmin ||S(A x - b)||`` (with the damping rows ``[damp I; 0]``
    appended to the sketch when damp > 0).  A rank-deficient sketch makes the
    QR form raise ``LinAlgError``, or with ``fallback`` take the SVD form of
    the same factor.  An A whose sketch has a norm far from 1 rescales op
    (``op.rescale``) by a power of 2, and P and x0 are those of the scaled A.
    """
    backend = op.backend
    xp = backend.xp
    m, n = op.shape
    # A sketch as tall as A (the cost model's choice up to about m = 2n, and
    # for m <= n + 10) only mixes A's rows, and preconditions with its own
    # condition number: a square sparse sign sketch can even lose rank (a
    # 2 x 2 one does half the time: the solvers then reported a wrong x as
    # converged; at 411 x 400 spir ran 406 passes unconverged).  A itself is
    # factored instead: the same cost, and an exact preconditioner.
    identity = d == m
    S = None if identity else _draw_operator(sketch, d, m, rng, op.dtype)
    k = 0 if B is None else B.shape[1]
    # QR of [S A, S B] (with the damping rows [damp I, 0] below): R is S A's
    # factor and Q^T S B comes for free, without forming Q; the SVD form goes
    # on to the SVD of R (cheaper than an SVD of the tall sketch, which would
    # also form its U).  The sketch is written straight into the column-major
    # buffer LAPACK factors in place.
    stacked = xp.empty((d + (n if op.damp else 0), n + k), dtype=op.dtype, order="F")
    if identity:
        op.copy_into(stacked[:d, :n])
    else:
        op.sketch(S, out=stacked[:d, :n])
    low, high = _extremes(xp, stacked[:d, :n])
    info = np.finfo(op.dtype)
    if not identity:
        # The same operator times a power of 2 sketches A at another scale
        # where S A is out of range: finite A whose sums overflow (float32
        # entries near 3e38: scipy's gelsd scales them; lstsq refused A as
        # not finite), or A so small that the sketch is computed among
        # subnormals (duplicate columns of entries near 1e-310 came out
        # 1e-13 apart: rank 30 for 28, x 7.5e7 times the minimum norm)
        if not (math.isfinite(low) and math.isfinite(high)):
            factor = 2.0 ** -(info.maxexp // 2)
        elif 0 < max(-low, high) < info.tiny / info.eps:
            factor = 2.0 ** (info.maxexp // 2)
        else:
            factor = 1.0
        if factor != 1.0:
            rescaled = _draw_operator(sketch, d, m, S.state, op.dtype, scale=S.scale * factor)
            op.sketch(rescaled, out=stacked[:d, :n])
            low, high = _extremes(xp, stacked[:d, :n])
            if math.isfinite(low) and math.isfinite(high):
                op.rescale(factor)
    if not (math.isfinite(low) and math.isfinite(high)):
        # a sparse sign or dense sketch reaches every row of A (a row-sampling
        # sketch may miss a bad row: that run then ends unconverged)
        raise ValueError("A must not contain infs or NaNs (its sketch S A is not finite)")
    # Entries near the overflow threshold: the QR of the sketch would
    # overflow in its column norms (LinAlgError from a finite A with entries
    # of 1e307), so the factorisation sees a power of 2 times the sketch.
    pre = power_of_two_scale(max(-low, high), op.dtype)
    if pre < 1.0:
        stacked[:d, :n] *= pre
        op.rescale(pre)
    if k:
        stacked[:d, n:] = B if identity else left_sketch(S, B)
    if op.damp:
        stacked[d:, :n] = op.damp * xp.eye(n, dtype=op.dtype)
        stacked[d:, n:] = 0
    R, QtSB = _r_factor(backend, stacked, n)
    norm_estimate = _frobenius_norm(xp, R)                          # ||S A||_F
    # The refinement's products and norms of an A far from norm 1 would
    # under- or overflow: from here on the operand is a power of 2 times A.
    scale = power_of_two_scale(norm_estimate, op.dtype)
    # ... with a factor that stays a normal float64 (A of entries near
    # 1e-310 would need 2^1030 in all)
    scale = min(scale, math.ldexp(1.0, min(1020, 1020 - math.frexp(op.a_scale)[1])))
    if scale != 1.0:
        R *= scale
        norm_estimate *= scale
        op.rescale(scale)
    if preconditioner == "qr" and _full_rank(R, cutoff):
        R_inv = None
        if backend.is_gpu:
            R_inv = _gpu_triangular_inverse(backend, R)
        if _conditioned_within(R, R_inv, cutoff):
            P = Preconditioner("qr", None, None, R, R_inv, n, norm_estimate, backend, d)
            return P, P.apply(QtSB)
    if preconditioner == "qr" and not fallback:
        raise np.linalg.LinAlgError("the sketch of A is rank deficient: use the SVD "
                                    "preconditioner (preconditioner='svd')")
    U, s, Vt = _svd_through_gram(backend, R) if R.dtype == np.float32 else backend.svd(R)
    rank = int(xp.count_nonzero(s > cutoff * s[0])) if s.size and float(s[0]) > 0 else 0
    if 0 < rank < n and d < m and not op.damp:
        # A short sketch can lose directions A has (3 x 2 orthogonal A with
        # d = 2 gave a wrong x reported converged): A times the dropped
        # directions, one pass, says whether they are A's null space, and if
        # not a sketch twice as tall is factored instead (A itself at d = m).
        lost = op.matmat(xp.ascontiguousarray(Vt[rank:].T))
        if float(xp.max(xp.abs(lost))) * math.sqrt(m) > 10 * cutoff * float(s[0]):
            return sketch_and_factor(op, B, d=min(m, 2 * d), sketch=sketch, rng=rng,
                                     cutoff=cutoff, preconditioner=preconditioner,
                                     fallback=fallback)
    P = Preconditioner("svd", Vt[:rank].T, s[:rank], None, None, rank, norm_estimate,
                       backend, d)
    return P, P.apply(U[:, :rank].T @ QtSB)
