"""Copies of repeated values: the block Lanczos behind svds/eigsh must find
every copy among the k it returns, or run until it would have (found by an
adversarial run: each case below returned a lower value in place of a copy,
with no error)."""
import pathlib
import sys

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla

import randla

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from _matrices import known_eig, known_svd  # noqa: E402


@pytest.mark.parametrize("seed", [0, 1])
def test_no_room_to_widen_grows_the_basis_to_the_whole_space(seed):
    # 12 values 1 in 40 columns, k = 12: the widening had no room and the run
    # stopped (0.80 for the last copy, every seed); so did eigsh with 45
    # values 1 and 35 zeros, k = 68 (two copies of 1 came back as 0)
    s = np.r_[np.ones(12), np.linspace(0.9, 0.01, 28)]
    A = known_svd(40, 40, s, seed=seed)[0]
    got = randla.svds(A, 12, rng=seed, return_singular_vectors=False)
    np.testing.assert_allclose(got, np.ones(12), atol=1e-10)
    M = known_eig(80, np.r_[np.ones(45), np.zeros(35)], seed=seed)[0]
    w = randla.eigsh(M, 68, rng=seed, return_eigenvectors=False)
    np.testing.assert_allclose(w, np.r_[np.zeros(23), np.ones(45)], atol=1e-10)


@pytest.mark.parametrize("seed", [3, 5, 6, 7])
def test_one_column_widening_runs_long_enough_to_show_a_copy(seed):
    # sparse diagonal (one column per step): values 1, 1, then clusters of
    # 0.6246 x 4 and 0.5847 x 3; k = 2 often stopped at [0.6246, 1] once the
    # leading pairs converged again after the widening
    rng = np.random.default_rng(7)
    values, v = [1.0, 1.0] + [0.6246] * 4 + [0.5847] * 3, 0.5847
    while len(values) < 300:
        v *= rng.uniform(0.3, 0.95)
        values += [v] * int(rng.integers(1, 5))
    A = sp.diags(np.array(values[:300])).tocsr()
    w = randla.eigsh(A, 2, rng=seed, return_eigenvectors=False)
    np.testing.assert_allclose(w, [1.0, 1.0], atol=1e-8)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_loose_tol_widens_for_copies_within_tol(seed):
    # ten eigenvalues 1, k = 10, tol = 1e-3: copies converged to 1e-3 differ
    # by more than the fixed cluster width of 1e-8, and 0.9 and 0.887 came
    # back in place of two of them (ARPACK misses them too)
    lam = np.r_[np.ones(10), np.linspace(0.9, 0.01, 290)]
    M = known_eig(300, lam, seed=seed)[0]
    w = randla.eigsh(M, 10, tol=1e-3, rng=seed, return_eigenvectors=False)
    np.testing.assert_allclose(w, np.ones(10), atol=1e-3)


def test_loose_tol_widens_for_near_copies_a_little_further_apart_than_tol():
    # singular values [1, 1, 1, 1, 0.999999, 0.9, ...], k = 5, tol = 1e-3
    # (tol² = 1e-6 on θ = σ²): a block of 4 filled with mixtures of the five
    # near-copies, 2e-6 apart in θ, and 0.9 came back in place of the fifth
    # in 7 of these 20 runs (ARPACK: none)
    s = np.r_[np.ones(4), 0.999999, np.linspace(0.9, 0.01, 8)]
    wrong = 0
    for seed in range(20):
        A = known_svd(13, 20, s, seed=seed)[0]
        got = randla.svds(A, 5, tol=1e-3, rng=seed, return_singular_vectors=False)
        wrong += np.abs(got - np.r_[0.999999, np.ones(4)]).max() > 1e-4
    assert wrong == 0


def test_cluster_rule_at_loose_tol():
    from randla.eig._lanczos import _missing_copies
    # near-copies 2 tol apart fill a block of 4: widen
    assert _missing_copies(np.array([1, 1, 1, 1 - 2e-6, 0.81]), 4, True, tol=1e-6) == 4
    # copies equal within tol, more than tol above the k-th value, count
    # even where the values below are within 3 tol of each other (eigsh at
    # tol 0.1 returned four copies of 1 and 0.9, 0.86, 0.82, 0.78 from a run
    # of 16 copies when only runs of near-copies counted)
    theta = np.array([1, 1, 1, 1, 0.9, 0.86, 0.82, 0.78])
    assert _missing_copies(theta, 4, False, tol=0.1) == 4
    # within tol of the k-th value a missed copy changes no answer
    assert _missing_copies(np.array([1, 1, 1, 1, 0.95]), 4, True, tol=0.1) == 0
    # near-copies followed by values that continue them (a dense spectrum)
    assert _missing_copies(np.r_[1, 1, 1, 1 - 2e-6, 1 - 4e-6], 4, True, tol=1e-6) == 0
    # values within tol of each other all the way down to the k-th value (a
    # dense spectrum): a missed one moves the answers by less than tol
    assert _missing_copies(np.linspace(1, 0.97, 10), 4, True, tol=1e-2) == 0
    # eigsh: λ and −λ are no copies of each other
    assert _missing_copies(np.array([1, -1, 1, -1, 0.5]), 4, False, tol=1e-3) == 0
    # distinct values of a decaying spectrum are no cluster, however small
    assert _missing_copies(1 / np.arange(1, 101) ** 2, 4, True, tol=1e-4) == 0


