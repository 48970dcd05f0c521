"""Level 0: sketching operators as small immutable values.

An operator is fully described by its family, shape ``(d, m)``, scale and
:class:`RNGState`; its entries are generated on demand from Philox4x32-10, so
any block can be materialised alone and equals that block of the whole.

Operators are wide, ``d x m``: ``S @ A`` compresses the m rows of A, and
``A @ S.T`` compresses the m columns of A (see ``_apply.py``).
"""
from __future__ import annotations

import math
import numbers
import operator
from dataclasses import dataclass, field

import numpy as np

from .._backend import get_backend
from .._checks import check_int
from ._rng import RNGState, as_rng_state

__all__ = ["SketchingOperator", "DenseOperator", "SASO", "LASO", "RowSampling", "SRTT"]

# Largest dense panel (entries) generated at once when an operator is applied blockwise.
PANEL_ENTRIES = 1 << 22


def _kernels(like=None):
    """The kernel module for arrays like ``like``: numba on the host, CUDA for CuPy.

    Both are imported on first use, so ``import randla`` loads neither.
    """
    if like is not None and get_backend(like).is_gpu:
        from . import _gpu_kernels
        return _gpu_kernels
    from . import _cpu_kernels
    return _cpu_kernels


def _namespace(xp):
    return np if xp is None else xp


def _check_float_dtype(dtype) -> np.dtype:
    try:
        dtype = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"dtype must be float32 or float64, got {dtype!r} ({exc})") from None
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"dtype must be float32 or float64, got {dtype}")
    return dtype


def _is_index(key) -> bool:
    """Whether ``key`` indexes a single row or column: an integer, a numpy
    integer or a 0-d integer array (anything with ``__index__``), not a bool."""
    if isinstance(key, (bool, np.bool_)):
        return False
    try:
        operator.index(key)
    except TypeError:
        return False
    return True


def _check_range(name: str, first, count, length: int) -> tuple[int, int]:
    """``first`` and ``count`` (None: up to ``length``) of a run of entries
    ``first .. first+count-1`` that must lie in ``[0, length)``."""
    if not _is_index(first) or not 0 <= first <= length:
        raise ValueError(f"{name}: first must be an integer in [0, {length}], got {first!r}")
    first = operator.index(first)
    count = length - first if count is None else count
    if not _is_index(count) or not 0 <= count <= length - first:
        raise ValueError(f"{name}: count must be an integer in [0, {length - first}] "
                         f"(there are {length}, from first={first}), got {count!r}")
    return first, operator.index(count)


# Sparse operators store positions as int32, and every sampler maps a 32-bit
# word to a position: the dimensions they index are bounded by these.
_MAX_INT32_DIM = 2**31 - 1
_MAX_SAMPLED_DIM = 2**32


def _block_range(key, length: int, axis: str) -> tuple[int, int]:
    if _is_index(key):
        key = operator.index(key)
        index = key + length if key < 0 else key
        if not 0 <= index < length:
            raise IndexError(f"{axis} index {key} out of range for length {length}")
        return index, index + 1
    if not isinstance(key, slice):
        raise TypeError(f"operator blocks are indexed by integers or slices, got {key!r}")
    start, stop, step = key.indices(length)
    if step != 1:
        raise ValueError("operator blocks need slices with step 1")
    return start, max(start, stop)


