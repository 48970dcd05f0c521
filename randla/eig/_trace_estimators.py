"""Trace estimators as growable states over stored probe blocks.

Every estimator keeps the blocks it has multiplied by A (probes, sketches and
their images) and turns them into per-probe samples ``T_i`` whose mean is the
estimate and whose standard error ``std(T) / sqrt(len(T))`` is the error
estimate.  Growing an estimator to a larger budget only multiplies A by the
new vectors, so the adaptive driver in ``_trace.py`` never pays twice.

The operator is applied through :class:`CountedOperator`, one call per block,
so the number of vectors A sees is counted exactly.  All array work goes
through the operand's backend (numpy or CuPy), so one code path serves host
and GPU data; probes come from the sketch layer, identical on both.
"""
from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import LinearOperator

from .._backend import Backend, get_backend, is_cupy_object
from .._operand import product_scale, real_operand, refuse_non_finite
from .._sparse_products import SparseProducts
from .._checks import check_int
from ..sketch import DenseOperator

__all__ = ["CountedOperator", "ProbeStream", "ESTIMATORS", "PROBES"]

PROBES = ("rademacher", "gaussian", "sphere")


BACKENDS = ("numpy", "cupy")


class CountedOperator:
    """Block products with A (n x b -> n x b), counting every vector applied.

    Parameters
    ----------
    A : array_like, sparse matrix, LinearOperator or callable
        A square operand, host (numpy, scipy) or GPU (CuPy, cupyx); a
        callable takes an n x b array and returns A times it.
    n : int or None
        The size, required when A is a callable and checked otherwise.
    backend : {None, "numpy", "cupy"}
        Where the blocks A is applied to live.  A matrix or LinearOperator
        brings its own backend (a different one named here is an error); a
        callable gets numpy blocks unless ``backend="cupy"``.
    """

    def __init__(self, A, n=None, backend=None):
        if backend is not None and backend not in BACKENDS:
            raise ValueError(f"backend must be None, 'numpy' or 'cupy', got {backend!r}")
        if callable(A) and not isinstance(A, (np.ndarray, LinearOperator)) \
                and not sp.issparse(A) and not is_cupy_object(A):
            if n is None:
                raise ValueError("n (the size of A) is required when A is a callable")
            self._apply = A
            self._matrix = None
            self.n = check_int("n", n)
            self.dtype = np.dtype(np.float64)
            self.backend = Backend(backend or "numpy")
        else:
            A, self.dtype = real_operand(A, "A", square=True, allow_empty=False)
            self._matrix = A
            if n is not None and A.shape[0] != n:
                raise ValueError(f"n={n} does not match A's shape {tuple(A.shape)}")
            self.backend = get_backend(A)
            if backend is not None and backend != self.backend.name:
                raise ValueError(f"backend={backend!r} does not match A, which is "
                                 f"{self.backend.name} data")
            if self.backend.is_linear_operator(A):
                self._apply = A.matmat
            elif self.backend.issparse(A) and not self.backend.is_gpu:
                self._apply = SparseProducts(A)      # numba's threads
            else:
                self._apply = A.__matmul__
            self.n = int(A.shape[0])
        self.xp = self.backend.xp      # imports CuPy here, so a missing one fails early
        self.count = 0
        # The products are those of scale * A, scale a power of 2 fixed by the
        # first product: 1 unless A's norm is far from 1 (beyond 2^+-128 in
        # float64), where the estimators' Gram matrices would under- or
        # overflow.  trace and diag_estimate divide their results by it.
        self.scale = 1.0
        self._scale_fixed = False

    def __call__(self, X):
        if self.scale != 1.0:
            # the input, not the output: A (c X) stays near 1 where A X would not
            X = X * self.dtype.type(self.scale)
        out = self._checked(self._apply(X), X)
        if not self._scale_fixed:
            self._scale_fixed = True
            refuse_non_finite(self._matrix, out, "A")
            self.scale = product_scale(X, out, self.dtype) or 1.0
            if self.scale != 1.0:
                out = out * self.dtype.type(self.scale)     # exact: a power of 2
        self.count += X.shape[1]
        return out

    def _checked(self, out, X):
        if is_cupy_object(out) != self.backend.is_gpu:
            where = "a GPU (CuPy)" if self.backend.is_gpu else "a host (numpy)"
            raise TypeError(f"A applied to {where} block returned {type(out).__name__}; "
                            f"it must return the same kind of array")
        if self.backend.issparse(out):
            raise TypeError(f"A applied to an n x b block ({X.shape[0]} x {X.shape[1]}) "
                            f"returned a sparse {type(out).__name__}; a callable A must "
                            "return a dense array (e.g. its .toarray())")
        out = self.xp.asarray(out)
        if out.ndim == 1 and X.shape[1] == 1:
            out = out.reshape(-1, 1)
        if out.shape != X.shape:
            raise ValueError(f"A applied to an n x b block ({X.shape[0]} x {X.shape[1]}) "
                             f"returned shape {out.shape}; a callable A must map n x b to "
                             "n x b")
        if out.dtype.kind == "c":
            raise TypeError("A returned complex values; only real operators are supported")
        return out.astype(self.dtype, copy=False)


