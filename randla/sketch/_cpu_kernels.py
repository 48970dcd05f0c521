"""Numba kernels of the sketch layer: Philox4x32-10 streams and SASO application.

Imported lazily (on first generation), so ``import randla`` never loads numba.

Counter layout (shared with the CUDA kernels, see ``_gpu_kernels.py``): a call
with stream index ``t`` evaluates Philox4x32-10 at the 128-bit counter
``state.counter + t`` and yields four 32-bit words, the "lanes".

* Dense operators lay entries along their long ("major") axis: entry
  ``(minor i, major j)`` takes lane ``j % 4`` of stream index
  ``i * ceil(n_major / 4) + j // 4``.  Every block is a pure function of its
  indices, and a smaller operator is a leading slab of a larger one with
  the same major axis and length.
* Sparse operators (SASO columns, LASO rows) use ``ceil(2k / 4)`` stream
  indices per sparse vector: words ``0..k-1`` pick the positions, words
  ``k..2k-1`` the signs.
* Sign vectors and row samples use one word per entry: entry ``i`` takes
  lane ``i % 4`` of stream index ``i // 4``.
"""
import inspect

import numpy as np
from llvmlite import ir
from numba import njit, prange, types, uint64
from numba.core import cgutils
from numba.extending import intrinsic

_MASK32 = uint64(0xFFFFFFFF)
_SHIFT32 = uint64(32)
_M0 = uint64(0xD2511F53)
_M1 = uint64(0xCD9E8D57)
_W0 = uint64(0x9E3779B9)
_W1 = uint64(0xBB67AE85)
_TWO_PI = 2.0 * np.pi
_INV_2_32 = 1.0 / 4294967296.0
_SQRT3 = np.sqrt(3.0)

GAUSSIAN, RADEMACHER, UNIFORM = 0, 1, 2


@njit(inline="always", cache=True)
def philox4x32_10(c0, c1, c2, c3, k0, k1):
    """Philox4x32-10 of the counter words (c0..c3) under key (k0, k1).

    Words are carried in uint64 holding 32-bit values, so the 32x32 -> 64 bit
    product gives mulhi and mullo directly.
    """
    for _ in range(10):
        p0 = _M0 * c0
        p1 = _M1 * c2
        c0, c1, c2, c3 = ((p1 >> _SHIFT32) ^ c1 ^ k0), p1 & _MASK32, \
                         ((p0 >> _SHIFT32) ^ c3 ^ k1), p0 & _MASK32
        k0 = (k0 + _W0) & _MASK32
        k1 = (k1 + _W1) & _MASK32
    return c0, c1, c2, c3


@njit(inline="always", cache=True)
def stream_words(ctr_lo, ctr_hi, t, k0, k1):
    """The four words at stream index t past the 128-bit counter (ctr_lo, ctr_hi)."""
    lo = ctr_lo + t
    hi = ctr_hi + (uint64(1) if lo < ctr_lo else uint64(0))
    return philox4x32_10(lo & _MASK32, lo >> _SHIFT32, hi & _MASK32, hi >> _SHIFT32, k0, k1)


@njit(cache=True)
def philox_block(counters_lo, counters_hi, k0, k1):
    """Raw Philox output for arrays of 128-bit counters; for known-answer tests."""
    n = counters_lo.shape[0]
    out = np.empty((n, 4), dtype=np.uint32)
    for i in range(n):
        lo = counters_lo[i]
        hi = counters_hi[i]
        w = philox4x32_10(lo & _MASK32, lo >> _SHIFT32, hi & _MASK32, hi >> _SHIFT32,
                          uint64(k0), uint64(k1))
        for lane in range(4):
            out[i, lane] = w[lane]
    return out


@njit(inline="always", cache=True)
def unit_open(x):
    """A 32-bit word mapped to (0, 1), never 0 or 1."""
    return (np.float64(x) + 0.5) * _INV_2_32


# Box-Muller with log, sin and cos written as polynomials and every branch a
# select, so the loop over Philox outputs vectorises (libm calls and branches
# do not) and a CUDA kernel can repeat the same arithmetic.  Accurate to a
# few ulp; the sample never reaches 0.
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_SQRT2 = 1.4142135623730951
_PI_2 = np.pi / 2
_MANTISSA = 0x000FFFFFFFFFFFFF
_INV_2_52 = 1.0 / 4503599627370496.0


@intrinsic
def float_bits(typingctx, x):
    """The IEEE bits of a float64 as an int64 (a bitcast, which vectorises)."""
    if not (isinstance(x, types.Float) and x.bitwidth == 64):
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return types.int64(x), codegen


