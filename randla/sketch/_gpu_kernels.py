"""CUDA kernels of the sketch layer, through CuPy: the same streams as ``_cpu_kernels``.

Every function here takes the arguments of its namesake in ``_cpu_kernels``
and fills CuPy arrays with the same values: the Philox words, the counter
layout and the arithmetic that turns words into entries are repeated
operation for operation.  The kernels are compiled without FMA contraction
(``--fmad=false``) and every floating-point constant is written so it reads back
as exactly the double the CPU kernels use, so Gaussian entries match bit for bit as well.

Imported only when a CuPy array is sketched.
"""
import functools

import cupy as cp
import numpy as np

from . import _cpu_kernels as cpu


def _literal(x: float) -> str:
    # repr gives the shortest decimal that reads back as exactly this double.
    return repr(float(x))


def _series(coefficients):
    # Horner form "c0 + z * (c1 + z * (...))", in the order the CPU evaluates it.
    text = _literal(coefficients[-1])
    for c in reversed(coefficients[:-1]):
        text = f"{_literal(c)} + z * ({text})"
    return text


_LOG_SERIES = [1.0] + [1 / k for k in range(3, 22, 2)]
_SIN_SERIES = [1.0, -1 / 6, 1 / 120, -1 / 5040, 1 / 362880, -1 / 39916800, 1 / 6227020800,
               -1 / 1307674368000]
_COS_SERIES = [1.0, -1 / 2, 1 / 24, -1 / 720, 1 / 40320, -1 / 3628800, 1 / 479001600,
               -1 / 87178291200, 1 / 20922789888000]

