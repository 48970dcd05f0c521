"""randla: randomized numerical linear algebra for numpy, scipy and CuPy.

Subpackages
-----------
sketch -- the Randomized BLAS: counter-based sketching operators and their application
solve  -- least squares (sketch-and-solve, sketch-and-precondition, refinement)
eig    -- low-rank approximation, eigenvectors and trace estimation
"""
from . import eig, sketch, solve

__version__ = "0.1.0"
__all__ = ["sketch", "solve", "eig", "__version__"]
