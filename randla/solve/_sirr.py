"""SIRR: outer iterative refinement with recursive refinement inside (Xu & Lu)."""
from __future__ import annotations

import numpy as np

from .._backend import get_backend
from .._checks import check_int
from ._drivers import (LstsqResult, _check_tol, _factor, _norms, _prepare,
                       _result)
from ._preconditioner import _conditioned_within, _full_rank

__all__ = ["sirr"]


class _ColumnScaled:
    """The operand A D with D = diag(1 / column norms of A), through A's products
    (and times a power of 2 after :meth:`rescale`, which A's operand takes:
    it knows when its products must run apart so as not to overflow)."""

    def __init__(self, op, scale):
        self.op, self.scale = op, scale[:, None]
        self.shape, self.dtype, self.damp = op.shape, op.dtype, 0.0
        self.backend, self.xp = op.backend, op.xp

    @property
    def passes(self):
        return self.op.passes

    @property
    def a_scale(self):
        """The power of 2 A's operand multiplies A by (see :meth:`rescale`)."""
        return self.op.a_scale

    def rescale(self, factor):
        """Products of ``factor`` times the current matrix from now on (a power of 2)."""
        self.op.rescale(factor)

    def sketch(self, S, out=None):
        SA = self.op.sketch(S, out=out)
        SA *= self.scale.T
        return SA

    def copy_into(self, out):
        self.op.copy_into(out)
        out *= self.scale.T
        return out

    def matmat(self, X):
        return self.op.matmat(self.scale * X)

    def normal(self, Z):
        return self.scale * self.op.normal(self.scale * Z)

    def residual(self, X, B):
        R, G = self.op.residual(self.scale * X, B)
        return R, self.scale * G


def _norms_of_a_columns(op):
    """Column norms of A (one pass; no temporary the size of A when dense)."""
    A, xp = op.A, op.xp
    if op.linear_operator:
        return None
    op.passes += 1
    # summed in float64 on the host (float32 entries near 1e35 overflowed
    # their squares; a GPU keeps A's precision rather than cast a copy of A);
    # a norm that still overflows is inf, and its column is left unscaled
    with np.errstate(over="ignore"):
        if op.dense:
            return xp.sqrt(xp.einsum("ij,ij->j", A, A,
                                     dtype=None if op.backend.is_gpu else np.float64))
        squares = A.copy()
        squares.data = squares.data.astype(np.float64) ** 2
        return xp.sqrt(xp.asarray(squares.sum(axis=0)).ravel())


def _sketch_of_a_has_full_rank(P, scale, cutoff):
    """Whether S A passes the rank tests :func:`spir` applies to it, from the
    QR form P of the column-scaled sketch S A D (D = diag(scale)): its
    triangular factor is R D, so S A's is R D^-1 (and its inverse D R^-1),
    with no second sketch.  False for the SVD form."""
    if P.kind != "qr":
        return False
    R = P.R / scale[None, :]
    R_inv = None if P.R_inv is None else scale[:, None] * P.R_inv
    return _full_rank(R, cutoff) and _conditioned_within(R, R_inv, cutoff)


def _galerkin(AZ, Z, C):
    """Per column j, ``Z_j a`` with ``a`` the minimum-norm solution of
    ``(A Z_j)^T (A Z_j) a = Z_j^T c_j``; Z and AZ hold one K-vector basis per
    column (shape (rows, K, k)).  The K x K systems are solved by batched
    eigendecompositions, on the data's device."""
    xp = get_backend(C).xp
    # each vector divided by its largest entry (A Z by the same): near
    # convergence the corrections are tiny, and in float32 their Gram
    # entries went subnormal, passed the relative cutoff and overflowed 1/w
    # (NaN x on easy float32 problems); a zero vector stays zero
    size = xp.abs(Z).max(axis=0)
    size = xp.where(size > 0, size, 1)
    Z, AZ = Z / size, AZ / size
    gram = xp.einsum("iak,ibk->kab", AZ, AZ)
    rhs = xp.einsum("iak,ik->ka", Z, C)
    w, V = xp.linalg.eigh(gram)
    cutoff = w[:, -1:] * (w.shape[-1] * np.finfo(w.dtype).eps)
    inverse = xp.where(w > cutoff, 1 / xp.where(w > cutoff, w, 1), 0)
    coef = xp.einsum("kab,kb,kcb,kc->ka", V, inverse, V, rhs)
    return xp.einsum("iak,ka->ik", Z, coef)


