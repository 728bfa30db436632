"""Hostile keys at the registries: unhashable names and half-refused registrations.

Each test failed before the registries shared :class:`dpaudit.registry.Registry`: an unhashable name
escaped as a bare ``TypeError`` (a traceback at the CLI, not ``error: ...`` and exit 2), and a refused
multi-type bias-rule registration left the types before the duplicate registered.
"""

from __future__ import annotations

import numpy as np
import pytest
from torch import nn

from dpaudit.attacks.registry import create_attack
from dpaudit.errors import ConfigError
from dpaudit.privacy import one_run_audit
from dpaudit.trainers.rules import BIAS_RULES, register_bias_rule


def test_unhashable_attack_name_is_a_config_error_naming_the_known_attacks():
    with pytest.raises(ConfigError, match=r"unknown attack \['loss'\]; known attacks: .*loss"):
        create_attack(["loss"])


def test_unhashable_one_run_estimator_is_a_config_error():
    scores = np.linspace(0.0, 1.0, 20)
    included = np.arange(20) % 2 == 0
    with pytest.raises(ConfigError, match="estimators must be distinct names"):
        one_run_audit(scores, included, num_guesses_in=2, num_guesses_out=2, delta=1e-5, significance=0.05,
                      estimators=[["one_run"]])


def test_refused_bias_rule_registration_registers_nothing():
    class Fresh(nn.Linear):
        pass

    with pytest.raises(ValueError, match="already registered"):
        register_bias_rule((Fresh, nn.Linear, nn.LayerNorm), channel_dim=-1)
    assert Fresh not in BIAS_RULES


def test_duplicate_registration_error_is_part_of_the_hierarchy():
    # A plugin registering twice at import must still end in one "error: ..." line, not a traceback.
    from dpaudit.errors import DuplicateNameError

    with pytest.raises(DuplicateNameError) as info:
        register_bias_rule(nn.Linear, channel_dim=-1)
    assert isinstance(info.value, ConfigError) and info.value.exit_code == 2
