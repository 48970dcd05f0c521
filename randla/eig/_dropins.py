"""Drop-in replacements for ``scipy.sparse.linalg.svds`` and ``eigsh``.

Same signatures (plus ``rng``), return shapes, ascending order and exception
types as scipy.  The randomized path is Lazy-EPSI started from a randomized
SVD; whatever it cannot serve goes to the library's own routine unchanged:
``scipy.sparse.linalg`` for host data, ``cupyx.scipy.sparse.linalg`` for CuPy
data (which lacks some of scipy's arguments: passing one is an error).
"""
from __future__ import annotations

import numbers

import numpy as np
import scipy.sparse.linalg as spla

from .._backend import get_backend
from ._epsi import lazy_epsi

__all__ = ["svds", "eigsh"]

_SOLVERS = ("arpack", "lobpcg", "propack")
_OPTIONS = ("sketch_size", "power_iters", "shrink")
_EIGSH_WHICH = ("LM", "SM", "LA", "SA", "BE")
_DEFAULT_SWEEPS = 50
# Arguments of scipy's routines that cupyx.scipy.sparse.linalg's do not take (CuPy 14).
_CUPYX_LACKS = {"svds": ("v0", "solver", "rng", "options"),
                "eigsh": ("M", "sigma", "Minv", "OPinv", "rng")}


def _dtype(A):
    dtype = getattr(A, "dtype", None)
    return np.dtype(dtype) if dtype is not None else np.asarray(A).dtype


def _epsi_tol(tol, dtype, n):
    """Relative eigen-residual target: tol, or for tol=0 the rounding floor of M v."""
    if tol > 0:
        return tol
    real = np.float32 if np.dtype(dtype) in (np.float32, np.complex64) else np.float64
    return 50 * float(np.finfo(real).eps) * np.sqrt(n)


def _epsi_options(options, limit, k):
    options = {} if options is None else dict(options)
    unknown = set(options) - set(_OPTIONS)
    if unknown:
        raise ValueError(f"options: unknown keys {sorted(unknown)}; the randomized solver "
                         f"takes {list(_OPTIONS)}")
    options.setdefault("sketch_size", min(max(3 * k, k + 30), limit))
    return options


def _check_k(k, limit):
    if isinstance(k, bool) or not isinstance(k, (numbers.Integral, numbers.Real)) \
            or int(k) != k or not 0 < k < limit:
        raise ValueError("`k` must be an integer satisfying `0 < k < min(A.shape)`.")
    return int(k)


def _check_maxiter(maxiter):
    if maxiter is None:
        return _DEFAULT_SWEEPS
    if int(maxiter) != maxiter or maxiter <= 0:
        raise ValueError("`maxiter` must be a positive integer.")
    return int(maxiter)


def _check_tol_value(tol):
    if not isinstance(tol, numbers.Real) or tol < 0 or not np.isfinite(tol):
        raise ValueError("`tol` must be a non-negative floating point value.")
    return float(tol)


def _scipy_rng(rng):
    return rng if rng is None or isinstance(rng, (numbers.Integral, np.random.Generator)) \
        else None


def _hand_over(backend, name, A, **kwargs):
    """scipy's (host data) or cupyx's (CuPy data) routine ``name`` with the caller's
    arguments; those cupyx lacks are refused, not dropped."""
    if not backend.is_gpu:
        return getattr(spla, name)(A, **{**kwargs, "rng": _scipy_rng(kwargs["rng"])})
    given = [key for key in _CUPYX_LACKS[name] if kwargs.pop(key, None) is not None]
    if kwargs.pop("mode", "normal") != "normal":
        given.append("mode")
    if given:
        raise ValueError(f"CuPy input: this call goes to cupyx.scipy.sparse.linalg.{name}, "
                         f"which does not take {', '.join(given)}")
    vectors = kwargs.get("return_singular_vectors")
    if vectors in ("u", "vh"):
        # cupyx takes a bool: compute both and return scipy's tuple.
        u, s, vh = backend.sparse_linalg.svds(A, **{**kwargs, "return_singular_vectors": True})
        return (u, s, None) if vectors == "u" else (None, s, vh)
    return getattr(backend.sparse_linalg, name)(A, **kwargs)


