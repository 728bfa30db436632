"""Shared pieces of the CLI tests: tiny checkpoints, small CSVs, and the one-error-line contract."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import torch

from dpaudit.cli.main import main
from dpaudit.models import embedded_model_dir

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")
WORDS = ("good great fine bad awful film movie plot actor scene story dull funny long short warm cold "
         "bright dark slow quick").split()


def save_tiny_model(path: Path, kind: str = "bert", seed: int = 0) -> Path:
    """A random-weight Hugging Face checkpoint dir with the embedded model's tokenizer (vocab 30522)."""
    from transformers import BertConfig, BertModel, LlamaConfig, LlamaModel

    torch.manual_seed(seed)
    if kind == "bert":
        model = BertModel(BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=64, vocab_size=30522, max_position_embeddings=64))
    else:  # LLaMA-style: no bias anywhere
        model = LlamaModel(LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                       num_attention_heads=4, num_key_value_heads=4, vocab_size=30522,
                                       max_position_embeddings=64, pad_token_id=0))
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    for name in TOKENIZER_FILES:
        shutil.copy(embedded_model_dir() / name, path / name)
    return path


def write_csv(path: Path, n: int = 80, *, labels=("neg", "pos"), seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    rows = [" ".join(rng.choice(WORDS, size=int(rng.integers(3, 9)))) + f",{labels[i % len(labels)]}"
            for i in range(n)]
    path.write_text("text,label\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def run_cli(capsys, argv: list[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_error_line(err: str, *fragments: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"expected one stderr line, got {lines!r}"
    assert lines[0].startswith("error: ")
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]
