"""Installed versions of the libraries a result depends on: one lookup for ``audit.json`` and ``dpaudit env``.

Versions come from the installed distributions' metadata (:mod:`importlib.metadata`), so nothing heavy is
imported to read them, and a missing library is reported as ``"not installed"`` instead of failing.
"""

from __future__ import annotations

import platform
from collections.abc import Iterable

NOT_INSTALLED = "not installed"

#: The libraries whose versions ``audit.json`` records in ``run.versions`` (with ``python``).
RUNTIME_LIBRARIES = ("torch", "transformers", "opacus", "numpy")


def library_versions(distributions: Iterable[str]) -> dict[str, str]:
    """``{distribution name: installed version or "not installed"}``, in the order given."""
    from importlib import metadata

    out = {}
    for name in distributions:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = NOT_INSTALLED
    return out


def runtime_versions() -> dict[str, str]:
    """Python and :data:`RUNTIME_LIBRARIES` versions, as ``audit.json`` records them."""
    return {"python": platform.python_version(), **library_versions(RUNTIME_LIBRARIES)}
