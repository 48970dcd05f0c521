"""Sketch size, sketching, the sketched preconditioner and the sketched
Karlson-Walden backward-error estimate shared by every driver."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla

from ..sketch import SASO, as_rng_state, left_sketch, make_operator

__all__ = ["choose_sketch_size", "Preconditioner", "sketch_and_factor"]

# Cost model of the sketch size (see choose_sketch_size), measured on the
# 2-core CI machine (MEASURED.md): factorisation speed and bytes streamed per second.
_FACTOR_FLOPS_PER_S = 1.0e11
_STREAM_BYTES_PER_S = 3.0e10
_CANDIDATE_RATIOS = (2, 3, 4, 6, 8, 12, 16, 24)


def choose_sketch_size(m: int, n: int, itemsize: int = 8, nnz: int | None = None) -> int:
    """The sketch size d = s*n that minimises the modelled solve time.

    The factorisation of the d x n sketch costs about ``2 s n^3`` flops; the
    refinement needs about ``ln(1/u) / ln(sqrt(s))`` iterations (the
    preconditioned matrix has condition number ``(1 + 1/sqrt(s))/(1 - 1/sqrt(s))``),
    each one pass over A (``itemsize*m*n`` bytes, or ``~1.5*itemsize*nnz`` sparse).
    Larger s means fewer passes and a dearer factorisation; the ratio is
    clipped so that ``n < d <= m``.
    """
    eps = np.finfo(np.float32 if itemsize == 4 else np.float64).eps
    pass_bytes = itemsize * (m * n if nnz is None else 1.5 * nnz)

    def cost(s):
        factor = 2.0 * s * n ** 3 / _FACTOR_FLOPS_PER_S
        passes = math.log(1 / eps) / (0.5 * math.log(s))
        return factor + passes * pass_bytes / _STREAM_BYTES_PER_S

    s = min(_CANDIDATE_RATIOS, key=cost)
    return int(min(m, max(s * n, n + 10)))


@dataclass(frozen=True)
class Preconditioner:
    """P with A P well conditioned, from the factorisation of S A.

    SVD form: ``S A = U diag(sigma) V^T``, ``P = V[:, :r] diag(1/sigma[:r])``
    where r counts the singular values above the cutoff (rank deficiency).
    QR form: ``S A = Q R``, ``P = R^{-1}`` (full rank only).
    """

    kind: str
    V: np.ndarray | None          # n x r (SVD form)
    sigma: np.ndarray | None      # r (SVD form)
    R: np.ndarray | None          # n x n upper triangular (QR form)
    rank: int
    norm_estimate: float          # ||S A||_F, an estimate of ||A||_F (damping included)

    def apply(self, Y):
        """P @ Y."""
        if self.kind == "svd":
            return self.V @ (Y / self.sigma[:, None])
        return sla.solve_triangular(self.R, Y, check_finite=False)

    def apply_t(self, G):
        """P.T @ G."""
        if self.kind == "svd":
            return (self.V.T @ G) / self.sigma[:, None]
        return sla.solve_triangular(self.R, G, trans="T", check_finite=False)

    def inverse_t(self, Z):
        """A vector h with P.T h = Z, in the row space of the sketch."""
        if self.kind == "svd":
            return self.V @ (Z * self.sigma[:, None])
        return self.R.T @ Z

    def kw(self, G, r_norms, x_norms):
        """Sketched Karlson-Walden backward-error estimates, one per column.

        ``||(Sigma^2 + phi^2 I)^{-1/2} V^T g|| / ||x||`` with ``phi = ||r||/||x||``
        and Sigma, V from the sketch (within a small constant of the exact
        backward error; 0 when r = 0, ``||V^T g||/||r||`` when x = 0).
        """
        out = np.zeros(G.shape[1])
        for j in range(G.shape[1]):
            g, r_norm, x_norm = G[:, j], r_norms[j], x_norms[j]
            if r_norm == 0:
                continue
            if x_norm == 0:
                out[j] = self._weighted_norm(g, math.inf) / r_norm
            else:
                out[j] = self._weighted_norm(g, r_norm / x_norm) / x_norm
        return out

    def _weighted_norm(self, g, phi):
        # ||(Sigma^2 + phi^2)^{-1/2} V^T g||; phi = inf means ||V^T g|| / phi, scaled back.
        if self.kind == "svd":
            z = self.V.T @ g
            if math.isinf(phi):
                return float(np.linalg.norm(z))
            return float(np.linalg.norm(z / np.sqrt(self.sigma ** 2 + phi ** 2)))
        if math.isinf(phi):
            return float(np.linalg.norm(g))
        # g^T (R^T R + phi^2 I)^{-1} g through the R factor of [R; phi I]
        n = self.R.shape[0]
        stacked = np.vstack([self.R, phi * np.eye(n, dtype=self.R.dtype)])
        R2 = sla.qr(stacked, mode="r", check_finite=False)[0][:n]
        return float(np.linalg.norm(sla.solve_triangular(R2, g, trans="T",
                                                          check_finite=False)))


def _draw_operator(sketch, d, m, rng, dtype):
    state = as_rng_state(rng)
    if sketch == "saso":
        return SASO(d, m, k=min(8, d), rng=state, dtype=dtype)
    return make_operator(sketch, d, m, rng=state, dtype=dtype)


def sketch_and_factor(op, B, *, d, sketch, rng, cutoff, preconditioner="svd"):
    """Sketch A and B, factor S A, and return the preconditioner and x0.

    B may be None (no right-hand side to sketch).  x0 is the sketch-and-solve
    solution ``argmin ||S(A x - b)||`` (with the damping rows ``[damp I; 0]``
    appended to the sketch when damp > 0).
    """
    m, n = op.shape
    S = _draw_operator(sketch, d, m, rng, op.dtype)
    SA = op.sketch(S)
    if B is None:
        B = np.zeros((m, 0), dtype=op.dtype)
        SB = np.zeros((d, 0), dtype=op.dtype)
    else:
        SB = np.asarray(left_sketch(S, B), dtype=op.dtype)
    if op.damp:
        SA = np.vstack([SA, op.damp * np.eye(n, dtype=op.dtype)])
        SB = np.vstack([SB, np.zeros((n, SB.shape[1]), dtype=op.dtype)])
    norm_estimate = float(np.linalg.norm(SA))
    if preconditioner == "qr":
        Q, R = sla.qr(SA, mode="economic", check_finite=False)
        if n and np.min(np.abs(np.diag(R))) <= cutoff * np.max(np.abs(np.diag(R))):
            raise np.linalg.LinAlgError("the sketch of A is rank deficient: use the SVD "
                                        "preconditioner (preconditioner='svd')")
        P = Preconditioner("qr", None, None, R, n, norm_estimate)
        return P, P.apply(Q.T @ SB)
    # QR of [S A, S B] first: R's SVD is S A's, and Q^T S B comes for free
    # (cheaper than an SVD of the tall sketch, which would also form its U).
    k = SB.shape[1]
    Raug = sla.qr(np.hstack([SA, SB]), mode="r", overwrite_a=True, check_finite=False)[0]
    R, QtSB = Raug[:n, :n], Raug[:n, n:n + k]
    try:
        U, s, Vt = sla.svd(R, check_finite=False)
    except np.linalg.LinAlgError:
        U, s, Vt = sla.svd(R, check_finite=False, lapack_driver="gesvd")
    rank = int(np.count_nonzero(s > cutoff * s[0])) if s.size and s[0] > 0 else 0
    P = Preconditioner("svd", Vt[:rank].T, s[:rank], None, rank, norm_estimate)
    return P, P.apply(U[:, :rank].T @ QtSB)
