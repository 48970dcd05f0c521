"""randla.svds / randla.eigsh against scipy.sparse.linalg (ARPACK)."""
import pathlib
import sys

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla

import randla

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from _matrices import (SPECTRA, known_eig, known_svd, laplacian_1d,  # noqa: E402,F401
                       ncv_as_given, one_blas_thread, sin_angle)

K = 6
WRAP = {"dense": lambda A: A, "sparse": sp.csr_array, "linop": spla.aslinearoperator}


def matrix(shape, dtype, name="poly1", seed=0):
    r = min(shape)
    A = known_svd(max(shape), r, SPECTRA[name](r), seed=seed)[0]
    A = A if shape[0] >= shape[1] else A.T
    return np.asarray(A, dtype=dtype)


@pytest.mark.parametrize("kind", sorted(WRAP))
@pytest.mark.parametrize("shape", [(240, 100), (100, 240)])
def test_svds_float64_agrees_with_arpack(kind, shape):
    A = matrix(shape, np.float64)
    u, s, vh = randla.svds(WRAP[kind](A), K, rng=0)
    U, S, VH = spla.svds(A, K, rng=0)
    assert u.shape == U.shape and s.shape == S.shape and vh.shape == VH.shape
    assert np.all(np.diff(s) > 0), "singular values must ascend, as scipy returns them"
    assert np.abs(s - S).max() <= 1e-10 * S.max()
    assert sin_angle(u, U) <= 1e-8 and sin_angle(vh.T, VH.T) <= 1e-8
    # Each triplet, up to sign.
    for j in range(K):
        assert min(np.linalg.norm(u[:, j] - U[:, j]), np.linalg.norm(u[:, j] + U[:, j])) < 1e-8
    np.testing.assert_allclose(A @ vh.T, u * s, atol=1e-12 * S.max())


@pytest.mark.parametrize("kind", sorted(WRAP))
def test_svds_float32_agrees_with_reference(kind):
    A64 = matrix((240, 100), np.float64, name="exp")
    A = A64.astype(np.float32)
    u, s, vh = randla.svds(WRAP[kind](A), K, rng=0)
    assert u.dtype == s.dtype == vh.dtype == np.float32
    S32 = spla.svds(A, K, rng=0, return_singular_vectors=False)
    exact = np.linalg.svd(A64, compute_uv=False)[:K][::-1]
    # Both float32 solvers land within float32 rounding of the exact values.
    assert np.abs(s - exact).max() <= 1e-5 * exact.max()
    assert np.abs(S32 - exact).max() <= 1e-5 * exact.max()
    U64 = np.linalg.svd(A64, full_matrices=False)[0][:, :K]
    assert sin_angle(u.astype(np.float64), U64) <= 1e-3


def test_svds_return_modes():
    A = matrix((240, 100), np.float64)
    u, s, vh = randla.svds(A, K, rng=1)
    s_only = randla.svds(A, K, rng=1, return_singular_vectors=False)
    u_only = randla.svds(A, K, rng=1, return_singular_vectors="u")
    vh_only = randla.svds(A, K, rng=1, return_singular_vectors="vh")
    # values alone may stop a step or two earlier (tests/eig/test_values_only.py)
    assert isinstance(s_only, np.ndarray)
    np.testing.assert_allclose(s_only, s, rtol=1e-13)
    assert u_only[2] is None and np.array_equal(u_only[0], u) and np.array_equal(u_only[1], s)
    assert vh_only[0] is None and np.array_equal(vh_only[2], vh)
    ref = spla.svds(A, K, rng=1, return_singular_vectors="vh")
    assert ref[0] is None and ref[2].shape == vh_only[2].shape


def test_svds_same_rng_same_answer():
    A = matrix((240, 100), np.float64)
    a, b = randla.svds(A, K, rng=5), randla.svds(A, K, rng=5)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))


def test_svds_tol_controls_accuracy_and_nonconvergence_raises():
    A = matrix((240, 100), np.float64, name="poly05")
    exact = np.linalg.svd(A, compute_uv=False)[:K][::-1]
    s = randla.svds(A, K, tol=1e-4, rng=0, return_singular_vectors=False)
    assert np.abs(s - exact).max() < 1e-4 * exact.max()
    with pytest.raises(spla.ArpackNoConvergence):
        randla.svds(A, K, tol=1e-14, maxiter=1, options={"block_size": 2}, rng=0)


# tol is each value's own relative accuracy, as in scipy: a loose tol still
# gets the small values of a fast-decaying spectrum right to tol (measured
# against max|θ|, it left the smallest of these 71 % too low at tol = 1e-2)
@pytest.mark.parametrize("tol", [1e-1, 1e-2, 1e-4])
@pytest.mark.parametrize("power", [1, 2])
def test_svds_tol_is_each_values_relative_accuracy_as_in_scipy(tol, power):
    s_true = 1.0 / np.arange(1, 101) ** power
    A = known_svd(200, 100, s_true)[0]
    s = randla.svds(A, 5, tol=tol, rng=0, return_singular_vectors=False)
    assert np.max(np.abs(s - s_true[:5][::-1]) / s_true[:5][::-1]) <= tol


# scipy's svds asks ARPACK for tol**2 on the eigenvalues θ = σ² of AᵀA;
# randla took tol itself, and at tol = 1e-2 its vectors were 1e-2 off where
# scipy's were within 1e-4 (8e-9 at 1e-4 against 4e-5)
@pytest.mark.parametrize("tol", [1e-2, 1e-4])
@pytest.mark.parametrize("seed", [0, 1])
def test_svds_asks_tol_squared_of_ata_as_scipy_does(tol, seed):
    k = 10
    A, _, s_true, V = known_svd(800, 300, 1.0 / np.arange(1, 301))
    u, s, vh = randla.svds(A, k, tol=tol, rng=seed)
    theta = s_true ** 2
    # residuals <= tol² θ: values to tol² θ, the subspace to that over the gap
    # (Davis-Kahan)
    assert np.max(np.abs(s ** 2 - theta[:k][::-1]) / theta[:k][::-1]) <= tol ** 2
    assert sin_angle(vh.T, V[:, :k]) <= tol ** 2 * theta[k - 1] / (theta[k - 1] - theta[k])


# At tol = 0 the floor of a pair is the rounding of Aᵀ(A v) near it, about
# u σ₁ σ, not u σ₁² for all: the last vectors of fast-decaying spectra were
# 9e-4 (10^(-i/3), k = 16) and 2.7e-7 (1/i², k = 40) off; ARPACK 5e-12, 1e-13
@pytest.mark.parametrize("spectrum, k, bound", [("cube root", 16, 1e-5),
                                                ("inverse square", 40, 1e-8)])
