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

from .._backend import get_backend, working_float
from ..sketch import RNGState
from ._epsi import _run_lazy_epsi
from ._lowrank import _orth_against
from ._operand import Operand

__all__ = ["svds", "eigsh"]

_SOLVERS = ("arpack", "lobpcg", "propack")
_OPTIONS = ("sketch_size", "power_iters", "shrink")
# Retries with a doubled sketch when the default one does not converge.
_WIDENINGS = 2
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
    return 50 * float(np.finfo(working_float(dtype)).eps) * np.sqrt(n)


def _as_operand(A, backend, dtype, symmetric=False):
    """A in the precision scipy computes it in, and (``symmetric``) applied by its
    products with A alone.

    scipy's ARPACK computes float16 data in float64 (randla's own routines would use
    float32), and its ``eigsh`` only ever calls ``matvec``: a LinearOperator without
    ``rmatvec`` is fine there, so Aᵀ is applied as A.
    """
    cast = np.dtype(dtype) == np.float16
    if backend.is_linear_operator(A):
        if not (cast or symmetric):
            return A
        return backend.sparse_linalg.LinearOperator(
            A.shape, matvec=A.matvec, matmat=A.matmat,
            rmatvec=A.matvec if symmetric else A.rmatvec,
            rmatmat=A.matmat if symmetric else A.rmatmat,
            dtype=np.float64 if cast else A.dtype)
    return A.astype(np.float64) if cast else A


def _epsi_options(options, limit, k):
    options = {} if options is None else dict(options)
    unknown = set(options) - set(_OPTIONS)
    if unknown:
        raise ValueError(f"options: unknown keys {sorted(unknown)}; the randomized solver "
                         f"takes {list(_OPTIONS)}")
    options.setdefault("sketch_size", min(max(3 * k, k + 30), limit))
    return options


def _lazy_epsi(A, k, *, tol, sweeps, rng, options, limit, widen):
    """lazy_epsi; with randla's default sketch size (``widen``), retried with
    twice the sketch, up to _WIDENINGS times and min(A.shape) columns, while
    it falls short for want of sweeps or stalls far above the rounding floor
    (not at the floor, which a wider sketch does not lower).  Returns the
    best attempt.

    The default sketch suits gaps after value k of a few per cent; with
    smaller ones (clustered spectra, common in sparse data) the sweeps
    contract too slowly, and an attempt that can still be widened gives up
    as soon as its measured rate shows it.
    """
    best = None
    for attempt in range(_WIDENINGS + 1 if widen else 1):
        wider = widen and attempt < _WIDENINGS and options["sketch_size"] < limit
        result, short = _run_lazy_epsi(A, k, tol=tol, maxiter=sweeps, rng=rng,
                                      give_up_early=wider, **options)
        if best is None or _better(result, best):
            best = result
        if result.converged.all() or not (short and wider):
            break
        options = dict(options, sketch_size=min(2 * options["sketch_size"], limit))
    return best


def _better(result, other):
    """More values converged, then a smaller largest residual."""
    return ((int(result.converged.sum()), -float(result.residuals.max()))
            > (int(other.converged.sum()), -float(other.residuals.max())))


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


def _check_rng(rng):
    """None, an int, a Generator or an RNGState as they are; anything else scipy takes
    (a RandomState, SeedSequence, BitGenerator, ...) as ``numpy.random.default_rng``
    makes it a Generator, as scipy does (its TypeError for anything else)."""
    if rng is None or isinstance(rng, (numbers.Integral, np.random.Generator, RNGState)):
        return rng
    return np.random.default_rng(rng)


def _scipy_rng(rng):
    # scipy cannot take an RNGState: a Generator seeded from it keeps the call repeatable.
    return np.random.default_rng([rng.key, rng.counter]) if isinstance(rng, RNGState) \
        else rng


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


