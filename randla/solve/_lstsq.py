"""``randla.lstsq``: scipy.linalg.lstsq's contract, randomized where that is faster."""
from __future__ import annotations

import functools
import math
import numbers
import warnings

import numpy as np
import scipy.linalg as sla

from .._backend import Backend, _blas_controller, get_backend
from .._checks import check_int
from .._operand import cast_operator, require_adjoint, stored_values
from ..sketch._rng import check_rng
from ._drivers import (DEFAULT_CUTOFF_EPS, _check_tol, fossils,
                       iterative_sketching, min_norm, sketch_and_precondition,
                       sketch_and_solve, spir)
from ._preconditioner import _HOST_MODEL, host_pass_seconds
from ._sirr import sirr

__all__ = ["lstsq", "prefers_randomized", "prefers_randomized_gpu"]

_DRIVERS = {
    "spir": spir,
    "fossils": fossils,
    "sketch_and_solve": sketch_and_solve,
    # the QR form, or the SVD form where the sketch is rank deficient: lstsq
    # returns the minimum-norm solution whatever the method
    "lsqr": lambda A, b, **kw: sketch_and_precondition(A, b, solver="lsqr",
                                                       preconditioner="auto", **kw),
    "cg": lambda A, b, **kw: sketch_and_precondition(A, b, solver="cg",
                                                     preconditioner="auto", **kw),
    "iterative_sketching": iterative_sketching,
    "sirr": sirr,
}
_METHODS = ("auto", "lapack", "randomized") + tuple(_DRIVERS)

# Cost model (seconds) of prefers_randomized, from the 2-core CI machine:
# gelsd solves 40000 x 1000 in 1.9-2.0 s and 100000 x 2000 in 13-15 s.
_GELSD_SECONDS_PER_MN2 = 4.0e-11
# gelsd takes twice as long where OpenBLAS runs its AVX2 kernels (no
# AVX-512): 6e-11 to 1.6e-10 s per m n^2 on a 2-core AVX2 machine (40000 x
# 1000 in 3.2-3.9 s, 100000 x 500 in 2.35 s, 200000 x 300 in 2.85 s) while
# the randomized solver's passes, bound by memory, kept their modelled time.
_AVX2_GELSD_FACTOR = 2.0
# OpenBLAS's names (threadpoolctl's "architecture") for its AVX2 kernels.
_AVX2_OPENBLAS_CORES = frozenset({"haswell", "zen"})
_SKETCH_SECONDS_PER_MN = 6.0e-9        # sparse sign sketch, 8 nonzeros per column
_PASSES = 30


