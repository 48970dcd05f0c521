"""``import randla`` loads neither numba (no compilation at import) nor CuPy."""
import subprocess
import sys


def test_import_loads_neither_numba_nor_cupy():
    code = ("import sys, randla, randla.solve, randla.eig, randla.sketch; "
            "print(sorted(m for m in ('numba', 'cupy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"


def test_top_level_names_are_the_subpackages_functions():
    import randla
    from randla import eig, solve
    expected = {"lstsq": solve.lstsq, "svds": eig.svds, "eigsh": eig.eigsh,
                "trace": eig.trace, "diag_estimate": eig.diag_estimate}
    for name, function in expected.items():
        assert getattr(randla, name) is function
        assert name in randla.__all__ and name in dir(randla)
    namespace = {}
    exec("from randla import *", namespace)
    assert set(randla.__all__) <= set(namespace)