@pytest.mark.parametrize("seed", [0, 1])
def test_svds_tol_zero_resolves_vectors_of_small_values(spectrum, k, bound, seed):
    if spectrum == "cube root":
        A, _, _, V = known_svd(400, 150, 10.0 ** (-np.arange(150) / 3))
    else:
        A, _, _, V = known_svd(800, 300, 1.0 / np.arange(1, 301) ** 2)
    vh = randla.svds(A, k, rng=seed)[2]
    assert sin_angle(vh.T, V[:, :k]) <= bound


@pytest.mark.parametrize("tol", [0, 1e-8])
def test_svds_values_at_the_noise_of_the_largest_end_the_run(tol):
    # rank 5 in float32 precision, k = 10: the five noise values' estimates
    # stall above their own floor; they take the largest value's floor (with
    # the own floor alone: 3000 steps, then ArpackNoConvergence)
    rng = np.random.default_rng(0)
    A = (rng.standard_normal((400, 5)) @ rng.standard_normal((5, 300))).astype(np.float32)
    A = A.astype(np.float64)
    s = randla.svds(A, 10, tol=tol, rng=0, return_singular_vectors=False)
    true = np.linalg.svd(A, compute_uv=False)
    np.testing.assert_allclose(s[::-1][:5], true[:5], rtol=1e-12)
    assert np.all(s[:5] < 1e-8 * true[0])


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_svds_float32_basis_stays_orthonormal_through_a_large_cluster(seed):
    # 79 values 1 then a geometric tail, k = 80: each block's QR amplified its
    # float32 rounding along the basis by up to 1e4, and after a few dozen
    # steps the "basis" held copies (values up to 6.6, V^T V off I by 80)
    s = np.r_[np.ones(79), 0.5 * 0.9 ** np.arange(221)]
    A = known_svd(1000, 300, s)[0].astype(np.float32)
    u, got, vh = randla.svds(A, 80, rng=seed)
    np.testing.assert_allclose(np.sort(got)[::-1], s[:80], atol=2e-5)
    for X in (u, vh.T):
        X = X.astype(np.float64)
        assert np.linalg.norm(X.T @ X - np.eye(80)) <= 1e-4


@pytest.mark.parametrize("seed", [0, 3])
def test_eigsh_float32_basis_stays_orthonormal_through_a_large_cluster(seed):
    # the same loss in eigsh: values 1.3 and 2.9 off, X^T X off I by 3.6 and 6.8
    lam = np.r_[np.ones(79), 0.5 * 0.9 ** np.arange(221)]
    M = known_eig(300, lam)[0].astype(np.float32)
    w, X = randla.eigsh(M, 80, rng=seed)
    np.testing.assert_allclose(np.sort(w)[::-1], lam[:80], atol=2e-5)
    X = X.astype(np.float64)
    assert np.linalg.norm(X.T @ X - np.eye(80)) <= 1e-4


@pytest.mark.parametrize("seed", [0, 1])
def test_svds_float32_pairs_reach_below_the_rounding_floor(seed):
    # 1/i^2, k = 40 in float32: stopping at the floor of 50 u sqrt(n) left
    # the values 8e-7 to 1.7e-6 off and the 40th vector 0.08 to 0.12 off the
    # top-40 subspace; a tenth of it, 4e-8 to 7e-8 and 0.014 to 0.019
    s = 1.0 / np.arange(1, 301) ** 2
    A, _, _, V = known_svd(1000, 300, s)
    _, got, vh = randla.svds(A.astype(np.float32), 40, rng=seed)
    order = np.argsort(got)[::-1]
    np.testing.assert_allclose(got[order], s[:40], rtol=0, atol=3e-7)
    assert sin_angle(V[:, :40], vh[order[-1:]].T.astype(np.float64)) <= 5e-2


def test_svds_of_big_endian_float32_is_float32():
    A = known_svd(300, 100, 1.0 / np.arange(1, 101))[0].astype(">f4")
    assert [x.dtype for x in randla.svds(A, 3, rng=0)] == [np.float32] * 3


@pytest.mark.parametrize("tol", [1e-1, 1e-2, 1e-4])
def test_eigsh_tol_is_each_values_relative_accuracy_as_in_scipy(tol):
    lam = np.array([(-1.0) ** i / (i + 1) ** 2 for i in range(300)])
    A = known_eig(300, lam)[0]
    w = randla.eigsh(A, 6, tol=tol, rng=0, return_eigenvectors=False)
    top = lam[np.argsort(-np.abs(lam))[:6]]
    top = top[np.argsort(np.abs(top))]
    assert np.max(np.abs(w - top) / np.abs(top)) <= tol


@pytest.mark.parametrize("kwargs", [dict(which="SM"), dict(solver="propack"),
                                    dict(solver="arpack")])
def test_svds_hands_over_to_scipy(kwargs):
    A = matrix((240, 100), np.float64)
    ours = randla.svds(A, K, rng=0, return_singular_vectors=False, **kwargs)
    ref = spla.svds(A, K, rng=0, return_singular_vectors=False, **kwargs)
    np.testing.assert_allclose(ours, ref, rtol=1e-10)


def test_svds_complex_goes_to_scipy():
    A = matrix((240, 100), np.float64) * (1 + 1j)
    s = randla.svds(A, K, rng=0, return_singular_vectors=False)
    np.testing.assert_allclose(s, spla.svds(A, K, rng=0, return_singular_vectors=False),
                               rtol=1e-10)


@pytest.mark.parametrize("kwargs", [
    dict(k=0), dict(k=-1), dict(k=100), dict(k=2.5), dict(which="LA"), dict(tol=-1.0),
    dict(tol=np.inf), dict(maxiter=0), dict(return_singular_vectors="x"),
    dict(ncv=K), dict(ncv=100), dict(v0=np.ones(7)), dict(v0=np.arange(100)),
    dict(solver="lapack"),
])
def test_svds_bad_arguments_raise_like_scipy(kwargs):
    A = matrix((240, 100), np.float64)
    with pytest.raises(ValueError) as ours:
        randla.svds(A, **{"k": K, **kwargs})
    if kwargs != dict(solver="lapack"):
        with pytest.raises(ValueError):
            spla.svds(A, **{"k": K, **kwargs})
    assert str(ours.value)


@pytest.mark.parametrize("kind", sorted(WRAP))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_eigsh_agrees_with_arpack(kind, dtype):
    lam = np.r_[-1.0, 0.9, -0.8, 0.7, 0.6, -0.5, 0.5 * SPECTRA["poly1"](114)[1:] ** 1.5]
    A = known_eig(120, lam, seed=3)[0].astype(dtype)
    w, v = randla.eigsh(WRAP[kind](A), K, rng=0)
    W, Vref = spla.eigsh(A, K, rng=0)
    assert w.dtype == v.dtype == dtype and v.shape == Vref.shape
    assert np.all(np.diff(w) > 0), "ascending algebraic order with eigenvectors"
    rtol = 1e-10 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(w, W, atol=rtol * abs(W).max())
    assert sin_angle(v.astype(np.float64), Vref.astype(np.float64)) <= (
        1e-8 if dtype == np.float64 else 1e-3)
    only = randla.eigsh(WRAP[kind](A), K, rng=0, return_eigenvectors=False)
    ref_only = spla.eigsh(A, K, rng=0, return_eigenvectors=False)
    np.testing.assert_allclose(only, ref_only, atol=rtol * abs(W).max())


