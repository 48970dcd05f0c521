"""EPSI and Lazy-EPSI: error-powered sketched inverse iteration (Xu & Lu, arXiv:2502.07993).

The target is a symmetric PSD M: ``M = AᵀA`` (right singular vectors of A,
each product one pass with A and one with Aᵀ) or a symmetric PSD A itself.
``Â = Z Zᵀ`` is a cheap low-rank approximation of M (from a randomized SVD of
A, or a Nyström approximation of A), shrunk by a factor ``rho`` so that
``σ̂I − Â`` stays positive definite near the target.  One step for a vector u
with Rayleigh quotient σ̂ is

    g = σ̂u − Mu,   δ = (σ̂I − Â)⁻¹g,   u ← (u − δ)/‖u − δ‖,

inverse iteration applied to the sketching error M − Â.  The solve is the
Woodbury formula ``(σI − ZZᵀ)⁻¹g = (g + Z(σI − ZᵀZ)⁻¹Zᵀg)/σ`` with one
ℓ x ℓ Cholesky factorization, which doubles as the definiteness guard: if it
fails the factor is shrunk further, and after that the vector takes a power
step ``u ← Mu`` instead (counted in ``fallbacks``): that raises its Rayleigh
quotient, so a start far below Â's top value climbs to where the guard
holds, and the Rayleigh–Ritz step follows as usual.  Convergence is
judged on true residuals ``‖Mu − θu‖`` only, so a failed update can slow the
iteration down but never produce a wrong answer reported as converged.

Host (numpy / scipy) and GPU (CuPy / cupyx) operands run the same code.  The
column updates of a sweep are sequential by nature: each column costs two
small device-to-host reads on the GPU (the definiteness guard and the norm
of the update), and each sweep one more (the residuals for the stopping test).
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np

from .._backend import get_backend
from .._checks import check_int
from ..sketch import as_rng_state
from ._lowrank import _orth, _project_out, _shifted_nystrom, scaled_qb
from ._operand import Operand

__all__ = ["EPSIResult", "epsi", "lazy_epsi"]

# Extra factors tried on Â, in turn, when the definiteness guard fails.
_SHRINK_STEPS = (1.0, 0.9, 0.5, 0.1)
# The iteration stops when the last _STALL_SWEEPS sweeps have neither brought the
# largest residual 10 % below its best before them nor raised the sum of the Ritz
# values above its best before them by max(tol, _EPS_FACTOR·ε)·θ₁ (the rounding
# floor, or a stall).  The residual alone is not enough: before the asymptotic rate
# sets in it can rise for several sweeps while the Ritz values still improve (0.95^i
# spectrum, n = 300, k = 1: up 45 % over sweeps 3-6 while the value error fell 3x).
_STALL_SWEEPS = 4
# The default tol where 1e-10 is out of reach, and the smallest value change counted
# as progress, in multiples of the machine epsilon ε of the working precision:
# float32 residuals stalled below 7 ε (m x n up to 10^5 x 100, k <= 10, 3 spectra).
_EPS_FACTOR = 100


@dataclass(frozen=True)
class EPSIResult:
    """Top eigenpairs of M (or singular triplets of A) from (Lazy-)EPSI.

    Attributes
    ----------
    values : ndarray, shape (k,)
        Descending: singular values of A (``hermitian=False``) or eigenvalues
        of A (``hermitian=True``).  ``values``, ``vectors`` and
        ``left_vectors`` are arrays of A's library (CuPy for GPU input).
    vectors : ndarray, shape (n, k)
        Orthonormal right singular vectors / eigenvectors.
    left_vectors : ndarray, shape (m, k) or None
        Left singular vectors ``A v / σ`` (``hermitian=False`` only).
    residuals : numpy.ndarray, shape (k,)
        Eigen-residuals ``‖M v_j − θ_j v_j‖ / θ_1`` of the returned vectors,
        with θ the eigenvalues of M (``M = AᵀA`` for singular vectors); float64
        on the host for every input.
    converged : numpy.ndarray of bool, shape (k,)
        ``residuals <= tol`` (host), for a value no smaller than Â's j-th
        eigenvalue (Â ≼ M, so a smaller one is not M's j-th: a ``v0`` of
        eigenvectors further down converges to them, reported unconverged).
        The test only sees what Â resolves: where the gap to the value
        below is smaller than Â's shortfall, such a pair passes it (σ =
        1, 0.999, 0.998, ... and ``v0`` the second singular vector: 0.999
        reported converged as the top value).
    sweeps : int
        EPSI sweeps done (each followed by a Rayleigh–Ritz step).
    passes : int
        Block products with A or Aᵀ, the initial sketch included.
    matvecs : int
        Vectors multiplied by A or Aᵀ.
    fallbacks : int
        Updates replaced by a power step because ``σ̂I − Â`` was not
        positive definite even after extra shrinking.
    """

    values: np.ndarray
    vectors: np.ndarray
    left_vectors: np.ndarray | None
    residuals: np.ndarray
    converged: np.ndarray
    sweeps: int
    passes: int
    matvecs: int
    fallbacks: int


class _Target:
    """M applied through the operand, with Rayleigh–Ritz and residuals."""

    def __init__(self, op: Operand, hermitian: bool):
        self.op = op
        self.hermitian = hermitian

    def rayleigh_ritz(self, Q):
        """Ritz pairs of M on span(Q) (orthonormal), descending, with M·vectors."""
        bk = self.op.backend
        if self.hermitian:
            MQ = self.op.matmat(Q)
            H = Q.T @ MQ
            theta, T = bk.eigh((H + H.T) / 2)
            T, theta = T[:, ::-1], theta[::-1]
            return Q @ T, theta, MQ @ T, None, theta
        # SVD of A Q through its QR: numpy's SVD of a tall block costs
        # several times its CholeskyQR2 (4.4 against 1.0 s at 10^6 x 40 on
        # the loaded CI machine)
        Qa, Ra = bk.tall_qr(self.op.matmat(Q))
        Ur, s, Tt = bk.svd(Ra)
        left = Qa @ Ur
        V = Q @ Tt.T
        MV = self.op.rmatmat(left * s)
        return V, s ** 2, MV, left, s


def _residuals(V, theta, MV):
    """Relative eigen-residuals as a host float64 array (one device read)."""
    xp = get_backend(V).xp
    scale = max(float(theta[0]), np.finfo(np.float64).tiny)
    return get_backend(V).to_host(
        xp.linalg.norm(MV - V * theta, axis=0).astype(np.float64)) / scale


def _sweep(V, sigmas, MV, WL, gram, rho, stats):
    """One Lazy-EPSI sweep over the columns of V (Ritz values ``sigmas`` on the host);
    returns the new basis P."""
    bk = get_backend(V)
    xp = bk.xp
    n, k = V.shape
    identity = xp.eye(len(gram))      # the small shifted systems are solved in float64
    P = xp.empty_like(V)
    C = xp.empty((k, WL.shape[1]), dtype=WL.dtype)    # C = Pᵀ WL, row by row
    for j in range(k):
        u, sigma = V[:, j], float(sigmas[j])
        g = sigma * u - MV[:, j]
        Pj, Cj = P[:, :j], C[:j]
        w = None
        if sigma > 0:
            ZtZ, Ztg = gram, WL.T @ g
            if j:    # remove the part of Â on the vectors already updated
                ZtZ = ZtZ - Cj.T @ Cj
                Ztg = Ztg - Cj.T @ (Pj.T @ g)
            factor = None
            for step in (_SHRINK_STEPS if rho < 1 else (1.0,)):
                r = rho * step
                try:
                    # Guard: Cholesky of σI − r·ZᵀZ exists iff σI − Â is definite here.
                    factor = bk.cholesky(sigma * identity - r * ZtZ)
                    break
                except np.linalg.LinAlgError:
                    continue
            if factor is not None:
                rhs = Ztg.astype(np.float64)[:, None]
                y = r * bk.solve_triangular(factor, bk.solve_triangular(factor, rhs, trans=True))
                y = y[:, 0].astype(WL.dtype)
                delta = g + WL @ y
                if j:
                    delta = delta - Pj @ (Cj @ y)
                delta = delta / sigma
                w = _project_out(Pj, u - delta)
        norm = float(xp.linalg.norm(w)) if w is not None else 0.0
        if not (math.isfinite(norm) and norm > 0):
            # a power step instead: it raises the Rayleigh quotient (M is
            # PSD), toward where the guard holds; keeping u as it was left a
            # start far below Â's top value (epsi from v0 = ones) stuck
            stats["fallbacks"] += 1
            w = _project_out(Pj, MV[:, j])
            norm = float(xp.linalg.norm(w))
            if not (math.isfinite(norm) and norm > 0):
                w = _project_out(Pj, u)
                norm = float(xp.linalg.norm(w))
        if norm == 0:
            w = _project_out(Pj, xp.roll(u, 1))
            norm = float(xp.linalg.norm(w))
        P[:, j] = w / norm
        C[j] = P[:, j] @ WL
    return bk.tall_qr(P)[0]


def _sweeps_left(residuals, sums, maxiter, rise):
    """Whether another sweep may run, given the largest residual and the sum of the
    Ritz values after each so far, and the rise of that sum that counts as progress."""
    if len(residuals) > maxiter:
        return False
    if len(residuals) > _STALL_SWEEPS:
        before, recent = slice(None, -_STALL_SWEEPS), slice(-_STALL_SWEEPS, None)
        return (min(residuals[recent]) < 0.9 * min(residuals[before])
                or max(sums[recent]) > max(sums[before]) + rise)
    return True


def _check_tol(tol, dtype):
    """tol as a float; None gives 1e-10, or _EPS_FACTOR·ε where that is larger."""
    if tol is None:
        return max(1e-10, _EPS_FACTOR * float(np.finfo(dtype).eps))
    if (isinstance(tol, bool) or not isinstance(tol, numbers.Real)
            or not (tol > 0 and math.isfinite(tol))):
        raise ValueError(f"tol must be a positive finite number, got {tol!r}")
    return float(tol)


def _check_rho(shrink):
    if shrink is None:
        return None
    if isinstance(shrink, bool) or not isinstance(shrink, numbers.Real) or not 0 < shrink <= 1:
        raise ValueError(f"shrink must lie in (0, 1], got {shrink!r}")
    return float(shrink)


def _default_shrink(values_hat, k):
    """Shrink factor ρ for Â: a margin of 1 % of the sketched relative gap after value k.

    Â ≼ M already holds for both sketches, so σ̂I − Â is only near-singular at
    the target; a margin much smaller than the gap keeps it definite without
    slowing the contraction on the neighbouring directions.
    """
    lam = np.asarray(values_hat, dtype=np.float64)   # host values
    gap = (lam[k - 1] - lam[k]) / lam[k - 1] if len(lam) > k and lam[k - 1] > 0 else 0.1
    return 1.0 - float(np.clip(0.01 * gap, 1e-6, 0.1))


def _initial(op, k, hermitian, sketch_size, power_iters, rng, v0):
    """Start vectors, the low-rank factor WL of Â (Â = WL WLᵀ before shrinking) and
    Â's eigenvalues (host)."""
    bk, xp = op.backend, op.xp
    state = as_rng_state(rng)
    if hermitian:
        # Nyström from the test matrix orth(A^q G): q subspace iterations sharpen Â
        # as they sharpen a randomized SVD (Â ≼ A holds for any test matrix).
        omega = bk.qr(op.gaussian(sketch_size, state)[0])[0]
        for _ in range(power_iters):
            omega = _orth(op.matmat(omega))
        factor = _shifted_nystrom(op, omega)
        if factor is None:      # AΩ = 0: Â = 0, and any start is as good as another
            U, values = omega, xp.zeros(0)
        else:
            _, nu, U, s, _ = factor
            values = xp.maximum(s.astype(np.float64) ** 2 - nu, 0.0)
        lam = bk.to_host(values)
        # Nyström eigenvalues descend and are >= 0: the positive ones lead.
        keep = int(np.count_nonzero(lam > 0))
        WL = U[:, :keep] * xp.sqrt(values[:keep]).astype(op.dtype)
        lam = lam[:keep]
        start = U[:, :k]
    else:
        # a randomized SVD of op's scaled A, in the units of M = (scale A)ᵀ(scale A)
        _, B, _ = scaled_qb(op, sketch_size, power_iters, "subspace", 2, state)
        _, s, Vt = bk.svd(B)
        s, Vt = s[:sketch_size], Vt[:sketch_size]   # B may hold the 2 error-estimate columns
        WL = Vt.T * s
        lam = bk.to_host(s).astype(np.float64) ** 2
        start = Vt[:k].T
    if v0 is not None:
        start = v0
    return xp.ascontiguousarray(start), xp.ascontiguousarray(WL), lam


