"""Randomized trace and diagonal estimation from block products with A.

``trace`` runs one of the estimators of ``_trace_estimators.py`` with a fixed
budget of matrix-vector products, or adaptively until its error estimate meets
a tolerance.  ``diag_estimate`` uses the same probes for the diagonal.
Both run unchanged on numpy and CuPy operands: the probes are drawn on the
operand's device by the sketch layer, identical on host and GPU.
"""
from __future__ import annotations

import math
import numbers
import warnings
from dataclasses import dataclass, field

import numpy as np

from .._backend import get_backend
from .._checks import check_int
from .._operand import NonFiniteError
from ..sketch import as_rng_state
from ._trace_estimators import ESTIMATORS, PROBES, CountedOperator, ProbeStream, _extend_basis

__all__ = ["trace", "diag_estimate", "TraceResult", "DiagResult"]

_METHODS = ("auto",) + tuple(ESTIMATORS)
_DEFAULT_MATVECS = 100
_DEFAULT_MAX_MATVECS = 1000
# Adaptive mode stops on an error bar from at least this many samples.
_MIN_SAMPLES_TO_STOP = 3
# Columns of the identity per product when the trace is computed exactly.
_EXACT_BLOCK = 256


@dataclass(frozen=True)
class TraceResult:
    """Result of :func:`trace`.

    Attributes
    ----------
    estimate : float
        The trace estimate; equals ``samples.mean()``.
    stderr : float
        Error estimate: the standard error ``samples.std(ddof=1) / sqrt(len(samples))``.
        About 95 % of runs lie within ``2 * stderr`` of the trace where the
        samples are close to normal (see the Notes of :func:`trace`).
    matvecs : int
        Number of vectors A was applied to, counted exactly.
    method : str
        The estimator that ran (``"auto"`` resolved), or ``"exact"``.
    samples : numpy.ndarray
        Host float64 copy (also for CuPy and float32 input) of the per-probe
        samples ``T_i``:
        quadratic forms for Hutchinson, low-rank trace plus one deflated
        quadratic form for Hutch++ and Nystrom++, leave-one-out estimates for
        XTrace and XNysTrace; ``n A_ii`` for the exact trace.
    converged : bool
        False only when the error bar ``2 * stderr`` did not meet a requested
        ``rtol``/``atol`` within ``max_matvecs``.
    """

    estimate: float
    stderr: float
    matvecs: int
    method: str
    samples: np.ndarray = field(repr=False, compare=False)
    converged: bool = True


@dataclass(frozen=True)
class DiagResult:
    """Result of :func:`diag_estimate`.

    Attributes
    ----------
    estimate : ndarray
        Estimate of ``diag(A)``, length n, on A's backend (numpy or CuPy).
    stderr : ndarray
        Entrywise standard error of the estimate, on A's backend.
    matvecs : int
        Number of vectors A was applied to, counted exactly.
    method : str
    """

    estimate: np.ndarray = field(compare=False)      # numpy or CuPy, as A
    stderr: np.ndarray = field(repr=False, compare=False)
    matvecs: int
    method: str


def _check_tolerance(name, value):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or \
            not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a non-negative finite number, got {value!r}")
    return float(value)


def _check_probes(probes):
    if probes not in PROBES:
        raise ValueError(f"probes must be one of {PROBES}, got {probes!r}")
    return probes


def _choose_method(method, psd, matvecs, adaptive=False):
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
    # 0 and 1 compare equal to False and True, but are not bools
    if not (psd is None or isinstance(psd, (bool, np.bool_))):
        raise TypeError(f"psd must be None, True or False, got {psd!r}")
    psd = None if psd is None else bool(psd)
    if method == "auto":
        if adaptive:
            # the stopping test trusts stderr: only the independent-sample
            # estimators have a calibrated one (XTrace's covered tr(A) in 32 %
            # of runs on step spectra, and converged runs missed rtol half the
            # time)
            chosen = "nystrom++" if psd else "hutch++"
        elif psd:
            chosen = "xnystrace"
        else:
            chosen = "xtrace" if matvecs is None or matvecs % 2 == 0 else "hutch++"
        # a budget too small for it (2 or 3 matvecs) still buys Hutchinson
        if matvecs is not None and matvecs < ESTIMATORS[chosen].min_matvecs:
            return "hutchinson"
        return chosen
    if psd is False and getattr(ESTIMATORS[method], "psd", False):
        raise ValueError(f"method={method!r} needs a positive semidefinite A, but psd=False")
    return method


