"""Helpers for randla's own test suite."""
from __future__ import annotations


def require_gpu():
    """CuPy, or skip the calling test module when CuPy or a CUDA device is missing.

    Call at module level in a GPU test file: ``cp = require_gpu()``.
    """
    import pytest
    cp = pytest.importorskip("cupy", reason="CuPy is not installed")
    try:
        devices = cp.cuda.runtime.getDeviceCount()
    except Exception as exc:  # pragma: no cover - depends on the machine
        pytest.skip(f"no CUDA device: {exc}", allow_module_level=True)
    if devices < 1:  # pragma: no cover - depends on the machine
        pytest.skip("no CUDA device", allow_module_level=True)
    return cp
