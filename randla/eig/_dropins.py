"""Drop-in replacements for ``scipy.sparse.linalg.svds`` and ``eigsh``.

Same signatures (plus ``rng``), return shapes, ascending order and exception
types as scipy.  The randomized path is block Lanczos from a random start
(``_lanczos.py``), on AᵀA for svds and on A for eigsh; whatever it cannot
serve goes to the library's own routine unchanged:
``scipy.sparse.linalg`` for host data, ``cupyx.scipy.sparse.linalg`` for CuPy
data (which lacks some of scipy's arguments: passing one is an error).
"""
from __future__ import annotations

import numbers
import operator
import warnings

import numpy as np
import scipy.sparse.linalg as spla

from .._backend import get_backend, working_float
from .._operand import NonFiniteError, cast_operator, require_adjoint
from ..sketch import RNGState
from ._lanczos import block_lanczos, default_block, default_max_basis
from ._operand import Operand

__all__ = ["svds", "eigsh"]

_SOLVERS = ("arpack", "lobpcg", "propack")
_OPTIONS = ("block_size",)
_EIGSH_WHICH = ("LM", "SM", "LA", "SA", "BE")
# The default budget is ARPACK's: scipy allows 10 n restart cycles of ncv - k
# products each (ncv as given, or scipy's default max(2k + 1, 20), at most n).
_CYCLES_PER_DIMENSION = 10
# A given ncv caps the block so that a restart cycle (about half of ncv - k
# new columns) has at least this many steps: a cycle of few wide steps is a
# low-degree filter that stalls on clustered values (1-D Laplacian, n = 600,
# k = 6, matvecs to tol 0 at ncv 13 / 20 / 30 / 60: one column 12268 / 4073 /
# 2116 / 1388, two 20342 / 5630 / 2336 / 874, four - / 25048 / 7784 / 1660;
# ARPACK 6963 / 3825 / 2640 / 1880).
_MIN_CYCLE_STEPS = 6
# A given ncv below the default basis is raised to it where the default basis
# takes at most this many bytes: ARPACK's implicit restarts make far more of a
# small basis than these thick restarts (eigsh, k = 6, ncv = 20: the 100 x 100
# grid Laplacian 4.8 s against ARPACK's 0.36 s, the 1-D Laplacian of order
# 2000 8.5 against 2.1 s; with the default basis 0.85 and 0.54 s).  Beyond it
# ncv is kept, a bound on memory.
_RAISE_NCV_BYTES = 1 << 29
# Without vectors, a singular value within this factor of σ₁ is the square
# root of its Ritz value θ of AᵀA, which rounds at about u (σ₁ / σ)²
# relative: here as accurate as the Rayleigh–Ritz with A V that the others
# need (u σ₁ / σ), and no last product.  Largest relative errors, square
# roots against A V: σ = 1/i, 2000 x 500, k = 20 (σ₁ / σ_k = 20), 1.2e-15
# against 2.0e-15 (to ARPACK); 1500 x 400, k = 10, geometric values to
# σ₁ / σ_k = 30, 7e-16 against 1.4e-15, and to 100, 9.5e-15 against 1.3e-15
# (to numpy's SVD).
_SQRT_THETA_RATIO = 10.0
# Arguments of scipy's routines that cupyx.scipy.sparse.linalg's do not take (CuPy 14).
_CUPYX_LACKS = {"svds": ("v0", "solver", "rng", "options"),
                "eigsh": ("M", "sigma", "Minv", "OPinv", "rng")}


def _dtype(A):
    dtype = getattr(A, "dtype", None)
    return np.dtype(dtype) if dtype is not None else np.asarray(A).dtype


def _check_precision(dtype):
    """Refuse long double data, as scipy's ARPACK does (computing them in
    float64 would quietly drop the precision they were stored in), also
    where long double is float64's size."""
    if dtype.char in "gG":
        raise ValueError(f"matrix type must be 'f', 'd', 'F', or 'D' (as in scipy), "
                         f"got {dtype}")


