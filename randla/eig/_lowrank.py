"""Randomized range finder, QB, randomized SVD and Nyström (Halko, Martinsson & Tropp,
arXiv:0909.4061; the error estimate after Epperly & Tropp).

Every driver reports a leave-one-out estimate of its Frobenius error.  For a
basis Y = A G of Gaussian columns g_i, the distance of y_i to the span of the
other columns is the error of that smaller basis on the independent probe
g_i, so its square is an unbiased sample of ‖A − P₋ᵢA‖²_F, which is at least
the error of the whole basis.  With Y = QR that distance is
1/‖row i of R⁻¹‖ (Epperly & Tropp).  With power or Krylov iterations only
columns drawn fresh on the last pass are independent of the rest of the
basis, so those columns carry the estimate.  Where fewer of their
directions fit into the basis than there are fresh columns (it reaches
min(m, n) columns), their distances to the basis alone are the samples:
a full basis spans A's range in exact arithmetic, but Krylov blocks of a
clustered spectrum lose rank and fill the room with rounding (5 singular
values 1, 25 of 1e-2, 30 of 1e-4: an error of 2.8e-4 with 60 of 60
columns).
The reported number is an upper confidence estimate built from these
samples (see ``_upper_estimate``): it errs high, and bounds the true error
in most runs, not all: in >= 99 % of 100 seeded runs on the test spectra
below, but in 93-99 % of 400 on a 300 x 150 matrix with singular values
0.7^i (k = 20, default oversampling, no power iterations: 94 %, one run
4x under the true error) and with few oversampling columns on a
clustered spectrum (oversample = 0: 94 %, one run 3x under).

The drivers take host (numpy / scipy) or GPU (CuPy / cupyx) operands and run
the same code on both: the arrays they return live in A's library; the error
estimate and the counts are Python numbers.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import gammaincinv

from .._backend import get_backend
from .._checks import check_int
from ..sketch import as_rng_state
from ._operand import Operand

__all__ = ["RangeFinderResult", "QBResult", "SVDResult", "NystromResult",
           "range_finder", "qb", "randomized_svd", "nystrom"]

# Standard errors added to the leave-one-out mean so the estimate errs high, and the
# chi-square level used when few directions dominate the error (see _upper_estimate).
# Measured for randomized_svd and nystrom on the 200 x 100 test spectra of tests/eig:
# covers the true error in >= 99 % of 100 seeded runs, median overestimate 1.0-1.8x.
# (Leave-one-out samples run low exactly when the whole sketch misses a direction,
# which is why a 5 % level covered only 97 % on fast decay.)
_CONFIDENCE = 4.0
_CHI2_LEVEL = 0.01
_METHODS = ("subspace", "krylov")


@dataclass(frozen=True)
class RangeFinderResult:
    """Orthonormal basis of an approximate range of A.

    Attributes
    ----------
    Q : ndarray, shape (m, w)
        Orthonormal columns, in A's working precision and array library.
    error_estimate : float
        Estimate of ``‖A − Q Qᵀ A‖_F`` that errs high (see module notes).
    passes : int
        Block products with A or Aᵀ.
    matvecs : int
        Vectors multiplied by A or Aᵀ.
    """

    Q: np.ndarray
    error_estimate: float
    passes: int
    matvecs: int


@dataclass(frozen=True)
class QBResult:
    """``A ≈ Q @ B`` with orthonormal Q.

    Attributes
    ----------
    Q : ndarray, shape (m, w)
    B : ndarray, shape (w, n)
        ``Qᵀ A``.
    error_estimate : float
        Estimate of ``‖A − Q B‖_F`` that errs high.
    passes, matvecs : int
        As in :class:`RangeFinderResult`.
    """

    Q: np.ndarray
    B: np.ndarray
    error_estimate: float
    passes: int
    matvecs: int


@dataclass(frozen=True)
class SVDResult:
    """Truncated SVD ``A ≈ U @ diag(s) @ Vt``, singular values descending.

    Attributes
    ----------
    U : ndarray, shape (m, k)
    s : ndarray, shape (k,)
    Vt : ndarray, shape (k, n)
    error_estimate : float
        Estimate of ``‖A − U diag(s) Vt‖_F`` that errs high.
    passes, matvecs : int
        As in :class:`RangeFinderResult`.
    """

    U: np.ndarray
    s: np.ndarray
    Vt: np.ndarray
    error_estimate: float
    passes: int
    matvecs: int


@dataclass(frozen=True)
class NystromResult:
    """Nyström approximation ``A ≈ U @ diag(eigenvalues) @ U.T`` of a PSD matrix.

    Attributes
    ----------
    U : ndarray, shape (n, k)
        Orthonormal eigenvector estimates.
    eigenvalues : ndarray, shape (k,)
        Non-negative, descending.
    error_estimate : float
        Estimate of ``‖A − U diag(eigenvalues) Uᵀ‖_F`` that errs high.
    passes, matvecs : int
        As in :class:`RangeFinderResult`.
    """

    U: np.ndarray
    eigenvalues: np.ndarray
    error_estimate: float
    passes: int
    matvecs: int


def _check_rank(name, value, limit):
    value = check_int(name, value, 1)
    if value > limit:
        raise ValueError(f"{name} must not exceed min(A.shape) = {limit}, got {value}")
    return value


def _orth(Y):
    return get_backend(Y).tall_qr(Y)[0]


def _orth_against(Q, Y, width=None):
    """Orthonormal basis of the part of Y outside span(Q) (orthonormal), orthogonal to Q.

    The trailing columns of a QR of [Q, Y]: orthonormal and orthogonal to Q
    to rounding even when that part of Y is rank-deficient or at rounding
    level (a converged Krylov block, an exactly low-rank A), where
    orthonormalising the projected Y would return directions inside span(Q).
    (CholeskyQR2 hands such blocks to Householder: see ``Backend.tall_qr``.)
    With ``width`` below their number, the ``width`` dominant directions of
    that part of Y, a rotation of those columns.
    """
    bk = get_backend(Y)
    Qn = _orth(bk.xp.hstack([Q, Y]))[:, Q.shape[1]:]
    if width is None or width >= Qn.shape[1]:
        return Qn
    U, _, _ = bk.svd(Qn.T @ Y)
    return Qn @ U[:, :width]


def _project_out(Q, Y):
    """Y with the span of the orthonormal Q removed (two Gram–Schmidt passes)."""
    if Q is None or Q.shape[1] == 0:
        return Y
    for _ in range(2):
        Y = Y - Q @ (Q.T @ Y)
    return Y


def _distances_squared(Z):
    """Squared distance of each column of Z to the span of the others (host float64
    array), and orth(Z)."""
    bk = get_backend(Z)
    xp = bk.xp
    Qz, Rz = bk.tall_qr(Z)
    g = Z.shape[1]
    try:
        # numpy warns about a near-singular R's overflow; CuPy never does.
        with np.errstate(over="ignore", invalid="ignore"):
            Rinv = bk.solve_triangular(Rz, xp.eye(g, dtype=Rz.dtype)).astype(np.float64)
            row_norms2 = bk.to_host(xp.sum(Rinv * Rinv, axis=1))
    except np.linalg.LinAlgError:     # LAPACK's report of an exactly singular R
        row_norms2 = np.full(g, np.inf)
    if np.all(np.isfinite(row_norms2)):
        return Qz, 1.0 / row_norms2
    # R is singular (exactly dependent columns; cuBLAS leaves infinities where LAPACK
    # raises): project each column off the numerical range of the others (rank cut
    # as in lstsq's default rcond).
    return Qz, np.array([_distance_squared_to_others(Z, i) for i in range(g)])


def _distance_squared_to_others(Z, i):
    bk = get_backend(Z)
    xp = bk.xp
    others = xp.concatenate([Z[:, :i], Z[:, i + 1:]], axis=1).astype(np.float64)
    z = Z[:, i].astype(np.float64)
    if others.shape[1] == 0:
        return float(z @ z)
    U, s, _ = bk.svd(others)
    cut = float(s[0]) * max(others.shape) * np.finfo(np.float64).eps
    U = U[:, :int(xp.count_nonzero(s > cut))]
    r = z - U @ (U.T @ z)
    return float(r @ r)


def _upper_estimate(samples):
    """Upper estimate of the norm whose squares the non-negative samples estimate.

    The larger of two: the mean plus four standard errors, and the mean
    scaled by ``g / χ²_g(1 %)``, the lower 1 % point of a mean of g
    one-degree chi-squares, which is what the samples are when one direction
    dominates the error (there the sample spread underestimates the spread).
    """
    samples = np.asarray(samples, dtype=np.float64)
    g = samples.size
    mean = float(samples.mean())
    if g < 2:
        return math.sqrt(mean * g / _chi2_lower(g))
    spread = float(samples.std(ddof=1)) / math.sqrt(g)
    return math.sqrt(max(mean + _CONFIDENCE * spread, mean * g / _chi2_lower(g)))


def _chi2_lower(g):
    return 2.0 * float(gammaincinv(g / 2.0, _CHI2_LEVEL))


def _range(op: Operand, width: int, power_iters: int, method: str, n_fresh: int, state):
    """Basis Q of at most min(m, n) columns, about ``width`` (+ fresh ones), the
    error samples, and the rounding to add to their estimate."""
    xp = op.xp
    if power_iters == 0:
        omega, state = op.gaussian(width, state)
        Y = op.matmat(omega)
        if width < min(op.shape):
            Q, d2 = _distances_squared(Y)
            return Q, d2, _rounding(Y)
        # Y spans A's range (leaving a column out would miss a direction A
        # has): the error is rounding.  A square Q (m <= n) spans
        # everything: about eps ||A||_F sqrt(m), and E ||Y||_F^2 =
        # width ||A||_F^2.  For tall A, (I - QQ^T) A = -(I - QQ^T) E Omega^-1
        # for Y's rounding E: cond(Omega) (heavy-tailed for a square
        # Gaussian) times eps ||A||_F.  Both measured 40-200 times above
        # the true error on Gaussian A.
        rounding = 10 * float(np.finfo(op.dtype).eps) * float(xp.linalg.norm(Y))
        if width < op.shape[0]:
            s = op.backend.to_host(xp.linalg.svd(omega, compute_uv=False))
            rounding *= (float(s[0] / s[-1]) if s[-1] > 0 else math.inf) / math.sqrt(width)
        return op.backend.tall_qr(Y)[0], np.full(width, rounding ** 2), 0.0
    # Columns beyond min(m, n) add nothing: Krylov blocks stop there, and the fresh
    # columns add only the directions that still fit to Q.  (No more of them than m,
    # so that their leave-one-out distances come from a square R.)
    room = min(op.shape) - width
    omega, state = op.gaussian(width, state)
    fresh, state = op.gaussian(min(n_fresh, op.shape[0]), state)
    Q = _orth(op.matmat(omega))
    blocks = [Q]
    iterations = 0 if method == "krylov" and room == 0 else power_iters
    fresh_images = None
    for it in range(iterations):
        Z = _orth(op.rmatmat(Q))
        # a Krylov block that fills the room is the last one: the fresh columns join it
        last = it == iterations - 1 or (method == "krylov" and room <= Z.shape[1])
        Y = op.matmat(xp.hstack([Z, fresh]) if last else Z)
        images, fresh_images = Y[:, :Z.shape[1]], Y[:, Z.shape[1]:]
        if method == "krylov":
            Q = _orth_against(xp.hstack(blocks), images, room)
            room -= Q.shape[1]
            blocks.append(Q)
        else:
            Q = _orth(images)
        if last:
            break
    if fresh_images is None:        # the first Krylov block filled the room
        fresh_images = op.matmat(fresh)
    basis = xp.hstack(blocks) if method == "krylov" else Q
    Z = _project_out(basis, fresh_images)
    if room < Z.shape[1]:
        # Not every fresh direction fits: the leave-one-out distances would
        # measure a basis with all the others, wider than the one returned
        # (a full Krylov basis of a clustered spectrum, whose blocks lose
        # rank and fill the room with rounding: estimates of 0.9-2.0e-4 for
        # an error of 2.7-2.9e-4).  Their distances to the basis alone are
        # independent samples of its error, and the fresh directions that
        # do fit only lower it.
        d2 = op.backend.to_host(xp.sum(Z * Z, axis=0)).astype(np.float64)
    else:
        _, d2 = _distances_squared(Z)
    if room > 0:
        basis = xp.hstack([basis, _orth_against(basis, Z, room)])
    return basis, d2, _rounding(fresh_images)


def _rounding(images) -> float:
    """10 eps ||A||_F, the rounding of the products that measure the error
    (added to the estimate, not to its random samples), from Gaussian images
    A g (mean squared norm ||A||_F^2).  The samples alone fell below errors
    at that level: 1.0-1.1e-15 against 1.2-1.5e-15 (relative) for a 200 x 100
    matrix of rank 5, k = 20."""
    bk = get_backend(images)
    eps = float(np.finfo(images.dtype).eps)
    mean = float(bk.to_host(bk.xp.sum(images * images))) / max(images.shape[1], 1)
    return 10 * eps * math.sqrt(mean)


def _validate_common(A, rank, oversample, power_iters, method):
    op = Operand(A)
    rank = _check_rank("k", rank, min(op.shape))
    oversample = check_int("oversample", oversample, 0)
    power_iters = check_int("power_iters", power_iters, 0)
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
    width = min(rank + oversample, min(op.shape))
    if width < min(2, min(op.shape)):       # a full basis needs no leave-one-out
        raise ValueError("the basis needs at least 2 columns for its error estimate: "
                         "raise k or oversample")
    return op, rank, oversample, power_iters, width


def range_finder(A, k: int, *, oversample: int = 10, power_iters: int = 0,
                 method: str = "subspace", rng=None) -> RangeFinderResult:
    """Orthonormal basis for the dominant range of A, with an error estimate.

    The basis never has more than ``min(m, n)`` columns: one that would be
    wider keeps the dominant directions of the last Krylov block, or of the
    fresh columns, that fit.  Such a full basis spans A's range up to
    rounding, except where Krylov blocks of a clustered spectrum lose rank
    (their rounding then takes room A's directions need); the error
    estimate covers both.

    Parameters
    ----------
    A : array_like, sparse matrix or LinearOperator
        Real m x n matrix; only products with A and Aᵀ are used.  numpy,
        scipy.sparse and scipy LinearOperators run on the host; CuPy arrays,
        cupyx.scipy.sparse matrices and cupyx LinearOperators on their GPU.
    k : int
        Target rank, ``1 <= k <= min(m, n)``.
    oversample : int, default 10
        Extra columns: the sketch has ``k + oversample`` columns (capped at
        ``min(m, n)``).  With ``power_iters > 0``, ``max(2, oversample)``
        further Gaussian columns (at most m) join the last pass and carry the
        error estimate; the basis gains their directions outside it.
        Without power iterations the estimate leaves out one column of the
        sketch at a time, so it measures a basis one column narrower: with
        ``oversample=0`` that of a rank k - 1 basis, often far above the true
        error (5.9e2 against 5e-13 for a 200 x 120 matrix of rank 7, k = 7),
        but not always above it (on a clustered spectrum it covered 94 % of
        400 runs, one 3x under); with 1 or more, close to it (5e-12).
    power_iters : int, default 0
        Subspace (or Krylov) iterations, each one pass with Aᵀ and one with A,
        re-orthonormalised by QR.
    method : {"subspace", "krylov"}
        ``"subspace"`` keeps the last block; ``"krylov"`` keeps all blocks
        (randomized block Krylov, a basis ``power_iters + 1`` times wider).
        Once the blocks fill ``min(m, n)`` columns the iterations stop, and
        the fresh columns join the pass that filled them (or, where the first
        block did, take one pass of their own).
    rng : None, int, numpy.random.Generator or RNGState
        Source of the Gaussian test matrices (SPEC 7).

    Returns
    -------
    RangeFinderResult

    Examples
    --------
    >>> import numpy as np
    >>> from randla.eig import range_finder
    >>> A = np.random.default_rng(0).standard_normal((200, 8)) @ np.ones((8, 100))
    >>> res = range_finder(A, 8, rng=0)
    >>> res.Q.shape, res.passes
    ((200, 18), 1)
    >>> bool(np.linalg.norm(A - res.Q @ (res.Q.T @ A)) < 1e-10 * np.linalg.norm(A))
    True
    """
    op, k, oversample, power_iters, width = _validate_common(A, k, oversample,
                                                             power_iters, method)
    Q, d2, rounding = _range(op, width, power_iters, method, max(2, oversample),
                             as_rng_state(rng))
    return RangeFinderResult(Q, (_upper_estimate(d2) + rounding) / op.scale, op.passes,
                             op.matvecs)


def qb(A, k: int, *, oversample: int = 10, power_iters: int = 0, method: str = "subspace",
       rng=None) -> QBResult:
    """Randomized QB factorization ``A ≈ Q @ B`` (one more pass than the range finder).

    Parameters are those of :func:`range_finder`.

    Returns
    -------
    QBResult

    Examples
    --------
    >>> import numpy as np
    >>> from randla.eig import qb
    >>> A = np.random.default_rng(0).standard_normal((300, 40)) @ np.diag(0.5 ** np.arange(40))
    >>> res = qb(A, 20, power_iters=1, rng=1)
    >>> res.B.shape, res.passes
    ((40, 40), 4)
    >>> bool(np.linalg.norm(A - res.Q @ res.B) <= res.error_estimate)
    True
    """
    op, k, oversample, power_iters, width = _validate_common(A, k, oversample,
                                                             power_iters, method)
    Q, B, error = scaled_qb(op, width, power_iters, method, max(2, oversample),
                            as_rng_state(rng))
    B = op.xp.ascontiguousarray(B) if op.scale == 1.0 else B / op.dtype.type(op.scale)
    return QBResult(Q, B, error / op.scale, op.passes, op.matvecs)


def scaled_qb(op: Operand, width: int, power_iters: int, method: str, n_fresh: int, state):
    """Q, B = Qᵀ(scale A) and the error estimate of op's scaled A (see Operand.scale)."""
    Q, d2, rounding = _range(op, width, power_iters, method, n_fresh, state)
    return Q, op.rmatmat(Q).T, _upper_estimate(d2) + rounding


def randomized_svd(A, k: int, *, oversample: int = 10, power_iters: int = 2,
                   method: str = "subspace", rng=None) -> SVDResult:
    """Rank-k truncated SVD by a randomized QB factorization (Halko–Martinsson–Tropp).

    Parameters
    ----------
    A : array_like, sparse matrix or LinearOperator
        Real m x n matrix, host or GPU (see :func:`range_finder`).
    k : int
        Number of singular triplets, ``1 <= k <= min(m, n)``.
    oversample, power_iters, method, rng
        As in :func:`range_finder`; the default does two subspace iterations
        (``2 * power_iters + 2`` passes over A in all, fewer where a Krylov
        basis fills ``min(m, n)`` columns early).

    Returns
    -------
    SVDResult
        Singular values descending; ``error_estimate`` covers the truncation
        to rank k exactly (the QB error and the discarded part of B are
        orthogonal).

    Examples
    --------
    >>> import numpy as np
    >>> from randla.eig import randomized_svd
    >>> rng = np.random.default_rng(0)
    >>> A = rng.standard_normal((500, 5)) @ rng.standard_normal((5, 300))
    >>> res = randomized_svd(A, 5, rng=0)
    >>> np.allclose(res.s, np.linalg.svd(A, compute_uv=False)[:5])
    True
    >>> res.passes
    6
    """
    op, k, oversample, power_iters, width = _validate_common(A, k, oversample,
                                                             power_iters, method)
    Q, B, error = scaled_qb(op, width, power_iters, method, max(2, oversample),
                            as_rng_state(rng))
    bk = op.backend
    Ub, s, Vt = bk.svd(B)
    # in the units of op's scaled A, whose squares neither under- nor overflow
    discarded = float(bk.xp.sum(s[k:].astype(np.float64) ** 2))
    # plus the rounding of the SVD that measured the discarded part (with a
    # full basis the QB error is rounding too, and the sum fell short of the
    # true error in 24 of 30 runs)
    rounding = 10 * float(np.finfo(op.dtype).eps) * float(bk.xp.linalg.norm(s.astype(np.float64)))
    error = (math.sqrt(error ** 2 + discarded) + rounding) / op.scale
    s = s[:k] / op.dtype.type(op.scale)
    return SVDResult(Q @ Ub[:, :k], s, bk.xp.ascontiguousarray(Vt[:k]), error,
                     op.passes, op.matvecs)


def nystrom(A, k: int, *, oversample: int = 10, rng=None) -> NystromResult:
    """Shifted Nyström approximation of a symmetric positive semidefinite matrix.

    With Ω an n x (k + oversample) Gaussian matrix and Y = AΩ (one pass),
    ``Â = Y (ΩᵀY)⁺ Yᵀ`` is formed stably: a shift ``ν = u‖Y‖_F`` (u the unit
    roundoff) makes ``Ωᵀ(Y + νΩ)`` positive definite for its Cholesky factor,
    and is removed from the eigenvalues afterwards.

    Parameters
    ----------
    A : array_like, sparse matrix or LinearOperator
        Real symmetric PSD n x n matrix (symmetry is assumed, not checked),
        host or GPU (see :func:`range_finder`).
    k : int
        Rank returned, ``1 <= k <= n``.
    oversample : int, default 10
        Extra sketch columns.  The error estimate leaves out one of them at a
        time, so it measures a sketch one column narrower: with 0 it is often
        far above the true error, yet not always above it (see
        :func:`range_finder`).
    rng : None, int, numpy.random.Generator or RNGState

    Returns
    -------
    NystromResult
        ``error_estimate`` is the leave-one-out estimate of the rank
        ``k + oversample`` Nyström error plus the norm of the eigenvalues
        dropped by the truncation to k (a triangle-inequality bound), plus
        ``20 u ‖Â‖_F`` for the rounding of the products that measured it.  Where
        AΩ = 0 (A = 0), the eigenvalues and the estimate are zero.

    Examples
    --------
    >>> import numpy as np
    >>> from randla.eig import nystrom
    >>> G = np.random.default_rng(0).standard_normal((200, 6))
    >>> res = nystrom(G @ G.T, 6, rng=0)
    >>> np.allclose(res.eigenvalues, np.linalg.eigvalsh(G @ G.T)[::-1][:6])
    True
    """
    op = Operand(A)
    n = op.shape[0]
    if op.shape[0] != op.shape[1]:
        raise ValueError(f"A must be square for a Nyström approximation, got shape {op.shape}")
    k = _check_rank("k", k, n)
    oversample = check_int("oversample", oversample, 0)
    width = min(k + oversample, n)
    if width < min(2, n):       # a full sketch needs no leave-one-out
        raise ValueError("the sketch needs at least 2 columns: raise k or oversample")
    bk, xp = op.backend, op.xp
    omega, _ = op.gaussian(width, as_rng_state(rng))
    omega_q, r_omega = bk.qr(omega)
    factor = _shifted_nystrom(op, omega_q)
    if factor is None:
        # AΩ = 0 for a Gaussian Ω: A is zero (almost surely), and so is every estimate
        return NystromResult(xp.ascontiguousarray(omega_q[:, :k]), xp.zeros(k, dtype=op.dtype),
                             0.0, op.passes, op.matvecs)
    C, nu, Ub, sb, Wt = factor
    # Ub, sb and nu are those of op's scaled A (see Operand.scale)
    lam = xp.maximum(sb.astype(np.float64) ** 2 - nu, 0.0)
    # Leave-one-out on the raw Gaussian columns: with T = R_Ω⁻¹ C⁻¹, the error of
    # the sketch without column i on ω_i is B t_i / ‖t_i‖², t_i = row i of T.  Small
    # (width x width) and in float64 whatever A's precision.
    C64 = C.astype(np.float64)
    r_inv = bk.solve_triangular(r_omega.astype(np.float64), xp.eye(width))
    T = bk.solve_triangular(C64, r_inv.T, trans=True).T
    BT = (sb.astype(np.float64)[:, None] * Wt.astype(np.float64)) @ T.T
    if width == n:
        # Ω spans everything: Â is A up to rounding and the shift ν = eps ||A||_F
        # (leaving a column out would miss a direction A has)
        sketch_error = 10 * math.sqrt(n) * nu
    else:
        d2 = bk.to_host(xp.sum(BT ** 2, axis=0) / xp.sum(T ** 2, axis=1) ** 2)
        sketch_error = _upper_estimate(d2)
    # plus the rounding of the products that measured it, as randomized_svd's:
    # at exact rank 7 the estimate alone fell short of the rounding-level error
    # by up to 14.4 eps ||Â||_F (n = 100 to 3000, k = 7 to 50, 20-60 seeds
    # each; n = 100, k = 50 covered it in 43 of 100 runs)
    rounding = 20 * float(np.finfo(op.dtype).eps) * math.sqrt(float(xp.sum(lam ** 2)))
    error = (sketch_error + math.sqrt(float(xp.sum(lam[k:] ** 2))) + rounding) / op.scale
    return NystromResult(xp.ascontiguousarray(Ub[:, :k]), (lam[:k] / op.scale).astype(op.dtype),
                         error, op.passes, op.matvecs)


def _shifted_nystrom(op: Operand, omega_q):
    """The shifted Nyström factor of A from an orthonormal test matrix Ω (one pass).

    Returns ``(C, ν, U, s, Wt)``: C the Cholesky factor of ``Ωᵀ(AΩ + νΩ)`` and
    ``(AΩ + νΩ) C⁻¹ = U diag(s) Wt``, so that ``Â = U diag(s² − ν) Uᵀ``; or
    None where AΩ = 0 (then Â = 0, with nothing to factor).
    """
    bk, xp = op.backend, op.xp
    Y = op.matmat(omega_q)
    if not bool(xp.any(Y)):
        return None
    eps = float(np.finfo(op.dtype).eps)
    nu = eps * float(xp.linalg.norm(Y))
    for _ in range(8):
        Y_nu = Y + nu * omega_q
        H = omega_q.T @ Y_nu
        try:
            C = bk.cholesky((H + H.T) / 2)
            break
        except np.linalg.LinAlgError:
            # Rounding left ΩᵀAΩ indefinite: a larger shift restores definiteness.
            nu = max(10 * nu, eps * float(xp.abs(H).max()))
    else:
        raise np.linalg.LinAlgError("Nyström: ΩᵀAΩ is not positive definite even after "
                                    "shifting; is A positive semidefinite?")
    B = bk.solve_triangular(C, Y_nu.T, trans=True).T
    U, s, Wt = bk.svd(B)
    return C, nu, U, s, Wt
