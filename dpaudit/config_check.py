"""The checks every config field runs, read off its ``dataclasses.field`` metadata.

A config dataclass (:mod:`dpaudit.config`, :class:`dpaudit.clipping.ClippingConfig`) calls :func:`validate` in
``__post_init__``, so a section built in Python is refused exactly as the TOML loader refuses it: the same
type, range and choice checks and the same one-line :class:`~dpaudit.errors.ConfigError` messages. Metadata
keys (peft's convention): ``"help"`` (one line, required), ``"range"`` (``(low, high, closed)``, finite numbers
only), ``"choices"`` (a tuple, or a zero-argument callable for registries imported late), ``"hint"`` (what a
range error adds when the fix is not a different number), ``"pattern"`` (``(regex, allowed-text)``).
"""

from __future__ import annotations

import re
from dataclasses import Field, fields
from typing import Any

from dpaudit._validation import check_choice, check_real, short_repr
from dpaudit.errors import ConfigError

__all__ = ["MAX_ITEMS", "MAX_STRING", "check_field", "field_choices", "validate"]

#: Longest list (``audit.fprs``, ``audit.attacks``, ``model.exclude_modules``), table and string accepted.
MAX_ITEMS = 64
MAX_STRING = 4096


def field_choices(f: Field) -> tuple[str, ...] | None:
    """The allowed values of a string field (its ``"choices"`` metadata, called if it is a callable)."""
    choices = f.metadata.get("choices")
    return tuple(choices()) if callable(choices) else choices


def validate(obj: Any, section: str) -> None:
    """Check every field of the frozen dataclass ``obj`` (the ``[section]`` table) and store each value in
    its declared type (lists as tuples, integers of float fields as floats)."""
    for f in fields(obj):
        object.__setattr__(obj, f.name, check_field(section, f, getattr(obj, f.name)))


def _check_range(where: str, f: Field, value: Any) -> Any:
    low, high, closed = f.metadata["range"]
    try:
        checked = check_real(where, value, low, high, closed=closed)
    except ConfigError as err:
        hint = f.metadata.get("hint")
        if hint is None:
            raise
        raise ConfigError(f"{str(err).rstrip('.')}; {hint}.") from None
    return value if isinstance(value, int) else checked


def _check_item(where: str, value: Any, item: str) -> Any:
    if item == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where} must be a number, got {where}={short_repr(value)}.")
    elif item == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be an integer, got {where}={short_repr(value)}.")
    elif item == "str":
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, got {where}={short_repr(value)}.")
        if len(value) > MAX_STRING:
            raise ConfigError(f"{where} must be at most {MAX_STRING} characters, got {len(value)}.")
    return value


def _check_groups(groups: dict, threshold_range: tuple[float, float, str]) -> dict:
    """``clipping.groups``: ``{name = [regex, C_g]}`` with a compilable regex and C_g in the clipping range."""
    if len(groups) > MAX_ITEMS:
        raise ConfigError(f"clipping.groups must have at most {MAX_ITEMS} groups, got {len(groups)}.")
    low, high, closed = threshold_range
    for name, spec in groups.items():
        where = f"clipping.groups.{name}"
        if not (isinstance(spec, (list, tuple)) and len(spec) == 2 and isinstance(spec[0], str)):
            raise ConfigError(f"{where} must be [regex, threshold], got {where}={short_repr(spec)}.")
        _check_item(where, spec[0], "str")
        try:
            re.compile(spec[0])
        except re.error as err:
            raise ConfigError(f"{where} has an invalid regex {short_repr(spec[0])} ({err}).") from None
        _check_item(f"{where} threshold", spec[1], "float")
        check_real(f"{where} threshold", spec[1], low, high, closed=closed)
    return groups


def _check_list(where: str, f: Field, value: Any, annotation: str) -> tuple:
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"{where} must be a list, got {where}={short_repr(value)}.")
    if len(value) > MAX_ITEMS:
        raise ConfigError(f"{where} must have at most {MAX_ITEMS} entries, got {len(value)}.")
    item = "float" if "float" in annotation else "str"
    out = tuple(_check_item(f"{where}[{i}]", v, item) for i, v in enumerate(value))
    if "range" in f.metadata:
        low, high, closed = f.metadata["range"]
        out = tuple(check_real(f"{where}[{i}]", v, low, high, closed=closed) for i, v in enumerate(out))
    return out


def check_field(section: str, f: Field, value: Any) -> Any:
    """Type, range and choice of one key; returns the value in the dataclass's type."""
    where, annotation = f"{section}.{f.name}", str(f.type)
    if value is None:
        if "None" in annotation:
            return None
        raise ConfigError(f"{where} cannot be empty.")
    if "tuple" in annotation:
        return _check_list(where, f, value, annotation)
    if "dict" in annotation:
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a table, got {where}={short_repr(value)}.")
        return _check_groups(dict(value), f.metadata["threshold_range"])
    if "bool" in annotation:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {where}={short_repr(value)}.")
        return value
    for kind in ("float", "int", "str"):
        if kind in annotation:
            _check_item(where, value, kind)
            break
    if "range" in f.metadata:
        value = _check_range(where, f, value)
        return float(value) if "float" in annotation else value
    choices = field_choices(f)
    if choices is not None:
        check_choice(where, value, choices)
    if "pattern" in f.metadata:
        pattern, allowed = f.metadata["pattern"]
        if not re.fullmatch(pattern, value):
            raise ConfigError(f"{where} must be one of {allowed}, got {where}={short_repr(value)}.")
    return value
