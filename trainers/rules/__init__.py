"""Bias rules, registered by module type. Importing this package registers every family."""

from dpaudit.trainers.rules.registry import BIAS_RULES, BiasRule, register_bias_rule, rule_for
from dpaudit.trainers.rules import linear, norm, conv  # noqa: F401  (registration side effect)

__all__ = ["BIAS_RULES", "BiasRule", "register_bias_rule", "rule_for"]
