"""Levels 1-2: applying sketching operators to data.

``left_sketch(S, A) = S @ A``, ``right_sketch(A, S) = A @ S.T`` and
``two_sided_sketch(S1, A, S2) = S1 @ A @ S2.T`` for A a dense array (any
layout, real or complex), a sparse matrix or a LinearOperator, on the host
(numpy/scipy) or the GPU (CuPy/cupyx).  The result is a dense array of A's
kind in A's working precision (float32 data stays float32, integers become
float64).  Right sketches reuse the left-sketch kernels on ``A.T``, a free
view.
"""
from __future__ import annotations

import numpy as np

from .._backend import get_backend, working_float
from .._operand import require_adjoint
from ._operators import PANEL_ENTRIES, SketchingOperator, TransposedOperator

__all__ = ["left_sketch", "right_sketch", "two_sided_sketch"]


def _check_operator(S, name):
    if not isinstance(S, SketchingOperator):
        raise TypeError(f"{name} must be a randla sketching operator, got {type(S).__name__}")


def _is_linear_operator(A, backend):
    return isinstance(A, backend.sparse_linalg.LinearOperator)


def _as_operand(A, name):
    """A as a dense array, sparse matrix or LinearOperator, with a numeric dtype."""
    if isinstance(A, (SketchingOperator, TransposedOperator)):
        raise TypeError(f"{name} must be data, not a sketching operator: form the "
                        "operator's entries with todense() (or tosparse() for SASO and "
                        "LASO) to multiply it")
    backend = get_backend(A)
    if _is_linear_operator(A, backend) or backend.issparse(A):
        kind = np.dtype(A.dtype)
    else:
        try:
            A = backend.xp.asarray(A)
        except Exception as exc:
            raise TypeError(f"{name} must be an array, a sparse matrix or a "
                            f"LinearOperator, got {type(A).__name__}") from exc
        kind = A.dtype
        # the dtype first: a string or an object becomes a 0-d array
        if kind.kind in "biufc" and A.ndim not in (1, 2):
            raise ValueError(f"{name} must be 1-D or 2-D, got shape {A.shape}")
    if kind.kind not in "biufc":
        raise TypeError(f"{name} must hold numbers, got dtype {kind} "
                        f"({type(A).__name__})")
    return A


def _has_adjoint(A):
    """False for a LinearOperator with no products with its transpose."""
    try:
        require_adjoint(A)
    except TypeError:
        return False
    return True


def _result_dtype(A):
    """The dtype of S @ A: A's working precision, complex if A is."""
    real = np.dtype(working_float(A.dtype))
    return np.result_type(real, np.complex64) if np.dtype(A.dtype).kind == "c" else real


def _left(S, A, out=None):
    """S @ A for a validated 2-D operand with A.shape[0] == S.m, written into
    the validated ``out`` when given."""
    backend = get_backend(A)
    real = working_float(A.dtype)
    if _is_linear_operator(A, backend):
        require_adjoint(A, "A", "S @ A (computed as (Aᵀ Sᵀ)ᵀ; a right sketch, "
                        "right_sketch(A, S), needs only matvec)")
        result = _left_linear_operator(S, A, real, backend.xp)
    elif np.dtype(A.dtype).kind == "c":
        # S is real: sketch the real and imaginary parts with the same kernel.
        result = _left(S, A.real) + 1j * _left(S, A.imag)
    elif backend.issparse(A):
        result = S._left_sparse(A.astype(real, copy=False))
    elif out is not None:
        return S._left_dense_into(A.astype(real, copy=False), out)
    else:
        return S._left_dense(A.astype(real, copy=False))
    if out is None:
        return result
    out[...] = result
    return out


def _check_out(out, shape, dtype, A):
    """Refuse an ``out`` that S @ A cannot be written into."""
    backend = get_backend(A)
    if not isinstance(out, backend.xp.ndarray):
        raise TypeError(f"out must be a {backend.xp.__name__} array like A's data, "
                        f"got {type(out).__name__}")
    if out.shape != shape or out.dtype != dtype:
        raise ValueError(f"out must have shape {shape} and dtype {dtype} (those of "
                         f"S @ A), got shape {out.shape} and dtype {out.dtype}")
    # CuPy arrays have no read-only form (their flags lack the attribute).
    if not getattr(out.flags, "writeable", True):
        raise ValueError("out must be writeable, got a read-only array")


