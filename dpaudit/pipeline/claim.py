"""The (ε, δ) claim under test, and where it comes from (``privacy.claim_source`` in ``audit.json``).

* ``accountant``: the target was trained in this run; dpaudit's accountant states its ε.
* ``checkpoint``: a dpaudit checkpoint states σ, q, steps, δ (and its ε history); not verified here.
* ``user``: ``target.claim_epsilon`` + ``target.claim_delta`` (no privacy profile: the single (ε, δ) point
  bounds the ROC), or ``target.claim_noise_multiplier`` + ``claim_sample_rate`` + ``claim_steps`` +
  ``claim_delta`` (dpaudit computes ε and the privacy profile δ(ε) with :mod:`dpaudit.privacy`); not verified.
* ``none``: a model trained elsewhere with no stated claim: reported and gated as not private (ε = ∞).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

from dpaudit.config import Config, TargetConfig
from dpaudit.errors import ConfigError, PrivacyError
from dpaudit.privacy import check_delta, default_delta, compute_epsilon, default_epsilon_grid, privacy_profile

_RATE_KEYS = ("claim_noise_multiplier", "claim_sample_rate", "claim_steps")


@dataclass(frozen=True)
class Claim:
    """The claim the audit tests. ``profile`` is ``(epsilons, deltas)`` for the ROC ceiling, or ``None``."""

    source: str  # one of dpaudit.report_schema.CLAIM_SOURCES
    non_private: bool
    epsilon: float | None
    delta: float
    noise_multiplier: float
    sample_rate: float
    steps: int
    accountant: str
    history: dict
    noise: str | None
    profile: tuple[tuple[float, ...], tuple[float, ...]] | None
    reason: str | None = None
    neighbouring: str = "add_remove"  # the relation ε is stated for; a user's (opacus) claim is add/remove


def claim_keys(t: TargetConfig) -> list[str]:
    """The ``target.claim_*`` keys the user set."""
    return [k for k in ("claim_epsilon", "claim_delta", *_RATE_KEYS) if getattr(t, k) is not None]


def check_claim_keys(t: TargetConfig, kind: str) -> None:
    """Refuse a claim that is incomplete, mixed, or stated for a target whose claim comes from elsewhere.

    Raises:
        ConfigError: with the keys that are missing or not allowed.
    """
    given = claim_keys(t)
    if not given:
        return
    if kind in ("train", "checkpoint"):
        where = "dpaudit's accountant" if kind == "train" else "the checkpoint's own accounting"
        raise ConfigError(f"the claim of a {kind} target comes from {where}; remove target.{', target.'.join(given)}.")
    rates = [k for k in _RATE_KEYS if k in given]
    if t.claim_epsilon is not None and rates:
        raise ConfigError(f"state the claim either as target.claim_epsilon + claim_delta or as claim_noise_multiplier "
                          f"+ claim_sample_rate + claim_steps + claim_delta, not both (got {', '.join(given)}).")
    needed = ["claim_epsilon", "claim_delta"] if t.claim_epsilon is not None or not rates else [*_RATE_KEYS, "claim_delta"]
    missing = [k for k in needed if getattr(t, k) is None]
    if missing:
        raise ConfigError(f"incomplete claim: target.{', target.'.join(missing)} missing (given: {', '.join(given)}); "
                          f"a claim is claim_epsilon + claim_delta, or claim_noise_multiplier + claim_sample_rate + "
                          f"claim_steps + claim_delta.")


def user_claim(t: TargetConfig, n_train: int) -> Claim:
    """The user's claim for a target of ``n_train`` training examples (``none`` when no key is set).

    Raises:
        PrivacyError: δ ≥ 1/n_train (via :func:`dpaudit.privacy.check_delta`).
    """
    if not claim_keys(t):
        return Claim("none", True, None, default_delta(n_train), 0.0, 0.0, 0, t.claim_accountant, {"steps": [], "epsilons": []}, None,
                     None, reason="no DP claim was stated for this model (target.claim_*): treated as not private")
    delta = check_delta(float(t.claim_delta), n_train)
    if t.claim_epsilon is not None:
        eps = float(t.claim_epsilon)
        return Claim("user", False, eps, delta, 0.0, 0.0, 0, t.claim_accountant, {"steps": [], "epsilons": []}, None,
                     ((eps,), (delta,)), reason=None)
    sigma, q, steps = float(t.claim_noise_multiplier), float(t.claim_sample_rate), int(t.claim_steps)
    try:  # a hostile or mistyped σ/q/steps can exhaust the accountant's discretisation (numpy errors);
        # its numpy/opacus warnings would print beside the one error line, so they are silenced here
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            eps = compute_epsilon(noise_multiplier=sigma, sample_rate=q, steps=steps, delta=delta,
                                  accountant=t.claim_accountant, neighbouring="add_remove")
            profile = _profile(sigma, q, steps, eps, t.claim_accountant)
    except (ValueError, OverflowError, MemoryError, FloatingPointError, ZeroDivisionError) as err:
        raise PrivacyError(f"the stated claim σ={sigma:g}, q={q:g}, steps={steps} cannot be accounted by "
                           f"'{t.claim_accountant}' ({type(err).__name__}: {str(err)[:80]}); check "
                           f"target.claim_noise_multiplier, claim_sample_rate and claim_steps, or state "
                           f"claim_epsilon + claim_delta.") from None
    if not math.isfinite(eps):
        raise PrivacyError(f"the stated claim σ={sigma:g}, q={q:g}, steps={steps} gives ε = ∞ (no privacy); remove "
                           f"the target.claim_* keys to audit it as not private.")
    return Claim("user", False, eps, delta, sigma, q, steps, t.claim_accountant, {"steps": [steps], "epsilons": [eps]},
                 None, profile)


def _profile(sigma: float, q: float, steps: int, epsilon: float, accountant: str):
    if not math.isfinite(epsilon):
        return None
    prof = privacy_profile(noise_multiplier=sigma, sample_rate=q, steps=steps, epsilons=default_epsilon_grid(epsilon),
                           accountant=accountant)
    return tuple(prof.epsilons), tuple(prof.deltas)


def plan_claim(plan, steps: int, history: dict, source: str, noise: str | None) -> Claim:
    """The claim of a :class:`~dpaudit.trainers.recipe.PrivacyPlan` after ``steps`` steps (accountant or checkpoint)."""
    if plan.non_private:
        return Claim(source, True, None, plan.delta, 0.0, plan.sample_rate, steps, plan.accountant, history, None,
                     None, reason="trained without clipping or noise (ε = ∞)", neighbouring=plan.neighbouring)
    eps = plan.epsilon(steps)
    return Claim(source, False, eps, plan.delta, plan.noise_multiplier, plan.sample_rate, steps, plan.accountant,
                 history, noise, _profile(plan.noise_multiplier, plan.sample_rate, steps, eps, plan.accountant),
                 neighbouring=plan.neighbouring)


def checkpoint_claim(plan, meta: dict) -> Claim:
    """A dpaudit checkpoint's own claim (its σ, q, steps and ε history), with ``plan`` copied from it."""
    steps = int(meta.get("steps", plan.steps))
    history = meta.get("epsilon_history") or {"steps": [steps], "epsilons": [plan.epsilon(steps)]}
    kinds = meta.get("noise")
    noise = None if plan.non_private or not isinstance(kinds, list) or not kinds else str(kinds[0])
    return plan_claim(plan, steps, history, "checkpoint", noise)


