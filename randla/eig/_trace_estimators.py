"""Trace estimators as growable states over stored probe blocks.

Every estimator keeps the blocks it has multiplied by A (probes, sketches and
their images) and turns them into per-probe samples ``T_i`` whose mean is the
estimate and whose standard error ``std(T) / sqrt(len(T))`` is the error
estimate.  Growing an estimator to a larger budget only multiplies A by the
new vectors, so the adaptive driver in ``_trace.py`` never pays twice.

The operator is applied through :class:`CountedOperator`, one call per block,
so the number of vectors A sees is counted exactly.
"""
from __future__ import annotations

import math

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
from scipy.sparse.linalg import LinearOperator

from .._backend import is_cupy_object
from .._operand import real_operand
from ..sketch._operators import check_size
from ..sketch import DenseOperator

__all__ = ["CountedOperator", "ProbeStream", "ESTIMATORS", "PROBES"]

PROBES = ("rademacher", "gaussian", "sphere")


class CountedOperator:
    """Block products with A (n x b -> n x b), counting every vector applied.

    Parameters
    ----------
    A : array_like, scipy.sparse matrix, LinearOperator or callable
        A square operand; a callable takes an n x b array and returns A times it.
    n : int or None
        The size, required when A is a callable and checked otherwise.
    """

    def __init__(self, A, n=None):
        if callable(A) and not isinstance(A, (np.ndarray, LinearOperator)) \
                and not sp.issparse(A) and not is_cupy_object(A):
            if n is None:
                raise ValueError("n (the size of A) is required when A is a callable")
            self._apply = A
            self.n = check_size("n", n)
            self.dtype = np.dtype(np.float64)
        else:
            A, self.dtype = real_operand(A, "A", square=True, allow_empty=False)
            if n is not None and A.shape[0] != n:
                raise ValueError(f"n={n} does not match A's shape {tuple(A.shape)}")
            self._apply = A.matmat if isinstance(A, LinearOperator) else A.__matmul__
            self.n = int(A.shape[0])
        self.count = 0

    def __call__(self, X: np.ndarray) -> np.ndarray:
        out = np.asarray(self._apply(X))
        if out.ndim == 1 and X.shape[1] == 1:
            out = out.reshape(-1, 1)
        if out.shape != X.shape:
            raise ValueError(f"A applied to an {X.shape[0]} x {X.shape[1]} block returned "
                             f"shape {out.shape}; a callable A must map n x b to n x b")
        if out.dtype.kind == "c":
            raise TypeError("A returned complex values; only real operators are supported")
        self.count += X.shape[1]
        return out.astype(self.dtype, copy=False)


class ProbeStream:
    """Consecutive independent n x b probe blocks from one Philox stream.

    Block j is the transpose of a ``DenseOperator(b, n, ...)`` drawn from the
    state left by block j - 1, so a run is reproducible from its seed.
    """

    def __init__(self, kind: str, n: int, state, dtype):
        self.kind, self.n, self.state, self.dtype = kind, n, state, dtype

    def draw(self, b: int) -> np.ndarray:
        distribution = "rademacher" if self.kind == "rademacher" else "gaussian"
        S = DenseOperator(b, self.n, distribution, rng=self.state, dtype=self.dtype,
                          scale=1.0)
        self.state = S.next_state
        block = np.ascontiguousarray(S.todense().T)
        if self.kind == "sphere":   # uniform on the sphere of radius sqrt(n)
            block *= math.sqrt(self.n) / np.linalg.norm(block, axis=0)
        return block


def _extend_basis(Q, R, Y_new):
    """Orthonormal basis and triangular factor of ``[Y_old, Y_new]`` from those of Y_old.

    Block classical Gram-Schmidt with one reorthogonalisation; the new columns
    are projected once more after their QR, so that numerically rank-deficient
    blocks still leave the whole basis orthonormal.
    """
    if Q is None:
        return sla.qr(Y_new, mode="economic")
    C = Q.T @ Y_new
    W = Y_new - Q @ C
    C2 = Q.T @ W
    W -= Q @ C2
    C += C2
    Q2, R22 = sla.qr(W, mode="economic")
    Q2 -= Q @ (Q.T @ Q2)
    Q2, T = sla.qr(Q2, mode="economic")
    k, b = R.shape[1], R22.shape[1]
    R_new = np.zeros((k + b, k + b), dtype=R.dtype)
    R_new[:k, :k] = R
    R_new[:k, k:] = C
    R_new[k:, k:] = T @ R22
    return np.hstack([Q, Q2]), R_new


def _loo_directions(R):
    """Unit columns s_i of R^{-T}: s_i is orthogonal to every column of R but the i-th.

    Tiny pivots (numerically rank-deficient sketches) are raised to a floor so
    the directions stay finite; they then point into the missing directions,
    which is what leaving a redundant column out should remove.
    """
    R = R.copy()
    d = np.diag(R)
    floor = max(np.finfo(R.dtype).eps * R.shape[0] * np.abs(d).max(initial=0.0),
                np.finfo(R.dtype).tiny)
    small = np.abs(d) < floor
    R[small, small] = np.where(d[small] < 0, -floor, floor)
    S = sla.solve_triangular(R, np.eye(R.shape[0], dtype=R.dtype), trans="T")
    return S / np.linalg.norm(S, axis=0)


