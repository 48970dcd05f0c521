"""``python -m randla``: randla.lstsq against scipy.linalg.lstsq on a standard problem.

Builds the standard least-squares test problem (default 40000 x 1000, condition number
1e10, optimal residual 1e-6), solves it with both, and prints time, forward
error and backward-error estimate side by side.
"""
from __future__ import annotations

import argparse
import sys
import time


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {text}")
    return value


def _condition_number(text: str) -> float:
    value = float(text)
    if not 1 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 1, got {text}")
    return value


def _residual(text: str) -> float:
    value = float(text)
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def _parser() -> argparse.ArgumentParser:
    from randla.solve import _lstsq
    p = argparse.ArgumentParser(prog="python -m randla", description=__doc__.splitlines()[0])
    p.add_argument("--rows", "-m", type=_positive, default=40000,
                   help="rows of A (default 40000)")
    p.add_argument("--cols", "-n", type=_positive, default=1000,
                   help="columns of A (default 1000)")
    p.add_argument("--cond", type=_condition_number, default=1e10, help="condition number (default 1e10)")
    p.add_argument("--residual", type=_residual, default=1e-6,
                   help="norm of the optimal residual (default 1e-6)")
    p.add_argument("--nrhs", type=_positive, default=1, help="right-hand sides (default 1)")
    p.add_argument("--method", default="randomized", choices=_lstsq._METHODS,
                   help="randla.lstsq method (default 'randomized'; 'auto' lets the cost "
                        "model choose)")
    p.add_argument("--driver", default="gelsd", choices=("gelsd", "gelsy", "gelss"),
                   help="scipy lapack_driver (default gelsd)")
    p.add_argument("--seed", type=_non_negative, default=0)
    p.add_argument("--repeat", type=_positive, default=1, help="best of this many timings")
    p.add_argument("--blas-threads", type=_positive, default=None,
                   help="limit BLAS threads for both solvers")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress display")
    return p


class _Progress:
    """One status line on stderr, rewritten in place."""

    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.start = time.perf_counter()

    def __call__(self, message: str) -> None:
        if not self.quiet:
            elapsed = time.perf_counter() - self.start
            print(f"\r[{elapsed:7.1f} s] {message:<70}", end="", file=sys.stderr, flush=True)

    def done(self) -> None:
        if not self.quiet:
            print("\r" + " " * 82 + "\r", end="", file=sys.stderr, flush=True)


def _backward_error(A, b, x, sketch_rng):
    """Sketched Karlson-Walden estimate of x's backward error over ||A||_F (one
    independent sketch for both solutions, so the numbers compare like with like)."""
    import numpy as np

    from .solve._operand import as_operand
    from .solve._preconditioner import choose_sketch_size, sketch_and_factor
    op = as_operand(A)
    m, n = A.shape
    P, _ = sketch_and_factor(op, None, d=choose_sketch_size(m, n), sketch="saso",
                             rng=sketch_rng, cutoff=0.0)
    X = x.reshape(n, -1)
    R, G = op.residual(X, b.reshape(m, -1))
    est = P.kw(G, np.linalg.norm(R, axis=0), np.linalg.norm(X, axis=0))
    return float(np.max(est)) / float(np.linalg.norm(A))


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    import numpy as np
    import scipy.linalg as sla

    from . import lstsq
    from .solve import standard_problem
    m, n = args.rows, args.cols
    if not 0 < n < m:
        print(f"need 0 < cols < rows, got {m} x {n}", file=sys.stderr)
        return 2
    progress = _Progress(args.quiet)
    progress(f"building the {m} x {n} test problem (cond {args.cond:.0e}, "
             f"residual {args.residual:.0e})")
    A, b, x_true, _ = standard_problem(m, n, args.cond, args.residual, rng=args.seed)
    if args.nrhs > 1:
        rng = np.random.default_rng(args.seed + 1)
        X_true = np.column_stack([x_true] + [rng.standard_normal(n)
                                             for _ in range(args.nrhs - 1)])
        b = A @ X_true + (b - A @ x_true)[:, None]
        x_true = X_true

    def timed(label, solve):
        best, x = float("inf"), None
        for i in range(args.repeat):
            progress(f"{label}: run {i + 1} of {args.repeat}")
            t0 = time.perf_counter()
            x = solve()
            best = min(best, time.perf_counter() - t0)
        return x, best

    def fe(x):
        return float(np.linalg.norm(x - x_true) / np.linalg.norm(x_true))

    if args.blas_threads is not None:
        from threadpoolctl import threadpool_limits
        threadpool_limits(limits=args.blas_threads, user_api="blas")
    # load the compiled sketching kernels before timing (scipy has no JIT cache to read)
    progress("loading randla's numba kernels")
    small = standard_problem(200, 20, rng=0)
    lstsq(small.A, small.b, method=args.method, rng=0)
    x_r, t_r = timed("randla.lstsq", lambda: lstsq(A, b, method=args.method, rng=args.seed)[0])
    x_s, t_s = timed(f"scipy.linalg.lstsq ({args.driver})",
                     lambda: sla.lstsq(A, b, lapack_driver=args.driver)[0])
    progress("estimating backward errors")
    be_r = _backward_error(A, b, x_r, args.seed + 7)
    be_s = _backward_error(A, b, x_s, args.seed + 7)
    progress.done()
    threads = "" if args.blas_threads is None else f", {args.blas_threads} BLAS thread(s)"
    print(f"least squares, A {m} x {n}, cond {args.cond:.0e}, residual {args.residual:.0e}, "
          f"{args.nrhs} right-hand side(s); best of {args.repeat}{threads}")
    ours, theirs = f"randla.lstsq ({args.method})", f"scipy.linalg.lstsq ({args.driver})"
    width = max(28, len(ours) + 2, len(theirs) + 2)
    print(f"{'solver':<{width}}{'time [s]':>10}{'forward error':>16}{'backward error':>16}")
    print(f"{ours:<{width}}{t_r:>10.3f}{fe(x_r):>16.2e}{be_r:>16.2e}")
    print(f"{theirs:<{width}}{t_s:>10.3f}{fe(x_s):>16.2e}{be_s:>16.2e}")
    print(f"speed-up {t_s / t_r:.2f}x (timings on a shared machine are noisy; "
          "backward error: sketched Karlson-Walden estimate / ||A||_F)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