@njit(inline="always", cache=True)
def log_of_bits(bits):
    """Natural log of the positive normal float64 whose IEEE bits are ``bits``."""
    e = ((bits >> 52) & 0x7FF) - 1023
    f = 1.0 + np.float64(bits & _MANTISSA) * _INV_2_52
    above = f > _SQRT2
    f = f * 0.5 if above else f
    e = e + 1 if above else e
    s = (f - 1.0) / (f + 1.0)
    z = s * s
    series = 1.0 + z * (1 / 3 + z * (1 / 5 + z * (1 / 7 + z * (1 / 9 + z * (1 / 11 + z * (
        1 / 13 + z * (1 / 15 + z * (1 / 17 + z * (1 / 19 + z * (1 / 21))))))))))
    ef = np.float64(e)
    return ef * _LN2_HI + (2.0 * s * series + ef * _LN2_LO)


@njit(inline="always", cache=True)
def cos_sin_turn(u):
    """(cos(2 pi u), sin(2 pi u)) for u in [0, 1)."""
    t = 4.0 * u
    n = np.floor(t + 0.5)
    g = (t - n) * _PI_2          # |g| <= pi/4
    g2 = g * g
    sn = g * (1.0 + g2 * (-1 / 6 + g2 * (1 / 120 + g2 * (-1 / 5040 + g2 * (1 / 362880 + g2 * (
        -1 / 39916800 + g2 * (1 / 6227020800 + g2 * (-1 / 1307674368000))))))))
    cs = 1.0 + g2 * (-1 / 2 + g2 * (1 / 24 + g2 * (-1 / 720 + g2 * (1 / 40320 + g2 * (
        -1 / 3628800 + g2 * (1 / 479001600 + g2 * (-1 / 87178291200 + g2 * (
            1 / 20922789888000))))))))
    # quadrant 0: (cs, sn), 1: (-sn, cs), 2: (-cs, -sn), 3: (sn, -cs)
    quadrant = np.int64(n) & 3
    odd = (quadrant & 1) == 1
    c = sn if odd else cs
    s = cs if odd else sn
    c = -c if quadrant == 1 or quadrant == 2 else c
    s = -s if quadrant >= 2 else s
    return c, s


@njit(inline="always", cache=True)
def normal_pair(wa, wb):
    """Two standard normals from two words (Box-Muller: radius from wa, angle from wb)."""
    r = np.sqrt(-2.0 * log_of_bits(float_bits(unit_open(wa))))
    c, s = cos_sin_turn(unit_open(wb))
    return r * c, r * s


@njit(inline="always", cache=True)
def entry_from_word(dist, w):
    """One entry of a Rademacher or uniform operator from one word."""
    if dist == RADEMACHER:
        return 1.0 - 2.0 * np.float64(w >> uint64(31))
    return _SQRT3 * (2.0 * unit_open(w) - 1.0)


@njit(inline="always", cache=True)
def fill_quads(buf, n_quads, dist, ctr_lo, ctr_hi, t0, k0, k1):
    """buf[:4 n_quads] = the entries of stream indices t0, t0+1, ... (four each).

    One loop over whole Philox outputs with unsigned indices: it vectorises
    under numpy's error model (AVX2: a Gaussian 1000 x 100000 operator in
    0.39-0.43 against 0.94-0.99 s when the transform was a second, scalar
    pass over the row).
    """
    for q in range(uint64(n_quads)):
        w0, w1, w2, w3 = stream_words(ctr_lo, ctr_hi, t0 + q, k0, k1)
        if dist == GAUSSIAN:
            e0, e1 = normal_pair(w0, w1)
            e2, e3 = normal_pair(w2, w3)
        else:
            e0 = entry_from_word(dist, w0)
            e1 = entry_from_word(dist, w1)
            e2 = entry_from_word(dist, w2)
            e3 = entry_from_word(dist, w3)
        p = uint64(4) * q
        buf[p] = e0
        buf[p + uint64(1)] = e1
        buf[p + uint64(2)] = e2
        buf[p + uint64(3)] = e3


# Below this many entries a parallel launch costs more than it saves (and
# much more when the cores are busy), so callers take the serial kernels.
SERIAL_BELOW = 1 << 16

# Philox outputs a row is made from at a time: a 8 KiB buffer stays in L1
# (a whole-row buffer was a fresh allocation of up to megabytes per row).
QUADS_PER_CHUNK = 256


