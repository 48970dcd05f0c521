"""Randomized low-rank approximation, eigenvectors and trace estimation (to come)."""
from ._lowrank import (NystromResult, QBResult, RangeFinderResult, SVDResult, nystrom, qb,
                       randomized_svd, range_finder)
from ._dropins import eigsh, svds
from ._epsi import EPSIResult, epsi, lazy_epsi
from ._trace import diag_estimate, trace

__all__ = ["trace", "diag_estimate"]
__all__ += ["range_finder", "qb", "randomized_svd", "nystrom", "RangeFinderResult", "QBResult",
            "SVDResult", "NystromResult", "epsi", "lazy_epsi", "EPSIResult", "svds", "eigsh"]
