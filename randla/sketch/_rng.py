"""Counter-based random state: Philox4x32-10 keys and counters.

An operator's entries are a pure function of ``(key, counter)``; see
``_cpu_kernels.py`` for the generator itself and the counter layout (the CUDA
kernels in ``_gpu_kernels.py`` repeat them).
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

__all__ = ["RNGState", "as_rng_state"]

_KEY_MASK = (1 << 64) - 1
_COUNTER_MASK = (1 << 128) - 1


@dataclass(frozen=True)
class RNGState:
    """Immutable state of the Philox4x32-10 counter-based generator.

    Parameters
    ----------
    key : int
        64-bit key (two 32-bit words, low word first).  Different keys give
        independent streams.
    counter : int, optional
        128-bit starting counter.  An operator drawn from this state uses the
        counters ``counter, counter + 1, ...``; its ``next_state`` starts past
        the last one it used, so operators drawn in sequence are independent.

    Notes
    -----
    A state is never mutated: :meth:`advance` and every operator's
    ``next_state`` return new objects.

    Examples
    --------
    >>> from randla.sketch import RNGState
    >>> s = RNGState(key=42)
    >>> s.advance(10)
    RNGState(key=42, counter=10)
    """

    key: int
    counter: int = 0

    def __post_init__(self):
        for name, value, mask, bits in (("key", self.key, _KEY_MASK, 64),
                                        ("counter", self.counter, _COUNTER_MASK, 128)):
            if not isinstance(value, numbers.Integral) or isinstance(value, bool):
                raise TypeError(f"RNGState {name} must be an integer, got {type(value).__name__}")
            if not 0 <= int(value) <= mask:
                raise ValueError(f"RNGState {name} must lie in [0, 2**{bits}), got {value}")
        object.__setattr__(self, "key", int(self.key))
        object.__setattr__(self, "counter", int(self.counter))

    def advance(self, n: int) -> "RNGState":
        """Return the state ``n`` counters further on (wrapping modulo 2**128)."""
        if not isinstance(n, numbers.Integral) or isinstance(n, bool):
            raise TypeError(f"n must be a non-negative integer, got {n!r}")
        if n < 0:
            raise ValueError(f"n must be a non-negative integer, got {n!r}")
        return RNGState(self.key, (self.counter + int(n)) & _COUNTER_MASK)

    @property
    def key_words(self) -> tuple[int, int]:
        """The key as two 32-bit words ``(k0, k1)``."""
        return self.key & 0xFFFFFFFF, self.key >> 32

    @property
    def counter_words(self) -> tuple[int, int]:
        """The counter as two 64-bit halves ``(low, high)``, as kernels take it."""
        return self.counter & _KEY_MASK, self.counter >> 64


def as_rng_state(rng) -> RNGState:
    """Turn an ``rng`` argument into an :class:`RNGState`.

    Parameters
    ----------
    rng : None, int, numpy.random.Generator, RNGState or other seed
        Follows SPEC 7: ``None`` draws fresh entropy, an int seeds
        ``numpy.random.default_rng``, a Generator is advanced by one draw of
        the 64-bit key.  An ``RNGState`` is used as it is.  Anything else
        ``numpy.random.default_rng`` takes (a SeedSequence, a BitGenerator,
        a sequence of ints, ...) goes through it: a SeedSequence or a
        sequence of ints always gives the same key, a BitGenerator is
        advanced like a Generator.

    Returns
    -------
    RNGState
        A state with a key drawn from ``rng`` and counter 0.

    Raises
    ------
    TypeError
        If ``rng`` is a bool or something ``numpy.random.default_rng``
        refuses (a float, a string, ...).
    ValueError
        If ``rng`` is a negative seed.

    Examples
    --------
    >>> import numpy as np
    >>> from randla.sketch import as_rng_state
    >>> as_rng_state(np.random.SeedSequence(5)) == as_rng_state(np.random.SeedSequence(5))
    True
    """
    if isinstance(rng, RNGState):
        return rng
    generator = _generator(rng)
    key = int(generator.integers(0, 1 << 64, dtype=np.uint64))
    return RNGState(key, 0)


def check_rng(rng) -> None:
    """Raise the error :func:`as_rng_state` would raise for ``rng``, without
    drawing from it: for routines that check their arguments before they
    know whether they will sketch at all."""
    # None and a non-negative int need no generator (one from OS entropy cost
    # 0.08 ms, from an int 0.06 ms: 3 % of a 2000 x 50 lstsq handed to LAPACK)
    if isinstance(rng, numbers.Integral) and not isinstance(rng, bool):
        _check_seed(rng)
        return
    if rng is not None and not isinstance(rng, (RNGState, np.random.Generator,
                                                np.random.BitGenerator)):
        _generator(rng)


def _generator(rng):
    if isinstance(rng, bool):
        raise TypeError("rng must be None, an int, a numpy.random.Generator, an RNGState "
                        "or a seed numpy.random.default_rng takes, got a bool")
    if isinstance(rng, numbers.Integral):
        _check_seed(rng)
    try:
        return np.random.default_rng(rng)
    except (TypeError, ValueError) as exc:
        raise type(exc)("rng must be None, an int, a numpy.random.Generator, an RNGState "
                        "or a seed numpy.random.default_rng takes, got "
                        f"{type(rng).__name__} ({exc})") from exc


def _check_seed(seed) -> None:
    if seed < 0:
        raise ValueError(f"rng seed must be non-negative, got {seed}")