def prefers_randomized(m: int, n: int, nrhs: int = 1, *, row_major: bool = True) -> bool:
    """The cost model behind ``method="auto"``: is the randomized solver faster?

    LAPACK's gelsd costs about ``4e-11 * m * n^2`` seconds on the reference
    machine (the 2-core CI machine).  The randomized solver costs a sketch
    (``6e-9 * m * n``), a QR of a sketch of about 5n rows (``10 n^3`` flops
    at 5.5e10 flop/s) and about 30 passes over A (``8 m n`` bytes at 27 GB/s
    each, 0.23 times more per extra right-hand side up to sixteen on
    row-major A (``row_major``; eight on column-major A), then two GEMMs:
    3.2 times a single-column pass plus ``4 m n nrhs`` flops at 9e10
    flop/s).  The randomized path is chosen only for tall
    problems (``m >= 4 n``) where it is modelled at least 1.5 times faster:
    with one right-hand side that takes n >= 582 at m = 100000, n >= 625 at
    m = 40000 and n >= 751 at m = 20000 (measured: 1.8 times faster than
    gelsd at 20000 x 800, 2.2 times at 40000 x 650, 3.2 times at 100000 x
    600).  Small and square problems stay with LAPACK.

    Where scipy's BLAS is an OpenBLAS running its AVX2 kernels (threadpoolctl
    reports the architecture Haswell or Zen), gelsd is modelled twice as dear,
    as measured on a 2-core AVX2 machine; the thresholds fall to n >= 282 at
    m = 100000, 287 at 40000, 294 at 20000 and 313 at 10000 (measured there:
    the randomized solver 2.75, 1.53, 1.29 and 1.19 times faster than gelsd
    at 100000 x 290, 40000 x 290, 20000 x 300 and 10000 x 320).

    Parameters
    ----------
    m, n : int
        Shape of A.
    nrhs : int, default 1
        Right-hand sides.
    row_major : bool, keyword-only, default True
        Whether A is C-ordered (the fused sweep serves up to 16 columns of a
        row-major A, 8 of a column-major one).

    Returns
    -------
    bool
        True where the randomized solver is modelled at least 1.5 times faster.

    Raises
    ------
    TypeError
        If m, n or nrhs is not an integer.
    ValueError
        If one is negative.

    Examples
    --------
    >>> from randla.solve import prefers_randomized
    >>> prefers_randomized(2000, 50), prefers_randomized(1000, 1000)
    (False, False)
    >>> prefers_randomized(40000, 1000)
    True
    """
    m, n, nrhs = check_int("m", m, 0), check_int("n", n, 0), check_int("nrhs", nrhs, 0)
    if m < 4 * n or n == 0:
        return False
    lapack = _gelsd_seconds_per_mn2() * m * n * n
    randomized = (_SKETCH_SECONDS_PER_MN * m * n
                  + 10.0 * n ** 3 / _HOST_MODEL.factor_flops_per_s
                  + _PASSES * host_pass_seconds(m, n, nrhs, row_major))
    return 1.5 * randomized < lapack


@functools.cache
def _gelsd_seconds_per_mn2() -> float:
    """The cost model's seconds of gelsd per ``m n^2`` with the BLAS loaded."""
    controller = _blas_controller()
    if controller is None:          # no threadpoolctl: the reference
        return _GELSD_SECONDS_PER_MN2
    cores = {str(lib.get("architecture", "")).lower() for lib in controller.info()
             if lib.get("user_api") == "blas" and lib.get("internal_api") == "openblas"}
    if cores and cores <= _AVX2_OPENBLAS_CORES:
        return _AVX2_GELSD_FACTOR * _GELSD_SECONDS_PER_MN2
    return _GELSD_SECONDS_PER_MN2


def prefers_randomized_gpu(m: int, n: int) -> bool:
    """``method="auto"``'s rule for CuPy data: the randomized solver for tall
    problems (``m >= 4 n``) with at least 2**20 entries.

    ``cupy.linalg.lstsq`` computes a full SVD of A with cuSOLVER, which costs
    far more than the randomized solver's few passes over A except on small
    problems, where kernel-launch and synchronisation latency dominate both.
    m and n are checked as in :func:`prefers_randomized`.

    Examples
    --------
    >>> from randla.solve import prefers_randomized_gpu
    >>> prefers_randomized_gpu(100000, 2000), prefers_randomized_gpu(2000, 50)
    (True, False)
    """
    m, n = check_int("m", m, 0), check_int("n", n, 0)
    return m >= 4 * n and m * n >= 1 << 20


@functools.cache
def _scipy_ignores_masks() -> bool:
    """Whether this scipy's lstsq accepts masked arrays (and ignores the mask).

    scipy >= 1.15 converts its inputs with ``asarray`` before validating them
    (batch support), which drops the mask; older scipy refuses masked arrays.
    """
    try:
        sla.lstsq(np.ma.ones((1, 1)), np.ones(1))
    except ValueError:
        return False
    return True


def _validated(given, arr, check_finite, backend: Backend):
    """arr (``asarray(given)``), refusing what scipy.linalg.lstsq refuses."""
    if np.ma.isMaskedArray(given) and not _scipy_ignores_masks():
        raise ValueError("masked arrays are not supported")
    if arr.dtype == object:
        raise ValueError("object arrays are not supported")
    if check_finite:
        _check_finite(arr, backend)
    return arr


def _check_finite(values, backend: Backend):
    if np.dtype(values.dtype).kind in "fc" and not bool(backend.xp.isfinite(values).all()):
        raise ValueError("array must not contain infs or NaNs")


