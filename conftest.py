"""pytest configuration shared by the test suite and the doctests of randla/."""
import importlib.util

# Modules that import CuPy at the top cannot even be collected without it.
collect_ignore = []
if importlib.util.find_spec("cupy") is None:
    collect_ignore.append("randla/sketch/_gpu_kernels.py")