class ProbeStream:
    """Consecutive independent n x b probe blocks from one Philox stream.

    Block j is the transpose of a ``DenseOperator(b, n, ...)`` drawn from the
    state left by block j - 1, so a run is reproducible from its seed.  The
    blocks are generated in the namespace ``xp`` (numpy or cupy) with the same
    entries on both.
    """

    def __init__(self, kind: str, n: int, state, dtype, xp=np):
        self.kind, self.n, self.state, self.dtype, self.xp = kind, n, state, dtype, xp

    def draw(self, b: int):
        distribution = "rademacher" if self.kind == "rademacher" else "gaussian"
        S = DenseOperator(b, self.n, distribution, rng=self.state, dtype=self.dtype,
                          scale=1.0)
        self.state = S.next_state
        block = self.xp.ascontiguousarray(S.todense(dtype=self.dtype, xp=self.xp).T)
        if self.kind == "sphere":   # uniform on the sphere of radius sqrt(n)
            block *= math.sqrt(self.n) / self.xp.linalg.norm(block, axis=0)
        return block


def _extend_basis(Q, R, Y_new):
    """Orthonormal basis and triangular factor of ``[Y_old, Y_new]`` from those of Y_old.

    Block classical Gram-Schmidt with one reorthogonalisation; the new columns
    are projected once more after their QR, so that numerically rank-deficient
    blocks still leave the whole basis orthonormal.
    """
    bk = get_backend(Y_new)
    if Q is None:
        return bk.tall_qr(Y_new)
    C = Q.T @ Y_new
    W = Y_new - Q @ C
    C2 = Q.T @ W
    W -= Q @ C2
    C += C2
    Q2, R22 = bk.tall_qr(W)
    Q2 -= Q @ (Q.T @ Q2)
    Q2, T = bk.tall_qr(Q2)
    k, b = R.shape[1], R22.shape[1]
    R_new = bk.xp.zeros((k + b, k + b), dtype=R.dtype)
    R_new[:k, :k] = R
    R_new[:k, k:] = C
    R_new[k:, k:] = T @ R22
    return bk.xp.hstack([Q, Q2]), R_new


def _loo_directions(R):
    """Unit columns s_i of R^{-T}: s_i is orthogonal to every column of R but the i-th.

    Tiny pivots (numerically rank-deficient sketches) are raised to a floor so
    the directions stay finite; they then point into the missing directions,
    which is what leaving a redundant column out should remove.
    """
    bk = get_backend(R)
    xp, k = bk.xp, R.shape[0]
    scale = float(xp.abs(xp.diag(R)).max())
    if scale == 0:      # R = 0 (A Omega = 0): floored, it would be a multiple of I
        return xp.eye(k, dtype=R.dtype)
    # The directions do not depend on R's scale: work at unit scale, where 1 / floor
    # cannot overflow however small R is.
    R = R / scale
    d = xp.diag(R)
    floor = float(np.finfo(R.dtype).eps) * k
    diagonal = xp.arange(k)
    R[diagonal, diagonal] = xp.where(xp.abs(d) >= floor, d,
                                     xp.where(d < 0, -floor, floor).astype(R.dtype))
    S = bk.solve_triangular(R, xp.eye(k, dtype=R.dtype), trans=True)
    return S / xp.linalg.norm(S, axis=0)


# Sizes up to which the leave-one-out estimators check their probes for linear
# dependence on every estimate (a QR of n x k): a few sign vectors of a tiny
# matrix are dependent often enough (1 in 32 pairs at n = 6), and rounding in
# A Omega can hide it.  Beyond, where only a rank-deficient sketch prompts the
# check, k sign vectors of length n are dependent with probability ~2^-n k^2.
_ALWAYS_CHECK_PROBES = 64