def _budget_limits(cls, n, name, m):
    if m < cls.min_matvecs:
        raise ValueError(f"{name}={m} is too small: method {cls.name!r} needs at least "
                         f"{cls.min_matvecs} matvecs")
    if m > cls.max_matvecs(n):
        raise ValueError(f"{name}={m} is too large: method {cls.name!r} can use at most "
                         f"{cls.max_matvecs(n)} matvecs on an n={n} matrix")
    if m % cls.step:
        raise ValueError(f"{name}={m}: method {cls.name!r} spends matvecs in multiples of "
                         f"{cls.step}")


def _summary(samples):
    return float(np.mean(samples)), float(_standard_error(samples))


def _standard_error(samples, axis=-1):
    """``samples.std(ddof=1) / sqrt(count)`` along axis, of samples scaled to
    largest magnitude 1 first: squares of samples near 1e-200 (1e200) would
    underflow to a false 0 (overflow to inf).  Any array library."""
    xp = get_backend(samples).xp
    largest = xp.max(xp.abs(samples), axis=axis, keepdims=True)
    largest = xp.where((largest > 0) & xp.isfinite(largest), largest, 1)
    spread = (samples / largest).std(axis=axis, ddof=1) * xp.squeeze(largest, axis=axis)
    return spread / math.sqrt(samples.shape[axis])


