"""`dpaudit verify` end to end on a tiny checkpoint: writes mechanism_check.json in a dpaudit run directory,
prints the claim beside ε_LB, exits 1 when the seed is published (seeded noise is caught), 2 on bad flags."""

from __future__ import annotations

import json

import pytest
import torch

from dpaudit.report_io import validate_report
from tests.cli._helpers import assert_one_error_line, run_cli, save_tiny_model, write_csv
from tests.reports import sample


@pytest.fixture
def inputs(tmp_path, capsys):
    torch.set_num_threads(1)
    paths = str(save_tiny_model(tmp_path / "model")), str(write_csv(tmp_path / "data.csv", n=64))
    capsys.readouterr()  # the checkpoint writer's progress bar
    return paths


def _args(inputs, run_dir, *extra) -> list[str]:
    model, data = inputs
    return ["verify", "--model", model, "--data", data, "--run-dir", str(run_dir), "--set",
            "privacy.noise_multiplier=1.2734375", "--delta", "0.01", "--batch-size", "16", "--epochs", "1",
            "--device", "cpu", "--canaries", "4000", "--quiet", *extra]


def test_verify_writes_the_check_and_catches_a_published_seed(tmp_path, capsys, inputs):
    code, out, err = run_cli(capsys, _args(inputs, tmp_path / "ok"))
    assert code == 0, err
    assert "white-box ε_LB" in out and "PASS" in out
    written = json.loads((tmp_path / "ok" / "mechanism_check.json").read_text())
    assert written["passed"] and written["noise"] == "secure" and written["num_canaries"] == 4000
    assert (tmp_path / "ok" / "dpaudit-run.json").is_file()
    report = sample.make_report().to_dict()
    validate_report({**report, "mechanism_check": written})
    code, out, _ = run_cli(capsys, _args(inputs, tmp_path / "seeded", "--seeded-noise", "--seed", "3"))
    assert code == 1 and "FAIL" in out
    assert json.loads((tmp_path / "seeded" / "mechanism_check.json").read_text())["seed_published"] is True


@pytest.mark.parametrize("flag, value, fragment", [("--canaries", "1", "--canaries"),
                                                   ("--canaries", "many", "--canaries"),
                                                   ("--significance", "1.5", "--significance")])
def test_bad_flags_are_one_line_exit_2(tmp_path, capsys, inputs, flag, value, fragment):
    with pytest.raises(SystemExit) as info:
        run_cli(capsys, _args(inputs, tmp_path / "bad", flag, value))
    assert info.value.code == 2
    assert_one_error_line(capsys.readouterr().err, fragment)
    assert not (tmp_path / "bad").exists()  # refused before any work


def test_layer_wise_clipping_is_refused_with_the_fix(tmp_path, capsys, inputs):
    code, _, err = run_cli(capsys, _args(inputs, tmp_path / "lw", "--set", "clipping.mode=layer_wise"))
    assert code == 2
    assert_one_error_line(err, "clipping.mode", "all_layer")


def test_group_clipping_is_refused_before_any_work():
    from dpaudit.config import load_config
    from dpaudit.errors import ConfigError
    from dpaudit.verify import run_mechanism_check

    cfg, _ = load_config(None, [("clipping", "mode", "groups"), ("clipping", "groups", {"all": [".*", 1.0]})])
    with pytest.raises(ConfigError, match="clipping.mode must be in {all_layer}.*got mode='groups'"):
        run_mechanism_check(cfg, backbone=object(), encoded=[], labels=[])


def test_verify_loads_the_data_as_train_does(tmp_path, capsys, inputs, monkeypatch):
    """A saved dataset with two splits and a text-pair column: verify checks the q of the split and pairs
    `dpaudit train` trains on (it used to read the default split, single texts: another N, another claim)."""
    import datasets

    from dpaudit.trainers.batching import EncodedTexts

    model, _ = inputs
    rows = lambda n: {"text": [f"good film {i}" for i in range(n)], "pair": [f"dull plot {i}" for i in range(n)],
                      "label": [i % 2 for i in range(n)]}
    path = tmp_path / "saved"
    datasets.DatasetDict({"train": datasets.Dataset.from_dict(rows(64)),
                          "small": datasets.Dataset.from_dict(rows(40))}).save_to_disk(str(path))
    flags = ["--model", model, "--data", str(path), "--set", "privacy.noise_multiplier=1.2734375", "--delta", "0.01",
             "--batch-size", "8", "--epochs", "1", "--device", "cpu", "--quiet", "--set", "data.split=small",
             "--set", "data.text_pair_column=pair"]
    assert run_cli(capsys, ["train", "--run-dir", str(tmp_path / "train"), *flags])[0] == 0
    trained = json.loads((tmp_path / "train" / "metrics.json").read_text())
    encoded_pairs = []
    original = EncodedTexts.from_texts.__func__

    def spy(cls, texts, tokenizer, *, max_length, pairs=None):
        encoded_pairs.append(pairs is not None and len(pairs) == len(texts))
        return original(cls, texts, tokenizer, max_length=max_length, pairs=pairs)

    monkeypatch.setattr(EncodedTexts, "from_texts", classmethod(spy))
    code, _, err = run_cli(capsys, ["verify", "--run-dir", str(tmp_path / "v"), "--canaries", "200", *flags])
    assert code == 0, err
    check = json.loads((tmp_path / "v" / "mechanism_check.json").read_text())
    assert check["sample_rate"] == pytest.approx(trained["sample_rate"]) == pytest.approx(8 / trained["n_train"])
    assert trained["n_train"] == 32 and check["steps"] == trained["steps"]
    assert encoded_pairs == [True]