def _refuse_dependent_probes(Omega, name: str):
    """Raise LinAlgError where the probe columns of Omega are linearly
    dependent: leave-one-out estimators then leave nothing out, and every
    sample comes out the same (a standard error of 0 on a wrong trace)."""
    bk = get_backend(Omega)
    k = Omega.shape[1]
    pivots = bk.xp.abs(bk.xp.diag(bk.tall_qr(Omega)[1]))
    if k > Omega.shape[0] or float(pivots.min()) <= k * float(np.finfo(Omega.dtype).eps) \
            * float(pivots.max()):
        raise np.linalg.LinAlgError(
            f"the {name} probes are linearly dependent (n is small for this budget): "
            "use matvecs >= n for the exact trace, or probes='gaussian'")


def _colwise_dot(X, Y):
    """x_i^T y_i for every column i."""
    return get_backend(X).xp.einsum("ij,ij->j", X, Y)


_quadratic_forms = _colwise_dot     # x_i^T A x_i, given X and AX


def _check_psd_forms(forms, X, AX, n):
    # For PSD A every x^T A x >= 0 up to the rounding of an n-term dot product.
    xp = get_backend(X).xp
    eps = float(np.finfo(AX.dtype).eps)
    slack = n * eps * xp.linalg.norm(X, axis=0) * xp.linalg.norm(AX, axis=0)
    if bool((forms < -slack).any()):
        raise np.linalg.LinAlgError("A is not positive semidefinite: a probe gave "
                                    "x^T A x < 0; use a method without psd=True")


class _Nystrom:
    """Nystrom approximation of A + nu*I from a sketch, as B B^T with B = Y_nu C^{-1}.

    The shift nu = eps * ||Y||_F keeps the Cholesky factor C of
    Omega^T (Y + nu*Omega) well defined when A has tiny or zero eigenvalues.
    """

    def __init__(self, Omega, Y):
        bk = get_backend(Y)
        n, k = Omega.shape
        if not bool(bk.xp.any(Y)):
            # A Omega = 0: the approximation is zero, with nothing to factor (C is None)
            self.nu, self.C = 0.0, None
            self.Bt = bk.xp.zeros((k, n), dtype=Y.dtype)
            self.gram = bk.xp.zeros((k, k), dtype=Y.dtype)
            self.trace = 0.0
            return
        eps = float(np.finfo(Y.dtype).eps)
        self.nu = eps * float(bk.xp.linalg.norm(Y))
        for _ in range(8):
            Y_nu = Y + self.nu * Omega
            G = Omega.T @ Y_nu
            try:
                self.C = bk.cholesky((G + G.T) / 2)
                break
            except np.linalg.LinAlgError:
                w = bk.to_host(bk.xp.linalg.eigvalsh((G + G.T) / 2))
                if w.min() < -eps * k * max(abs(w).max(), 1e-300):
                    raise np.linalg.LinAlgError(
                        "A is not positive semidefinite: the Nystrom core Omega^T A Omega "
                        "is indefinite; use a method without psd=True") from None
                # singular: dependent probes (refused), or rounding where A has
                # low rank, which a larger shift overcomes
                _refuse_dependent_probes(Omega, "Nystrom")
                self.nu = max(10 * self.nu, eps * float(abs(w).max()))
        else:
            raise np.linalg.LinAlgError("Nystrom: Omega^T (A + nu I) Omega is not positive "
                                        "definite even after shifting")
        self.Bt = bk.solve_triangular(self.C, Y_nu.T, trans=True)   # B^T, k x n
        self.gram = self.Bt @ self.Bt.T                             # B^T B
        self.trace = float(bk.xp.trace(self.gram)) - n * self.nu    # tr(B B^T) - tr(nu I)


class _Estimator:
    """Shared bookkeeping; subclasses define the budget split and the samples."""

    min_matvecs = 2
    step = 1          # budgets are multiples of this

    def __init__(self, op: CountedOperator, stream: ProbeStream):
        self.op, self.stream = op, stream
        self.bk, self.xp = op.backend, op.xp
        self.matvecs = 0

    @classmethod
    def max_matvecs(cls, n: int) -> float:
        return math.inf

    def grow_to(self, m: int) -> None:
        raise NotImplementedError

    def samples(self):
        """Per-probe samples, an array of the operand's backend."""
        raise NotImplementedError