def trace(A, *, matvecs: int | None = None, rtol: float | None = None,
          atol: float | None = None, method: str = "auto", psd: bool | None = None,
          probes: str = "rademacher", rng=None, max_matvecs: int | None = None,
          n: int | None = None, backend: str | None = None) -> TraceResult:
    """Estimate tr(A) from block products with A.

    Parameters
    ----------
    A : array_like, sparse matrix, LinearOperator or callable
        A real square n x n operand: numpy/scipy data, or CuPy / cupyx
        sparse / cupyx LinearOperator data on the GPU (then the probes and all
        block arithmetic live on that device).  Only products ``A @ X`` with
        n x b blocks X are used, one call per block.  A callable must map an
        n x b array to the n x b array ``A @ X`` of the same kind (then pass
        ``n``, and ``backend="cupy"`` if it works on CuPy arrays).
    matvecs : int, optional
        Fixed budget: A is applied to exactly this many vectors (with
        ``method="auto"``, to n of them where the budget reaches n: see
        ``method``).  With ``rtol``/``atol`` it is the first budget of the
        adaptive loop.  Default 100 (or the most the method can use on a
        small matrix).
    rtol, atol : float, optional
        Adaptive mode: add probes in blocks until the error bar
        ``2 * stderr <= max(atol, rtol * |estimate|)`` (about 95 % confidence
        where ``stderr`` is calibrated; see Notes for where it is not).
    method : {"auto", "hutchinson", "hutch++", "nystrom++", "xtrace", "xnystrace"}
        ``"auto"`` picks XNysTrace when ``psd=True``, else XTrace (Hutch++
        for an odd fixed budget, since XTrace spends matvecs in pairs); in the
        adaptive mode, whose stopping test trusts ``stderr``, Nystrom++ or
        Hutch++, whose ``stderr`` is calibrated (see Notes); Hutchinson
        where ``matvecs`` (or a smaller ``max_matvecs``) is below that
        method's least budget (2 or 3); where
        the budget (``matvecs``, or its default) is at least n it computes
        the trace exactly instead, from A's products with the n columns of
        the identity (method ``"exact"``, ``stderr`` 0): no estimate costs
        less or is as good.  So does the adaptive mode where its next budget
        would reach n, if ``max_matvecs`` allows those n products on top of
        the probes spent before (``matvecs`` then counts both, fewer than
        2n in all).
    psd : bool, optional
        Whether A is symmetric positive semidefinite.  The Nystrom methods
        assume it and raise ``LinAlgError`` when a probe shows it is false.
    probes : {"rademacher", "gaussian", "sphere"}
        Probe distribution; ``"sphere"`` is uniform on the sphere of radius
        sqrt(n).  All have ``E[w w^T] = I``.
    rng : None, int, numpy.random.Generator or RNGState
        Seed of the Philox stream all probes come from (SPEC 7).
    max_matvecs : int, optional
        Cap of the adaptive loop, default 1000; never above what the method
        can use on an n x n matrix.  Reaching it unconverged warns and sets
        ``converged=False``.  A cap below the default first budget (100) is
        the first budget too, unless ``matvecs`` is given.
    n : int, optional
        Size of A; required when A is a callable.
    backend : {None, "numpy", "cupy"}, optional
        Array library of the probe blocks handed to a callable A: numpy by
        default, ``"cupy"`` for a callable working on the GPU.  Arrays,
        sparse matrices and LinearOperators bring their own backend; naming a
        different one raises ``ValueError``.  The same ``rng`` gives the same
        probes on both, so the GPU estimate equals the CPU one up to rounding.

    Returns
    -------
    TraceResult
        ``estimate``, ``stderr``, ``matvecs``, ``method``, ``samples``,
        ``converged``.

    Raises
    ------
    ValueError
        Non-square A, a budget below the method's minimum or above what it can
        use, odd budget for XTrace, contradictory arguments, a ``backend``
        that A's data contradicts, or NaN or inf in A (found in its first
        product; a callable that returns them is named too).
    numpy.linalg.LinAlgError
        A Nystrom method (``psd=True``) found A indefinite; XTrace or a
        Nystrom method drew linearly dependent probes (a few sign vectors of
        a tiny matrix can be: use ``matvecs >= n`` or Gaussian probes).
    TypeError
        Complex or non-numeric A, or a callable returning arrays of the other
        backend.

    Notes
    -----
    With m matvecs: Hutchinson averages m quadratic forms (error ~ m^-1/2).
    Hutch++ spends m/3 on a sketch, m/3 on A Q and m/3 on probes deflated by
    Q; Nystrom++ (PSD) m/2 on a Nystrom sketch and m/2 on probes.  XTrace
    (m/2 probes, each also a sketch column) and XNysTrace (m probes) average
    leave-one-out estimates, so every probe deflates all the others; on
    fast-decaying spectra XNysTrace reaches rounding level.  XNysTrace and
    Nystrom++ factor ``Omega^T (A + nu I) Omega`` with ``nu = eps ||A Omega||_F``
    and subtract ``n nu`` again (unshifted, the factorisation loses about ten
    digits on fast decay).

    All estimators are unbiased.  ``stderr`` is the standard error of the
    per-probe samples.  How often ``|estimate - tr(A)| <= 2 * stderr`` held in
    400 seeded runs at n = 1000, m = 100 on six test spectra (flat: linspace(1, 3);
    poly: i^-2; slowexp: 0.9^i; fastexp: 0.7^i; smallstep / bigstep: 50 ones, then
    1e-3 / 1e-8):

    - Hutchinson, Hutch++, Nystrom++: 93-96 % on all six (independent samples);
      in 1000 runs Hutch++ covered 92 % on fastexp.  Where A is exactly of
      low rank, Hutch++ and XTrace are exact to rounding and ``stderr``
      has no rounding floor: it covered that error in 43 % and 72 % of 200
      runs (rank 5, n = 400, errors near 1e-15).
    - XTrace: 84-89 % on the four smooth spectra, but only 32 % on both step
      spectra (its 50 probes cannot span the 50-dimensional step, and the
      leave-one-out samples then miss a common bias of the whole run).
    - XNysTrace: 81-86 % on flat, poly and both steps, 44 % on slowexp and
      59 % on fastexp (errors there are 4e-5 and 3e-13 relative).

    The leave-one-out samples are not independent, so treat the XTrace and
    XNysTrace ``stderr`` as an error scale, not a calibrated interval.  With
    two probes (4 matvecs) the two XTrace samples can even coincide (a
    diagonal A with Rademacher probes: ``stderr`` 0 at an error of 1 %);
    adaptive mode never stops on fewer than three samples.  The
    adaptive mode inherits this: with few samples it can stop early (in the
    asv suite XNysTrace on fastexp, n = 500, stopped at 20 matvecs with a
    true relative error of 6e-3 for ``rtol=1e-3``); start it from a larger
    ``matvecs`` where that matters.

    Examples
    --------
    >>> import numpy as np
    >>> import randla
    >>> A = np.diag(0.7 ** np.arange(500))
    >>> res = randla.trace(A, matvecs=60, psd=True, rng=0)
    >>> res.method, res.matvecs
    ('xnystrace', 60)
    >>> bool(abs(res.estimate - np.trace(A)) < 1e-8)
    True
    """
    op = CountedOperator(A, n, backend)
    n = op.n
    requested = method
    rtol = _check_tolerance("rtol", rtol)
    atol = _check_tolerance("atol", atol)
    adaptive = rtol is not None or atol is not None
    if adaptive and not (rtol or atol):
        raise ValueError("rtol and atol cannot both be zero")
    if matvecs is not None:
        matvecs = check_int("matvecs", matvecs)
    if max_matvecs is not None:
        max_matvecs = check_int("max_matvecs", max_matvecs)
    cap = max_matvecs if adaptive else None     # the caller's, before any rounding
    # adaptive, a cap below the default first budget starts at the cap
    capped = matvecs is None and cap is not None and cap < _DEFAULT_MATVECS
    method = _choose_method(method, psd, cap if capped else matvecs, adaptive)
    cls = ESTIMATORS[method]
    probes = _check_probes(probes)
    start = cap if capped else _DEFAULT_MATVECS if matvecs is None else matvecs
    if cap is not None and matvecs is not None and cap < matvecs:
        # before the exact trace below, which would take n > cap products
        raise ValueError(f"max_matvecs={cap} is below the starting budget matvecs={matvecs}")
    if requested == "auto" and start >= n:
        return _exact_trace(op)
    if matvecs is None:
        matvecs = min(start, cls.max_matvecs(n))
        matvecs -= matvecs % cls.step
        if matvecs < cls.min_matvecs:
            if capped and cap < cls.min_matvecs:
                raise ValueError(f"max_matvecs={cap} is too small: method {cls.name!r} "
                                 f"needs at least {cls.min_matvecs} matvecs")
            raise ValueError(f"method {cls.name!r} needs at least {cls.min_matvecs} "
                             f"matvecs, and can use at most {cls.max_matvecs(n)} on an "
                             f"n={n} matrix")
    _budget_limits(cls, n, "matvecs", matvecs)
    if adaptive:
        if max_matvecs is None:
            max_matvecs = max(matvecs, min(_DEFAULT_MAX_MATVECS, cls.max_matvecs(n)))
        else:
            max_matvecs = min(max_matvecs, cls.max_matvecs(n))
        # still at least matvecs: a multiple of the step, checked against the cap above
        max_matvecs -= max_matvecs % cls.step

    stream = ProbeStream(probes, n, as_rng_state(rng), op.dtype, op.xp)
    estimator = cls(op, stream)
    m, converged = matvecs, True
    while True:
        estimator.grow_to(m)
        # m numbers, of A rather than of op's scaled A; the stop test is host-side.
        # float64 whatever A's precision: float32 samples of a float32 trace
        # near 1e37 overflowed in their sum
        samples = op.backend.to_host(estimator.samples()).astype(np.float64) / op.scale
        if not np.isfinite(samples).all():
            # only the first block is checked up front: an operator (a callable)
            # that turns non-finite later gave estimate nan, converged
            raise NonFiniteError("A returned non-finite values (NaN or inf) after its "
                                 "first block: the trace estimate is not finite")
        estimate, stderr = _summary(samples)
        if not adaptive:
            break
        target = max(atol or 0.0, (rtol or 0.0) * abs(estimate))
        # two samples make no error bar: XTrace's two leave-one-out samples
        # coincide for a diagonal A and Rademacher probes (stderr 4e-12 at an
        # error of 0.8 %), and adaptive mode stopped on them
        if 2 * stderr <= target and len(samples) >= _MIN_SAMPLES_TO_STOP:
            break
        if m >= max_matvecs:
            converged = False
            warnings.warn(f"trace: error bar 2*stderr = {2 * stderr:.3g} above the "
                          f"tolerance {target:.3g} after max_matvecs={m} matvecs "
                          f"({method})", RuntimeWarning, stacklevel=2)
            break
        # stderr ~ m^-1/2 for the plain part: aim at the tolerance, grow 1.25x to 2x.
        factor = min(2.0, max(1.25, (2 * stderr / target) ** 2)) if target > 0 else 2.0
        m_next = math.ceil(m * factor)
        m = min(max_matvecs, m_next + (-m_next) % cls.step)
        if requested == "auto" and m >= n and (cap is None or op.count + n <= cap):
            # n more products give the exact trace: no more than the next
            # estimate would cost (hutch++ went on to 3n for a 300 x 300
            # Gaussian matrix at rtol 1e-2), unless they would pass the cap
            return _exact_trace(op)
    return TraceResult(estimate, stderr, op.count, method, samples, converged)


