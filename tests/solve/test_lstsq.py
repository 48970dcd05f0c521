"""randla.lstsq keeps scipy.linalg.lstsq's contract (signature, tuple, dtypes, errors)."""
import inspect
import warnings

import numpy as np
import pytest
import scipy.linalg as sla
import scipy.sparse as sp
from scipy.sparse.linalg import aslinearoperator

import randla
from randla.solve import prefers_randomized, standard_problem


def problem(m=2000, n=50, nrhs=None, seed=0):
    A, b, _, _ = standard_problem(m, n, 1e3, 1e-1, rng=seed)
    if nrhs is not None:
        b = np.column_stack([b] + [A @ np.full(n, j) + 0.1 * np.sin(np.arange(m) + j)
                                   for j in range(1, nrhs)])
    return A, b


def test_signature_extends_scipys():
    ours = list(inspect.signature(randla.lstsq).parameters.values())
    theirs = list(inspect.signature(sla.lstsq).parameters.values())
    assert [(p.name, p.default) for p in ours[:len(theirs)]] == \
        [(p.name, p.default) for p in theirs]
    assert all(p.kind is p.KEYWORD_ONLY for p in ours[len(theirs):])


def assert_same_tuple(ours, ref, rtol):
    x, res, rank, s = ours
    xr, resr, rankr, _ = ref
    assert x.shape == xr.shape and x.dtype == xr.dtype
    assert np.allclose(x, xr, rtol=rtol, atol=rtol * np.abs(xr).max())
    assert np.shape(res) == np.shape(resr) and np.asarray(res).dtype == np.asarray(resr).dtype
    assert np.allclose(res, resr, rtol=rtol)
    assert rank == rankr
    assert s is None


@pytest.mark.parametrize("nrhs", (None, 3))
@pytest.mark.parametrize("dtype", (np.float64, np.float32, np.int64))
@pytest.mark.parametrize("order", ("C", "F"))
def test_randomized_tuple_matches_scipy(nrhs, dtype, order):
    A, b = problem(nrhs=nrhs)
    if dtype is np.int64:
        A = np.round(A * 1000).astype(np.int64)
        b = np.round(b * 1000).astype(np.int64)
    else:
        A, b = A.astype(dtype), b.astype(dtype)
    A = np.asarray(A, order=order)
    A_before, b_before = A.copy(), b.copy()
    ours = randla.lstsq(A, b, method="randomized", rng=1)
    ref = sla.lstsq(A, b)
    assert_same_tuple(ours, ref, 1e-3 if dtype is np.float32 else 1e-8)
    assert np.array_equal(A, A_before) and np.array_equal(b, b_before)


def test_mixed_precision_follows_scipy():
    A, b = problem()
    x, res, _, _ = randla.lstsq(A.astype(np.float32), b, method="randomized", rng=1)
    assert x.dtype == sla.lstsq(A.astype(np.float32), b)[0].dtype == np.float64


@pytest.mark.parametrize("method", ("spir", "fossils", "lsqr", "cg", "iterative_sketching",
                                    "sirr"))
def test_every_driver_by_name(method):
    A, b = problem()
    x = randla.lstsq(A, b, method=method, rng=1)[0]
    assert np.allclose(x, sla.lstsq(A, b)[0], rtol=1e-8, atol=0)


def test_sketch_and_solve_by_name_is_approximate():
    A, b = problem()
    x = randla.lstsq(A, b, method="sketch_and_solve", rng=1)[0]
    xr = sla.lstsq(A, b)[0]
    assert np.linalg.norm(b - A @ x) <= 1.5 * np.linalg.norm(b - A @ xr)


@pytest.mark.parametrize("shape", ((2000, 50), (300, 300), (1, 1), (50, 80)))
def test_auto_uses_lapack_when_small_and_matches_exactly(shape):
    rng = np.random.default_rng(0)
    A = rng.standard_normal(shape)
    b = rng.standard_normal(shape[0])
    ours, ref = randla.lstsq(A, b), sla.lstsq(A, b)
    assert np.array_equal(ours[0], ref[0]) and np.array_equal(ours[1], ref[1])
    assert ours[2] == ref[2] and np.array_equal(ours[3], ref[3])