def test_eigsh_hands_over_to_scipy():
    A, _, lam = known_eig(120, np.linspace(2, 0.1, 120), seed=4)
    for kwargs in (dict(which="SA"), dict(which="LA"), dict(sigma=0.5), dict(M=np.eye(120))):
        ours = randla.eigsh(A, K, rng=0, return_eigenvectors=False, **kwargs)
        ref = spla.eigsh(A, K, rng=0, return_eigenvectors=False, **kwargs)
        np.testing.assert_allclose(ours, ref, rtol=1e-10)


@pytest.mark.parametrize("A, kwargs", [
    (np.ones((5, 6)), dict(k=2)), (np.eye(10), dict(k=0)), (np.eye(10), dict(k=2, which="XX")),
])
def test_eigsh_bad_arguments_raise_like_scipy(A, kwargs):
    with pytest.raises(ValueError):
        randla.eigsh(A, **kwargs)
    with pytest.raises(ValueError):
        spla.eigsh(A, **kwargs)


def test_eigsh_negative_tol_means_machine_precision_as_in_scipy():
    A, _, lam = known_eig(120, SPECTRA["exp"](120), seed=4)
    w = randla.eigsh(A, K, tol=-1.0, rng=0, return_eigenvectors=False)
    np.testing.assert_allclose(w, spla.eigsh(A, K, tol=-1.0, return_eigenvectors=False),
                               rtol=1e-10)
    with pytest.raises(ValueError):
        randla.eigsh(A, K, tol=np.nan)


def test_top_level_names():
    assert randla.svds is randla.eig.svds and randla.eigsh is randla.eig.eigsh


class _RecordingLibrary:
    """Stands in for cupyx.scipy.sparse.linalg: records the keyword arguments it gets."""

    def __init__(self):
        self.calls = []

    def svds(self, A, **kwargs):
        self.calls.append(("svds", kwargs))
        return "u", "s", "vh"

    def eigsh(self, A, **kwargs):
        self.calls.append(("eigsh", kwargs))
        return "w"


def _gpu_backend():
    from types import SimpleNamespace
    return SimpleNamespace(is_gpu=True, sparse_linalg=_RecordingLibrary())


def test_gpu_hand_over_passes_only_what_cupyx_takes():
    from randla.eig._dropins import _hand_over
    gpu = _gpu_backend()
    args = dict(k=3, ncv=None, tol=0.0, which="LM", v0=None, maxiter=None)
    assert _hand_over(gpu, "svds", None, **args, return_singular_vectors=True, rng=None,
                      options=None) == ("u", "s", "vh")
    assert _hand_over(gpu, "eigsh", None, **args, return_eigenvectors=False, M=None,
                      sigma=None, Minv=None, OPinv=None, mode="normal", rng=None) == "w"
    # cupyx's svds takes a bool: 'u' / 'vh' ask for both and drop one, as scipy returns.
    assert _hand_over(gpu, "svds", None, **args, return_singular_vectors="vh", rng=None,
                      options=None) == (None, "s", "vh")
    svds_args = {key: value for key, value in args.items() if key != "v0"}
    assert gpu.sparse_linalg.calls == [
        ("svds", {**svds_args, "return_singular_vectors": True}),
        ("eigsh", {**args, "return_eigenvectors": False}),
        ("svds", {**svds_args, "return_singular_vectors": True})]


@pytest.mark.parametrize("name, given", [
    ("svds", dict(v0=np.ones(3))), ("svds", dict(rng=0)), ("svds", dict(options={})),
    ("svds", dict(solver="arpack")), ("eigsh", dict(sigma=0.5)), ("eigsh", dict(M=np.eye(3))),
    ("eigsh", dict(mode="cayley")), ("eigsh", dict(rng=1)),
])
def test_gpu_hand_over_refuses_arguments_cupyx_lacks(name, given):
    from randla.eig._dropins import _hand_over
    gpu = _gpu_backend()
    args = dict(k=3, tol=0.0, v0=None, rng=None)
    with pytest.raises(ValueError, match=f"cupyx.*{next(iter(given))}"):
        _hand_over(gpu, name, None, **{**args, **given})
    assert gpu.sparse_linalg.calls == []


# --- Parity with scipy found in the drop-in audit -----------------------------------------

@pytest.mark.parametrize("flag", [0, np.False_])
def test_svds_falsy_return_singular_vectors_gives_values_only_as_in_scipy(flag):
    # scipy tests `not return_singular_vectors`: 0 and numpy.False_ mean False.
    A = matrix((60, 30), np.float64)
    ref = spla.svds(A, 3, rng=0, return_singular_vectors=flag)
    ours = randla.svds(A, 3, rng=0, return_singular_vectors=flag)
    assert isinstance(ref, np.ndarray) and isinstance(ours, np.ndarray)
    np.testing.assert_allclose(ours, ref, rtol=1e-10)


def test_svds_hand_over_keeps_an_explicit_maxiter():
    # maxiter=50 (the randomized default) must still reach scipy as 50, not as None.
    A = matrix((60, 30), np.float64)
    with pytest.raises(spla.ArpackNoConvergence) as ref:
        spla.svds(A, 3, which="SM", maxiter=1, rng=0)
    with pytest.raises(spla.ArpackNoConvergence) as ours:
        randla.svds(A, 3, which="SM", maxiter=1, rng=0)
    assert str(ours.value) == str(ref.value)
    from unittest import mock
    with mock.patch.object(spla, "svds", wraps=spla.svds) as inner:
        randla.svds(A, 3, which="SM", maxiter=50, rng=0, return_singular_vectors=False)
    assert inner.call_args.kwargs["maxiter"] == 50


@pytest.mark.parametrize("make", [lambda: np.random.RandomState(3),
                                  lambda: np.random.SeedSequence(3),
                                  lambda: np.random.PCG64(3)])
def test_rng_takes_what_scipy_takes(make):
    # scipy takes anything numpy.random.default_rng takes, a RandomState included.
    A = matrix((60, 30), np.float64)
    S = spla.svds(A, 3, rng=make(), return_singular_vectors=False)
    a = randla.svds(A, 3, rng=make(), return_singular_vectors=False)
    np.testing.assert_array_equal(a, randla.svds(A, 3, rng=make(),
                                                 return_singular_vectors=False))
    np.testing.assert_allclose(a, S, rtol=1e-10)
    B, _, lam = known_eig(40, np.r_[-3.0, 2.0, np.linspace(1, 0.1, 38)], seed=1)
    w = randla.eigsh(B, 2, rng=make(), return_eigenvectors=False)
    np.testing.assert_allclose(np.sort(w), [-3.0, 2.0], rtol=1e-10)


