"""Block Lanczos with full reorthogonalisation and thick restarts: the engine
behind :func:`randla.svds` and :func:`randla.eigsh`.

The target M is symmetric: ``AᵀA`` (right singular vectors of A; a host
dense A applies both factors in one read, see ``Operand.normal_matmat``) or a
symmetric A itself (eigenvectors, largest magnitude first).  From a random
block of ``block`` columns the basis V grows by one block per step,
``W = M Q`` for the newest block Q, projected out of V (classical
Gram–Schmidt, a second time where the first cancelled much of a column, or
always on a GPU) and
factored ``W = Q' B``.  The projections
are the new columns of ``H = VᵀMV``, so the Rayleigh–Ritz pairs (θ, Vy)
come from an eigendecomposition of the small H, and ``M V = V H + Q' B E``
(E selects Q's columns) makes ``‖B y_Q‖`` the residual of each pair without
another product.  A few passes with small blocks do what a randomized SVD
needs several wide passes for: on the 20000 x 5000 benchmark (singular
values 1/i, k = 20) 18 steps with 4 columns (144 matvecs) bring every value
to relative accuracy 1e-8 (20 steps to scipy's ``svds`` tol 1e-8, residuals
at the rounding floor; 17 where only the values are wanted, see
``values_only``), where Lazy-EPSI from a 60-column sketch needed
444 matvecs.

When the basis reaches ``max_basis`` columns it is cut back to the leading
Ritz vectors (a thick restart), which keeps the Krylov information in them.
The Ritz pairs are checked at every restart and, between restarts, every
step where products cost more than a check (the eigendecomposition of H
and the tests on its pairs), every few steps where they cost less
(:func:`_check_gap`).

Repeated eigenvalues: a Krylov space started from a block of b columns holds
at most b directions of any eigenspace (in exact arithmetic), so a cluster
of b or more equal converged values above the k-th may be missing copies,
which would leave a smaller value in the top k.  When that happens a fresh
random block joins the newest one, and the iteration goes on with the wider
block until as many pairs beyond those already converged as the block
gained have converged too (pairs converged before the widening prove
nothing about the new directions), and no cluster above the k-th fills the
block.  One column cannot tell a double value from a single one, so with
b = 1 every run widens once, to two, and goes on for half its steps again;
that is why no default takes one column (see :func:`default_block`).
The settling steps are the price of finding copies ARPACK misses.  A
heuristic, not a proof: a copy whose start components are all tiny can
still surface late.  A basis that (nearly) contains the next product,
an invariant subspace, holds Ritz pairs that are exact by dimension count
rather than by convergence, and copies can hide behind them too: the run
then goes on for a few steps from the new (random) directions before any
stop (see ``exhausted``).

Where the products run on numba's threads the basis is a
:class:`ChunkedBasis` (``_cpu_basis.py``), whose projections run there too.
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import numpy as np

from .._operand import NonFiniteError
from ..sketch import as_rng_state
from ._cpu_basis import ChunkedBasis
from ._lowrank import _project_out
from ._operand import Operand

__all__ = ["LanczosResult", "block_lanczos"]

# Values within this relative distance (of the largest) count as one cluster.
_CLUSTER = 1e-8
# A projected block is projected again where a column kept less than this
# fraction of its length.
_DGKS = 1 / np.sqrt(2)


@dataclass(frozen=True)
class LanczosResult:
    """Leading Ritz pairs of M, largest first.

    ``values`` are θ (eigenvalues of M), ``vectors`` the n x k Ritz vectors
    (fewer only when ``maxiter`` stopped it before the basis had k columns),
    ``images`` A times them when kept (``normal`` with ``keep_images``),
    ``residuals`` the relative residuals ‖Mv − θv‖ / max|θ| (host float64),
    ``converged`` which reached their target (see :func:`block_lanczos`);
    ``steps`` products with M used;
    ``passes`` and ``matvecs`` the reads of A and columns multiplied (on a
    GPU also the product launched ahead of the last check, and of a check
    that widened the block, which go unused).
    """

    values: np.ndarray
    vectors: object
    images: object
    residuals: np.ndarray
    converged: np.ndarray
    steps: int
    passes: int
    matvecs: int


def block_lanczos(op: Operand, k: int, *, normal: bool, tol: float, maxiter: int,
                  block: int, max_basis: int, rng=None, floor: float = 0.0,
                  start=None, keep_images: bool = False,
                  values_only: bool = False) -> LanczosResult:
    """The k Ritz pairs of largest θ (``normal``: M = AᵀA) or largest |θ|
    (M = A, symmetric) whose residuals ‖Mv − θv‖ reach
    ``max(tol · |θ|, floor · max|θ|)`` (``normal``:
    ``max(tol · θ, floor · sqrt(θ · max θ))``, or the first where the
    estimates of θ at the rounding level of max θ stall: from half as many
    steps again, at least 5, after every pair met the first).

    ``tol`` is each pair's own relative accuracy, as ARPACK's (|θ̂ − θ| is
    at most the residual for symmetric M); ``floor`` keeps the target
    reachable where θ is near 0, at the rounding level of M v.

    ``block`` (≥ 1) columns per step, ``max_basis`` (≥ k + block) basis
    columns before a thick restart, at most ``maxiter`` steps.  ``start``,
    a nonzero n-vector, is the first column of the start block (the others
    random, from ``rng``).
    ``keep_images`` (with ``normal``) keeps A V, the first half of each
    product, so that A times the Ritz vectors costs no pass (m x basis
    entries: for dense A at most A's own size).

    ``values_only``: a pair whose vector nobody will use also counts as
    converged once its value is as accurate as that target promises.  A
    Ritz value is within ``‖r‖² / δ`` of an eigenvalue, δ its distance to
    the rest of the spectrum (the Kato–Temple bound), so the residual need
    only reach ``sqrt(e δ)`` for an error e of ``max(tol · |θ|,
    u sqrt(n) · max|θ|)`` (``normal``: ``u sqrt(n) · sqrt(θ · max θ)``,
    the rounding level of θ itself; u the unit roundoff).  δ is estimated
    from the other Ritz values, each moved towards θ by its own residual;
    an estimate of 0 (a cluster, a neighbour not resolved yet) leaves only
    the residual target, and every value does while a pair beyond the
    wanted ones could still outrank the last of them (|θ_j| plus its
    residual above it).  An eigenvalue with no Ritz value near it is not
    seen: with one column per step a near-copy hides in a value's Ritz
    vector, which the widening before any stop brings out (see
    :func:`_missing_copies`); a run cut short by ``maxiter`` reports as
    converged only the pairs whose residuals reached their target.  On the
    dense benchmark (20000 x 5000, singular values 1/i, k = 20) 17 steps
    instead of 20.
    """
    # Next to numba products (a dense sweep, sparse gathers) every BLAS call
    # of the run runs on one thread: OpenBLAS's workers spin for about 0.1 s
    # after a multithreaded call and stall the numba threads a scheduler tick
    # at a time (dense benchmark: 1.15 s, against 0.8-1.0 s with the loop on
    # one BLAS thread).  The start block's QR and the last products too: from
    # them alone the 20000 x 2000 sparse svds (k = 10) took 100-144 ms, its
    # 0.3 ms kernels 2-12 ms at times, against 32-39 ms without BLAS workers.
    block = max(1, min(block, op.shape[1]))
    numba_products = op.on_numba(block, normal)
    with op.backend.single_threaded_blas() if numba_products else contextlib.nullcontext():
        return _block_lanczos(op, k, normal=normal, tol=tol, maxiter=maxiter, block=block,
                              max_basis=max_basis, rng=rng, floor=floor, start=start,
                              keep_images=keep_images, numba_products=numba_products,
                              values_only=values_only)


def _block_lanczos(op: Operand, k: int, *, normal: bool, tol: float, maxiter: int,
                   block: int, max_basis: int, rng, floor: float, start,
                   keep_images: bool, numba_products: bool,
                   values_only: bool) -> LanczosResult:
    bk, xp = op.backend, op.xp
    n = op.shape[1]
    max_basis = min(n, max(max_basis, k + block))
    state = as_rng_state(rng)

    keep_images = keep_images and normal

    # In float32 the estimates go on falling well below the floor (the
    # rounding of a product is random, not its worst case), and a tenth of it
    # costs a step or two: the 40th right singular vector of a 1/i² spectrum
    # came out 0.1 off with the floor, 0.014 with a tenth.  In float64 the
    # floor is already below what the drop-ins promise; lower only costs steps.
    own_floor = floor / 10 if np.dtype(op.dtype) == np.float32 else floor

    def pair_floor(relative):
        # M = AᵀA applied as Aᵀ(A v): the rounding of a product with a vector
        # near v_i is about u σ₁ σ_i, not u σ₁² (a floor of floor · θ₁ for
        # every pair left the 16th right singular vector of a 10^(-i/3)
        # spectrum 9e-4 off at tol 0; with this one, 4e-7)
        return own_floor * np.sqrt(np.maximum(relative, 0.0)) if normal else own_floor
    images = []     # A V, block by block (after a restart, one block)
    value_floor = float(np.finfo(op.dtype).eps) / 2 * math.sqrt(n)

    def value_residuals(values, residuals, count):
        """The residuals at which the first ``count`` Ritz values are within
        their target (see block_lanczos's ``values_only``); values and
        residuals relative to max|θ|, for all pairs, leading first."""
        head = values[:count]
        error = np.maximum(tol * np.abs(head), value_floor * (
            np.sqrt(np.maximum(head, 0.0)) if normal else 1.0))
        distance = np.abs(head[:, None] - values[None, :]) - residuals[None, :]
        distance[np.arange(count), np.arange(count)] = np.inf
        gap = np.maximum(distance.min(axis=1, initial=np.inf), 0.0)
        # values count only once no pair beyond them could still outrank the
        # last: for eigsh the runner-up may have the other sign, far off in
        # value (a converged -0.6993 came back in place of +0.7, whose Ritz
        # value was still 0.6988 with residual 5.5e-3, once the values
        # above it had converged by this bound, long before their residuals)
        rivals = np.abs(values[count:]) + residuals[count:]
        if count and np.abs(head).min() <= rivals.max(initial=-np.inf):
            return np.zeros(count)
        return np.where(np.isfinite(gap), np.sqrt(error * gap), 0.0)

    def product(Q):
        """``(A Q, M Q)`` (normal), or ``(None, A Q)``."""
        if not normal:
            return None, op.matmat(Q, numba=numba_products)
        return op.normal_matmat(Q)

    def fresh(count, *bases):
        """count random orthonormal directions orthogonal to the bases."""
        nonlocal state
        Z, state = op.gaussian(count, state)
        for basis in bases:
            Z = _project_out(basis, Z)
        return bk.tall_qr(Z)[0]

    def leading(theta):
        return np.argsort(-(theta if normal else np.abs(theta)), kind="stable")

    if start is None:
        Q = fresh(block)
    else:
        columns = [xp.asarray(start, dtype=op.dtype).reshape(n, 1)]
        if block > 1:
            Z, state = op.gaussian(block - 1, state)
            columns.append(Z)
        Q = bk.tall_qr(xp.hstack(columns))[0]
    # Where the products run on numba's threads the basis projects there too;
    # next to BLAS products with A (small dense eigsh, LinearOperators)
    # OpenBLAS's spinning workers stall those kernels (eigsh of a dense 4000
    # x 4000 matrix took 1.9-2.2 s against 0.9 s when its products were
    # BLAS's), and BLAS projects as fast.
    basis = (ChunkedBasis(n, max_basis + block, Q)
             if numba_products and ChunkedBasis.serves(Q)
             else _Basis(bk, n, max_basis + block, Q))
    H = _Projected()
    # On a GPU the host's share of a step would leave the device idle: the
    # projections come to the host in one transfer, and before the host
    # checks the Ritz pairs (an eigendecomposition of H, about 0.5 ms on the
    # H200's host at d = 56, and the tests on its pairs) the next product is
    # launched, to run meanwhile
    # (in one process, alternating with the plain step: svds of the 20000 x
    # 5000 benchmark 29-48 against 32-53 ms, faster in 13 of 15 pairs; eigsh
    # of a dense 5000 x 5000, k = 6, 321-378 against 348-395 ms, 5 of 6).
    overlap = _overlapped(bk) and isinstance(basis, _Basis)
    # not a LinearOperator's: its products may be host code that runs at
    # once, and every check that stops or widens would waste a call of it
    launch_ahead = overlap and not bk.is_linear_operator(op.A)
    ahead = None       # (Q, product(Q)) launched before a check
    steps = 0
    extra = 0      # pairs beyond the k leading ones that must converge too
    deadline = None    # the step from which the floor of the largest value will do
    settle_until = 0   # after a widening, the step before which no stop
    exhausted = False  # whether a product lay (nearly) in V: settle once, not again
    first_stop = None  # the step at which the pairs first met their targets
    next_check = 0     # the next step that checks the Ritz pairs (restarts check too)
    step_seconds = _step_cost(op, normal)
    while True:
        AQ, W = ahead[1] if ahead is not None and ahead[0] is Q else product(Q)
        ahead = None
        if keep_images:
            images.append(AQ)
        steps += 1
        if overlap:
            W, C, before, gram = basis.project_twice(W)
        else:
            (W, C, before), gram = basis.project(W, _DGKS), None
        d, b = basis.used, Q.shape[1]
        if not np.isfinite(before).all():
            raise NonFiniteError("a product with A is not finite: A has NaN or inf "
                                 "entries, or entries so large that its products overflow")
        C = bk.to_host(C).astype(np.float64)
        size = float(np.linalg.norm(before))
        H.extend(C)
        Qn, Beta, weak = _extend(bk, basis.view, W, size, fresh, n - d, gram)
        full = d >= n    # V spans everything: the Ritz pairs are exact
        if weak and not full and not exhausted:
            # V is (nearly) invariant, so its Ritz pairs are exact by
            # dimension count, not by convergence: beside a value of many
            # copies (a bulk), a Krylov space short of a small invariant
            # subspace holds exact copies of its values too, and a mixture in
            # between can leave one out (eigsh of 0.5 I plus a rank-5 part
            # with eigenvalues -1, -1, -1, 0.1, -0.2, n = 200, k = 3:
            # -1, -1, 0.5 after two steps in 2 of 10 seeds).  The new
            # directions (random where W had none) get steps of their own.
            exhausted = True
            settle_until = max(settle_until, steps + max(5, steps // 2))
        restart_due = d + Qn.shape[1] > max(max_basis, k + extra + Qn.shape[1])
        if not (full or restart_due or steps >= maxiter or steps >= next_check):
            basis.append(Qn)
            Q = Qn
            continue
        Beta = bk.to_host(Beta).astype(np.float64)
        if launch_ahead and not full and steps < maxiter:
            ahead = (Qn, product(Qn))   # wasted if the run stops or widens here
        theta, Y = np.linalg.eigh(H.view())
        order = leading(theta)
        theta, Y = theta[order], Y[:, order]
        scale = max(float(np.max(np.abs(theta))), np.finfo(np.float64).tiny)
        # the leading k pairs, and after a widening as many more as it
        # added: a hidden copy shows up before those converge
        checked = np.full(k + extra, np.inf)
        seen = min(len(checked), d)
        pair_residuals = np.linalg.norm(Beta @ Y[d - b:], axis=0) / scale
        checked[:seen] = pair_residuals[:seen]
        if full:
            checked[:] = 0.0
        # each pair's own target; floor for pairs the basis does not hold yet
        relative = np.abs(theta) / scale
        reach = np.maximum(tol * relative, pair_floor(relative))
        unheld = np.full(len(checked) - seen, floor)
        target = np.r_[reach[:seen], unheld]
        # the floor of the largest value, which every estimate reaches
        loose = np.r_[np.maximum(tol * relative, floor)[:seen], unheld]
        proven, proven_loose = target, loose      # what the residuals alone prove
        if values_only:
            enough = np.r_[value_residuals(theta / scale, pair_residuals, seen),
                           np.zeros(len(checked) - seen)]
            target, loose = np.maximum(target, enough), np.maximum(loose, enough)
        if deadline is None and (checked <= loose).all():
            deadline = steps + max(5, steps // 2)
        if deadline is not None and steps >= deadline:
            # estimates of values at the rounding level of the largest
            # stall above their own floor (rank 5 and float32 noise
            # below: 3000 steps, then no convergence): take the loose one
            target, proven = loose, proven_loose
        residuals = checked[:k]
        converged = residuals <= target[:k]
        if full:
            break
        if steps >= maxiter:
            # out of steps: what converged is what the residuals prove, as
            # with vectors.  The gap bound trusts the block to hold every
            # copy near a value, which only the widening makes sure of (one
            # column per step, cut short: a Ritz value 4e-9 off, between 1
            # and 1 - 1e-8, was reported converged)
            converged = residuals <= proven[:k]
            # and before a hidden copy could be ruled out the lowest values
            # may stand in for missing copies (eigsh of 12 values 1, k=13,
            # maxiter=45 returned 1/12 as converged)
            if converged.all():
                unproven = (b if steps < settle_until
                            else _missing_copies(theta[:k], b, normal, floor, tol))
                converged[k - min(k, unproven):] = False
            break
        next_check = steps + _check_gap(step_seconds(d, b), d, steps)
        # never past a pending deadline or the end of a settling window
        # (a restart inside it checks, and its gap skipped that end: eigsh
        # of groups of 5 equal values, k=60, took 659 steps, 541 with this)
        for due in (deadline, settle_until):
            if due is not None and due > steps:
                next_check = min(next_check, due)
        wider = 0
        if (checked <= target).all() and steps >= settle_until:
            wider = _missing_copies(theta[:k], b, normal, floor, tol)
            if not wider:
                break
            # the fresh columns need steps of their own before a hidden
            # copy shows: stopping once the leading pairs converged again
            # missed the second of two values 1 in 8 of 20 eigsh runs
            # with one column per step.  Half the steps the first
            # convergence took (not of all steps so far: spectra of many
            # small clusters widen again and again)
            first_stop = steps if first_stop is None else first_stop
            settle_until = steps + max(5, first_stop // 2)
            next_check = settle_until    # no stop before it
            if d + Qn.shape[1] + wider > n:
                # no room for a wider block: the basis grows to the whole
                # space, where the Ritz pairs are exact (stopping here
                # gave 0.80 for the last of 12 copies of 1 at n = 40)
                wider = n - d - Qn.shape[1]
                max_basis = n
        if wider > 0:
            # a cluster may hide more copies: a fresh block widens the next
            # step, and the iteration goes on until pairs that have not
            # converged yet do (those already converged prove nothing)
            beyond = np.linalg.norm(Beta @ Y[d - b:, len(checked):d], axis=0) / scale
            reached = beyond <= reach[len(checked):d]
            extra += int(np.argmin(np.r_[reached, False])) + wider
            Qn = xp.hstack([Qn, fresh(wider, basis.view(), Qn)])
            # and the room a run for k + extra pairs would have had (a
            # basis of k + extra + block columns restarted every step)
            max_basis = max(max_basis, default_max_basis(k + extra, Qn.shape[1], n,
                                                           np.dtype(op.dtype).itemsize))
        # room for the pairs that must converge and the next block
        max_basis = max(max_basis, k + extra + Qn.shape[1])
        if d + Qn.shape[1] > max_basis:
            # thick restart: keep the leading Ritz vectors (those that must
            # converge, and half the room), continue from Qn
            room = max_basis - Qn.shape[1]
            keep = min(d, room, max(k + extra, (room + k + extra) // 2))
            Yk = xp.asarray(Y[:, :keep], dtype=op.dtype)
            basis.restart(Yk)
            if keep_images:
                images = [_times_stacked(images, Yk)]
            H.restart(theta[:keep])
        basis.append(Qn)
        Q = Qn
    Yk = xp.asarray(Y[:, :k], dtype=op.dtype)
    vectors = basis.times(Yk)
    AV = _times_stacked(images, Yk) if keep_images else None
    return LanczosResult(theta[:k].astype(np.float64), vectors, AV, residuals, converged,
                         steps, op.passes, op.matvecs)


def _times_stacked(blocks, Y):
    """``[B1 B2 ...] @ Y`` for blocks of the same rows, block by block: the
    stacked copy would cost more than the products (17 blocks of 20000 x 4,
    one per step of the dense svds benchmark: 30-40 ms to stack into fresh
    memory, then 6 ms for the product; 4 ms by blocks)."""
    ends = np.cumsum([B.shape[1] for B in blocks])
    if ends[-1] != Y.shape[0]:
        raise ValueError(f"the blocks have {ends[-1]} columns in all; Y has {Y.shape[0]} rows")
    total = blocks[0] @ Y[:ends[0]]
    for B, end in zip(blocks[1:], ends[1:]):
        total += B @ Y[end - B.shape[1]:end]
    return total


class _Projected:
    """H = VᵀMV (host float64), grown by the columns of each new block in a
    store with room to spare: rebuilding the d x d matrix every step cost
    O(d²) and three fresh arrays (0.3 of 1.3 s in a 682-step svds with
    basis up to 400)."""

    def __init__(self):
        self.store = np.zeros((0, 0))
        self.size = 0

    def view(self):
        return self.store[:self.size, :self.size]

    def extend(self, C):
        """Append the new block's columns C (d x b, its projections on V,
        the new block's last): the new rows are Cᵀ, and the b x b corner is
        made symmetric as (C_corner + C_cornerᵀ) / 2."""
        d, b = C.shape
        if d > self.store.shape[0]:
            grown = np.zeros((2 * d, 2 * d))
            grown[:self.size, :self.size] = self.view()
            self.store = grown
        old = d - b
        self.store[:old, old:d] = C[:old]
        self.store[old:d, :old] = C[:old].T
        corner = C[old:]
        self.store[old:d, old:d] = (corner + corner.T) / 2
        self.size = d

    def restart(self, theta):
        """H of the basis cut back to Ritz vectors with values theta."""
        keep = len(theta)
        self.store[:keep, :keep] = np.diag(theta)
        self.size = keep


class _Basis:
    """The orthonormal basis, grown in place: columns of a Fortran-ordered
    store (no copy of the whole basis per step, and each block of columns
    contiguous for the products).  Where the products run on numba's threads,
    host float data keeps a :class:`ChunkedBasis` instead, with the same
    methods."""

    def __init__(self, bk, n, capacity, first):
        self.bk = bk
        self.xp = xp = bk.xp
        self.store = xp.empty((n, max(capacity, first.shape[1])), dtype=first.dtype, order="F")
        self.used = 0
        self.append(first)

    def view(self):
        return self.store[:, :self.used]

    def append(self, Q):
        end = self.used + Q.shape[1]
        if end > self.store.shape[1]:
            grown = self.xp.empty((self.store.shape[0], 2 * end), dtype=self.store.dtype,
                                  order="F")
            grown[:, :self.used] = self.view()
            self.store = grown
        self.store[:, self.used:end] = Q
        self.used = end

    def times(self, Y):
        return self.view() @ Y

    def restart(self, Y):
        """Keep the columns V Y."""
        kept = self.view() @ Y
        self.store[:, :kept.shape[1]] = kept
        self.used = kept.shape[1]

    def project(self, W, dgks: float):
        """W with the span of V removed, Gram–Schmidt once, or twice where a
        column kept less than ``dgks`` of its norm (Daniel–Gragg–Kaufman–
        Stewart: then rounding left parts along V).

        Returns ``(W', C, before)``: ``W = V C + W'`` (C summed over both
        passes) and the column norms of W (host float64)."""
        xp, V = self.xp, self.view()
        before = self.bk.to_host(xp.linalg.norm(W, axis=0)).astype(np.float64)
        if not np.isfinite(before).all():       # the caller raises; no products with NaN
            return W, xp.zeros((V.shape[1], W.shape[1]), dtype=W.dtype), before
        C = V.T @ W
        W = W - V @ C
        after = self.bk.to_host(xp.linalg.norm(W, axis=0)).astype(np.float64)
        if (after < dgks * before).any():
            C2 = V.T @ W
            W = W - V @ C2
            C = C + C2
        return W, C, before

    def project_twice(self, W):
        """As :meth:`project`, with both passes always (on a GPU a second
        pass costs less than the synchronisation that would decide it), and
        what the host needs from the step in one transfer.

        Returns ``(W', C, before, G)``: project's three (C on the host,
        float64) and ``G = W'ᵀ W'``, on the host in W's dtype, the Gram
        matrix that ``tall_qr`` factors first."""
        V = self.view()
        d, b = V.shape[1], W.shape[1]
        C = V.T @ W
        projected = W - V @ C
        C2 = V.T @ projected
        projected -= V @ C2
        packed = self.bk.to_host(self.xp.concatenate(
            [C + C2, projected.T @ projected, W.T @ W]))
        before = np.sqrt(np.diag(packed[d + b:]).astype(np.float64))
        return projected, packed[:d].astype(np.float64), before, packed[d:d + b]


def _overlapped(bk) -> bool:
    """Whether the host's work of a Lanczos step runs beside the device's
    (see ``overlap`` in :func:`_block_lanczos`): on a GPU."""
    return bk.is_gpu


# R's diagonal ratio in W = Q R below which Q is projected out of V once more.
_REPROJECT_BELOW = 1e-2


def _extend(bk, view, W, size, fresh, room, gram=None):
    """Orthonormal Q' ⟂ V, at most ``room`` columns, B with ``W ≈ Q' B``
    (W projected out of V twice; ``size``: its norm before), and whether W
    had a direction of weight at most ``sqrt(u) size`` (V nearly invariant:
    what W adds there is rounding).  ``view()`` gives V, which only the
    rare second branch below reads (a host basis copies it out); ``gram``,
    ``Wᵀ W`` where the projection computed it (see ``tall_qr``).

    A well-conditioned W that kept a fair part of its size gives Q' from its
    QR factorisation: W's rounding along V grows by R's condition number in
    Q', so that number is held to u^(-1/4) (1e4 in float64; in float32 a
    bound of 1e4 let it reach 1e-3, and after a few dozen steps the basis of
    a float32 cluster of 79 equal values was no basis, with values of 6.6
    for 1), and where it exceeds about 100 Q is projected out of V once
    more.  Otherwise (an invariant subspace, exact low rank, V
    nearly filling the space) W's weak directions are rounding noise, not
    ⟂ V.  W's singular directions, heaviest first, are projected once more
    out of V and the directions kept before; those that weigh no more than
    rounding, or lose most of their length (their weight can only be
    rounding, as W ⟂ V), are replaced by fresh random ones (``fresh(count,
    *bases)``), as many as there is room for, with zero rows of B; the kept
    ones' rows are ``Q'ᵀ W``.  A Householder factor of W would not do: for a
    zero column of W it holds an arbitrary direction that other columns
    may weigh on, and dropping it broke ``M V = V H + Q' B E`` by 1e-2
    (svds from a ``v0`` in A's null space with two columns per step, which
    then never converged).
    """
    xp = bk.xp
    if room == 0:
        return (xp.zeros((W.shape[0], 0), dtype=W.dtype), xp.zeros((0, W.shape[1]), W.dtype),
                True)
    Q, B = bk.tall_qr(W, gram=gram)
    diagonal = np.abs(np.diag(bk.to_host(B)))
    eps = float(np.finfo(W.dtype).eps)
    if Q.shape[1] <= room and diagonal.min() > max(eps ** 0.25 * diagonal.max(),
                                                   eps ** 0.5 * size):
        if diagonal.min() < _REPROJECT_BELOW * diagonal.max():
            # Q's part along V, W's rounding times R's condition number, is
            # projected out once more (the last block that fills an 80-row
            # space: eigsh's vectors, k = 59, 2.2e-12 from orthonormal, 2.4e-15
            # with this).  Rare: R's diagonal ratio stayed above 0.1 in the
            # runs of a dense svds, a grid Laplacian and a random sparse eigsh.
            V = view()
            Q, R = bk.tall_qr(Q - V @ (V.T @ Q))
            B = R @ B
        return Q, B, False
    U, weights, _ = bk.svd(W)
    weights = bk.to_host(weights).astype(np.float64)
    weak = bool(weights.min(initial=np.inf) <= eps ** 0.5 * size) or W.shape[1] > room
    V = view()
    kept = xp.zeros((V.shape[0], 0), dtype=V.dtype)
    for j in np.flatnonzero(weights > eps * size):
        if kept.shape[1] == room:
            break
        # one direction at a time, projected twice out of V and the kept
        # ones: no noise direction ahead of it can leave a part along V in it
        p = U[:, j:j + 1]
        for _ in range(2):
            p = p - V @ (V.T @ p)
            p = p - kept @ (kept.T @ p)
        length = float(xp.linalg.norm(p))
        if length >= 0.5:
            kept = xp.hstack([kept, p / length])
    # W ⟂ V, so what lies outside the kept directions is rounding
    B = kept.T @ W
    extra = min(W.shape[1], room) - kept.shape[1]
    if extra == 0:
        return kept, B, weak
    zeros = xp.zeros((extra, B.shape[1]), B.dtype)
    return xp.hstack([kept, fresh(extra, V, kept)]), xp.concatenate([B, zeros]), weak


# Seconds an eigendecomposition of the d x d H takes, per d³ (numpy's eigh
# with vectors on one thread of the CI machine: 16 ms at d = 400, 0.9 at 100),
# and a check's share that does not grow with d (the call, the residuals,
# the cluster tests: 150-280 microseconds a check with d of 20 to 60).
_EIGH_SECONDS = 0.25e-9
_CHECK_SECONDS = 2e-4
# A step's cost without a check: Python's share (about 340 microseconds a
# step of a 2000 x 800 sparse svds), and per column multiplied (per stored
# entry of A, dense or sparse, and per entry of the basis projected).
_STEP_SECONDS = 3e-4
_DENSE_ENTRY_SECONDS = 5e-11
_SPARSE_ENTRY_SECONDS = 5e-10
_BASIS_ENTRY_SECONDS = 2e-10


def _step_cost(op: Operand, normal: bool):
    """``cost(d, b)``: the seconds, roughly, of a step with b columns and a
    basis of d, without checking the Ritz pairs; infinite for a
    LinearOperator, whose products may cost anything."""
    A = op.A
    if op.backend.is_linear_operator(A):
        return lambda d, b: math.inf
    m, n = op.shape
    per_column = (_SPARSE_ENTRY_SECONDS * A.nnz if op.backend.issparse(A)
                  else _DENSE_ENTRY_SECONDS * m * n) * (2 if normal else 1)
    return lambda d, b: _STEP_SECONDS + b * (per_column + _BASIS_ENTRY_SECONDS * n * d)


def _check_gap(step_seconds: float, d: int, steps: int) -> int:
    """Steps until the next check of the Ritz pairs.

    Each check is an eigendecomposition of the d x d H and the tests on its
    pairs, E seconds; a step costs S.  Checking every g steps costs about
    (steps / g) E over the run, and the steps past convergence up to g S:
    g = sqrt(steps E / S) balances the two, at most an eighth of the steps
    taken so far.  Where steps are cheap this matters (svds of a sparse
    2000 x 800 matrix with 4 nonzeros per row, k = 100: 3.4 of 4.4 s went
    into eigendecompositions of H, one per step; with k = 6, H of 20
    columns, checks every step took 94 ms of which 32 in the checks).
    Products of a dense 20000 x 5000 A, or of a sparse one with 10^7
    nonzeros, cost far more than H's: every step checks.
    """
    check_seconds = _CHECK_SECONDS + _EIGH_SECONDS * float(d) ** 3
    return max(1, min(steps // 8, int(math.sqrt(steps * check_seconds / step_seconds))))


def _missing_copies(theta, block, normal, floor=0.0, tol=0.0):
    """Columns to add when the converged leading values may hide copies: a
    cluster above the k-th value with at least ``block`` members (it may
    have more, unseen), or any value at all with one column, which cannot
    tell a double value from a single one; 0 otherwise.  ``theta`` comes
    largest first (by size for eigsh, where λ and −λ are no cluster).

    Widths are relative to each value, and at least ``_CLUSTER`` or the
    rounding ``floor`` times the largest (float32: copies of 1 came out
    1.0000001 and 0.99999994, and a fifth copy went unseen with a block of
    four).  Three kinds of cluster count:

    - values equal to the rounding level, more than ``tol`` (the accuracy)
      above the k-th value;
    - values equal within ``tol`` with a step down wider than that below
      them, before the k-th value (eigsh at tol 1e-3 of ten values 1
      returned 0.9 and 0.887 for two of them).  Without such a step the
      spectrum is dense at the scale of tol, a missed value moves the
      answers by less than it, and widening only multiplies the work (svds
      of singular values linspace(1, 0.5, 800), k=100, tol=0.1: 3.5 s and
      values to 1e-15, against 0.44 s for ARPACK);
    - near-copies, runs of values each within ``3 tol`` of the next, more
      than that above the k-th: a Ritz vector that mixes two values
      ``delta`` apart has a residual of up to ``delta / 2``, so a block can
      fill with such mixtures and miss one (svds at tol 1e-3, tol² on θ, of
      singular values [1, 1, 1, 1, 0.999999, 0.9, ...] returned 0.9 for the
      fifth in 7 of 20 runs).  A run that reaches the k-th value is a dense
      spectrum, where a missed value moves the answers by less than a step.

    Widths of tol times the largest value made every small value of a
    decaying spectrum one cluster, and the block widened again and again
    (svds of 1/i, k=100, tol=1e-2: 2400 matvecs where 384 suffice).
    """
    if block == 1:
        return 1
    size = theta if normal else np.abs(theta)
    width = max(_CLUSTER, floor) * max(float(np.max(size)), np.finfo(np.float64).tiny)
    accurate = np.maximum(width, tol * size)
    near = np.maximum(width, 3 * tol * size)
    lowest = size[-1]
    # copies to the rounding level, above the k-th value by more than its accuracy
    biggest = max((int(np.count_nonzero(np.abs(theta - value) <= width))
                   for value, above in zip(theta, size - lowest > accurate) if above),
                  default=0)
    # values equal within their accuracy, with a step wider than that below
    # them: in a dense spectrum, with no such step down to the k-th value, a
    # missed value moves the answers by less than the accuracy
    wide = np.r_[(size[:-1] - size[1:]) > accurate[1:], False]
    wide_below = np.logical_or.accumulate(wide[::-1])[::-1]
    for value, reach in zip(theta, accurate):
        inside = np.abs(theta - value) <= reach
        if wide_below[np.flatnonzero(inside).max()]:
            biggest = max(biggest, int(np.count_nonzero(inside)))
    # near-copies: runs of one sign (θ ≥ 0 for svds), by size
    for group in ((np.arange(len(theta)),) if normal
                  else (np.flatnonzero(theta > 0), np.flatnonzero(theta < 0))):
        if group.size == 0:
            continue
        sizes = size[group]
        # a run breaks where a step down is wider than the lower value's width
        breaks = np.flatnonzero(sizes[:-1] - sizes[1:] > near[group[1:]])
        for first, last in zip(np.r_[0, breaks + 1], np.r_[breaks, group.size - 1]):
            if sizes[last] - lowest > near[group[last]]:
                biggest = max(biggest, int(last - first + 1))
    return block if biggest >= block else 0


# Basis columns kept at least, where they fit in _WIDE_BASIS_BYTES.
_WIDE_BASIS_COLUMNS = 100
_WIDE_BASIS_BYTES = 1 << 29


def default_max_basis(k: int, block: int, n: int, itemsize: int = 8) -> int:
    """Basis columns kept before a thick restart: 4k, 2k + 12 blocks, or
    100 where that is more and 100 columns of n entries take at most 512 MiB
    (fewer where they would take more, down to the first two).

    Runs that converge before the basis fills never restart, whatever this
    is; the others are those with slow convergence, where each restart
    throws away Krylov information, and a wider basis took fewer steps
    though each step projects out of more columns (best of a few runs
    each, on the CI machine: eigsh of the ``bench_eig.SparseEigsh`` 2 x
    10^5 matrix, k = 10, 565 steps and 22.4 s with 44 columns, 361 and
    16.3 s with 80, 347 and 18.0 s with 100; the 2 x 10^4 one 1.40, 1.13
    and 1.09 s; the ``DenseEigsh`` 5000 x 5000 matrix, k = 6, 252, 203 and
    142 steps, 2.29, 1.77 and 1.36 s with 60, 80 and 100; a 100 x 100 grid
    Laplacian, k = 6, 1.85 s with 36 and 1.23 s with 100).
    """
    base = max(4 * k, 2 * k + 12 * block)
    wide = min(_WIDE_BASIS_COLUMNS, _WIDE_BASIS_BYTES // max(1, itemsize * n))
    return int(min(n, max(base, wide)))


def default_block(op: Operand, k: int, normal: bool) -> int:
    """Columns per step.

    A wider block takes fewer steps but more matvecs, and every step
    projects its block out of the whole basis (2 to 4 reads of n x basis).
    Where a product reads many entries per basis row (dense A; sparse A with
    ``nnz / n`` of 64 or more per product) 4 columns pay: 15 steps instead of
    about 50 on the dense benchmark, 14 against 35 (1.1 against 1.6 s) on the
    sparse one (measured when tol bounded residuals by tol max|θ|; with each
    value's own tol the dense benchmark takes 18 steps, with svds's tol²
    20).  Where products are cheap the projections weigh as much as
    the products, and two columns are fastest: one column must widen to two
    once it converges (it cannot tell a double value from a single one,
    see :func:`_missing_copies`) and go on for half its steps again, so two
    from the start take fewer products as well as fewer steps
    (``bench_eig.SparseEigsh``, a 2 x 10^5 sparse symmetric matrix with 20
    nonzeros per row, k = 10, one run each in one process: 14.3 s with two,
    19.2 s with one, 20.6 s with three, ARPACK 20.3 s; in the same process,
    eigsh of the Laplacian of a 100 x 100 grid, k = 6: 2.4 against 3.8 s,
    and svds of a 10^5 x 2 x 10^4 matrix with 5 nonzeros per row, k = 6:
    1.6 against 2.8 s).
    On a GPU each step's launches and syncs cost more than its columns,
    yet wider blocks than these did not pay there either: the runs that take
    many steps are bound by the basis, not the block (H200: eigsh of a dense
    5000 x 5000, k = 6, 174 steps and 242 ms with 4 columns, 179 and 288-443
    ms with 8, 125 and 353 ms with 16; the sparse ``SparseEigsh`` 2 x 10^4,
    k = 10, 211 steps and 300 ms with 4, 228 and 362-382 ms with 8).
    """
    if op.backend.is_gpu:
        return int(min(16, max(4, math.ceil(k / 2))))
    if op.backend.issparse(op.A):
        per_row = (2 if normal else 1) * op.A.nnz / max(op.shape[1], 1)
        return 4 if per_row >= 64 else 2
    return 4
