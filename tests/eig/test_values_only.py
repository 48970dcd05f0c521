"""Values without vectors: block Lanczos may stop once each Ritz value is
within its target by the gap bound |θ̂ − θ| ≤ ‖r‖² / δ, before the residuals
reach the target the vectors need.  The values must stay as accurate as
the vectors' run gives them."""
import pathlib
import sys

import numpy as np
import pytest
import scipy.sparse.linalg as spla

import randla
from randla.eig._lanczos import block_lanczos, default_max_basis
from randla.eig._operand import Operand

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from _matrices import known_eig, known_svd, ncv_as_given  # noqa: E402,F401

_EPS = np.finfo(np.float64).eps


def _lanczos(A, k, normal, values_only, tol=0.0):
    n = A.shape[1]
    return block_lanczos(Operand(A), k, normal=normal, tol=tol, maxiter=1000, block=4,
                         max_basis=default_max_basis(k, 4, n), rng=0,
                         floor=50 * _EPS * np.sqrt(n), values_only=values_only)


@pytest.mark.parametrize("tol", [0.0, 1e-16, 1e-10])
def test_values_take_fewer_steps_than_vectors_and_stay_accurate(tol):
    # singular values 1/i, k = 20: the 20th and 21st values of AᵀA are 10 %
    # apart, so the values converge several steps before the vectors
    s = 1.0 / np.arange(1, 401)
    A = known_svd(1200, 400, s, seed=0)[0]
    vectors = _lanczos(A, 20, True, False, tol)
    values = _lanczos(A, 20, True, True, tol)
    assert vectors.converged.all() and values.converged.all()
    assert values.steps < vectors.steps
    exact = s[:20] ** 2
    # each value within its target (tol θ, or the rounding level of θ:
    # u sqrt(n) sqrt(θ θ₁)), with a factor 2 to spare
    allowed = 2 * np.maximum(tol * exact, _EPS / 2 * np.sqrt(400) * np.sqrt(exact))
    assert (np.abs(values.values - exact) <= allowed).all()
    # and no less accurate than the full run's, to a few rounding units of θ₁
    assert (np.abs(values.values - exact)
            <= np.abs(vectors.values - exact) + 10 * _EPS).all()


def test_svds_values_alone_agree_with_the_full_call():
    s = 1.0 / np.arange(1, 301)
    A = known_svd(900, 300, s, seed=1)[0]
    alone = randla.svds(A, 20, rng=0, return_singular_vectors=False)
    _, full, _ = randla.svds(A, 20, rng=0)
    np.testing.assert_allclose(alone, full, rtol=1e-13)
    np.testing.assert_allclose(alone, s[:20][::-1], rtol=1e-13)



class _Counted(spla.LinearOperator):
    """A dense matrix seen through products, counting the columns multiplied."""

    def __init__(self, A):
        super().__init__(A.dtype, A.shape)
        self.A, self.columns = A, 0

    def _matmat(self, X):
        self.columns += X.shape[1]
        return self.A @ X

    def _rmatmat(self, X):
        self.columns += X.shape[1]
        return self.A.T @ X


@pytest.mark.parametrize("ratio, far", [(3.0, 0), (1e4, 7)])
def test_svds_values_near_the_largest_need_no_last_product(monkeypatch, ratio, far):
    # σ₁ / σ_k = 3: every value is the square root of its Ritz value, and the
    # run multiplies only inside Lanczos; at 1e4 the 7 values below σ₁ / 10
    # take one last product with their Ritz vectors, as all 10 did before
    from randla.eig import _dropins

    s = np.concatenate([np.geomspace(1.0, 1.0 / ratio, 10),
                        np.geomspace(0.9 / ratio, 1e-2 / ratio, 190)])
    A = known_svd(600, 200, s, seed=2)[0]
    runs = {}
    for name, near_ratio in (("split", _dropins._SQRT_THETA_RATIO), ("all A V", 0.0)):
        monkeypatch.setattr(_dropins, "_SQRT_THETA_RATIO", near_ratio)
        counted = _Counted(A)
        runs[name] = randla.svds(counted, 10, rng=0, return_singular_vectors=False), counted.columns
    (split, split_columns), (all_av, all_av_columns) = runs["split"], runs["all A V"]
    assert all_av_columns - split_columns == 10 - far
    assert (np.diff(split) >= 0).all()
    # both as accurate as the full run's bound: u sqrt(n) σ₁ / σ relative
    bound = _EPS * np.sqrt(200) * s[0] / s[:10][::-1]
    assert (np.abs(split - s[:10][::-1]) <= bound * s[:10][::-1]).all()
    assert (np.abs(all_av - s[:10][::-1]) <= bound * s[:10][::-1]).all()