def _seed_scipy_gets(name, rng, **kwargs):
    from unittest import mock
    with mock.patch.object(spla, name, wraps=getattr(spla, name)) as inner:
        if name == "svds":
            randla.svds(matrix((60, 30), np.float64), 3, which="SM", rng=rng, **kwargs)
        else:
            randla.eigsh(np.diag(np.arange(1.0, 31.0)), 3, which="SA", rng=rng, **kwargs)
    return inner.call_args.kwargs["rng"]


@pytest.mark.parametrize("name", ["svds", "eigsh"])
def test_hand_over_passes_the_seed_on(name):
    # A call handed to scipy must stay repeatable: the seed reaches scipy, whatever
    # form it came in (it was dropped for a RandomState, SeedSequence or RNGState).
    from randla.sketch import RNGState
    for make in (lambda: np.random.RandomState(3), lambda: np.random.SeedSequence(3),
                 lambda: RNGState(7)):
        first, second = _seed_scipy_gets(name, make()), _seed_scipy_gets(name, make())
        assert isinstance(first, np.random.Generator)
        assert first.integers(1 << 62) == second.integers(1 << 62)
    assert _seed_scipy_gets(name, 5) == 5 and _seed_scipy_gets(name, None) is None


@pytest.mark.parametrize("kind", ["dense", "linop"])
def test_float16_input_gives_float64_as_in_scipy(kind):
    # scipy computes float16 data in float64 and returns float64 (scipy.sparse has no
    # float16).
    A = np.asarray(matrix((60, 30), np.float64, name="exp"), dtype=np.float16)
    wrap = {"dense": np.asarray, "linop": spla.aslinearoperator}[kind]
    U, S, VH = spla.svds(wrap(A), 3, rng=0)
    u, s, vh = randla.svds(wrap(A), 3, rng=0)
    assert u.dtype == s.dtype == vh.dtype == U.dtype == S.dtype == np.float64
    np.testing.assert_allclose(s, S, atol=1e-10 * S.max())
    B = np.asarray(known_eig(40, np.r_[-3.0, 2.0, np.linspace(1, 0.1, 38)], seed=1)[0],
                   dtype=np.float16)
    W, _ = spla.eigsh(wrap(B), 2, rng=0)
    w, v = randla.eigsh(wrap(B), 2, rng=0)
    assert w.dtype == v.dtype == W.dtype == np.float64
    np.testing.assert_allclose(w, W, atol=1e-10 * abs(W).max())


def test_eigsh_linear_operator_with_matvec_only():
    # scipy's eigsh only ever calls matvec (A is symmetric): no rmatvec is needed.
    A, _, _ = known_eig(40, np.r_[-3.0, 2.0, np.linspace(1, 0.1, 38)], seed=1)
    op = spla.LinearOperator(A.shape, matvec=lambda x: A @ x, dtype=np.float64)
    W, V = spla.eigsh(op, 2, rng=0)
    w, v = randla.eigsh(op, 2, rng=0)
    np.testing.assert_allclose(w, W, atol=1e-10 * abs(W).max())
    assert sin_angle(v, V) <= 1e-8


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.bool_])
def test_eigsh_integer_linear_operator_is_computed_in_float64(dtype):
    # Its products were cast back to the operator's integer dtype, which
    # truncated them: eigenvalues 2.2 off at n = 11.  scipy computes in float64.
    M = np.random.default_rng(131).integers(-10, 10, (11, 11))
    M = (M + M.T).astype(dtype)
    exact = np.linalg.eigvalsh(M.astype(np.float64))
    top = exact[np.argsort(-np.abs(exact), kind="stable")[:8]]
    for A in (spla.aslinearoperator(M),
              spla.LinearOperator(M.shape, matvec=lambda x: M @ x, dtype=dtype)):
        w, v = randla.eigsh(A, 8, rng=0)
        assert w.dtype == v.dtype == np.float64
        np.testing.assert_allclose(np.sort(np.abs(w)), np.sort(np.abs(top)),
                                   atol=1e-10 * abs(exact).max())
        np.testing.assert_allclose(M @ v, v * w, atol=1e-8 * abs(exact).max())


@pytest.mark.parametrize("seed", range(8))
def test_eigenvectors_stay_orthonormal_where_the_basis_fills_the_space(seed):
    # the last block fills the 80-row space; its QR amplified the rounding
    # along the basis by R's condition number (Vᵀ V up to 1e-12 from I)
    lam = np.r_[np.full(5, 2.0), np.full(3, 1.5), np.random.default_rng(seed).uniform(-1, 1, 72)]
    A = known_eig(80, lam, seed=seed)[0]
    w, V = randla.eigsh(A, 59, rng=seed)
    assert np.abs(V.T @ V - np.eye(59)).max() <= 1e-13
    exact = np.sort(lam[np.argsort(-np.abs(lam))[:59]])
    np.testing.assert_allclose(w, exact, rtol=0, atol=1e-12)


def test_eigsh_ncv_above_n_is_clipped_as_in_scipy():
    A, _, _ = known_eig(40, np.r_[-3.0, 2.0, np.linspace(1, 0.1, 38)], seed=1)
    W = spla.eigsh(A, 2, ncv=60, rng=0, return_eigenvectors=False)
    w = randla.eigsh(A, 2, ncv=60, rng=0, return_eigenvectors=False)
    np.testing.assert_allclose(w, W, atol=1e-10 * abs(W).max())


@pytest.mark.parametrize("k", [1, 3])
def test_eigsh_plus_minus_pair_at_the_cut_gives_true_eigenpairs(k):
    # A symmetric spectrum (a bipartite graph's, say): |λ| ties across the k-th value,
    # so A's singular vectors there mix +λ and -λ.  ARPACK returns true eigenpairs.
    lam = np.r_[3.0, 2.0, -2.0, np.linspace(1, 0.1, 37)] if k == 3 else \
        np.r_[2.0, -2.0, np.linspace(1, 0.1, 38)]
    A, _, _ = known_eig(40, lam, seed=2)
    W = spla.eigsh(A, k, rng=0, return_eigenvectors=False)
    for seed in range(3):
        w, v = randla.eigsh(A, k, rng=seed)
        np.testing.assert_allclose(np.sort(abs(w)), np.sort(abs(W)), rtol=1e-10)
        assert np.all(np.min(abs(w[:, None] - lam[None, :]), axis=1) <= 1e-10 * 3)
        assert np.linalg.norm(A @ v - v * w, axis=0).max() <= 1e-8
        np.testing.assert_allclose(v.T @ v, np.eye(k), atol=1e-12)
        only = randla.eigsh(A, k, rng=seed, return_eigenvectors=False)
        np.testing.assert_allclose(np.sort(only), w, rtol=1e-10)


