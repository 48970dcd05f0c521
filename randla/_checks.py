"""Validation of the integer arguments every layer takes (sizes, counts,
budgets): one rule and one wording for all of them."""
from __future__ import annotations

import numbers

__all__ = ["check_int"]


def check_int(name: str, value, minimum: int = 1, purpose: str = "") -> int:
    """``value`` as an int if it is an integer of at least ``minimum``.

    Raises TypeError (naming the argument) for what is no integer, bool
    included, and ValueError for an integer below ``minimum``; ``purpose``
    ends the ValueError's requirement (" for method 'diag++'").
    """
    wanted = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be {wanted}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be {wanted}{purpose}, got {value!r}")
    return int(value)
