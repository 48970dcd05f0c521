"""Randomized least-squares drivers.

Every driver solves ``min ||A x - b||`` (plus ``damp^2 ||x||^2`` where offered)
for a tall A given as a dense array, a sparse matrix or a LinearOperator
(numpy/scipy on the host or CuPy/cupyx on the GPU), and returns a :class:`LstsqResult`.  They share one set-up:
draw a sparse sign sketch S (d x m), factor ``S A`` into a preconditioner P
(``A P`` has condition number near 1) and take the sketch-and-solve point as
the start.  They differ in what they do next (each driver's docstring cites its paper).
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Callable, NamedTuple

import numpy as np

from .._backend import get_backend
from .._checks import check_int
from .._operand import power_of_two_scale
from ..sketch._rng import check_rng
from ._operand import as_operand
from ._preconditioner import choose_sketch_size, sketch_and_factor

__all__ = ["LstsqResult", "spir", "fossils", "sketch_and_solve", "sketch_and_precondition",
           "iterative_sketching", "min_norm"]

_SKETCHES = ("saso", "countsketch", "gaussian", "rademacher", "srtt", "laso")


@dataclass(frozen=True)
class LstsqResult:
    """Solution of a least-squares problem and what is needed to trust it.

    Attributes
    ----------
    x : numpy.ndarray or cupy.ndarray
        Solution, shape (n,) or (n, k) like b's columns, on A's device.
    iterations : int
        Iterations of the driver (inner iterations summed over refinement steps).
    converged : bool
        Whether the stopping test was met for every right-hand side.
    backward_error_estimate : float or numpy.ndarray
        (On the host also for GPU data.)  Sketched Karlson-Walden estimate of the normwise backward error,
        divided by the estimate of ``||A||_F`` from the sketch (a float for
        1-D b, one per column otherwise).  A backward-stable solve gives a
        small multiple of the unit roundoff.  For :func:`min_norm` it is
        ``||b - A x|| / (||A||_F ||x|| + ||b||)``.
    residual_norm : float or numpy.ndarray
        (On the host.)  ``||b - A x||`` per column, from the last residual recomputed from A and b.
    passes : int
        Reads of A: the sketch, every product with A or A.T (a fused
        ``A.T (A v)`` sweep counts once).
    rank : int
        Numerical rank of the sketch of A (columns kept by the preconditioner).
    sketch_size : int
        Rows d of the sketch that was factored: the requested or chosen d, or
        more where a rank-deficient sketch was replaced by a taller one (A's
        own m rows at most).
    method : str
        Name of the driver.
    """

    x: object
    iterations: int
    converged: bool
    backward_error_estimate: float | np.ndarray
    residual_norm: float | np.ndarray
    passes: int
    rank: int
    sketch_size: int
    method: str


# ---------------------------------------------------------------------------
# argument handling shared by the drivers

# The default rank cutoff of the sketch's singular values, in units of eps.
DEFAULT_CUTOFF_EPS = 30


def _prepare(A, b, *, rng, damp=0.0, sketch="saso", sketch_size=None, cond=None,
             wide_ok=False):
    # rng is checked here, before the choice of d: with d = m A itself is
    # factored and nothing is drawn, and a bad rng would pass small problems only
    check_rng(rng)
    # a bool is an int to isinstance, and True would damp by 1
    if isinstance(damp, bool) or not (isinstance(damp, (int, float, np.floating, np.integer))
                                      and math.isfinite(damp) and damp >= 0):
        raise ValueError(f"damp must be a finite number >= 0, got {damp!r}")
    op = as_operand(A, "A", float(damp))
    m, n = op.shape
    if m < n and not wide_ok:
        raise ValueError(f"A must be tall (m >= n), got shape {op.shape}; use min_norm "
                         "or randla.lstsq for wide A")
    if get_backend(b) is not op.backend:
        raise TypeError(f"b must live where A does ({op.backend.name}), got "
                        f"{type(b).__name__}")
    if op.backend.issparse(b):
        raise TypeError(f"b must be a dense array, got {type(b).__name__}")
    b_arr = op.xp.asarray(b)
    # the dtype first: a string or an object becomes a 0-d array
    if np.dtype(b_arr.dtype).kind not in "biuf":
        raise TypeError(f"b must hold real numbers, got dtype {b_arr.dtype}")
    if b_arr.ndim not in (1, 2):
        raise ValueError(f"b must be 1-D or 2-D, got shape {b_arr.shape}")
    if b_arr.shape[0] != m:
        raise ValueError(f"b must have {m} rows like A, got shape {b_arr.shape}")
    if m == 0 or n == 0:
        raise ValueError(f"A must not be empty, got shape {op.shape}")
    B = b_arr.reshape(m, -1)
    # one pass over b, in its own precision (a float64 b of 1e50 is inf in
    # float32): a column's largest entry is NaN or inf where any entry is
    b_max = (op.backend.to_host(op.xp.max(op.xp.abs(B), axis=0)).astype(np.float64)
             if B.size else np.zeros(B.shape[1]))
    if not np.isfinite(b_max).all():
        raise ValueError("b must not contain infs or NaNs")
    # Norms square their entries: a column of b far from 1 is scaled by an
    # exact power of 2 of its own (columns are separate problems: one factor
    # for all left a column of 1e-160 next to one of 1 to underflow), and x
    # and r are scaled back (A likewise, in sketch_and_factor).
    scales = np.array([power_of_two_scale(float(v), op.dtype) for v in b_max])
    if (scales != 1.0).any():
        # in float64: a float32 column of subnormals needs a factor beyond float32
        op.b_scale = op.xp.asarray(scales)
        B = B * op.b_scale
    B = B.astype(op.dtype, copy=False)
    if sketch not in _SKETCHES:
        raise ValueError(f"sketch must be one of {_SKETCHES}, got {sketch!r}")
    rows = n if m >= n else m
    long = m if m >= n else n
    if sketch_size is None:
        nnz = getattr(A, "nnz", None)
        # the sweeps run over A, or over A.T for wide A: which layout they see
        flags = getattr(op.A, "flags", None)
        row_major = flags is None or bool(flags.c_contiguous if m >= n else flags.f_contiguous)
        d = choose_sketch_size(long, rows, op.dtype.itemsize, nnz, gpu=op.backend.is_gpu,
                               nrhs=B.shape[1], row_major=row_major)
    else:
        if isinstance(sketch_size, bool) or not isinstance(sketch_size, (int, np.integer)):
            raise TypeError(f"sketch_size must be an integer, got {sketch_size!r}")
        d = int(sketch_size)
        if not rows <= d <= long:
            raise ValueError(f"sketch_size must lie in [{rows}, {long}] for A of shape "
                             f"{op.shape}, got {d}")
    eps = float(np.finfo(op.dtype).eps)
    if cond is None:
        cutoff = DEFAULT_CUTOFF_EPS * eps
    else:
        if isinstance(cond, bool) or not (isinstance(cond, numbers.Real) and cond >= 0):
            raise ValueError(f"cond must be a number >= 0, got {cond!r}")
        cutoff = float(cond)
    return op, B, b_arr.ndim == 1, d, eps, cutoff


def _check_tol(tol, eps):
    if tol is None:
        return eps
    # inf would report any x converged (randla.eig refuses it too)
    if isinstance(tol, bool) or not (isinstance(tol, numbers.Real) and 0 < tol < math.inf):
        raise ValueError(f"tol must be a positive finite number, got {tol!r}")
    return float(tol)


def _namespace(X):
    return get_backend(X).xp


def _column_norms(M):
    """2-norms of M's columns, also where squaring its entries as they are
    would under- or overflow (an x of entries near 1e155 has a finite norm
    whose squares overflow: its estimate then read as 0, converged)."""
    xp = _namespace(M)
    norms = xp.linalg.norm(M, axis=0)
    # well inside the range whose squares neither under- nor overflow (about
    # 1e+-150 in float64, 1e+-15 in float32)
    info = np.finfo(M.dtype)
    if bool(xp.all((norms > math.sqrt(info.tiny) * 2.0 ** 13)
                   & (norms < math.sqrt(info.max) * 2.0 ** -14))):
        return norms        # no square under- or overflowed (the common case: 3x faster)
    largest = xp.max(xp.abs(M), axis=0) if M.shape[0] else xp.zeros(M.shape[1], M.dtype)
    unit = xp.where((largest > 0) & xp.isfinite(largest), largest, 1)
    return largest * xp.sqrt(xp.sum((M / unit) ** 2, axis=0))


def _norms(R, X, damp):
    r = _column_norms(R)
    x = _column_norms(X)
    if damp:
        r = _namespace(X).hypot(r, damp * x)
    return r, x


def _unscaled(op, X, residual):
    """x and the residual norms of the caller's A and b, from those of the
    scaled problem ``(a_scale A) y = b_scale b`` the drivers solved
    (``b_scale``: 1.0 or one factor per column)."""
    if op.a_scale == 1.0 and isinstance(op.b_scale, float):
        return X, residual
    # in float64, then back: the factors may lie beyond float32's range;
    # the residual norms stay float64 (float32 b of 1e37: a norm of 5e38
    # overflowed, and a solve with x right to 4e-7 reported not converged)
    X = (X * (op.a_scale / op.b_scale)).astype(X.dtype)
    residual = residual.astype(np.float64) / op.b_scale
    return X, residual


def _result(X, vector, *, iterations, converged, estimate, residual, op, P, method):
    X, residual = _unscaled(op, X, residual)
    estimate = op.backend.to_host(estimate)
    residual = op.backend.to_host(residual)
    # a run that overflowed (a diverging iteration) has converged to nothing,
    # whatever its stopping test said (inf <= inf holds)
    converged = (converged and bool(np.isfinite(estimate).all())
                 and bool(np.isfinite(residual).all()) and bool(op.xp.isfinite(X).all()))
    estimate = estimate / P.norm_estimate if P.norm_estimate > 0 else estimate
    return LstsqResult(x=X[:, 0] if vector else X, iterations=int(iterations),
                       converged=bool(converged),
                       backward_error_estimate=float(estimate[0]) if vector else estimate,
                       residual_norm=float(residual[0]) if vector else residual,
                       passes=op.passes, rank=P.rank, sketch_size=P.sketch_rows,
                       method=method)


def _final_estimate(op, P, X, B):
    R, G = op.residual(X, B)
    r_norms, x_norms = _norms(R, X, op.damp)
    return P.kw(G, r_norms, x_norms), _column_norms(R) if op.damp else r_norms


# ---------------------------------------------------------------------------
# inner solvers for the preconditioned normal equations  (P^T A^T A P) y = c

def _column_dots(U, V):
    # not einsum: CuPy's einsum costs about 90 us a call in Python, three times
    # a product and a sum (H200), and CG makes two calls per iteration
    return (U * V).sum(axis=0)


def _ratio_where(active, num, den):
    """num / den on the active columns with den > 0, else 0."""
    xp = _namespace(den)
    positive = den > 0
    return xp.where(active & positive, num, 0.0) / xp.where(positive, den, 1)


def _pcg(apply_M, C, stop, maxiter):
    """Conjugate gradients, columns independent; stop(res) -> columns done.
    Returns Y, the iterations taken, and whether every column met the test.

    One device-to-host transfer per iteration: the flag that any column is
    still active."""
    xp = _namespace(C)
    Y = xp.zeros_like(C)
    res = C.copy()
    active = ~stop(res)
    p = res.copy()
    rr = _column_dots(res, res)
    it = 0
    while bool(active.any()) and it < maxiter:
        q = apply_M(p)
        alpha = _ratio_where(active, rr, _column_dots(p, q))
        Y += alpha * p
        res -= alpha * q
        rr_new = _column_dots(res, res)
        beta = _ratio_where(active, rr_new, rr)
        p = res + beta * p
        rr = rr_new
        it += 1
        active &= ~stop(res)
    return Y, it, not bool(active.any())


def _heavy_ball(apply_M, C, stop, maxiter, ratio):
    """Polyak heavy ball with the parameters of a subspace embedding of
    distortion sqrt(ratio): beta = ratio, alpha = (1 - ratio)^2.

    Returns Y, the iterations taken, and whether the step sizes do not fit:
    a residual past ``_DIVERGED`` times its lowest (or not finite), or one
    whose lowest fell by less than ``1 / _SLOWEST`` in ``_WINDOW`` steps,
    says the sketch distorts more than ``ratio`` assumes, and the iteration
    stops there.  With a sparse sign sketch of 1.5n rows (3000 x 100,
    cond 100) every seed diverged; of 4n, 1 in 20 crawled at 0.98 a step
    (one eigenvalue of the preconditioned matrix below the assumed range)
    where 0.5 was due."""
    xp = _namespace(C)
    alpha, beta = (1 - ratio) ** 2, ratio
    Y = xp.zeros_like(C)
    res = C.copy()
    step = xp.zeros_like(C)
    lowest = window_start = _column_norms(C)
    active = ~stop(res)
    it = 0
    while bool(active.any()) and it < maxiter:
        step = xp.where(active, alpha * res + beta * step, 0.0)
        Y += step
        res -= apply_M(step)
        it += 1
        norms = _column_norms(res)
        if not bool(xp.all(norms <= _DIVERGED * lowest)):
            return Y, it, True
        lowest = xp.minimum(lowest, norms)
        active &= ~stop(res)
        if it % _WINDOW == 0:
            if bool(xp.any(active & (lowest > _SLOWEST * window_start))):
                return Y, it, True
            window_start = lowest

    return Y, it, False


# Growth of a residual (heavy ball) or of the backward-error estimate
# (iterative sketching) that counts as divergence: with step sizes that fit
# the sketch both fall, after a transient of a few times at most.
_DIVERGED = 10.0
# The heavy ball's residual must fall by 1 / _SLOWEST every _WINDOW steps:
# with fitting step sizes it falls by beta^(_WINDOW / 2), 1/32 or less.
_WINDOW = 10
_SLOWEST = 0.5


# ---------------------------------------------------------------------------
# drivers

def _check_preconditioner(preconditioner, op):
    if preconditioner not in ("auto", "qr", "svd"):
        raise ValueError(f"preconditioner must be 'auto', 'qr' or 'svd', got "
                         f"{preconditioner!r}")
    # "auto" is the QR form (the SVD form where the sketch is rank deficient):
    # an SVD of the n x n factor costs seconds on a GPU (cuSOLVER's gesvd) and
    # 0.2 s for n = 1000 on the CI machine, twice the QR form's inverses.
    return "qr" if preconditioner == "auto" else preconditioner


def _factor(op, B, *, d, sketch, rng, cutoff, preconditioner):
    """sketch_and_factor, falling back from the QR to the SVD form when the
    sketch is rank deficient, unless the QR form was asked for."""
    kind = _check_preconditioner(preconditioner, op)
    return sketch_and_factor(op, B, d=d, sketch=sketch, rng=rng, cutoff=cutoff,
                             preconditioner=kind, fallback=preconditioner == "auto")


def _refined(A, b, inner, *, damp, tol, refinements, maxiter, sketch, sketch_size, cond,
             rng, callback, method, preconditioner):
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable or None, got {callback!r}")
    op, B, vector, d, eps, cutoff = _prepare(A, b, rng=rng, damp=damp, sketch=sketch,
                                             sketch_size=sketch_size, cond=cond)
    tol = _check_tol(tol, eps)
    refinements = check_int("refinements", refinements, 1)
    maxiter = check_int("maxiter", maxiter, 1)
    xp = op.xp
    P, X = _factor(op, B, d=d, sketch=sketch, rng=rng, cutoff=cutoff,
                   preconditioner=preconditioner)
    target = tol * P.norm_estimate
    ratio = min(0.5, op.shape[1] / d)
    # Each step needs only a moderate contraction: with products by A P
    # accurate to about u*cond(A), more inner iterations buy nothing.
    inner_tol = max(eps, 1e-6 if eps < 1e-10 else 1e-3)

    def apply_M(Z):
        return P.apply_t(op.normal(P.apply(Z)))

    iterations = 0
    previous = None
    for step in range(refinements + 1):
        R, G = op.residual(X, B)
        # x0 is rarely backward stable: an upper bound suffices at step 0,
        # for the check and for CG's shortcut below, which it can only delay
        # (same passes as the exact estimate at 40000 x 1000 and 100000 x
        # 2000, and no shifted factorisation for a phi that step 1 changes)
        estimator = P.estimator(*_norms(R, X, op.damp), bound=step == 0)
        estimate = estimator(G)
        if callback is not None:
            callback(step, float(xp.max(estimate)) / max(P.norm_estimate, 1e-300))
        done = estimate <= target
        # At the rounding floor the estimate stops falling; the first step
        # alone may not lower it much (it buys forward accuracy), so judge
        # stagnation from the second step on.
        stalled = step >= 2 and bool(xp.all((estimate > 0.5 * previous) | done))
        if bool(done.all()) or stalled or step == refinements:
            break
        previous = estimate
        C = P.apply_t(G)
        c_norms = xp.linalg.norm(C, axis=0)

        def stop(res, estimator=estimator, c_norms=c_norms):
            # The backward error x + P y would have, predicted from the inner
            # residual, is trusted only as a shortcut; the next step checks it
            # on a residual recomputed from A and b.
            return ((estimator(P.inverse_t(res)) <= 0.25 * target)
                    | (xp.linalg.norm(res, axis=0) <= inner_tol * c_norms) | done)

        if inner == "heavy_ball":
            Y, its, diverged = _heavy_ball(apply_M, C, stop, maxiter, ratio)
            iterations += its
            if diverged:
                # the sketch distorts more than its size promises: conjugate
                # gradients, which need no bound on the spectrum, from here on
                inner = "cg"
        if inner == "cg":
            Y, its, _ = _pcg(apply_M, C, stop, maxiter)
            iterations += its
        X = X + P.apply(Y)
    return _result(X, vector, iterations=iterations, converged=bool(xp.all(done)),
                   estimate=estimate, residual=xp.linalg.norm(R, axis=0), op=op, P=P,
                   method=method)


_COMMON_PARAMETERS = """
    A : (M, N) array_like, sparse matrix or LinearOperator (host or CuPy)
        Tall real matrix (M >= N).  Dense data is used in place, in its own
        precision (float32 stays float32) and layout.
    b : (M,) or (M, K) array_like
        Right-hand side(s)."""


def spir(A, b, *, damp: float = 0.0, tol: float | None = None, refinements: int = 4,
         maxiter: int = 100, sketch: str = "saso", sketch_size: int | None = None,
         cond: float | None = None, rng=None,
         callback: Callable[[int, float], None] | None = None,
         preconditioner: str = "auto") -> LstsqResult:
    """Sketch-and-precondition with iterative refinement (SPIR): backward stable.

    The default driver behind :func:`randla.lstsq`.  Starting from the
    sketch-and-solve point, each refinement step recomputes ``r = b - A x`` and
    ``g = A.T r`` from the data (one fused pass), estimates the backward error
    with the sketched Karlson-Walden formula, and if it is above
    ``tol * ||A||_F`` solves the preconditioned correction equation
    ``(P^T A^T A P) y = P^T g`` by conjugate gradients (one fused pass per
    iteration), stopping as soon as the correction brings the estimated
    backward error below the target; then ``x += P y``.  Recomputing the
    residual from A and b is what makes it backward stable (Epperly, Meier &
    Nakatsukasa 2024; Xu & Lu 2024).

    Parameters
    ----------%s
    damp : float, default 0
        Ridge term: minimise ``||A x - b||^2 + damp^2 ||x||^2``.
    tol : float, optional
        Target for the backward-error estimate relative to ``||A||_F``;
        default the machine epsilon of A's precision (Householder QR
        typically lands at 0.2-0.5 eps).
    refinements : int, default 4
        Most refinement steps (each with at most ``maxiter`` CG iterations,
        stopped at a contraction of 1e-6 of the correction's residual); from
        the second step on it also stops when a step does not halve the
        estimate (the rounding floor).
    maxiter : int, default 100
    sketch : str, default "saso"
        Sketching family (sparse sign embedding with 8 nonzeros per column).
    sketch_size : int, optional
        Rows of the sketch; default from a cost model (:func:`choose_sketch_size`).
        As many rows as A's long side: A itself is factored, not sketched.
    cond : float, optional
        Singular values of ``S A`` below ``cond * sigma_max`` are dropped (rank
        deficiency, minimum-norm solution); default ``30 * eps``.  A cutoff
        that truncates real singular values solves the truncated problem: x
        then depends on the sketch (the top right singular subspace of ``S A``
        is A's only up to an angle of about sigma_{r+1} / sigma_r), and the
        backward-error estimate is that of the truncated problem, not A's.
    rng : None, int, numpy.random.Generator, RNGState or other seed
        Seed of the sketch (SPEC 7, see :func:`randla.sketch.as_rng_state`).
    callback : callable, optional
        Called as ``callback(step, estimate)`` after every residual recomputation.
    preconditioner : {"auto", "svd", "qr"}, default "auto"
        ``"svd"``: ``P = V Sigma^-1`` from the SVD of the sketch's R factor
        (handles rank deficiency, cheap backward-error estimates, so CG can
        stop as soon as the predicted estimate is small).  ``"qr"``:
        ``P = R^-1`` (full rank only; the backward-error estimates need a
        factorisation of ``[R; phi I]`` per value of ``phi = ||r||/||x||``).
        ``"auto"``: QR, falling back to the SVD when the sketch is rank
        deficient (the SVD of the n x n factor costs 0.2 s for n = 1000 on
        the CI machine and more than the whole solve on a GPU).

    Returns
    -------
    LstsqResult

    Examples
    --------
    >>> import numpy as np
    >>> from randla.solve import spir
    >>> rng = np.random.default_rng(0)
    >>> A = rng.standard_normal((3000, 40)); b = rng.standard_normal(3000)
    >>> res = spir(A, b, rng=1)
    >>> res.converged, bool(res.backward_error_estimate <= np.finfo(float).eps)
    (True, True)
    >>> np.allclose(res.x, np.linalg.lstsq(A, b, rcond=None)[0])
    True
    """
    return _refined(A, b, "cg", damp=damp, tol=tol, refinements=refinements, maxiter=maxiter,
                    sketch=sketch, sketch_size=sketch_size, cond=cond, rng=rng,
                    callback=callback, method="spir", preconditioner=preconditioner)


spir.__doc__ %= _COMMON_PARAMETERS


def fossils(A, b, *, damp: float = 0.0, tol: float | None = None, refinements: int = 4,
            maxiter: int = 100, sketch: str = "saso", sketch_size: int | None = None,
            cond: float | None = None, rng=None,
            callback: Callable[[int, float], None] | None = None,
            preconditioner: str = "auto") -> LstsqResult:
    """FOSSILS: iterative refinement with heavy-ball inner solves.

    As :func:`spir`, but the correction equation is solved by Polyak's heavy
    ball with the step sizes of a subspace embedding (``beta = min(n/d,
    1/2)``, ``alpha = (1 - beta)^2``) instead of conjugate gradients, as in
    Epperly, Meier & Nakatsukasa's FOSSILS.  Those step sizes assume the
    sketch distorts by no more than ``sqrt(n/d)``; where the heavy ball's
    residual grows tenfold or stops falling (a sketch that distorts more,
    common below d = 2n and occasional up to 4n), conjugate gradients take
    over the rest of the solve.  Same parameters and result as :func:`spir`.

    Parameters
    ----------
    A, b, damp, tol, refinements, maxiter, sketch, sketch_size, cond, rng, callback, preconditioner
        As in :func:`spir`; ``maxiter`` bounds the heavy-ball steps of each
        refinement.

    Returns
    -------
    LstsqResult
        With ``method="fossils"``.

    See Also
    --------
    spir : the same refinement with conjugate gradients (the default driver).

    Examples
    --------
    >>> import numpy as np
    >>> from randla.solve import fossils
    >>> rng = np.random.default_rng(0)
    >>> A = rng.standard_normal((3000, 40)); b = rng.standard_normal(3000)
    >>> np.allclose(fossils(A, b, rng=1).x, np.linalg.lstsq(A, b, rcond=None)[0])
    True
    """
    return _refined(A, b, "heavy_ball", damp=damp, tol=tol, refinements=refinements,
                    maxiter=maxiter, sketch=sketch, sketch_size=sketch_size, cond=cond,
                    rng=rng, callback=callback, method="fossils",
                    preconditioner=preconditioner)


def sketch_and_solve(A, b, *, damp: float = 0.0, sketch: str = "saso",
                     sketch_size: int | None = None, cond: float | None = None,
                     rng=None, preconditioner: str = "auto") -> LstsqResult:
    """Sketch-and-solve: ``x = argmin ||S (A x - b)||``, one pass over A.

    Fast and approximate: the residual is within a factor ``1 + O(sqrt(n/d))``
    of the optimum, so x is NOT accurate to working precision unless the
    residual is tiny.  The returned estimate (one extra pass) tells how far off.

    Parameters
    ----------%s
    damp, sketch, sketch_size, cond, rng, preconditioner
        As in :func:`spir` (the factorisation solves the sketched problem).

    Returns
    -------
    LstsqResult
        ``converged`` is always True (there is nothing to iterate).

    Examples
    --------
    >>> import numpy as np
    >>> from randla.solve import sketch_and_solve
    >>> rng = np.random.default_rng(0)
    >>> A = rng.standard_normal((3000, 40)); b = A @ np.ones(40)
    >>> np.allclose(sketch_and_solve(A, b, rng=1).x, 1.0)
    True
    """
    op, B, vector, d, eps, cutoff = _prepare(A, b, rng=rng, damp=damp, sketch=sketch,
                                             sketch_size=sketch_size, cond=cond)
    P, X = _factor(op, B, d=d, sketch=sketch, rng=rng, cutoff=cutoff,
                   preconditioner=preconditioner)
    estimate, residual = _final_estimate(op, P, X, B)
    return _result(X, vector, iterations=0, converged=True, estimate=estimate,
                   residual=residual, op=op, P=P, method="sketch_and_solve")


sketch_and_solve.__doc__ %= _COMMON_PARAMETERS


def sketch_and_precondition(A, b, *, solver: str = "lsqr", preconditioner: str = "qr",
                            damp: float = 0.0, tol: float | None = None,
                            maxiter: int = 200, sketch: str = "saso",
                            sketch_size: int | None = None, cond: float | None = None,
                            rng=None) -> LstsqResult:
    """Sketch-and-precondition (Blendenpik / LSRN) with a warm start.

    Solves ``min ||A P y - (b - A x0)||`` by LSQR, or the preconditioned normal
    equations by CG, from the sketch-and-solve point x0; ``x = x0 + P y``.
    No refinement: forward stable at best and NOT backward stable for
    ill-conditioned A (Meier et al. 2023); kept for comparison with
    :func:`spir`.

    Parameters
    ----------%s
    solver : {"lsqr", "cg"}
        LSQR on the operator A P (all columns at once, with scipy's
        stopping tests) or conjugate gradients on ``P^T A^T A P``.
    preconditioner : {"qr", "svd", "auto"}, default "qr"
        ``P = R^{-1}`` from ``S A = Q R`` (a rank-deficient sketch raises
        LinAlgError: this driver is the plain textbook method, where the
        other drivers default to "auto"), ``V Sigma^{-1}`` from the SVD
        (which handles rank deficiency), or "auto": the QR form, the SVD
        form where the sketch is rank deficient.
    damp, tol, sketch, sketch_size, cond, rng
        As in :func:`spir`; tol is the relative tolerance of the iteration
        (default: the machine epsilon of A's precision).
    maxiter : int, default 200

    Returns
    -------
    LstsqResult
        ``converged`` says that the iteration met its own test, on the
        residuals its recurrences carry (as scipy's lsqr reports): those can
        fall below what the computed x attains, even below a tol float64
        cannot reach (1e-20).  ``backward_error_estimate``, from a residual
        recomputed from A and b, is the measure of x.

    Examples
    --------
    >>> import numpy as np
    >>> from randla.solve import sketch_and_precondition
    >>> rng = np.random.default_rng(0)
    >>> A = rng.standard_normal((3000, 40)); b = rng.standard_normal(3000)
    >>> res = sketch_and_precondition(A, b, rng=1)
    >>> np.allclose(res.x, np.linalg.lstsq(A, b, rcond=None)[0])
    True
    """
    if solver not in ("lsqr", "cg"):
        raise ValueError(f"solver must be 'lsqr' or 'cg', got {solver!r}")
    op, B, vector, d, eps, cutoff = _prepare(A, b, rng=rng, damp=damp, sketch=sketch,
                                             sketch_size=sketch_size, cond=cond)
    tol = eps if tol is None else _check_tol(tol, eps)
    maxiter = check_int("maxiter", maxiter, 1)
    P, X0 = _factor(op, B, d=d, sketch=sketch, rng=rng, cutoff=cutoff,
                    preconditioner=preconditioner)
    if solver == "cg":
        R, G = op.residual(X0, B)
        C = P.apply_t(G)
        c_norms = op.xp.linalg.norm(C, axis=0)
        Y, iterations, converged = _pcg(lambda Z: P.apply_t(op.normal(P.apply(Z))), C,
                                        lambda res: op.xp.linalg.norm(res, axis=0)
                                        <= tol * c_norms, maxiter)
    else:
        Y, iterations, converged = _lsqr_preconditioned(op, P, X0, B, tol, maxiter)
    X = X0 + P.apply(Y)
    estimate, residual = _final_estimate(op, P, X, B)
    return _result(X, vector, iterations=iterations, converged=converged, estimate=estimate,
                   residual=residual, op=op, P=P,
                   method=f"sketch_and_precondition_{solver}")


sketch_and_precondition.__doc__ %= _COMMON_PARAMETERS


def _lsqr_preconditioned(op, P, X0, B, tol, maxiter):
    """LSQR (Paige & Saunders) on ``min ||A P y - r0||^2 + damp^2 ||x0 + P y||^2``.

    Written for the backend's arrays, all right-hand sides at once (each
    column runs its own recurrence and stops on scipy's tests: ``||r|| <= tol
    ||b|| + tol ||A P|| ||y||`` or ``||(A P)^T r|| <= tol ||A P|| ||r||``).
    Damping appends the rows ``damp P y = -damp x0`` to the system.
    """
    xp = op.xp
    m = op.shape[0]
    R0 = B - op.matmat(X0)
    if op.damp:
        R0 = xp.vstack([R0, -op.damp * X0])

    def forward(Y):
        PY = P.apply(Y)
        AY = op.matmat(PY)
        return xp.vstack([AY, op.damp * PY]) if op.damp else AY

    def adjoint(Z):
        G = op.rmatmat(Z[:m])
        if op.damp:
            G = G + op.damp * Z[m:]
        return P.apply_t(G)

    def unit(Z):
        norms = xp.linalg.norm(Z, axis=0)
        return Z / xp.where(norms > 0, norms, 1), norms

    def safe(v):
        return xp.where(v > 0, v, 1)

    U, beta = unit(R0)
    V, alpha = unit(adjoint(U))
    W = V.copy()
    Y = xp.zeros_like(V)
    b_norms, phibar, rhobar = beta, beta.copy(), alpha.copy()
    a_norms = xp.zeros_like(alpha)
    active = (beta > 0) & (alpha > 0)
    iterations = 0
    while bool(active.any()) and iterations < maxiter:
        U, beta = unit(forward(V) - alpha * U)
        a_norms = xp.sqrt(a_norms ** 2 + alpha ** 2 + beta ** 2)
        V, alpha = unit(adjoint(U) - beta * V)
        rho = xp.sqrt(rhobar ** 2 + beta ** 2)
        c, s = rhobar / safe(rho), beta / safe(rho)
        theta, rhobar = s * alpha, -c * alpha
        phi, phibar = c * phibar, s * phibar
        Y += xp.where(active, phi / safe(rho), 0) * W
        W = V - (theta / safe(rho)) * W
        iterations += 1
        small_residual = phibar <= tol * b_norms + tol * a_norms * xp.linalg.norm(Y, axis=0)
        small_gradient = alpha * xp.abs(c) * phibar <= tol * a_norms * phibar
        active &= ~(small_residual | small_gradient)
    return Y, iterations, not bool(active.any())


def iterative_sketching(A, b, *, damp: float = 0.0, tol: float | None = None,
                        maxiter: int | None = None, sketch: str = "saso",
                        sketch_size: int | None = None, cond: float | None = None,
                        rng=None) -> LstsqResult:
    """Iterative sketching with momentum (Epperly 2023): forward stable.

    ``x <- x + alpha P P^T A^T (b - A x) + beta (x - x_prev)`` with
    ``beta = min(n/d, 1/2)`` (a sketch below 2n rows embeds with no better
    distortion to count on) and ``alpha = (1 - beta)^2``; the residual is
    recomputed from A and b at every step (one fused pass), so the
    backward-error estimate is free and serves as the stopping test,
    together with stagnation of the step (``||x - x_prev|| <= tol ||x||``).
    Where the estimate stays tenfold past its second-lowest for three steps
    (its lowest may be a noise low at the rounding floor), or x
    grows tenfold past the best iterate's norm while the estimate does not
    fall (a sketch that distorts more than ``sqrt(n/d)``, common below
    d = 2n), the iteration restarts from the best iterate with a larger
    distortion assumed (``beta`` halfway to 1, at most four times, each
    with the steps that beta needs when ``maxiter`` is the default); so
    does one that spends the default budget while its estimate still
    halved over the last third of it (a crawl), and, once, one whose
    estimate over the last third of its first budget stayed above 3e-2 of
    where it started (a stall or a slow rise).  An iteration that runs out
    of steps ends with ``converged=False`` (at 3000 x 100 and condition
    number 100, none of 20 seeds for d of 2n to 4n; at condition numbers of
    1e10 and more, where the estimate stops at a floor above tol, every
    run), and one that diverges with the most momentum returns its best
    iterate (lowest estimate): use :func:`spir` where every solve must
    converge.
    Forward stable but not backward stable: at condition number 1e12 its
    backward error is orders of magnitude above Householder QR's (use
    :func:`spir` for that).

    Parameters
    ----------%s
    damp, sketch, sketch_size, cond, rng
        As in :func:`spir`.
    tol : float, optional
        Target of the backward-error estimate relative to ``||A||_F``
        (default eps); the step-stagnation test uses eps.
    maxiter : int, optional
        Default: the iterations the momentum method needs to contract an
        error by the unit roundoff, ``2 ln(1/eps) / ln(1/beta)``, plus 10.

    Returns
    -------
    LstsqResult
        ``converged`` is False when neither test was met within maxiter,
        which is what happens for very ill-conditioned A: the forward error is
        then still at the level of a stable solver's, the backward error not.

    Examples
    --------
    >>> import numpy as np
    >>> from randla.solve import iterative_sketching
    >>> rng = np.random.default_rng(0)
    >>> A = rng.standard_normal((3000, 40)); b = rng.standard_normal(3000)
    >>> np.allclose(iterative_sketching(A, b, rng=1).x, np.linalg.lstsq(A, b, rcond=None)[0])
    True
    """
    op, B, vector, d, eps, cutoff = _prepare(A, b, rng=rng, damp=damp, sketch=sketch,
                                             sketch_size=sketch_size, cond=cond)
    tol = _check_tol(tol, eps)
    beta = first_beta = min(0.5, op.shape[1] / d)
    default_budget = maxiter is None
    if default_budget:
        maxiter = _momentum_iterations(beta, eps)
    maxiter = check_int("maxiter", maxiter, 1)
    xp = op.xp
    P, X = _factor(op, B, d=d, sketch=sketch, rng=rng, cutoff=cutoff, preconditioner="auto")
    step = xp.zeros_like(X)
    converged = False
    best = None         # the _Iterate of the lowest estimate, never a diverging one
    iterations = 0
    moved = False       # a step taken since the start (or a restart)
    diverging = False
    phase = []          # the largest estimate of each step since the start or a restart
    lowest_two = (math.inf, math.inf)   # phase's two lowest
    above = 0           # steps in a row with the estimate tenfold past the reference
    while True:
        R, G = op.residual(X, B)
        r_norms, x_norms = _norms(R, X, op.damp)
        estimate = P.kw(G, r_norms, x_norms)
        done = estimate <= tol * P.norm_estimate
        # steps at rounding level end the iteration, but only the estimate
        # says whether it converged (x diverging to 1e155 once read as both)
        small_step = _column_norms(step) <= eps * x_norms
        if bool(xp.all(done | (small_step & moved))):
            converged = bool(xp.all(done))
            break
        moved = True
        worst = float(xp.max(estimate))
        x_norm = float(xp.max(x_norms))
        # Diverging: the estimate stays tenfold past the phase's second-lowest
        # (its lowest may be a noise low at the rounding floor) for
        # _ABOVE_STEPS steps, or is not finite, or x grows tenfold past the
        # best iterate's norm (largest column: a column whose solution is
        # about 0 has a norm of rounding noise) while the estimate does not
        # at least halve.  The estimate alone misses it where it starts near
        # its ceiling (a relative backward error is at most about ||A||_2 /
        # ||A||_F: 0.15 rising to 0.21 at 1000 x 30 with d = 36, while x grew
        # to 1e112; with d = n it drifted down 1 % while ||x|| grew from 53
        # to 1e25).  Not the residual's norm: at condition numbers near 1e12
        # its rounding floor (u cond(A) ||A|| ||x||, far above a small
        # optimal residual) varies tenfold between steps.
        if best is not None:
            reference = lowest_two[1] if len(phase) > 1 else best.worst
            above = 0 if worst <= _DIVERGED * reference else above + 1
            diverging = (above >= _ABOVE_STEPS or not math.isfinite(worst)
                         or (x_norm > _DIVERGED * best.x_norm
                             and not worst <= 0.5 * best.worst))
        if not diverging and (best is None or worst < best.worst):
            best = _Iterate(worst, X, R, estimate, x_norm)
        phase.append(worst)
        low, second = lowest_two
        lowest_two = (worst, low) if worst < low else (low, min(second, worst))
        # Crawling: the default budget is spent, this step is the phase's
        # best, and the best of its last third is under half the best before
        # (at 1000 x 30 with d = 3n, one seed in six ended 6e-7 off at
        # condition number 1, 1e-3 at 1e4).  Not earlier, and not at a
        # rounding floor, where single estimates vary by more than 2
        # (backing off on a slow step anywhere left more runs unconverged).
        window = max(10, len(phase) // 3)
        spent = default_budget and iterations == maxiter and len(phase) > window
        crawling = spent and worst <= low and min(phase[:-window]) > 2 * worst
        # Stalled: the first budget is spent with the estimate of its last
        # third above 3e-2 of its start, rising or falling a few percent a
        # step (1000 x 20 standard problems, 540 runs over three sketches,
        # four sizes, float32 and float64 and condition numbers up to 1e6:
        # 10 ended unconverged, forward errors up to 0.45 in float64 with
        # Gaussian sketches of 4n rows; none now).  Once only, and not at
        # 1e-2: at condition number 1e12 the estimate stops at a floor above
        # tol not far below its start, and restarts there cost longer
        # budgets (1e-2: 2.7 times the steps; 3e-2: 1.7 times, 1060 a run
        # against 615).
        stalled = spent and beta == first_beta and min(phase[-window:]) > 3e-2 * phase[0]
        if (diverging or crawling or stalled) and beta < _MOST_MOMENTUM:
            # the sketch distorts more than beta assumes (diverging: a sparse
            # sign sketch of 1.5n rows, 3000 x 100, in every seed).  Halve the
            # gap of the distortion's square to 1, from the best iterate.
            beta = (1 + beta) / 2
            X, step, moved = best.X, xp.zeros_like(X), False
            phase, lowest_two = [], (math.inf, math.inf)
            if default_budget:
                maxiter = iterations + _momentum_iterations(beta, eps)
            continue
        if iterations == maxiter or not bool(xp.isfinite(estimate).all()):
            break           # out of iterations, or diverged
        step = (1 - beta) ** 2 * P.apply(P.apply_t(G)) + beta * step
        X = X + step
        iterations += 1
    if not converged and best is not None and (
            diverging or not float(xp.max(estimate)) <= _DIVERGED * best.worst):
        # diverged: the best iterate, not the blown-up last one (a run that
        # merely crawls ends on its last, whose forward error is the better)
        X, R, estimate = best.X, best.R, best.estimate
    return _result(X, vector, iterations=iterations, converged=converged, estimate=estimate,
                   residual=xp.linalg.norm(R, axis=0), op=op, P=P,
                   method="iterative_sketching")


class _Iterate(NamedTuple):
    """An iterate of :func:`iterative_sketching` kept as the best so far."""

    worst: float            # its largest backward-error estimate
    X: object
    R: object               # its residual
    estimate: object
    x_norm: float           # its largest column norm


# Steps in a row for which iterative sketching's estimate must stay tenfold
# past the phase's second-lowest to count as diverging: at the rounding floor
# single estimates scatter over more than that (2.7e-14 to 3.9e-13 in one
# run), and read as divergence they cost restarts: 600 x 20 standard
# problems at condition numbers 1e6 to 1e10, 12 seeds each, took 2500-2800
# steps instead of 33 in 7 of 36 with one step past the lowest, in 4 with
# three, in none with three past the second-lowest (a factor of 100
# instead of ten, in one step, spared all 36 but missed a divergence in a
# crawl: 8e-5 off instead of under 1e-14).
_ABOVE_STEPS = 3
# Momentum past which iterative sketching stops backing off (four halvings
# of the gap from 1/2: a distortion of 0.985, where d is barely above n).
_MOST_MOMENTUM = 0.95


def _momentum_iterations(beta, eps):
    """Steps that contract an error by the unit roundoff at momentum beta, plus 10."""
    return math.ceil(2 * math.log(1 / eps) / math.log(1 / beta)) + 10


iterative_sketching.__doc__ %= _COMMON_PARAMETERS


def min_norm(A, b, *, tol: float | None = None, refinements: int = 4, maxiter: int = 100,
             sketch: str = "saso", sketch_size: int | None = None, rng=None) -> LstsqResult:
    """Minimum-norm solution of an underdetermined system ``A x = b`` (A wide).

    Preconditions with a sketch from the right, ``S A.T = U Sigma V^T``,
    ``P = V Sigma^{-1}`` (or the QR form), starts from
    ``x = A.T P P^T b`` and refines x itself: each step computes
    ``r = b - A x`` from the current x, solves ``(P^T A A^T P) w = P^T r``
    by CG and adds the minimum-norm correction ``A.T P w``, whose pass also
    gives the next ``A x``.  Refining x rather than y in ``x = A.T y`` keeps
    the residual that of the x returned: the backward error reaches about u
    up to cond(A) near 1e9.  Beyond, the corrections' rounding (up to about
    u cond(A)^2 of r) sets a floor: a few u at cond 1e10, near 1e-11 at
    1e12.  A step that does not halve the estimate ends the refinement
    unconverged there, and each column's best iterate is returned.  For
    dense A with larger cond, LAPACK (``scipy.linalg.lstsq``) is backward
    stable.

    Parameters
    ----------
    A : (M, N) array_like, sparse matrix or LinearOperator (host or CuPy)
        Wide real matrix of full row rank (M <= N).
    b : (M,) or (M, K) array_like
    tol : float, optional
        Target of ``||b - A x|| / (||A||_F ||x|| + ||b||)``, default eps.
    refinements, maxiter, sketch, sketch_size, rng
        As in :func:`spir`.

    Returns
    -------
    LstsqResult
        ``backward_error_estimate`` is the normwise backward error of the
        consistent system, ``||b - A x|| / (||A||_F ||x|| + ||b||)``, with
        ``||A||_F`` estimated from the sketch.

    Examples
    --------
    >>> import numpy as np
    >>> from randla.solve import min_norm
    >>> rng = np.random.default_rng(0)
    >>> A = rng.standard_normal((40, 3000)); b = rng.standard_normal(40)
    >>> np.allclose(min_norm(A, b, rng=1).x, np.linalg.pinv(A) @ b)
    True
    """
    op, B, vector, d, eps, _ = _prepare(A, b, rng=rng, sketch=sketch, sketch_size=sketch_size,
                                        wide_ok=True)
    m, n = op.shape
    if m > n:
        raise ValueError(f"A must be wide (m <= n) for min_norm, got shape {op.shape}")
    tol = _check_tol(tol, eps)
    refinements = check_int("refinements", refinements, 1)
    maxiter = check_int("maxiter", maxiter, 1)
    opt = op.T      # n x m, tall: A A^T = opt.normal, and opt.residual(Z, X) = X - A^T Z, A (X - A^T Z)
    xp = op.xp
    P, _ = _factor(opt, None, d=d, sketch=sketch, rng=rng, cutoff=DEFAULT_CUTOFF_EPS * eps,
                   preconditioner="auto")
    b_norms = xp.linalg.norm(B, axis=0)
    # x0 = A^T (A A^T)^{-1} b through the sketch, and A x0 in the same pass
    X, AX = opt.residual(-P.apply(P.apply_t(B)), xp.zeros((n, B.shape[1]), dtype=op.dtype))
    iterations = 0
    previous = best = None
    for step in range(refinements + 1):
        Rm = B - AX
        r_norms, x_norms = _norms(Rm, X, 0.0)
        # ||r|| / (||x|| + ||b|| / ||A||_F): the backward error times ||A||_F
        # (NaN where x or r is: a NaN denominator must not read as 0)
        denominator = x_norms + (b_norms / P.norm_estimate if P.norm_estimate > 0
                                 else xp.full_like(b_norms, xp.inf))      # A = 0: x = 0
        scaled = r_norms / xp.where(denominator > 0, denominator, 1)
        # each column's best iterate: near the rounding floor a step can
        # make the residual worse
        if best is None:
            best = (X, r_norms, scaled)
        else:
            better = scaled < best[2]
            best = (xp.where(better, X, best[0]), xp.where(better, r_norms, best[1]),
                    xp.where(better, scaled, best[2]))
        done = best[2] <= tol * P.norm_estimate
        # a step that does not halve the error of any open column has stalled
        # at what rounding allows: stop there
        stalled = step >= 2 and bool(xp.all((scaled > 0.5 * previous) | done))
        if bool(done.all()) or stalled or step == refinements or not bool(
                xp.isfinite(scaled).all()):
            break
        previous = scaled
        C = P.apply_t(Rm)
        # ||P^T r'|| ~ ||A^+ r'|| >= ||r'|| / ||A||, so a CG residual below
        # tol ||x|| / 10 leaves a residual r' that meets the test
        floor = xp.maximum(eps * xp.linalg.norm(C, axis=0), 0.1 * tol * x_norms)
        W, its, _ = _pcg(lambda Z: P.apply_t(opt.normal(P.apply(Z))), C,
                         lambda res: (xp.linalg.norm(res, axis=0) <= floor) | done, maxiter)
        iterations += its
        # x += A^T P w, and A x recomputed from the new x in the same pass
        X, AX = opt.residual(-P.apply(W), X)
    X, r_norms, scaled = best
    return _result(X, vector, iterations=iterations, converged=bool(xp.all(done)),
                   estimate=scaled, residual=r_norms, op=opt, P=P, method="min_norm")
