"""randla: randomized numerical linear algebra for numpy, scipy and CuPy.

Subpackages
-----------
sketch -- the Randomized BLAS: counter-based sketching operators and their application
solve  -- least squares (sketch-and-solve, sketch-and-precondition, refinement)
eig    -- low-rank approximation, eigenvectors and trace estimation

At the top level: lstsq, svds and eigsh (drop-ins for scipy.linalg.lstsq and
scipy.sparse.linalg.svds / eigsh), trace and diag_estimate.
"""
from . import eig, sketch, solve

__version__ = "0.1.0"
# Drop-ins and drivers exported at the top level, loaded on first use.
_TOP_LEVEL = {"lstsq": "solve", "svds": "eig", "eigsh": "eig", "trace": "eig",
              "diag_estimate": "eig"}

__all__ = ["sketch", "solve", "eig", "__version__", *_TOP_LEVEL]


def __getattr__(name):
    if name in _TOP_LEVEL:
        import importlib
        return getattr(importlib.import_module(f"{__name__}.{_TOP_LEVEL[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_TOP_LEVEL))
