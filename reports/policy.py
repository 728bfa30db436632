"""Release policy for ``dpaudit gate``: a frozen dataclass read once from TOML and validated.

Format (every key optional; unknown keys are an error so a typo never weakens a policy)::

    name = "prod-release"                 # shown in reports; default: the file's stem
    max_epsilon = 8.0                     # accountant ε (nats) must be ≤ this
    max_delta = 1e-5                      # δ must be ≤ this
    max_auc = 0.60                        # every attack's AUC must be ≤ this
    max_epsilon_lb = 2.0                  # every empirical ε lower bound (attacks, canary) ≤ this
    min_nonmembers = 1000                 # every attack needs ≥ this many non-members
    required_attacks = ["lira_online", "rmia"]   # must be present with status "ok"
    min_protection_level = "moderate"     # "strong" > "moderate" > "weak"
    allow_non_private = false             # default false: a non-private run (ε = ∞) fails
    allow_seeded_noise = false            # default false: a private run with seeded noise fails
    require_mechanism_check = true        # `dpaudit verify` result must be in the report and pass
    min_mechanism_tightness = 0.5         # its white-box ε_LB / claimed ε must be ≥ this (implies required)
    max_significance = 0.05               # default 0.05: bounds are gated at this family-wise significance
    min_canary_cap = 1.0                  # power: the canaries could show ε_LB ≥ this (else inconclusive)
    min_steps = 10                        # power: the target took ≥ this many optimizer steps (else inconclusive)
    require_reference_leak = true         # power: the non-private reference's canary bound is > 0 (else inconclusive)

    [[max_tpr_at_fpr]]                    # one table, or an array of tables
    fpr = 0.001
    max_tpr = 0.01

``max_significance`` is a parameter, not a check: the ε lower bounds are recomputed from their counts at
this significance, split over the bounds the check reads (:mod:`reports.recompute`), and a mechanism check
must state a confidence of at least ``1 − max_significance``.

``min_nonmembers`` sets the FPR resolution: an attack with N non-members cannot measure an FPR
below 1/N, so ``min_nonmembers = 1000`` is needed to state TPR at 0.1% FPR.

A policy must check something: one that sets only ``name``, ``allow_non_private``,
``allow_seeded_noise`` (permissions) and/or ``max_significance`` (a parameter), not checks, is a usage error, as is an empty file. Policy
files are read with a size cap (:data:`MAX_POLICY_BYTES`) and the same depth and length bounds as
reports, so a hostile policy is one line (exit 2), never a traceback.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from pathlib import Path
from typing import Any

from dpaudit._validation import check_choice, check_int, check_real
from dpaudit.errors import ConfigError
from dpaudit.input_limits import JsonLimits, check_json_limits, read_capped
from dpaudit.protection import PROTECTION_LEVELS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

__all__ = ["Policy", "TprLimit", "load_policy", "parse_policy", "POLICY_KEYS", "PERMISSION_KEYS",
           "PARAMETER_KEYS", "MAX_POLICY_BYTES"]

#: Largest policy file read (bytes); a real one is a few hundred.
MAX_POLICY_BYTES = 2**20

#: Longest policy or attack name (characters).
MAX_NAME_CHARS = 200

_LIMITS = JsonLimits(max_depth=8, max_items=1000, max_chars=MAX_NAME_CHARS)


@dataclasses.dataclass(frozen=True)
class TprLimit:
    """TPR at ``fpr`` (a probability in (0, 1]) must be ≤ ``max_tpr`` for every attack."""

    fpr: float
    max_tpr: float

    def to_dict(self) -> dict[str, float]:
        return {"fpr": self.fpr, "max_tpr": self.max_tpr}


@dataclasses.dataclass(frozen=True)
class Policy:
    """A validated release policy; ``None`` means the check is not part of the policy."""

    name: str
    max_epsilon: float | None = None
    max_delta: float | None = None
    max_auc: float | None = None
    max_tpr_at_fpr: tuple[TprLimit, ...] = ()
    max_epsilon_lb: float | None = None
    min_nonmembers: int | None = None
    required_attacks: tuple[str, ...] = ()
    min_protection_level: str | None = None
    allow_non_private: bool = False
    allow_seeded_noise: bool = False
    require_mechanism_check: bool = False
    min_mechanism_tightness: float | None = None
    max_significance: float = 0.05
    min_canary_cap: float | None = None  # power (reports/power.py): unmet → inconclusive, never a pass
    min_steps: int | None = None
    require_reference_leak: bool = False

    def to_dict(self) -> dict[str, Any]:
        """A fresh dict; ``parse_policy(p.to_dict(), name=p.name) == p`` (``None`` keys dropped)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "max_tpr_at_fpr":
                value = [limit.to_dict() for limit in value]
            elif isinstance(value, tuple):
                value = list(value)
            if value is not None:
                out[f.name] = value
        return out