def lazy_epsi(A, k: int, *, hermitian: bool = False, sketch_size: int | None = None,
              power_iters: int = 1, shrink: float | None = None, tol: float | None = None,
              maxiter: int = 50, v0=None, rng=None) -> EPSIResult:
    """Top-k singular vectors of A (or eigenvectors of a PSD A) by Lazy-EPSI.

    A randomized SVD (or Nyström) sketch of width ``sketch_size`` gives the
    start vectors and Â.  Each sweep updates the vectors one after the other
    by an EPSI step against ``P⊥ÂP⊥`` (P: the vectors already updated in
    this sweep), then a Rayleigh–Ritz step on their span restores the best
    vectors and values.  Iteration stops when every eigen-residual
    ``‖Mv_j − θ_jv_j‖ <= tol · θ_1``.

    Parameters
    ----------
    A : array_like, sparse matrix or LinearOperator
        Real m x n matrix; with ``hermitian=True`` symmetric positive
        semidefinite (assumed, not checked).  Host (numpy, scipy.sparse,
        scipy LinearOperator) or GPU (CuPy, cupyx.scipy.sparse, cupyx
        LinearOperator) data; the result's arrays are of the same library.
    k : int
        Number of vectors, ``1 <= k < min(m, n)``.
    hermitian : bool, default False
        False: singular vectors, ``M = AᵀA`` (one pass with A and one with Aᵀ
        per sweep).  True: eigenvectors of A, Â from Nyström (one pass per
        sweep).
    sketch_size : int, optional
        Rank ℓ of Â, ``k < ℓ <= min(m, n)``; default ``min(2k + 10, min(m, n))``.
    power_iters : int, default 1
        Subspace iterations of the sketch: of the initial randomized SVD
        (``hermitian=False``; a pass with Aᵀ and one with A each), or of the
        Nyström test matrix, ``orth(A^q G)`` for a Gaussian G
        (``hermitian=True``; one pass each).
    shrink : float in (0, 1], optional
        Factor ρ applied to Â.  Default: ``1 − ρ`` is 1 % of the relative gap
        the sketch sees after the k-th value (clipped to [1e-6, 0.1]).
        ``shrink=1`` disables it (then σ̂I − Â may be indefinite: see the
        notes).
    tol : float, optional
        Relative eigen-residual to reach.  Default 1e-10, or 100 ε where that
        is larger (ε the machine epsilon of A's precision): 1.2e-5 for
        float32 A, whose residuals stall at a few ε (below 7 ε, 8e-7, in our
        measurements), far above 1e-10.
    maxiter : int, default 50
        Maximum number of sweeps.  The iteration also stops when four sweeps
        have neither lowered the largest residual by 10 % nor raised the sum
        of the Ritz values by ``max(tol, 100 ε)·θ_1``: the rounding floor,
        or a stall; ``converged`` tells which case it
        was.  Slow, steady progress means a small gap after value k: a larger
        ``sketch_size`` is the cure.
    v0 : array_like, shape (n, k), optional
        Start vectors instead of the sketch's, of A's library.
    rng : None, int, numpy.random.Generator or RNGState

    Returns
    -------
    EPSIResult

    Raises
    ------
    TypeError
        If k, sketch_size, power_iters or maxiter is not an integer, or A and
        v0 are of different libraries (host and GPU).
    ValueError
        If k is not in ``[1, min(m, n))``, v0 is not finite or its columns
        are linearly dependent, or another argument is out of range.

    Notes
    -----
    An update whose shifted system fails the Cholesky guard even after
    shrinking Â by 0.9, 0.5 and 0.1 more is replaced by a power step
    ``u ← Mu`` (a start whose Rayleigh quotients lie far below Â's top value,
    such as a poor ``v0``, climbs this way until the guard holds); with
    ``shrink=1`` there is no shrinking at all, retries included.  The
    iteration stops at ``maxiter`` sweeps, or earlier when four sweeps in a
    row neither cut the largest residual by 10 % nor raised the Ritz values
    (a stall), with ``converged`` False for the pairs that missed tol; it
    never reports an unconverged vector as converged.

    Examples
    --------
    >>> import numpy as np
    >>> from randla.eig import lazy_epsi
    >>> rng = np.random.default_rng(0)
    >>> U, _ = np.linalg.qr(rng.standard_normal((300, 100)))
    >>> V, _ = np.linalg.qr(rng.standard_normal((100, 100)))
    >>> s = 1.0 / np.arange(1, 101)
    >>> res = lazy_epsi((U * s) @ V.T, 5, rng=0)
    >>> bool(res.converged.all()), np.allclose(res.values, s[:5], rtol=1e-12)
    (True, True)
    """
    if not isinstance(hermitian, (bool, np.bool_)):
        raise TypeError(f"hermitian must be True or False, got {hermitian!r}")
    op = Operand(A)
    m, n = op.shape
    if hermitian and m != n:
        raise ValueError(f"hermitian=True needs a square A, got shape {op.shape}")
    k = check_int("k", k, 1)
    if k >= min(m, n):
        raise ValueError(f"k must be less than min(A.shape) = {min(m, n)}, got {k}")
    if sketch_size is None:
        sketch_size = min(2 * k + 10, min(m, n))
    sketch_size = check_int("sketch_size", sketch_size, k + 1)
    if sketch_size > min(m, n):
        raise ValueError(f"sketch_size must not exceed min(A.shape) = {min(m, n)}, "
                         f"got {sketch_size}")
    power_iters = check_int("power_iters", power_iters, 0)
    rho = _check_rho(shrink)
    tol = _check_tol(tol, op.dtype)
    maxiter = check_int("maxiter", maxiter, 0)
    if v0 is not None:
        get_backend(op.A, v0)
        v0 = get_backend(v0).xp.asarray(v0)
        if v0.shape != (n, k):
            raise ValueError(f"v0 must have shape {(n, k)}, got {v0.shape}")
        if v0.dtype.kind not in "biuf":
            raise TypeError(f"v0 must hold real numbers, got dtype {v0.dtype}")
        if not bool(get_backend(v0).xp.isfinite(v0).all()):
            raise ValueError("v0 must be finite (it holds NaN or inf)")
        v0 = op.xp.asarray(v0, dtype=op.dtype)
        # columns at unit size first: their scale says nothing about dependence
        # (a column of 1e-20 beside ones was refused, one of 1e308 overflowed)
        sizes = op.xp.max(op.xp.abs(v0), axis=0)
        v0, R = op.backend.qr(v0 / op.xp.where(sizes > 0, sizes, 1))   # the start: orthonormal
        pivots = op.backend.to_host(op.xp.abs(op.xp.diag(R)))
        if not pivots.max() > 0 or pivots.min() <= k * float(np.finfo(op.dtype).eps) * pivots.max():
            raise ValueError("v0 must have linearly independent columns (a nonzero v0 "
                             "for epsi)")

    start, WL, lam = _initial(op, k, hermitian, sketch_size, power_iters, rng, v0)
    if rho is None:
        rho = _default_shrink(lam, k)
    target = _Target(op, hermitian)
    V, theta, MV, left, values = target.rayleigh_ritz(start)
    residuals = _residuals(V, theta, MV)
    sigmas = op.backend.to_host(theta).astype(np.float64)
    gram = WL.T @ WL
    stats = {"fallbacks": 0}
    rise = max(tol, _EPS_FACTOR * float(np.finfo(op.dtype).eps))   # times θ₁
    largest, sums = [residuals.max()], [sigmas.sum()]
    while _sweeps_left(largest, sums, maxiter, rise * sigmas[0]) and residuals.max() > tol:
        P = _sweep(V, sigmas, MV, WL, gram, rho, stats)
        V, theta, MV, left, values = target.rayleigh_ritz(P)
        residuals = _residuals(V, theta, MV)
        sigmas = op.backend.to_host(theta).astype(np.float64)
        largest.append(residuals.max())
        sums.append(sigmas.sum())
    values = values / op.scale      # of A, not of op's scaled A (see Operand.scale)
    return EPSIResult(values.astype(op.dtype), V, left, residuals,
                      (residuals <= tol) & _ranked(sigmas, lam, rise),
                      len(largest) - 1, op.passes, op.matvecs, stats["fallbacks"])


