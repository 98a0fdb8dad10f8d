"""The one validator of numbers: positive integers and positive numbers, named when wrong.

Every setting, argument and config field that must be a positive integer or number is
checked here, so that every error reads the same: `<name> must be a positive integer,
got <value>` (`... or null` where None is allowed).
"""

from __future__ import annotations

import math
import operator


def positive_int(value, name, *, error=ValueError, none_ok=False):
    """`value` as an int >= 1 (a Python or numpy integer, never a bool), else `error`."""
    if value is None and none_ok:
        return None
    try:
        number = operator.index(value)
    except TypeError:
        number = None
    if isinstance(value, bool) or number is None or number < 1:
        also = " or null" if none_ok else ""
        raise error(f"{name} must be a positive integer{also}, got {value!r}")
    return number


def positive_number(value, name, *, error=ValueError, none_ok=False, below=None):
    """`value` (an int or float, never a bool) if finite, > 0 and under `below`, else `error`."""
    if value is None and none_ok:
        return None
    number = value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    if number is None or not math.isfinite(number) or not number > 0 or (
        below is not None and not number < below
    ):
        kind = "a positive number" if below is None else f"a number in (0, {below:g})"
        also = " or null" if none_ok else ""
        raise error(f"{name} must be {kind}{also}, got {value!r}")
    return value
