"""Privacy math: accountants, noise calibration, privacy profiles and ROC ceilings, ε lower bounds
(one-run and f-DP one-run for one trained model, Clopper–Pearson for independent runs) and their
family-wise (Bonferroni) maximum.

numpy/scipy only; opacus's accountants are imported lazily inside the functions that need them, so
importing this package never imports torch.
"""

from __future__ import annotations

from dpaudit.privacy.accounting import (
    ACCOUNTANTS,
    DEFAULT_ACCOUNTANT,
    DEFAULT_NEIGHBOURING,
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
from dpaudit.privacy.family import bonferroni_family, source_significance, with_family
from dpaudit.privacy.fdp_one_run import gaussian_mu, one_run_fdp_epsilon
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
from dpaudit.privacy.one_run import ONE_RUN_ESTIMATORS

__all__ = [
    "ACCOUNTANTS",
    "ONE_RUN_ESTIMATORS",
    "AccountingResult",
    "Bonferroni",
    "EmpiricalEpsilon",
    "Explicit",
    "NeighbouringRelation",
    "PrivacyProfile",
    "Split",
    "ThresholdStrategy",
    "account",
    "bonferroni_family",
    "DEFAULT_ACCOUNTANT",
    "DEFAULT_NEIGHBOURING",
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
    "gaussian_mu",
    "max_steps",
    "one_run_audit",
    "one_run_epsilon",
    "one_run_fdp_epsilon",
    "privacy_profile",
    "register_accountant",
    "roc_ceiling",
    "source_significance",
    "with_family",
]
