"""The standard least-squares test problem (a prescribed condition number
and optimal residual, as in Meier, Nakatsukasa, Townsend & Webb,
arXiv:2302.07202) and exact error metrics, for tests, benchmarks and the demo."""
from __future__ import annotations

import math
import numbers
from typing import NamedTuple

import numpy as np
import scipy.linalg as sla

from .._operand import power_of_two_scale

__all__ = ["StandardProblem", "standard_problem", "backward_error", "forward_error"]


class StandardProblem(NamedTuple):
    """A, b = A x + r with r orthogonal to range(A), and the exact solution x."""

    A: np.ndarray
    b: np.ndarray
    x: np.ndarray
    r: np.ndarray


def _haar(rng, rows, cols):
    # Q of a Gaussian matrix with the signs of diag(R) divided out is Haar distributed.
    Q, R = np.linalg.qr(rng.standard_normal((rows, cols)))
    return Q * np.sign(np.diag(R))


def standard_problem(m: int, n: int, cond: float = 1e10, residual: float = 1e-6,
                     rng=None, dtype=np.float64) -> StandardProblem:
    """The stability literature's test problem with chosen conditioning and residual.

    ``A = U[:, :n] diag(logspace(0, -log10(cond), n)) V^T`` with U (m x (n+1)) and
    V (n x n) Haar, x a random unit vector, ``r = residual * U[:, n]`` and
    ``b = A x + r``, so x is the exact least-squares solution and ``||r|| = residual``.

    Parameters
    ----------
    m, n : int
        Shape of A, ``m > n``.
    cond : float, default 1e10
        Condition number of A (>= 1).
    residual : float, default 1e-6
        Norm of the optimal residual.
    rng : None, int, numpy.random.Generator or other seed
        Anything ``numpy.random.default_rng`` takes (SPEC 7).
    dtype : float32 or float64
        Precision A and b are returned in (they are built in float64).

    Returns
    -------
    StandardProblem
        Named tuple ``(A, b, x, r)``.

    Examples
    --------
    >>> import numpy as np
    >>> from randla.solve import standard_problem
    >>> A, b, x, r = standard_problem(200, 10, cond=1e6, residual=1e-3, rng=0)
    >>> s = np.linalg.svd(A, compute_uv=False)
    >>> bool(np.isclose(s[0] / s[-1], 1e6)), bool(np.isclose(np.linalg.norm(b - A @ x), 1e-3))
    (True, True)
    """
    if not (isinstance(m, (int, np.integer)) and isinstance(n, (int, np.integer))
            and 0 < n < m):
        raise ValueError(f"need integers 0 < n < m, got m={m!r}, n={n!r}")
    for name, value in (("cond", cond), ("residual", residual)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"{name} must be a real number, got {value!r}")
    if not 1 <= cond < np.inf:
        raise ValueError(f"cond must be finite and >= 1, got {cond!r}")
    if not 0 <= residual < np.inf:
        raise ValueError(f"residual must be finite and >= 0, got {residual!r}")
    if np.dtype(dtype) not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {np.dtype(dtype)}")
    rng = np.random.default_rng(rng)
    U = _haar(rng, m, n + 1)
    V = _haar(rng, n, n)
    sigma = np.logspace(0, -np.log10(cond), n)
    A = (U[:, :n] * sigma) @ V.T
    x = rng.standard_normal(n)
    x /= np.linalg.norm(x)
    r = residual * U[:, n]
    b = A @ x + r
    dtype = np.dtype(dtype)
    return StandardProblem(np.ascontiguousarray(A, dtype=dtype), b.astype(dtype), x, r)


