"""Issue 9 (house split): one mask check with one error type; library code logs, the CLI prints; one
version lookup. Each test fails on the code before the split."""

from __future__ import annotations

import io
import logging

import numpy as np
import pytest

from dpaudit.attacks.canary import canary_audit
from dpaudit.attacks.evaluate import evaluate_attack
from dpaudit.attacks.metrics import compute_metrics
from dpaudit.attacks.registry import create_attack
from dpaudit.attacks.signals import Signals
from dpaudit.errors import DataError
from dpaudit.rundir import RunDir


@pytest.fixture()
def signals() -> Signals:
    rng = np.random.default_rng(0)
    return Signals(rng.normal(size=(4, 40, 2)), rng.integers(0, 2, size=40))


def _bad_masks(shape):
    good = np.zeros(shape, dtype=bool)
    yield good.astype(np.int64)  # 0/1 integers are refused, never cast
    yield np.zeros((shape[0] + 1, *shape[1:]), dtype=bool)  # wrong shape


def test_every_mask_check_raises_one_error_with_one_message(signals):
    """Attack.score, evaluate_attack, canary_audit and compute_metrics: DataError, one template."""
    membership_calls = [
        lambda m: create_attack("loss").score(signals, m, target=0, reference=np.arange(1, 4)),
        lambda m: evaluate_attack("loss", signals, m, delta=1e-5),
    ]
    for call in membership_calls:
        for bad in _bad_masks((4, 40)):
            with pytest.raises(DataError, match=r"membership must be a bool array of shape \(4, 40\), got dtype="):
                call(bad)
    scores = np.linspace(0, 1, 40)
    for bad in _bad_masks((40,)):
        with pytest.raises(DataError, match=r"included must be a bool array of shape \(40,\), got dtype="):
            canary_audit(scores, bad, delta=1e-5, significance=0.05)
        with pytest.raises(DataError, match=r"is_member must be a bool array of shape \(40,\), got dtype="):
            compute_metrics(scores, bad)


def test_a_tampered_membership_file_is_a_data_error_naming_the_file(tmp_path):
    """The run directory's membership.npy goes through the same check (it was a ConfigError before)."""
    from dpaudit.pipeline.population import membership_stage as _membership

    run = RunDir.claim(tmp_path / "run", command="audit")
    run.bind({"n": 40})
    buf = io.BytesIO()
    np.save(buf, np.zeros((3, 40), dtype=np.int8), allow_pickle=False)
    run.write("membership.npy", buf.getvalue())
    with pytest.raises(DataError, match=r"membership.npy in run directory .* must be a bool array of shape "
                                        r"\(3, 40\), got dtype=int8.*use a new --run-dir"):
        _membership(run, None, 40, 3, None)


@pytest.fixture()
def clean_attacks_logger():
    """The ``dpaudit.pipeline`` logger as a library user finds it (an in-process CLI test may have configured it)."""
    log = logging.getLogger("dpaudit.pipeline")
    saved = (list(log.handlers), log.level, log.propagate)
    for handler in saved[0]:
        log.removeHandler(handler)
    log.setLevel(logging.NOTSET)
    log.propagate = True
    yield log
    for handler in list(log.handlers):
        log.removeHandler(handler)
    for handler in saved[0]:
        log.addHandler(handler)
    log.setLevel(saved[1])
    log.propagate = saved[2]


def test_the_library_logs_and_only_the_cli_prints(capsys, clean_attacks_logger):
    """dpaudit.pipeline speaks through logging: silent as a library, plain stdout lines under the CLI."""
    import dpaudit.pipeline.run as audit
    from dpaudit.cli.audit import show_progress_messages

    assert audit.logger.name == "dpaudit.pipeline.run"
    audit.logger.info("attack: loss")
    assert capsys.readouterr().out == ""
    root_seen = io.StringIO()
    root_handler = logging.StreamHandler(root_seen)  # what opacus' logging.basicConfig installs, on stderr
    logging.getLogger().addHandler(root_handler)
    try:
        show_progress_messages()
        show_progress_messages()  # idempotent: still one line per message
        audit.logger.info("attack: loss")
    finally:
        logging.getLogger().removeHandler(root_handler)
    assert capsys.readouterr().out == "attack: loss\n"
    assert root_seen.getvalue() == ""  # not repeated, time-stamped, by a root handler


def test_one_version_lookup_for_audit_and_env():
    import numpy
    import opacus
    import torch
    import transformers

    from dpaudit.cli.env import environment_lines
    from dpaudit.versions import runtime_versions

    versions = runtime_versions()
    assert {k: versions[k] for k in ("torch", "transformers", "opacus", "numpy")} == {
        "torch": torch.__version__, "transformers": transformers.__version__, "opacus": opacus.__version__,
        "numpy": numpy.__version__}
    lines = environment_lines()
    for name in ("torch", "transformers", "opacus", "numpy"):
        assert f"- {name}: {versions[name]}" in lines