class _Hutchinson(_Estimator):
    name = "hutchinson"

    def __init__(self, op, stream):
        super().__init__(op, stream)
        self.forms = self.xp.empty(0)

    def grow_to(self, m):
        X = self.stream.draw(m - self.matvecs)
        self.forms = self.xp.concatenate([self.forms, _quadratic_forms(X, self.op(X))])
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
            self.Z = Z_new if self.Z is None else self.xp.hstack([self.Z, Z_new])
        if g > g_old:
            G = self.stream.draw(g - g_old)
            AG = self.op(G)
            self.G = G if self.G is None else self.xp.hstack([self.G, G])
            self.AG = AG if self.AG is None else self.xp.hstack([self.AG, AG])
        self.matvecs = m

    def samples(self):
        Q, Z = self.Q, self.Z
        C = Q.T @ self.G                       # (I - QQ^T) g = g - Q c
        residual = _colwise_dot(self.G - Q @ C, self.AG - Z @ C)
        return float(_colwise_dot(Q, Z).sum()) + residual     # tr(Q^T A Q) + ...


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
            self.Omega, self.Y = self._extend(self.Omega, self.Y, k - k_old)
        if g > g_old:
            self.G, self.AG = self._extend(self.G, self.AG, g - g_old)
        self.matvecs = m

    def _extend(self, probes, images, count):
        """``count`` new probes and their images (psd-checked) appended to a block pair."""
        X = self.stream.draw(count)
        AX = self.op(X)
        _check_psd_forms(_quadratic_forms(X, AX), X, AX, self.op.n)
        if probes is None:
            return X, AX
        return self.xp.hstack([probes, X]), self.xp.hstack([images, AX])

    def samples(self):
        ny = _Nystrom(self.Omega, self.Y)
        # g^T (A + nu I - B B^T) g, unbiased for tr(A + nu I - B B^T) given the sketch
        residual = (_quadratic_forms(self.G, self.AG)
                    + ny.nu * _colwise_dot(self.G, self.G)
                    - _colwise_dot(ny.Bt @ self.G, ny.Bt @ self.G))
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
            self.Omega = self.xp.hstack([self.Omega, Omega])
            self.Y = self.xp.hstack([self.Y, Y])
            self.Z = self.xp.hstack([self.Z, Z_new])
        self.matvecs = m

    def samples(self):
        Q, R, Z, Omega = self.Q, self.R, self.Z, self.Omega
        self._refuse_dependent_probes()
        S = _loo_directions(R)
        H = Q.T @ Z                                  # Q^T A Q
        W = Q.T @ Omega
        # (I - P_i) omega_i = omega_i - Q c_i, with P_i = Q (I - s_i s_i^T) Q^T
        C = W - S * _colwise_dot(S, W)
        HC = H @ C
        residual = (_quadratic_forms(Omega, self.Y)
                    - _colwise_dot(Z.T @ Omega, C)
                    - _colwise_dot(C, R)
                    + _colwise_dot(C, HC))
        low_rank = self.xp.trace(H) - _colwise_dot(S, H @ S)
        return low_rank + residual

    def _refuse_dependent_probes(self):
        # a rank-deficient sketch A Omega is fine where A has low rank; only
        # dependent probes themselves break the leave-one-out samples
        k = self.R.shape[0]
        pivots = self.xp.abs(self.xp.diag(self.R))
        if (self.op.n <= _ALWAYS_CHECK_PROBES or float(pivots.min())
                <= 2 * k * float(np.finfo(self.R.dtype).eps) * float(pivots.max())):
            _refuse_dependent_probes(self.Omega, "XTrace")


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
            self.Omega = self.xp.hstack([self.Omega, Omega])
            self.Y = self.xp.hstack([self.Y, Y])
        self.matvecs = m

    def samples(self):
        if self.op.n <= _ALWAYS_CHECK_PROBES:
            _refuse_dependent_probes(self.Omega, "XNysTrace")
        ny = _Nystrom(self.Omega, self.Y)
        if ny.C is None:        # A Omega = 0: every probe's quadratic form is zero
            return self.xp.zeros(self.Omega.shape[1], dtype=self.Y.dtype)
        Ct_inv = self.bk.solve_triangular(ny.C, self.xp.eye(ny.C.shape[0], dtype=ny.C.dtype),
                                          trans=True)
        norms = self.xp.linalg.norm(Ct_inv, axis=0)
        S = Ct_inv / norms
        removed = _colwise_dot(S, ny.gram @ S)              # ||B s_i||^2
        return ny.trace - removed + 1.0 / norms**2


ESTIMATORS = {cls.name: cls for cls in
              (_Hutchinson, _HutchPlusPlus, _NystromPlusPlus, _XTrace, _XNysTrace)}
