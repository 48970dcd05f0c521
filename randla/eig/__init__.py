"""Randomized low-rank approximation, eigenvectors and trace estimation.

Drop-ins
--------
svds, eigsh       -- scipy.sparse.linalg's signatures and returns; block Lanczos
                     (randomized block Krylov) with thick restarts underneath

Low rank (return a result dataclass)
------------------------------------
range_finder      -- orthonormal basis for the dominant range of A, with an error estimate
qb                -- A ~ Q B from the range finder
randomized_svd    -- rank-k truncated SVD (Halko-Martinsson-Tropp)
nystrom           -- shifted Nystrom approximation of a PSD matrix
epsi, lazy_epsi   -- top singular vector(s) by EPSI / Lazy-EPSI, from a randomized SVD

Trace and diagonal (return TraceResult, DiagResult)
---------------------------------------------------
trace             -- Girard-Hutchinson, Hutch++, Nystrom++, XTrace, XNysTrace
diag_estimate     -- diagonal of an implicit matrix

Every routine accepts dense arrays, scipy.sparse matrices and LinearOperators
(trace and diag_estimate also a callable), and CuPy data on a GPU.
"""
from ._lowrank import (NystromResult, QBResult, RangeFinderResult, SVDResult, nystrom, qb,
                       randomized_svd, range_finder)
from ._dropins import eigsh, svds
from ._epsi import EPSIResult, epsi, lazy_epsi
from ._trace import DiagResult, TraceResult, diag_estimate, trace

__all__ = ["trace", "diag_estimate", "TraceResult", "DiagResult"]
__all__ += ["range_finder", "qb", "randomized_svd", "nystrom", "RangeFinderResult", "QBResult",
            "SVDResult", "NystromResult", "epsi", "lazy_epsi", "EPSIResult", "svds", "eigsh"]