def _exact_trace(op) -> TraceResult:
    """tr(A) from A's products with the n columns of the identity, a block at a time.

    The samples are ``n A_ii``, whose mean is the trace (the Hutchinson
    samples of the probes ``sqrt(n) e_i``); no sampling error is left.
    """
    n, xp = op.n, op.xp
    diagonal = []
    for start in range(0, n, _EXACT_BLOCK):
        stop = min(n, start + _EXACT_BLOCK)
        E = xp.zeros((n, stop - start), dtype=op.dtype)
        E[start:stop] = xp.eye(stop - start, dtype=op.dtype)
        diagonal.append(xp.diagonal(op(E)[start:stop]))
    samples = n * op.backend.to_host(xp.concatenate(diagonal)).astype(np.float64) / op.scale
    return TraceResult(float(np.sum(samples) / n), 0.0, op.count, "exact", samples, True)


def diag_estimate(A, *, matvecs: int = 100, method: str = "hutchinson",
                  probes: str = "rademacher", rng=None, n: int | None = None,
                  backend: str | None = None) -> DiagResult:
    """Estimate diag(A) from block products with A.

    Parameters
    ----------
    A : array_like, sparse matrix, LinearOperator or callable
        A real square n x n operand, host or GPU data, as in :func:`trace`.
    matvecs : int, default 100
        A is applied to exactly this many vectors.
    method : {"hutchinson", "diag++"}
        ``"hutchinson"`` averages ``w * (A w)`` over the probes (unbiased).
        ``"diag++"`` (A symmetric) spends m/3 on a sketch Q = orth(A Omega),
        m/3 on A Q, takes ``diag(Q (AQ)^T) = diag(QQ^T A)`` exactly and
        Hutchinson on ``A - QQ^T A`` with the other m/3.
    probes : {"rademacher", "gaussian", "sphere"}
    rng : None, int, numpy.random.Generator or RNGState
    n : int, optional
        Size of A; required when A is a callable.
    backend : {None, "numpy", "cupy"}, optional
        Array library of the probe blocks handed to a callable A (numpy by
        default), as in :func:`trace`.

    Returns
    -------
    DiagResult
        ``estimate`` and entrywise ``stderr`` (length n, on A's backend: CuPy
        arrays for GPU input), ``matvecs``, ``method``.

    Raises
    ------
    ValueError
        Non-square A, ``matvecs`` below 2 (4 for ``"diag++"``), a sketch
        larger than n, or NaN or inf in A.

    Examples
    --------
    >>> import numpy as np
    >>> import randla
    >>> A = np.diag(np.arange(1.0, 6.0))
    >>> res = randla.diag_estimate(A, matvecs=4, rng=0)
    >>> bool(np.allclose(res.estimate, np.arange(1.0, 6.0)))   # exact: Rademacher w*w = 1
    True
    """
    op = CountedOperator(A, n, backend)
    n = op.n
    if method not in ("hutchinson", "diag++"):
        raise ValueError(f"method must be 'hutchinson' or 'diag++', got {method!r}")
    matvecs = check_int("matvecs", matvecs, 2 if method == "hutchinson" else 4,
                        f" for method {method!r}")
    probes = _check_probes(probes)
    stream = ProbeStream(probes, n, as_rng_state(rng), op.dtype, op.xp)
    if method == "hutchinson":
        X = stream.draw(matvecs)
        samples = X * op(X)
        base = 0.0
    else:
        k = matvecs // 3
        if k > n:
            raise ValueError(f"matvecs={matvecs} is too large for n={n}: the sketch "
                             f"(matvecs // 3) must not exceed n")
        Q, _ = _extend_basis(None, None, op(stream.draw(k)))
        Z = op(Q)
        X = stream.draw(matvecs - 2 * k)
        base = op.xp.einsum("ij,ij->i", Q, Z)          # diag(Q Z^T) = diag(QQ^T A)
        samples = X * (op(X) - Q @ (Z.T @ X))         # w * ((I - QQ^T) A w)
    estimate = base + samples.mean(axis=1)
    # of A, not of op's scaled A
    return DiagResult(estimate / op.scale, _standard_error(samples, axis=1) / op.scale,
                      op.count, method)