def _left_linear_operator(S, A, real, xp):
    # S @ A = (A^H S^T)^H, with S^T formed in row blocks of S.
    result = np.result_type(A.dtype, real)
    out = xp.empty((S.d, A.shape[1]), dtype=result)
    rows = max(1, PANEL_ENTRIES // S.m)
    for r0 in range(0, S.d, rows):
        r1 = min(S.d, r0 + rows)
        block = S.block(slice(r0, r1), dtype=real, xp=xp)
        out[r0:r1] = xp.asarray(A.rmatmat(block.T)).conj().T
    return out


def _right_linear_operator(A, S, real, xp):
    # A @ S.T, with S^T formed in row blocks of S.
    result = np.result_type(A.dtype, real)
    out = xp.empty((A.shape[0], S.d), dtype=result)
    rows = max(1, PANEL_ENTRIES // S.m)
    for r0 in range(0, S.d, rows):
        r1 = min(S.d, r0 + rows)
        out[:, r0:r1] = xp.asarray(A.matmat(S.block(slice(r0, r1), dtype=real, xp=xp).T))
    return out


def left_sketch(S: SketchingOperator, A, *, out=None) -> np.ndarray:
    """Compute ``S @ A``: compress the rows of A.

    Parameters
    ----------
    S : SketchingOperator
        A d x m operator.
    A : array_like, sparse matrix or LinearOperator
        m x n data, or a length-m vector: numpy/scipy on the host or
        CuPy/cupyx on the GPU.  Dense arrays may be C- or F-ordered, real or
        complex; integers are cast to float64.
    out : numpy.ndarray or cupy.ndarray, optional
        Where to write the result: of A's library, with the result's shape
        and dtype, in any layout (a column-major view, say, to factor
        afterwards).  A SASO applied to C-ordered host data writes into it
        directly; other operators compute the result and copy it in.

    Returns
    -------
    numpy.ndarray or cupy.ndarray
        d x n (or length d for a vector), of A's kind; float32 for
        float16/float32/complex64 data and float64 otherwise (complex if A
        is).
        ``out`` itself when given.

    Raises
    ------
    ValueError
        If ``A.shape[0] != S.shape[1]``, A is not 1-D or 2-D, or ``out`` has
        the wrong shape or dtype or is read-only.
    TypeError
        If S is not an operator, A is not numeric data of a supported kind
        (another sketching operator is not), A is a LinearOperator without
        ``rmatvec``/``rmatmat`` (``S @ A`` is computed as ``(A^H S^T)^H``),
        or ``out`` is not an array of A's library.

    Notes
    -----
    NaN and inf in A propagate; sketching does not validate data.

    Examples
    --------
    >>> import numpy as np
    >>> from randla.sketch import SASO, left_sketch
    >>> A = np.random.default_rng(0).standard_normal((10000, 20))
    >>> S = SASO(200, 10000, rng=0)
    >>> left_sketch(S, A).shape
    (200, 20)
    """
    _check_operator(S, "S")
    A = _as_operand(A, "A")
    if A.shape[0] != S.m:
        raise ValueError(f"S @ A: S has shape {S.shape} but A has shape {A.shape}; "
                         f"A must have {S.m} rows")
    if out is not None:
        _check_out(out, (S.d,) + A.shape[1:], _result_dtype(A), A)
    if A.ndim == 1:
        column = _left(S, A.reshape(-1, 1), None if out is None else out[:, None])
        return column[:, 0] if out is None else out
    return _left(S, A, out)


def right_sketch(A, S: SketchingOperator) -> np.ndarray:
    """Compute ``A @ S.T``: compress the columns of A.

    Parameters
    ----------
    A : array_like, scipy.sparse matrix or LinearOperator
        p x m data, or a length-m vector.
    S : SketchingOperator
        A d x m operator.

    Returns
    -------
    numpy.ndarray
        p x d (or length d for a vector), precision as in :func:`left_sketch`.

    Raises
    ------
    ValueError
        If ``A.shape[-1] != S.shape[1]``.
    TypeError
        If S is not an operator or A is not numeric data of a supported kind.

    Notes
    -----
    ``A @ S.T`` is the same product for arrays and sparse matrices.  For a
    scipy LinearOperator A call this function: scipy's ``@`` does not hand
    the product over to ``S.T`` and fails.  A LinearOperator needs only
    ``matvec``/``matmat`` here.

    Examples
    --------
    >>> import numpy as np
    >>> from randla.sketch import DenseOperator, right_sketch
    >>> A = np.ones((30, 500))
    >>> right_sketch(A, DenseOperator(10, 500, rng=0)).shape
    (30, 10)
    """
    _check_operator(S, "S")
    A = _as_operand(A, "A")
    if A.shape[-1] != S.m:
        raise ValueError(f"A @ S.T: A has shape {A.shape} but S has shape {S.shape}; "
                         f"A must have {S.m} columns")
    if A.ndim == 1:
        return _left(S, A.reshape(-1, 1))[:, 0]
    backend = get_backend(A)
    if _is_linear_operator(A, backend):
        return _right_linear_operator(A, S, working_float(A.dtype), backend.xp)
    return _left(S, A.T).T


def two_sided_sketch(S1: SketchingOperator, A, S2: SketchingOperator) -> np.ndarray:
    """Compute ``S1 @ A @ S2.T``.

    The side with the smaller intermediate result is applied first (the
    right side for a LinearOperator without ``rmatvec``/``rmatmat``, which
    needs only ``matvec`` here).

    Parameters
    ----------
    S1 : SketchingOperator
        d1 x m.
    A : array_like, scipy.sparse matrix or LinearOperator
        m x n.
    S2 : SketchingOperator
        d2 x n.

    Returns
    -------
    numpy.ndarray
        d1 x d2.

    Examples
    --------
    >>> import numpy as np
    >>> from randla.sketch import DenseOperator, SASO, two_sided_sketch
    >>> A = np.ones((1000, 800))
    >>> two_sided_sketch(SASO(40, 1000, rng=1), A, DenseOperator(30, 800, rng=2)).shape
    (40, 30)
    """
    _check_operator(S1, "S1")
    _check_operator(S2, "S2")
    A = _as_operand(A, "A")
    if A.ndim != 2 or A.shape != (S1.m, S2.m):
        raise ValueError(f"S1 @ A @ S2.T: S1 has shape {S1.shape}, A has shape {A.shape} "
                         f"and S2 has shape {S2.shape}; A must be {S1.m} x {S2.m}")
    # A LinearOperator without an adjoint can only be sketched from the right first.
    if S1.d * A.shape[1] <= A.shape[0] * S2.d and _has_adjoint(A):
        return right_sketch(left_sketch(S1, A), S2)
    return left_sketch(S1, right_sketch(A, S2))
