"""``dpaudit.config``: every value is checked at load, against ranges and choices that match the trainers."""

from __future__ import annotations

import math
from dataclasses import fields
from pathlib import Path

import pytest

from dpaudit._validation import check_real, short_repr
from dpaudit.config import CHOICES, PRESETS, RANGES, Config, load_config, parse_override
from dpaudit.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def _load(*overrides: str) -> Config:
    return load_config(None, [parse_override(o) for o in overrides])[0]


def test_every_numeric_key_has_a_range():
    for section in fields(Config):
        for f in fields(section.default_factory()):
            annotation = str(f.type)
            if ("int" in annotation or "float" in annotation) and "bool" not in annotation:
                assert (section.name, f.name) in RANGES, f"{section.name}.{f.name} has no range"


def test_choices_match_the_trainers():
    from dpaudit.trainers.dp import CLIPPING_MODES, CLIPPING_STYLES
    from dpaudit.trainers.optim import OPTIMIZERS, SCHEDULES

    assert set(CHOICES["clipping", "style"]) == set(CLIPPING_STYLES)
    assert set(CHOICES["clipping", "mode"]) == set(CLIPPING_MODES)
    assert set(CHOICES["optim", "optimizer"]) == set(OPTIMIZERS)
    assert set(CHOICES["optim", "schedule"]) == set(SCHEDULES)


@pytest.mark.parametrize("preset", list(PRESETS))
def test_presets_and_the_demo_config_pass_their_own_checks(preset):
    assert _load(f"privacy.preset='{preset}'").privacy.epsilon == PRESETS[preset]["privacy"]["epsilon"]
    cfg, _ = load_config(ROOT / "configs" / "demo.toml")
    assert cfg.privacy.epsilon == 8.0 and cfg.audit.fprs == (0.001, 0.01, 0.1)


def test_closed_ends_are_accepted_and_open_ends_refused():
    cfg = _load("audit.significance=0.5", "audit.canary_guess_fraction=1", "audit.fprs=[1.0]",
                "privacy.noise_multiplier=1000000", "train.seed=4294967295", "train.device='cuda:1'")
    assert (cfg.audit.significance, cfg.audit.fprs, cfg.privacy.noise_multiplier) == (0.5, (1.0,), 1e6)
    assert isinstance(cfg.privacy.noise_multiplier, float) and isinstance(cfg.train.seed, int)
    for bad in ("audit.significance=0", "privacy.delta=0", "train.seed=4294967296", "privacy.epsilon=-inf"):
        with pytest.raises(ConfigError, match="must be in"):
            _load(bad)


def test_choices_are_checked_at_load():
    assert _load("privacy.accountant='rdp'", "privacy.neighbouring='add_remove'").privacy.accountant == "rdp"
    # opacus' accountants analyse add/remove only: with the default replace-one claim they are refused
    with pytest.raises(ConfigError, match=r"privacy.accountant='rdp' analyses add_remove neighbours only; set "
                                          r"privacy.accountant = 'pld'"):
        _load("privacy.accountant='rdp'")
    with pytest.raises(ConfigError, match=r"privacy.neighbouring must be one of \{add_remove, replace_one\}"):
        _load("privacy.neighbouring='substitute'")
    with pytest.raises(ConfigError, match=r"privacy.accountant must be one of \{pld, prv, rdp\}"):
        _load("privacy.accountant='gdp'")
    with pytest.raises(ConfigError, match="clipping.mode = 'groups' needs clipping.groups"):
        _load("clipping.mode='groups'")
    cfg = _load("clipping.mode='groups'", "clipping.groups={attention=['attention', 0.5], rest=['.*', 1.0]}")
    assert cfg.clipping.groups["rest"] == [".*", 1.0]
    with pytest.raises(ConfigError, match=r"clipping.groups.a threshold must be in \(0, 1000000\]"):
        _load("clipping.groups={a=['x', nan]}")


def test_huge_integers_give_a_short_message_not_overflow():
    with pytest.raises(ConfigError, match=r"must be in \[0, inf\) and representable as a float") as err:
        check_real("x", 10**400, 0, math.inf, closed="left")
    assert len(str(err.value)) < 200
    assert short_repr(10**400).endswith("(401 characters)")
    assert short_repr("abc") == "'abc'"


def test_bare_words_in_set_are_strings():
    assert parse_override("data.path=reviews.csv") == ("data", "path", "reviews.csv")
    assert parse_override("train.epochs=2") == ("train", "epochs", 2)


def test_head_lr_is_checked_and_reaches_the_trainer():
    from dpaudit.trainers.recipe import resolve_privacy

    assert (_load().optim.lr, _load().optim.head_lr) == (5e-3, 5e-2)  # the fallbacks
    assert _load("optim.lr=0.001").optim.head_lr == 5e-2  # a fallback fills only what is unset
    cfg = _load("optim.head_lr=0.05", "optim.lr=0.001", "privacy.epsilon=8.0")
    settings, _ = resolve_privacy(cfg, [1000])
    assert (settings.lr, settings.head_lr) == (0.001, 0.05)
    for bad in ("optim.head_lr=0", "optim.head_lr=-1.0", "optim.head_lr=nan", "optim.head_lr=1000.0"):
        with pytest.raises(ConfigError, match="optim.head_lr must be in"):
            _load(bad)


@pytest.mark.parametrize("preset,lr,head_lr,batch", [("high", 1e-2, 5e-2, 512), ("balanced", 5e-3, 5e-2, 512),
                                                     ("utility", 5e-3, 5e-2, 256)])
def test_presets_resolve_to_issue_13s_recipe(preset, lr, head_lr, batch):
    cfg, notes = load_config(None, [parse_override(f"privacy.preset='{preset}'")])
    assert (cfg.optim.lr, cfg.optim.head_lr, cfg.train.batch_size, cfg.train.epochs) == (lr, head_lr, batch, 3.0)
    assert f"preset '{preset}': optim.head_lr = {head_lr}" in notes
    # What the user set wins over the preset.
    assert _load(f"privacy.preset='{preset}'", "optim.head_lr=0.001").optim.head_lr == 0.001


def test_the_demo_config_uses_the_sweeps_learning_rates():
    cfg, _ = load_config(ROOT / "configs" / "demo.toml")
    assert (cfg.optim.lr, cfg.optim.head_lr) == (5e-3, 5e-2)
