"""``dpaudit.clipping.ClippingConfig``: the one clipping-settings class of config, trainer and report."""

from __future__ import annotations

import pytest

from dpaudit import clipping
from dpaudit.config import Config, load_config, parse_override
from dpaudit.errors import ConfigError
from dpaudit.report_schema import ClippingSummary


def _load(*overrides: str) -> Config:
    return load_config(None, [parse_override(o) for o in overrides])[0]


def test_config_and_trainer_share_the_class():
    from dpaudit.trainers.dp import ClippingConfig as TrainerClipping

    assert TrainerClipping is clipping.ClippingConfig
    assert type(_load().clipping) is clipping.ClippingConfig
    assert type(Config().clipping) is clipping.ClippingConfig


def test_loaded_config_assigns_groups_like_the_trainer():
    cfg = _load("clipping.mode='groups'", "clipping.groups={attn=['attention', 0.5], rest=['output', 2]}")
    ids, thresholds, names = cfg.clipping.assign(["layer.0.attention.bias", "layer.0.output.bias"])
    assert (ids, thresholds, names) == ([0, 1], [0.5, 2.0], ["attn", "rest"])


def test_summary_reduces_groups_to_thresholds():
    cfg = _load("clipping.mode='groups'", "clipping.style='automatic'", "clipping.max_grad_norm=0.5",
                "clipping.groups={attn=['attention', 0.25], rest=['.*', 2]}")
    summary = ClippingSummary.from_config(cfg.clipping)
    assert summary.to_dict() == {"mode": "groups", "style": "automatic", "max_grad_norm": 0.5,
                                 "groups": {"attn": 0.25, "rest": 2.0}}
    assert isinstance(summary.groups["rest"], float)


def test_direct_construction_is_checked_like_the_config():
    with pytest.raises(ConfigError, match="clipping.mode = 'groups' needs clipping.groups"):
        clipping.ClippingConfig(mode="groups")
    with pytest.raises(ConfigError, match="clipping.style must be one of"):
        clipping.ClippingConfig(style="clip")
    with pytest.raises(ConfigError, match=r"clipping.max_grad_norm must be in \(0, 1000000\]"):
        clipping.ClippingConfig(max_grad_norm=float("nan"))
