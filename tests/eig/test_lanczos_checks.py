"""How often block Lanczos checks its Ritz pairs: each check is an
eigendecomposition of the projected matrix H, which on a small sparse A with
many values wanted costs far more than a step (svds of a 2000 x 800 matrix,
k = 100, spent 3.4 of 4.4 s in them)."""
import math

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla

import randla

from randla.eig._lanczos import _check_gap, _step_cost, block_lanczos
from randla.eig._operand import Operand


def _two_by_two_blocks(values, m, seed, symmetric=False):
    """m x len(values) CSR with singular values ``values``: 2 x 2 blocks
    U diag(values[i:i+2]) Vᵀ on the diagonal, rows and columns permuted (2
    nonzeros per row).  ``symmetric``: V = U and one permutation, so the
    values are its eigenvalues."""
    rng = np.random.default_rng(seed)
    n = len(values)
    rows, cols, vals = [], [], []
    for i in range(0, n, 2):
        U = np.linalg.qr(rng.standard_normal((2, 2)))[0]
        V = U if symmetric else np.linalg.qr(rng.standard_normal((2, 2)))[0]
        block = (U * values[i:i + 2]) @ V.T
        for a in range(2):
            for c in range(2):
                rows.append(i + a)
                cols.append(i + c)
                vals.append(block[a, c])
    if symmetric:
        p = rng.permutation(n)
        A = sp.csr_array((vals, (p[rows], p[cols])), shape=(n, n))
        return ((A + A.T) / 2).tocsr()
    return sp.csr_array((vals, (rng.permutation(m)[rows], rng.permutation(n)[cols])),
                        shape=(m, n))


def test_cheap_steps_check_the_ritz_pairs_every_few_steps(monkeypatch):
    s = np.linspace(1, 0.5, 600)
    A = _two_by_two_blocks(s, 1500, seed=0)
    sizes = []
    eigh = np.linalg.eigh
    monkeypatch.setattr(np.linalg, "eigh", lambda H: sizes.append(len(H)) or eigh(H))
    result = block_lanczos(Operand(A), 60, normal=True, tol=0.1 ** 2, maxiter=10_000,
                           block=1, max_basis=240, rng=0)
    assert result.converged.all()
    # the values: θ = σ², each to its tol (ARPACK's meaning)
    np.testing.assert_allclose(result.values, s[:60] ** 2, rtol=0.1 ** 2)
    # every step checked before (as many eigendecompositions as steps)
    assert len(sizes) < result.steps / 3


def test_the_gap_between_checks():
    # expensive steps (a dense 20000 x 5000 sweep of 4 columns takes about
    # 40 ms; H has at most 80 columns there): every step checks
    assert _check_gap(0.04, 80, 20) == 1
    # cheap steps: sqrt(steps E / S), E = 2e-4 + 0.25e-9 d³ (16.2 ms at d = 400)
    assert _check_gap(1e-3, 400, 2000) == int(math.sqrt(2000 * 16.2e-3 / 1e-3))
    # with a small H the check's fixed part still spaces the checks
    assert _check_gap(3e-4, 20, 100) == int(math.sqrt(100 * (2e-4 + 2e-6) / 3e-4))
    # at most an eighth of the steps taken so far
    assert _check_gap(1e-3, 400, 40) == 5
    assert _check_gap(1e-6, 400, 7) == 1


@pytest.mark.parametrize("kind", ["dense", "sparse", "operator"])
def test_the_cost_of_a_step(kind):
    rng = np.random.default_rng(0)
    A = rng.standard_normal((300, 200))
    if kind == "sparse":
        A = sp.random(300, 200, density=0.05, random_state=0, format="csr")
    elif kind == "operator":
        A = spla.aslinearoperator(A)
    cost = _step_cost(Operand(A), normal=True)
    if kind == "operator":    # products that may cost anything: check every step
        assert cost(10, 1) == math.inf
        assert _check_gap(cost(400, 1), 400, 1000) == 1
        return
    # a fixed part, then linear in the block and growing with the basis
    assert cost(10, 2) - cost(10, 1) == pytest.approx(cost(10, 1) - cost(10, 0))
    assert cost(20, 1) > cost(10, 1) > cost(10, 0) > 0


def test_a_restart_while_settling_still_checks_when_the_window_ends():
    # eigsh of groups of 5 equal values (one column per step, so the block
    # widens for copies): a restart inside the window after a widening set
    # the next check past the window's end, and the run took 659 steps where
    # checking every step took 445 (541 now)
    lam = np.repeat(1.0 / np.arange(1, 302), 5)[:1500]
    result = block_lanczos(Operand(_two_by_two_blocks(lam, 1500, 7, symmetric=True)), 60, normal=False, tol=1e-8,
                           maxiter=10_000, block=1, max_basis=240, rng=7)
    assert result.converged.all()
    np.testing.assert_allclose(result.values, lam[:60], rtol=1e-8)
    assert result.steps < 600


@pytest.mark.parametrize("block", [1, 2])
@pytest.mark.parametrize("seed", range(4))
def test_out_of_steps_before_copies_are_ruled_out_is_no_convergence(seed, block, monkeypatch):
    # 12 values 1, k = 13, maxiter = 45: the run with one column per step
    # stopped converged before the widening could show the last copies, and
    # returned 1/12 for one of them
    monkeypatch.setattr(randla.eig._dropins, "default_block", lambda op, k, normal: block)
    lam = np.r_[np.ones(12), 0.5 / np.arange(1, 289)]
    A = _two_by_two_blocks(lam, 300, seed, symmetric=True)
    for maxiter in (45, 60, 200):
        try:
            w = randla.eigsh(A, 13, tol=1e-8, maxiter=maxiter, rng=seed,
                             return_eigenvectors=False)
        except spla.ArpackNoConvergence as exc:
            got = np.asarray(exc.eigenvalues)
            # what it does report converged (if anything) is right
            assert np.all(np.min(np.abs(got[:, None] - lam), axis=1) <= 1e-8)
            assert maxiter < 200
        else:
            np.testing.assert_allclose(np.sort(w), np.sort(lam)[-13:], atol=1e-8)


def test_times_stacked_equals_the_product_with_the_stacked_blocks():
    from randla.eig._lanczos import _times_stacked
    rng = np.random.default_rng(4)
    blocks = [rng.standard_normal((30, w)) for w in (4, 1, 3)]
    Y = rng.standard_normal((8, 5))
    np.testing.assert_allclose(_times_stacked(blocks, Y), np.hstack(blocks) @ Y,
                               rtol=0, atol=1e-13)
    with pytest.raises(ValueError, match="8 columns"):
        _times_stacked(blocks, Y[:7])