class _ScalarRightHandSide(ValueError, IndexError):
    """A 0-d b: scipy.linalg.lstsq fails on it with IndexError (indexing its
    shape); raise that type too, as a ValueError that says what is wrong."""


def _lapack(backend, a, b, cond, overwrite_a, overwrite_b, check_finite, lapack_driver):
    """scipy.linalg.lstsq, or cupy.linalg.lstsq (an SVD) for CuPy data."""
    if not backend.is_gpu:
        return sla.lstsq(a, b, cond, overwrite_a, overwrite_b, check_finite, lapack_driver)
    if lapack_driver is not None:
        raise ValueError("lapack_driver: CuPy data has no LAPACK drivers; "
                         "cupy.linalg.lstsq (SVD) is used with method='lapack'")
    a, b = backend.xp.asarray(a), backend.xp.asarray(b)
    if check_finite:
        _check_finite(a, backend)
        _check_finite(b, backend)
    return backend.xp.linalg.lstsq(a, b, rcond=cond)


def _in_precision(a, dtype, backend: Backend):
    """A sparse or LinearOperator ``a`` whose products come in ``dtype``.

    A float32 ``a`` with a float64 ``b`` is solved in float64, as a dense
    ``a`` is: a sparse matrix's values are copied to float64 (the nonzeros
    only), a LinearOperator's products are cast to it (a matrix behind it
    then multiplies in float64; an operator that rounds its products to
    float32 stays as accurate as that, and the backward error estimate
    says so).
    """
    if np.dtype(a.dtype) == dtype:
        return a
    if backend.issparse(a):
        return a.astype(dtype)
    require_adjoint(a, "a", "randla.lstsq")
    return cast_operator(a, dtype)


def _reached(result, tol, shape, dtype) -> bool:
    """Whether a randomized solve reached its tolerance, or (default tol, eps)
    stopped at a backward error a backward-stable solve can leave: within
    ``10 sqrt(min(m, n))`` units of rounding (stalled refinements of square
    or wide systems end a few units above eps, unconverged).

    LSQR and CG without refinement converge on their recurrences' residuals,
    not on the backward error tol means here: their estimate decides (cond
    1e8 and a residual of norm 1 left 1e-11 and 2e-10 behind "converged")."""
    rounding = 10 * math.sqrt(min(shape)) * float(np.finfo(dtype).eps)
    estimate = float(np.max(result.backward_error_estimate))
    if result.method.startswith("sketch_and_precondition"):
        return estimate <= (rounding if tol is None else tol)
    if result.converged:
        return True
    return tol is None and estimate <= rounding