@dataclass(frozen=True, init=False)
class SketchingOperator:
    """Base of all sketching operators: a d x m matrix drawn from a distribution.

    Attributes
    ----------
    shape : tuple of int
        ``(d, m)``.
    state : RNGState
        Key and starting counter of the operator's entries.
    scale : float
        Factor applied to the raw entries; the default makes
        ``E[S.T @ S] = I``.
    dtype : numpy.dtype
        Precision of :meth:`todense`; applications follow the data's precision.

    Notes
    -----
    ``S @ A`` takes arrays, sparse matrices and LinearOperators.  ``A @ S.T``
    works for arrays and sparse matrices; a scipy LinearOperator does not
    hand ``@`` over to ``S.T``, so write ``right_sketch(A, S)`` for it.
    """

    shape: tuple[int, int]
    state: RNGState
    scale: float
    dtype: np.dtype = field(compare=True)

    distribution = "abstract"
    __array_ufunc__ = None   # make numpy defer `A @ S.T` to TransposedOperator

    def _init(self, d, m, rng, dtype, scale, default_scale, *, check=None, embeds=None,
              limit=None):
        # every argument is checked before rng is drawn from: a refused call
        # leaves a caller's Generator where it was.  ``check(d, m)``: the
        # subclass's own test; ``embeds``: the message (``{d}``, ``{m}``) of an
        # operator that needs d <= m; ``limit``: ``(name, largest, message)``
        # for d or m beyond what the operator's index words hold
        d = check_int("d", d)
        m = check_int("m", m)
        if check is not None:
            check(d, m)
        if embeds is not None and d > m:
            raise ValueError(embeds.format(d=d, m=m))
        if limit is not None:
            name, largest, message = limit
            if {"d": d, "m": m}[name] > largest:
                raise ValueError(message.format(d=d, m=m))
        object.__setattr__(self, "shape", (d, m))
        object.__setattr__(self, "dtype", _check_float_dtype(dtype))
        if scale is None:
            scale = default_scale(d, m)
        try:
            finite = (isinstance(scale, numbers.Real) and not isinstance(scale, bool)
                      and math.isfinite(scale))
        except OverflowError:       # an int beyond float's range
            finite = False
        if not finite:
            raise ValueError(f"scale must be a finite real number, got {scale!r}")
        object.__setattr__(self, "scale", float(scale))
        object.__setattr__(self, "state", as_rng_state(rng))

    @property
    def d(self) -> int:
        """Number of rows: the sketch dimension."""
        return self.shape[0]

    @property
    def m(self) -> int:
        """Number of columns: the dimension being compressed."""
        return self.shape[1]

    @property
    def key(self) -> int:
        """The 64-bit Philox key of the operator's entries (``state.key``)."""
        return self.state.key

    @property
    def counter(self) -> int:
        """The first 128-bit Philox counter the entries use (``state.counter``)."""
        return self.state.counter

    @property
    def n_counters(self) -> int:
        """How many Philox counters the operator's entries use."""
        raise NotImplementedError

    @property
    def next_state(self) -> RNGState:
        """The state just past this operator's counters: draw the next operator from it."""
        return self.state.advance(self.n_counters)

    @property
    def T(self) -> "TransposedOperator":
        """The transpose, for right sketches ``A @ S.T``."""
        return TransposedOperator(self)

    def _words(self, state: RNGState | None = None):
        ctr_lo, ctr_hi = (state or self.state).counter_words
        k0, k1 = self.state.key_words
        return np.uint64(ctr_lo), np.uint64(ctr_hi), np.uint64(k0), np.uint64(k1)

    def block(self, rows=slice(None), cols=slice(None), dtype=None, xp=None):
        """Materialise ``S[rows, cols]`` as a dense array.

        Parameters
        ----------
        rows, cols : slice or int
            Contiguous ranges (step 1); an integer is the one-wide range at
            that index, so the block is always 2-D (``S[i]`` drops the axis
            instead, as numpy does).  The block equals that block of
            :meth:`todense` exactly.
        dtype : float32 or float64, optional
            Defaults to the operator's dtype.
        xp : module, optional
            ``numpy`` (default) or ``cupy``: where to generate the block.
            Both give the same entries (the SRTT's cosines may differ in the
            last bit between the two math libraries).
        """
        r0, r1 = _block_range(rows, self.d, "row")
        c0, c1 = _block_range(cols, self.m, "column")
        dtype = self.dtype if dtype is None else _check_float_dtype(dtype)
        out = _namespace(xp).zeros((r1 - r0, c1 - c0), dtype=dtype)
        if out.size:
            self._fill_block(out, r0, c0)
        return out

    def __getitem__(self, key):
        """Entries of the operator, indexed as a numpy array is.

        Only the selected entries are generated.

        Parameters
        ----------
        key : int, slice or tuple of two of them
            A row index or range, optionally followed by a column index or
            range; an ellipsis stands for the ranges left out, as in numpy
            (``S[..., j]`` is ``S[:, j]``).  Slices need step 1.  An integer
            (a Python or numpy integer, or a 0-d integer array) drops its
            axis as in numpy: ``S[i]`` is row i (1-D), ``S[:, j]`` column j
            (1-D) and ``S[i, j]`` a scalar; slices keep theirs.

        Returns
        -------
        numpy.ndarray or numpy.floating
            In the operator's dtype, equal bit for bit to the same entries
            of :meth:`todense`.

        Raises
        ------
        IndexError
            If an integer is out of range or there are more than two indices.
        TypeError
            If an index is neither an integer nor a slice (no fancy indexing).
        ValueError
            If a slice has a step other than 1.

        Examples
        --------
        >>> from randla.sketch import DenseOperator
        >>> S = DenseOperator(5, 100, rng=3)
        >>> S[3].shape, S[:, 4].shape, S[1:3, 10:20].shape
        ((100,), (5,), (2, 10))
        >>> bool(S[3, 4] == S.todense()[3, 4])
        True
        """
        if not isinstance(key, tuple):
            key = (key,)
        ellipses = [at for at, k in enumerate(key) if k is Ellipsis]
        if len(ellipses) > 1:
            raise IndexError("an index can only have a single ellipsis ('...')")
        if ellipses:   # as in numpy: the full slices that the other indices leave
            at = ellipses[0]
            key = key[:at] + (slice(None),) * max(0, 3 - len(key)) + key[at + 1:]
        if len(key) > 2:
            raise IndexError(f"operators are two-dimensional, got {len(key)} indices")
        rows, cols = key + (slice(None),) * (2 - len(key))
        block = self.block(rows, cols)
        # an integer selects a one-wide block: drop that axis
        return block[tuple(0 if _is_index(k) else slice(None) for k in (rows, cols))]

    def todense(self, dtype=None, xp=None):
        """The whole operator as a dense d x m array (numpy unless ``xp`` says)."""
        return self.block(dtype=dtype, xp=xp)

    def __matmul__(self, other):
        from ._apply import left_sketch
        return left_sketch(self, other)

    def __rmatmul__(self, other):
        raise TypeError("A @ S is not a sketch: use A @ S.T (right_sketch) to compress "
                        "the columns of A")

    # Subclasses implement these on host data (2-D, real, working precision).
    def _fill_block(self, out, r0, c0):
        """Write the block whose top-left entry is (r0, c0) into the zeroed ``out``."""
        raise NotImplementedError

    # Subclasses implement these for 2-D real data in working precision, on
    # the host (numpy, scipy.sparse) or the GPU (cupy, cupyx.scipy.sparse).
    def _left_dense(self, a):
        """S @ a for a dense real 2-D array a (float32 or float64)."""
        return self._left_by_panels(a, sparse=False)

    def _left_sparse(self, a):
        """S @ a for a real sparse matrix a; dense result."""
        return self._left_by_panels(a.tocsr(), sparse=True)

    def _left_dense_into(self, a, out):
        """Write S @ a (a as in _left_dense) into ``out`` and return it.

        Operators whose kernel can accumulate straight into ``out`` override
        this and save the copy.
        """
        out[...] = self._left_dense(a)
        return out

    def _left_by_panels(self, a, sparse):
        # S @ a = sum over column panels P of S of P @ a[panel rows].
        backend = get_backend(a)
        dtype = np.dtype(a.dtype)
        d, m = self.shape
        width = max(1, PANEL_ENTRIES // d)
        out = None
        for c0 in range(0, m, width):
            c1 = min(m, c0 + width)
            panel = self.block(slice(None), slice(c0, c1), dtype=dtype, xp=backend.xp)
            if sparse:   # (a_rows.T @ panel.T).T keeps the product sparse-times-dense
                part = backend.xp.asarray(a[c0:c1].T @ panel.T).T
            else:
                part = panel @ a[c0:c1]
            if out is None:
                out = part
            else:
                out += part
        return out


def _gaussian_like_scale(d, m):
    return 1.0 / math.sqrt(d)


@dataclass(frozen=True, init=False)
class DenseOperator(SketchingOperator):
    """Dense operator with i.i.d. Gaussian, Rademacher or uniform entries.

    Parameters
    ----------
    d, m : int
        Shape of the operator (any positive sizes).
    distribution : {"gaussian", "rademacher", "uniform"}
        Entry distribution, each with mean 0 and variance 1 before scaling
        (uniform on ``[-sqrt(3), sqrt(3)]``).
    rng : None, int, numpy.random.Generator, RNGState or other seed
        Source of the key (SPEC 7, see :func:`as_rng_state`).
    dtype : float32 or float64
    scale : float, optional
        Defaults to ``1/sqrt(d)``, so that ``E[S.T @ S] = I``.

    Notes
    -----
    Entries are laid out along the long axis: for ``d <= m`` row ``i`` uses
    counters ``i*ceil(m/4)`` onwards, so a ``d1 x m`` operator equals the
    first ``d1`` rows of a ``(d1 + d2) x m`` one with the same state and scale
    as long as ``d1 + d2 <= m``.  Taller operators are laid out by columns
    instead: a ``d x m1`` one is the first ``m1`` columns of a
    ``d x (m1 + m2)`` one while ``m1 + m2 <= d``.
    Gaussian entries use Box-Muller on 32-bit uniforms (tails cut at 6.7).

    Examples
    --------
    >>> import numpy as np
    >>> from randla.sketch import DenseOperator
    >>> S = DenseOperator(50, 1000, rng=0)
    >>> A = np.ones((1000, 3))
    >>> (S @ A).shape
    (50, 3)
    >>> np.array_equal(S[10:20, 100:200], S.todense()[10:20, 100:200])
    True
    """

    distribution: str = "gaussian"
    _CODES = {"gaussian": 0, "rademacher": 1, "uniform": 2}

    def __init__(self, d, m, distribution="gaussian", *, rng=None, dtype=np.float64,
                 scale=None):
        if not isinstance(distribution, str) or distribution not in self._CODES:
            raise ValueError("distribution must be one of 'gaussian', 'rademacher', "
                             f"'uniform', got {distribution!r}")
        object.__setattr__(self, "distribution", distribution)
        self._init(d, m, rng, dtype, scale, _gaussian_like_scale)

    @property
    def n_counters(self) -> int:
        return min(self.shape) * math.ceil(max(self.shape) / 4)

    def _fill_block(self, out, r0, c0):
        d, m = self.shape
        kernels = _kernels(out)
        fill = kernels.fill_dense if out.size >= kernels.SERIAL_BELOW else \
            kernels.fill_dense_serial
        code = self._CODES[self.distribution]
        if m >= d:   # rows are the long vectors
            fill(out, code, r0, c0, m, *self._words(), self.scale)
        else:
            fill(out.T, code, c0, r0, d, *self._words(), self.scale)

    def _left_dense(self, a):
        if self.d * self.m <= PANEL_ENTRIES:
            return self.todense(a.dtype, xp=get_backend(a).xp) @ a
        return self._left_by_panels(a, sparse=False)


class _SparseVectors:
    """Mixin: operators whose long-axis or short-axis vectors have k nonzeros."""

    def _vectors(self, first, count, n_short, dtype, distinct, xp, scale=None):
        """Positions and values (``scale``, default the operator's, times a
        random sign) of ``count`` vectors from ``first``."""
        dtype = self.dtype if dtype is None else _check_float_dtype(dtype)
        xp = _namespace(xp)
        positions = xp.empty((count, self.k), dtype=np.int32)
        values = xp.empty((count, self.k), dtype=dtype)
        kernels = _kernels(positions)
        fill = kernels.sparse_vectors if positions.size >= kernels.SERIAL_BELOW else \
            kernels.sparse_vectors_serial
        fill(positions, values, n_short, first, *self._words(),
             self.scale if scale is None else scale, distinct)
        return positions, values

    def _sparse_matrix(self, n_vectors, dtype, xp, by_columns, vectors=None):
        """The operator as a CSC (vectors are columns) or CSR (rows) sparse
        matrix, from its ``vectors`` (positions, values) if given."""
        positions, values = vectors if vectors is not None else \
            (self.columns if by_columns else self.rows)(dtype=dtype, xp=xp)
        xp = _namespace(xp)
        # m k nonzeros of a SASO can pass int32 (m = 2**28, k = 8): int64 offsets then
        nnz = n_vectors * self.k
        index = np.int32 if nnz <= _MAX_INT32_DIM else np.int64
        indptr = xp.arange(0, nnz + 1, self.k, dtype=index)
        positions = positions.astype(index, copy=False)
        args = ((values.ravel(), positions.ravel(), indptr), self.shape)
        if xp is np:
            import scipy.sparse as sparse
            return sparse.csc_array(*args) if by_columns else sparse.csr_array(*args)
        import cupyx.scipy.sparse as sparse
        matrix = sparse.csc_matrix(*args) if by_columns else sparse.csr_matrix(*args)
        return matrix.tocsr()


@dataclass(frozen=True, init=False)
class SASO(_SparseVectors, SketchingOperator):
    """Short-axis sparse operator (sparse sign embedding, OSNAP).

    Every column of the d x m operator has exactly ``k`` nonzeros, at distinct
    rows chosen uniformly, with values ``+-1/sqrt(k)``.  ``k = 1`` is
    CountSketch.

    Parameters
    ----------
    d, m : int
        Shape, ``k <= d <= m``.
    k : int, optional
        Nonzeros per column, default ``min(8, d)``.
    rng : None, int, numpy.random.Generator, RNGState or other seed
        Source of the key (SPEC 7, see :func:`as_rng_state`).
    dtype : float32 or float64
    scale : float, optional
        Value of the nonzeros before their sign, default ``1/sqrt(k)``.

    Notes
    -----
    Column j uses counters ``j*ceil(k/2)`` onwards, so a d x m1 SASO is the
    first m1 columns of a d x m2 one with the same key.  Rows are drawn with
    Floyd's algorithm from 32-bit words (bias below d / 2**32).

    Examples
    --------
    >>> import numpy as np
    >>> from randla.sketch import SASO
    >>> S = SASO(200, 10000, k=8, rng=1)
    >>> int((S.todense() != 0).sum(axis=0).max())
    8
    """

    k: int = 8

    def __init__(self, d, m, k=None, *, rng=None, dtype=np.float64, scale=None):
        if k is None:   # the usual 8 nonzeros, or one in every row of a shorter sketch
            k = min(8, check_int("d", d))
        k = check_int("k", k)

        def check(d, m):
            if k > d:
                raise ValueError(f"k must not exceed d: k={k}, d={d}")
        self._init(d, m, rng, dtype, scale, lambda d, m: 1.0 / math.sqrt(k), check=check,
                   embeds="a SASO embeds m into d <= m dimensions; got d={d} > m={m}",
                   limit=("d", _MAX_INT32_DIM, "a SASO's row positions are int32: d must "
                          "be at most 2**31 - 1, got d={d}"))
        object.__setattr__(self, "k", k)

    distribution = "saso"

    @property
    def n_counters(self) -> int:
        return self.m * math.ceil(self.k / 2)

    def columns(self, first=0, count=None, dtype=None, xp=None):
        """Row positions and values of columns ``first, ..., first+count-1``.

        Returns
        -------
        positions : (count, k) int32 array
        values : (count, k) float array
        """
        first, count = _check_range("columns", first, count, self.m)
        return self._vectors(first, count, self.d, dtype, True, xp)

    def tosparse(self, dtype=None, xp=None):
        """The operator as a ``scipy.sparse.csc_array`` (CuPy: a cupyx CSR matrix)."""
        return self._sparse_matrix(self.m, dtype, xp, by_columns=True)

    def _fill_block(self, out, r0, c0):
        xp = get_backend(out).xp
        positions, values = self.columns(c0, out.shape[1], out.dtype, xp=xp)
        inside = (positions >= r0) & (positions < r0 + out.shape[0])
        cols = xp.broadcast_to(xp.arange(out.shape[1])[:, None], positions.shape)
        out[positions[inside] - r0, cols[inside]] = values[inside]

    def _left_dense(self, a):
        if get_backend(a).is_gpu:   # the operator in CSR form, gathering rows of a
            csr = self.tosparse(a.dtype, xp=get_backend(a).xp)
            if a.flags.c_contiguous and a.dtype in (np.float32, np.float64):
                return _kernels(a).csr_times_rows(csr, a)
            return csr @ a
        if a.flags.c_contiguous:
            return self._left_dense_into(a, np.empty((self.d, a.shape[1]), dtype=a.dtype))
        positions, values = self.columns(dtype=a.dtype)
        out = np.zeros((self.d, a.shape[1]), dtype=a.dtype, order="F")
        _kernels().saso_apply_columns(out, np.asfortranarray(a), positions, values)
        return out

    def _left_dense_into(self, a, out):
        # the row kernel writes either layout: a QR of S @ A wants it column-major;
        # an out that overlaps a gets a copy instead (the kernel would read its writes)
        if get_backend(a).is_gpu or not a.flags.c_contiguous or np.may_share_memory(a, out):
            return super()._left_dense_into(a, out)
        positions, values = self.columns(dtype=a.dtype)
        _kernels().saso_apply_rows(out, a, positions, values)
        return out

    def _left_sparse(self, a):
        return (self.tosparse(a.dtype, xp=get_backend(a).xp) @ a).toarray()


@dataclass(frozen=True, init=False)
class LASO(_SparseVectors, SketchingOperator):
    """Long-axis sparse operator (LESS-uniform sketch).

    Every row of the d x m operator has ``k`` nonzeros, ``+-1``, at columns
    sampled uniformly with replacement (repeats add up); scaled by
    ``sqrt(m / (d k))``.  ``k = 1`` is signed uniform row sampling.

    Parameters
    ----------
    d, m : int
        Shape, ``d <= m``.
    k : int, default 8
        Samples per row (with replacement, so any ``k >= 1``).
    rng : None, int, numpy.random.Generator, RNGState or other seed
        Source of the key (SPEC 7, see :func:`as_rng_state`).
    dtype : float32 or float64
    scale : float, optional
        Default ``sqrt(m / (d k))``, so that ``E[S.T @ S] = I``.

    Notes
    -----
    Row i uses counters ``i*ceil(k/2)`` onwards: a d1-row LASO with the same
    key and scale is the first d1 rows of a larger one.

    Examples
    --------
    >>> import numpy as np
    >>> from randla.sketch import LASO
    >>> S = LASO(100, 5000, k=4, rng=0)
    >>> positions, values = S.rows()
    >>> positions.shape
    (100, 4)
    >>> int((S.todense() != 0).sum(axis=1).max()) <= 4
    True
    """

    k: int = 8

    def __init__(self, d, m, k=8, *, rng=None, dtype=np.float64, scale=None):
        k = check_int("k", k)

        self._init(d, m, rng, dtype, scale, lambda d, m: math.sqrt(m / (d * k)),
                   embeds="a LASO embeds m into d <= m dimensions; got d={d} > m={m}",
                   limit=("m", _MAX_INT32_DIM, "a LASO's column positions are int32: m "
                          "must be at most 2**31 - 1, got m={m}"))
        object.__setattr__(self, "k", k)

    distribution = "laso"

    @property
    def n_counters(self) -> int:
        return self.d * math.ceil(self.k / 2)

    def rows(self, first=0, count=None, dtype=None, xp=None):
        """Column positions and values of rows ``first, ..., first+count-1``."""
        first, count = _check_range("rows", first, count, self.d)
        return self._vectors(first, count, self.m, dtype, False, xp)

    # Repeated columns within a row add up.  Their signs are summed first
    # (small integers, exact in floating point) and scaled once, so an entry
    # is its exact value rounded once, the same in todense(), tosparse() and
    # S @ A whatever order each sums in (scale times +1 - 1 + 1 - 1 ... in
    # the order drawn came out 1 ulp off where sum_duplicates reordered it).
    def tosparse(self, dtype=None, xp=None):
        """The operator as a ``scipy.sparse.csr_array`` (CuPy: cupyx CSR matrix).

        Repeated columns within a row are summed.
        """
        signs = self._vectors(0, self.d, self.m, dtype, False, xp, scale=1.0)
        s = self._sparse_matrix(self.d, dtype, xp, by_columns=False, vectors=signs)
        s.sum_duplicates()
        s.data *= s.data.dtype.type(self.scale)
        return s

    def _fill_block(self, out, r0, c0):
        xp = get_backend(out).xp
        positions, signs = self._vectors(r0, out.shape[0], self.m, out.dtype, False, xp,
                                         scale=1.0)
        inside = (positions >= c0) & (positions < c0 + out.shape[1])
        rows = xp.broadcast_to(xp.arange(out.shape[0])[:, None], positions.shape)
        xp.add.at(out, (rows[inside], positions[inside] - c0), signs[inside])
        out *= out.dtype.type(self.scale)

    def _left_dense(self, a):
        return self.tosparse(a.dtype, xp=get_backend(a).xp) @ a

    def _left_sparse(self, a):
        return (self.tosparse(a.dtype, xp=get_backend(a).xp) @ a).toarray()


@dataclass(frozen=True, init=False)
class RowSampling(SketchingOperator):
    """Uniform sampling of d distinct rows out of m, scaled by ``sqrt(m/d)``.

    Row i of S is ``sqrt(m/d) * e_{p_i}`` where ``p_0 < p_1 < ...`` are the
    sampled indices (:attr:`indices`).

    Parameters
    ----------
    d, m : int
        Shape, ``d <= m``.
    rng : None, int, numpy.random.Generator, RNGState or other seed
        Source of the key (SPEC 7, see :func:`as_rng_state`).
    dtype : float32 or float64
    scale : float, optional
        Default ``sqrt(m/d)``, so that ``E[S.T @ S] = I``.

    Examples
    --------
    >>> import numpy as np
    >>> from randla.sketch import RowSampling
    >>> A = np.arange(12.0).reshape(6, 2)
    >>> S = RowSampling(3, 6, rng=0, scale=1.0)
    >>> np.array_equal(S @ A, A[S.indices])
    True
    """

    def __init__(self, d, m, *, rng=None, dtype=np.float64, scale=None):
        self._init(d, m, rng, dtype, scale, lambda d, m: math.sqrt(m / d),
                   embeds="cannot sample d={d} distinct rows out of m={m}",
                   limit=("m", _MAX_SAMPLED_DIM, "rows are sampled from 32-bit words: m "
                          "must be at most 2**32, got m={m}"))

    distribution = "row_sampling"

    @property
    def n_counters(self) -> int:
        return math.ceil(self.d / 4)

    @property
    def indices(self) -> np.ndarray:
        """The sampled row indices, sorted (a numpy array)."""
        return self.sample(np)

    def sample(self, xp=None):
        """The sampled row indices, sorted, as an array of ``xp`` (numpy default)."""
        like = _namespace(xp).empty(0)
        return _kernels(like).sample_without_replacement(self.d, self.m, *self._words())

    def _fill_block(self, out, r0, c0):
        xp = get_backend(out).xp
        picked = self.sample(xp)[r0:r0 + out.shape[0]]
        inside = (picked >= c0) & (picked < c0 + out.shape[1])
        out[xp.flatnonzero(inside), picked[inside] - c0] = self.scale

    def _left_dense(self, a):
        return a[self.sample(get_backend(a).xp)] * a.dtype.type(self.scale)

    def _left_sparse(self, a):
        rows = self.sample(get_backend(a).xp)
        return (a.tocsr()[rows] * a.dtype.type(self.scale)).toarray()


@dataclass(frozen=True, init=False)
class SRTT(SketchingOperator):
    """Subsampled randomized trigonometric transform ``sqrt(m/d) R F D``.

    D is a diagonal of random signs, F the orthonormal DCT-II of length m and
    R the sampling of d distinct rows.  Applying it costs O(m n log m) through
    ``scipy.fft`` with all its worker threads.

    Parameters
    ----------
    d, m : int
        Shape, ``d <= m``.
    rng : None, int, numpy.random.Generator, RNGState or other seed
        Source of the key (SPEC 7, see :func:`as_rng_state`).
    dtype : float32 or float64
    scale : float, optional
        Default ``sqrt(m/d)``, so that ``E[S.T @ S] = I``.

    Notes
    -----
    The signs use counters ``0 .. ceil(m/4)-1`` past the state, the row
    sample (a :class:`RowSampling`) the next ``ceil(d/4)``.

    Examples
    --------
    >>> import numpy as np
    >>> from randla.sketch import SRTT
    >>> S = SRTT(64, 1024, rng=0)
    >>> A = np.random.default_rng(0).standard_normal((1024, 5))
    >>> np.allclose(S @ A, S.todense() @ A)
    True
    """

    def __init__(self, d, m, *, rng=None, dtype=np.float64, scale=None):
        self._init(d, m, rng, dtype, scale, lambda d, m: math.sqrt(m / d),
                   embeds="an SRTT keeps d <= m rows of the transform; got d={d} > m={m}",
                   limit=("m", _MAX_SAMPLED_DIM, "an SRTT's rows are sampled from 32-bit "
                          "words: m must be at most 2**32, got m={m}"))

    distribution = "srtt"

    @property
    def n_counters(self) -> int:
        return math.ceil(self.m / 4) + math.ceil(self.d / 4)

    def signs(self, first=0, count=None, dtype=None, xp=None):
        """The diagonal of D, entries ``first .. first+count-1``."""
        first, count = _check_range("signs", first, count, self.m)
        dtype = self.dtype if dtype is None else _check_float_dtype(dtype)
        out = _namespace(xp).empty(count, dtype=dtype)
        _kernels(out).signs(out, first, *self._words())
        return out

    @property
    def _rows(self) -> RowSampling:
        return RowSampling(self.d, self.m, rng=self.state.advance(math.ceil(self.m / 4)))

    @property
    def indices(self) -> np.ndarray:
        """The d sampled rows of the transform, sorted."""
        return self._rows.indices

    def _fill_block(self, out, r0, c0):
        xp = get_backend(out).xp
        m = self.m
        freq = self._rows.sample(xp)[r0:r0 + out.shape[0]].astype(np.int64)
        cols = xp.arange(c0, c0 + out.shape[1], dtype=np.int64)
        # DCT-II entry F[f, j] = w_f cos(pi f (2j + 1) / (2m))
        phase = _dct_phase(freq, cols, m, xp)
        weight = xp.where(freq == 0, math.sqrt(1.0 / m), math.sqrt(2.0 / m))
        dct = xp.cos(np.pi * phase / (2.0 * m)) * weight[:, None]
        out[...] = self.scale * dct * self.signs(c0, out.shape[1], np.float64, xp=xp)

    def _transform_rows(self, a):
        """scale * R F D a for a dense block a whose rows are all m rows."""
        backend = get_backend(a)
        y = a * self.signs(dtype=a.dtype, xp=backend.xp)[:, None]
        workers = {} if backend.is_gpu else {"workers": -1}
        y = backend.fft.dct(y, type=2, norm="ortho", axis=0, overwrite_x=True, **workers)
        return y[self._rows.sample(backend.xp)] * a.dtype.type(self.scale)

    def _left_dense(self, a):
        return self._transform_rows(a)

    def _left_sparse(self, a):
        a = a.tocsc()
        width = max(1, PANEL_ENTRIES // self.m)
        out = get_backend(a).xp.empty((self.d, a.shape[1]), dtype=a.dtype)
        for c0 in range(0, a.shape[1], width):
            c1 = min(a.shape[1], c0 + width)
            out[:, c0:c1] = self._transform_rows(a[:, c0:c1].toarray())
        return out


def _dct_phase(freq, cols, m: int, xp):
    """``outer(freq, 2 cols + 1) mod 4m`` (int64), exactly for m <= 2^32.

    Reduced first, so that the cosine's argument stays small and exact.
    f (2j + 1) itself passes 2^63 from m of about 2^31, so (2j + 1) is split
    into 17-bit halves: every partial product stays below 2^51.
    """
    period = 4 * m
    odd = 2 * cols + 1
    high = xp.outer(freq, odd >> 17) % period
    return ((high << 17) % period + xp.outer(freq, odd & 0x1FFFF)) % period


@dataclass(frozen=True)
class TransposedOperator:
    """``S.T``: an m x d view of an operator, for right sketches ``A @ S.T``.

    Notes
    -----
    ``A @ S.T`` works for arrays and sparse matrices.  A scipy LinearOperator
    A does not hand ``@`` over to ``S.T`` (scipy tries to multiply by it
    itself and fails), so write ``right_sketch(A, S)`` for one.
    """

    operator: SketchingOperator
    __array_ufunc__ = None

    @property
    def shape(self) -> tuple[int, int]:
        return self.operator.shape[::-1]

    @property
    def T(self) -> SketchingOperator:
        return self.operator

    def __rmatmul__(self, other):
        from ._apply import right_sketch
        return right_sketch(other, self.operator)

    def __matmul__(self, other):
        raise TypeError("S.T @ Y is not a sketch: use S @ A or A @ S.T, or "
                        "S.todense().T @ Y for the explicit product")