def test_eigsh_values_alone_of_an_indefinite_matrix():
    # largest magnitudes of both signs: the gap of each value is measured
    # to its neighbours in value, not in magnitude
    lam = np.r_[np.linspace(10, 6, 8), -np.linspace(9.5, 5.5, 8), np.linspace(4, -4, 284)]
    M = known_eig(300, lam, seed=2)[0]
    w = randla.eigsh(M, 12, rng=0, return_eigenvectors=False)
    top = lam[np.argsort(-np.abs(lam), kind="stable")[:12]]
    expected = top[np.argsort(np.abs(top), kind="stable")]
    np.testing.assert_allclose(w, expected, atol=1e-12 * 10)


@pytest.mark.parametrize("block", [1, 2, 3])
@pytest.mark.parametrize("split", [1e-6, 1e-10])
def test_near_copies_at_the_cut_keep_full_accuracy(block, split):
    # three singular values `split` apart at the k-th place: a Ritz value
    # that mixes two of them has a residual near split and a gap to the
    # other Ritz values of 0.1 or more, so the gap bound alone would accept
    # an error near split; the values must come out to rounding instead
    s = np.r_[1.0, 0.9, 0.8, 0.8 - split, 0.8 - 2 * split, np.linspace(0.5, 0.01, 195)]
    for seed in range(4):
        A = known_svd(400, 200, s, seed=seed)[0]
        for k in (3, 4, 5):
            got = randla.svds(A, k, rng=seed, return_singular_vectors=False,
                              options={"block_size": block})
            np.testing.assert_allclose(got[::-1], s[:k], atol=1e-13)


@pytest.mark.parametrize("delta, seed", [(1e-3, 14), (1e-4, 2), (1e-4, 5)])
def test_eigsh_values_alone_wait_for_a_runner_up_of_the_other_sign(delta, seed):
    # +0.7 heads a run of close values (slow to converge) and -0.7 (1 - delta),
    # the most negative value, converges fast: the values above +0.7 met the
    # gap bound while its Ritz value still lay below 0.6993, and -0.6993
    # came back in its place (found by review; seeds where it did)
    lam = np.r_[1.0, 0.9, 0.7 - 1e-3 * np.arange(30), -0.7 * (1 - delta),
                np.linspace(0.5, 0.01, 167)]
    M = known_eig(200, lam, seed=seed)[0]
    w = randla.eigsh(M, 3, rng=seed, return_eigenvectors=False)
    np.testing.assert_allclose(w, [0.7, 0.9, 1.0], atol=1e-12)


@pytest.mark.usefixtures("ncv_as_given")
@pytest.mark.parametrize("seed", [0, 1, 4])
def test_a_run_cut_short_reports_only_what_the_residuals_prove(seed):
    # one column per step (ncv = k + 3) cannot tell 1 from 1 - 1e-8 until it
    # widens: cut short by maxiter, a Ritz value mixing both (up to 4e-9
    # off) was reported as converged by the gap bound
    lam = np.r_[1.0, 1 - 1e-8, 0.8, 0.75, np.linspace(0.6, 0.01, 146)]
    M = known_eig(150, lam, seed=seed)[0]
    with pytest.raises(spla.ArpackNoConvergence) as info:
        randla.eigsh(M, 2, rng=seed, ncv=5, maxiter=20, return_eigenvectors=False)
    for value in np.atleast_1d(info.value.eigenvalues):
        assert np.min(np.abs(value - lam)) <= 1e-12
