"""Randomized least squares.

Drop-in
-------
lstsq                   -- scipy.linalg.lstsq's signature and return tuple, randomized
                           (backward stable) when a cost model says it is faster

Drivers (return an LstsqResult)
-------------------------------
spir                    -- sketch-and-precondition with iterative refinement (default)
fossils                 -- the same refinement with heavy-ball inner solves
sketch_and_solve        -- one sketch, approximate
sketch_and_precondition -- LSQR or CG on the preconditioned problem, no refinement
iterative_sketching     -- iterative sketching with momentum (forward stable)
sirr                    -- iterative refinement around recursive refinement (Xu & Lu)
min_norm                -- minimum-norm solution for wide A

Test problems and metrics
-------------------------
standard_problem, backward_error, forward_error, choose_sketch_size, prefers_randomized,
prefers_randomized_gpu

Every driver accepts CuPy data (dense, cupyx.scipy.sparse or a cupyx
LinearOperator) and solves it on the GPU with the same code.
"""
from ._drivers import (LstsqResult, fossils, iterative_sketching, min_norm,
                       sketch_and_precondition, sketch_and_solve, spir)
from ._lstsq import lstsq, prefers_randomized, prefers_randomized_gpu
from ._preconditioner import choose_sketch_size
from ._problems import StandardProblem, backward_error, forward_error, standard_problem
from ._sirr import sirr

__all__ = ["lstsq", "prefers_randomized", "prefers_randomized_gpu", "LstsqResult", "spir", "fossils", "sirr",
           "sketch_and_solve", "sketch_and_precondition", "iterative_sketching", "min_norm",
           "choose_sketch_size", "StandardProblem", "standard_problem", "backward_error",
           "forward_error"]
