"""Validation of the matrix that a solver or estimator only multiplies by.

The drivers of ``randla.solve`` and ``randla.eig`` wrap their operand in
small classes that count products; this is the one place that decides what
such an operand may be and in which precision it is used.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import LinearOperator

from ._backend import get_backend, working_float

__all__ = ["real_operand"]


def real_operand(A, name: str = "A", *, square: bool = False, allow_empty: bool = True,
                 complex_hint: str = "randla's randomized routines work on real data"):
    """Check a real matrix operand and bring it to its working precision.

    Parameters
    ----------
    A : array_like, scipy.sparse matrix or LinearOperator
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
    A : numpy.ndarray, scipy.sparse matrix or LinearOperator
        Dense and sparse data cast to the working precision (no copy when
        it already has it; the layout is kept); LinearOperators unchanged.
    dtype : numpy.dtype
        float32 for float32 data, float64 otherwise (integers are cast like
        scipy casts them).

    Raises
    ------
    NotImplementedError
        For CuPy data: the drivers run on the host only so far.
    TypeError
        For complex or non-numeric data, or an unsupported operand type.
    ValueError
        For a shape that is not 2-D (or not square when asked).
    """
    if get_backend(A).is_gpu:
        raise NotImplementedError(f"{name}: CuPy input is not supported by this routine yet; "
                                  "only the sketch layer runs on the GPU")
    if not (isinstance(A, LinearOperator) or sp.issparse(A)):
        try:
            A = np.asarray(A)
        except Exception as exc:
            raise TypeError(f"{name} must be an array, a scipy.sparse matrix or a "
                            f"LinearOperator, got {type(A).__name__}") from exc
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
    if not isinstance(A, LinearOperator):
        A = A.astype(dtype, copy=False)
    return A, dtype
