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

# Each kind: its class and the constructor arguments the kind fixes.
_FAMILIES = {
    "gaussian": (DenseOperator, {"distribution": "gaussian"}),
    "rademacher": (DenseOperator, {"distribution": "rademacher"}),
    "uniform": (DenseOperator, {"distribution": "uniform"}),
    "saso": (SASO, {}),
    "countsketch": (SASO, {"k": 1}),
    "laso": (LASO, {}),
    "row_sampling": (RowSampling, {}),
    "srtt": (SRTT, {}),
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

    Raises
    ------
    ValueError
        If ``kind`` is unknown.
    TypeError
        If an option is one the kind fixes (``"countsketch"`` is a SASO
        with ``k=1``; the dense kinds fix ``distribution``) or one the
        family does not take.

    Examples
    --------
    >>> from randla.sketch import make_operator
    >>> make_operator("saso", 100, 5000, k=4, rng=0).shape
    (100, 5000)
    """
    try:
        family, fixed = _FAMILIES[kind]
    except (KeyError, TypeError):
        raise ValueError(f"kind must be one of {sorted(_FAMILIES)}, got {kind!r}") from None
    for name, value in fixed.items():
        if name in options:
            raise TypeError(f"{name} cannot be given for kind={kind!r}, a {family.__name__} "
                            f"with {name}={value!r}; got {name}={options[name]!r}")
    return family(d, m, **fixed, **options)


def philox4x32(counter: int, key: int):
    """Philox4x32-10 of one 128-bit counter under a 64-bit key.

    The generator behind every operator's entries, exposed to check it
    against Random123's known answers.

    Parameters
    ----------
    counter : int
        The counter, in ``[0, 2**128)``; its word 0 is its least
        significant 32 bits, as in Random123.
    key : int
        The key, in ``[0, 2**64)``, words ordered the same way.

    Returns
    -------
    numpy.ndarray
        The four 32-bit output words, a uint32 array of length 4.

    Raises
    ------
    TypeError, ValueError
        If ``counter`` or ``key`` is not an integer or out of range (as
        :class:`RNGState` checks them).

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
