"""The least-squares drivers on CuPy data: same code, same answers as on the host.

Skipped (with the reason) where CuPy or a CUDA device is missing.
"""
import numpy as np
import pytest

from randla._testing import require_gpu
from randla.solve import (backward_error, forward_error, fossils, iterative_sketching, lstsq,
                          min_norm, sirr, sketch_and_precondition, sketch_and_solve, spir,
                          standard_problem)

cp = require_gpu()

pytestmark = pytest.mark.gpu

DRIVERS = {
    "spir": spir,
    "fossils": fossils,
    "sirr": sirr,
    "iterative_sketching": iterative_sketching,
    "lsqr": lambda A, b, **kw: sketch_and_precondition(A, b, solver="lsqr", **kw),
    "cg": lambda A, b, **kw: sketch_and_precondition(A, b, solver="cg", **kw),
}


def householder(A, b):
    Q, R = np.linalg.qr(A)
    return np.linalg.solve(R, Q.T @ b)


@pytest.fixture(scope="module")
def problem():
    A, b, x, _ = standard_problem(2000, 40, 1e8, 1e-6, rng=3)
    return A, b, x, cp.asarray(A), cp.asarray(b)


@pytest.mark.parametrize("name", DRIVERS)
def test_driver_on_gpu_is_as_accurate_as_on_host(problem, name):
    A, b, x, A_gpu, b_gpu = problem
    host = DRIVERS[name](A, b, rng=5)
    gpu = DRIVERS[name](A_gpu, b_gpu, rng=5)
    assert isinstance(gpu.x, cp.ndarray) and gpu.x.dtype == np.float64
    x_gpu = cp.asnumpy(gpu.x)
    x_qr = householder(A, b)
    be_qr, fe_qr = backward_error(A, b, x_qr), forward_error(x_qr, x)
    assert forward_error(x_gpu, x) <= 10 * max(fe_qr, forward_error(host.x, x))
    if name not in ("iterative_sketching", "lsqr", "cg"):     # the backward-stable ones
        assert backward_error(A, b, x_gpu) <= 10 * be_qr
        assert gpu.converged
    assert isinstance(gpu.backward_error_estimate, float)
    assert gpu.passes > 0 and gpu.rank == 40


@pytest.mark.parametrize("preconditioner", ("svd", "qr"))
def test_same_preconditioner_same_answer_to_rounding(problem, preconditioner):
    A, b, _, A_gpu, b_gpu = problem
    host = spir(A, b, rng=7, preconditioner=preconditioner)
    gpu = spir(A_gpu, b_gpu, rng=7, preconditioner=preconditioner)
    # both backward stable at condition number 1e8: agreement to ~ kappa * u
    assert forward_error(cp.asnumpy(gpu.x), host.x) <= 1e-6
    assert gpu.sketch_size == host.sketch_size


def test_sketch_and_solve_and_min_norm_on_gpu():
    A, b, x, _ = standard_problem(2000, 40, 1e3, 1e-2, rng=4)
    host = sketch_and_solve(A, b, rng=2, preconditioner="svd")
    gpu = sketch_and_solve(cp.asarray(A), cp.asarray(b), rng=2, preconditioner="svd")
    assert forward_error(cp.asnumpy(gpu.x), host.x) <= 1e-10
    W = np.random.default_rng(5).standard_normal((40, 900))
    c = np.random.default_rng(6).standard_normal(40)
    res = min_norm(cp.asarray(W), cp.asarray(c), rng=3)
    assert isinstance(res.x, cp.ndarray)
    assert forward_error(cp.asnumpy(res.x), np.linalg.pinv(W) @ c) <= 1e-10


def test_float32_stays_float32_on_gpu():
    A, b, x, _ = standard_problem(2000, 30, 1e2, 1e-3, rng=1, dtype=np.float32)
    res = spir(cp.asarray(A), cp.asarray(b), rng=2)
    assert res.x.dtype == cp.float32
    ref = householder(A.astype(np.float64), b.astype(np.float64))
    assert forward_error(cp.asnumpy(res.x).astype(np.float64), ref) <= 1e-4


def test_multiple_right_hand_sides_on_gpu(problem):
    A, b, x, A_gpu, _ = problem
    B = np.column_stack([b, A @ np.ones(40), 2 * b])
    res = spir(A_gpu, cp.asarray(B), rng=3)
    assert res.x.shape == (40, 3) and res.backward_error_estimate.shape == (3,)
    ref = np.linalg.lstsq(A, B, rcond=None)[0]
    for j in range(3):
        assert forward_error(cp.asnumpy(res.x[:, j]), ref[:, j]) <= 1e-6


@pytest.mark.parametrize("kind", ("sparse", "operator"))
def test_cupyx_sparse_and_linear_operator(kind):
    import cupyx.scipy.sparse as csp
    import cupyx.scipy.sparse.linalg as cspla
    import scipy.sparse as sp
    S = sp.random(3000, 40, density=0.05, format="csr", random_state=8)
    S = (S @ sp.diags(np.logspace(0, 4, 40))).tocsr()
    b = np.random.default_rng(7).standard_normal(3000)
    host = spir(S, b, rng=9)
    S_gpu = csp.csr_matrix(S)
    A = S_gpu if kind == "sparse" else cspla.aslinearoperator(S_gpu)
    gpu = spir(A, cp.asarray(b), rng=9)
    assert gpu.converged
    assert forward_error(cp.asnumpy(gpu.x), host.x) <= 1e-8


