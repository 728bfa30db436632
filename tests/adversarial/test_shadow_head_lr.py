"""Shadows of a dpaudit checkpoint train their head like the target did (found when optim.head_lr arrived).

Mutant caught: the recipe copy forgets ``head_lr``, so shadows of a target whose head trained at 5e-2 would
train theirs at the config's rate (or, for a checkpoint written before head_lr existed, at 5e-2 instead of lr).
"""

from __future__ import annotations

from dpaudit.config import load_config
from dpaudit.pipeline.external import target_recipe
from dpaudit.trainers.recipe import resolve_privacy


def _copied(stated: dict):
    cfg, _ = load_config(None, [("optim", "head_lr", 0.3), ("privacy", "epsilon", 8.0)])
    settings, plan = resolve_privacy(cfg, [500, 500])
    meta = {"settings": stated, "noise_multiplier": 1.1, "sample_rate": 0.1, "steps": 30}
    new_settings, _, copied = target_recipe(meta, settings, plan)
    return new_settings, copied


def test_head_lr_is_copied_from_the_target():
    settings, copied = _copied({"lr": 5e-3, "head_lr": 5e-2})
    assert settings.lr == 5e-3 and settings.head_lr == 5e-2 and "head_lr" in copied


def test_a_checkpoint_without_head_lr_trained_its_head_at_lr():
    settings, _ = _copied({"lr": 5e-3})
    assert settings.head_lr is None  # None: the head trains at lr, as the target's did