def _not_converged(result, what):
    xp = get_backend(result.values).xp
    keep = xp.asarray(np.flatnonzero(result.converged))
    raise spla.ArpackNoConvergence(
        f"randla: {int(np.sum(result.converged))} of {result.converged.size} {what} reached "
        f"the tolerance after {result.sweeps} Lazy-EPSI sweeps (largest residual "
        f"{result.residuals.max():.2e}); raise maxiter or options['sketch_size']",
        xp.take(result.values, keep), xp.take(result.vectors, keep, axis=1))


def svds(A, k: int = 6, ncv: int | None = None, tol: float = 0, which: str = "LM",
         v0=None, maxiter: int | None = None, return_singular_vectors=True,
         solver: str | None = None, rng=None, options: dict | None = None):
    """Partial SVD: the k largest singular values and vectors, as ``scipy.sparse.linalg.svds``.

    With ``solver=None`` a randomized SVD of width ``options["sketch_size"]``
    is refined by Lazy-EPSI until every eigen-residual of ``AᵀA`` (of ``AAᵀ``
    for wide A) is at most ``tol`` times the largest eigenvalue.

    Parameters
    ----------
    A : ndarray, sparse matrix or LinearOperator
        Real m x n matrix (complex input goes to scipy), host or GPU: a CuPy
        array, cupyx sparse matrix or cupyx LinearOperator runs on its
        device and gives CuPy results.
    k : int, default 6
        ``0 < k < min(A.shape)``.
    ncv : int, optional
        Sketch width ℓ for the randomized solver (``k < ncv <= min(A.shape)``),
        the same as ``options["sketch_size"]``; Lanczos vectors for ARPACK.
    tol : float, default 0
        Relative eigen-residual to reach; 0 means the rounding floor
        ``50 u sqrt(n)`` of the working precision.
    which : {'LM', 'SM'}
        'SM' is not served randomly: it goes to scipy (ARPACK).
    v0 : ndarray, optional
        Validated as scipy does; the randomized solver starts from ``rng``'s
        sketch instead.
    maxiter : int, optional
        Maximum Lazy-EPSI sweeps (default 50).
    return_singular_vectors : {True, False, 'u', 'vh'}
        As in scipy: ``(u, s, vh)``, ``s``, ``(u, s, None)`` or ``(None, s, vh)``.
    solver : {None, 'arpack', 'lobpcg', 'propack'}
        None: randla's randomized solver.  A scipy name hands the whole call
        to ``scipy.sparse.linalg.svds`` (host data only).
    rng : None, int, numpy.random.Generator or RNGState
        Source of the sketch (SPEC 7); the same seed gives the same result.
    options : dict, optional
        Randomized solver: ``sketch_size`` (default ``min(max(3k, k + 30),
        min(A.shape))``), ``power_iters`` (default 1) and ``shrink`` (see
        :func:`randla.eig.lazy_epsi`).  With a scipy solver: scipy's options.

    Returns
    -------
    u : ndarray, shape (m, k)
    s : ndarray, shape (k,)
        Singular values in ascending order.
    vh : ndarray, shape (k, n)

    Raises
    ------
    ValueError
        For bad k, ncv, tol, which, v0, maxiter, return_singular_vectors or
        solver, with scipy's messages; for CuPy data handed to cupyx
        (``which='SM'``, complex data) with an argument cupyx's ``svds``
        lacks (``v0``, ``rng``, ``options``), or with ``solver``.
    scipy.sparse.linalg.ArpackNoConvergence
        If the randomized solver stops short of ``tol`` (its ``eigenvalues``
        attribute holds the converged singular values).

    Examples
    --------
    >>> import numpy as np
    >>> import randla
    >>> rng = np.random.default_rng(0)
    >>> A = rng.standard_normal((400, 100)) * (1.0 / np.arange(1, 101))
    >>> u, s, vh = randla.svds(A, k=4, rng=0)
    >>> u.shape, s.shape, vh.shape
    ((400, 4), (4,), (4, 100))
    >>> np.allclose(s, np.linalg.svd(A, compute_uv=False)[:4][::-1])
    True
    """
    backend = get_backend(A)
    if solver is not None:
        if str(solver).lower() not in _SOLVERS:
            raise ValueError(f"solver must be None (randomized) or one of {set(_SOLVERS)}.")
        return _hand_over(backend, "svds", A, k=k, ncv=ncv, tol=tol, which=which, v0=v0,
                          maxiter=maxiter, return_singular_vectors=return_singular_vectors,
                          solver=solver, rng=rng, options=options)
    shape = tuple(A.shape) if hasattr(A, "shape") else np.shape(A)
    if len(shape) != 2:
        raise ValueError(f"`A` must be 2-D, got shape {shape}.")
    if np.prod(shape) == 0:
        raise ValueError("`A` must not be empty.")
    dtype = _dtype(A)
    if not np.issubdtype(dtype, np.number):
        raise ValueError("`A` must be of numeric data type.")
    limit = min(shape)
    k = _check_k(k, limit)
    if ncv is not None and (int(ncv) != ncv or not k < ncv <= limit):
        raise ValueError("`ncv` must be an integer satisfying `k < ncv <= min(A.shape)`.")
    tol = _check_tol_value(tol)
    which = str(which).upper()
    if which not in ("LM", "SM"):
        raise ValueError("`which` must be in {'LM', 'SM'}.")
    if v0 is not None:
        v0 = get_backend(v0).xp.atleast_1d(v0)
        if not np.issubdtype(v0.dtype, np.inexact):
            raise ValueError("`v0` must be of floating or complex floating data type.")
        if v0.shape != (limit,):
            raise ValueError(f"`v0` must have shape {(limit,)}.")
    maxiter = _check_maxiter(maxiter)
    if return_singular_vectors not in (True, False, "u", "vh"):
        raise ValueError("`return_singular_vectors` must be in {True, False, 'vh', 'u'}.")
    if which == "SM" or np.issubdtype(dtype, np.complexfloating):
        # Smallest singular values and complex data are the library's job.
        return _hand_over(backend, "svds", A, k=k, ncv=ncv, tol=tol, which=which, v0=v0,
                          maxiter=None if maxiter == _DEFAULT_SWEEPS else maxiter,
                          return_singular_vectors=return_singular_vectors, rng=rng,
                          options=options)
    options = _epsi_options(options, limit, k)
    if ncv is not None:
        options["sketch_size"] = int(ncv)
    wide = shape[0] < shape[1]
    if wide:
        A = A.T if not backend.issparse(A) else A.T.tocsr()
    result = lazy_epsi(A, k, tol=_epsi_tol(tol, dtype, limit), maxiter=maxiter, rng=rng,
                       **options)
    if not result.converged.all():
        _not_converged(result, "singular values")
    s = result.values[::-1]
    right = result.vectors[:, ::-1]
    left = result.left_vectors[:, ::-1]
    if wide:
        left, right = right, left
    if return_singular_vectors is False:
        return s
    xp = backend.xp
    u = xp.ascontiguousarray(left) if return_singular_vectors != "vh" else None
    vh = xp.ascontiguousarray(right.T) if return_singular_vectors != "u" else None
    return u, s, vh