def _ranked(theta, lam, rise):
    """Which Ritz values θ_j (descending) can be M's j-th: Â ≼ M, so M's j-th
    value is at least Â's ``lam[j]`` (to rounding, ``rise`` times the
    largest).  A pair below it is an eigenpair of M further down, whatever its
    residual: a v0 of other eigenvectors is a fixed point of the iteration
    (``v0`` = the second singular vector gave σ₂ as the top one, converged)."""
    held = min(len(theta), len(lam))
    scale = max(float(theta[0]) if len(theta) else 0.0, float(lam[0]) if len(lam) else 0.0)
    ranked = np.ones(len(theta), dtype=bool)
    ranked[:held] = theta[:held] >= lam[:held] - rise * scale
    return ranked


def epsi(A, *, hermitian: bool = False, sketch_size: int | None = 20, power_iters: int = 1,
         shrink: float | None = None, tol: float | None = None, maxiter: int = 100, v0=None,
         rng=None) -> EPSIResult:
    """Top singular vector of A (or eigenvector of a PSD A) by EPSI.

    EPSI is Lazy-EPSI with k = 1: each sweep is one step
    ``u ← (σ̂I − Â)⁻¹(M − Â)u`` (normalised); for one vector the Rayleigh–Ritz
    step only recomputes σ̂ and the product Mu for the next step.

    Parameters
    ----------
    A, hermitian, power_iters, shrink, tol, rng
        As in :func:`lazy_epsi`.
    sketch_size : int, default 20
        Rank ℓ of Â, at least 2 (capped at ``min(A.shape)``); None means 20.
    maxiter : int, default 100
        Most sweeps (the stall rule of :func:`lazy_epsi` may stop it sooner).
    v0 : array_like, shape (n,), optional
        Start vector instead of the sketch's.

    Returns
    -------
    EPSIResult
        With k = 1.

    Examples
    --------
    >>> import numpy as np
    >>> from randla.eig import epsi
    >>> rng = np.random.default_rng(1)
    >>> A = rng.standard_normal((200, 50)) * np.linspace(1, 0.1, 50)
    >>> res = epsi(A, rng=0)
    >>> bool(res.converged[0]), bool(np.isclose(res.values[0], np.linalg.norm(A, 2)))
    (True, True)
    """
    shape = tuple(A.shape) if hasattr(A, "shape") else np.shape(A)
    if len(shape) != 2:
        raise ValueError(f"A must be 2-D, got shape {shape}")
    if min(shape) < 2:
        # lazy_epsi's k = 1 must lie below min(A.shape); epsi has no k to blame
        raise ValueError(f"epsi needs min(A.shape) >= 2, got shape {shape}")
    if v0 is not None:
        xp = get_backend(v0).xp
        v0 = xp.asarray(v0)
        # (n,) as documented, or (n, 1): not any shape with n entries
        if v0.ndim == 2 and v0.shape[1] == 1:
            v0 = v0[:, 0]
        if v0.shape != (shape[1],):
            raise ValueError(f"v0 must have shape {(shape[1],)}, got {v0.shape}")
        v0 = v0.reshape(-1, 1)
    sketch_size = check_int("sketch_size", 20 if sketch_size is None else sketch_size, 2)
    return lazy_epsi(A, 1, hermitian=hermitian, sketch_size=min(sketch_size, min(shape)),
                     power_iters=power_iters, shrink=shrink, tol=tol, maxiter=maxiter, v0=v0,
                     rng=rng)