def shadow_privacy(cfg: Config, claim_only: Claim | None) -> Config:
    """The config the shadows train with when the user left ``[privacy]`` unset for an external target.

    A user's σ/q/steps claim gives the shadows that σ (not an ε to calibrate to: a tiny ε from a huge σ
    would be unreachable at the config's q and steps); an (ε, δ) claim calibrates the shadows to that ε;
    no claim trains them non-private.
    """
    import dataclasses

    p = cfg.privacy
    if claim_only is None or p.epsilon is not None or p.noise_multiplier is not None or p.non_private:
        return cfg
    if claim_only.non_private:
        return dataclasses.replace(cfg, privacy=dataclasses.replace(p, non_private=True))
    if claim_only.steps > 0:  # σ, q, steps stated: σ as stated (q and steps are copied by target_recipe)
        return dataclasses.replace(cfg, privacy=dataclasses.replace(p, noise_multiplier=claim_only.noise_multiplier,
                                                                    delta=claim_only.delta))
    return dataclasses.replace(cfg, privacy=dataclasses.replace(p, epsilon=claim_only.epsilon, delta=claim_only.delta))


def user_recipe(claim: Claim) -> dict:
    """A checkpoint-like recipe from the user's σ, q, steps (``{}`` when the claim does not state them)."""
    if claim.source != "user" or claim.steps == 0:
        return {}
    return {"noise_multiplier": claim.noise_multiplier, "sample_rate": claim.sample_rate, "steps": claim.steps,
            "settings": {"delta": claim.delta, "accountant": claim.accountant}}