def _quadratic_forms(X, AX):
    """x_i^T A x_i for every column."""
    return np.einsum("ij,ij->j", X, AX)


def _check_psd_forms(forms, X, AX, n):
    # For PSD A every x^T A x >= 0 up to the rounding of an n-term dot product.
    slack = n * np.finfo(AX.dtype).eps * np.linalg.norm(X, axis=0) * np.linalg.norm(AX, axis=0)
    if np.any(forms < -slack):
        raise np.linalg.LinAlgError("A is not positive semidefinite: a probe gave "
                                    "x^T A x < 0; use a method without psd=True")


class _Nystrom:
    """Nystrom approximation of A + nu*I from a sketch, as B B^T with B = Y_nu C^{-1}.

    The shift nu = eps * ||Y||_F keeps the Cholesky factor C of
    Omega^T (Y + nu*Omega) well defined when A has tiny or zero eigenvalues.
    """

    def __init__(self, Omega, Y):
        n = Omega.shape[0]
        self.nu = float(np.finfo(Y.dtype).eps * np.linalg.norm(Y))
        Y_nu = Y + self.nu * Omega
        G = Omega.T @ Y_nu
        try:
            self.C = sla.cholesky((G + G.T) / 2, lower=False)
        except sla.LinAlgError:
            raise np.linalg.LinAlgError(
                "A is not positive semidefinite: the Nystrom core Omega^T A Omega is "
                "indefinite; use a method without psd=True") from None
        self.Bt = sla.solve_triangular(self.C, Y_nu.T, trans="T")   # B^T, k x n
        self.gram = self.Bt @ self.Bt.T                             # B^T B
        self.trace = float(np.trace(self.gram)) - n * self.nu       # tr(B B^T) - tr(nu I)


class _Estimator:
    """Shared bookkeeping; subclasses define the budget split and the samples."""

    min_matvecs = 2
    step = 1          # budgets are multiples of this

    def __init__(self, op: CountedOperator, stream: ProbeStream):
        self.op, self.stream = op, stream
        self.matvecs = 0

    @classmethod
    def max_matvecs(cls, n: int) -> float:
        return math.inf

    def grow_to(self, m: int) -> None:
        raise NotImplementedError

    def samples(self) -> np.ndarray:
        raise NotImplementedError


class _Hutchinson(_Estimator):
    name = "hutchinson"

    def __init__(self, op, stream):
        super().__init__(op, stream)
        self.forms = np.empty(0)

    def grow_to(self, m):
        X = self.stream.draw(m - self.matvecs)
        self.forms = np.concatenate([self.forms, _quadratic_forms(X, self.op(X))])
        self.matvecs = m

    def samples(self):
        return self.forms


class _HutchPlusPlus(_Estimator):
    """tr(Q^T A Q) + Hutchinson on (I - QQ^T) A (I - QQ^T): m/3 sketch, m/3 basis, m/3 probes."""

    name = "hutch++"
    min_matvecs = 4

    @staticmethod
    def split(m):
        k = m // 3
        return k, m - 2 * k

    @classmethod
    def max_matvecs(cls, n):
        return 3 * n + 2   # the sketch needs k <= n

    def __init__(self, op, stream):
        super().__init__(op, stream)
        self.Q = self.R = self.Z = None
        self.G = self.AG = None

    def grow_to(self, m):
        k_old = 0 if self.Q is None else self.Q.shape[1]
        g_old = 0 if self.G is None else self.G.shape[1]
        k, g = self.split(m)
        if k > k_old:
            Y = self.op(self.stream.draw(k - k_old))
            self.Q, self.R = _extend_basis(self.Q, self.R, Y)
            Z_new = self.op(self.Q[:, k_old:])
            self.Z = Z_new if self.Z is None else np.hstack([self.Z, Z_new])
        if g > g_old:
            G = self.stream.draw(g - g_old)
            AG = self.op(G)
            self.G = G if self.G is None else np.hstack([self.G, G])
            self.AG = AG if self.AG is None else np.hstack([self.AG, AG])
        self.matvecs = m

    def samples(self):
        Q, Z = self.Q, self.Z
        C = Q.T @ self.G                       # (I - QQ^T) g = g - Q c
        residual = np.einsum("ij,ij->j", self.G - Q @ C, self.AG - Z @ C)
        return float(np.trace(Q.T @ Z)) + residual