_SOURCE = r"""
typedef unsigned int u32;
typedef unsigned long long u64;

__device__ void philox(u64 ctr_lo, u64 ctr_hi, u64 t, u32 k0, u32 k1, u32 w[4]) {
    u64 lo = ctr_lo + t;
    u64 hi = ctr_hi + (lo < ctr_lo ? 1ULL : 0ULL);
    u32 c0 = (u32)lo, c1 = (u32)(lo >> 32), c2 = (u32)hi, c3 = (u32)(hi >> 32);
    for (int round = 0; round < 10; ++round) {
        u64 p0 = (u64)0xD2511F53u * c0;
        u64 p1 = (u64)0xCD9E8D57u * c2;
        u32 n0 = (u32)(p1 >> 32) ^ c1 ^ k0;
        u32 n2 = (u32)(p0 >> 32) ^ c3 ^ k1;
        c1 = (u32)p1; c3 = (u32)p0; c0 = n0; c2 = n2;
        k0 += 0x9E3779B9u; k1 += 0xBB67AE85u;
    }
    w[0] = c0; w[1] = c1; w[2] = c2; w[3] = c3;
}

__device__ double unit_open(u32 x) { return ((double)x + 0.5) * INV_2_32; }

__device__ double log_of_bits(long long bits) {
    long long e = ((bits >> 52) & 0x7FF) - 1023;
    double f = 1.0 + (double)(bits & 0x000FFFFFFFFFFFFFLL) * INV_2_52;
    if (f > SQRT2) { f *= 0.5; e += 1; }
    double s = (f - 1.0) / (f + 1.0);
    double z = s * s;
    double series = LOG_SERIES;
    double ef = (double)e;
    return ef * LN2_HI + (2.0 * s * series + ef * LN2_LO);
}

__device__ void cos_sin_turn(double u, double *c, double *s) {
    double t = 4.0 * u;
    double n = floor(t + 0.5);
    double g = (t - n) * PI_2;
    double z = g * g;
    double sn = g * (SIN_SERIES);
    double cs = COS_SERIES;
    long long quadrant = ((long long)n) & 3;
    if (quadrant == 0) { *c = cs; *s = sn; }
    else if (quadrant == 1) { *c = -sn; *s = cs; }
    else if (quadrant == 2) { *c = -cs; *s = -sn; }
    else { *c = sn; *s = -cs; }
}

__device__ double entry_from_word(int dist, u32 w) {
    if (dist == 1) return 1.0 - 2.0 * (double)(w >> 31);
    return SQRT3 * (2.0 * unit_open(w) - 1.0);
}

// One thread per (row a, Philox output q) of the requested block.
template <typename T>
__global__ void fill_dense(T *out, long long rs, long long cs, long long n_rows,
                           long long n_cols, int dist, long long minor0, long long major0,
                           long long n_major, u64 ctr_lo, u64 ctr_hi, u32 k0, u32 k1,
                           double scale, long long q_first, long long n_quads) {
    long long tid = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (tid >= n_rows * n_quads) return;
    long long a = tid / n_quads, q = q_first + tid % n_quads;
    long long per_vector = (n_major + 3) / 4;
    u32 w[4];
    philox(ctr_lo, ctr_hi, (u64)((minor0 + a) * per_vector + q), k0, k1, w);
    double e[4];
    if (dist == 0) {
        double c, s, r;
        r = sqrt(-2.0 * log_of_bits(__double_as_longlong(unit_open(w[0]))));
        cos_sin_turn(unit_open(w[1]), &c, &s);
        e[0] = r * c; e[1] = r * s;
        r = sqrt(-2.0 * log_of_bits(__double_as_longlong(unit_open(w[2]))));
        cos_sin_turn(unit_open(w[3]), &c, &s);
        e[2] = r * c; e[3] = r * s;
    } else {
        for (int lane = 0; lane < 4; ++lane) e[lane] = entry_from_word(dist, w[lane]);
    }
    for (int lane = 0; lane < 4; ++lane) {
        long long b = 4 * q + lane - major0;
        if (b >= 0 && b < n_cols) out[a * rs + b * cs] = (T)(scale * e[lane]);
    }
}

// One thread per sparse vector.
template <typename T>
__global__ void sparse_vectors(int *positions, T *values, long long n_vectors, int k,
                               long long n_short, long long first, u64 ctr_lo, u64 ctr_hi,
                               u32 k0, u32 k1, double scale, int distinct) {
    long long a = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (a >= n_vectors) return;
    int per_vector = (2 * k + 3) / 4;
    u64 base = (u64)((first + a) * per_vector);
    u32 w[4];
    for (int q = 0; q < per_vector; ++q) {
        philox(ctr_lo, ctr_hi, base + q, k0, k1, w);
        for (int lane = 0; lane < 4; ++lane) {
            int word = 4 * q + lane;
            if (word < k) {
                long long pick;
                if (distinct) {
                    long long top = n_short - k + word;
                    pick = (long long)(((u64)w[lane] * (u64)(top + 1)) >> 32);
                    for (int earlier = 0; earlier < word; ++earlier) {
                        if (positions[a * k + earlier] == pick) { pick = top; break; }
                    }
                } else {
                    pick = (long long)(((u64)w[lane] * (u64)n_short) >> 32);
                }
                positions[a * k + word] = (int)pick;
            } else if (word < 2 * k) {
                values[a * k + word - k] = (T)((w[lane] >> 31) == 0 ? scale : -scale);
            }
        }
    }
}

template <typename T>
__global__ void signs(T *out, long long n, long long first, u64 ctr_lo, u64 ctr_hi,
                      u32 k0, u32 k1) {
    long long q = first / 4 + (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (q > (first + n - 1) / 4) return;
    u32 w[4];
    philox(ctr_lo, ctr_hi, (u64)q, k0, k1, w);
    for (int lane = 0; lane < 4; ++lane) {
        long long a = 4 * q + lane - first;
        if (a >= 0 && a < n) out[a] = (T)((w[lane] >> 31) == 0 ? 1.0 : -1.0);
    }
}

// Floyd's algorithm is sequential: one thread, as on the CPU.
__global__ void floyd_sample(bool *taken, long long d, long long m, u64 ctr_lo, u64 ctr_hi,
                             u32 k0, u32 k1) {
    u32 w[4];
    for (long long step = 0; step < (d + 3) / 4; ++step) {
        philox(ctr_lo, ctr_hi, (u64)step, k0, k1, w);
        for (int lane = 0; lane < 4; ++lane) {
            long long word = 4 * step + lane;
            if (word < d) {
                long long top = m - d + word;
                long long pick = (long long)(((u64)w[lane] * (u64)(top + 1)) >> 32);
                if (taken[pick]) pick = top;
                taken[pick] = true;
            }
        }
    }
}

// out = S @ A for S in CSR form and row-major A: block (r, chunk) sums the rows
// of A that row r of S picks, over the chunk's GATHER_WIDTH * blockDim.x columns.
// Every read is a coalesced stretch of a row of A; sums run in CSR order.
template <typename T>
__global__ void csr_gather(const int *indptr, const int *indices, const T *data,
                           const T *A, long long n, T *out) {
    const long long r = blockIdx.x;
    const long long c0 = (long long)blockIdx.y * blockDim.x * GATHER_WIDTH + threadIdx.x;
    T acc[GATHER_WIDTH];
    for (int q = 0; q < GATHER_WIDTH; ++q) acc[q] = (T)0;
    const int end = indptr[r + 1];
#pragma unroll 2
    for (int p = indptr[r]; p < end; ++p) {
        const T *row = A + (long long)indices[p] * n;
        const T s = data[p];
#pragma unroll
        for (int q = 0; q < GATHER_WIDTH; ++q) {
            const long long c = c0 + (long long)q * blockDim.x;
            if (c < n) acc[q] += s * row[c];
        }
    }
#pragma unroll
    for (int q = 0; q < GATHER_WIDTH; ++q) {
        const long long c = c0 + (long long)q * blockDim.x;
        if (c < n) out[r * n + c] = acc[q];
    }
}
"""