def eigsh(A, k: int = 6, M=None, sigma=None, which: str = "LM", v0=None,
          ncv: int | None = None, maxiter: int | None = None, tol: float = 0,
          return_eigenvectors: bool = True, Minv=None, OPinv=None, mode: str = "normal",
          rng=None):
    """k eigenvalues of largest magnitude of a real symmetric matrix, as scipy's ``eigsh``.

    ``which='LM'`` for a standard real problem is served by Lazy-EPSI on the
    singular vectors of A (for symmetric A they are its eigenvectors of
    largest magnitude; each sweep costs two passes), then a Rayleigh–Ritz
    step gives the signed eigenvalues.  Everything else (``M``, ``sigma``,
    ``Minv``, ``OPinv``, a mode other than 'normal', ``which`` other than 'LM',
    complex A, ``k >= n``) is handed to ``scipy.sparse.linalg.eigsh``, or for
    CuPy data to ``cupyx.scipy.sparse.linalg.eigsh``.

    Parameters
    ----------
    A : ndarray, sparse matrix or LinearOperator
        Real symmetric n x n (symmetry is assumed, as in scipy), host or GPU
        (CuPy array, cupyx sparse matrix or LinearOperator: CuPy results).
    k : int, default 6
    M, sigma, Minv, OPinv, mode
        Passed to scipy when given (host data only: cupyx has none of them).
    which : {'LM', 'SM', 'LA', 'SA', 'BE'}
    v0 : ndarray, optional
        Used by scipy only.
    ncv : int, optional
        Sketch width of the randomized solver (``k < ncv <= n``).
    maxiter : int, optional
        Maximum Lazy-EPSI sweeps (default 50).
    tol : float, default 0
        Relative eigen-residual of A² to reach; 0 (or, as in scipy, a
        negative value) means the rounding floor.
    return_eigenvectors : bool, default True
    rng : None, int, numpy.random.Generator or RNGState

    Returns
    -------
    w : ndarray, shape (k,)
        Ascending algebraic order with eigenvectors; ascending magnitude
        without (scipy's order for 'LM').
    v : ndarray, shape (n, k)
        Eigenvectors, if ``return_eigenvectors``.

    Raises
    ------
    ValueError
        Non-square A ("expected square matrix"), ``k <= 0``, bad ``which``,
        non-finite ``tol``, bad ``maxiter``; for CuPy data, ``M``, ``sigma``,
        ``Minv``, ``OPinv``, a mode other than 'normal', or ``rng`` on a call
        handed to cupyx.
    scipy.sparse.linalg.ArpackNoConvergence
        If the randomized solver stops short of ``tol``.

    Examples
    --------
    >>> import numpy as np
    >>> import randla
    >>> Q, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((200, 200)))
    >>> lam = np.r_[-10.0, 8.0, 6.0, np.linspace(1, 0.01, 197)]
    >>> A = (Q * lam) @ Q.T
    >>> w, v = randla.eigsh(A, k=3, rng=0)
    >>> np.allclose(w, [-10.0, 6.0, 8.0])
    True
    """
    shape = A.shape if hasattr(A, "shape") else np.shape(A)
    if len(shape) != 2 or shape[0] != shape[1]:
        raise ValueError(f"expected square matrix (shape={shape})")
    n = shape[0]
    if isinstance(k, bool) or int(k) != k:
        raise ValueError("k must be an integer.")
    if k <= 0:
        raise ValueError("k must be greater than 0.")
    if which not in _EIGSH_WHICH:
        raise ValueError("which must be one of " + " ".join(_EIGSH_WHICH))
    if not isinstance(tol, numbers.Real) or not np.isfinite(tol):
        raise ValueError(f"tol must be a finite real number, got {tol!r}")
    tol = max(float(tol), 0.0)   # ARPACK reads tol <= 0 as machine precision
    sweeps = _check_maxiter(maxiter)
    dtype = _dtype(A)
    backend = get_backend(A)
    hand_over = (M is not None or sigma is not None or Minv is not None or OPinv is not None
                 or mode != "normal" or which != "LM" or k >= n
                 or np.issubdtype(dtype, np.complexfloating))
    if hand_over:
        return _hand_over(backend, "eigsh", A, k=k, M=M, sigma=sigma, which=which, v0=v0,
                          ncv=ncv, maxiter=maxiter, tol=tol,
                          return_eigenvectors=return_eigenvectors, Minv=Minv, OPinv=OPinv,
                          mode=mode, rng=rng)
    k = int(k)
    if ncv is not None and (int(ncv) != ncv or not k < ncv <= n):
        raise ValueError("ncv must be an integer with k < ncv <= n.")
    options = _epsi_options(None, n, k)
    if ncv is not None:
        options["sketch_size"] = int(ncv)
    result = lazy_epsi(A, k, tol=_epsi_tol(tol, dtype, n), maxiter=sweeps, rng=rng, **options)
    if not result.converged.all():
        _not_converged(result, "eigenvalues")
    # A v_j = s_j left_j, so the Rayleigh–Ritz matrix on span(V) needs no more passes.
    V = result.vectors
    H = V.T @ (result.left_vectors * result.values)
    w, T = backend.eigh((H + H.T) / 2)
    if not return_eigenvectors:
        # k numbers: ordered on the host, where the stable sort is numpy's.
        order = np.argsort(np.abs(backend.to_host(w)), kind="stable")
        return w[backend.xp.asarray(order)]
    return w, V @ T