def lstsq(a, b, cond=None, overwrite_a=False, overwrite_b=False, check_finite=True,
          lapack_driver=None, *, rng=None, method="auto", tol=None):
    """Least-squares solution of ``a @ x = b``, a drop-in for scipy.linalg.lstsq.

    Same signature, return tuple and exceptions as :func:`scipy.linalg.lstsq`.
    With ``method="auto"`` a cost model (:func:`prefers_randomized`) sends tall,
    large problems to the backward-stable randomized solver :func:`spir` and
    everything else (small, square, wide dense, complex, batched, or any
    ``lapack_driver`` given) to scipy's LAPACK path unchanged.

    CuPy input (``cupy.ndarray``, cupyx.scipy.sparse matrices, cupyx
    LinearOperators) is solved on its GPU and returns CuPy arrays; there the
    classical path is ``cupy.linalg.lstsq`` and ``method="auto"`` follows
    :func:`prefers_randomized_gpu`.

    Parameters
    ----------
    a : (M, N) array_like, sparse matrix or LinearOperator
        Sparse matrices and LinearOperators always take the randomized path,
        in the common precision of a and b as LAPACK's (a float32 sparse a
        with a float64 b: a float64 copy of its nonzeros; a float32
        LinearOperator: its products cast to float64).  Masked arrays are treated as the installed scipy treats them (scipy
        >= 1.15 ignores the mask, older scipy refuses them).
    b : (M,) or (M, K) array_like
        Right-hand side(s), dense (a sparse b is refused with TypeError).
    cond : float, optional
        Singular values below ``cond * largest_singular_value`` are treated as
        zero.  The default (None) is ``eps`` of a's precision, as in scipy.
        LAPACK's gelsd reads a cond of 0 or less, or of 1 or more, as its
        machine precision, half that ``eps``, so on the LAPACK path such a
        cond keeps singular values down to ``eps / 2`` (scipy does the
        same).  On the randomized path the singular values are
        those of the sketch ``S a`` (equal to a's within a factor
        ``1 +- O(sqrt(N/d))``); the default there is ``30 * eps``, and a
        smaller cond (0 or less, or 1 or more, too) means that default (the sketch
        does not resolve singular values below it), and the rank, hence x,
        can depend on ``rng`` when a singular value lies near the cutoff.  A
        cond that drops singular values of a sketch truncates in the sketch's
        top singular subspace, which is a's only up to an angle of about
        ``sigma_{r+1} / sigma_r``: ``method="auto"`` hands such a solve of a
        dense a to LAPACK, an explicit randomized method returns that x.
        Wide problems on the randomized path assume full row rank: a cond
        other than the default raises ValueError there.
    overwrite_a, overwrite_b : bool
        Passed to LAPACK; the randomized path never writes to its inputs.
    check_finite : bool, default True
        Refuse infs and NaNs in b with ValueError, and in a (for
        LinearOperators no check is possible).  On the randomized path a
        dense a is checked through its sketch, which every entry reaches, so
        a is refused whatever check_finite says (and read once less), and so
        is b (LAPACK would return NaN).
    lapack_driver : {"gelsd", "gelsy", "gelss"}, optional
        Given: scipy.linalg.lstsq with that driver, whatever ``method`` says.
    rng : None, int, numpy.random.Generator, RNGState or other seed, keyword-only
        Seed of the sketch (SPEC 7, see :func:`randla.sketch.as_rng_state`); checked on every path, LAPACK's included.
    method : str, keyword-only, default "auto"
        ``"auto"``, ``"lapack"``, ``"randomized"`` (= ``"spir"``), or a driver:
        ``"spir"``, ``"fossils"``, ``"sketch_and_solve"``, ``"lsqr"``,
        ``"cg"`` (sketch-and-precondition), ``"iterative_sketching"``, ``"sirr"``.
        ``"sketch_and_solve"`` is approximate: it solves the sketched problem
        once (residual within a factor ``1 + O(sqrt(N/d))`` of the least), takes
        no tol and never warns.  Wide problems on the randomized path use
        :func:`min_norm`, which assumes full row rank: for a wide a of lower
        rank it warns, and its x may be several percent from the minimum-norm
        least-squares solution (a 40 x 1385 a of rank 5: 6 to 9 % in 4 of 10
        runs); ``method="auto"`` gives such a dense a to LAPACK.
    tol : float, optional, keyword-only
        Target backward error of the iterative drivers relative to ``||a||_F``
        (default eps).  A randomized solve that stops short of it (its
        refinement stalled, or ran out of iterations; with the default, short
        of ``10 sqrt(min(M, N)) eps``, the rounding of a backward-stable
        solve) is handed to LAPACK when ``method="auto"`` and a is dense, so
        the drop-in keeps LAPACK's accuracy; otherwise it returns its x with
        a RuntimeWarning (e.g. ``"iterative_sketching"``, ``"lsqr"`` and
        ``"cg"``, which are not backward stable, on ill-conditioned a with a
        large residual).

    Returns
    -------
    x : (N,) or (N, K) ndarray
        Least-squares solution (minimum norm for rank-deficient or wide a),
        in scipy's dtype: float32 for float32, float16, bool and small
        integers, float64 for float64, long double and larger integers.
    residues : (K,) ndarray or float
        Squared 2-norms of the columns of ``b - a x`` if ``M > N`` and
        ``rank == N`` (a scalar for 1-D b), else an empty array.
    rank : int
        Effective rank of a (of its sketch on the randomized path).
    s : (min(M, N),) ndarray or None
        Singular values of a from LAPACK's gelsd/gelss; None on the
        randomized path, as with gelsy.

    Raises
    ------
    ValueError
        Bad shapes, non-finite data with ``check_finite``, unknown method;
        batched input (a or b with more than two dimensions, which
        ``method="auto"`` hands to scipy) on the randomized path.  For a 0-d b
        the error is also an IndexError, the type scipy raises.
    TypeError
        Complex data on the randomized path (a method other than ``"auto"``
        or ``"lapack"``, or sparse or LinearOperator a); a sparse b; a
        LinearOperator a without ``rmatvec``.
    numpy.linalg.LinAlgError
        If LAPACK's SVD does not converge.

    See Also
    --------
    scipy.linalg.lstsq : the routine this replaces.
    randla.solve.spir : the randomized driver behind ``method="auto"``, with
        iterations, passes and the backward-error estimate.

    Examples
    --------
    >>> import numpy as np
    >>> import randla
    >>> rng = np.random.default_rng(0)
    >>> A = rng.standard_normal((4000, 60)); b = rng.standard_normal(4000)
    >>> x, res, rank, s = randla.lstsq(A, b, method="randomized", rng=1)
    >>> bool(np.allclose(x, np.linalg.lstsq(A, b, rcond=None)[0])), rank, s is None
    (True, 60, True)
    """
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
    # rng and tol are checked whichever route the problem takes, so that a
    # bad one does not pass every problem small enough for LAPACK
    check_rng(rng)
    if tol is not None:
        _check_tol(tol, None)
    if isinstance(cond, (np.ndarray, list, tuple)) and np.size(cond) == 1:
        cond = np.asarray(cond).item()   # scipy takes a one-number array or list as its number
    backend = get_backend(a, b)
    if backend.issparse(b) or backend.is_linear_operator(b):
        raise TypeError(f"b must be a dense array, got {type(b).__name__} (a sparse b: "
                        "b.toarray())")
    operator_input = backend.issparse(a) or backend.is_linear_operator(a)
    if not operator_input and (lapack_driver is not None or method == "lapack"):
        return _lapack(backend, a, b, cond, overwrite_a, overwrite_b, check_finite,
                       lapack_driver)
    if operator_input and (lapack_driver is not None or method == "lapack"):
        raise ValueError("LAPACK needs a dense array: sparse matrices and "
                         "LinearOperators take the randomized path only")
    # Shapes and dtypes pick the route; the LAPACK route gets the caller's own
    # a and b (lists, masked arrays, ...) so that it is scipy's unchanged.
    a1 = a if operator_input else backend.xp.asarray(a)
    b1 = backend.xp.asarray(b)
    if a1.ndim != 2 or b1.ndim not in (1, 2):
        if method == "auto" and not operator_input:
            return _lapack(backend, a, b, cond, overwrite_a, overwrite_b, check_finite, None)
        if a1.ndim > 2 or b1.ndim > 2:
            raise ValueError(f"batched input (a of shape {a1.shape}, b of shape {b1.shape}) "
                             "is solved by LAPACK only: use method='auto' or 'lapack'")
        if a1.ndim != 2:
            raise ValueError("Input array a should be 2D")
        raise _ScalarRightHandSide(f"b must be 1-D or 2-D, got shape {b1.shape}")
    m, n = a1.shape
    if m != b1.shape[0]:
        raise ValueError("Shape mismatch: a and b should have the same number"
                         f" of rows ({m} != {b1.shape[0]}).")
    complex_data = np.dtype(a1.dtype).kind == "c" or np.dtype(b1.dtype).kind == "c"
    nrhs = b1.shape[1] if b1.ndim == 2 else 1
    row_major = bool(getattr(getattr(a1, "flags", None), "c_contiguous", True))
    randomized_faster = (prefers_randomized_gpu(m, n) if backend.is_gpu
                         else prefers_randomized(m, n, nrhs, row_major=row_major))
    if not operator_input and (m == 0 or n == 0 or nrhs == 0 or (method == "auto" and (
            complex_data or not randomized_faster))):
        return _lapack(backend, a, b, cond, overwrite_a, overwrite_b, check_finite, None)
    if not operator_input:
        # No pass over a for check_finite: the drivers' sparse sign sketch
        # reaches every row of a, so S a is not finite where a is not, and
        # they raise ValueError on it (one read of a saved: 25-100 ms, 4-12 %
        # of a solve at 40000 x 1000).
        a1 = _validated(a, a1, False, backend)
    elif check_finite and backend.issparse(a):
        _check_finite(stored_values(a), backend)
    b1 = _validated(b, b1, check_finite, backend)
    if complex_data:
        raise TypeError("the randomized drivers are real: complex data needs "
                        "method='lapack' (dense a)")
    if m == 0 or n == 0:
        # nothing to sketch: scipy's answer for a dense empty a (x = 0)
        return _lapack(backend, backend.xp.zeros((m, n), dtype=a1.dtype), b1, cond, False,
                       False, check_finite, None)
    if nrhs == 0:
        raise ValueError(f"empty problem: b has shape {b1.shape} (scipy's LAPACK refuses "
                         "it too)")
    # LAPACK computes in the common precision of a and b; so do we.  It has no
    # extended precision: scipy solves long double in float64.
    dtype = np.result_type(np.float32, a1.dtype, b1.dtype)
    if dtype.itemsize > 8:
        dtype = np.dtype(np.float64)
    a1 = a1.astype(dtype, copy=False) if not operator_input else _in_precision(a1, dtype,
                                                                                backend)
    b1 = b1.astype(dtype, copy=False)
    # gelsd reads cond <= 0 or cond >= 1 as its machine precision (eps / 2);
    # here they, like any cond below the default cutoff, mean that default.
    # Below the default cutoff the sketch's singular values are rounding, and
    # a cutoff there would keep directions A does not have (x ~ 1e14 for a
    # duplicated column at cond = 1e-17).
    if isinstance(cond, numbers.Real) and not (DEFAULT_CUTOFF_EPS * np.finfo(dtype).eps
                                               <= cond < 1):
        cond = None
    if m < n:
        if cond is not None:
            raise ValueError(f"cond={cond!r}: the randomized solver for wide a (min_norm) "
                             "assumes full row rank and has no cutoff; use "
                             "method='lapack' for a truncated solution")
        result = min_norm(a1, b1, tol=tol, rng=rng)
    else:
        name = "spir" if method in ("auto", "randomized") else method
        if name == "sketch_and_solve" and tol is not None:
            raise ValueError("tol does not apply to method='sketch_and_solve' (one solve "
                             "of the sketched problem, no iteration)")
        result = _DRIVERS[name](a1, b1, cond=cond, rng=rng,
                                **({} if name == "sketch_and_solve" else {"tol": tol}))
    # A cutoff that drops singular values truncates in the sketch's singular
    # subspace, not a's (x then agrees with gelsd's only across a wide gap):
    # "auto" gives such a solve of a dense a to LAPACK.
    truncated = cond is not None and result.rank < min(m, n)
    if truncated and method == "auto" and not operator_input:
        return _lapack(backend, a, b, cond, overwrite_a, overwrite_b, check_finite, None)
    if not _reached(result, tol, a1.shape, dtype):
        if method == "auto" and not operator_input:
            return _lapack(backend, a, b, cond, overwrite_a, overwrite_b, check_finite, None)
        estimate = float(np.max(result.backward_error_estimate))
        what = (f"stopped at a backward error estimate of {estimate:.2e}, above its "
                f"tolerance" if np.isfinite(estimate) else "produced non-finite values")
        warnings.warn(f"randla.lstsq: the randomized solver ({result.method}) {what}; "
                      "LAPACK's solve (method='lapack', dense a) is backward stable",
                      RuntimeWarning, stacklevel=2)
    x = result.x.astype(dtype, copy=False)
    if m > n and result.rank == n:
        residues = backend.xp.asarray(result.residual_norm, dtype=dtype) ** 2
        if b1.ndim == 1:
            residues = residues[()]
    else:
        residues = backend.xp.asarray([], dtype=dtype)
    return x, residues, result.rank, None