#: Every key a policy file may contain.
POLICY_KEYS = tuple(f.name for f in dataclasses.fields(Policy))

#: Keys that permit rather than check: a policy made only of these (and ``name``) checks nothing.
PERMISSION_KEYS = ("allow_non_private", "allow_seeded_noise")

#: Keys that set how checks are made, not what they check: a policy made only of these checks nothing.
PARAMETER_KEYS = ("max_significance",)


def _real(key: str, value: object, low: float, high: float, closed: str) -> float:
    try:
        return check_real(key, value, low, high, closed=closed, error=ConfigError)
    except TypeError as err:  # a wrong type in a user file is a config error (exit 2)
        raise ConfigError(str(err)) from None


def _tpr_limits(value: object) -> tuple[TprLimit, ...]:
    entries = [value] if isinstance(value, dict) else value
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ConfigError("max_tpr_at_fpr must be a table {fpr, max_tpr} or an array of tables, "
                          f"got max_tpr_at_fpr={value!r}.")
    limits = []
    for i, entry in enumerate(entries):
        where = f"max_tpr_at_fpr[{i}]"
        if set(entry) != {"fpr", "max_tpr"}:
            raise ConfigError(f"{where} must have exactly the keys fpr and max_tpr, got "
                              f"{sorted(entry)}.")
        limits.append(TprLimit(fpr=_real(f"{where}.fpr", entry["fpr"], 0.0, 1.0, "right"),
                               max_tpr=_real(f"{where}.max_tpr", entry["max_tpr"], 0.0, 1.0, "both")))
    return tuple(limits)