def backward_error(A, b, x) -> float:
    """Exact normwise backward error of x for ``min ||A x - b||``, relative to ``||A||_F``.

    Walden, Karlson & Sun's formula: with ``r = b - A x`` and ``phi = ||r||/||x||``,
    ``BE = min(phi, sigma_min([A, phi (I - r r^T/||r||^2)]))``.  Costs an SVD of an
    m x (m + n) matrix: for small tests only.  Exact in exact arithmetic; in
    float64 the rounding of r = b - A x and of the SVD leaves a floor of
    about 1e-16 to 1e-15 (ill-conditioned A with a large residual), so
    values near it say only "backward stable", not which solver is better.

    Parameters
    ----------
    A : array_like
        The dense m x n matrix.
    b : array_like
        The right-hand side, shape (m,).
    x : array_like
        The computed solution, shape (n,).

    Returns
    -------
    float
        The backward error over ``||A||_F``; 0 where x solves the problem
        exactly (``b - A x = 0``, or ``x = 0`` with ``A^T b = 0``); inf for
        A = 0 and x != 0.

    Raises
    ------
    ValueError
        If A is not 2-D or b, x are not vectors of lengths m and n.

    Examples
    --------
    >>> import numpy as np
    >>> from randla.solve import backward_error, standard_problem
    >>> A, b, x, _ = standard_problem(100, 5, cond=10, residual=1e-2, rng=0)
    >>> backward_error(A, b, np.linalg.lstsq(A, b, rcond=None)[0]) < 1e-15
    True
    """
    A = np.asarray(A, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    if A.ndim != 2:
        raise ValueError(f"A must be 2-D, got shape {A.shape}")
    if b.shape != (A.shape[0],) or x.shape != (A.shape[1],):
        raise ValueError(f"b and x must be 1-D of lengths m and n for A of shape {A.shape} "
                         f"(one right-hand side), got shapes {b.shape} and {x.shape}")
    # The error is the same for (a A, a b, x) and for (A, c b, c x): powers of
    # two that bring the largest entries near 1 keep the squares in the norms
    # from overflowing (x and b near 1e160) or underflowing (near 1e-200).
    a = power_of_two_scale(_largest(A), np.float64)
    A, b = A * a, b * a
    c = power_of_two_scale(_largest(b, x), np.float64)
    b, x = b * c, x * c
    r = b - A @ x
    r_norm, x_norm = np.linalg.norm(r), np.linalg.norm(x)
    a_norm = np.linalg.norm(A)
    if r_norm == 0:
        return 0.0
    if x_norm == 0:
        # the normal equations' residual A^T r alone; x = 0 solves A = 0 exactly
        gradient = np.linalg.norm(A.T @ r)
        return 0.0 if gradient == 0 else float(gradient / r_norm / a_norm)
    if a_norm == 0:
        return math.inf     # no x != 0 minimises ||0 x - b||: no relative perturbation of 0 helps
    phi = r_norm / x_norm
    u = r / r_norm
    M = np.hstack([A, phi * (np.eye(A.shape[0]) - np.outer(u, u))])
    smallest = sla.svdvals(M, check_finite=False)[-1]
    return float(min(phi, smallest) / a_norm)


def _largest(*arrays) -> float:
    """The largest magnitude in the arrays (0 for empty ones)."""
    return max(float(np.max(np.abs(a), initial=0.0)) for a in arrays)


def forward_error(x, x_true) -> float:
    """Relative forward error ``||x - x_true|| / ||x_true||`` (2-norms).

    Parameters
    ----------
    x, x_true : array_like
        The computed and the exact solution, of one shape.

    Returns
    -------
    float
        0 where ``x == x_true``; inf where ``x_true = 0`` and x is not.

    Examples
    --------
    >>> from randla.solve import forward_error
    >>> round(forward_error([1.0, 2.0], [1.0, 2.5]), 6)
    0.185695
    """
    x = np.asarray(x, dtype=np.float64)
    x_true = np.asarray(x_true, dtype=np.float64)
    if x.shape != x_true.shape:
        raise ValueError(f"x and x_true must have one shape, got {x.shape} and {x_true.shape}")
    c = power_of_two_scale(_largest(x, x_true), np.float64)   # no squares out of range
    error, size = np.linalg.norm(c * x - c * x_true), np.linalg.norm(c * x_true)
    if size == 0:
        return 0.0 if error == 0 else math.inf
    return float(error / size)