@pytest.mark.parametrize("n, gap", [(40, 1e-3), (40, 1e-6), (400, 1e-6)])
def test_eigsh_near_plus_minus_pair_at_the_cut(n, gap):
    # 2 and -2 + gap: A² hardly tells them apart, Lanczos on A (and ARPACK) easily.
    lam = np.r_[-3.0, 2.0, -2.0 + gap, np.linspace(1, 0.1, n - 3)]
    A, _, _ = known_eig(n, lam, seed=2)
    W = spla.eigsh(A, 2, rng=0, return_eigenvectors=False)
    w, v = randla.eigsh(A, 2, rng=0)
    np.testing.assert_allclose(w, np.sort(W), atol=1e-10 * 3)
    assert np.linalg.norm(A @ v - v * w, axis=0).max() <= 1e-8


def test_eigsh_no_convergence_reports_signed_eigenvalues():
    # scipy's ArpackNoConvergence carries eigenvalues (signed), not their sizes.
    lam = np.r_[-3.0, 2.0, -2.0 + 1e-6, np.linspace(1, 0.1, 397)]
    A, _, _ = known_eig(400, lam, seed=2)
    with pytest.raises(spla.ArpackNoConvergence) as err:
        randla.eigsh(A, 2, maxiter=15, rng=0)     # 19 steps converge both
    np.testing.assert_allclose(err.value.eigenvalues, [-3.0], rtol=1e-10)
    x = err.value.eigenvectors
    assert x.shape == (400, 1) and np.linalg.norm(A @ x + 3 * x) <= 1e-8


@pytest.mark.usefixtures("ncv_as_given")
@pytest.mark.parametrize("solver, ncv", [("eigsh", 13), ("svds", 10)])
def test_a_small_ncv_converges_where_arpack_does(solver, ncv):
    # The top of a 1-D Laplacian's spectrum is a tight cluster (neighbours
    # 2e-3 apart, spread 4).  ARPACK converges with these ncv within its
    # default budget; randla raised ArpackNoConvergence when ncv let it take
    # two columns per step (a restart cycle of two or three steps) or gave it
    # 10 n steps instead of ARPACK's 10 n cycles of ncv - k products.
    n = 200
    L = laplacian_1d(n)
    exact = np.linalg.eigvalsh(L.toarray())[-K:]
    values_only = ({"return_eigenvectors": False} if solver == "eigsh"
                   else {"return_singular_vectors": False})
    reference = getattr(spla, solver)(L, K, ncv=ncv, rng=0, **values_only)
    np.testing.assert_allclose(np.sort(reference), exact, rtol=0, atol=1e-10 * 4)
    got = getattr(randla, solver)(L, K, ncv=ncv, rng=0, **values_only)
    np.testing.assert_allclose(np.sort(got), exact, rtol=0, atol=1e-10 * 4)


def test_svds_clustered_sparse_agrees_with_arpack_and_maxiter_bounds_the_steps():
    from _matrices import clustered_sparse
    A = clustered_sparse()     # sigma_10 and sigma_11 0.6 % apart
    s = randla.svds(A, 10, rng=0, return_singular_vectors=False)
    reference = spla.svds(A, 10, tol=0, rng=0, return_singular_vectors=False)
    np.testing.assert_allclose(np.sort(s), np.sort(reference), rtol=0,
                               atol=1e-10 * reference.max())
    with pytest.raises(spla.ArpackNoConvergence):
        randla.svds(A, 10, maxiter=3, rng=0)


def test_svds_finds_every_copy_of_a_repeated_value_beyond_the_block():
    # ten equal leading values and five more just below: a 4-column Krylov
    # block holds 4 copies of the first (ARPACK returns 8 and misses two,
    # reporting 0.999 in their place); the check for full clusters widens it
    s_true = np.r_[np.ones(10), 0.999 * np.ones(5), np.linspace(0.5, 0.01, 285)]
    A = known_svd(600, 300, s_true, seed=1)[0]
    s = np.sort(randla.svds(A, 12, rng=0, return_singular_vectors=False))[::-1]
    np.testing.assert_allclose(s, s_true[:12], rtol=0, atol=1e-10)


def test_svds_options_take_a_block_size():
    A = matrix((240, 100), np.float64)
    exact = np.sort(np.linalg.svd(A, compute_uv=False)[:K])
    for block in (1, 3, 12):
        s = randla.svds(A, K, rng=0, options={"block_size": block},
                        return_singular_vectors=False)
        np.testing.assert_allclose(s, exact, rtol=0, atol=1e-10 * exact.max())
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match="block_size"):
            randla.svds(A, K, options={"block_size": bad})
    with pytest.raises(ValueError, match="unknown keys"):
        randla.svds(A, K, options={"sketch_size": 40})


