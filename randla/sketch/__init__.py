"""Randomized BLAS: sketching operators (level 0) and their application (levels 1-2).

Operators
---------
DenseOperator  -- Gaussian, Rademacher or uniform entries
SASO           -- sparse sign embedding, k nonzeros per column (k = 1: CountSketch)
LASO           -- LESS-uniform: k signed samples per row
RowSampling    -- uniform sampling of distinct rows
SRTT           -- random signs, DCT-II, row sampling
make_operator  -- any of the above by name

Application
-----------
left_sketch (S @ A), right_sketch (A @ S.T), two_sided_sketch (S1 @ A @ S2.T);
``S @ A`` and ``A @ S.T`` work as operators too.

Randomness
----------
RNGState, as_rng_state -- Philox4x32-10 key and counter; every operator is a
pure function of (family, shape, scale, state).
"""
from ._apply import left_sketch, right_sketch, two_sided_sketch
from ._operators import (LASO, SASO, SRTT, DenseOperator, RowSampling, SketchingOperator,
                         TransposedOperator)
from ._rng import RNGState, as_rng_state

__all__ = ["RNGState", "as_rng_state", "SketchingOperator", "TransposedOperator",
           "DenseOperator", "SASO", "LASO", "RowSampling", "SRTT", "make_operator",
           "left_sketch", "right_sketch", "two_sided_sketch", "philox4x32"]

_FAMILIES = {
    "gaussian": lambda d, m, **kw: DenseOperator(d, m, "gaussian", **kw),
    "rademacher": lambda d, m, **kw: DenseOperator(d, m, "rademacher", **kw),
    "uniform": lambda d, m, **kw: DenseOperator(d, m, "uniform", **kw),
    "saso": SASO,
    "countsketch": lambda d, m, **kw: SASO(d, m, k=1, **kw),
    "laso": LASO,
    "row_sampling": RowSampling,
    "srtt": SRTT,
}


def make_operator(kind: str, d: int, m: int, **options) -> SketchingOperator:
    """Build a d x m sketching operator by family name.

    Parameters
    ----------
    kind : str
        One of ``"gaussian"``, ``"rademacher"``, ``"uniform"``, ``"saso"``,
        ``"countsketch"``, ``"laso"``, ``"row_sampling"``, ``"srtt"``.
    d, m : int
        Shape of the operator.
    **options
        Passed to the family's constructor (``rng``, ``dtype``, ``scale``,
        ``k`` for SASO and LASO).

    Examples
    --------
    >>> from randla.sketch import make_operator
    >>> make_operator("saso", 100, 5000, k=4, rng=0).shape
    (100, 5000)
    """
    try:
        family = _FAMILIES[kind]
    except (KeyError, TypeError):
        raise ValueError(f"kind must be one of {sorted(_FAMILIES)}, got {kind!r}") from None
    return family(d, m, **options)


def philox4x32(counter: int, key: int):
    """Philox4x32-10 of one 128-bit counter under a 64-bit key.

    Returns the four 32-bit output words as a uint32 array; word 0 of the
    counter and key is their least significant 32 bits, as in Random123.

    Examples
    --------
    >>> [hex(w) for w in philox4x32(0, 0)]
    ['0x6627e8d5', '0xe169c58d', '0xbc57ac4c', '0x9b00dbd8']
    """
    import numpy as np
    from ._cpu_kernels import philox_block
    state = RNGState(key, counter)
    lo, hi = state.counter_words
    k0, k1 = state.key_words
    return philox_block(np.array([lo], np.uint64), np.array([hi], np.uint64), k0, k1)[0]