def _not_converged(result, what, signed=False):
    """ArpackNoConvergence with the converged pairs: singular values and right vectors,
    or (``signed``, for eigsh) the Ritz pairs of A on the converged vectors, as scipy's
    eigsh reports eigenvalues, not their sizes."""
    bk = get_backend(result.values)
    keep = bk.xp.asarray(np.flatnonzero(result.converged))
    values = bk.xp.take(result.values, keep)
    vectors = bk.xp.take(result.vectors, keep, axis=1)
    if signed and int(keep.size):
        values, vectors = _ritz_pairs(
            vectors, bk.xp.take(result.left_vectors, keep, axis=1) * values)
    raise spla.ArpackNoConvergence(
        f"randla: {int(np.sum(result.converged))} of {result.converged.size} {what} reached "
        f"the tolerance after {result.sweeps} Lazy-EPSI sweeps (largest residual "
        f"{result.residuals.max():.2e}); raise maxiter or options['sketch_size']",
        values, vectors)


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
        device and gives CuPy results.  float32 data give float32 results;
        float16 data are computed in float64, as scipy does.
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
        Maximum Lazy-EPSI sweeps (default 50) for each sketch size tried.
    return_singular_vectors : {True, False, 'u', 'vh'}
        As in scipy: ``(u, s, vh)``, ``s`` (also for any false value, such as 0
        or ``numpy.False_``), ``(u, s, None)`` or ``(None, s, vh)``.
    solver : {None, 'arpack', 'lobpcg', 'propack'}
        None: randla's randomized solver.  A scipy name hands the whole call
        to ``scipy.sparse.linalg.svds`` (host data only).
    rng : None, int, numpy.random.Generator, RNGState or any seed scipy takes
        Source of the sketch (SPEC 7); the same seed gives the same result.
        What ``numpy.random.default_rng`` takes (a RandomState, SeedSequence,
        BitGenerator) is made a Generator by it, as scipy does; a call handed
        to scipy gets the seed (a Generator seeded from an RNGState).
    options : dict, optional
        Randomized solver: ``sketch_size`` (default ``min(max(3k, k + 30),
        min(A.shape))``, doubled up to twice when the sweeps do not
        converge with it), ``power_iters`` (default 1) and ``shrink`` (see
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
    rng = _check_rng(rng)
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
    sweeps = _check_maxiter(maxiter)
    if return_singular_vectors not in (True, False, "u", "vh"):
        raise ValueError("`return_singular_vectors` must be in {True, False, 'vh', 'u'}.")
    if which == "SM" or np.issubdtype(dtype, np.complexfloating):
        # Smallest singular values and complex data are the library's job.
        return _hand_over(backend, "svds", A, k=k, ncv=ncv, tol=tol, which=which, v0=v0,
                          maxiter=maxiter, return_singular_vectors=return_singular_vectors,
                          rng=rng, options=options)
    widen = ncv is None and "sketch_size" not in (options or {})
    options = _epsi_options(options, limit, k)
    if ncv is not None:
        options["sketch_size"] = int(ncv)
    A = _as_operand(A, backend, dtype)
    wide = shape[0] < shape[1]
    if wide:
        A = A.T if not backend.issparse(A) else A.T.tocsr()
    result = _lazy_epsi(A, k, tol=_epsi_tol(tol, dtype, limit), sweeps=sweeps, rng=rng,
                        options=options, limit=limit, widen=widen)
    if not result.converged.all():
        _not_converged(result, "singular values")
    s = result.values[::-1]
    right = result.vectors[:, ::-1]
    left = result.left_vectors[:, ::-1]
    if wide:
        left, right = right, left
    if not return_singular_vectors:    # as scipy tests it: 0 and numpy.False_ too
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
        A LinearOperator needs only ``matvec`` / ``matmat``, as in scipy: Aᵀ
        is applied as A.  float16 data are computed in float64, as scipy does.
    k : int, default 6
    M, sigma, Minv, OPinv, mode
        Passed to scipy when given (host data only: cupyx has none of them).
    which : {'LM', 'SM', 'LA', 'SA', 'BE'}
    v0 : ndarray, optional
        Used by scipy only.
    ncv : int, optional
        Sketch width of the randomized solver (``k < ncv``; as in scipy, at
        most n is used).  Default ``min(max(3k, k + 30), n)``, doubled up to
        twice when the sweeps do not converge with it.
    maxiter : int, optional
        Maximum Lazy-EPSI sweeps (default 50) for each sketch size tried.
    tol : float, default 0
        Relative eigen-residual of A² to reach; 0 (or, as in scipy, a
        negative value) means the rounding floor.
    return_eigenvectors : bool, default True
    rng : None, int, numpy.random.Generator, RNGState or any seed scipy takes
        As in :func:`svds`.

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
        If the randomized solver stops short of ``tol`` (its ``eigenvalues``
        and ``eigenvectors`` hold the Ritz pairs of A on the converged vectors).

    Notes
    -----
    Where |λ| ties across the k-th value (λ and −λ, as in a symmetric
    spectrum), the singular vectors there mix the two eigenvectors: one more
    product with A on the part of A V outside span(V) separates them, and the
    k Ritz pairs of largest magnitude are returned.  A near tie (|λ| gap at
    the tolerance) can stall Lazy-EPSI, which works on A²: unless the widened
    sketch spans the whole space (small n), ``ArpackNoConvergence`` is then
    raised where ARPACK converges.

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
    rng = _check_rng(rng)
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
    if ncv is not None:
        # scipy uses min(ncv, n): a larger ncv is no error.
        if int(ncv) != ncv or not k < min(ncv, n):
            raise ValueError("ncv must be an integer with k < ncv (at most n of them used).")
        ncv = min(int(ncv), n)
    options = _epsi_options(None, n, k)
    if ncv is not None:
        options["sketch_size"] = ncv
    A = _as_operand(A, backend, dtype, symmetric=True)
    tol = _epsi_tol(tol, dtype, n)
    result = _lazy_epsi(A, k, tol=tol, sweeps=sweeps, rng=rng, options=options, limit=n,
                        widen=ncv is None)
    if not result.converged.all():
        _not_converged(result, "eigenvalues", signed=True)
    w, X = _largest_eigenpairs(A, result, np.sqrt(tol))
    if not return_eigenvectors:
        # k numbers: ordered on the host, where the stable sort is numpy's.
        order = np.argsort(np.abs(backend.to_host(w)), kind="stable")
        return w[backend.xp.asarray(order)]
    return w, X


def _largest_eigenpairs(A, result, threshold):
    """The k eigenpairs of largest magnitude of symmetric A from its top singular vectors
    (``result``), in ascending order.

    ``A v_j = s_j l_j``, so Rayleigh–Ritz on span(V) needs no more passes, and gives
    A's eigenpairs where span(V) is invariant.  It is not where |λ| ties across the
    cut (λ and −λ: a bipartite graph's spectrum, say): V then holds mixtures
    ``a x₊ + b x₋`` of singular vectors, whose Rayleigh quotients are no eigenvalues.
    The part of A V outside span(V) holds the partners ``a x₊ − b x₋``: one more
    product with its significant directions (``threshold``: a dropped one moves a
    Ritz value by about ``threshold² σ``) and Rayleigh–Ritz on the wider space
    separates the pairs; the k of largest magnitude are kept.
    """
    bk = get_backend(result.vectors)
    xp = bk.xp
    V, L = result.vectors, result.left_vectors
    k = V.shape[1]
    AV = L * result.values
    Q, AQ = V, AV
    outside = L - V @ (V.T @ L)
    if float(xp.linalg.norm(outside, axis=0).max()) > threshold:
        Uo, so, _ = bk.svd(outside)
        keep = int(np.count_nonzero(bk.to_host(so) > threshold))
        Z = _orth_against(V, Uo[:, :keep])
        Q, AQ = xp.hstack([V, Z]), xp.hstack([AV, Operand(A).matmat(Z)])
    w, X = _ritz_pairs(Q, AQ)
    if Q.shape[1] > k:
        # The k of largest magnitude, still in ascending order.
        order = np.sort(np.argsort(-np.abs(bk.to_host(w)), kind="stable")[:k])
        order = xp.asarray(order)
        w, X = w[order], X[:, order]
    return w, X


def _ritz_pairs(Q, AQ):
    """Ritz pairs (ascending) of the symmetric A on span(Q), Q orthonormal, from A Q."""
    H = Q.T @ AQ
    w, T = get_backend(Q).eigh((H + H.T) / 2)
    return w, Q @ T