_GATHER_WIDTH = 4


def kernel_source() -> str:
    """The CUDA source with the CPU kernels' constants written in as exact doubles."""
    constants = {
        "INV_2_32": cpu._INV_2_32, "INV_2_52": cpu._INV_2_52, "SQRT2": cpu._SQRT2,
        "SQRT3": cpu._SQRT3, "PI_2": cpu._PI_2, "LN2_HI": cpu._LN2_HI, "LN2_LO": cpu._LN2_LO,
    }
    source = _SOURCE.replace("GATHER_WIDTH", str(_GATHER_WIDTH))
    for name, value in constants.items():
        source = source.replace(name, f"({_literal(value)})")
    return (source.replace("LOG_SERIES", _series(_LOG_SERIES))
            .replace("SIN_SERIES", _series(_SIN_SERIES))
            .replace("COS_SERIES", _series(_COS_SERIES)))


@functools.lru_cache(maxsize=None)
def _module():
    names = [f"{kernel}<{t}>" for kernel in ("fill_dense", "sparse_vectors", "signs",
                                             "csr_gather")
             for t in ("float", "double")] + ["floyd_sample"]
    return cp.RawModule(code=kernel_source(), options=("--fmad=false", "-std=c++14"),
                        name_expressions=names)


def _kernel(name, dtype=None):
    if dtype is not None:
        name = f"{name}<{'float' if np.dtype(dtype) == np.float32 else 'double'}>"
    return _module().get_function(name)


def _launch(kernel, n_threads, args):
    threads = 256
    blocks = max(1, (int(n_threads) + threads - 1) // threads)
    kernel((blocks,), (threads,), args)


def _u64(x):
    return np.uint64(x)


def _u32(x):
    return np.uint32(x)


# A GPU launch is asynchronous and cheap: small blocks take the same kernels.
SERIAL_BELOW = 0


def fill_dense(out, dist, minor0, major0, n_major, ctr_lo, ctr_hi, k0, k1, scale):
    n_rows, n_cols = out.shape
    q_first = major0 // 4
    n_quads = (major0 + n_cols - 1) // 4 - q_first + 1
    rs, cs = (s // out.itemsize for s in out.strides)
    _launch(_kernel("fill_dense", out.dtype), n_rows * n_quads,
            (out, np.int64(rs), np.int64(cs), np.int64(n_rows), np.int64(n_cols),
             np.int32(dist), np.int64(minor0), np.int64(major0), np.int64(n_major),
             _u64(ctr_lo), _u64(ctr_hi), _u32(k0), _u32(k1), np.float64(scale),
             np.int64(q_first), np.int64(n_quads)))


def sparse_vectors(positions, values, n_short, first, ctr_lo, ctr_hi, k0, k1, scale, distinct):
    n_vectors, k = positions.shape
    _launch(_kernel("sparse_vectors", values.dtype), n_vectors,
            (positions, values, np.int64(n_vectors), np.int32(k), np.int64(n_short),
             np.int64(first), _u64(ctr_lo), _u64(ctr_hi), _u32(k0), _u32(k1),
             np.float64(scale), np.int32(bool(distinct))))


def signs(out, first, ctr_lo, ctr_hi, k0, k1):
    n = out.shape[0]
    n_quads = (first + n - 1) // 4 - first // 4 + 1
    _launch(_kernel("signs", out.dtype), n_quads,
            (out, np.int64(n), np.int64(first), _u64(ctr_lo), _u64(ctr_hi), _u32(k0),
             _u32(k1)))


def sample_without_replacement(d, m, ctr_lo, ctr_hi, k0, k1):
    taken = cp.zeros(m, dtype=cp.bool_)
    _kernel("floyd_sample")((1,), (1,), (taken, np.int64(d), np.int64(m), _u64(ctr_lo),
                                          _u64(ctr_hi), _u32(k0), _u32(k1)))
    return cp.flatnonzero(taken)


def csr_times_rows(matrix, a):
    """``matrix @ a`` for a cupyx CSR matrix and a C-contiguous 2-D array a.

    cuSPARSE's SpMM works on a column-major copy of a; gathering whole rows
    of a in place reads it with unit stride instead (see ``csr_gather``).
    """
    d, n = matrix.shape[0], a.shape[1]
    out = cp.empty((d, n), dtype=a.dtype)
    if d == 0 or n == 0:
        return out
    threads = 256
    chunks = (n + threads * _GATHER_WIDTH - 1) // (threads * _GATHER_WIDTH)
    data = matrix.data.astype(a.dtype, copy=False)
    _kernel("csr_gather", a.dtype)((d, chunks), (threads,),
                                   (matrix.indptr, matrix.indices, data, a, np.int64(n), out))
    return out