@njit(inline="always", cache=True)
def _dense_row(out, buf, a, dist, minor0, major0, n_major, ctr_lo, ctr_hi, k0, k1, scale):
    """Row a of a block, made chunk by chunk from whole Philox outputs, so a
    partial block sees exactly the entries of the full operator."""
    n_cols = out.shape[1]
    q_end = (major0 + n_cols - 1) // 4 + 1
    base = uint64((minor0 + a) * ((n_major + 3) // 4))
    for q0 in range(major0 // 4, q_end, QUADS_PER_CHUNK):
        n_quads = min(QUADS_PER_CHUNK, q_end - q0)
        fill_quads(buf, n_quads, dist, ctr_lo, ctr_hi, base + uint64(q0), k0, k1)
        for j in range(max(4 * q0, major0), min(4 * (q0 + n_quads), major0 + n_cols)):
            out[a, j - major0] = scale * buf[j - 4 * q0]


@njit(parallel=True, cache=True)
def fill_dense(out, dist, minor0, major0, n_major, ctr_lo, ctr_hi, k0, k1, scale):
    """out[a, b] = scale * entry(minor0 + a, major0 + b) of a dense operator."""
    for a in prange(out.shape[0]):
        buf = np.empty(4 * QUADS_PER_CHUNK, dtype=np.float64)
        _dense_row(out, buf, a, dist, minor0, major0, n_major, ctr_lo, ctr_hi, k0, k1, scale)


@njit(cache=True, error_model="numpy")
def fill_dense_serial(out, dist, minor0, major0, n_major, ctr_lo, ctr_hi, k0, k1, scale):
    """fill_dense on the calling thread, for small blocks.

    numpy's error model drops the division-by-zero test of the logarithm's
    ``(f - 1) / (f + 1)`` (f is in [1, 2)), whose branch kept the loop
    scalar: 1.16 against 0.89 ms for a 16 x 4000 Gaussian block before the
    loops were fused.  (Parallel loops are compiled with it anyway.)
    """
    buf = np.empty(4 * QUADS_PER_CHUNK, dtype=np.float64)
    for a in range(out.shape[0]):
        _dense_row(out, buf, a, dist, minor0, major0, n_major, ctr_lo, ctr_hi, k0, k1, scale)


@njit(inline="always", cache=True)
def _sparse_vector(positions, values, a, n_short, first, ctr_lo, ctr_hi, k0, k1, scale,
                   distinct):
    """Sparse vector first + a: k positions in [0, n_short) and signed values.

    ``distinct`` picks the k positions without replacement (Floyd's algorithm,
    as a SASO needs) or with replacement (as a LASO needs).
    """
    k = positions.shape[1]
    per_vector = (2 * k + 3) // 4
    base = uint64((first + a) * per_vector)
    for q in range(per_vector):
        w = stream_words(ctr_lo, ctr_hi, base + uint64(q), k0, k1)
        for lane in range(4):
            word = 4 * q + lane
            if word < k:
                if distinct:
                    top = n_short - k + word
                    pick = np.int64((w[lane] * uint64(top + 1)) >> _SHIFT32)
                    for earlier in range(word):
                        if positions[a, earlier] == pick:
                            pick = top
                            break
                else:
                    pick = np.int64((w[lane] * uint64(n_short)) >> _SHIFT32)
                positions[a, word] = pick
            elif word < 2 * k:
                values[a, word - k] = scale if (w[lane] >> uint64(31)) == 0 else -scale


@njit(parallel=True, cache=True)
def sparse_vectors(positions, values, n_short, first, ctr_lo, ctr_hi, k0, k1, scale, distinct):
    """Fill positions and values (n_vectors x k) of sparse vectors first, first+1, ..."""
    for a in prange(positions.shape[0]):
        _sparse_vector(positions, values, a, n_short, first, ctr_lo, ctr_hi, k0, k1, scale,
                       distinct)


@njit(cache=True)
def sparse_vectors_serial(positions, values, n_short, first, ctr_lo, ctr_hi, k0, k1, scale,
                          distinct):
    """sparse_vectors on the calling thread, for a few vectors."""
    for a in range(positions.shape[0]):
        _sparse_vector(positions, values, a, n_short, first, ctr_lo, ctr_hi, k0, k1, scale,
                       distinct)


@njit(parallel=True, cache=True)
def signs(out, first, ctr_lo, ctr_hi, k0, k1):
    """out[a] = +-1 for entries first + a of a one-word-per-entry sign vector."""
    n = out.shape[0]
    q_first = first // 4
    q_last = (first + n - 1) // 4
    for q in prange(q_first, q_last + 1):
        w = stream_words(ctr_lo, ctr_hi, uint64(q), k0, k1)
        for lane in range(4):
            a = 4 * q + lane - first
            if 0 <= a < n:
                out[a] = 1.0 if (w[lane] >> uint64(31)) == 0 else -1.0


@njit(cache=True)
def sample_without_replacement(d, m, ctr_lo, ctr_hi, k0, k1):
    """d distinct indices of range(m), sorted (Floyd's algorithm, one word each)."""
    taken = np.zeros(m, dtype=np.bool_)
    for step in range((d + 3) // 4):
        w = stream_words(ctr_lo, ctr_hi, uint64(step), k0, k1)
        for lane in range(4):
            word = 4 * step + lane
            if word < d:
                top = m - d + word
                pick = np.int64((w[lane] * uint64(top + 1)) >> _SHIFT32)
                if taken[pick]:
                    pick = top
                taken[pick] = True
    return np.flatnonzero(taken)


# Output columns one SASO task owns: its d x SASO_BLOCK slab of the output is
# accumulated in a contiguous buffer (1 MB for d = 8000), which stays in L2.
SASO_BLOCK = 16
SASO_BLOCK_U = uint64(SASO_BLOCK)
# Rows of A whose SASO_BLOCK-wide segments are copied together before they
# are scattered (32 KiB of float64, in L1).
SASO_PANEL_ROWS = 256


@intrinsic
def _add_row_to_rows(typingctx, slab, panel, src, positions, values, j):
    """``slab[p*B:(p+1)*B] += v * panel[src:src+B]`` for every nonzero
    ``(p, v) = (positions[j, l], values[j, l])`` of column j of S, with
    B = SASO_BLOCK, as whole vector operations.

    The panel's segment is loaded once into registers for all k updates (a
    numba loop reloads it after every store, which might alias it): S @ A in
    313 against 343 ms (medians, interleaved) at 100000 x 2000, d = 8000, in
    one comparison; later ones on a busier machine gave best times of 285-297
    against 321-338 ms and medians within noise.  A loop with the constant
    trip count SASO_BLOCK would be unrolled by LLVM into scalar code, which
    numba's pipeline leaves scalar (it does not run the SLP vectoriser); one
    explicit SASO_BLOCK-wide vector compiles to whole SIMD registers (two
    AVX-512 multiplies and adds for float64).  Multiply then add, unfused, as
    the scalar code would round.  Typed only for float arrays of one dtype,
    integer offsets and integer positions.
    """
    if not (isinstance(slab, types.Array) and isinstance(panel, types.Array)
            and isinstance(slab.dtype, types.Float) and slab.dtype == panel.dtype
            and isinstance(values, types.Array) and values.dtype == slab.dtype
            and isinstance(positions, types.Array) and positions.ndim == 2
            and isinstance(positions.dtype, types.Integer) and positions.layout == "C"
            and values.ndim == 2 and values.layout == "C"
            and isinstance(src, types.Integer) and isinstance(j, types.Integer)):
        return None
    sig = types.void(slab, panel, src, positions, values, j)

    def codegen(context, builder, signature, args):
        slab_arg, panel_arg, src_arg, positions_arg, values_arg, j_arg = args
        dtype = signature.args[0].dtype
        align = dtype.bitwidth // 8
        scalar = context.get_value_type(dtype)
        vector = ir.VectorType(scalar, SASO_BLOCK)
        index = ir.IntType(64)
        out = context.make_array(signature.args[0])(context, builder, slab_arg)
        inp = context.make_array(signature.args[1])(context, builder, panel_arg)
        pos = context.make_array(signature.args[3])(context, builder, positions_arg)
        val = context.make_array(signature.args[4])(context, builder, values_arg)
        position_type = context.get_value_type(signature.args[3].dtype)
        row = _load(builder, builder.bitcast(builder.gep(inp.data, [src_arg]),
                                             vector.as_pointer()), vector, align)
        k = builder.extract_value(pos.shape, 1)
        first = builder.mul(context.cast(builder, j_arg, signature.args[5], types.intp), k)
        with cgutils.for_range(builder, k, intp=index) as loop:
            entry = builder.add(first, loop.index)
            p = _load(builder, builder.gep(pos.data, [entry]), position_type,
                      position_type.width // 8)
            p = builder.sext(p, index) if position_type.width < 64 else p
            v = _load(builder, builder.gep(val.data, [entry]), scalar, align)
            lane0 = builder.insert_element(ir.Constant(vector, ir.Undefined), v,
                                           ir.Constant(ir.IntType(32), 0))
            scales = builder.shuffle_vector(
                lane0, ir.Constant(vector, ir.Undefined),
                ir.Constant(ir.VectorType(ir.IntType(32), SASO_BLOCK), [0] * SASO_BLOCK))
            out_ptr = builder.bitcast(
                builder.gep(out.data, [builder.mul(p, ir.Constant(index, SASO_BLOCK))]),
                vector.as_pointer())
            total = builder.fadd(_load(builder, out_ptr, vector, align),
                                 builder.fmul(row, scales))
            builder.store(total, out_ptr, align=align)
        return context.get_dummy_value()

    return sig, codegen


# Recent llvmlite releases take the loaded type explicitly (opaque
# pointers); older ones read it from the pointer type.
_LOAD_TAKES_TYPE = "typ" in inspect.signature(ir.IRBuilder.load).parameters


def _load(builder, ptr, typ, align):
    if _LOAD_TAKES_TYPE:
        return builder.load(ptr, align=align, typ=typ)
    return builder.load(ptr, align=align)


@njit(cache=True)
def _scatter_full_block(slab, panel, a_flat, n, c0, positions, values):
    """slab[r, :] += S[r, j] * a[j, c0:c0+SASO_BLOCK] for every nonzero S[r, j].

    A panel of rows' segments is copied first: the copy, a short loop,
    keeps many strided loads of A in flight, which the scatter's long loop
    body would not.  With the vector update this took S @ A from about 450
    to 320 ms at 100000 x 2000, d = 8000 (7 times one ``A @ x``; the
    scatter stores m k n entries, and the strided copy alone costs about
    two ``A @ x``: 172 ms, the scatter into the slab 162).
    """
    m = positions.shape[0]
    un = uint64(n)
    for j0 in range(0, m, SASO_PANEL_ROWS):
        j1 = min(m, j0 + SASO_PANEL_ROWS)
        for j in range(j0, j1):
            src = uint64(j) * un + c0
            dst = uint64(j - j0) * SASO_BLOCK_U
            for c in range(SASO_BLOCK_U):
                panel[dst + c] = a_flat[src + c]
        for j in range(j0, j1):
            _add_row_to_rows(slab, panel, uint64(j - j0) * SASO_BLOCK_U, positions, values, j)


@njit(cache=True)
def _scatter_last_block(slab, width, a_flat, n, c0, positions, values):
    """As _scatter_full_block for the last, narrower block.

    Kept apart because the full block's constant width is what makes it one
    vector operation; the scalar loop here runs for one block only.
    """
    m, k = positions.shape
    un = uint64(n)
    for j in range(m):
        src = uint64(j) * un + c0
        for l in range(k):
            dst = uint64(positions[j, l]) * width
            v = values[j, l]
            for c in range(width):
                slab[dst + c] += v * a_flat[src + c]


@njit(parallel=True, cache=True)
def saso_apply_rows(out, a, positions, values):
    """out = S @ a for C-ordered a (m x n) and out (d x n, C- or F-ordered, or a
    view with either layout); S given by its columns.

    Tasks own disjoint blocks of output columns (no thread holds a copy of
    the output), and every entry is summed in the same order, so the result
    does not depend on the number of threads.  Unsigned flat indices let
    numba drop its negative-index fixups.
    """
    m, n = a.shape
    d = out.shape[0]
    a_flat = a.ravel()
    full = n // SASO_BLOCK
    for blk in prange(full + 1):
        c0 = uint64(blk * SASO_BLOCK)
        width = SASO_BLOCK_U if blk < full else uint64(n - full * SASO_BLOCK)
        if width == 0:
            continue
        slab = np.zeros(d * width, dtype=out.dtype)
        if blk < full:
            panel = np.empty(SASO_PANEL_ROWS * SASO_BLOCK, dtype=out.dtype)
            _scatter_full_block(slab, panel, a_flat, n, c0, positions, values)
        else:
            _scatter_last_block(slab, width, a_flat, n, c0, positions, values)
        if out.strides[0] <= out.strides[1]:      # column-major out: down columns
            for c in range(width):
                for r in range(d):
                    out[r, c0 + c] = slab[uint64(r) * width + c]
        else:
            for r in range(d):
                for c in range(width):
                    out[r, c0 + c] = slab[uint64(r) * width + c]


@njit(parallel=True, cache=True)
def saso_apply_columns(out, a, positions, values):
    """out += S @ a for a column-major a (m x n); threads own output columns."""
    m, n = a.shape
    k = positions.shape[1]
    for c in prange(n):
        for j in range(m):
            x = a[j, c]
            for l in range(k):
                out[positions[j, l], c] += values[j, l] * x