@pytest.fixture
def reference_blas(monkeypatch):
    """The cost model as on the reference (AVX-512) machine, whatever BLAS runs here."""
    monkeypatch.setattr(randla.solve._lstsq, "_gelsd_seconds_per_mn2",
                        lambda: randla.solve._lstsq._GELSD_SECONDS_PER_MN2)


def test_cost_model_prefers_lapack_for_small_or_square(reference_blas):
    assert not prefers_randomized(2000, 50)
    assert not prefers_randomized(1000, 1000)
    assert not prefers_randomized(100000, 300)
    assert prefers_randomized(40000, 1000) and prefers_randomized(100000, 2000)
    # many right-hand sides: LAPACK's cost barely grows, the iterations' does
    assert not prefers_randomized(40000, 1000, 16)
    assert prefers_randomized(100000, 4000, 16)
    # the row-major sweep serves 16 columns, the column-major one 8: past
    # that each pass is two GEMMs, modelled dearer
    assert prefers_randomized(100000, 2000, 16)
    assert not prefers_randomized(100000, 2000, 16, row_major=False)
    assert prefers_randomized(100000, 2000, 8, row_major=False) == \
        prefers_randomized(100000, 2000, 8)


@pytest.mark.parametrize("args, error", [
    ((10, -1), ValueError), ((-5, 2), ValueError), ((1000, 10, -1), ValueError),
    ((100000.5, 600.2), TypeError), (("a", "b"), TypeError), ((1000, 10, True), TypeError)])
def test_cost_model_checks_its_sizes(args, error):
    # prefers_randomized(10, -1) said True, ("a", "b") False
    with pytest.raises(error, match=r"\b(m|n|nrhs) must be an integer >= 0"):
        prefers_randomized(*args)
    if len(args) == 2:
        with pytest.raises(error, match=r"\b(m|n) must be an integer >= 0"):
            randla.solve.prefers_randomized_gpu(*args)


@pytest.mark.parametrize(("cores", "avx2"), [
    ({"Haswell"}, True), ({"Zen"}, True), ({"Haswell", "Zen"}, True),
    ({"SkylakeX"}, False), ({"Haswell", "SkylakeX"}, False), (set(), False)])
def test_cost_model_reads_openblas_avx2_kernels_as_slower_lapack(monkeypatch, cores, avx2):
    lstsq_module = randla.solve._lstsq
    libraries = [{"user_api": "blas", "internal_api": "openblas", "architecture": core}
                 for core in cores]
    libraries.append({"user_api": "openmp", "internal_api": "openmp"})

    class Controller:           # threadpoolctl's view of the loaded libraries, faked
        def info(self):
            return libraries

    monkeypatch.setattr(lstsq_module, "_blas_controller", Controller)
    lstsq_module._gelsd_seconds_per_mn2.cache_clear()
    try:
        seconds = lstsq_module._gelsd_seconds_per_mn2()
        # 100000 x 300: 2.75 times faster randomized with AVX2 kernels (measured)
        chosen = prefers_randomized(100000, 300)
        # small and square problems stay with LAPACK either way
        small_or_square = prefers_randomized(2000, 50) or prefers_randomized(1000, 1000)
    finally:
        lstsq_module._gelsd_seconds_per_mn2.cache_clear()   # not this test's BLAS
    assert seconds == (2 if avx2 else 1) * lstsq_module._GELSD_SECONDS_PER_MN2
    assert chosen == avx2 and not small_or_square


