"""One small registry for everything dpaudit looks up by key (after opacus's ``accountants/registry.py``).

Bias rules (keyed by module type, :mod:`trainers.rules`), attacks (by name, :mod:`attacks.registry`),
accountant backends and one-run estimators (by name, :mod:`dpaudit.privacy`) are each a
:class:`Registry`. Every one registers the same way (``register(key, value)`` or ``@register(key)``,
a duplicate refused unless ``force=True``) and fails the same way: an unknown key raises
:class:`~dpaudit.errors.UnknownNameError`, a :class:`~dpaudit.errors.ConfigError`, so the CLI prints
one line naming the key and the known ones and exits 2. CLI and config choices come from
:meth:`Registry.names`.

This module imports nothing beyond the standard library and :mod:`dpaudit.errors`, so any layer may
use it.

Examples:
    >>> COLOURS: Registry[str, int] = Registry("colour")
    >>> COLOURS.register("red", 0xFF0000)
    16711680
    >>> @COLOURS.register("green")
    ... def green():
    ...     return 0x00FF00
    >>> COLOURS.names()
    ('red', 'green')
    >>> COLOURS.get("blue")
    Traceback (most recent call last):
    ...
    dpaudit.errors.UnknownNameError: colour must be one of {green, red}, got colour='blue'.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator
from typing import Generic, TypeVar, overload

from dpaudit._validation import short_repr
from dpaudit.errors import DuplicateNameError, UnknownNameError

__all__ = ["Registry"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

#: Message for an unknown key; the house validation template. Fields: ``kind``, ``key``, ``known``.
UNKNOWN = "{kind} must be one of {{{known}}}, got {kind}={key}."
#: Message for a duplicate registration without ``force``. Fields: ``kind``, ``key``.
DUPLICATE = "{kind} {key} is already registered; pass force=True to replace it."


class Registry(Generic[K, V]):
    """An insertion-ordered table ``key → value`` with guarded registration and one lookup error.

    Lookup is exact (``key in table``): a type-keyed registry does not fall back to base classes,
    so a subclass needs a registration of its own.

    Args:
        kind: what a value is, in messages ("attack", "accountant", "bias rule").
        show: how a key is written in messages, default=:func:`repr` (elided when long); e.g.
            ``lambda t: t.__qualname__`` for type keys.
        unknown: format string of the unknown-key message (fields ``kind``, ``key``, ``known``),
            default=:data:`UNKNOWN`. Known keys are listed sorted, comma-separated.
    """

    def __init__(self, kind: str, *, show: Callable[[K], str] = short_repr, unknown: str = UNKNOWN) -> None:
        self.kind = kind
        self._show = show
        self._unknown = unknown
        self._table: dict[K, V] = {}

    @overload
    def register(self, key: K, value: None = None, *, force: bool = False) -> Callable[[V], V]: ...

    @overload
    def register(self, key: K, value: V, *, force: bool = False) -> V: ...

    def register(self, key: K, value: V | None = None, *, force: bool = False) -> V | Callable[[V], V]:
        """Register ``value`` under ``key`` and return it; without ``value``, return a decorator that does.

        Args:
            key: hashable key, e.g. a name or a module type.
            value: what to store (never ``None``: that selects the decorator form).
            force: replace an existing entry instead of raising.

        Raises:
            DuplicateNameError: ``key`` is already registered and ``force`` is False (also a
                :class:`ValueError`).
        """
        if value is None:
            return lambda v: self.register(key, v, force=force)
        if key in self._table and not force:
            raise DuplicateNameError(DUPLICATE.format(kind=self.kind, key=self._show(key)))
        self._table[key] = value
        return value

    def unregister(self, key: K) -> V:
        """Remove ``key`` and return its value (for tests and examples that register temporarily).

        Raises:
            UnknownNameError: ``key`` is not registered.
        """
        value = self.get(key)
        del self._table[key]
        return value

    def get(self, key: K) -> V:
        """The value registered under ``key``.

        Raises:
            UnknownNameError: ``key`` is not registered (or not hashable); the message names it and
                every known key.
        """
        try:
            return self._table[key]
        except (KeyError, TypeError):
            known = ", ".join(sorted(self._show(k) if not isinstance(k, str) else k for k in self._table))
            raise UnknownNameError(self._unknown.format(kind=self.kind, key=self._show(key), known=known)) from None

    __getitem__ = get

    def names(self) -> tuple[K, ...]:
        """Every registered key, in registration order."""
        return tuple(self._table)

    def items(self) -> tuple[tuple[K, V], ...]:
        """``(key, value)`` pairs, in registration order."""
        return tuple(self._table.items())

    def __contains__(self, key: object) -> bool:
        try:
            return key in self._table
        except TypeError:  # unhashable: certainly not a key
            return False

    def __iter__(self) -> Iterator[K]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._table)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, keys={[self._show(k) for k in self._table]})"