def sirr(A, b, *, depth: int = 2, repeats: int = 3, krylov: int = 2, refinements: int = 10,
         tol: float | None = None, sketch: str = "saso", sketch_size: int | None = None,
         cond: float | None = None, scale_columns: bool = True, rng=None) -> LstsqResult:
    """SIRR: sketched iterative and recursive refinement (Xu & Lu 2024).

    The outer loop is iterative refinement: ``r = b - A x`` and ``c = A.T r`` from
    the data (one fused pass), ``x += Solve_t(c)``.  ``Solve_t`` approximates
    ``(A.T A)^{-1} c`` by recursive refinement: ``u = Solve_{t-1}(c)``, then
    ``repeats - 1`` times ``u += Solve_{t-1}(c - A.T A u)``, the residual being
    that of the correction equation.  At depth 0 a Galerkin step on ``krylov``
    vectors ``z_1 = P P^T c``, ``z_{i+1} = P P^T (c - A.T A z_i)``:
    with ``Z = [z_1..z_K]``, solve ``(A Z)^T (A Z) a = Z^T c`` and return ``Z a``.
    P comes from the sketch of the column-scaled matrix.  Stops when the
    sketched Karlson-Walden estimate (of the column-scaled problem) reaches
    ``tol``, or when a step no longer halves it.

    Each outer step costs ``S(depth)`` passes over A with ``S(0) = krylov``
    and ``S(t) = repeats S(t-1) + repeats - 1`` (26 with the defaults), several
    times :func:`spir`'s per-step cost; kept for comparison.

    Parameters
    ----------
    A : (M, N) array_like, sparse matrix or LinearOperator (host or CuPy)
        Tall real matrix.
    b : (M,) or (M, K) array_like
    depth, repeats, krylov : int
        Recursion depth t, repetitions J per level, Galerkin vectors K
        (Xu & Lu's code uses t = 4, J = 3, K = 2).
    refinements : int, default 10
        Most outer steps.
    sketch_size : int, optional
        Default ``12 N`` (at most M), as in Xu & Lu's code: with ``4 N`` the
        depth-2 recursion contracts too little and stalls near 1e-14 on
        large-residual problems at condition number 1e8.
    tol, sketch, cond, rng
        As in :func:`spir`.
    scale_columns : bool, default True
        Work with A scaled to unit column norms (undone on return); not
        possible for LinearOperators, which are used as given.  The rank
        (``cond``) is judged on A's own sketch S A, as in :func:`spir`:
        where it or the scaled sketch is rank deficient by that test the
        solve starts again with A's own columns (one more sketch), so that
        x is the minimum-norm solution of the same rank.

    Returns
    -------
    LstsqResult
        ``iterations`` counts outer refinement steps; the backward-error
        estimate is that of the column-scaled problem.

    Examples
    --------
    >>> import numpy as np
    >>> from randla.solve import sirr
    >>> rng = np.random.default_rng(0)
    >>> A = rng.standard_normal((3000, 40)); b = rng.standard_normal(3000)
    >>> res = sirr(A, b, rng=1)
    >>> res.converged, bool(np.allclose(res.x, np.linalg.lstsq(A, b, rcond=None)[0]))
    (True, True)
    """
    op, B, vector, d, eps, cutoff = _prepare(A, b, rng=rng, sketch=sketch,
                                             sketch_size=sketch_size, cond=cond)
    if sketch_size is None:     # Xu & Lu's d = 12 n: smaller sketches stall at depth 2
        m, n = op.shape
        d = int(min(m, max(12 * n, n + 10)))
    tol = _check_tol(tol, eps)
    if not isinstance(scale_columns, (bool, np.bool_)):
        # a string such as "no" would be truthy and scale
        raise TypeError(f"scale_columns must be True or False, got {scale_columns!r}")
    depth = check_int("depth", depth, 0)
    repeats = check_int("repeats", repeats, 1)
    krylov = check_int("krylov", krylov, 1)
    refinements = check_int("refinements", refinements, 1)
    xp = op.xp
    norms = _norms_of_a_columns(op) if scale_columns else None
    if norms is None:
        scale = xp.ones(op.shape[1], dtype=op.dtype)
    else:
        # a norm that under- or overflowed (0 or inf), or whose inverse
        # overflows A's precision (float32 columns of 1e-40), leaves its
        # column as it is
        usable = (norms > 0) & xp.isfinite(norms)
        inverse = 1 / xp.where(usable, norms, 1)
        usable &= inverse <= float(np.finfo(op.dtype).max)
        scale = xp.where(usable, inverse, 1).astype(op.dtype)
    scaled = _ColumnScaled(op, scale)
    unscaled = op.a_scale, op.damp
    P, X = _factor(scaled, B, d=d, sketch=sketch, rng=rng, cutoff=cutoff,
                   preconditioner="auto")
    if norms is not None and not _sketch_of_a_has_full_rank(P, scale, cutoff):
        # The cutoff (cond) is a statement about S A, not S A D: scaling
        # makes tiny columns look well conditioned (cond=1e-3 kept 40 of
        # A's 40 columns where the others keep 20, and x came out 1600
        # times longer).  And where S A is rank deficient, the minimum-norm
        # y of (A D) y = b is not the minimum-norm x = D y.  So A's own
        # columns are used instead, from A's own scale (rescaled twice, A
        # of entries near 1e308 went to 0 and x = 0 was reported converged).
        op.a_scale, op.damp = unscaled
        scale = xp.ones(op.shape[1], dtype=op.dtype)
        scaled = _ColumnScaled(op, scale)
        P, X = _factor(scaled, B, d=d, sketch=sketch, rng=rng, cutoff=cutoff,
                       preconditioner="auto")

    def leaf(C):
        Zs = [P.apply(P.apply_t(C))]
        for _ in range(krylov - 1):
            Zs.append(P.apply(P.apply_t(C - scaled.normal(Zs[-1]))))
        Z = xp.stack(Zs, axis=1)                     # n x K x k
        n, k = C.shape
        AZ = scaled.matmat(Z.reshape(n, krylov * k)).reshape(-1, krylov, k)
        return _galerkin(AZ, Z, C)

    def solve(C, level):
        if level == 0:
            return leaf(C)
        U = solve(C, level - 1)
        for _ in range(repeats - 1):
            U = U + solve(C - scaled.normal(U), level - 1)
        return U

    previous = None
    for step in range(refinements + 1):
        R, G = scaled.residual(X, B)
        estimate = P.kw(G, *_norms(R, X, 0.0))
        done = estimate <= tol * P.norm_estimate
        stalled = step >= 2 and bool(xp.all((estimate > 0.5 * previous) | done))
        if bool(done.all()) or stalled or step == refinements:
            break
        previous = estimate
        X = X + solve(G, depth)
    return _result(scaled.scale * X, vector, iterations=step, converged=bool(done.all()),
                   estimate=estimate, residual=xp.linalg.norm(R, axis=0), op=op, P=P,
                   method="sirr")