@pytest.mark.parametrize("row_major", [True, False])
@pytest.mark.parametrize("m", [20000, 100000, 400000])
def test_cost_model_never_favours_more_right_hand_sides(m, row_major):
    # each extra column costs the randomized solver more (past the fused
    # sweep's limit the GEMM route takes over without a drop)
    for n in range(100, m // 4, 100):
        chosen = [prefers_randomized(m, n, k, row_major=row_major) for k in range(1, 40)]
        assert chosen == sorted(chosen, reverse=True), (m, n)


@pytest.mark.parametrize("a_shape, b_shape", [((0, 3), (0,)), ((3, 0), (3,)),
                                              ((0, 3), (0, 2)), ((4, 0), (4, 2))])
@pytest.mark.parametrize("method", ("auto", "randomized"))
@pytest.mark.parametrize("kind", ("dense", "csr", "operator"))
def test_empty_inputs_like_scipy(a_shape, b_shape, method, kind):
    A, b = np.ones(a_shape), np.ones(b_shape)
    given = {"dense": A, "csr": sp.csr_matrix(A), "operator": aslinearoperator(A)}[kind]
    ours, ref = randla.lstsq(given, b, method=method), sla.lstsq(A, b)
    for u, v in zip(ours[:2] + ours[3:], ref[:2] + ref[3:]):
        assert np.shape(u) == np.shape(v) and np.array_equal(u, v)
    assert ours[2] == ref[2]


@pytest.mark.parametrize("method", ("auto", "randomized"))
@pytest.mark.parametrize("bad", (np.nan, np.inf))
@pytest.mark.parametrize("where", ("a", "b"))
def test_non_finite_rejected_like_scipy(method, bad, where):
    A, b = problem()
    (A if where == "a" else b)[5] = bad
    with pytest.raises(ValueError):
        sla.lstsq(A, b)
    with pytest.raises(ValueError):
        randla.lstsq(A, b, method=method)


@pytest.mark.parametrize("bad", (np.nan, np.inf, -np.inf))
@pytest.mark.parametrize("wide", (False, True))
def test_one_non_finite_entry_of_a_is_caught_by_the_sketch(bad, wide):
    # the randomized path makes no pass of its own over a for check_finite
    rng = np.random.default_rng(3)
    A = rng.standard_normal((40, 900) if wide else (900, 40))
    b = rng.standard_normal(A.shape[0])
    A[17, 29] = bad
    with pytest.raises(ValueError, match="must not contain infs or NaNs"):
        randla.lstsq(A, b, method="randomized", rng=0)


@pytest.mark.parametrize("method", ("auto", "randomized"))
def test_non_finite_unchecked_never_gives_finite_garbage(method):
    A, b = problem()
    A[5, 3] = np.nan
    for solve in (sla.lstsq, lambda *a, **k: randla.lstsq(*a, method=method, **k)):
        try:
            x = solve(A, b, check_finite=False)[0]
        except (ValueError, np.linalg.LinAlgError):
            continue
        assert not np.all(np.isfinite(x))


@pytest.mark.parametrize("method", ("auto", "randomized"))
@pytest.mark.parametrize("a_shape, b_shape", [((10,), (10,)), ((10, 3), (9,)),
                                              ((10, 3), (9, 2))])
def test_shape_errors_like_scipy(method, a_shape, b_shape):
    A, b = np.ones(a_shape), np.ones(b_shape)
    with pytest.raises(ValueError):
        sla.lstsq(A, b)
    with pytest.raises(ValueError):
        randla.lstsq(A, b, method=method)


def test_bad_method_and_driver():
    A, b = problem(200, 5)
    with pytest.raises(ValueError, match="method"):
        randla.lstsq(A, b, method="nope")
    with pytest.raises(ValueError):
        randla.lstsq(A, b, lapack_driver="nope")


@pytest.mark.parametrize("driver", ("gelsd", "gelsy", "gelss"))
def test_lapack_driver_goes_to_scipy(driver):
    A, b = problem(300, 20)
    ours = randla.lstsq(A, b, lapack_driver=driver, method="randomized")
    ref = sla.lstsq(A, b, lapack_driver=driver)
    assert np.array_equal(ours[0], ref[0]) and ours[2] == ref[2]
    assert (ours[3] is None) == (ref[3] is None)


def test_complex_goes_to_lapack_on_auto_and_is_refused_otherwise():
    A, b = problem(200, 5)
    Ac = A + 1j * A[::-1]
    assert np.array_equal(randla.lstsq(Ac, b)[0], sla.lstsq(Ac, b)[0])
    with pytest.raises(TypeError, match="complex"):
        randla.lstsq(Ac, b, method="randomized")


@pytest.mark.parametrize("kind", ("csr", "csc", "operator"))
def test_sparse_and_operator_inputs(kind):
    S = sp.random(3000, 40, density=0.05, format="csr", random_state=1) \
        @ sp.diags(np.logspace(0, 3, 40))
    b = np.random.default_rng(2).standard_normal(3000)
    ref = sla.lstsq(S.toarray(), b)
    A = aslinearoperator(S) if kind == "operator" else S.asformat(kind)
    x, res, rank, s = randla.lstsq(A, b, rng=3)
    assert np.allclose(x, ref[0], rtol=1e-9, atol=0) and rank == 40 and s is None
    assert res == pytest.approx(ref[1], rel=1e-9)


@pytest.mark.parametrize("kind", ("csr", "operator"))
def test_float32_sparse_or_operator_with_float64_b_is_solved_in_float64(kind):
    # as a dense float32 a is (scipy solves in the common precision): the
    # float32 entries are exact in float64, so x matches LAPACK's to float64
    rng = np.random.default_rng(0)
    A = rng.standard_normal((2000, 50)).astype(np.float32)
    b = rng.standard_normal(2000)
    ref = sla.lstsq(A, b)[0]
    a = sp.csr_matrix(A) if kind == "csr" else aslinearoperator(sp.csr_matrix(A))
    x = randla.lstsq(a, b, method="randomized", rng=0)[0]
    assert x.dtype == np.float64
    assert np.linalg.norm(x - ref) <= 1e-12 * np.linalg.norm(ref)
    assert a.dtype == np.float32        # the caller's a is left as it was


@pytest.mark.parametrize("method", ("auto", "randomized", "spir", "sirr"))
@pytest.mark.parametrize("shape", ((300, 20), (2000, 50), (20, 300)))
def test_bad_rng_and_tol_are_refused_whatever_route_the_shape_takes(method, shape):
    # (300, 20) is factored whole (sketch size m) and auto gives every shape
    # here to LAPACK: neither draws from rng, and both used to let it pass
    rng = np.random.default_rng(1)
    A, b = rng.standard_normal(shape), rng.standard_normal(shape[0])
    if shape[0] < shape[1] and method == "sirr":
        return
    with pytest.raises(TypeError, match="rng"):
        randla.lstsq(A, b, method=method, rng="not a seed")
    with pytest.raises(ValueError, match="rng"):
        randla.lstsq(A, b, method=method, rng=-3)
    with pytest.raises(ValueError, match="tol"):
        randla.lstsq(A, b, method=method, tol=-1.0)


def test_numpy_integer_tol_and_0d_cond_are_numbers():
    A, b = problem(2000, 50)
    x = randla.lstsq(A, b, cond=np.array(1e-6), method="randomized", rng=0)[0]
    np.testing.assert_array_equal(x, randla.lstsq(A, b, cond=1e-6, method="randomized",
                                                  rng=0)[0])
    # scipy also takes a one-number array or list
    for one_number in (np.array([1e-6]), [1e-6], (1e-6,)):
        np.testing.assert_array_equal(
            x, randla.lstsq(A, b, cond=one_number, method="randomized", rng=0)[0])
    assert randla.solve.spir(A, b, tol=np.int64(1), rng=0).x.shape == (50,)


def test_sparse_non_finite_rejected():
    S = sp.random(300, 10, density=0.2, format="csr", random_state=1)
    S.data[0] = np.nan
    with pytest.raises(ValueError):
        randla.lstsq(S, np.ones(300))


def test_wide_gives_minimum_norm():
    rng = np.random.default_rng(4)
    A = rng.standard_normal((40, 2000))
    b = rng.standard_normal((40, 2))
    x, res, rank, s = randla.lstsq(A, b, method="randomized", rng=5)
    assert np.allclose(x, np.linalg.pinv(A) @ b, rtol=1e-10, atol=1e-12)
    assert res.shape == (0,) and rank == 40


def test_rank_deficient_reports_rank_and_empty_residues():
    rng = np.random.default_rng(5)
    A = rng.standard_normal((3000, 20)) @ rng.standard_normal((20, 40))
    b = rng.standard_normal(3000)
    x, res, rank, _ = randla.lstsq(A, b, method="randomized", rng=6)
    xr, _, rankr, _ = sla.lstsq(A, b, cond=1e-10)
    assert rank == rankr == 20 and res.shape == (0,)
    assert np.linalg.norm(x - xr) <= 1e-8 * np.linalg.norm(xr)


def test_cond_has_scipys_meaning():
    # singular values 1 .. 1e-8 with a gap between 1e-2 and 1e-6: a cond in the gap
    # keeps the same 20 singular values.  randla keeps the top right singular
    # subspace of the sketch S A, which differs from A's by an angle of about
    # sigma_21/sigma_20 = 1e-4 (times the embedding distortion): the truncated
    # solutions agree to that order, not to roundoff.
    rng = np.random.default_rng(7)
    U, _ = np.linalg.qr(rng.standard_normal((3000, 30)))
    V, _ = np.linalg.qr(rng.standard_normal((30, 30)))
    sigma = np.concatenate([np.logspace(0, -2, 20), np.logspace(-6, -8, 10)])
    A = (U * sigma) @ V.T
    b = rng.standard_normal(3000)
    x, _, rank, _ = randla.lstsq(A, b, cond=1e-4, method="randomized", rng=8)
    xr, _, rankr, _ = sla.lstsq(A, b, cond=1e-4)
    assert rank == rankr == 20
    assert np.linalg.norm(x - xr) <= 1e-4 * np.linalg.norm(xr)
    x_all = randla.lstsq(A, b, method="randomized", rng=8)[0]
    assert np.linalg.norm(x_all - xr) >= 1e-2 * np.linalg.norm(xr)   # cond did cut


@pytest.mark.parametrize("method", ("auto", "randomized"))
@pytest.mark.parametrize("where", ("a", "b"))
def test_masked_arrays_like_scipy(method, where):
    # scipy >= 1.15 converts its inputs with asarray before validating them
    # (batch support), so a mask is ignored; older scipy refuses masked arrays
    A, b = problem(300, 5)
    if where == "a":
        mask = np.zeros(A.shape, bool)
        mask[3, 1] = True
        A = np.ma.masked_array(A, mask)
    else:
        mask = np.zeros(b.shape, bool)
        mask[3] = True
        b = np.ma.masked_array(b, mask)
    try:
        ref = sla.lstsq(A, b)
    except ValueError:
        with pytest.raises(ValueError, match="masked"):
            randla.lstsq(A, b, method=method, rng=1)
        return
    x, res, rank, _ = randla.lstsq(A, b, method=method, rng=1)
    assert type(x) is np.ndarray and x.shape == ref[0].shape and rank == ref[2]
    assert np.allclose(x, ref[0], rtol=1e-8, atol=0)
    assert res == pytest.approx(ref[1], rel=1e-8)


def test_long_double_is_solved_in_double_like_scipy():
    # LAPACK has no extended precision: scipy computes (and returns) float64
    A, b = problem(300, 5)
    A = A.astype(np.longdouble)
    x, res, _, _ = randla.lstsq(A, b, method="randomized", rng=1)
    xr, resr, _, _ = sla.lstsq(A, b)
    assert x.dtype == xr.dtype and np.asarray(res).dtype == np.asarray(resr).dtype
    assert np.allclose(x, xr, rtol=1e-8, atol=0)


@pytest.mark.parametrize("method", ("auto", "randomized", "fossils"))
@pytest.mark.parametrize("cond", (-1, -1e-3, 1.0, 2.0))
def test_cond_outside_0_1_means_default_like_gelsd(method, cond):
    # LAPACK reads cond < 0 as "machine precision" (numpy's old rcond=-1
    # idiom relies on it), and gelsd, scipy's default driver, cond >= 1 too
    A, b = problem(300, 5)
    x, res, rank, _ = randla.lstsq(A, b, cond=cond, method=method, rng=1)
    xr, resr, rankr, _ = sla.lstsq(A, b, cond=cond)
    assert rank == rankr == 5
    assert np.allclose(x, xr, rtol=1e-8, atol=0)


def _duplicated_column_problem():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((600, 20))
    A[:, 5] = A[:, 3]
    return A, rng.standard_normal(600)


@pytest.mark.parametrize("method", ("randomized", "fossils", "sirr", "lsqr"))
@pytest.mark.parametrize("cond", (0, 0.0, 1e-17, 1e-15))
def test_cond_zero_or_below_the_sketch_resolution_means_default(method, cond):
    # gelsd reads cond <= 0 as machine precision; below 30 eps the sketch's
    # singular values are rounding: a cutoff there kept the duplicated
    # column's direction (rank 20, |x| ~ 3e14, a residue of another x).
    # The reference is gelsd's default cond: at cond <= 1e-17 its own rank
    # depends on the BLAS's rounding (the duplicate's singular value is
    # 1.3e-16 sigma_1: rank 20 and |x| = 1.7e14 with one OpenBLAS build)
    A, b = _duplicated_column_problem()
    x, res, rank, _ = randla.lstsq(A, b, cond=cond, method=method, rng=1)
    xr, resr, rankr, _ = sla.lstsq(A, b)
    assert rank == rankr == 19 and res.shape == resr.shape == (0,)
    assert np.linalg.norm(x - xr) <= 1e-12 * np.linalg.norm(xr)


@pytest.mark.parametrize("method", ("lsqr", "cg"))
def test_sketch_and_precondition_methods_give_the_minimum_norm_solution(method):
    # their QR preconditioner cannot serve a rank-deficient sketch: lstsq
    # takes the SVD form there (it raised advice lstsq has no argument for)
    A, b = _duplicated_column_problem()
    x, res, rank, _ = randla.lstsq(A, b, method=method, rng=1)
    xr = sla.lstsq(A, b)[0]
    assert rank == 19 and res.shape == (0,)
    assert np.linalg.norm(x - xr) <= 1e-12 * np.linalg.norm(xr)


def test_auto_hands_a_truncating_cond_to_lapack(monkeypatch):
    # a cond that drops real singular values truncates in the sketch's
    # singular subspace, not a's: "auto" gives the solve to gelsd
    rng = np.random.default_rng(3)
    U, _ = np.linalg.qr(rng.standard_normal((600, 20)))
    V, _ = np.linalg.qr(rng.standard_normal((20, 20)))
    A = (U * np.logspace(0, -12, 20)) @ V.T
    b = rng.standard_normal(600)
    monkeypatch.setattr(randla.solve._lstsq, "prefers_randomized", lambda *a, **k: True)
    x, res, rank, s = randla.lstsq(A, b, cond=1e-6, rng=1)
    xr, resr, rankr, sr = sla.lstsq(A, b, cond=1e-6)
    assert rank == rankr and np.array_equal(x, xr) and np.array_equal(s, sr)
    explicit = randla.lstsq(A, b, cond=1e-6, method="randomized", rng=1)
    assert explicit[3] is None and explicit[2] == rankr     # the sketch's truncation
    # without a cond nothing is truncated and auto stays randomized
    assert randla.lstsq(A, b, rng=1)[3] is None


@pytest.mark.parametrize("fmt", ("dok", "lil", "csr"))
def test_any_sparse_format_is_checked_for_non_finite_values(fmt):
    A, b = problem(300, 5)
    x = randla.lstsq(sp.csr_array(A).asformat(fmt), b, rng=1)[0]
    assert np.allclose(x, sla.lstsq(A, b)[0], rtol=1e-10, atol=0)
    A[7, 2] = np.nan
    with pytest.raises(ValueError, match="infs or NaNs"):
        randla.lstsq(sp.csr_array(A).asformat(fmt), b, rng=1)


@pytest.mark.parametrize("method", ("randomized", "fossils", "iterative_sketching", "sirr"))
@pytest.mark.parametrize("wide", (False, True))
def test_float32_solves_raise_no_warnings(method, wide):
    # the norms' safe range was compared as 1e150, which float32 casts to inf
    A, b = problem(600, 20)
    A, b = A.astype(np.float32), b.astype(np.float32)
    if wide:
        A, b = np.ascontiguousarray(A[:15].T), b[:20]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x = randla.lstsq(A, b, method=method, rng=1)[0]
    assert x.dtype == np.float32


def test_sketch_and_solve_takes_no_tol():
    A, b = problem(300, 5)
    with pytest.raises(ValueError, match="tol"):
        randla.lstsq(A, b, method="sketch_and_solve", tol=1e-10, rng=1)


def test_zero_wide_a_gives_zero_without_warnings():
    b = np.random.default_rng(1).standard_normal(5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x, _, rank, _ = randla.lstsq(np.zeros((5, 9)), b, method="randomized", rng=1)
    assert rank == 0 and np.array_equal(x, np.zeros(9))


@pytest.mark.parametrize("method", ("auto", "lapack", "randomized"))
@pytest.mark.parametrize("b", (2.0, np.float64(2.0), np.array(2.0)))
def test_scalar_b_raises_what_scipy_raises(method, b):
    A = problem(300, 5)[0]
    with pytest.raises(Exception) as ref:
        sla.lstsq(A, b)
    with pytest.raises(ref.type):
        randla.lstsq(A, b, method=method, rng=1)


@pytest.mark.parametrize("a_shape, b_shape", [((2, 30, 4), (30,)), ((2, 30, 4), (30, 3)),
                                              ((30, 4), (2, 30, 3))])
def test_batched_input_goes_to_scipy_on_auto_and_is_named_otherwise(a_shape, b_shape):
    rng = np.random.default_rng(9)
    A, b = rng.standard_normal(a_shape), rng.standard_normal(b_shape)
    try:
        ref = sla.lstsq(A, b)
    except ValueError:          # scipy < 1.15: no batch support
        ref = None
    if ref is not None:
        ours = randla.lstsq(A, b)
        for u, v in zip(ours, ref):
            assert np.shape(u) == np.shape(v) and np.array_equal(u, v)
    with pytest.raises(ValueError, match="batch"):
        randla.lstsq(A, b, method="randomized")


def test_docstring_names_the_exceptions_of_the_randomized_path():
    raises = randla.lstsq.__doc__.split("Raises")[1].split("Examples")[0]
    assert "TypeError" in raises and "complex" in raises.lower()
    assert "batch" in raises


def test_wide_randomized_refuses_a_cutoff_it_cannot_apply():
    # min_norm assumes full row rank: a cond would be silently ignored
    A, b = problem(300, 20)
    with pytest.raises(ValueError, match="cond"):
        randla.lstsq(A.T, b[:20], cond=0.5, method="randomized", rng=1)
    x = randla.lstsq(A.T, b[:20], cond=1.5, method="randomized", rng=1)[0]
    assert np.allclose(x, np.linalg.pinv(A.T) @ b[:20], rtol=1e-8, atol=0)


def test_sparse_b_is_refused_with_a_clear_message():
    A, b = problem(300, 5)
    with pytest.raises(TypeError, match="b must be a dense array"):
        randla.lstsq(A, sp.csr_array(b[:, None]), method="randomized", rng=1)


def test_linear_operator_without_rmatvec_is_refused_with_a_clear_message():
    from scipy.sparse.linalg import LinearOperator
    A, b = problem(300, 5)
    only_matvec = LinearOperator(A.shape, matvec=lambda v: A @ v, dtype=A.dtype)
    with pytest.raises(TypeError, match="without rmatvec"):
        randla.lstsq(only_matvec, b, rng=1)
    both = LinearOperator(A.shape, matvec=lambda v: A @ v, rmatvec=lambda v: A.T @ v,
                          dtype=A.dtype)
    assert np.allclose(randla.lstsq(both, b, rng=1)[0], sla.lstsq(A, b)[0], rtol=1e-8)


def test_auto_hands_a_stalled_randomized_solve_to_lapack(monkeypatch):
    # a tolerance no refinement reaches stands in for a stalled solve: the
    # drop-in returns LAPACK's answer rather than the unconverged x
    import randla.solve._lstsq as lstsq_module
    monkeypatch.setattr(lstsq_module, "prefers_randomized", lambda *args, **kwargs: True)
    A, b, _, _ = standard_problem(3000, 40, cond=1e6, residual=1e-3, rng=0)
    x, residues, rank, s = randla.lstsq(A, b, rng=0, tol=1e-300)
    ref = sla.lstsq(A, b)
    assert np.array_equal(x, ref[0]) and np.array_equal(s, ref[3])
    assert rank == ref[2] and residues == ref[1]
    # reachable: the randomized answer, without singular values
    assert randla.lstsq(A, b, rng=0)[3] is None


@pytest.mark.parametrize("sparse", [False, True])
def test_an_explicit_randomized_method_warns_when_it_stops_short(sparse):
    A, b, x_ref, _ = standard_problem(3000, 40, cond=1e6, residual=1e-3, rng=0)
    a = sp.csr_array(A) if sparse else A
    with pytest.warns(RuntimeWarning, match="stopped at a backward error estimate"):
        x = randla.lstsq(a, b, method="auto" if sparse else "spir", rng=0, tol=1e-300)[0]
    assert np.linalg.norm(x - x_ref) <= 1e-6 * np.linalg.norm(x_ref)


@pytest.mark.parametrize("method", ["lsqr", "cg"])
def test_lsqr_and_cg_warn_when_their_backward_error_misses_tol(method):
    # their iterations converge on recurrence residuals: at cond 1e8 with a
    # residual of norm 1 they stopped "converged" at backward errors of 5e-11
    # and 8e-11 (gelsd: 4e-16), and lstsq returned without a word
    A, b, _, _ = standard_problem(2000, 40, cond=1e8, residual=1.0, rng=0)
    with pytest.warns(RuntimeWarning, match="stopped at a backward error estimate"):
        randla.lstsq(A, b, method=method, rng=0)
    A, b, x_ref, _ = standard_problem(2000, 40, cond=10, residual=1e-6, rng=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x = randla.lstsq(A, b, method=method, rng=0)[0]
    assert np.linalg.norm(x - x_ref) <= 1e-12 * np.linalg.norm(x_ref)


@pytest.mark.parametrize("dtype, top, rtol", [(np.float64, 1e307, 1e-12),
                                               (np.float32, 3e38, 1e-4),
                                               (np.float64, 1.5e308, 1e-12)])
def test_entries_near_the_overflow_threshold_are_solved(dtype, top, rtol):
    # 1e307: the QR of the sketch overflowed in its column norms, and lstsq
    # raised "SVD did not converge" where scipy solves; 3e38 (float32) and
    # 1.5e308: the sketch's own sums overflow, and it was refused as "not
    # finite", where gelsd scales A
    rng = np.random.default_rng(3)
    A = (rng.uniform(-1, 1, (3000, 30)) * top).astype(dtype)
    b = rng.standard_normal(3000).astype(dtype)
    x_ref = sla.lstsq(A.astype(np.float64) / top, b.astype(np.float64))[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x = randla.lstsq(A, b, method="randomized", rng=0)[0]
    assert x.dtype == dtype
    x = x.astype(np.float64) * top
    assert np.linalg.norm(x - x_ref) <= rtol * np.linalg.norm(x_ref)
    A[5, 3] = np.inf
    with pytest.raises(ValueError, match="infs or NaNs"):
        randla.lstsq(A, b, method="randomized", check_finite=False, rng=0)


def test_no_warning_where_a_stalled_solve_is_at_rounding_level():
    # square systems and wide ones at cond 1e10 stall a few units of
    # rounding above eps, unconverged: that is what a backward-stable solve
    # leaves, not a reason to warn
    rng = np.random.default_rng(0)
    square = rng.standard_normal((400, 400)) + 30 * np.eye(400)
    U = np.linalg.qr(rng.standard_normal((200, 200)))[0]
    V = np.linalg.qr(rng.standard_normal((2000, 200)))[0]
    wide = (U * np.logspace(0, -10, 200)) @ V.T
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for A in (square, wide):
            b = rng.standard_normal(A.shape[0])
            x = randla.lstsq(sp.csr_array(A), b, rng=0)[0]
            assert np.linalg.norm(b - A @ x) <= 1e-13 * np.linalg.norm(A, 2) * np.linalg.norm(x)


@pytest.mark.parametrize("kind", ("dense", "csr", "operator"))
def test_no_right_hand_sides_is_refused_as_scipy_refuses_it(kind):
    A = np.ones((5, 3))
    given = {"dense": A, "csr": sp.csr_matrix(A), "operator": aslinearoperator(A)}[kind]
    with pytest.raises(ValueError):
        sla.lstsq(A, np.ones((5, 0)))
    with pytest.raises(ValueError):
        randla.lstsq(given, np.ones((5, 0)))
