"""`python -m randla` (the main-job demo) on a small problem."""
import pytest

from randla.__main__ import main


def test_demo_prints_both_solvers(capsys):
    assert main(["--rows", "600", "--cols", "20", "--cond", "1e6", "-q"]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith(("randla", "scipy"))]
    assert len(lines) == 2
    for line in lines:
        time, forward, backward = (float(v) for v in line.split()[-3:])
        assert time >= 0 and forward < 1e-6 and backward < 1e-14


def test_demo_rejects_bad_shape(capsys):
    assert main(["--rows", "10", "--cols", "20", "-q"]) == 2


@pytest.mark.parametrize("args", [["--repeat", "0"], ["--method", "bogus"], ["--nrhs", "0"],
                                  ["--seed", "-1"], ["--driver", "x"], ["--rows", "-5"],
                                  ["--cond", "0.5"], ["--cond", "nan"], ["--residual", "-1"],
                                  ["--residual", "inf"], ["--blas-threads", "0"]])
def test_demo_refuses_bad_options_with_a_usage_error(args, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(args + ["-q"])
    assert exit_info.value.code == 2
    assert "error: argument" in capsys.readouterr().err