class _NystromPlusPlus(_Estimator):
    """tr(Nystrom) + Hutchinson on A - Nystrom: m/2 sketch, m/2 probes (A PSD)."""

    name = "nystrom++"
    min_matvecs = 3
    psd = True

    @staticmethod
    def split(m):
        k = m // 2
        return k, m - k

    @classmethod
    def max_matvecs(cls, n):
        return 2 * n + 1

    def __init__(self, op, stream):
        super().__init__(op, stream)
        self.Omega = self.Y = self.G = self.AG = None

    def grow_to(self, m):
        k_old = 0 if self.Omega is None else self.Omega.shape[1]
        g_old = 0 if self.G is None else self.G.shape[1]
        k, g = self.split(m)
        if k > k_old:
            Omega = self.stream.draw(k - k_old)
            Y = self.op(Omega)
            _check_psd_forms(_quadratic_forms(Omega, Y), Omega, Y, self.op.n)
            self.Omega = Omega if self.Omega is None else np.hstack([self.Omega, Omega])
            self.Y = Y if self.Y is None else np.hstack([self.Y, Y])
        if g > g_old:
            G = self.stream.draw(g - g_old)
            AG = self.op(G)
            _check_psd_forms(_quadratic_forms(G, AG), G, AG, self.op.n)
            self.G = G if self.G is None else np.hstack([self.G, G])
            self.AG = AG if self.AG is None else np.hstack([self.AG, AG])
        self.matvecs = m

    def samples(self):
        ny = _Nystrom(self.Omega, self.Y)
        # g^T (A + nu I - B B^T) g, unbiased for tr(A + nu I - B B^T) given the sketch
        residual = (_quadratic_forms(self.G, self.AG)
                    + ny.nu * np.einsum("ij,ij->j", self.G, self.G)
                    - np.einsum("ij,ij->j", ny.Bt @ self.G, ny.Bt @ self.G))
        return ny.trace + residual


class _XTrace(_Estimator):
    """Exchangeable Hutch++: each probe is left out of the basis that deflates it.

    With Y = A Omega = QR (k probes) and Z = AQ, the basis of Y without column
    i is Q (I - s_i s_i^T) with s_i the unit i-th column of R^{-T}, so all k
    leave-one-out estimates come from k x k quantities.  2k matvecs.
    """

    name = "xtrace"
    min_matvecs = 4
    step = 2

    @classmethod
    def max_matvecs(cls, n):
        return 2 * n

    def __init__(self, op, stream):
        super().__init__(op, stream)
        self.Omega = self.Y = self.Q = self.R = self.Z = None

    def grow_to(self, m):
        k_old = 0 if self.Q is None else self.Q.shape[1]
        Omega = self.stream.draw(m // 2 - k_old)
        Y = self.op(Omega)
        self.Q, self.R = _extend_basis(self.Q, self.R, Y)
        Z_new = self.op(self.Q[:, k_old:])
        if self.Z is None:
            self.Omega, self.Y, self.Z = Omega, Y, Z_new
        else:
            self.Omega = np.hstack([self.Omega, Omega])
            self.Y = np.hstack([self.Y, Y])
            self.Z = np.hstack([self.Z, Z_new])
        self.matvecs = m

    def samples(self):
        Q, R, Z, Omega = self.Q, self.R, self.Z, self.Omega
        S = _loo_directions(R)
        H = Q.T @ Z                                  # Q^T A Q
        W = Q.T @ Omega
        # (I - P_i) omega_i = omega_i - Q c_i, with P_i = Q (I - s_i s_i^T) Q^T
        C = W - S * np.einsum("ij,ij->j", S, W)
        HC = H @ C
        residual = (_quadratic_forms(Omega, self.Y)
                    - np.einsum("ij,ij->j", Z.T @ Omega, C)
                    - np.einsum("ij,ij->j", C, R)
                    + np.einsum("ij,ij->j", C, HC))
        low_rank = np.trace(H) - np.einsum("ij,ij->j", S, H @ S)
        return low_rank + residual


class _XNysTrace(_Estimator):
    """Exchangeable Nystrom++ for PSD A: m probes, every one both sketch and probe.

    With the shifted Nystrom factor A + nu I ~ B B^T, B = Y_nu C^{-1}, leaving
    probe i out removes B s_i (s_i the unit i-th column of C^{-T}), and the
    residual quadratic form of probe i collapses to 1 / ||C^{-T} e_i||^2.
    """

    name = "xnystrace"
    psd = True

    @classmethod
    def max_matvecs(cls, n):
        return n

    def __init__(self, op, stream):
        super().__init__(op, stream)
        self.Omega = self.Y = None

    def grow_to(self, m):
        Omega = self.stream.draw(m - self.matvecs)
        Y = self.op(Omega)
        _check_psd_forms(_quadratic_forms(Omega, Y), Omega, Y, self.op.n)
        if self.Y is None:
            self.Omega, self.Y = Omega, Y
        else:
            self.Omega = np.hstack([self.Omega, Omega])
            self.Y = np.hstack([self.Y, Y])
        self.matvecs = m

    def samples(self):
        ny = _Nystrom(self.Omega, self.Y)
        Ct_inv = sla.solve_triangular(ny.C, np.eye(ny.C.shape[0], dtype=ny.C.dtype),
                                      trans="T")
        norms = np.linalg.norm(Ct_inv, axis=0)
        S = Ct_inv / norms
        removed = np.einsum("ij,ij->j", S, ny.gram @ S)     # ||B s_i||^2
        return ny.trace - removed + 1.0 / norms**2


ESTIMATORS = {cls.name: cls for cls in
              (_Hutchinson, _HutchPlusPlus, _NystromPlusPlus, _XTrace, _XNysTrace)}
