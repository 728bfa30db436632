"""The ``audit.json`` report as frozen dataclasses (the data model only).

This is the contract between ``attacks/`` (writes the report), ``reports/`` (renders it and
recomputes nothing) and ``dpaudit gate``; the prose version is ``docs/audit-json.md``. Reading,
bounding, validating and writing the file is :mod:`dpaudit.report_io`; the plain-language protection
level is :mod:`dpaudit.protection`.

Compatibility policy (after dp_accounting's ``dp_event.py``): fields are only ever added, new
fields are optional, and no field changes meaning. Readers therefore ignore keys they do not know
(``from_dict``) and the schema allows extra properties, so a 1.0 reader accepts a 1.x file.

Units: ε in nats; δ, significance, FPR and TPR as probabilities; ``steps`` are optimizer steps;
attack scores: higher = member. Undefined numbers are ``None``/``null`` together with
``status="inconclusive"`` and a ``reason``; NaN and ±inf are rejected by
:func:`dpaudit.report_io.validate_report` and :func:`dpaudit.report_io.load_report`.

``epsilon_lb`` and ``canary`` hold plain dicts in the shape of
``dpaudit.privacy.lower_bounds.EmpiricalEpsilon.to_dict()``; they are kept as dicts (not imported
classes) so this module depends on nothing but the standard library. An entry with
``"kind": "estimate"`` is a number without a theorem behind it (e.g. a GDP fit): shown, never
used as a lower bound.

Names that look alike elsewhere, and how they differ:

* :class:`ClippingSummary` is ``dpaudit.clipping.ClippingConfig`` as the report states it: each
  group reduced to its threshold ``C_g`` (the regexes are left out of ``audit.json``).
* :class:`ProfileCurve` is the δ(ε) grid as stored in the report; the mechanism it belongs to
  (σ, q, steps, accountant) is in the enclosing :class:`PrivacySection`. The privacy-math object
  that carries both is ``dpaudit.privacy.profile.PrivacyProfile``.
* :class:`PrivacySection` is the last of four privacy stages (see ``dpaudit.config.PrivacyConfig``):
  the claim the report states.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dpaudit.clipping import ClippingConfig

#: Version of the ``audit.json`` format written (``dpaudit/schema/audit-1.0.json``); defined here only.
SCHEMA_VERSION = "1.0"

#: Where the noise came from: a CSPRNG keyed from OS entropy, or a seed (never a private release).
NOISE_SOURCES = ("secure", "seeded")

#: Who states the (ε, δ) claim: dpaudit's accountant for a model trained in this run, a checkpoint
#: this run did not write (not verified), the user (not verified), or nobody ("none": no DP claim).
CLAIM_SOURCES = ("accountant", "checkpoint", "user", "none")

__all__ = [
    "SCHEMA_VERSION", "AuditReport", "RunInfo", "PrivacySection", "ClippingSummary", "ProfileCurve",
    "EpsilonHistory", "UtilitySection", "AttackResult", "TprAtFpr", "RocCurve", "ScoreHistogram",
    "Verdict", "Check", "MechanismCheck", "ReferenceSection", "strongest_of", "NOISE_SOURCES", "CLAIM_SOURCES",
    "REFERENCE_KINDS", "is_estimate", "SignOff", "SIGN_OFF_DECISIONS",
]

#: Kinds of reference an audit can train beside the target (``audit.reference``), both without clipping or
#: noise (ε = ∞): ``"non_private"``, a BiTFiT bank with the target's recipe (reference target + K shadows);
#: ``"full_non_private"``, one model fine-tuned in full (every weight, AdamW), attacked without shadows.
REFERENCE_KINDS = ("non_private", "full_non_private")


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
        target: the model under audit (optional): ``{"kind": "train" | "checkpoint" | "hf" | "scores",
            "source": file or dir name, "sha256": content hash, "obtained": how its outputs were obtained,
            "shadow_recipe", "recipe_differs": bool, "warning": str | None}``.
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
    target: dict[str, Any] | None = None


@dataclasses.dataclass(frozen=True)
class ClippingSummary(_Serial):
    """The clipping settings as ``audit.json`` states them.

    ``dpaudit.clipping.ClippingConfig`` with each named group reduced to its threshold: ``mode``
    all_layer/layer_wise/groups, ``style`` abadi/automatic, ``max_grad_norm`` C, ``groups``
    ``{name: C_g}`` (empty unless ``mode="groups"``).
    """

    mode: str
    style: str
    max_grad_norm: float
    groups: dict[str, float] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_config(cls, clipping: ClippingConfig) -> ClippingSummary:
        """The summary of ``clipping`` (the report's shape: ``groups`` as ``{name: C_g}``)."""
        return cls(mode=clipping.mode, style=clipping.style, max_grad_norm=clipping.max_grad_norm,
                   groups={name: float(spec[1]) for name, spec in clipping.groups.items()})


@dataclasses.dataclass(frozen=True)
class ProfileCurve(_Serial):
    """The privacy profile δ(ε) as stored: ``deltas[i] = δ(epsilons[i])`` (ε in nats).

    Grid points only; ``dpaudit.privacy.profile.PrivacyProfile`` is the same curve together with the
    mechanism (σ, q, steps, accountant) that the enclosing :class:`PrivacySection` states.
    """

    epsilons: tuple[float, ...]
    deltas: tuple[float, ...]



@dataclasses.dataclass(frozen=True)
class EpsilonHistory(_Serial):
    """Accountant ε (nats) after each recorded optimizer step."""

    steps: tuple[int, ...]
    epsilons: tuple[float, ...]



@dataclasses.dataclass(frozen=True)
class PrivacySection(_Serial):
    """The theoretical guarantee the report states (stage 4 of 4; see ``dpaudit.config.PrivacyConfig``).

    Attributes:
        non_private: ``True`` for a run without DP noise: ε = ∞, stated as ``epsilon=None``
            and ``status="non_private"``.
        epsilon: accountant ε in nats (an upper bound), or ``None`` when non-private/undefined.
        delta: target δ (probability).
        noise_multiplier: σ/C.
        sample_rate: Poisson sampling probability per step.
        steps: optimizer steps.
        accountant: ``"pld"``, ``"prv"`` or ``"rdp"``.
        neighbouring: the relation the (ε, δ) holds for: ``"replace_one"`` (dpaudit's models: N public)
            or ``"add_remove"`` (a user's or an older checkpoint's claim).
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
            ``"user"`` (stated by the user: not verified), ``"none"`` (no DP claim: reported as
            not private) or ``None`` (not recorded).
    """

    non_private: bool
    epsilon: float | None
    delta: float
    noise_multiplier: float
    sample_rate: float
    steps: int
    accountant: str
    neighbouring: str
    clipping: ClippingSummary
    profile: ProfileCurve | None
    epsilon_history: EpsilonHistory
    status: str | None = None
    reason: str | None = None
    noise: str | None = None
    claim_source: str | None = None

    _NESTED = {"clipping": ClippingSummary, "profile": ProfileCurve, "epsilon_history": EpsilonHistory}

    def __post_init__(self) -> None:
        if self.status is None:
            derived = "non_private" if self.non_private else (
                "ok" if self.epsilon is not None else "inconclusive")
            object.__setattr__(self, "status", derived)



@dataclasses.dataclass(frozen=True)
class UtilitySection(_Serial):
    """Task metric on held-out data (``value`` for the target model, ``per_model`` for all).

    ``majority_baseline`` is the accuracy of always predicting the most frequent label on the target's
    held-out examples (``None`` in older reports): an accuracy near it means an untrained model.
    """

    metric: str
    value: float
    n_eval: int
    per_model: tuple[float, ...]
    non_private_reference: float | None = None
    majority_baseline: float | None = None



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


def strongest_of(attacks: tuple[AttackResult, ...]) -> AttackResult | None:
    """The ``"ok"`` attack with the highest balanced accuracy (ties: higher AUC), else ``None``."""
    ok = [a for a in attacks if a.status == "ok" and a.balanced_accuracy is not None]
    if not ok:
        return None
    return max(ok, key=lambda a: (a.balanced_accuracy, a.auc if a.auc is not None else 0.0))


@dataclasses.dataclass(frozen=True)
class ReferenceSection(_Serial):
    """A non-private reference audited beside the target on the same population (context, never gated).

    ``kind = "non_private"``: the audit trains a second bank — a reference target and K shadows on the same
    membership matrix, with the target's backbone, recipe, epochs, batch size and step size, but without
    clipping or noise — and runs the same attacks on it. ``kind = "full_non_private"``: one model fine-tuned
    in full (every weight, AdamW, ``recipe``) on the target's training set, attacked by LOSS and, where the
    population has crafted canaries, by their one-run bound (``canaries``). Either way the report can show
    what the attacks find when nothing protects the training data. ``dpaudit gate`` never reads this section.

    Attributes:
        kind: one of :data:`REFERENCE_KINDS`.
        non_private: always ``True`` (the schema refuses anything else: a reference never claims DP).
        noise_multiplier: always ``0.0``.
        sample_rate: Poisson sampling probability per step (the target's).
        steps: optimizer steps each reference model took.
        utility: held-out accuracy of the reference target (``value``) and of every reference model.
        attacks: the configured attacks against the reference target (same family as the target's).
        canary: the one-run canary audit of the reference target, or ``None``.
        strongest_attack: name of the strongest ``"ok"`` attack, or ``None``.
        epsilon_lb_family: the Bonferroni family of the reference's bounds, or ``None``.
        canaries: the crafted canaries against the reference (``count``, ``kind``, ``guesses``,
            ``score_rule``, ``auc``, ``epsilon_lb``, ``cap``), or ``None`` (a population without canaries).
        recipe: how a ``full_non_private`` reference trained (``name``, ``optimizer``, ``lr``, ``epochs``,
            ``batch_size``, ``max_length``), or ``None``.
    """

    kind: str
    non_private: bool
    noise_multiplier: float
    sample_rate: float
    steps: int
    utility: UtilitySection
    attacks: tuple[AttackResult, ...]
    canary: dict[str, Any] | None = None
    strongest_attack: str | None = None
    epsilon_lb_family: dict[str, Any] | None = None
    canaries: dict[str, Any] | None = None
    recipe: dict[str, Any] | None = None

    _NESTED = {"utility": UtilitySection, "attacks": AttackResult}

    def strongest(self) -> AttackResult | None:
        """The attack named by ``strongest_attack`` (else the strongest ``"ok"`` one), or ``None``."""
        named = next((a for a in self.attacks if a.name == self.strongest_attack), None)
        return named if named is not None else strongest_of(self.attacks)


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
class MechanismCheck(_Serial):
    """``dpaudit verify``: white-box Dirac-canary audit of dpaudit's own DP step (``mechanism_check.json``).

    Attributes:
        claimed_epsilon: the accountant's ε for the run's (σ, q, steps) at ``delta``, for add/remove neighbours (the
            canary test is one canary in or out; a replace-one claim is larger, so exceeding this proves it wrong too).
        delta: δ of the claim and of the bound.
        epsilon_lower_bound: ε_LB, valid with probability ≥ ``confidence`` if canaries are independent.
        confidence: 1 − significance of the Clopper–Pearson bound.
        num_canaries: canaries injected (each one independent run of the subsampled Gaussian).
        num_included: canaries in the training set (the rest never are).
        steps, sample_rate, noise_multiplier: the claimed mechanism the accountant was told.
        tightness: ``epsilon_lower_bound / claimed_epsilon`` (≤ 1 for a correct implementation).
        passed: ``epsilon_lower_bound <= claimed_epsilon``; False proves the implementation wrong.
        method: how ε_LB was computed (statistic and bound).
        noise: ``"secure"`` or ``"seeded"``; seed_published: the auditor regenerated seeded noise.
        wall_time_s: seconds the check took.
    """

    claimed_epsilon: float
    delta: float
    epsilon_lower_bound: float
    confidence: float
    num_canaries: int
    num_included: int
    steps: int
    sample_rate: float
    noise_multiplier: float
    tightness: float
    passed: bool
    method: str
    noise: str
    seed_published: bool
    wall_time_s: float


#: Decisions a reviewer can record in :class:`SignOff` (``None``: to be ticked by hand on paper).
SIGN_OFF_DECISIONS = ("approve", "reject", "approve_with_conditions")


@dataclasses.dataclass(frozen=True)
class SignOff(_Serial):
    """The reviewer's sign-off (``dpaudit report --sign-off``); every field ``None`` until given.

    Attributes:
        reviewer: the reviewer's name. role: their role (e.g. "data protection officer").
        date: ISO date ``YYYY-MM-DD`` of the decision.
        decision: one of :data:`SIGN_OFF_DECISIONS`.
        conditions: the conditions of an ``"approve_with_conditions"`` decision (free text).

    The handwritten signature is never stored: the reports leave a line for it.
    """

    reviewer: str | None = None
    role: str | None = None
    date: str | None = None
    decision: str | None = None
    conditions: str | None = None


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
    mechanism_check: MechanismCheck | None = None  # `dpaudit verify` (white-box check of the DP step)
    reference: ReferenceSection | None = None  # the non-private reference (``audit.reference``); never gated
    sign_off: SignOff | None = None  # the reviewer's record (``dpaudit report --sign-off``); never gated
    #: the canary bound (``audit.canaries``): count, kind, score_rule, guesses_in/out, auc, cap, epsilon_lb
    #: (dpaudit.pipeline.canary_audit.canary_section); auc and the bound's counts are membership-dependent.
    canaries: dict[str, Any] | None = None
    #: what the audit could have seen (dpaudit.protection.audit_power): measurable, reason, steps, num_shadows,
    #: canaries, canary_cap, reference_leaked. Stated for the reader; the gate recomputes it.
    power: dict[str, Any] | None = None
    #: ``dpaudit audit --task causal-lm`` (dpaudit.pipeline.lm_audit): attacks (the LM attack names run),
    #: exposure (the Secret Sharer's, of included/excluded canaries), generations (prompts/before/after), loss.
    causal_lm: dict[str, Any] | None = None

    _NESTED = {"run": RunInfo, "privacy": PrivacySection, "utility": UtilitySection,
               "attacks": AttackResult, "verdict": Verdict, "mechanism_check": MechanismCheck,
               "reference": ReferenceSection, "sign_off": SignOff}

    def strongest_attack(self) -> AttackResult | None:
        """The ``"ok"`` attack with the highest balanced accuracy (ties: higher AUC), else ``None``."""
        return strongest_of(self.attacks)


def is_estimate(bound: dict[str, Any] | None) -> bool:
    """Whether an ``epsilon_lb``/``canary`` dict is an estimate (``"kind": "estimate"``), not a bound."""
    return bound is not None and bound.get("kind") == "estimate"