def _sparse_symmetric(n, per_row, seed):
    rng = np.random.default_rng(seed)
    rows, cols = rng.integers(0, n, n * per_row // 2), rng.integers(0, n, n * per_row // 2)
    A = sp.csr_matrix((rng.standard_normal(rows.size), (rows, cols)), shape=(n, n))
    return (A + A.T).tocsr()


@pytest.mark.parametrize("dtype, size", [(np.float64, 1.0), (np.float32, 1.0),
                                         (np.float64, 1e-200)])
def test_eigsh_dense_products_on_numba_threads_agree_with_eigh(dtype, size, monkeypatch):
    # from 2e6 entries (1400 x 1400) the products of a row-major dense A run on
    # numba's threads; here every size does, with values ±1 in the top 6
    from randla.eig import _operand
    monkeypatch.setattr(_operand, "_NUMBA_MATMAT_ENTRIES", 0)
    lam = np.r_[1.0, -0.95, 0.9, 0.85, -0.8, 0.75, 0.5 * np.linspace(1, 0, 114)]
    A = (known_eig(120, lam, seed=7)[0] * size).astype(dtype)
    op = _operand.Operand(A)
    assert op.on_numba(4) and op.numba_matmat(4)
    w, v = randla.eigsh(A, 6, rng=0)
    top = lam[np.argsort(-np.abs(lam))[:6]]
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(np.sort(w / size), np.sort(top), rtol=0, atol=tol)
    residual = np.linalg.norm(A.astype(np.float64) @ v - v * w, axis=0).max()
    assert residual <= 10 * tol * size


def test_dense_products_use_numba_threads_from_their_size_and_layout_only():
    from randla.eig._operand import _NUMBA_MATMAT_ENTRIES, Operand
    side = int(np.ceil(np.sqrt(_NUMBA_MATMAT_ENTRIES)))
    big = np.zeros((side, side))
    assert Operand(big).numba_matmat(4) and Operand(big).on_numba(4)
    assert not Operand(np.asfortranarray(big)).numba_matmat(4)     # not row-major
    assert not Operand(big).numba_matmat(64)                        # too many columns
    assert not Operand(big[:side // 2]).numba_matmat(4)             # too small


def test_eigsh_cheap_sparse_products_take_two_columns_per_step_and_agree_with_arpack():
    from randla.eig._lanczos import default_block
    from randla.eig._operand import Operand
    A = _sparse_symmetric(2000, 8, seed=3)
    assert default_block(Operand(A), 6, normal=False) == 2
    W = spla.eigsh(A, 6, rng=0, return_eigenvectors=False)
    w, v = randla.eigsh(A, 6, rng=0)
    scale = np.abs(W).max()
    np.testing.assert_allclose(np.sort(np.abs(w)), np.sort(np.abs(W)), rtol=0, atol=1e-10 * scale)
    assert np.linalg.norm(A @ v - v * w, axis=0).max() <= 1e-8 * scale
    np.testing.assert_allclose(v.T @ v, np.eye(6), atol=1e-12)


def test_svds_block_size_follows_the_nonzeros_per_basis_row():
    from randla.eig._lanczos import default_block
    from randla.eig._operand import Operand
    few = _sparse_symmetric(2000, 8, seed=4)          # 2 nnz / n = 16
    many = sp.csr_matrix(matrix((240, 100), np.float64))   # 2 nnz / n = 480
    assert default_block(Operand(few), 6, normal=True) == 2
    assert default_block(Operand(many), 6, normal=True) == 4
    assert default_block(Operand(matrix((240, 100), np.float64)), 6, normal=True) == 4
    s = randla.svds(few, 6, rng=0, return_singular_vectors=False)
    S = spla.svds(few, 6, rng=0, return_singular_vectors=False)
    np.testing.assert_allclose(np.sort(s), np.sort(S), rtol=0, atol=1e-10 * S.max())


@pytest.mark.parametrize("block", [1, 4])
def test_rank_below_k_still_gives_k_values_as_scipy(block):
    # an invariant subspace smaller than k must not end the iteration early
    rng = np.random.default_rng(1)
    low = rng.standard_normal((200, 3)) @ rng.standard_normal((3, 100))
    options = {"block_size": block}
    s = randla.svds(low, 6, rng=0, options=options, return_singular_vectors=False)
    S = np.linalg.svd(low, compute_uv=False)[:6][::-1]
    assert s.shape == (6,)
    np.testing.assert_allclose(s, S, rtol=0, atol=1e-10 * S.max())
    assert randla.svds(np.zeros((40, 30)), 6, rng=0, return_singular_vectors=False).shape == (6,)
    np.testing.assert_allclose(randla.eigsh(np.zeros((30, 30)), 6, rng=0,
                                            return_eigenvectors=False), np.zeros(6))
    np.testing.assert_allclose(randla.svds(np.eye(100, 50), 10, rng=0,
                                           return_singular_vectors=False), np.ones(10))


@pytest.mark.parametrize("copies", [5, 6, 8])
def test_repeated_leading_value_with_a_small_gap_after_it(copies):
    # copies of 2.0, then 1.99: the widened block must run until the values
    # after the cluster converge too, or one copy of 2.0 goes missing
    s_true = np.r_[np.full(copies, 2.0), np.linspace(1.99, 0.1, 200 - copies)]
    A = known_svd(300, 200, s_true, seed=0)[0]
    s = np.sort(randla.svds(A, copies + 1, rng=0, return_singular_vectors=False))[::-1]
    np.testing.assert_allclose(s, s_true[:copies + 1], rtol=0, atol=1e-10)


def test_eigsh_with_one_column_per_step_finds_every_copy():
    # every eigenvalue three times (a block-diagonal, cheap sparse matrix):
    # one column per step widens once to two and finds all copies
    B = sp.random(150, 150, density=0.03, random_state=3, format="csr")
    B = (B + B.T).tocsr()
    A = sp.block_diag([B, B, B], format="csr")
    lam = np.linalg.eigvalsh(A.toarray())
    top = np.sort(lam[np.argsort(-np.abs(lam), kind="stable")][:6])
    w = randla.eigsh(A, 6, rng=0, return_eigenvectors=False)
    np.testing.assert_allclose(np.sort(w), top, rtol=0, atol=1e-10 * np.abs(top).max())


@pytest.mark.parametrize("copies, k, block", [(16, 16, None), (5, 5, 2), (8, 8, 2), (3, 3, 1),
                                              (8, 9, 1), (6, 12, None)])
def test_widening_runs_until_hidden_copies_surface(copies, k, block):
    # after a widening, pairs that had already converged prove nothing: the
    # iteration must go on until pairs not yet converged do (5 of 16 copies,
    # and copies with one or two columns per step, went missing otherwise)
    n = 300 if copies == 16 else 200
    s_true = np.r_[np.full(copies, 2.0), np.linspace(1.99, 0.1, n - copies)]
    A = known_svd(n + 100, n, s_true, seed=0)[0]
    options = None if block is None else {"block_size": block}
    s = np.sort(randla.svds(A, k, rng=0, options=options, return_singular_vectors=False))[::-1]
    np.testing.assert_allclose(s, s_true[:k], rtol=0, atol=1e-10)


@pytest.mark.parametrize("solver", ["eigsh", "svds"])
def test_a_small_ncv_is_raised_to_the_default_basis_where_that_fits(solver):
    # thick restarts make less of a small basis than ARPACK's implicit ones,
    # so a given ncv below the default basis (that fits the memory bound) is
    # raised to it: the run is the default one, product for product
    n = 300
    L = laplacian_1d(n)
    values_only = ({"return_eigenvectors": False} if solver == "eigsh"
                   else {"return_singular_vectors": False})
    runs = []
    for ncv in (None, K + 2):
        columns = []

        def product(X):
            columns.append(X.shape[1])
            return L @ X
        op = spla.LinearOperator(L.shape, matvec=product, rmatvec=product, matmat=product,
                                 rmatmat=product, dtype=np.float64)
        runs.append((getattr(randla, solver)(op, K, ncv=ncv, rng=0, **values_only), columns))
    (default, default_columns), (raised, raised_columns) = runs
    assert raised_columns == default_columns
    np.testing.assert_array_equal(raised, default)
    exact = np.linalg.eigvalsh(L.toarray())[-K:]
    np.testing.assert_allclose(np.sort(raised), exact, rtol=0, atol=1e-10 * 4)


@pytest.mark.usefixtures("ncv_as_given")
def test_small_ncv_with_a_repeated_value_converges():
    # the pairs a widening adds need room in the basis, or every restart
    # drops them and the run ends at maxiter
    s_true = np.r_[np.full(2, 2.0), np.linspace(1.99, 0.1, 198)]
    A = known_svd(300, 200, s_true, seed=0)[0]
    s = np.sort(randla.svds(A, 5, ncv=7, rng=0, maxiter=3000,
                            return_singular_vectors=False))[::-1]
    np.testing.assert_allclose(s, s_true[:5], rtol=0, atol=1e-10)


@pytest.mark.parametrize("values", [[2.0] * 5, [2.0] * 5 + [-2.0] * 5])
def test_eigsh_cheap_sparse_finds_every_copy_of_a_permuted_diagonal(values):
    rng = np.random.default_rng(0)
    n = 2000
    rest = n - len(values)
    d = np.r_[values, np.linspace(1.99, 0.01, rest) * rng.choice([-1, 1], rest)]
    A = sp.csr_matrix(sp.diags(d[rng.permutation(n)]))
    w = randla.eigsh(A, len(values), rng=0, return_eigenvectors=False)
    np.testing.assert_allclose(np.sort(w), np.sort(values), rtol=0, atol=1e-10)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_data_is_a_clear_error(bad):
    # scipy's ARPACK raises ArpackError (error -9999) here; randla raises
    # that class too, with a message naming the cause, and a ValueError
    A = matrix((60, 30), np.float64).copy()
    A[3, 4] = bad
    S = A[:30] + A[:30].T
    for call in (lambda: randla.svds(A, 3, rng=0), lambda: randla.eigsh(S, 3, rng=0),
                 lambda: randla.svds(sp.csr_matrix(A), 3, rng=0),
                 lambda: randla.eigsh(spla.aslinearoperator(S), 3, rng=0)):
        with pytest.raises(spla.ArpackError, match="non-finite") as info:
            call()
        assert isinstance(info.value, ValueError)
    with pytest.raises(spla.ArpackError):
        spla.svds(A, 3, rng=0)


@pytest.mark.parametrize("name", ["svds", "eigsh"])
def test_v0_starts_the_iteration_and_the_same_v0_gives_the_same_result(name):
    # ARPACK's only randomness is v0: with rng=None the same v0 must repeat
    A = known_eig(120, np.r_[np.linspace(10, 5, 6), np.linspace(1, 0.01, 114)])[0]
    solve = getattr(randla, name)
    v0 = np.cos(np.arange(120.0))
    first, again = solve(A, 4, v0=v0), solve(A, 4, v0=v0)
    for x, y in zip(first, again):
        assert np.array_equal(x, y)
    other = solve(A, 4, v0=np.sin(np.arange(120.0)))
    values = first[1] if name == "svds" else first[0]
    np.testing.assert_allclose(other[1] if name == "svds" else other[0], values, rtol=1e-10)
    np.testing.assert_allclose(values, np.linspace(10, 5, 6)[:4][::-1], rtol=1e-10)


@pytest.mark.parametrize("name", ["svds", "eigsh"])
@pytest.mark.parametrize("v0, match", [(np.ones(10), "shape"), (np.zeros(120), "nonzero"),
                                       (np.full(120, np.nan), "finite")])
def test_bad_v0_raises(name, v0, match):
    A = known_eig(120, np.linspace(10, 1, 120))[0]
    with pytest.raises(ValueError, match=match):
        getattr(randla, name)(A, 3, v0=v0)


def test_svds_takes_scipys_older_random_state_keyword():
    A = matrix((240, 100), np.float64)
    s = randla.svds(A, K, random_state=5, return_singular_vectors=False)
    assert np.array_equal(s, randla.svds(A, K, rng=5, return_singular_vectors=False))
    with pytest.raises(TypeError, match="one of rng or random_state"):   # scipy's type
        randla.svds(A, K, rng=5, random_state=5)


def test_linear_operator_without_rmatvec_is_refused_by_svds_but_not_by_eigsh():
    A = known_eig(120, np.linspace(10, 1, 120))[0]
    only_matvec = spla.LinearOperator(A.shape, matvec=lambda v: A @ v, dtype=A.dtype)
    with pytest.raises(TypeError, match="without rmatvec"):
        randla.svds(only_matvec, 3)
    # float16 too (computed in float64 through a wrapper, which has an rmatvec:
    # the check once ran on the wrapper and scipy's bare error came out)
    half = A.astype(np.float16)
    with pytest.raises(NotImplementedError, match="without rmatvec"):
        randla.svds(spla.LinearOperator(A.shape, matvec=lambda v: half @ v,
                                        dtype=np.float16), 3)
    w = randla.eigsh(only_matvec, 3, rng=0, return_eigenvectors=False)
    np.testing.assert_allclose(np.sort(w), np.linspace(10, 1, 120)[:3][::-1], rtol=1e-10)


def test_v0_with_one_column_per_step():
    # cheap sparse products take one column per step: the start block is v0 alone
    S = sp.random(3000, 3000, density=5 / 3000, random_state=np.random.default_rng(0),
                  format="csr")
    A = (S + S.T).tocsr()
    v0 = np.cos(np.arange(3000.0))
    w = randla.eigsh(A, 3, v0=v0, return_eigenvectors=False)
    np.testing.assert_allclose(w, spla.eigsh(A, 3, return_eigenvectors=False), rtol=1e-10)
    s = randla.svds(S, 3, v0=v0, return_singular_vectors=False)
    np.testing.assert_allclose(s, spla.svds(S, 3, return_singular_vectors=False), rtol=1e-10)


# ---- scipy users' edge cases (review of the drop-ins against scipy 1.17) ----

@pytest.mark.usefixtures("ncv_as_given")
@pytest.mark.parametrize("ncv", [5, 6, 8])
def test_eigsh_small_ncv_converges_where_arpack_does(ncv):
    # a block of ncv - k columns made every step a thick restart keeping only
    # the k pairs (a block power method): 300 steps ended short of tol where
    # ARPACK with the same ncv converges
    lam = np.r_[np.linspace(-5, 5, 26), 10.0, -9.0, 8.0, 7.5]
    A = known_eig(30, lam, seed=1)[0]
    W = spla.eigsh(A, 3, ncv=ncv, rng=0, return_eigenvectors=False)
    for seed in range(3):
        w = randla.eigsh(A, 3, ncv=ncv, rng=seed, return_eigenvectors=False)
        np.testing.assert_allclose(w, W, rtol=1e-10)


@pytest.mark.usefixtures("ncv_as_given")
@pytest.mark.parametrize("ncv", [6, 7, 8])
def test_svds_small_ncv_converges_where_arpack_does(ncv):
    s_true = np.r_[10.0, 9.0, 8.0, 7.9, np.linspace(5, 0.1, 36)]
    A = known_svd(60, 40, s_true, seed=1)[0]
    np.testing.assert_allclose(spla.svds(A, 3, ncv=ncv, rng=0, return_singular_vectors=False),
                               s_true[:3][::-1], rtol=1e-10)
    for seed in range(3):
        s = randla.svds(A, 3, ncv=ncv, rng=seed, return_singular_vectors=False)
        np.testing.assert_allclose(s, s_true[:3][::-1], rtol=1e-10)


def test_svds_k_is_checked_as_scipy_checks_it():
    A = matrix((240, 100), np.float64)
    # a 0-d array (np.sum, np.argmax) and True (int(True) == 1) pass in scipy
    for k, size in ((np.array(3), 3), (np.int64(3), 3), (3.0, 3), (True, 1)):
        s = randla.svds(A, k, rng=0, return_singular_vectors=False)
        assert s.shape == spla.svds(A, k, rng=0, return_singular_vectors=False).shape == (size,)
    for k in (None, np.array([3])):       # int(k) fails: a TypeError in scipy
        with pytest.raises(TypeError):
            spla.svds(A, k)
        with pytest.raises(TypeError):
            randla.svds(A, k)


@pytest.mark.parametrize("k", [None, "3", True])
def test_eigsh_k_of_the_wrong_type_is_a_type_error_as_in_scipy(k):
    A = known_eig(30, np.linspace(1, 10, 30))[0]
    with pytest.raises(TypeError):
        spla.eigsh(A, k)
    with pytest.raises(TypeError):
        randla.eigsh(A, k)


@pytest.mark.parametrize("ncv", [4.5, 10.0, "10", True])
def test_eigsh_ncv_of_the_wrong_type_is_a_type_error_as_in_scipy(ncv):
    A = known_eig(30, np.linspace(1, 10, 30))[0]
    with pytest.raises(TypeError):
        spla.eigsh(A, 3, ncv=ncv)
    with pytest.raises(TypeError, match="ncv must be an integer"):
        randla.eigsh(A, 3, ncv=ncv)
    with pytest.raises(ValueError):       # an integer out of range stays a ValueError
        randla.eigsh(A, 3, ncv=3)


def test_svds_tol_of_the_wrong_type_is_a_type_error_as_in_scipy():
    A = matrix((240, 100), np.float64)
    for tol in (None, "0"):
        with pytest.raises(TypeError):
            spla.svds(A, 3, tol=tol)
        with pytest.raises(TypeError):
            randla.svds(A, 3, tol=tol)


@pytest.mark.parametrize("v0", [np.arange(1, 31), np.arange(1, 31) % 2 == 0,
                                np.linspace(1, 2, 30).reshape(-1, 1)])
def test_eigsh_takes_the_v0_scipys_eigsh_takes(v0):
    # scipy's eigsh casts an integer or bool v0 to A's type and takes an n x 1 column
    lam = np.r_[np.linspace(1, 5, 27), 10.0, 9.0, 8.0]
    A = known_eig(30, lam)[0]
    W = spla.eigsh(A, 3, v0=v0, return_eigenvectors=False)
    w = randla.eigsh(A, 3, v0=v0, return_eigenvectors=False)
    np.testing.assert_allclose(w, W, rtol=1e-10)


@pytest.mark.parametrize("name", ["svds", "eigsh"])
def test_complex_v0_for_real_a_warns_and_starts_from_its_real_part_as_in_scipy(name):
    lam = np.r_[np.linspace(1, 5, 27), 10.0, 9.0, 8.0]
    A = known_eig(30, lam)[0]
    v0 = np.linspace(1, 2, 30) + 1j * np.arange(30)
    with pytest.warns(np.exceptions.ComplexWarning):
        getattr(spla, name)(A, 3, v0=v0)
    with pytest.warns(np.exceptions.ComplexWarning, match="discards the imaginary part"):
        got = getattr(randla, name)(A, 3, v0=v0, rng=0)
    same = getattr(randla, name)(A, 3, v0=v0.real, rng=0)
    for x, y in zip(got, same):
        np.testing.assert_array_equal(x, y)
    # numpy's cast warns whatever the imaginary part; a purely imaginary v0
    # is then zero, ARPACK's error -9
    with pytest.warns(np.exceptions.ComplexWarning):
        getattr(randla, name)(A, 3, v0=v0.real + 0j, rng=0)
    for f in (getattr(spla, name), getattr(randla, name)):
        with pytest.warns(np.exceptions.ComplexWarning), pytest.raises(spla.ArpackError):
            f(A, 3, v0=1j * np.ones(30))


@pytest.mark.parametrize("name", ["svds", "eigsh"])
def test_zero_v0_raises_arpack_error_as_in_scipy(name):
    A = known_eig(30, np.linspace(1, 10, 30))[0]
    with pytest.raises(spla.ArpackError):
        getattr(spla, name)(A, 3, v0=np.zeros(30))
    with pytest.raises(spla.ArpackError, match="zero") as info:
        getattr(randla, name)(A, 3, v0=np.zeros(30))
    assert isinstance(info.value, ValueError) and info.value.info == -9


def test_svds_linear_operator_without_rmatvec_raises_scipys_not_implemented_error():
    A = matrix((240, 100), np.float64)
    only_matvec = spla.LinearOperator(A.shape, matvec=lambda v: A @ v, dtype=A.dtype)
    with pytest.raises(NotImplementedError):
        spla.svds(only_matvec, 3)
    with pytest.raises(NotImplementedError, match="without rmatvec"):
        randla.svds(only_matvec, 3)


def test_float32_finds_every_copy_of_a_value_repeated_beyond_the_block():
    # float32 rounding spread five copies of 1 over 0.99999994 .. 1.0000001,
    # wider than the float64 cluster width (1e-8): no widening, and the fifth
    # copy came back as 0 (found while checking float32 inputs)
    rng = np.random.default_rng(0)
    U = np.linalg.qr(rng.standard_normal((2000, 300)))[0]
    V = np.linalg.qr(rng.standard_normal((300, 300)))[0]
    s = np.r_[np.ones(5), np.zeros(295)]
    A = ((U * s) @ V.T).astype(np.float32)
    M = (V * s) @ V.T
    M = ((M + M.T) / 2).astype(np.float32)
    got = np.sort(randla.svds(A, k=8, rng=0, return_singular_vectors=False))[::-1]
    assert np.allclose(got[:5], 1, atol=1e-5) and np.all(np.abs(got[5:]) < 1e-5)
    w = np.sort(randla.eigsh(M, k=8, rng=0, return_eigenvectors=False))[::-1]
    assert np.allclose(w[:5], 1, atol=1e-5) and np.all(np.abs(w[5:]) < 1e-5)


@pytest.mark.parametrize("solver", ["svds", "eigsh"])
def test_long_double_data_are_refused_as_scipy_refuses_them(solver):
    # whatever its size here (float64's on some platforms), as scipy
    A = np.diag(np.arange(1.0, 31.0)).astype(np.longdouble)
    with pytest.raises(ValueError, match="matrix type must be") as reference:
        getattr(spla, solver)(A, 3)
    with pytest.raises(ValueError, match="matrix type must be"):
        getattr(randla, solver)(A, 3, rng=0)
    assert "'f', 'd', 'F', or 'D'" in str(reference.value)


@pytest.mark.parametrize("flag", ["x", None, 1.5, np.array(1.0)])
def test_eigsh_return_eigenvectors_must_be_a_bool_or_an_integer(flag):
    A = np.diag(np.arange(1.0, 31.0))
    with pytest.raises(TypeError, match="return_eigenvectors"):
        randla.eigsh(A, 3, return_eigenvectors=flag, rng=0)
    with pytest.raises(TypeError):
        spla.eigsh(A, 3, return_eigenvectors=flag)
    for integer in (0, np.array(0)):       # scipy takes a 0-d integer array too
        values = randla.eigsh(A, 3, return_eigenvectors=integer, rng=0)
        np.testing.assert_allclose(values, [28.0, 29.0, 30.0], rtol=1e-12)
