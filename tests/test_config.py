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


# Python-built sections are refused exactly as the TOML loader refuses them: same check, same one-line message.
_BAD = [("data", "max_length", 0), ("data", "holdout_fraction", 1.0), ("data", "path", 3),
        ("optim", "lr", float("nan")), ("optim", "schedule", "step"), ("optim", "lr", None),
        ("train", "batch_size", 0), ("train", "device", "tpu"), ("train", "epochs", "3"), ("train", "dropout", 1),
        ("audit", "significance", 7.0), ("audit", "fprs", [0.1, 2.0]), ("audit", "shadow_recipe", "lora"),
        ("privacy", "epsilon", -1.0), ("privacy", "accountant", "gdp"), ("privacy", "preset", "max"),
        ("clipping", "max_grad_norm", 0.0), ("clipping", "style", "clip"),
        ("target", "claim_delta", 1.0), ("target", "recipe", "lora"), ("model", "exclude_modules", "pooler")]


@pytest.mark.parametrize("section,key,value", _BAD, ids=[f"{s}.{k}={v!r}" for s, k, v in _BAD])
def test_python_built_configs_refuse_what_the_loader_refuses(section, key, value):
    from dpaudit.config import _CLASSES

    with pytest.raises(ConfigError) as loaded:
        load_config(None, [(section, key, value)])
    with pytest.raises(ConfigError) as built:
        Config(**{section: _CLASSES[section](**{key: value})})
    assert str(built.value) == str(loaded.value) and "\n" not in str(built.value)


def test_the_researchers_example_is_refused_and_config_errors_are_value_errors():
    from dpaudit.config import AuditConfig

    with pytest.raises(ValueError, match=r"audit.significance must be in \(0, 0.5\]"):
        Config(audit=AuditConfig(num_shadows=3, significance=7.0))
    with pytest.raises(ConfigError, match="Config.audit must be of type AuditConfig"):
        Config(audit={"num_shadows": 4})


def test_python_built_values_are_stored_in_the_declared_types():
    from dpaudit.config import AuditConfig, OptimConfig

    assert AuditConfig(fprs=[0.1, 1]).fprs == (0.1, 1.0) and isinstance(OptimConfig(lr=1).lr, float)


def test_the_dataclass_defaults_are_what_the_loader_resolves():
    from dpaudit.config import FALLBACKS

    assert Config() == load_config()[0]
    assert (Config().optim.lr, Config().optim.head_lr, Config().train.batch_size, Config().train.epochs,
            Config().clipping.max_grad_norm) == (5e-3, 5e-2, 256, 3.0, 0.1)
    assert FALLBACKS["train"]["batch_size"] == 256 and FALLBACKS["clipping"]["max_grad_norm"] == 0.1
    # a preset still fills only what the user left unset
    assert _load("privacy.preset='high'").train.batch_size == 512
    assert _load("privacy.preset='high'", "train.batch_size=256").train.batch_size == 256


def test_every_field_carries_its_help_and_the_tables_are_read_off_the_fields():
    from dpaudit.config import _CLASSES

    for f in fields(Config):
        assert f.metadata.get("help"), f.name
    for section, cls in _CLASSES.items():
        for f in fields(cls):
            assert isinstance(f.metadata.get("help"), str) and f.metadata["help"].strip(), f"{section}.{f.name}"
            assert RANGES.get((section, f.name)) == f.metadata.get("range"), f"{section}.{f.name}"
            if isinstance(f.metadata.get("choices"), tuple):
                assert CHOICES[section, f.name] == f.metadata["choices"]
