"""The generic registry and the four tables built on it (bias rules, attacks, accountants, estimators)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from dpaudit.errors import ConfigError, DuplicateNameError, UnknownNameError
from dpaudit.registry import Registry


@pytest.fixture
def reg() -> Registry[str, int]:
    r: Registry[str, int] = Registry("colour")
    r.register("red", 1)
    r.register("green", 2)
    return r


def test_register_get_contains_len(reg):
    assert reg.get("red") == 1 and reg["green"] == 2
    assert "red" in reg and "blue" not in reg and ["unhashable"] not in reg
    assert len(reg) == 2
    assert reg.items() == (("red", 1), ("green", 2))


def test_names_keep_registration_order(reg):
    reg.register("blue", 3)
    reg.register("amber", 4)
    assert reg.names() == ("red", "green", "blue", "amber")
    assert list(reg) == ["red", "green", "blue", "amber"]


def test_duplicate_refused_without_force_and_value_kept(reg):
    with pytest.raises(DuplicateNameError, match=r"^colour 'red' is already registered; pass force=True"):
        reg.register("red", 9)
    assert reg.get("red") == 1
    assert reg.register("red", 9, force=True) == 9
    assert reg.get("red") == 9 and reg.names() == ("red", "green")  # replacing keeps the position


def test_duplicate_is_both_a_config_error_and_a_value_error(reg):
    for kind in (ConfigError, ValueError):
        with pytest.raises(kind):
            reg.register("green", 0)


@pytest.mark.parametrize("key", ["blue", 3, ["a", "list"], None])
def test_unknown_key_one_error_naming_it_and_the_known_ones(reg, key):
    with pytest.raises(UnknownNameError) as info:
        reg.get(key)
    assert str(info.value) == f"colour must be one of {{green, red}}, got colour={key!r}."
    assert isinstance(info.value, ConfigError) and isinstance(info.value, LookupError)
    assert info.value.exit_code == 2 and "\n" not in str(info.value)


def test_unknown_key_in_an_empty_registry():
    with pytest.raises(UnknownNameError, match=r"^thing must be one of \{\}, got thing='x'\.$"):
        Registry("thing").get("x")


def test_long_unknown_key_is_elided():
    with pytest.raises(UnknownNameError) as info:
        Registry("thing").get("x" * 500)
    assert len(str(info.value)) < 120


def test_decorator_registers_and_returns_the_object(reg):
    @reg.register("make_white")
    def make_white():
        return 0xFFFFFF

    assert reg.get("make_white") is make_white and make_white() == 0xFFFFFF
    with pytest.raises(DuplicateNameError):
        reg.register("make_white")(lambda: 0)
    replacement = reg.register("make_white", force=True)(lambda: 0)
    assert reg.get("make_white") is replacement


def test_unregister(reg):
    assert reg.unregister("red") == 1
    assert reg.names() == ("green",)
    with pytest.raises(UnknownNameError):
        reg.unregister("red")


def test_custom_unknown_message_and_key_display():
    types: Registry[type, str] = Registry("handler", show=lambda t: t.__qualname__,
                                          unknown="no {kind} for {key}; known: {known}.")
    types.register(int, "i")
    types.register(float, "f")
    with pytest.raises(UnknownNameError, match=r"^no handler for str; known: float, int\.$"):
        types.get(str)
    with pytest.raises(DuplicateNameError, match=r"^handler int is already registered"):
        types.register(int, "again")


def test_type_keys_are_exact_no_base_class_fallback():
    types: Registry[type, str] = Registry("handler")
    types.register(Exception, "base")
    assert ValueError not in types
    with pytest.raises(UnknownNameError):
        types.get(ValueError)


# -------------------------------------------------------------------------- the ported tables


def test_every_table_is_a_registry():
    from dpaudit.attacks.registry import ATTACKS
    from dpaudit.privacy import ACCOUNTANTS, ONE_RUN_ESTIMATORS
    from dpaudit.trainers.rules import BIAS_RULES

    for table in (ATTACKS, ACCOUNTANTS, ONE_RUN_ESTIMATORS, BIAS_RULES):
        assert isinstance(table, Registry)
    assert ACCOUNTANTS.names()[:2] == ("prv", "rdp")
    assert ONE_RUN_ESTIMATORS.names() == ("one_run", "one_run_fdp")


def test_unknown_names_raise_the_one_error_everywhere():
    from dpaudit.attacks.registry import create_attack
    from dpaudit.privacy import ONE_RUN_ESTIMATORS, create_accountant

    with pytest.raises(UnknownNameError, match=r"^unknown attack 'lira'; known attacks: .*rmia, shadow\.$"):
        create_attack("lira")
    with pytest.raises(UnknownNameError, match=r"^accountant must be one of \{pld, prv, rdp.*\}, got accountant='gdp'\.$"):
        create_accountant("gdp")
    with pytest.raises(UnknownNameError, match=r"^estimator must be one of \{one_run, one_run_fdp\}"):
        ONE_RUN_ESTIMATORS.get("two_run")


def test_duplicates_raise_the_one_error_everywhere():
    from torch import nn

    from dpaudit.attacks.registry import ATTACKS, register_attack
    from dpaudit.privacy import ACCOUNTANTS, register_accountant
    from dpaudit.trainers.rules import register_bias_rule

    with pytest.raises(DuplicateNameError, match="attack 'loss' is already registered"):
        register_attack("loss")(ATTACKS.get("loss"))
    with pytest.raises(DuplicateNameError, match="accountant 'prv' is already registered"):
        register_accountant("prv")(type(ACCOUNTANTS.get("prv")))
    with pytest.raises(DuplicateNameError, match="bias rule Linear is already registered"):
        register_bias_rule(nn.Linear, channel_dim=-1)


def test_bias_rule_registration_is_all_or_nothing():
    from torch import nn

    from dpaudit.trainers.rules import BIAS_RULES, register_bias_rule

    class Fresh(nn.Linear):
        pass

    with pytest.raises(DuplicateNameError):
        register_bias_rule((Fresh, nn.Linear), channel_dim=-1)
    assert Fresh not in BIAS_RULES  # the refused call registered nothing


def test_bias_rule_lookup_is_by_exact_type_and_keeps_unsupported_module_error():
    from torch import nn

    from dpaudit.errors import UnsupportedModuleError
    from dpaudit.trainers.rules import rule_for

    class MyLinear(nn.Linear):
        pass

    assert rule_for(nn.Linear(2, 2), "head").channel_dim == -1
    with pytest.raises(UnsupportedModuleError, match=r"module 'enc\.0' \(MyLinear\) has a trainable bias"):
        rule_for(MyLinear(2, 2), "enc.0")


def test_registry_module_imports_no_torch_or_numpy():
    code = "import sys, dpaudit.registry; print(sorted({'torch', 'numpy'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"

