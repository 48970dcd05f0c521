"""Validation of the matrix that a solver or estimator only multiplies by.

The drivers of ``randla.solve`` and ``randla.eig`` wrap their operand in
small classes that count products; this is the one place that decides what
such an operand may be and in which precision it is used.
"""
from __future__ import annotations

import math

import numpy as np

from ._backend import get_backend, working_float

__all__ = ["NonFiniteError", "cast_operator", "one_sweep_scales", "power_of_two_scale",
           "product_scale", "real_operand", "refuse_non_finite", "require_adjoint",
           "stored_values"]


class NonFiniteError(ValueError):
    """A's entries, or its products with a finite block, are not finite
    (NaN or inf, or an overflow): a ValueError that callers which must
    raise another class for it (the scipy drop-ins) can tell apart."""


def power_of_two_scale(size: float, dtype, powers: int = 2) -> float:
    """The power of 2 that brings ``size`` (a norm or a largest entry) near 1.

    1.0 when size is 0, not finite, or within ``2**(+-maxexp / (2 * powers))``
    (with ``powers=2``, 2^+-256 in float64 and 2^+-32 in float32): there
    size to the power ``powers``, summed over many rows, neither underflows
    nor overflows.  The solvers square their operand's entries (powers=2);
    eigensolvers that work with AᵀA square those again (powers=4).  The
    factor itself stays within the range of ``dtype``.
    """
    if size == 0 or not math.isfinite(size):
        return 1.0
    return _power_of_two_for(round(math.log2(size)), dtype, powers)


def _power_of_two_for(exponent: int, dtype, powers: int) -> float:
    """:func:`power_of_two_scale` of a size ``2**exponent``."""
    info = np.finfo(dtype)
    limit = info.maxexp // (2 * powers)
    if -limit <= exponent <= limit:
        return 1.0
    # a factor the precision can hold (subnormal sizes would ask for more)
    return 2.0 ** min(max(-exponent, info.minexp + 2), info.maxexp - 2)


def one_sweep_scales(scale: float, dtype) -> bool:
    """Whether products of ``scale * A`` may run as one sweep ``A^T (A (c X)) c``.

    The raw ``A^T T`` between the sweep's two products is about ``T / c``,
    which for c beyond about 2^+-906 (2^+-68 in float32) under- or overflows
    once T is a rounding-level fraction of its start (a wrong x was reported
    converged for A of entries 1e-300 and b of 1e-30): there the two
    products run apart, each scaled.
    """
    info = np.finfo(dtype)
    return abs(math.frexp(scale)[1]) <= info.maxexp - 2 * (info.nmant + 1) - 12


def product_scale(X, image, dtype, powers: int = 4) -> float | None:
    """:func:`power_of_two_scale` of an operator's size as one product shows
    it, ``max|image| / max|X|`` for ``image = A @ X`` (a lower bound on
    ‖A‖, up to a factor of the dimensions); None where that says nothing
    (X or the image zero, or the image not finite).  Either array library.
    """
    xp = get_backend(X).xp
    x_size = float(xp.max(xp.abs(X))) if X.size else 0.0
    y_size = float(xp.max(xp.abs(image))) if image.size else 0.0
    if x_size == 0 or y_size == 0 or not math.isfinite(y_size):
        return None
    # the exponent, not 2.0 ** it: the ratio itself may exceed the float range
    return _power_of_two_for(round(math.log2(y_size) - math.log2(x_size)), dtype, powers)


def stored_values(A):
    """The stored values of a sparse matrix of any format, as one array
    (DOK and LIL keep theirs in dicts and lists: a COO copy of them)."""
    return A.data if A.format in ("csr", "csc", "coo", "bsr", "dia") else A.tocoo().data


def refuse_non_finite(A, image, name: str = "A") -> None:
    """Raise NonFiniteError naming A where its product ``image`` is not finite.

    A product with a random block reaches every entry of A (0 * NaN and
    0 * inf are NaN), so checking a first product finds NaN or inf in A for
    the cost of reading the product.  Only then is A itself read, to say
    whether it holds such entries or its products overflowed; A is None for
    a callable, which like a LinearOperator is not read.
    """
    if bool(get_backend(image).xp.isfinite(image).all()):
        return
    backend = None if A is None else get_backend(A)
    if backend is None or backend.is_linear_operator(A):
        raise NonFiniteError(f"{name} returned non-finite values (NaN or inf) for a finite block")
    if bool(backend.xp.isfinite(stored_values(A) if backend.issparse(A) else A).all()):
        raise NonFiniteError(f"a product with {name} overflowed: its entries are too large "
                         "for its precision")
    raise NonFiniteError(f"{name} has non-finite entries (NaN or inf)")