def test_lstsq_drop_in_on_gpu(problem):
    A, b, x, A_gpu, b_gpu = problem
    x_r, residues, rank, s = lstsq(A_gpu, b_gpu, method="randomized", rng=1)
    assert isinstance(x_r, cp.ndarray) and isinstance(residues, cp.ndarray)
    assert rank == 40 and s is None
    assert forward_error(cp.asnumpy(x_r), x) <= 10 * forward_error(householder(A, b), x)
    x_l, _, rank_l, s_l = lstsq(A_gpu, b_gpu, method="lapack")    # cupy.linalg.lstsq
    assert isinstance(x_l, cp.ndarray) and isinstance(s_l, cp.ndarray)
    bad = A_gpu.copy()
    bad[0, 0] = cp.nan
    with pytest.raises(ValueError, match="infs or NaNs"):
        lstsq(bad, b_gpu, method="randomized")
    with pytest.raises(TypeError, match="mix"):
        lstsq(A_gpu, b)


def test_iterations_move_only_flags_to_the_host():
    # CUPTI (through torch's profiler) sees every device-to-host copy of the
    # process, CuPy's included: at most one per CG iteration (the "any column
    # still active" flag) plus a fixed number per refinement step and solve.
    pytest.importorskip("torch", reason="torch's profiler counts the copies")
    from torch.profiler import ProfilerActivity, profile
    A, b, _, _ = standard_problem(20000, 100, 1e8, 1e-6, rng=2)
    A_gpu, b_gpu = cp.asarray(A), cp.asarray(b)
    spir(A_gpu, b_gpu, rng=1)                         # warm-up (kernel compilation)
    cp.cuda.Device().synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        res = spir(A_gpu, b_gpu, rng=1)
        cp.cuda.Device().synchronize()
    names = [e.name for e in prof.events()]
    copies = [n for n in names if "DtoH" in n or "Device -> Pageable" in n]
    assert names, "the profiler recorded no CUDA activity at all"
    assert copies, "no device-to-host copy seen: the profiler missed CuPy's activity"
    steps = 5     # refinements + 1
    assert len(copies) <= res.iterations + 10 * steps + 10, (len(copies), res.iterations)


@pytest.mark.parametrize("dtype, rtol", ((np.float64, 1e-12), (np.float32, 1e-4)))
@pytest.mark.parametrize("m, n", ((1, 1), (500, 200), (700, 256), (300, 257), (2000, 2000),
                                  (100, 4096), (50000, 64)))
def test_fused_sweep_matches_two_products(m, n, dtype, rtol):
    from randla.solve import _gpu_sweep
    rng = np.random.default_rng(m + n)
    A = cp.asarray(rng.standard_normal((m, n)).astype(dtype))
    z = cp.asarray(rng.standard_normal((n, 1)).astype(dtype))
    b = cp.asarray(rng.standard_normal((m, 1)).astype(dtype))
    assert _gpu_sweep.supported(A, 1)
    a_norm, z_norm = float(cp.linalg.norm(A)), float(cp.linalg.norm(z))
    for rhs in (None, b):
        t, g = _gpu_sweep.sweep(A, z, rhs)
        t_ref = A @ z if rhs is None else rhs - A @ z
        g_ref = A.T @ t_ref
        t_scale = a_norm * z_norm + (0.0 if rhs is None else float(cp.linalg.norm(rhs)))
        assert t.shape == (m, 1) and g.shape == (n, 1) and g.dtype == dtype
        assert float(cp.linalg.norm(t - t_ref)) <= rtol * t_scale
        assert float(cp.linalg.norm(g - g_ref)) <= rtol * a_norm * t_scale
    # deterministic: a fixed summation order
    assert bool((_gpu_sweep.sweep(A, z, b)[1] == _gpu_sweep.sweep(A, z, b)[1]).all())


def test_fused_sweep_refuses_what_it_cannot_do():
    from randla.solve import _gpu_sweep
    A = cp.ones((10, 5))
    assert not _gpu_sweep.supported(A, 2)
    assert not _gpu_sweep.supported(cp.asfortranarray(cp.ones((10, 5))), 1)
    assert not _gpu_sweep.supported(cp.ones((10, _gpu_sweep.MAX_COLUMNS + 1)), 1)


def test_solution_does_not_depend_on_the_fused_sweep(problem, monkeypatch):
    from randla.solve import _operand
    A, b, x, A_gpu, b_gpu = problem
    fused = spir(A_gpu, b_gpu, rng=3)
    monkeypatch.setattr(_operand, "GPU_SWEEP", False)
    plain = spir(A_gpu, b_gpu, rng=3)
    assert forward_error(cp.asnumpy(fused.x), cp.asnumpy(plain.x)) <= 1e-6
    assert fused.passes < plain.passes
