"""The head's learning rate is part of a run's identity: a resume under another head_lr is refused, and the
value is range-checked at load like every other number (issue 13 added ``optim.head_lr``)."""

from __future__ import annotations

import numpy as np
import pytest

from dpaudit.config import load_config, parse_override
from dpaudit.errors import ConfigError
from dpaudit.rundir import RunDir
from dpaudit.trainers.classifier import BankedClassifier
from dpaudit.trainers.loop import Trainer, TrainSettings
from tests.trainers._tiny import tiny_bert, tiny_population


def _trainer(run: RunDir, head_lr: float) -> Trainer:
    enc, labels = tiny_population(20)
    clf = BankedClassifier.from_backbone(tiny_bert(0), num_models=1, num_labels=2)
    settings = TrainSettings(epochs=1.0, batch_size=10, micro_batch_size=10, lr=0.01, head_lr=head_lr,
                             noise_multiplier=1.0)
    return Trainer(clf, enc, labels, np.ones((1, 20), bool), settings, seeds=[0], run=run,
                   meta={"backbone_sha256": "x"}, progress=False)


def test_a_checkpoint_is_not_resumed_under_another_head_lr(tmp_path):
    run = RunDir.claim(tmp_path, command="train")
    _trainer(run, 0.05).run(resume=False)
    assert _trainer(run, 0.05).try_resume()  # the same settings resume
    with pytest.raises(ConfigError, match="other settings"):
        _trainer(run, 0.01).try_resume()


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "true", "'fast'", "0", "101"])
def test_hostile_head_lr_values_are_one_config_error(value):
    with pytest.raises(ConfigError, match=r"optim\.head_lr must be"):
        load_config(None, [parse_override(f"optim.head_lr={value}")])