def real_operand(A, name: str = "A", *, square: bool = False, allow_empty: bool = True,
                 complex_hint: str = "randla's randomized routines work on real data"):
    """Check a real matrix operand and bring it to its working precision.

    Parameters
    ----------
    A : array_like, sparse matrix or LinearOperator
        Host (numpy, scipy.sparse, scipy LinearOperator) or GPU (CuPy,
        cupyx.scipy.sparse, cupyx LinearOperator) data.
    name : str
        Argument name for the error messages.
    square : bool
        Require a square matrix.
    allow_empty : bool
        Accept a matrix with a zero dimension.
    complex_hint : str
        What to tell the caller when A is complex.

    Returns
    -------
    A : ndarray, sparse matrix or LinearOperator
        Of the input's backend.  Dense and sparse data are cast to the
        working precision (no copy when they already have it; the layout is
        kept); LinearOperators are returned unchanged.
    dtype : numpy.dtype
        float32 for float32 data, float64 otherwise (integers are cast like
        scipy casts them).

    Raises
    ------
    TypeError
        For complex or non-numeric data, or an unsupported operand type.
    ValueError
        For a shape that is not 2-D (or not square when asked).
    """
    backend = get_backend(A)
    if not (backend.is_linear_operator(A) or backend.issparse(A)):
        try:
            A = backend.xp.asarray(A)
        except Exception as exc:
            raise TypeError(f"{name} must be an array, a sparse matrix or a "
                            f"LinearOperator, got {type(A).__name__}") from exc
        # before the shape: a string or an object becomes a 0-d array
        if np.dtype(A.dtype).kind not in "biufc":
            raise TypeError(f"{name} must hold real numbers, got dtype {A.dtype}")
    if len(A.shape) != 2:
        what = "a square 2-D matrix" if square else "2-D"
        raise ValueError(f"{name} must be {what}, got shape {A.shape}")
    if square and A.shape[0] != A.shape[1]:
        raise ValueError(f"{name} must be square, got shape {tuple(A.shape)}")
    if not allow_empty and min(A.shape) == 0:
        raise ValueError(f"{name} must not be empty, got shape {tuple(A.shape)}")
    kind = np.dtype(A.dtype) if A.dtype is not None else np.dtype(np.float64)
    if kind.kind == "c":
        raise TypeError(f"{name} is complex ({kind}); {complex_hint}")
    if kind.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {kind}")
    dtype = working_float(kind)
    if backend.issparse(A):
        A = A if A.dtype == dtype else A.astype(dtype)   # cupyx's astype has no copy=
    elif not backend.is_linear_operator(A):
        A = A.astype(dtype, copy=False)
    return A, dtype


def require_adjoint(A, name: str = "A", purpose: str = "this routine") -> None:
    """Refuse a LinearOperator that has no products with its transpose.

    ``LinearOperator(shape, matvec=f)`` (scipy's or cupyx's) without
    ``rmatvec``/``rmatmat``, or a subclass that defines neither ``_rmatvec``,
    ``_rmatmat`` nor ``_adjoint``, fails deep inside the library's interface
    code on its first ``A.T @ Y`` ("'NoneType' object is not callable" for
    rmatmat); this names the argument and what is missing instead.

    Raises
    ------
    TypeError
        If A is such a LinearOperator.
    """
    backend = get_backend(A)
    if not backend.is_linear_operator(A):
        return
    base = backend.sparse_linalg.LinearOperator
    custom = "_CustomLinearOperator__rmatvec_impl" in vars(A)
    if custom:
        missing = (vars(A)["_CustomLinearOperator__rmatvec_impl"] is None
                   and vars(A).get("_CustomLinearOperator__rmatmat_impl") is None)
    else:
        hooks = [hook for hook in ("_rmatvec", "_rmatmat", "_adjoint") if hasattr(base, hook)]
        missing = bool(hooks) and all(getattr(type(A), hook) is getattr(base, hook)
                                      for hook in hooks)
    if missing:
        raise TypeError(f"{name} is a LinearOperator without rmatvec or rmatmat, but "
                        f"{purpose} needs products with its transpose: define rmatvec "
                        f"(or rmatmat) as well")


def cast_operator(A, dtype, *, symmetric: bool = False):
    """A LinearOperator (scipy's or cupyx's) with A's products cast to dtype.

    ``symmetric`` applies Aᵀ as A (for an A known to be symmetric whose
    ``rmatvec`` may be missing).  A matrix behind A then multiplies a vector
    of dtype in dtype; an A that rounds its own products stays as accurate
    as they are.
    """
    backend = get_backend(A)
    xp = backend.xp
    adjoint_vec, adjoint_mat = (A.matvec, A.matmat) if symmetric else (A.rmatvec, A.rmatmat)
    return backend.sparse_linalg.LinearOperator(
        A.shape, dtype=dtype,
        matvec=lambda x: xp.asarray(A.matvec(x), dtype=dtype),
        matmat=lambda X: xp.asarray(A.matmat(X), dtype=dtype),
        rmatvec=lambda x: xp.asarray(adjoint_vec(x), dtype=dtype),
        rmatmat=lambda X: xp.asarray(adjoint_mat(X), dtype=dtype))
