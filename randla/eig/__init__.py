"""Randomized low-rank approximation, eigenvectors and trace estimation (to come)."""
from ._epsi import EPSIResult, epsi, lazy_epsi
from ._lowrank import (NystromResult, QBResult, RangeFinderResult, SVDResult, nystrom, qb,
                       randomized_svd, range_finder)

__all__ = ["range_finder", "qb", "randomized_svd", "nystrom", "RangeFinderResult", "QBResult",
           "SVDResult", "NystromResult", "epsi", "lazy_epsi", "EPSIResult"]
