"""Privacy math: accountants, noise calibration, privacy profiles and ROC ceilings, ε lower bounds.

numpy/scipy only; opacus's accountants are imported lazily inside the functions that need them, so
importing this package never imports torch.
"""

from __future__ import annotations

from dpaudit.privacy.accounting import (
    ACCOUNTANTS,
    AccountingResult,
    NeighbouringRelation,
    PrivacyProfile,
    account,
    calibrate_noise,
    check_delta,
    compute_epsilon,
    create_accountant,
    default_delta,
    default_epsilon_grid,
    epsilon_from_history,
    max_steps,
    privacy_profile,
    register_accountant,
    roc_ceiling,
)
from dpaudit.privacy.lower_bounds import (
    Bonferroni,
    EmpiricalEpsilon,
    Explicit,
    Split,
    ThresholdStrategy,
    clopper_pearson_epsilon,
    clopper_pearson_upper,
    epsilon_from_rates,
    epsilon_lower_bound,
    gaussian_dp_epsilon,
    one_run_audit,
    one_run_epsilon,
)

__all__ = [
    "ACCOUNTANTS",
    "AccountingResult",
    "Bonferroni",
    "EmpiricalEpsilon",
    "Explicit",
    "NeighbouringRelation",
    "PrivacyProfile",
    "Split",
    "ThresholdStrategy",
    "account",
    "calibrate_noise",
    "check_delta",
    "clopper_pearson_epsilon",
    "clopper_pearson_upper",
    "compute_epsilon",
    "create_accountant",
    "default_delta",
    "default_epsilon_grid",
    "epsilon_from_history",
    "epsilon_from_rates",
    "epsilon_lower_bound",
    "gaussian_dp_epsilon",
    "max_steps",
    "one_run_audit",
    "one_run_epsilon",
    "privacy_profile",
    "register_accountant",
    "roc_ceiling",
]
