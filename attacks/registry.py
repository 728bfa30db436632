"""Name-keyed attack registry (after opacus's ``accountants/registry.py``).

``ATTACKS`` maps a name (``"loss"``, ``"shadow"``, ``"lira_online"``, ``"lira_offline"``, ``"rmia"``)
to an :class:`attacks.base.Attack` subclass; it is a :class:`dpaudit.registry.Registry`. Importing
:mod:`attacks` registers them all; the CLI takes its choices from its names.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from dpaudit.errors import ConfigError
from dpaudit.registry import Registry

from dpaudit.attacks.base import Attack

__all__ = ["ATTACKS", "register_attack", "create_attack"]

#: The unknown-name message predates the registry's house template; kept because users and tests read it.
ATTACKS: Registry[str, type[Attack]] = Registry("attack", unknown="unknown attack {key}; known attacks: {known}.")

_A = TypeVar("_A", bound=type[Attack])


def register_attack(name: str, *, force: bool = False) -> Callable[[_A], _A]:
    """Class decorator: register an :class:`Attack` subclass under ``name`` and set ``cls.name``.

    Args:
        name: registry key (non-empty string).
        force: replace an existing entry instead of raising.

    Raises:
        TypeError: ``name`` is not a non-empty string, or the class is not an Attack subclass.
        DuplicateNameError: ``name`` is already registered and ``force`` is False (a ValueError).

    Examples:
        >>> @register_attack("example_noop")
        ... class Noop(Attack):
        ...     def _score(self, signals, ref_membership, *, target, reference):
        ...         return signals.phi[target] * 0.0
        >>> "example_noop" in ATTACKS
        True
        >>> _ = ATTACKS.unregister("example_noop")
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be a non-empty string, got name={name!r}.")

    def decorator(cls: _A) -> _A:
        if not (isinstance(cls, type) and issubclass(cls, Attack)):
            raise TypeError(f"register_attack expects an Attack subclass, got {cls!r}.")
        ATTACKS.register(name, cls, force=force)
        cls.name = name
        return cls

    return decorator


def create_attack(name: str, **options: Any) -> Attack:
    """Instantiate the attack registered under ``name`` with keyword ``options``.

    Raises:
        UnknownNameError: unknown name (a ConfigError; the message lists the known ones).
        ConfigError: an unknown option.
    """
    cls = ATTACKS.get(name)
    params = {} if cls.__init__ is object.__init__ else inspect.signature(cls.__init__).parameters
    accepts_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    allowed = sorted(p for p in params if p != "self" and params[p].kind is not inspect.Parameter.VAR_KEYWORD)
    unknown = sorted(set(options) - set(allowed))
    if unknown and not accepts_any:
        raise ConfigError(f"unknown option(s) {unknown} for attack {name!r}; known options: "
                          f"{', '.join(allowed) or '(none)'}.")
    return cls(**options)