def _svds_counting_columns(A, k, tol):
    """randla.svds values of dense A at tol, and the columns its products
    with A and Aᵀ multiplied (through a LinearOperator)."""
    columns = []
    op = spla.LinearOperator(A.shape, matvec=lambda x: A @ x, rmatvec=lambda y: A.T @ y,
                             matmat=lambda X: columns.append(X.shape[1]) or A @ X,
                             rmatmat=lambda Y: columns.append(Y.shape[1]) or A.T @ Y,
                             dtype=A.dtype)
    return randla.svds(op, k, tol=tol, rng=0, return_singular_vectors=False), sum(columns)


def test_decaying_spectra_at_loose_tol_do_not_widen_again_and_again():
    # 1/i and 10^(-i/40) at tol 1e-2, k = 100: a cluster width of tol times
    # the largest value made every small value one cluster, and the block
    # widened step after step (1300-2200 columns multiplied against 300-400)
    rng = np.random.default_rng(0)
    U = np.linalg.qr(rng.standard_normal((1500, 400)))[0]
    V = np.linalg.qr(rng.standard_normal((600, 400)))[0]
    i = np.arange(1, 401)
    for s in (1 / i, 10 ** (-i / 40)):
        A = (U * s) @ V.T
        got, columns = _svds_counting_columns(A, 100, 1e-2)
        np.testing.assert_allclose(got[::-1], s[:100], rtol=2e-4)
        assert columns < 1000


def test_a_dense_spectrum_at_loose_tol_is_not_solved_to_the_rounding_level():
    # singular values linspace(1, 0.5, 400), k = 50, tol = 0.1: values
    # within tol of each other made the block widen, and the run went on to
    # errors of 3e-15 with 1106 columns multiplied (578 now)
    rng = np.random.default_rng(0)
    U = np.linalg.qr(rng.standard_normal((900, 400)))[0]
    V = np.linalg.qr(rng.standard_normal((500, 400)))[0]
    s = np.linspace(1, 0.5, 400)
    A = (U * s) @ V.T
    got, columns = _svds_counting_columns(A, 50, 0.1)
    assert np.abs(got[::-1] - s[:50]).max() <= 2 * 0.1 ** 2
    assert columns < 800


@pytest.mark.parametrize("vectors", [True, False])
def test_pairs_exact_by_dimension_count_do_not_stop_the_run(vectors):
    # a basis that nearly contains its product holds exact Ritz pairs whether
    # or not they are the leading ones: with eigenvalues -1, -1, -1, 0.5, 0.5
    # four columns of the 5-space held two -1s and a 0.5 exactly, the fourth
    # Ritz value lay between, and 0.5 came back for the third -1 (22 of 30
    # seeds); in 9 dimensions eight columns did the same; 0.5 I plus a rank-5
    # part at n = 200 after two steps (2 of 10 seeds)
    cases = [(5, [-1, -1, -1, 0.5, 0.5]), (9, [-1, -1, -1, 0.1, 0.2, 0.3, 0.5, 0.5, 0.5]),
             (200, np.r_[-1, -1, -1, 0.1, -0.2, np.full(195, 0.5)])]
    for n, lam in cases:
        for seed in range(30 if n < 100 else 10):
            M = known_eig(n, lam, seed=seed)[0]
            w = randla.eigsh(M, 3, rng=seed, return_eigenvectors=vectors)
            np.testing.assert_allclose(w[0] if vectors else w, [-1, -1, -1], atol=1e-12,
                                       err_msg=f"n = {n}, seed {seed}")


def test_a_spike_on_a_bulk_is_found():
    # -0.5 I + 5 u uᵀ (eigenvalues 4.5 once, -0.5 nineteen times), k = 1:
    # -0.5 came back in 11 of 20 seeds when its exact copies stopped the run
    for seed in range(20):
        rng = np.random.default_rng(seed)
        u = rng.standard_normal((20, 1))
        u /= np.linalg.norm(u)
        A = -0.5 * np.eye(20) + 5 * u @ u.T
        w = randla.eigsh(A, 1, rng=seed, return_eigenvectors=False)
        np.testing.assert_allclose(w, [4.5], rtol=1e-12, err_msg=f"seed {seed}")
