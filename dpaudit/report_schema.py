"""The ``audit.json`` report: frozen dataclasses, the JSON Schema check and the loader.

This is the contract between ``attacks/`` (writes the report), ``reports/`` (renders it and
recomputes nothing) and ``dpaudit gate``; the prose version is ``docs/audit-json.md``.

Compatibility policy (after dp_accounting's ``dp_event.py``): fields are only ever added, new
fields are optional, and no field changes meaning. Readers therefore ignore keys they do not know
(``from_dict``) and the schema allows extra properties, so a 1.0 reader accepts a 1.x file.

Units: ε in nats; δ, significance, FPR and TPR as probabilities; ``steps`` are optimizer steps;
attack scores: higher = member. Undefined numbers are ``None``/``null`` together with
``status="inconclusive"`` and a ``reason``; NaN and ±inf are rejected by :func:`validate_report`
and :func:`load_report`, so a NaN metric can never reach the gate as a number.

``epsilon_lb`` and ``canary`` hold plain dicts in the shape of
``dpaudit.privacy.lower_bounds.EmpiricalEpsilon.to_dict()``; they are kept as dicts (not imported
classes) so this module depends on nothing but the standard library and ``jsonschema``. An entry
with ``"kind": "estimate"`` is a number without a theorem behind it (e.g. a GDP fit): shown, never
used as a lower bound.

An ``audit.json`` may come from someone else, so the loader bounds it before anything walks it:
at most :data:`MAX_REPORT_BYTES`, nesting depth, array, string and integer bounds
(:mod:`dpaudit.input_limits`), the schema's ``maxItems``/``maxLength`` caps, and cross-field
consistency (histogram and ROC lengths). Every violation is one line (exit 2).

Examples:
    >>> protection_level(0.52)
    'strong'
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
from importlib import resources
from pathlib import Path
from typing import Any

from dpaudit.errors import DataError
from dpaudit.input_limits import JsonLimits, check_json_limits, path_str, read_capped
from dpaudit.sanitize import clean_text

SCHEMA_VERSION = "1.0"

#: Plain-language protection levels, strongest first.
PROTECTION_LEVELS = ("strong", "moderate", "weak")

#: Where the noise came from: a CSPRNG keyed from OS entropy, or a seed (never a private release).
NOISE_SOURCES = ("secure", "seeded")

#: Who states the (ε, δ) claim: dpaudit's accountant for a model trained in this run, a checkpoint
#: this run did not write (not verified), or the user.
CLAIM_SOURCES = ("accountant", "checkpoint", "user")

#: Largest ``audit.json`` the loader reads (bytes).
MAX_REPORT_BYTES = 50 * 2**20

#: Generic bounds on every report; the schema sets tighter per-field caps.
REPORT_LIMITS = JsonLimits(max_depth=64, max_items=10_000, max_chars=10_000, max_abs_float=1e15)

#: Array caps (items), checked before the schema so an oversized array is refused at once.
ARRAY_CAPS = {"histogram": 1001, "roc": 1000, "epsilon_history": 10_000, "profile": 1000}

__all__ = [
    "SCHEMA_VERSION", "PROTECTION_LEVELS", "AuditReport", "RunInfo", "PrivacySection", "Clipping",
    "PrivacyProfile", "EpsilonHistory", "UtilitySection", "AttackResult", "TprAtFpr", "RocCurve",
    "ScoreHistogram", "Verdict", "Check", "validate_report", "load_report", "dump_report",
    "load_schema", "protection_level", "NOISE_SOURCES", "CLAIM_SOURCES", "MAX_REPORT_BYTES",
    "REPORT_LIMITS", "ARRAY_CAPS", "is_estimate",
]


def _plain(value: Any) -> Any:
    """Return a fresh JSON-ready copy: dataclasses → dicts, tuples → lists, dicts copied."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


