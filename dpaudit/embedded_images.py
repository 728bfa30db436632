"""The embedded image task: Fashion-MNIST from Debian's ``dataset-fashion-mnist`` package, fetched by hash
and extracted, not installed.

Fashion-MNIST (Xiao, Rasul & Vollgraf, arXiv:1708.07747v2; Zalando SE, Expat licence): 28×28 grey images of
10 clothing classes, 60,000 train + 10,000 t10k, 6,000 / 1,000 per class. Debian bookworm ships it as
``dataset-fashion-mnist`` :data:`DEB_VERSION` (``/usr/share/datasets/fashion-mnist/*.gz``), pinned here by the
.deb's SHA-256 (:data:`DEB_SHA256`, the one Debian's signed ``Packages`` index lists).

``dpaudit fetch-assets --images`` (:func:`install_images`) gets the .deb — ``apt-get download`` where apt
exists (the machine's mirrors and proxy), else :data:`DEB_URL` with urllib, or a file given with ``--deb
FILE`` — checks its SHA-256, and extracts only the four IDX files and the copyright file into
``<sys.prefix>/share/dpaudit/embedded/fashion_mnist/`` (the .deb is an ``ar`` archive holding
``data.tar.xz``; both are read with the standard library, so neither ``dpkg`` nor root is needed).

The private task (``--data embedded-images``) is classes :data:`PRIVATE_CLASSES` (Sandal, Shirt, Sneaker,
Bag, Ankle boot) of the train split, relabelled 0-4; the embedded vision backbone was pretrained on the other
five classes (:data:`PUBLIC_CLASSES`; ``scripts/pretrain_vision.py``), so the two share no class and no image.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from dpaudit.errors import DataError

#: Fashion-MNIST's classes, index = label.
FASHION_MNIST_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                       "Bag", "Ankle boot")
#: Classes the embedded vision backbone was pretrained on (train split); never in the private task.
PUBLIC_CLASSES = (0, 1, 2, 3, 4)
#: Classes of the embedded private task (``--data embedded-images``), relabelled 0-4 in this order.
PRIVATE_CLASSES = (5, 6, 7, 8, 9)

DEB_PACKAGE = "dataset-fashion-mnist"
DEB_VERSION = "0.0~git20200523.55506a9-1"
DEB_FILE = f"{DEB_PACKAGE}_{DEB_VERSION}_all.deb"
DEB_SHA256 = "39e172fe32dd318ebb3e512220c3beea2fa47d7e20bab348fb4e0922d6beefc0"
DEB_BYTES = 30_900_652
#: Debian's pool (any mirror has the same path); ``~`` is percent-encoded.
DEB_URL = ("https://deb.debian.org/debian/pool/main/d/dataset-fashion-mnist/"
           + DEB_FILE.replace("~", "%7E"))
_MEMBERS = {f"./usr/share/datasets/fashion-mnist/{s}-{k}-ubyte.gz": f"{s}-{k}-ubyte.gz"
            for s in ("train", "t10k") for k in ("images-idx3", "labels-idx1")}
_MEMBERS["./usr/share/doc/dataset-fashion-mnist/copyright"] = "copyright"
_PIN_MARKER = "DEB-PIN"
_HINT = "run `dpaudit fetch-assets --images` (it fetches Debian's dataset-fashion-mnist .deb, pinned by hash)"
NAME = f"fashion-mnist classes 5-9 ({DEB_PACKAGE} {DEB_VERSION})"


def images_root() -> Path:
    """Folder of the extracted Fashion-MNIST files: ``<asset_root()>/fashion_mnist``."""
    from dpaudit.embedded import asset_root

    return asset_root() / "fashion_mnist"


def images_present(root: Path | None = None) -> bool:
    """Every file is extracted under ``root`` from the pinned .deb."""
    root = images_root() if root is None else Path(root)
    marker = root / _PIN_MARKER
    return (all((root / name).is_file() for name in _MEMBERS.values()) and marker.is_file()
            and marker.read_text(encoding="utf-8").strip() == f"{DEB_FILE} sha256:{DEB_SHA256}")


def check_deb(path: Path) -> None:
    """Refuse a .deb whose SHA-256 is not :data:`DEB_SHA256` (one line)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != DEB_SHA256:
        raise DataError(f"hash mismatch for '{path.name}': sha256 {digest.hexdigest()[:16]}…, pinned "
                        f"{DEB_SHA256[:16]}… ({DEB_FILE}); refused (a tampered or wrong download) — delete it and "
                        f"run `dpaudit fetch-assets --images` again.")


