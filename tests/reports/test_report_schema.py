from __future__ import annotations

import dataclasses
import json

import pytest

from tests.reports import sample
from dpaudit import protection, report_io
from dpaudit import report_schema as rs
from dpaudit.errors import DataError
from dpaudit.protection import protection_level
from dpaudit.report_io import load_report, validate_report
from dpaudit.report_schema import AuditReport


def test_all_names_exist():
    for name in rs.__all__:
        assert hasattr(rs, name), name


def test_split_modules_export_what_they_list():
    for module in (report_io, protection):
        for name in module.__all__:
            assert hasattr(module, name), (module.__name__, name)


def test_report_model_needs_only_the_standard_library():
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = str(Path(rs.__file__).resolve().parents[1])
    code = ("import sys, dpaudit.report_schema; "
            "print(sorted(m for m in ('numpy', 'jsonschema', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root,
                         env={**os.environ, "PYTHONPATH": root})
    assert out.stdout.strip() == "[]"


def test_bundled_schema_is_the_written_version():
    assert report_io.load_schema()["$id"].endswith(f"/audit-{rs.SCHEMA_VERSION}.json")


def test_round_trip_dict_and_json(report):
    data = report.to_dict()
    assert AuditReport.from_dict(data) == report
    assert AuditReport.from_dict(json.loads(json.dumps(data))) == report
    assert AuditReport.from_dict(data).to_dict() == data


def test_to_dict_is_fresh(report):
    data = report.to_dict()
    data["run"]["dataset"]["name"] = "changed"
    data["attacks"][0]["epsilon_lb"]["epsilon_lb"] = 99.0
    assert report.run.dataset["name"] == "sst2-embedded"
    assert report.attacks[0].epsilon_lb["epsilon_lb"] != 99.0
    assert isinstance(data["attacks"], list) and isinstance(data["attacks"][0]["roc"]["fpr"], list)


def test_dataclasses_are_frozen(report):
    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign"):
        report.schema_version = "2.0"


def test_non_private_report_validates_and_states_status():
    report = sample.make_report(non_private=True)
    validate_report(report.to_dict())
    assert report.privacy.status == "non_private" and report.privacy.epsilon is None
    assert AuditReport.from_dict(report.to_dict()) == report


def test_unknown_keys_are_ignored_for_forward_compatibility(report):
    data = report.to_dict()
    data["future_section"] = {"x": 1}
    data["attacks"][0]["future_metric"] = 0.5
    validate_report(data)
    assert AuditReport.from_dict(data) == report


def test_nan_is_rejected_with_path(report):
    data = report.to_dict()
    data["attacks"][2]["auc"] = float("nan")
    with pytest.raises(DataError, match=r"attacks/2/auc: nan is not a finite number"):
        validate_report(data)


def test_infinity_is_rejected(report):
    data = report.to_dict()
    data["privacy"]["epsilon"] = float("inf")
    with pytest.raises(DataError, match=r"privacy/epsilon"):
        validate_report(data)


@pytest.mark.parametrize(("mutate", "where"), [
    (lambda d: d["attacks"][0].__setitem__("auc", "0.5"), "attacks/0/auc"),
    (lambda d: d["attacks"][1].pop("tpr_at_fpr"), "attacks/1"),
    (lambda d: d.__setitem__("schema_version", "2.0"), "schema_version"),
    (lambda d: d["privacy"].__setitem__("delta", 1.5), "privacy/delta"),
    (lambda d: d["attacks"][0].__setitem__("auc", None), "attacks/0/auc"),  # null needs inconclusive
])
def test_schema_violation_names_the_path(report, mutate, where):
    data = report.to_dict()
    mutate(data)
    with pytest.raises(DataError, match=f"invalid at {where}"):
        validate_report(data)


def test_inconclusive_attack_needs_reason_and_may_have_null_metrics(report):
    data = report.to_dict()
    attack = data["attacks"][0]
    attack.update(status="inconclusive", reason=None, auc=None, balanced_accuracy=None)
    with pytest.raises(DataError, match="attacks/0/reason"):
        validate_report(data)
    attack["reason"] = "one-class labels"
    validate_report(data)


def test_load_report_missing(tmp_path):
    with pytest.raises(DataError, match="audit report not found: .*run `dpaudit audit` first"):
        load_report(tmp_path / "audit.json")


def test_load_report_truncated(report_path):
    text = report_path.read_text()
    report_path.write_text(text[: len(text) // 2])
    with pytest.raises(DataError, match=r"is not valid JSON \(truncated\?\)"):
        load_report(report_path)


def test_load_report_empty(report_path):
    report_path.write_text("")
    with pytest.raises(DataError, match="is empty"):
        load_report(report_path)


def test_load_report_nan_literal(report_path):
    data = json.loads(report_path.read_text())
    data["attacks"][0]["auc"] = float("nan")
    report_path.write_text(json.dumps(data))  # Python writes the non-standard literal NaN
    assert '"auc": NaN' in report_path.read_text()
    with pytest.raises(DataError, match="contains NaN, which is not a finite number"):
        load_report(report_path)


def test_load_report_schema_invalid_is_one_line(report_path):
    data = json.loads(report_path.read_text())
    del data["privacy"]["epsilon"]
    report_path.write_text(json.dumps(data))
    with pytest.raises(DataError, match="invalid at privacy: 'epsilon' is a required property") as info:
        load_report(report_path)
    assert "\n" not in str(info.value)


def test_load_and_dump_round_trip(tmp_path, report):
    path = report_io.dump_report(report, tmp_path / "audit.json")
    assert load_report(path) == report


@pytest.mark.parametrize(("value", "level"), [
    (0.5, "strong"), (0.5499, "strong"), (0.55, "moderate"), (0.5999, "moderate"), (0.6, "weak"), (1.0, "weak"),
])
def test_protection_level(value, level):
    assert protection_level(value) == level


def test_protection_level_rejects_nan_and_none():
    with pytest.raises(DataError, match="balanced_accuracy must be in"):
        protection_level(float("nan"))
    with pytest.raises(TypeError, match="must be a real number"):
        protection_level(None)


def test_strongest_attack(report):
    assert report.strongest_attack().name == "lira_online"
    assert report.verdict.strongest_attack == "lira_online"


def test_optional_keys_may_be_absent(report):
    data = report.to_dict()
    del data["privacy"]["status"], data["privacy"]["reason"], data["verdict"]["checks"]
    del data["verdict"]["policy"], data["verdict"]["passed"], data["utility"]["non_private_reference"]
    validate_report(data)
    expected = dataclasses.replace(report, utility=dataclasses.replace(report.utility,
                                                                       non_private_reference=None))
    assert AuditReport.from_dict(data) == expected


def test_lower_bound_dict_from_privacy_module_validates(report):
    lower_bounds = pytest.importorskip("dpaudit.privacy.lower_bounds")
    fields = {f.name for f in dataclasses.fields(lower_bounds.EmpiricalEpsilon)}
    lb = {k: v for k, v in report.attacks[0].epsilon_lb.items() if k in fields}
    lb.update(n_in=None, n_out=None)
    as_dict = lower_bounds.EmpiricalEpsilon(**lb).to_dict()
    data = report.to_dict()
    data["attacks"][0]["epsilon_lb"] = as_dict
    data["canary"] = as_dict
    validate_report(data)
