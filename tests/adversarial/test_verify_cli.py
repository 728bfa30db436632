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
