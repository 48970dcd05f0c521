"""The row-major kernels of ``_cpu_sweep`` that dot rows of A with columns
of a block: the sweep's (``row_sweep``) and the product's (``rows_dot``).

Both take register tiles of four rows of A against four columns of the
block, then two (the sweep) or one, so each vector loaded feeds several
multiply-adds; the tiles are inlined into each kernel (numba IR), so they
compile with its fast-math flags.  ``_basis_kernels`` takes the four-by-two
and four-by-one tiles too, for the Lanczos basis's ``Vᵀ W``.  The tiles are
alike on purpose: their shapes are the register blocking.  The kernels live
here, at module level, because numba caches a kernel that calls other
functions only when both are module-level (compiled inside ``_cpu_sweep``'s
lazy factories, every process compiled them again: about 9 s).  Imported on
the first sweep or product, never with ``randla``.
"""
from numba import njit, prange

from ._cpu_sweep import _FASTMATH, FULL, LOWER


@njit(inline="always", cache=True)
def four_by_four(a0, a1, a2, a3, Zt, c, out, r):
    """``out[c + q, r + p] = a_p · Zt[c + q]`` for p, q in 0..3."""
    z0 = Zt[c]
    z1 = Zt[c + 1]
    z2 = Zt[c + 2]
    z3 = Zt[c + 3]
    s00 = s01 = s02 = s03 = 0.0
    s10 = s11 = s12 = s13 = 0.0
    s20 = s21 = s22 = s23 = 0.0
    s30 = s31 = s32 = s33 = 0.0
    for j in range(a0.shape[0]):
        v0, v1, v2, v3 = a0[j], a1[j], a2[j], a3[j]
        w0, w1, w2, w3 = z0[j], z1[j], z2[j], z3[j]
        s00 += v0 * w0
        s01 += v0 * w1
        s02 += v0 * w2
        s03 += v0 * w3
        s10 += v1 * w0
        s11 += v1 * w1
        s12 += v1 * w2
        s13 += v1 * w3
        s20 += v2 * w0
        s21 += v2 * w1
        s22 += v2 * w2
        s23 += v2 * w3
        s30 += v3 * w0
        s31 += v3 * w1
        s32 += v3 * w2
        s33 += v3 * w3
    out[c, r], out[c, r + 1], out[c, r + 2], out[c, r + 3] = s00, s10, s20, s30
    out[c + 1, r], out[c + 1, r + 1] = s01, s11
    out[c + 1, r + 2], out[c + 1, r + 3] = s21, s31
    out[c + 2, r], out[c + 2, r + 1] = s02, s12
    out[c + 2, r + 2], out[c + 2, r + 3] = s22, s32
    out[c + 3, r], out[c + 3, r + 1] = s03, s13
    out[c + 3, r + 2], out[c + 3, r + 3] = s23, s33


@njit(inline="always", cache=True)
def four_by_two(a0, a1, a2, a3, Zt, c, out, r, zero=0.0):
    """``out[c + q, r + p] = a_p · Zt[c + q]`` for p in 0..3, q in 0..1,
    summed in ``zero``'s type (float64 unless given)."""
    z0 = Zt[c]
    z1 = Zt[c + 1]
    s00 = s01 = s10 = s11 = zero
    s20 = s21 = s30 = s31 = zero
    for j in range(a0.shape[0]):
        v0, v1, v2, v3 = a0[j], a1[j], a2[j], a3[j]
        w0, w1 = z0[j], z1[j]
        s00 += v0 * w0
        s01 += v0 * w1
        s10 += v1 * w0
        s11 += v1 * w1
        s20 += v2 * w0
        s21 += v2 * w1
        s30 += v3 * w0
        s31 += v3 * w1
    out[c, r], out[c, r + 1], out[c, r + 2], out[c, r + 3] = s00, s10, s20, s30
    out[c + 1, r], out[c + 1, r + 1] = s01, s11
    out[c + 1, r + 2], out[c + 1, r + 3] = s21, s31


@njit(inline="always", cache=True)
def four_by_one(a0, a1, a2, a3, z, out, c, r, zero=0.0):
    """``out[c, r + p] = a_p · z`` for p in 0..3, summed in ``zero``'s type."""
    s0 = s1 = s2 = s3 = zero
    for j in range(a0.shape[0]):
        w = z[j]
        s0 += a0[j] * w
        s1 += a1[j] * w
        s2 += a2[j] * w
        s3 += a3[j] * w
    out[c, r], out[c, r + 1], out[c, r + 2], out[c, r + 3] = s0, s1, s2, s3