def parse_policy(data: dict[str, Any], *, name: str) -> Policy:
    """Validate a parsed policy mapping; ``name`` is used when the mapping has none.

    Raises:
        ConfigError: one line naming the offending key (unknown key, wrong type, out of range).
    """
    unknown = sorted(set(data) - set(POLICY_KEYS))
    if unknown:
        raise ConfigError(f"unknown policy key {unknown[0]!r}; allowed keys: {', '.join(POLICY_KEYS)}.")
    kw: dict[str, Any] = {"name": name}
    if "name" in data:
        if (not isinstance(data["name"], str) or not data["name"].strip()
                or len(data["name"]) > MAX_NAME_CHARS):
            raise ConfigError(f"name must be a non-empty string of at most {MAX_NAME_CHARS} "
                              f"characters, got name={data['name']!r:.{MAX_NAME_CHARS + 20}}.")
        kw["name"] = data["name"]
    for key, closed in (("max_epsilon", "left"), ("max_epsilon_lb", "left")):
        if key in data:
            kw[key] = _real(key, data[key], 0.0, math.inf, closed)
    for key in ("max_delta", "max_auc"):
        if key in data:
            kw[key] = _real(key, data[key], 0.0, 1.0, "both")
    if "max_tpr_at_fpr" in data:
        kw["max_tpr_at_fpr"] = _tpr_limits(data["max_tpr_at_fpr"])
    if "min_nonmembers" in data:
        try:
            kw["min_nonmembers"] = check_int("min_nonmembers", data["min_nonmembers"], 0, 2**53)
        except TypeError as err:
            raise ConfigError(str(err)) from None
    if "required_attacks" in data:
        attacks = data["required_attacks"]
        if not isinstance(attacks, list) or not all(
                isinstance(a, str) and 0 < len(a) <= MAX_NAME_CHARS for a in attacks):
            raise ConfigError("required_attacks must be a list of attack names, got "
                              f"required_attacks={attacks!r:.300}.")
        kw["required_attacks"] = tuple(attacks)
    if "min_protection_level" in data:
        kw["min_protection_level"] = check_choice("min_protection_level", data["min_protection_level"],
                                                  PROTECTION_LEVELS)
    if "min_mechanism_tightness" in data:
        kw["min_mechanism_tightness"] = _real("min_mechanism_tightness", data["min_mechanism_tightness"], 0.0, 1.0,
                                              "both")
    if "max_significance" in data:  # the range audit.significance allows
        kw["max_significance"] = _real("max_significance", data["max_significance"], 0.0, 0.5, "right")
    if "require_mechanism_check" in data:
        if not isinstance(data["require_mechanism_check"], bool):
            raise ConfigError("require_mechanism_check must be true or false, got "
                              f"require_mechanism_check={data['require_mechanism_check']!r:.100}.")
        if data["require_mechanism_check"]:  # false is the default: it checks nothing
            kw["require_mechanism_check"] = True
    _power_keys(data, kw)
    for key in PERMISSION_KEYS:
        if key in data:
            if not isinstance(data[key], bool):
                raise ConfigError(f"{key} must be true or false, got {key}={data[key]!r}.")
            kw[key] = data[key]
    if not set(kw) - {"name", *PERMISSION_KEYS, *PARAMETER_KEYS}:
        raise ConfigError("the policy checks nothing; set at least one of "
                          f"{', '.join(k for k in POLICY_KEYS if k not in ('name', *PERMISSION_KEYS, *PARAMETER_KEYS))}.")
    return Policy(**kw)


def _power_keys(data: dict[str, Any], kw: dict[str, Any]) -> None:
    """``min_canary_cap`` (nats ≥ 0), ``min_steps`` (integer ≥ 1), ``require_reference_leak`` (bool) into ``kw``."""
    if "min_canary_cap" in data:
        kw["min_canary_cap"] = _real("min_canary_cap", data["min_canary_cap"], 0.0, math.inf, "left")
    if "min_steps" in data:
        try:
            kw["min_steps"] = check_int("min_steps", data["min_steps"], 1, 2**53)
        except TypeError as err:
            raise ConfigError(str(err)) from None
    if "require_reference_leak" in data:
        if not isinstance(data["require_reference_leak"], bool):
            raise ConfigError("require_reference_leak must be true or false, got "
                              f"require_reference_leak={data['require_reference_leak']!r:.100}.")
        if data["require_reference_leak"]:
            kw["require_reference_leak"] = True


def load_policy(path: str | Path) -> Policy:
    """Read and validate a policy TOML file, or a shipped one by name (``default``: :mod:`dpaudit.policies`).

    Raises:
        ConfigError: missing/unreadable file, invalid TOML, or an invalid key (one line, naming it).
    """
    from dpaudit.policies import policy_file

    path = policy_file(path)
    try:
        raw = read_capped(path, MAX_POLICY_BYTES, what="policy file", error=ConfigError)
    except FileNotFoundError:
        raise ConfigError(f"policy file not found: {path}; pass --policy with a TOML file (or `default`, the "
                          "shipped one).") from None
    except OSError as err:
        raise ConfigError(f"cannot read policy file {path}: {err.strerror or err}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"policy file {path} is not valid TOML: {' '.join(str(err).split())}") from None
    except RecursionError:
        raise ConfigError(f"policy file {path} is nested too deeply; a policy is a flat table.") from None
    try:
        check_json_limits(data, what="policy", error=ConfigError, limits=_LIMITS)
        return parse_policy(data, name=path.stem[:MAX_NAME_CHARS])
    except ConfigError as err:
        raise ConfigError(f"policy file {path}: {err}") from None
