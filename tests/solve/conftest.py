"""One BLAS thread for the solver tests: the CI machine has 2 cores shared with
other jobs, where 2-thread OpenBLAS calls on small matrices can run tens of times
slower (MEASURED.md).  Results do not depend on it; run time does."""
import pytest
from threadpoolctl import threadpool_limits


@pytest.fixture(autouse=True)
def _one_blas_thread():
    with threadpool_limits(limits=1, user_api="blas"):
        yield
