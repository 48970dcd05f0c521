"""``import randla`` loads neither numba (no compilation at import) nor CuPy."""
import subprocess
import sys


def test_import_loads_neither_numba_nor_cupy():
    code = ("import sys, randla, randla.solve, randla.eig, randla.sketch; "
            "print(sorted(m for m in ('numba', 'cupy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"
