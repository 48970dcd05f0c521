"""Where one ``spir`` solve (``randla.lstsq``'s default) spends its time, phase by phase.

Usage, from the repository root::

    PYTHONPATH=. python asv_benchmarks/profile_spir.py [numpy|cupy] [M N [NRHS]]

It times four plain solves of the standard problem (cond 1e10, residual 1e-6;
default 100000 x 2000 with one right-hand side on CuPy; NRHS > 1 adds
right-hand sides ``A X + r`` as the benchmarks do), then one more with the solver's phases
wrapped in synchronised timers: the sketch, the QR of the sketch, the
shifted factors (and the GPU's triangular inverses), the sweeps over A, the products
with the preconditioner and the backward-error estimates.  What no phase
accounts for is CG's bookkeeping and the drivers' own code (on a GPU, mostly
kernel-launch latency).  The wrapped run is slower than the plain ones by the
synchronisations it adds.
"""
import collections
import sys
import time

import numpy as np

from randla.solve import _drivers, _operand, spir, standard_problem
from randla.solve import _preconditioner as pre


def main(argv):
    library = argv[0] if argv else "cupy"
    m, n = (int(v) for v in argv[1:3]) if len(argv) >= 3 else (100000, 2000)
    nrhs = int(argv[3]) if len(argv) >= 4 else 1
    xp = np if library == "numpy" else __import__(library)
    sync = xp.cuda.Device().synchronize if library == "cupy" else (lambda: None)

    problem = standard_problem(m, n, cond=1e10, residual=1e-6, rng=0)
    b = problem.b
    if nrhs > 1:
        X = np.random.default_rng(1).standard_normal((n, nrhs))
        b = problem.A @ X + problem.r[:, None]
    A, b = xp.asarray(problem.A), xp.asarray(b)
    plain = []
    for _ in range(2 if nrhs > 1 else 4):
        sync()
        start = time.perf_counter()
        spir(A, b, rng=0)
        sync()
        plain.append(time.perf_counter() - start)
    print(f"{library} {m} x {n}, {nrhs} right-hand side(s): plain spir", " ".join(f"{1e3 * t:.1f}" for t in plain), "ms")

    totals, counts = collections.Counter(), collections.Counter()

    def timed(f, label):
        def call(*args, **kwargs):
            sync()
            start = time.perf_counter()
            out = f(*args, **kwargs)
            sync()
            totals[label] += time.perf_counter() - start
            counts[label] += 1
            return out
        return call

    def wrap(owner, name, label):
        setattr(owner, name, timed(getattr(owner, name), label))

    estimator = pre.Preconditioner.estimator

    def timed_estimator(self, *args, **kwargs):
        return timed(timed(estimator, "estimator set-up")(self, *args, **kwargs),
                     "estimates")

    wrap(pre, "_draw_operator", "draw the sketch")
    wrap(_operand.Operand, "sketch", "sketch S [A b]")
    wrap(pre, "_r_factor", "QR of the sketch")
    wrap(pre, "_gpu_triangular_inverse", "triangular inverses (GPU)")
    wrap(pre.Preconditioner, "_new_shifted_factor", "shifted factors")
    wrap(_operand.Operand, "residual", "residual sweeps")
    wrap(_operand.Operand, "normal", "CG sweeps")
    wrap(pre.Preconditioner, "apply", "P products")
    wrap(pre.Preconditioner, "apply_t", "P^T products")
    wrap(pre.Preconditioner, "inverse_t", "P^-T products")
    pre.Preconditioner.estimator = timed_estimator
    wrap(_drivers, "_pcg", "CG in all")

    sync()
    start = time.perf_counter()
    result = spir(A, b, rng=0)
    sync()
    total = time.perf_counter() - start
    print(f"wrapped spir {1e3 * total:.1f} ms, {result.iterations} CG iterations, "
          f"{result.passes} passes over A")
    in_cg = ("CG sweeps", "P products", "P^T products", "P^-T products", "estimates")
    for label, seconds in totals.most_common():
        print(f"  {label:24s} {1e3 * seconds:8.2f} ms  ({counts[label]} calls)")
    bookkeeping = totals["CG in all"] - sum(totals[label] for label in in_cg)
    outside = total - sum(totals.values()) + totals["CG in all"] - bookkeeping
    print(f"  {'CG bookkeeping':24s} {1e3 * bookkeeping:8.2f} ms")
    print(f"  {'everything else':24s} {1e3 * outside:8.2f} ms")


if __name__ == "__main__":
    main(sys.argv[1:])