class _Serial:
    """Mixin: ``to_dict()`` builds a fresh dict; ``from_dict()`` rebuilds nested classes and tuples.

    ``_NESTED`` maps a field name to the class its value (or, for a tuple field, each element)
    is rebuilt with.
    """

    _NESTED: dict[str, type] = {}

    def to_dict(self) -> dict[str, Any]:
        """Return a fresh, JSON-ready dict (lists, not tuples; nested dicts copied)."""
        return _plain(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        """Build from :meth:`to_dict` output; unknown keys are ignored, absent optional ones defaulted."""
        kw = {}
        for f in dataclasses.fields(cls):
            if f.name not in data:
                continue
            value, sub = data[f.name], cls._NESTED.get(f.name)
            is_tuple = str(f.type).startswith("tuple")
            if sub is not None and value is not None:
                value = tuple(sub.from_dict(v) for v in value) if is_tuple else sub.from_dict(value)
            elif is_tuple and isinstance(value, (list, tuple)):
                value = tuple(copy.deepcopy(value))
            else:
                value = copy.deepcopy(value)
            kw[f.name] = value
        return cls(**kw)


# --------------------------------------------------------------------------- run / privacy / utility


@dataclasses.dataclass(frozen=True)
class RunInfo(_Serial):
    """Provenance of one audit run.

    Attributes:
        run_id: unique id of the run directory.
        created: ISO-8601 timestamp.
        dpaudit_version: version string of the dpaudit that wrote the report.
        seeds: ``{"base": int, "membership": int, "models": [int, ...]}``.
        versions: library versions (``python``, ``torch``, ``transformers``, ``opacus``, ``numpy``...).
        hardware: ``{"device": str, "cpu_count": int, "torch_threads": int, ...}``.
        dataset: ``{"name", "source", "sha256", "n_population", "n_classes"}``.
        model: ``{"name", "source", "sha256", "n_trainable", "n_total"}``.
        config: the full resolved audit config.
        wall_time_s: seconds spent in ``train``, ``score``, ``attack`` and ``total``.
    """

    run_id: str
    created: str
    dpaudit_version: str
    seeds: dict[str, Any]
    versions: dict[str, str]
    hardware: dict[str, Any]
    dataset: dict[str, Any]
    model: dict[str, Any]
    config: dict[str, Any]
    wall_time_s: dict[str, float]


@dataclasses.dataclass(frozen=True)
class Clipping(_Serial):
    """Gradient clipping: ``mode`` all_layer/layer_wise/groups, ``style`` abadi/automatic."""

    mode: str
    style: str
    max_grad_norm: float
    groups: dict[str, float] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class PrivacyProfile(_Serial):
    """The privacy profile δ(ε) on a grid: ``deltas[i] = δ(epsilons[i])`` (ε in nats)."""

    epsilons: tuple[float, ...]
    deltas: tuple[float, ...]



@dataclasses.dataclass(frozen=True)
class EpsilonHistory(_Serial):
    """Accountant ε (nats) after each recorded optimizer step."""

    steps: tuple[int, ...]
    epsilons: tuple[float, ...]



@dataclasses.dataclass(frozen=True)
class PrivacySection(_Serial):
    """The theoretical guarantee claimed by the accountant.

    Attributes:
        non_private: ``True`` for a run without DP noise: ε = ∞, stated as ``epsilon=None``
            and ``status="non_private"``.
        epsilon: accountant ε in nats (an upper bound), or ``None`` when non-private/undefined.
        delta: target δ (probability).
        noise_multiplier: σ/C.
        sample_rate: Poisson sampling probability per step.
        steps: optimizer steps.
        accountant: ``"prv"`` or ``"rdp"``.
        neighbouring: neighbouring relation; ``"add_remove"``.
        clipping: the clipping configuration.
        profile: δ(ε) grid for the ROC ceiling, or ``None``.
        epsilon_history: ε over training.
        status: ``"ok"``, ``"non_private"`` or ``"inconclusive"``; derived when left ``None``.
            Only ``"ok"`` makes ``epsilon`` a claim anyone may rely on.
        reason: why ``epsilon`` is ``None`` (optional).
        noise: ``"secure"`` (CSPRNG keyed from OS entropy), ``"seeded"`` (reproducible from a
            seed: not a private release) or ``None`` (not recorded: an older report, or
            non-private).
        claim_source: ``"accountant"`` (dpaudit's accountant, for a model this run trained),
            ``"checkpoint"`` (asserted by a checkpoint this run did not write: not verified),
            ``"user"`` (stated by the user: not verified) or ``None`` (not recorded).
    """

    non_private: bool
    epsilon: float | None
    delta: float
    noise_multiplier: float
    sample_rate: float
    steps: int
    accountant: str
    neighbouring: str
    clipping: Clipping
    profile: PrivacyProfile | None
    epsilon_history: EpsilonHistory
    status: str | None = None
    reason: str | None = None
    noise: str | None = None
    claim_source: str | None = None

    _NESTED = {"clipping": Clipping, "profile": PrivacyProfile, "epsilon_history": EpsilonHistory}

    def __post_init__(self) -> None:
        if self.status is None:
            derived = "non_private" if self.non_private else (
                "ok" if self.epsilon is not None else "inconclusive")
            object.__setattr__(self, "status", derived)



@dataclasses.dataclass(frozen=True)
class UtilitySection(_Serial):
    """Task metric on held-out data (``value`` for the target model, ``per_model`` for all)."""

    metric: str
    value: float
    n_eval: int
    per_model: tuple[float, ...]
    non_private_reference: float | None = None



# --------------------------------------------------------------------------- attacks


@dataclasses.dataclass(frozen=True)
class TprAtFpr(_Serial):
    """TPR at a fixed FPR. ``resolvable`` is ``False`` when there are too few non-members to
    measure that FPR (fewer than ``1/fpr``); ``tpr`` is then ``None``."""

    fpr: float
    tpr: float | None
    tpr_std: float | None
    resolvable: bool


@dataclasses.dataclass(frozen=True)
class RocCurve(_Serial):
    """Target-model ROC: at most 500 points, ``fpr`` increasing (empty when inconclusive)."""

    fpr: tuple[float, ...]
    tpr: tuple[float, ...]



@dataclasses.dataclass(frozen=True)
class ScoreHistogram(_Serial):
    """Attack-score histogram of members (IN) and non-members (OUT); higher score = member."""

    bin_edges: tuple[float, ...]
    in_counts: tuple[int, ...]
    out_counts: tuple[int, ...]



@dataclasses.dataclass(frozen=True)
class AttackResult(_Serial):
    """One membership-inference attack against the target model.

    Attributes:
        name: registry name (``"loss"``, ``"shadow"``, ``"lira_online"``, ``"lira_offline"``, ``"rmia"``...).
        paper: citation, e.g. ``"Carlini et al. 2022, arXiv 2112.03570"``.
        status: ``"ok"`` or ``"inconclusive"`` (then ``reason`` says why; metrics may be ``None``).
        reason: why the result is inconclusive, else ``None``.
        target_model: index of the attacked model; n_targets: models attacked.
        n_members, n_nonmembers: evaluation points per class.
        auc, auc_std, balanced_accuracy, balanced_accuracy_std, advantage: metrics or ``None``.
        tpr_at_fpr: TPR at fixed FPRs.
        epsilon_lb: ``EmpiricalEpsilon.to_dict()`` (plain dict; see ``docs/audit-json.md``).
        roc: target-model ROC curve.
        histogram: IN/OUT score histogram.
    """

    name: str
    paper: str
    status: str
    reason: str | None
    target_model: int
    n_targets: int
    n_members: int
    n_nonmembers: int
    auc: float | None
    auc_std: float | None
    balanced_accuracy: float | None
    balanced_accuracy_std: float | None
    advantage: float | None
    tpr_at_fpr: tuple[TprAtFpr, ...]
    epsilon_lb: dict[str, Any]
    roc: RocCurve
    histogram: ScoreHistogram

    _NESTED = {"tpr_at_fpr": TprAtFpr, "roc": RocCurve, "histogram": ScoreHistogram}

    def resolves(self, fpr: float) -> bool:
        """Whether ``n_nonmembers`` can measure FPR ``fpr``: N_out ≥ ⌈1/fpr⌉.

        Recomputed from the count, so a report's ``resolvable`` flag is never taken on trust
        (same formula as ``attacks.membership.required_nonmembers``; the 1e-9 absorbs
        1/0.001 = 1000.0000000000001-style error).
        """
        return fpr > 0 and self.n_nonmembers >= math.ceil(1.0 / fpr - 1e-9)

    def tpr_at(self, fpr: float) -> TprAtFpr | None:
        """Return the stored entry whose FPR equals ``fpr`` (to 1e-12), else ``None``."""
        for entry in self.tpr_at_fpr:
            if math.isclose(entry.fpr, fpr, rel_tol=0.0, abs_tol=1e-12):
                return entry
        return None


# --------------------------------------------------------------------------- verdict / report


@dataclasses.dataclass(frozen=True)
class Check(_Serial):
    """One policy check: ``status`` is ``"pass"``, ``"fail"`` or ``"inconclusive"``."""

    name: str
    value: float | None
    threshold: float | str | None
    status: str
    message: str


@dataclasses.dataclass(frozen=True)
class Verdict(_Serial):
    """Summary: protection level of the strongest attack and, if a policy ran, its checks."""

    protection_level: str | None
    strongest_attack: str | None
    policy: str | None = None
    passed: bool | None = None
    checks: tuple[Check, ...] = ()

    _NESTED = {"checks": Check}



@dataclasses.dataclass(frozen=True)
class AuditReport(_Serial):
    """The whole ``audit.json``. ``to_dict()`` output validates against ``audit-1.0.json``."""

    schema_version: str
    run: RunInfo
    privacy: PrivacySection
    utility: UtilitySection
    attacks: tuple[AttackResult, ...]
    canary: dict[str, Any] | None
    verdict: Verdict
    epsilon_lb_family: dict[str, Any] | None = None  # Bonferroni family of every bound (the headline)

    _NESTED = {"run": RunInfo, "privacy": PrivacySection, "utility": UtilitySection,
               "attacks": AttackResult, "verdict": Verdict}

    def strongest_attack(self) -> AttackResult | None:
        """The ``"ok"`` attack with the highest balanced accuracy (ties: higher AUC), else ``None``."""
        ok = [a for a in self.attacks if a.status == "ok" and a.balanced_accuracy is not None]
        if not ok:
            return None
        return max(ok, key=lambda a: (a.balanced_accuracy, a.auc if a.auc is not None else 0.0))


def is_estimate(bound: dict[str, Any] | None) -> bool:
    """Whether an ``epsilon_lb``/``canary`` dict is an estimate (``"kind": "estimate"``), not a bound."""
    return bound is not None and bound.get("kind") == "estimate"


def protection_level(balanced_accuracy: float) -> str:
    """Plain-language protection level from the strongest attack's balanced accuracy.

    ``"strong"`` below 0.55, ``"moderate"`` below 0.60, else ``"weak"``. Shown beside the low-FPR
    metrics, never instead of them.

    Args:
        balanced_accuracy: a probability in [0, 1].

    Raises:
        TypeError: not a real number. DataError: NaN or outside [0, 1].
    """
    from dpaudit._validation import check_real

    value = check_real("balanced_accuracy", balanced_accuracy, 0.0, 1.0, error=DataError)
    if value < 0.55:
        return "strong"
    if value < 0.60:
        return "moderate"
    return "weak"


# --------------------------------------------------------------------------- validation and I/O

_SCHEMA_CACHE: dict[str, Any] = {}


def load_schema() -> dict[str, Any]:
    """Return the bundled JSON Schema (draft 2020-12) for audit.json 1.0."""
    if "1.0" not in _SCHEMA_CACHE:
        text = resources.files("dpaudit").joinpath("schema", "audit-1.0.json").read_text("utf-8")
        _SCHEMA_CACHE["1.0"] = json.loads(text)
    return _SCHEMA_CACHE["1.0"]


def _cap_errors(data: dict[str, Any]) -> tuple[tuple[Any, ...], str] | None:
    """The first array over :data:`ARRAY_CAPS`, found without walking its items."""
    def too_long(section: Any, keys: tuple[str, ...], cap: int, where: tuple[Any, ...]):
        if not isinstance(section, dict):
            return None
        for key in keys:
            value = section.get(key)
            if isinstance(value, list) and len(value) > cap:
                return (*where, key), f"{len(value)} items (at most {cap})"
        return None

    privacy = data.get("privacy")
    if isinstance(privacy, dict):
        for field, keys in (("epsilon_history", ("steps", "epsilons")),
                            ("profile", ("epsilons", "deltas"))):
            found = too_long(privacy.get(field), keys, ARRAY_CAPS[field], ("privacy", field))
            if found:
                return found
    attacks = data.get("attacks")
    for i, attack in enumerate(attacks if isinstance(attacks, list) else ()):
        if not isinstance(attack, dict):
            continue
        for field, keys in (("histogram", ("bin_edges", "in_counts", "out_counts")),
                            ("roc", ("fpr", "tpr"))):
            found = too_long(attack.get(field), keys, ARRAY_CAPS[field], ("attacks", i, field))
            if found:
                return found
    return None


def _consistency_errors(data: dict[str, Any]) -> tuple[tuple[Any, ...], str] | None:
    """Cross-field rules a schema cannot state: paired arrays of equal length, bins + 1 edges."""
    privacy = data["privacy"]
    pairs = [(("privacy", "epsilon_history"), privacy["epsilon_history"], "steps", "epsilons"),
             (("privacy", "profile"), privacy["profile"], "epsilons", "deltas")]
    for i, attack in enumerate(data["attacks"]):
        pairs.append((("attacks", i, "roc"), attack["roc"], "fpr", "tpr"))
        pairs.append((("attacks", i, "histogram"), attack["histogram"], "in_counts", "out_counts"))
    for where, section, a, b in pairs:
        if section is not None and len(section[a]) != len(section[b]):
            return where, f"{a} has {len(section[a])} entries but {b} has {len(section[b])}"
    for i, attack in enumerate(data["attacks"]):
        edges, n_bins = attack["histogram"]["bin_edges"], len(attack["histogram"]["in_counts"])
        if (n_bins or edges) and len(edges) != n_bins + 1:
            return ("attacks", i, "histogram"), f"{len(edges)} bin edges for {n_bins} bins (need bins + 1)"
    return None


def validate_report(data: dict[str, Any]) -> None:
    """Check a report dict: bounds, ``audit-1.0.json``, NaN/±inf anywhere, cross-field rules.

    Raises:
        DataError: one line naming the first failing path, e.g.
            ``"audit report is invalid at attacks/0/auc: 'x' is not of type 'number', 'null'"``.
    """
    import jsonschema

    if not isinstance(data, dict):
        raise DataError(f"audit report must be a JSON object, got {type(data).__name__}.")
    found = _cap_errors(data)  # before anything iterates a 1M-item array
    if found is not None:
        raise DataError(f"audit report is invalid at {path_str(found[0])}: {found[1]}.")
    check_json_limits(data, what="audit report", error=DataError, limits=REPORT_LIMITS)
    if "validator" not in _SCHEMA_CACHE:
        _SCHEMA_CACHE["validator"] = jsonschema.Draft202012Validator(load_schema())
    validator = _SCHEMA_CACHE["validator"]
    error = jsonschema.exceptions.best_match(validator.iter_errors(data))
    if error is not None:
        message = clean_text(" ".join(error.message.split()), max_len=200)
        raise DataError(f"audit report is invalid at {path_str(error.absolute_path)}: {message}")
    found = _consistency_errors(data)
    if found is not None:
        raise DataError(f"audit report is invalid at {path_str(found[0])}: {found[1]}.")


class _NonFiniteLiteral(ValueError):
    """A ``NaN``/``Infinity`` literal in the JSON text."""


def _reject_constant(name: str) -> float:
    raise _NonFiniteLiteral(name)


def load_report(path: str | Path) -> AuditReport:
    """Read, bound, validate and parse an ``audit.json``.

    Raises:
        DataError: one line for a missing, unreadable or oversized file, invalid or truncated
            JSON, a NaN/Infinity literal, nesting too deep, an unbounded integer, or a schema or
            consistency violation (naming the failing path).
    """
    path = Path(path)
    try:
        raw = read_capped(path, MAX_REPORT_BYTES, what="audit report", error=DataError)
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise DataError(f"audit report not found: {path}; run `dpaudit audit` first or pass the "
                        "right path.") from None
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"cannot read audit report {path}: {clean_text(err, max_len=300)}") from None
    if not text.strip():
        raise DataError(f"audit report {path} is empty; rerun `dpaudit audit`.")
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as err:
        raise DataError(f"audit report {path} is not valid JSON (truncated?): {err.msg} at line "
                        f"{err.lineno} column {err.colno}; rerun `dpaudit audit`.") from None
    except _NonFiniteLiteral as err:
        raise DataError(f"audit report {path} contains {err}, which is not a finite number; undefined "
                        "metrics must be null with status 'inconclusive'.") from None
    except RecursionError:
        raise DataError(f"audit report {path} is nested too deeply (at most "
                        f"{REPORT_LIMITS.max_depth} levels).") from None
    except ValueError as err:  # e.g. an integer literal of more than 4300 digits
        raise DataError(f"audit report {path} is not a valid report: {clean_text(err, max_len=200)} "
                        "(integers must be bounded).") from None
    if not isinstance(data, dict):
        raise DataError(f"audit report {path} must hold a JSON object, got {type(data).__name__}.")
    try:
        validate_report(data)
    except DataError as err:
        raise DataError(f"{path}: {err}") from None
    return AuditReport.from_dict(data)


def dump_report(report: AuditReport, path: str | Path) -> Path:
    """Validate ``report`` and write it as JSON (``allow_nan=False``); returns the path."""
    from dpaudit.fileio import write_json_atomic

    data = report.to_dict()
    validate_report(data)
    return write_json_atomic(path, data, sort_keys=False, private=False)
