"""asv_benchmarks/profile_spir.py still finds every phase it wraps."""
import importlib.util
import pathlib

PROFILER = pathlib.Path(__file__).resolve().parents[1] / "asv_benchmarks" / "profile_spir.py"


def test_profiles_a_small_solve_on_the_host(capsys, monkeypatch):
    spec = importlib.util.spec_from_file_location("profile_spir", PROFILER)
    profiler = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(profiler)
    # the profiler patches the solver's internals for the rest of the process:
    # let monkeypatch put them back
    from randla.solve import _drivers, _operand
    from randla.solve import _preconditioner as pre
    for owner, names in ((pre, ["_draw_operator", "_r_factor", "_gpu_triangular_inverse"]),
                         (_operand.Operand, ["sketch", "residual", "normal"]),
                         (pre.Preconditioner, ["apply", "apply_t", "inverse_t", "estimator",
                                               "_new_shifted_factor"]),
                         (_drivers, ["_pcg"])):
        for name in names:
            monkeypatch.setattr(owner, name, getattr(owner, name))
    profiler.main(["numpy", "3000", "40"])
    out = capsys.readouterr().out
    for phase in ("QR of the sketch", "CG sweeps", "residual sweeps", "estimates",
                  "shifted factors", "CG bookkeeping"):
        assert phase in out
