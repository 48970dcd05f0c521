"""Memory a call allocates, without the noise of the process's RSS.

asv's ``peakmem_`` benchmarks report the process's peak RSS, setup included:
where building the problem needs more memory than solving it (the standard
least-squares problems, the known-spectrum matrices), they show only the
setup.  ``allocated_peak`` reports what the call itself holds at its peak.
"""
import tracemalloc


def allocated_peak(call):
    """``(result, bytes)``: call's result and the peak of the memory allocated
    while it ran, as tracemalloc sees it.

    numpy registers its array buffers with tracemalloc, so temporaries and
    results count; memory allocated inside numba kernels, by BLAS/LAPACK
    themselves or by the FFT library does not.
    """
    tracemalloc.start()
    try:
        result = call()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return result, peak