def _ar_member(data: bytes, prefix: str) -> tuple[str, bytes]:
    """The first member of an ``ar`` archive (a .deb) whose name starts with ``prefix``: (name, bytes)."""
    if not data.startswith(b"!<arch>\n"):
        raise DataError("the .deb is not an ar archive; download it again.")
    pos = 8
    while pos + 60 <= len(data):
        header = data[pos:pos + 60]
        name = header[:16].decode("ascii", "replace").strip().rstrip("/")
        size = int(header[48:58].decode("ascii").strip() or 0)
        if name.startswith(prefix):
            return name, data[pos + 60:pos + 60 + size]
        pos += 60 + size + (size % 2)
    raise DataError(f"the .deb has no {prefix}* member; download it again.")


def extract_deb(deb: Path, root: Path) -> None:
    """Extract the IDX and copyright files of the (hash-checked) .deb into ``root``, replacing it whole."""
    name, payload = _ar_member(deb.read_bytes(), "data.tar")
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".fashion-mnist-", dir=root.parent))
    try:
        with tarfile.open(fileobj=io.BytesIO(payload), mode="r:*") as tar:
            found = {m.name: m for m in tar.getmembers() if m.name in _MEMBERS and m.isreg()}
            missing = sorted(set(_MEMBERS) - set(found))
            if missing:
                raise DataError(f"the .deb lacks {missing[0]}; it is not {DEB_FILE}.")
            for member, target in _MEMBERS.items():
                with tar.extractfile(found[member]) as src, open(staging / target, "wb") as dst:
                    shutil.copyfileobj(src, dst)
        os.chmod(staging, 0o755)  # mkdtemp makes it 0700; the assets are public and may be shared
        (staging / _PIN_MARKER).write_text(f"{DEB_FILE} sha256:{DEB_SHA256}\n", encoding="utf-8")
        if root.exists():
            shutil.rmtree(root)
        os.replace(staging, root)
    except (tarfile.TarError, OSError) as err:
        raise DataError(f"cannot extract '{deb.name}' ({name}: {err}); download it again.") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def download_deb(dest: Path) -> Path:
    """The pinned .deb in ``dest``: ``apt-get download`` when apt exists, else urllib from :data:`DEB_URL`."""
    target = dest / DEB_FILE
    if shutil.which("apt-get"):
        done = subprocess.run(["apt-get", "download", "-q", f"{DEB_PACKAGE}={DEB_VERSION}"], cwd=dest,
                              capture_output=True, text=True)
        if done.returncode == 0 and target.is_file():
            return target
    import urllib.request

    try:
        with urllib.request.urlopen(DEB_URL, timeout=60) as response, open(target, "wb") as out:
            copied = 0
            for block in iter(lambda: response.read(1 << 20), b""):
                copied += len(block)
                if copied > DEB_BYTES:
                    raise DataError(f"{DEB_URL} served more than the pinned {DEB_BYTES:,} bytes; refused.")
                out.write(block)
    except OSError as err:
        raise DataError(f"cannot download {DEB_FILE} ({err}); retry with network access, or download {DEB_URL} "
                        f"elsewhere and run `dpaudit fetch-assets --deb FILE`.") from None
    return target


def install_images(deb: Path | None = None, *, root: Path | None = None) -> Path:
    """Check (and first download, when ``deb`` is None) the pinned .deb and extract it; returns the folder."""
    root = images_root() if root is None else Path(root)
    with tempfile.TemporaryDirectory(prefix="dpaudit-deb-") as tmp:
        deb = download_deb(Path(tmp)) if deb is None else Path(deb)
        if not deb.is_file():
            raise DataError(f"--deb {deb}: no such file; give the path of {DEB_FILE}.")
        check_deb(deb)
        extract_deb(deb, root)
    return root


def load_embedded_images(*, split: str = "train", max_examples: int | None = None, seed: int = 0,
                         image_size: int | None = None):
    """The embedded private task: Fashion-MNIST classes :data:`PRIVATE_CLASSES` of ``split`` (``"train"``,
    30,000 images, or ``"test"``, 5,000), labels 0-4 = Sandal, Shirt, Sneaker, Bag, Ankle boot."""
    import numpy as np

    from dpaudit.image_data import from_arrays
    from dpaudit.image_idx import read_idx_pair

    prefix = {"train": "train", "test": "t10k", "t10k": "t10k"}.get(split)
    if prefix is None:
        raise DataError(f"the embedded images have splits 'train' and 'test', not '{split}'; set data.split.")
    root = images_root()
    if not images_present(root):
        raise DataError(f"the embedded images (Fashion-MNIST) are not on this machine; {_HINT}.")
    pixels, raws = read_idx_pair(root / f"{prefix}-images-idx3-ubyte.gz")
    keep = np.isin(raws, PRIVATE_CLASSES)
    labels = np.searchsorted(np.array(PRIVATE_CLASSES), raws[keep]).astype(np.int64)
    return from_arrays(pixels[keep], labels, name=NAME, source=str(root), max_examples=max_examples, seed=seed,
                       image_size=image_size, label_names=tuple(FASHION_MNIST_NAMES[c] for c in PRIVATE_CLASSES))
