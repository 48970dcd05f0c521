"""Copies of repeated values: the block Lanczos behind svds/eigsh must find
every copy among the k it returns, or run until it would have (found by an
adversarial run: each case below returned a lower value in place of a copy,
with no error)."""
import pathlib
import sys

import numpy as np
import pytest
import scipy.sparse as sp

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
