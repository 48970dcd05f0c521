"""The one place that knows numpy from CuPy.

:func:`get_backend` maps input arrays to a :class:`Backend`: the array
namespace (``numpy`` or ``cupy``) and the matching ``scipy`` / ``cupyx.scipy``
modules.  CuPy is imported only when a CuPy array is actually passed in, so
``import randla`` works (and stays fast) without it.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import cached_property
from types import ModuleType

import numpy as np

__all__ = ["Backend", "get_backend", "is_cupy_object", "NUMPY"]


def is_cupy_object(x) -> bool:
    """True for CuPy arrays and cupyx sparse matrices, without importing CuPy."""
    module = type(x).__module__
    return module == "cupy" or module.startswith(("cupy.", "cupyx."))


@dataclass(frozen=True)
class Backend:
    """Array namespace and the scipy-like modules that go with it.

    Attributes
    ----------
    name : {"numpy", "cupy"}
        Which library holds the arrays.
    """

    name: str

    @property
    def is_gpu(self) -> bool:
        return self.name == "cupy"

    @cached_property
    def xp(self) -> ModuleType:
        """``numpy`` or ``cupy``."""
        return importlib.import_module(self.name)

    def _scipy(self, submodule: str) -> ModuleType:
        prefix = "cupyx.scipy" if self.is_gpu else "scipy"
        return importlib.import_module(f"{prefix}.{submodule}")

    @cached_property
    def linalg(self) -> ModuleType:
        """``scipy.linalg`` or ``cupyx.scipy.linalg``."""
        return self._scipy("linalg")

    @cached_property
    def fft(self) -> ModuleType:
        """``scipy.fft`` or ``cupyx.scipy.fft``."""
        return self._scipy("fft")

    @cached_property
    def sparse(self) -> ModuleType:
        """``scipy.sparse`` or ``cupyx.scipy.sparse``."""
        return self._scipy("sparse")

    @cached_property
    def sparse_linalg(self) -> ModuleType:
        """``scipy.sparse.linalg`` or ``cupyx.scipy.sparse.linalg``."""
        return self._scipy("sparse.linalg")

    def issparse(self, x) -> bool:
        """True if ``x`` is a sparse matrix or array of this backend."""
        return bool(self.sparse.issparse(x))


NUMPY = Backend("numpy")
_CUPY = Backend("cupy")


def get_backend(*arrays) -> Backend:
    """The backend of the given arrays (``None`` entries are ignored).

    Anything that is not a CuPy object (numpy arrays, lists, scipy.sparse
    matrices, LinearOperators) belongs to the numpy backend.

    Raises
    ------
    TypeError
        If CuPy and host objects are mixed: randla never moves data between
        host and device behind the caller's back.
    """
    kinds = {is_cupy_object(a) for a in arrays if a is not None}
    if kinds == {True, False}:
        raise TypeError("cannot mix CuPy (GPU) and host (numpy/scipy) operands; "
                        "move them to one device first")
    return _CUPY if kinds == {True} else NUMPY


def working_float(dtype) -> np.dtype:
    """The real floating type computations on data of ``dtype`` use.

    float32 and complex64 compute in float32, float16 is raised to float32,
    everything numeric else (integers, bool, float64, complex128) in float64,
    as scipy.linalg casts.
    """
    dtype = np.dtype(dtype)
    if dtype.kind not in "biufc":
        raise TypeError(f"expected numeric data, got dtype {dtype}")
    if dtype in (np.float16, np.float32, np.complex64):
        return np.dtype(np.float32)
    return np.dtype(np.float64)
