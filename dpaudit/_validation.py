"""Shared argument checks, applied once at public boundaries.

Messages follow one template: ``"{name} must be in {interval}, got {name}={value!r}."``; wrong types
raise :class:`TypeError`. Private helpers assume validated input.
"""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import TYPE_CHECKING

from dpaudit.errors import ConfigError, DataError

if TYPE_CHECKING:
    import numpy as np


#: Longest ``repr`` of a rejected value quoted in a message; longer ones are elided so the line stays short.
_MAX_REPR = 40


def short_repr(value: object) -> str:
    """``repr(value)``, elided in the middle past :data:`_MAX_REPR` characters (e.g. an integer of 400 digits)."""
    text = repr(value)
    if len(text) <= _MAX_REPR:
        return text
    return f"{text[:16]}…{text[-8:]} ({len(text)} characters)"


def _interval(low: float, high: float, closed: str) -> str:
    left = "[" if closed in ("both", "left") else "("
    right = "]" if closed in ("both", "right") else ")"
    return f"{left}{low}, {high}{right}"


def check_real(
    name: str,
    value: object,
    low: float = -math.inf,
    high: float = math.inf,
    *,
    closed: str = "both",
    error: type[Exception] = ConfigError,
) -> float:
    """Return ``float(value)`` if it is a real number in the interval, else raise.

    Args:
        name: the argument's name as the user sees it.
        value: the value to check.
        low, high: interval ends.
        closed: which ends are included: ``"both"``, ``"left"``, ``"right"`` or ``"neither"``.
        error: exception type raised for a value out of range (TypeError for a wrong type).
    """
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a real number, got {name}={short_repr(value)}.")
    # Compare integers exactly: float(10**400) would raise OverflowError before any message.
    v = value if isinstance(value, Integral) else float(value)
    ok_low = v >= low if closed in ("both", "left") else v > low
    ok_high = v <= high if closed in ("both", "right") else v < high
    if (isinstance(v, float) and math.isnan(v)) or not (ok_low and ok_high):
        raise error(f"{name} must be in {_interval(low, high, closed)}, got {name}={short_repr(value)}.")
    try:
        return float(v)
    except OverflowError:  # an integer inside an unbounded interval but beyond float range
        raise error(f"{name} must be in {_interval(low, high, closed)} and representable as a float, got "
                    f"{name}={short_repr(value)}.") from None


def check_int(
    name: str,
    value: object,
    low: int | None = None,
    high: int | None = None,
    *,
    error: type[Exception] = ConfigError,
) -> int:
    """Return ``int(value)`` if it is an integer in ``[low, high]`` (ends optional), else raise."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be an integer, got {name}={short_repr(value)}.")
    v = int(value)
    lo = -math.inf if low is None else low
    hi = math.inf if high is None else high
    if not lo <= v <= hi:
        raise error(f"{name} must be in [{lo}, {hi}], got {name}={short_repr(value)}.")
    return v


def check_choice(name: str, value: object, choices: "list[str] | tuple[str, ...] | set[str]",
                 *, error: type[Exception] = ConfigError) -> str:
    """Return ``value`` if it is one of ``choices``, else raise naming the allowed values."""
    if value not in choices:
        allowed = ", ".join(sorted(map(str, choices)))
        raise error(f"{name} must be one of {{{allowed}}}, got {name}={short_repr(value)}.")
    return str(value)


def check_mask(name: str, value: object, shape: tuple[int, ...], *, hint: str = "") -> np.ndarray:
    """Return ``value`` as a bool ndarray if it has dtype bool and exactly ``shape``, else raise.

    The one check for every membership / inclusion mask (one row per model, one column per example).

    Args:
        name: the argument's name as the user sees it.
        value: array-like to check (not converted: an int 0/1 array is refused, never cast).
        shape: the required shape.
        hint: a sentence appended to the message saying where ``shape`` comes from.

    Raises:
        DataError: wrong dtype or shape.
    """
    import numpy as np  # here, not at module level: the validators (and the registry) stay numpy-free

    arr = np.asarray(value)
    if arr.dtype != np.bool_ or arr.shape != tuple(shape):
        raise DataError(f"{name} must be a bool array of shape {tuple(shape)}, got dtype={arr.dtype}, "
                        f"shape={arr.shape}" + (f"; {hint}." if hint else "."))
    return arr
