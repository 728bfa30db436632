"""The Python front door (docs/library.md): every name in ``dpaudit.__all__`` exists, and
``train → audit → gate → render`` runs on a tiny random BERT, matching what the CLI writes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import dpaudit
from dpaudit.api import resolve_config
from dpaudit.errors import ConfigError, DataError
from tests.cli._helpers import save_tiny_model, write_csv

ROOT = Path(__file__).resolve().parents[1]
TINY = {"data.max_length": 16, "audit.fprs": [0.1], "train.noise": "seeded"}


def test_every_name_in_all_exists_and_import_stays_torch_free():
    code = ("import sys, dpaudit; assert 'torch' not in sys.modules and 'numpy' not in sys.modules; "
            "missing = [n for n in dpaudit.__all__ if getattr(dpaudit, n, None) is None]; "
            "assert not missing, missing; assert set(dpaudit.__all__) <= set(dir(dpaudit)); print('ok')")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for name in ("train", "audit", "gate", "render", "load_config", "Config", "DataConfig", "ModelConfig",
                 "PrivacyConfig", "OptimConfig", "TrainConfig", "AuditConfig", "TargetConfig", "ClippingConfig",
                 "ScoreAuditor", "TrainResult", "Report", "GateResult"):
        assert name in dpaudit.__all__, name


def test_config_errors_and_data_errors_are_value_errors():
    assert issubclass(ConfigError, ValueError) and issubclass(DataError, ValueError)
    with pytest.raises(ValueError, match="section.key"):
        resolve_config(None, {"epochs": 1})
    with pytest.raises(ConfigError, match="unknown keyword"):
        resolve_config(None, epoch=1)


def test_overrides_and_shortcuts_resolve_like_the_cli_flags():
    cfg = resolve_config(None, {"train.epochs": 2.0, "data.max_length": 16}, epsilon=3.0, batch_size=8)
    assert (cfg.train.epochs, cfg.data.max_length, cfg.privacy.epsilon, cfg.train.batch_size) == (2.0, 16, 3.0, 8)
    again = resolve_config(cfg, epochs=1.0)  # a Config is a starting point too
    assert again.train.epochs == 1.0 and again.privacy.epsilon == 3.0
    assert resolve_config(cfg) is cfg
    with pytest.raises(ConfigError, match="epochs"):
        resolve_config(None, epochs=-1.0)


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = tmp_path_factory.mktemp("api")
    return save_tiny_model(root / "bert"), write_csv(root / "data.csv", n=80)


@pytest.fixture(scope="module")
def trained(assets):
    model, data = assets
    return dpaudit.train(data=str(data), model=str(model), epsilon=8.0, epochs=1, batch_size=16, overrides=TINY)


def test_train_in_memory_then_save_writes_what_the_cli_writes(trained, tmp_path):
    assert trained.run_dir is None
    assert 0.0 <= trained.accuracy <= 1.0 and trained.privacy["epsilon"] <= 8.0 + 1e-9
    assert trained.privacy["steps"] == trained.metrics["steps"] > 0
    assert any(".bias" in name for name in trained.tables)
    out = trained.save(tmp_path / "run")
    names = {p.name for p in out.iterdir()}
    assert {"dpaudit-run.json", "config.json", "split.json", "models.safetensors", "metrics.json"} <= names
    assert json.loads((out / "metrics.json").read_text()) == json.loads(json.dumps(trained.metrics))
    reread = dpaudit.TrainResult.read(out, trained.config)
    assert reread.checkpoint == trained.checkpoint and reread.run_dir == out


def test_audit_gate_render_of_a_trained_model(trained, tmp_path):
    report = dpaudit.audit(target=trained, shadows=4, attacks=["loss"])
    assert isinstance(report, dpaudit.Report) and report.run_dir is None
    assert report.to_dict()["attacks"][0]["name"] == "loss"
    assert report.claimed_epsilon == pytest.approx(trained.privacy["epsilon"])
    assert report.strongest_attack in (None, "loss") and (report.auc is None or 0.0 <= report.auc <= 1.0)
    saved = report.save(tmp_path / "audit.json")
    # a policy that checks the claim: passes on the Report, the AuditReport and the path alike
    for what in (report, report.audit, saved):
        result = dpaudit.gate(what, {"name": "claim", "max_epsilon": 8.5, "allow_seeded_noise": True})
        assert (result.passed, result.exit_code, result.inconclusive) == (True, 0, False), result.table()
    failed = dpaudit.gate(saved, {"name": "strict", "max_epsilon": 0.01, "allow_seeded_noise": True})
    assert (failed.passed, failed.exit_code) == (False, 1) and "strict" in failed.table()
    # the seeded noise of this tiny run is refused by a release policy: inconclusive or failed, never a pass
    assert dpaudit.gate(saved, ROOT / "configs" / "policy.toml").exit_code in (1, 3)
    written = dpaudit.render(report, tmp_path / "out", formats=("md",))
    assert [p.name for p in written] == ["report.md"] and written[0].stat().st_size > 0
    with pytest.raises(ConfigError, match="formats"):
        dpaudit.render(report, tmp_path / "out", formats=("docx",))


def test_train_into_a_run_dir_resumes_and_audits_from_it(assets, tmp_path):
    model, data = assets
    kw = dict(data=str(data), model=str(model), epochs=1, batch_size=16, epsilon=8.0, overrides=TINY)
    first = dpaudit.train(run_dir=tmp_path / "run", **kw)
    assert first.run_dir == tmp_path / "run" and (first.run_dir / "models.safetensors").is_file()
    with pytest.raises(ConfigError):  # other inputs into the same run directory are refused
        dpaudit.train(run_dir=tmp_path / "run", **{**kw, "epsilon": 4.0})


def test_score_auditor_validates_once_and_matches_the_array_functions():
    from dpaudit.attacks.metrics import compute_metrics
    from dpaudit.privacy import Explicit
    from dpaudit.privacy.lower_bounds import epsilon_lower_bound
    from dpaudit.privacy.one_run import one_run_audit

    rng = np.random.default_rng(0)
    inc = rng.random(400) < 0.5
    s = rng.normal(size=400) + 1.5 * inc
    a = dpaudit.ScoreAuditor(s, inc)
    m = compute_metrics(s, inc, fprs=(0.05,))
    assert a.auc() == pytest.approx(m.auc) and a.tpr_at_fpr(0.05) == m.tpr_at_fpr[0].tpr
    assert np.array_equal(a.roc()[0], m.fpr) and np.array_equal(a.roc()[1], m.tpr)
    guess = dict(num_guesses_in=40, num_guesses_out=40, delta=1e-5, significance=0.05)
    assert a.epsilon_one_run(**guess) == one_run_audit(s, inc, estimators=("one_run",), **guess)
    fdp = a.epsilon_one_run_fdp(**guess)
    assert fdp.kind == "estimate" and fdp.epsilon_lb >= a.epsilon_one_run(**guess).epsilon_lb > 0
    cp = a.epsilon_clopper_pearson(delta=1e-5, strategy=Explicit(0.75))
    assert cp == epsilon_lower_bound(s[inc], s[~inc], delta=1e-5, strategy=Explicit(0.75))
    # shuffled membership: no signal, the bound collapses (the estimator is not reading the labels blindly)
    null = dpaudit.ScoreAuditor(s, rng.permutation(inc)).epsilon_one_run(**guess).epsilon_lb
    assert null < a.epsilon_one_run(**guess).epsilon_lb
    assert not a.scores.flags.writeable


@pytest.mark.parametrize("scores, included, match", [
    ([[1.0, 2.0]], np.array([True, False]), "1-D"),
    ([], np.array([], dtype=bool), "1-D"),
    ([1.0, float("nan"), 2.0], np.array([True, False, True]), "NaN value.*index 1"),
    ([1.0, 2.0], [1, 0], "bool array"),
    ([1.0, 2.0, 3.0], np.array([True, False]), "equal length"),
    (["a", "b"], np.array([True, False]), "numbers"),
])
def test_score_auditor_refuses_bad_input_with_one_line(scores, included, match):
    with pytest.raises(DataError, match=match) as err:
        dpaudit.ScoreAuditor(scores, included)
    assert "\n" not in str(err.value)


def test_score_auditor_one_class_metrics_are_refused():
    a = dpaudit.ScoreAuditor([1.0, 2.0], np.array([True, True]))
    with pytest.raises(DataError, match="non-members"):
        a.auc()