def _rounding_floor(dtype, n):
    """The eigen-residual, relative to max|θ|, that rounding in M v allows."""
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
        # products in float64 unless A's own are float32 or float64: cast to an
        # integer dtype they would be truncated (eigenvalues 2.2 off, n = 11)
        work = A.dtype if np.dtype(A.dtype) in (np.float32, np.float64) else np.float64
        return cast_operator(A, work, symmetric=symmetric)
    return A.astype(np.float64) if cast else A


def _block_size(options, op, k, normal):
    options = {} if options is None else dict(options)
    unknown = set(options) - set(_OPTIONS)
    if unknown:
        raise ValueError(f"options: unknown keys {sorted(unknown)}; the randomized solver "
                         f"takes {list(_OPTIONS)}")
    block = options.get("block_size")
    if block is None:
        return default_block(op, k, normal)
    if isinstance(block, bool) or not isinstance(block, numbers.Integral) or block < 1:
        raise ValueError(f"options['block_size'] must be a positive integer, got {block!r}")
    return int(block)


def _solve(op, k, *, normal, tol, maxiter, options, ncv, rng, v0=None, values_only=False):
    """block_lanczos with the drop-ins' defaults; ncv is the basis size, tol
    scipy's (each Ritz value's relative accuracy; 0: the rounding floor),
    ``values_only`` where no vector is returned.
    Dense A keeps A V (no larger than A) to save the last product."""
    block = _block_size(options, op, k, normal)
    n = op.shape[1]
    itemsize = np.dtype(op.dtype).itemsize
    max_basis = default_max_basis(k, block, n, itemsize)
    if ncv is not None and (ncv >= max_basis or max_basis * n * itemsize > _RAISE_NCV_BYTES):
        max_basis = ncv
        # a thick restart keeps about half of the room beyond k, so a cycle
        # has about (ncv - k) / (2 block) steps; with one or two, a block
        # power method, runs stalled where ARPACK converges (eigsh with k =
        # 3, ncv = 5 of a 30 x 30 matrix with gap 8 : 7.5; and see
        # _MIN_CYCLE_STEPS)
        block = min(block, max(1, (ncv - k) // (2 * _MIN_CYCLE_STEPS)))
    if maxiter is None:
        arpack_ncv = ncv if ncv is not None else min(n, max(2 * k + 1, 20))
        maxiter = -(-_CYCLES_PER_DIMENSION * n * max(1, arpack_ncv - k) // block)
    dense = not (op.backend.issparse(op.A) or op.backend.is_linear_operator(op.A))
    if v0 is not None and rng is None:
        rng = _seed_from(v0)
    return block_lanczos(op, k, normal=normal, tol=tol, maxiter=maxiter, block=block,
                         max_basis=max_basis, rng=rng,
                         floor=_rounding_floor(op.dtype, op.shape[1]), start=v0,
                         keep_images=dense, values_only=values_only)


class _ArpackValueError(ValueError, spla.ArpackError):
    """Bad input that scipy's ARPACK reports as an ArpackError with code
    ``info``: a zero v0 (-9), NaN or inf in A (-9999); a ValueError too,
    with randla's message naming the cause."""

    def __init__(self, message, info):
        RuntimeError.__init__(self, message)
        self.info = info


def _solve_or_refuse(op, k, **kwargs):
    """:func:`_solve`, its NonFiniteError raised as scipy's class."""
    try:
        return _solve(op, k, **kwargs)
    except NonFiniteError as exc:
        raise _ArpackValueError(str(exc), -9999) from None


class _NoAdjoint(TypeError, NotImplementedError):
    """A LinearOperator without rmatvec given to svds: scipy raises
    NotImplementedError ("rmatvec is not defined"); randla's TypeError too."""


def _check_v0(v0, n, *, eigsh=False, real=True):
    """v0 as scipy validates it, plus what a start vector must be: finite and nonzero.

    ``eigsh``: as scipy's eigsh, which casts an integer or bool v0 to A's float
    type and takes any v0 of n entries (an n x 1 column too).  ``real`` (A
    real): a complex v0 is cast to its real part with numpy's ComplexWarning,
    as scipy's ARPACK casts it (a purely imaginary v0 is then zero)."""
    if v0 is None:
        return None
    xp = get_backend(v0).xp
    v0 = xp.atleast_1d(xp.asarray(v0))
    if eigsh and v0.dtype.kind in "biu":
        v0 = v0.astype(np.float64)
    if eigsh and v0.size == n:
        v0 = v0.reshape(n)
    if not np.issubdtype(v0.dtype, np.inexact):
        raise ValueError("`v0` must be of floating or complex floating data type.")
    if v0.shape != (n,):
        raise ValueError(f"`v0` must have shape {(n,)}.")
    if real and xp.iscomplexobj(v0):
        warnings.warn("Casting complex values to real discards the imaginary part",
                      np.exceptions.ComplexWarning, stacklevel=3)
        v0 = v0.real
    norm = float(xp.linalg.norm(v0))
    if norm == 0:
        raise _ArpackValueError("ARPACK error -9: Starting vector is zero (`v0` must be "
                                "nonzero).", -9)
    if not np.isfinite(norm):
        raise ValueError(f"`v0` must be finite and nonzero, got norm {norm}")
    return v0


def _seed_from(v0):
    """A seed that is a function of v0's entries: ARPACK's only randomness is
    its start vector, so the same v0 gives the same result there, and here."""
    words = np.ascontiguousarray(get_backend(v0).to_host(v0), dtype=np.float64).view(np.uint32)
    return np.random.default_rng(np.random.SeedSequence(words))


def _check_k(k, limit):
    # scipy's test: a 0-d array or True (as 1) passes, None is a TypeError
    if int(k) != k or not 0 < k < limit:
        raise ValueError("`k` must be an integer satisfying `0 < k < min(A.shape)`.")
    return int(k)


def _check_maxiter(maxiter):
    """maxiter as an int, or None for :func:`_solve`'s default."""
    if maxiter is None:
        return None
    if int(maxiter) != maxiter or maxiter <= 0:
        raise ValueError("`maxiter` must be a positive integer.")
    return int(maxiter)


def _check_tol_value(tol):
    # scipy's test: None or a string is a TypeError there
    if tol < 0 or not np.isfinite(tol):
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


def _not_converged(result, what, values):
    """ArpackNoConvergence with the converged pairs in ascending order, in
    A's array library (``values``: what the caller reports, singular values
    or signed eigenvalues, one per Ritz pair)."""
    bk = get_backend(result.vectors)
    keep = np.flatnonzero(result.converged)
    keep = keep[np.argsort(np.asarray(values)[keep], kind="stable")]
    raise spla.ArpackNoConvergence(
        f"randla: {keep.size} of {result.converged.size} {what} reached the tolerance "
        f"after {result.steps} block Lanczos steps (largest residual "
        f"{result.residuals.max():.2e}); raise maxiter or ncv",
        bk.xp.asarray(np.asarray(values)[keep]),
        bk.xp.take(result.vectors, bk.xp.asarray(keep), axis=1))


def svds(A, k: int = 6, ncv: int | None = None, tol: float = 0, which: str = "LM",
         v0=None, maxiter: int | None = None, return_singular_vectors=True,
         solver: str | None = None, rng=None, options: dict | None = None, *,
         random_state=None):
    """Partial SVD: the k largest singular values and vectors, as ``scipy.sparse.linalg.svds``.

    With ``solver=None``, block Lanczos on ``AᵀA`` (``AAᵀ`` for wide A)
    from a random block, with full reorthogonalisation and thick restarts,
    runs until the eigen-residual ``‖AᵀA v − θ v‖`` of each of the k
    leading Ritz pairs is at most ``tol² θ`` (ARPACK's test with the
    tolerance scipy's ``svds`` hands it, on the same operator) or the
    rounding floor; a last
    product with A gives the singular values and left vectors.  On host dense data each step reads
    A once for both products.  Values alone take that last product only
    for the values below ``σ₁ / 10``: the others are square roots of
    AᵀA's Ritz values, as accurate there (rounding ``u (σ₁ / σ)²``).

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
        Lanczos vectors kept before a restart (``k < ncv < min(A.shape)``,
        as scipy requires).
        Default ``max(4k, 2k + 12 b)`` (b: block size), or 100 where that
        is more and 100 vectors of ``min(A.shape)`` entries take at most
        512 MiB, at most ``min(A.shape)``.  Runs that converge before the
        basis fills never restart; slower ones take fewer steps with more
        vectors.  A given ncv below the default is raised to it where the
        default basis takes at most 512 MiB: thick restarts make less of a
        small basis than ARPACK's implicit ones (eigsh of the 100 x 100
        grid Laplacian, k = 6, ncv = 20: 4.8 s kept, 0.73 s raised, ARPACK
        0.39 s).  Beyond that a given ncv is kept, a bound on memory, and
        caps the block at ``(ncv - k) // 12`` columns (at least 1), so that
        a restart cycle has about six steps or more: fewer, wider steps
        stall on clustered values where ARPACK converges.
    tol : float, default 0
        Relative accuracy ``tol²`` of each eigenvalue θ = σ² of ``AᵀA``, as
        in scipy (which hands ARPACK ``tol**2``): the eigen-residual must
        reach ``tol² θ``, so σ is within about ``tol² σ / 2`` and each
        vector within ``tol² θ`` over θ's gap.  0 (and any ``tol`` below
        it) means the rounding floor of the products near each pair,
        ``50 u sqrt(n) σ₁ σ`` with u the unit roundoff of the working
        precision, or, where the estimates of values at the rounding level
        of ``AᵀA`` stall above it, ``50 u sqrt(n) σ₁²``.  A wanted σ with σ²
        under about ``50 u sqrt(n) σ₁²`` (σ / σ₁ below about 1e-6 in
        float64) is below what ``AᵀA`` resolves and has no guaranteed
        accuracy: beside σ₁ = 1e12, values near 10 came out tens of percent
        off, without an error, where ARPACK still resolves them.
        Without singular vectors (``return_singular_vectors=False``) a pair
        also counts as converged once its value is within that accuracy by
        the gap bound ``|θ̂ − θ| ≤ ‖r‖² / δ`` (δ: the distance to the other
        Ritz values, less their residuals), or within ``u sqrt(n) σ₁ σ``,
        the rounding level of θ itself: values converge in fewer steps than
        vectors (17 instead of 20 for 20000 x 5000, singular values 1/i,
        k = 20).  They are then as accurate as ``tol`` asks, where a call
        with vectors, whose residual test bounds the values by the square
        of that, gives more (σ = 1/i, k = 10, ``tol=1e-3``: 2.9e-8 against
        1.1e-13 relative); at ``tol=0`` both are at the rounding level.
    which : {'LM', 'SM'}
        'SM' is not served randomly: it goes to scipy (ARPACK).
    v0 : ndarray, optional
        Start vector, of length ``min(A.shape)``: the first column of the
        start block, the others random from ``rng``.  With ``rng=None`` those
        are seeded from v0's entries, so that the same v0 gives the same
        result, as with ARPACK.  A complex v0 for real A starts from its
        real part, with numpy's ComplexWarning, as in scipy.
    maxiter : int, optional
        Maximum block Lanczos steps.  Not ARPACK's unit: an ARPACK iteration
        is a restart cycle of about ``ncv - k`` products, a step here one
        product with a block of b columns, so a maxiter tuned for ARPACK
        stops this solver sooner: the same number of products is about
        ``maxiter * (ncv - k) / b`` steps.  The default is the products
        ARPACK's default allows, ``10 min(A.shape)`` cycles of ``ncv - k``
        (ncv as given, or scipy's default ``max(2k + 1, 20)``), in steps of
        b columns.
    return_singular_vectors : {True, False, 'u', 'vh'}
        As in scipy: ``(u, s, vh)``, ``s`` (also for any false value, such as 0
        or ``numpy.False_``), ``(u, s, None)`` or ``(None, s, vh)``.
    solver : {None, 'arpack', 'lobpcg', 'propack'}
        None: randla's randomized solver.  A scipy name hands the whole call
        to ``scipy.sparse.linalg.svds`` (host data only).
    rng : None, int, numpy.random.Generator, RNGState or any seed scipy takes
        Source of the start block (SPEC 7); the same seed gives the same result.
        What ``numpy.random.default_rng`` takes (a RandomState, SeedSequence,
        BitGenerator) is made a Generator by it, as scipy does; a call handed
        to scipy gets the seed (a Generator seeded from an RNGState).
    options : dict, optional
        Randomized solver: ``block_size``, columns per step.  Default 4 for
        dense data and LinearOperators; for sparse data 4 when the products
        read at least 64 nonzeros per basis row (``2 nnz / n``), else 2;
        ``min(16, max(4, ceil(k/2)))`` on a GPU.  Larger blocks take fewer
        steps but more matvecs.  With a scipy solver: scipy's options.
    random_state : optional, keyword-only
        scipy's older name for the seed, taken as ``rng`` (giving both is a
        TypeError, as in scipy).

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
        solver, with scipy's messages; for A of long double type (as
        scipy); for CuPy data handed to cupyx
        (``which='SM'``, complex data) with an argument cupyx's ``svds``
        lacks (``v0``, ``rng``, ``options``), or with ``solver``.
    TypeError
        As scipy: k or tol of None, or a tol that is a string (a string k
        is a ValueError there too); both ``rng`` and ``random_state``.  A
        LinearOperator without rmatvec raises a TypeError that is also
        scipy's NotImplementedError.
    scipy.sparse.linalg.ArpackError
        A zero ``v0`` (ARPACK error -9, as in scipy); NaN or inf in A, or
        products with A that overflow (scipy's ARPACK fails with its error
        -9999 there; randla's message names the cause).  Both are also
        ValueErrors.
    scipy.sparse.linalg.ArpackNoConvergence
        If the randomized solver stops short of ``tol`` (its ``eigenvalues``
        attribute holds the converged singular values).

    See Also
    --------
    scipy.sparse.linalg.svds : the routine this replaces.
    randla.eig.randomized_svd : a fixed-rank randomized SVD with an error estimate.

    Notes
    -----
    A Krylov space grown from a block of b columns holds at most b copies
    of a repeated singular value (in exact arithmetic; rounding often lets
    more in).  When b or more equal values above the k-th converge (equal
    within the accuracy ``tol`` asks for, or near-copies each within 3 tol
    of the next, ahead of a wider gap), or always with one column per step,
    a fresh random block widens the next
    step, and the iteration goes on until pairs that had not converged
    when it widened have converged too: copies ARPACK misses (10 equal
    leading values at k = 12, or every eigenvalue three times) are found.
    This is a heuristic: it finds hidden copies in every case tested, but
    cannot prove none is left.

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
    if random_state is not None:
        if rng is not None:
            # scipy's exception type
            raise TypeError("svds() got the seed twice: specify one of rng or random_state")
        rng = random_state
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
    _check_precision(dtype)
    limit = min(shape)
    k = _check_k(k, limit)
    if ncv is not None and (int(ncv) != ncv or not k < ncv < limit):
        raise ValueError("`ncv` must be an integer satisfying `k < ncv < min(A.shape)`.")
    tol = _check_tol_value(tol)
    which = str(which).upper()
    if which not in ("LM", "SM"):
        raise ValueError("`which` must be in {'LM', 'SM'}.")
    v0 = _check_v0(v0, limit, real=not np.issubdtype(dtype, np.complexfloating))
    steps = _check_maxiter(maxiter)
    if return_singular_vectors not in (True, False, "u", "vh"):
        raise ValueError("`return_singular_vectors` must be in {True, False, 'vh', 'u'}.")
    if which == "SM" or np.issubdtype(dtype, np.complexfloating):
        # Smallest singular values and complex data are the library's job.
        return _hand_over(backend, "svds", A, k=k, ncv=ncv, tol=tol, which=which, v0=v0,
                          maxiter=maxiter, return_singular_vectors=return_singular_vectors,
                          rng=rng, options=options)
    try:     # on A as given: a float16 operator is wrapped next, with an rmatvec
        require_adjoint(A, "A", "svds")
    except TypeError as exc:
        raise _NoAdjoint(str(exc)) from None
    A = _as_operand(A, backend, dtype)
    wide = shape[0] < shape[1]
    if wide:
        # sparse: a CSR copy of Aᵀ, whose products gather from and scatter into
        # blocks as long as A's short side; the CSC view Aᵀ would do both at
        # random in blocks as long as its long side (10^5 x 10^6, k = 10:
        # 3.2-3.5 s against 1.7-2.7 s)
        A = A.T if not backend.issparse(A) else A.T.tocsr()
    op = Operand(A)
    # scipy's svds hands ARPACK tol**2 for the eigenvalues of AᵀA
    result = _solve_or_refuse(op, k, normal=True, tol=tol ** 2, maxiter=steps,
                              options=options, ncv=None if ncv is None else int(ncv),
                              rng=rng, v0=v0, values_only=not return_singular_vectors)
    xp = backend.xp
    if not result.converged.all():
        _not_converged(result, "singular values", (np.sqrt(np.maximum(
            result.values, 0)) / op.scale).astype(working_float(op.dtype)))
    if not return_singular_vectors:     # as scipy tests it: 0 and numpy.False_ too
        return _values_without_vectors(op, result)
    # Rayleigh–Ritz with A itself: singular values from A V (not square
    # roots of AᵀA's), and orthonormal left vectors even where s = 0
    AV = result.images if result.images is not None else op.matmat(result.vectors)
    # The rest is small (m x k and n x k blocks by k x k factors): on one
    # BLAS thread, whose pool does not spin afterwards to stall the numba
    # kernels of the caller's next call (a 20000 x 2000 sparse svds in a
    # loop: 93-100 ms a call, against 30-40 ms)
    with backend.single_threaded_blas():
        Qa, Ra = backend.tall_qr(AV)
        Ur, s, Tt = backend.svd(Ra)
        s = s[::-1] if op.scale == 1.0 else s[::-1] / op.dtype.type(op.scale)   # of A
        left, right = (Qa @ Ur)[:, ::-1], (result.vectors @ Tt.T)[:, ::-1]
    if wide:
        left, right = right, left
    u = xp.ascontiguousarray(left) if return_singular_vectors != "vh" else None
    vh = xp.ascontiguousarray(right.T) if return_singular_vectors != "u" else None
    return u, s, vh


def _values_without_vectors(op, result):
    """svds's singular values, ascending, where no vector is returned.

    Where A V was kept (dense A) every value comes from its Rayleigh–Ritz,
    as with vectors; otherwise the values within ``_SQRT_THETA_RATIO`` of
    σ₁ are square roots of their Ritz values, and the others come from A
    times their Ritz vectors (one product with that many columns, none
    where all are near σ₁)."""
    sigma = np.sqrt(np.maximum(result.values, 0.0))      # host, largest first
    near = (0 if result.images is not None
            else int(np.count_nonzero(sigma * _SQRT_THETA_RATIO >= sigma[0])))
    xp = op.xp
    s = xp.asarray(sigma[:near], dtype=op.dtype)
    if near < sigma.size:
        AV = (result.images[:, near:] if result.images is not None
              else op.matmat(result.vectors[:, near:]))
        # R alone: the same R as with Q, so the same values
        with op.backend.single_threaded_blas():
            far = op.backend.svd(op.backend.tall_qr(AV, q=False)[1])[1]
        s = xp.concatenate([s, far.astype(op.dtype, copy=False)])
    s = xp.sort(s)
    return s if op.scale == 1.0 else s / op.dtype.type(op.scale)


def eigsh(A, k: int = 6, M=None, sigma=None, which: str = "LM", v0=None,
          ncv: int | None = None, maxiter: int | None = None, tol: float = 0,
          return_eigenvectors: bool = True, Minv=None, OPinv=None, mode: str = "normal",
          rng=None):
    """Eigenvalues of largest magnitude of a real symmetric matrix, as scipy's ``eigsh``.

    ``which='LM'`` for a standard real problem is served by block Lanczos
    on A from a random block (one product with A per step), keeping the k
    Ritz pairs of largest magnitude.  Everything else (``M``, ``sigma``,
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
        Number of eigenpairs, ``k > 0`` (``k >= n`` goes to scipy, which
        computes them all densely).
    M : ndarray, sparse matrix or LinearOperator, optional
        Generalized problem ``A x = λ M x``: handed to scipy.
    sigma : float, optional
        Shift-invert mode: handed to scipy.
    which : {'LM', 'SM', 'LA', 'SA', 'BE'}, default 'LM'
        Only 'LM' is served by the randomized solver; the others go to scipy.
    v0 : ndarray, optional
        Start vector, shape (n,): the first column of the start block, as in
        :func:`svds` (the same v0 gives the same result).  As scipy's eigsh,
        integer and bool entries and an n x 1 column are taken.
    ncv : int, optional
        Lanczos vectors kept before a restart (``k < ncv``; as in scipy, at
        most n are used).  Default ``max(4k, 2k + 12 b)``, or 100 where that
        is more and 100 vectors of n entries take at most 512 MiB, at most
        n, with b columns per step: 4, or 2 for sparse A with fewer than 64
        nonzeros per row (there the products are cheap and each step's
        projections cost as much), as in :func:`svds`.  As there, a given
        ncv below the default is raised to it where the default basis takes
        at most 512 MiB; beyond that it is kept and caps b at
        ``(ncv - k) // 12`` (at least 1).
    maxiter : int, optional
        Maximum block Lanczos steps; not ARPACK's restart cycles.  The
        default is the products ARPACK's default allows, ``10 n`` cycles of
        ``ncv - k`` (ncv as given, or scipy's default ``max(2k + 1, 20)``),
        in steps of b columns; see :func:`svds`.
    tol : float, default 0
        Relative accuracy of each eigenvalue, as in scipy: the
        eigen-residual ``‖Av − λv‖`` must reach ``tol |λ|``.  0 (or, as in
        scipy, a negative value) means the rounding floor,
        ``50 u sqrt(n) max|λ|`` with u the unit roundoff of the working
        precision; no target is set below it, so eigenvalues far below the
        largest get only that absolute accuracy (beside 1e12, values near 10
        came out 0.5 % off, where ARPACK resolves them to 1e-8).
        Without eigenvectors a pair also counts as converged once its value
        is within ``tol |λ|`` (or ``u sqrt(n) max|λ|``) by the gap bound
        ``‖r‖² / δ``, δ its distance to the other Ritz values less their
        residuals, as :func:`svds` explains: fewer steps, and values as
        accurate as ``tol`` asks rather than the far better ones a call
        with eigenvectors happens to give.
    return_eigenvectors : bool, default True
        Return the eigenvectors as well as the eigenvalues.
    Minv, OPinv : ndarray, sparse matrix or LinearOperator, optional
        Inverses for the generalized and shift-invert modes: handed to scipy.
    mode : {'normal', 'buckling', 'cayley'}, default 'normal'
        Shift-invert mode: anything but 'normal' goes to scipy.
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
        Non-square A ("expected square matrix"), long double data (as
        scipy), ``k <= 0``, bad ``which``,
        non-finite ``tol``, bad ``maxiter``; for CuPy data, ``M``, ``sigma``,
        ``Minv``, ``OPinv``, a mode other than 'normal', or ``rng`` on a call
        handed to cupyx.
    TypeError
        As scipy: k that is not a number (None, a string) or a bool; ncv
        that is not an integer (10.0 included) or a bool;
        ``return_eigenvectors`` that is not a bool or an integer.
    scipy.sparse.linalg.ArpackError
        A zero ``v0`` (ARPACK error -9, as in scipy); NaN or inf in A, or
        products with A that overflow (ARPACK's error -9999 in scipy).
        Both are also ValueErrors.
    scipy.sparse.linalg.ArpackNoConvergence
        If the randomized solver stops short of ``tol`` (its ``eigenvalues``
        and ``eigenvectors`` hold the Ritz pairs of A on the converged vectors).

    See Also
    --------
    scipy.sparse.linalg.eigsh : the routine this replaces.
    randla.eig.nystrom : a randomized low-rank approximation of a PSD matrix.

    Notes
    -----
    Lanczos on A itself tells λ from −λ: a spectrum symmetric about 0 (a
    bipartite graph's) gives true eigenpairs across a tie at the k-th
    magnitude.  Repeated eigenvalues: see :func:`svds`.

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
    # scipy's order: k <= 0 first (a TypeError for None or a string), and
    # its ARPACK wrapper takes no bool (a TypeError)
    if k <= 0:
        raise ValueError("k must be greater than 0.")
    if isinstance(k, (bool, np.bool_)):
        raise TypeError(f"k must be an integer, got {k!r}")
    if int(k) != k:
        raise ValueError("k must be an integer.")
    if which not in _EIGSH_WHICH:
        raise ValueError("which must be one of " + " ".join(_EIGSH_WHICH))
    if not isinstance(tol, numbers.Real) or not np.isfinite(tol):
        raise ValueError(f"tol must be a finite real number, got {tol!r}")
    tol = max(float(tol), 0.0)   # ARPACK reads tol <= 0 as machine precision
    steps = _check_maxiter(maxiter)
    rng = _check_rng(rng)
    if not isinstance(return_eigenvectors, (bool, np.bool_)):
        # scipy's ARPACK wrapper takes an integer (a 0-d integer array too):
        # a string or None is a TypeError
        try:
            operator.index(return_eigenvectors)
        except TypeError:
            raise TypeError(f"return_eigenvectors must be True or False, "
                            f"got {return_eigenvectors!r}") from None
    dtype = _dtype(A)
    _check_precision(dtype)
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
        # as scipy: a non-integer ncv (10.0 too) is a TypeError, and it uses
        # min(ncv, n), so a larger ncv is no error
        if isinstance(ncv, bool) or not isinstance(ncv, numbers.Integral):
            raise TypeError(f"ncv must be an integer, got {ncv!r}")
        if not k < min(ncv, n):
            raise ValueError("ncv must be an integer with k < ncv (at most n of them used).")
        ncv = min(int(ncv), n)
    v0 = _check_v0(v0, n, eigsh=True)
    A = _as_operand(A, backend, dtype, symmetric=True)
    op = Operand(A)
    result = _solve_or_refuse(op, k, normal=False, tol=tol, maxiter=steps,
                              options=None, ncv=ncv, rng=rng, v0=v0,
                              values_only=not return_eigenvectors)
    xp = backend.xp
    values = (result.values / op.scale).astype(working_float(op.dtype))   # of A, not scale A
    if not result.converged.all():
        _not_converged(result, "eigenvalues", values)
    # ascending algebraic order with vectors, ascending magnitude without (scipy's)
    order = np.argsort(values, kind="stable") if return_eigenvectors else \
        np.argsort(np.abs(values), kind="stable")
    w = xp.asarray(values[order])
    if not return_eigenvectors:
        return w
    return w, xp.take(result.vectors, xp.asarray(order), axis=1)