@njit(parallel=True, cache=True, fastmath=_FASTMATH)
def row_sweep(A, Zt, Bt, has_b, T, partial, rows, chunk):
    m, n = A.shape
    k = Zt.shape[0]
    for blk in prange(partial.shape[0]):
        g = partial[blk]
        g[:, :] = 0.0
        r1 = min(m, (blk + 1) * rows)
        i = blk * rows
        while i + 8 <= r1:     # eight rows: read from memory once, reused from cache
            for r in range(i, i + 8, 4):
                # T[:, r:r+4]: tiles of four rows by four columns, so each
                # vector of A or Zt loaded feeds four multiply-adds
                a0 = A[r]
                a1 = A[r + 1]
                a2 = A[r + 2]
                a3 = A[r + 3]
                c = 0
                while c + 4 <= k:
                    four_by_four(a0, a1, a2, a3, Zt, c, T, r)
                    c += 4
                if c + 2 <= k:     # two or three left: four rows by two columns
                    # (k = 2 or 3 at 20000 x 5000: 34 and 42 ms against 37
                    # and 50 with a column at a time)
                    four_by_two(a0, a1, a2, a3, Zt, c, T, r)
                    c += 2
                while c < k:
                    four_by_one(a0, a1, a2, a3, Zt[c], T, c, r)
                    c += 1
            if has_b:
                for c in range(k):
                    for r in range(i, i + 8):
                        T[c, r] = Bt[c, r] - T[c, r]
            # g += T[:, i:i+8] A[i:i+8], in column chunks that stay in L1
            # while every column of T goes over them
            for j0 in range(0, n, chunk):
                j1 = min(n, j0 + chunk)
                a0 = A[i, j0:j1]
                a1 = A[i + 1, j0:j1]
                a2 = A[i + 2, j0:j1]
                a3 = A[i + 3, j0:j1]
                a4 = A[i + 4, j0:j1]
                a5 = A[i + 5, j0:j1]
                a6 = A[i + 6, j0:j1]
                a7 = A[i + 7, j0:j1]
                c = 0
                while c + 2 <= k:      # two columns per trip: each A load feeds
                    # both; four rows at a time keep the eight sums of T and
                    # the four rows of A within 16 vector registers
                    t = T[c]
                    u = T[c + 1]
                    gc = g[c, j0:j1]
                    gd = g[c + 1, j0:j1]
                    for h in range(i, i + 8, 4):
                        y0, y1, y2, y3 = t[h], t[h + 1], t[h + 2], t[h + 3]
                        x0, x1, x2, x3 = u[h], u[h + 1], u[h + 2], u[h + 3]
                        b0 = A[h, j0:j1]
                        b1 = A[h + 1, j0:j1]
                        b2 = A[h + 2, j0:j1]
                        b3 = A[h + 3, j0:j1]
                        for j in range(j1 - j0):
                            v0, v1, v2, v3 = b0[j], b1[j], b2[j], b3[j]
                            gc[j] += (y0 * v0 + y1 * v1) + (y2 * v2 + y3 * v3)
                            gd[j] += (x0 * v0 + x1 * v1) + (x2 * v2 + x3 * v3)
                    c += 2
                if c < k:
                    t = T[c]
                    y0, y1, y2, y3 = t[i], t[i + 1], t[i + 2], t[i + 3]
                    y4, y5, y6, y7 = t[i + 4], t[i + 5], t[i + 6], t[i + 7]
                    gc = g[c, j0:j1]
                    for j in range(j1 - j0):
                        gc[j] += (((y0 * a0[j] + y1 * a1[j]) + (y2 * a2[j] + y3 * a3[j]))
                                  + ((y4 * a4[j] + y5 * a5[j]) + (y6 * a6[j] + y7 * a7[j])))
            i += 8
        while i < r1:
            for c in range(k):
                z = Zt[c]
                s = 0.0
                for j in range(n):
                    s += A[i, j] * z[j]
                if has_b:
                    s = Bt[c, i] - s
                T[c, i] = s
                gc = g[c]
                for j in range(n):
                    gc[j] += s * A[i, j]
            i += 1


# Full M: tiles of four rows by four columns of Xt, as in the sweep, so
# each vector loaded feeds four multiply-adds (5000 x 5000 by 4 columns:
# 5.4 against 12.1 ms a row at a time, one ``M @ x`` 5.7 ms; 8 columns
# 9.6 ms).
@njit(parallel=True, cache=True, fastmath=_FASTMATH)
def rows_dot(M, Xt, out, triangle, bounds):
    cols = M.shape[1]
    k = Xt.shape[0]
    for chunk in prange(len(bounds) - 1):
        first = bounds[chunk]
        if triangle == FULL:
            while first + 4 <= bounds[chunk + 1]:
                r = first
                a0 = M[r]
                a1 = M[r + 1]
                a2 = M[r + 2]
                a3 = M[r + 3]
                c = 0
                while c + 4 <= k:
                    four_by_four(a0, a1, a2, a3, Xt, c, out, r)
                    c += 4
                while c < k:
                    four_by_one(a0, a1, a2, a3, Xt[c], out, c, r)
                    c += 1
                first += 4
        for i in range(first, bounds[chunk + 1]):
            j1 = min(i + 1, cols) if triangle == LOWER else cols
            # slices, so the loops vectorise (a loop over part of a
            # row ran six times slower)
            row = M[i, :j1]
            for c in range(Xt.shape[0]):
                x = Xt[c, :j1]
                s = 0.0
                for j in range(row.shape[0]):
                    s += row[j] * x[j]
                out[c, i] = s
