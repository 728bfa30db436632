"""Typed configuration for ``dpaudit train`` and ``dpaudit audit``, loaded from TOML.

Every section is a frozen dataclass; an unknown key, a wrong type, a value out of its range (NaN and ±inf
included), an unknown option or a missing file is a one-line :class:`~dpaudit.errors.ConfigError` at load.
Command-line ``--set section.key=value`` overrides (values parsed as TOML) apply on top of the file, and
privacy presets fill only what the user left unset.

Presets (:data:`PRESETS`, summarised by :func:`preset_help`): ``high`` (ε = 1), ``balanced`` (ε = 5),
``utility`` (ε = 10).
"""

from __future__ import annotations

import dataclasses
import re
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from dpaudit._validation import check_choice, check_real, short_repr
from dpaudit.clipping import CLIPPING_MODES, CLIPPING_STYLES, ClippingConfig
from dpaudit.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@dataclass(frozen=True)
class DataConfig:
    path: str = "embedded"
    text_column: str = "text"
    label_column: str = "label"
    text_pair_column: str | None = None
    split: str = "train"
    max_examples: int | None = None
    max_length: int = 64
    holdout_fraction: float = 0.2


@dataclass(frozen=True)
class ModelConfig:
    path: str = "embedded"
    add_biases: bool = False
    exclude_modules: tuple[str, ...] = ("pooler",)
    # the head's input: "mean" (mean of the last hidden states over real tokens) or "pooler" (the backbone's own
    # pooler output, BERT's tanh(W h_CLS + b): what BertForSequenceClassification computes, so `dpaudit export`
    # can write the model as a plain HF classifier)
    pooling: str = "mean"


@dataclass(frozen=True)
class PrivacyConfig:
    """The privacy the user asked for (the ``[privacy]`` section), before anything is resolved.

    Stage 1 of 4: ``PrivacyConfig`` (asked) → ``trainers.recipe.PrivacyPlan`` (resolved: σ calibrated, q, steps,
    δ) → ``dpaudit.privacy.AccountingResult`` (ε the accountant computes for σ, q, steps, δ) →
    ``dpaudit.report_schema.PrivacySection`` (the claim ``audit.json`` states, with clipping and δ(ε)).
    """

    preset: str | None = None
    epsilon: float | None = None
    noise_multiplier: float | None = None
    delta: float | None = None
    accountant: str = "pld"
    non_private: bool = False
    force: bool = False
    #: the relation the (ε, δ) is stated for: "replace_one" (N public) or "add_remove" (N private; only then
    #: may "prv"/"rdp" be used). docs/design.md, "Release boundary".
    neighbouring: str = "replace_one"

    def __post_init__(self) -> None:
        from dpaudit.privacy import ACCOUNTANTS  # numpy/scipy only

        if self.accountant in ACCOUNTANTS and self.neighbouring not in ACCOUNTANTS.get(self.accountant).relations:
            raise ConfigError(f"privacy.accountant='{self.accountant}' analyses add_remove neighbours only; set "
                              f"privacy.accountant = 'pld' (or privacy.neighbouring = 'add_remove', which keeps the "
                              f"dataset size private).")


@dataclass(frozen=True)
class OptimConfig:
    optimizer: str = "adam"
    lr: float | None = None
    head_lr: float | None = None  # the task head's learning rate (None: lr); see trainers.optim.make_optimizer
    schedule: str = "constant"
    warmup_fraction: float = 0.0
    weight_decay: float = 0.0
    momentum: float = 0.9


@dataclass(frozen=True)
class TrainConfig:
    epochs: float | None = None
    batch_size: int | None = None
    micro_batch_size: int = 64
    seed: int = 0
    noise: str = "secure"  # "secure" (OS CSPRNG, every release) or "seeded" (reproducible; never a release)
    device: str = "auto"
    autocast: bool = False
    dropout: bool = False


@dataclass(frozen=True)
class AuditConfig:
    num_shadows: int = 8
    attacks: tuple[str, ...] = ("loss", "shadow", "lira_online", "lira_offline", "rmia")
    # None: (0.001, 0.01, 0.1) minus the FPRs the population cannot resolve (attacks.membership.population_fprs)
    fprs: tuple[float, ...] | None = None
    significance: float = 0.05
    loo_targets: int = 4
    canary_guess_fraction: float = 0.1
    score_batch_size: int = 256
    shadow_recipe: str = "bitfit"
    mechanism_check: bool = False  # run `dpaudit verify` on the target's own DP step (dpaudit/pipeline/mechanism.py)
    mechanism_canaries: int = 20_000
    reference: str = "none"  # "non_private" (a BiTFiT bank) | "full_non_private" (one full fine-tune): context
    canaries: int = 0  # m crafted canaries added to the population (dpaudit.canaries; 0 = none), a target trained here
    canary_kind: str = "mislabeled"  # "mislabeled" | "unique" (dpaudit.canaries.CANARY_KINDS)
    canary_delta: float = 1e-5  # δ of the canary bound (the smaller of it and the claim's δ; see canary_audit)
    canary_score: str = "loss"  # the canary bound's score rule: "loss" or "lira_offline" (dpaudit.pipeline.canary_audit)
    reference_lr: float = 5e-5  # the full_non_private reference: AdamW step size
    reference_epochs: float = 3.0  # ... expected epochs over the target's training set
    reference_batch_size: int = 32  # ... expected Poisson batch size


@dataclass(frozen=True)
class TargetConfig:
    """The model under audit (``[target]``): trained here, or from anywhere, and its (ε, δ) claim.

    ``kind``: ``"auto"`` (from ``path``: none → ``"train"``, a ``.safetensors`` file → ``"checkpoint"``, a
    directory → ``"hf"``, ``.npy``/``.csv``/``.parquet`` → ``"scores"``), or one of those names. ``members``:
    the target's training-example ids (needed for every target not trained here). ``scores_kind``: what a
    scores file holds (``"logits"`` or ``"probabilities"``). The claim (for ``hf``/``scores`` targets only):
    ``claim_epsilon`` + ``claim_delta``, or ``claim_noise_multiplier`` + ``claim_sample_rate`` +
    ``claim_steps`` + ``claim_delta`` (+ ``claim_accountant``); none of them → "no DP claim". ``recipe``:
    how the target was trained, as the user states it (``"unknown"``, or a shadow recipe's name: ``"bitfit"``,
    ``"full"``); with the same ``audit.shadow_recipe`` and a known privacy recipe, the shadows train like it.
    ``canaries``: a directory written by ``dpaudit canaries make`` whose training file the target was trained
    on; the target is then audited on those canaries alone, a one-run bound (docs/canaries.md).
    """

    path: str | None = None
    kind: str = "auto"
    members: str | None = None
    scores_kind: str = "logits"
    claim_epsilon: float | None = None
    claim_delta: float | None = None
    claim_noise_multiplier: float | None = None
    claim_sample_rate: float | None = None
    claim_steps: int | None = None
    claim_accountant: str = "prv"
    recipe: str = "unknown"
    canaries: str | None = None


@dataclass(frozen=True)
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)
    clipping: ClippingConfig = field(default_factory=ClippingConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    audit: AuditConfig = field(default_factory=AuditConfig)
    target: TargetConfig = field(default_factory=TargetConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    # strong noise needs large batches and a larger step size.
    "high": {"privacy": {"epsilon": 1.0}, "train": {"batch_size": 512, "epochs": 3.0},
             "optim": {"lr": 1e-2, "head_lr": 5e-2}, "clipping": {"max_grad_norm": 0.1}},
    "balanced": {"privacy": {"epsilon": 5.0}, "train": {"batch_size": 512, "epochs": 3.0},
                 "optim": {"lr": 5e-3, "head_lr": 5e-2}, "clipping": {"max_grad_norm": 0.1}},
    "utility": {"privacy": {"epsilon": 10.0}, "train": {"batch_size": 256, "epochs": 3.0},
                "optim": {"lr": 5e-3, "head_lr": 5e-2}, "clipping": {"max_grad_norm": 0.1}},
}


def preset_help() -> str:
    """What each preset sets, from :data:`PRESETS` (the ``--preset`` help): ``high (ε=1, batch 512, 3 epochs), …``."""
    def one(name: str) -> str:
        p = PRESETS[name]
        return (f"{name} (ε={p['privacy']['epsilon']:g}, batch {p['train']['batch_size']}, "
                f"{p['train']['epochs']:g} epochs)")
    return ", ".join(one(name) for name in PRESETS)


#: Shadow models the attacks other than ``loss`` need: 2 complementary pairs, so every example has ≥ 2 OUT
#: references outside a leave-one-out target's pair. With fewer (``audit.num_shadows = 2``) and ``audit.attacks``
#: unset, only ``loss`` runs (:func:`load_config` says so); naming another attack is refused.
MIN_SHADOWS_REFERENCE_ATTACKS = 4
#: Attacks that need no shadow model beyond the target's pair.
SHADOW_FREE_ATTACKS = ("loss",)

#: Values used when neither the user nor a preset set them. ``head_lr`` = 10 × ``lr``: the zero-initialised head
#: learns a probe of already-useful features, the biases take small steps (issue 13's sweep: DP-BiTFiT at ε = 8
#: gained 2.0 points, 0.732 → 0.752, on 2,500 training snippets; benchmarks/RESULTS.md §2c).
#: ``max_grad_norm`` = 0.1: every high-loss example is clipped (its norm is 10–30 once the head has grown) and the
#: easy ones (norm < 0.1) pass whole; the best single lever of issue 13's full-recipe sweep (ε = 8, seed 0: 0.788 vs
#: 0.783 at C = 1) and the C of its 3-seed grid (§2d).
FALLBACKS: dict[str, dict[str, Any]] = {
    "train": {"batch_size": 256, "epochs": 3.0}, "optim": {"lr": 5e-3, "head_lr": 5e-2},
    "clipping": {"max_grad_norm": 0.1},
}

#: Allowed ranges of every numeric key ``(low, high, closed)``, checked on load so that a bad value fails with
#: one line before any work. Upper ends are generous sanity caps, not tuning advice: they refuse absurd values
#: (σ = 1e308, 10**400 examples) that would otherwise overflow or stall deep inside training.
RANGES: dict[tuple[str, str], tuple[float, float, str]] = {
    ("data", "max_examples"): (1, 10_000_000, "both"), ("data", "max_length"): (1, 131_072, "both"),
    ("data", "holdout_fraction"): (0, 1, "neither"),
    ("privacy", "epsilon"): (0, 1000, "right"), ("privacy", "noise_multiplier"): (0, 1_000_000, "right"),
    ("privacy", "delta"): (0, 1, "neither"),
    ("clipping", "max_grad_norm"): (0, 1_000_000, "right"),
    ("optim", "lr"): (0, 100, "right"), ("optim", "head_lr"): (0, 100, "right"),
    ("optim", "warmup_fraction"): (0, 1, "left"),
    ("optim", "weight_decay"): (0, 100, "both"), ("optim", "momentum"): (0, 1, "left"),
    ("train", "epochs"): (0, 10_000, "right"), ("train", "batch_size"): (1, 10_000_000, "both"),
    ("train", "micro_batch_size"): (1, 65_536, "both"), ("train", "seed"): (0, 2**32 - 1, "both"),
    ("audit", "num_shadows"): (2, 1024, "both"), ("audit", "fprs"): (0, 1, "right"),
    ("audit", "significance"): (0, 0.5, "right"), ("audit", "loo_targets"): (1, 1025, "both"),
    ("audit", "canary_guess_fraction"): (0, 1, "right"), ("audit", "score_batch_size"): (1, 65_536, "both"),
    ("audit", "mechanism_canaries"): (100, 10_000_000, "both"), ("audit", "canaries"): (0, 1_000_000, "both"),
    ("audit", "canary_delta"): (0, 1, "neither"),
    ("audit", "reference_lr"): (0, 100, "right"), ("audit", "reference_epochs"): (0, 10_000, "right"),
    ("audit", "reference_batch_size"): (1, 10_000_000, "both"),
    ("target", "claim_epsilon"): (0, 1000, "right"), ("target", "claim_delta"): (0, 1, "neither"),
    ("target", "claim_noise_multiplier"): (0, 1_000_000, "right"), ("target", "claim_sample_rate"): (0, 1, "right"),
    ("target", "claim_steps"): (1, 10**9, "both"),
}
#: Allowed values of the string options. The clipping ones are :mod:`dpaudit.clipping`'s; the optimizer ones
#: are kept by the trainer too, for direct API use (a test checks that both agree). Accountants come from the
#: registry in :mod:`dpaudit.privacy` (see :func:`_choices`).
CHOICES: dict[tuple[str, str], tuple[str, ...]] = {
    ("clipping", "style"): CLIPPING_STYLES, ("clipping", "mode"): CLIPPING_MODES,
    ("optim", "optimizer"): ("adam", "adamw", "sgd"), ("optim", "schedule"): ("constant", "linear", "cosine"),
    ("train", "noise"): ("secure", "seeded"),
    ("privacy", "neighbouring"): ("replace_one", "add_remove"),
    ("target", "kind"): ("auto", "train", "checkpoint", "hf", "scores"),
    ("target", "scores_kind"): ("logits", "probabilities"),
    ("audit", "reference"): ("none", "non_private", "full_non_private"),
    ("model", "pooling"): ("mean", "pooler"),
    ("audit", "canary_kind"): ("mislabeled", "unique"), ("audit", "canary_score"): ("loss", "lira_offline"),
}
#: ``train.device``: auto, cpu, cuda or cuda:N (whether CUDA is present is checked when the device is opened).
_DEVICE = re.compile(r"auto|cpu|cuda(:[0-9]{1,3})?")
#: What a message adds after the range for keys whose fix is not a different number.
_HINTS = {("privacy", "epsilon"): "use privacy.non_private = true for an ε = ∞ reference",
          ("privacy", "noise_multiplier"): "use privacy.non_private = true to train without noise"}
#: Longest list (``audit.fprs``, ``audit.attacks``, ``model.exclude_modules``), table and string accepted.
MAX_ITEMS = 64
MAX_STRING = 4096

_CLASSES = {"data": DataConfig, "model": ModelConfig, "privacy": PrivacyConfig, "clipping": ClippingConfig,
            "optim": OptimConfig, "train": TrainConfig, "audit": AuditConfig,
            "target": TargetConfig}


def _choices(section: str, key: str) -> tuple[str, ...] | None:
    if (section, key) in (("privacy", "accountant"), ("target", "claim_accountant")):
        from dpaudit.privacy import ACCOUNTANTS  # numpy/scipy only; imported here to keep `import config` light

        return tuple(ACCOUNTANTS)
    if (section, key) in (("audit", "shadow_recipe"), ("target", "recipe")):
        from dpaudit.pipeline.shadows import SHADOW_RECIPES

        return (*(("unknown",) if section == "target" else ()), *SHADOW_RECIPES.names())
    return CHOICES.get((section, key))


def _check_range(section: str, key: str, value: Any) -> Any:
    low, high, closed = RANGES[section, key]
    where = f"{section}.{key}"
    try:
        checked = check_real(where, value, low, high, closed=closed)
    except ConfigError as err:
        hint = _HINTS.get((section, key))
        if hint is None:
            raise
        raise ConfigError(f"{str(err).rstrip('.')}; {hint}.") from None
    return value if isinstance(value, int) else checked


def _check_item(where: str, value: Any, item: str) -> Any:
    if item == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where} must be a number, got {where}={short_repr(value)}.")
    elif item == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be an integer, got {where}={short_repr(value)}.")
    elif item == "str":
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, got {where}={short_repr(value)}.")
        if len(value) > MAX_STRING:
            raise ConfigError(f"{where} must be at most {MAX_STRING} characters, got {len(value)}.")
    return value


def _check_groups(groups: dict) -> dict:
    """``clipping.groups``: ``{name = [regex, C_g]}`` with a compilable regex and C_g in the clipping range."""
    if len(groups) > MAX_ITEMS:
        raise ConfigError(f"clipping.groups must have at most {MAX_ITEMS} groups, got {len(groups)}.")
    low, high, closed = RANGES["clipping", "max_grad_norm"]
    for name, spec in groups.items():
        where = f"clipping.groups.{name}"
        if not (isinstance(spec, (list, tuple)) and len(spec) == 2 and isinstance(spec[0], str)):
            raise ConfigError(f"{where} must be [regex, threshold], got {where}={short_repr(spec)}.")
        _check_item(where, spec[0], "str")
        try:
            re.compile(spec[0])
        except re.error as err:
            raise ConfigError(f"{where} has an invalid regex {short_repr(spec[0])} ({err}).") from None
        _check_item(f"{where} threshold", spec[1], "float")
        check_real(f"{where} threshold", spec[1], low, high, closed=closed)
    return groups


def _check_value(section: str, key: str, value: Any, annotation: str) -> Any:
    """Type, range and choice of one key; returns the value in the dataclass's type."""
    where = f"{section}.{key}"
    if value is None:
        if "None" in annotation:
            return None
        raise ConfigError(f"{where} cannot be empty.")
    if "tuple" in annotation:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where} must be a list, got {where}={short_repr(value)}.")
        if len(value) > MAX_ITEMS:
            raise ConfigError(f"{where} must have at most {MAX_ITEMS} entries, got {len(value)}.")
        item = "float" if "float" in annotation else "str"
        out = tuple(_check_item(f"{where}[{i}]", v, item) for i, v in enumerate(value))
        if (section, key) in RANGES:
            low, high, closed = RANGES[section, key]
            out = tuple(check_real(f"{where}[{i}]", v, low, high, closed=closed) for i, v in enumerate(out))
        return out
    if "dict" in annotation:
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a table, got {where}={short_repr(value)}.")
        return _check_groups(dict(value))
    if "bool" in annotation:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {where}={short_repr(value)}.")
        return value
    for kind in ("float", "int", "str"):
        if kind in annotation:
            _check_item(where, value, kind)
            break
    if (section, key) in RANGES:
        value = _check_range(section, key, value)
        return float(value) if "float" in annotation else value
    choices = _choices(section, key)
    if choices is not None:
        check_choice(where, value, choices)
    if (section, key) == ("train", "device") and not _DEVICE.fullmatch(value):
        raise ConfigError(f"train.device must be one of {{auto, cpu, cuda, cuda:N}}, got "
                          f"train.device={short_repr(value)}.")
    return value


def _build(raw: dict) -> Config:
    sections = {}
    for name, values in raw.items():
        if name not in _CLASSES:
            raise ConfigError(f"unknown config section [{short_repr(name)[1:-1]}]; known sections: "
                              f"{', '.join(_CLASSES)}.")
        if not isinstance(values, dict):
            raise ConfigError(f"[{name}] must be a table of keys, got {short_repr(values)}.")
        cls = _CLASSES[name]
        known = {f.name: f for f in fields(cls)}
        kwargs = {}
        for key, value in values.items():
            if key not in known:
                raise ConfigError(f"unknown key {short_repr(key)} in [{name}]; known keys: {', '.join(known)}.")
            kwargs[key] = _check_value(name, key, value, str(known[key].type))
        sections[name] = cls(**kwargs)
    return Config(**sections)  # ClippingConfig checks that mode = 'groups' comes with groups


def _parse_toml(text: str, what: str) -> dict:
    """``tomllib.loads`` with every failure as one line (integers past 4300 digits raise ValueError and
    deeply nested arrays RecursionError inside tomllib)."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{what} is not valid TOML ({err}).") from None
    except ValueError as err:
        raise ConfigError(f"{what} holds a number too large to read ({str(err).split(':')[0]}).") from None
    except RecursionError:
        raise ConfigError(f"{what} is nested too deeply to read; config values are flat numbers, strings "
                          f"and short lists.") from None


def parse_override(text: str) -> tuple[str, str, Any]:
    """``"train.epochs=2"`` → ``("train", "epochs", 2)``; the value is parsed as TOML (bare words as strings)."""
    if "=" not in text or "." not in text.split("=", 1)[0]:
        raise ConfigError(f"--set expects section.key=value, got {text!r}.")
    lhs, rhs = text.split("=", 1)
    section, key = lhs.strip().split(".", 1)
    try:
        value = _parse_toml(f"v = {rhs.strip()}", f"--set {section}.{key}")["v"]
    except ConfigError as err:
        if "not valid TOML" not in str(err):
            raise
        value = rhs.strip()  # a bare word: taken as a string
    return section, key, value


def load_config(path: str | Path | None = None, overrides: list[tuple[str, str, Any]] | None = None) -> tuple[Config, list[str]]:
    """Read ``path`` (optional), apply overrides, then the privacy preset, and validate every value.

    Every key is checked here, before any data or model is touched: its type, its range (:data:`RANGES`,
    finite numbers only), its allowed values (:data:`CHOICES`, the accountant registry, the device pattern).

    Returns:
        ``(config, notes)`` where ``notes`` lists what the preset or fallbacks filled in, for printing.
    """
    raw: dict[str, dict] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file '{p}' does not exist; pass an existing TOML file or omit --config.")
        try:
            text = p.read_text(encoding="utf-8")
        except UnicodeDecodeError as err:
            raise ConfigError(f"config file '{p}' is not valid TOML ({err}).") from None
        raw = _parse_toml(text, f"config file '{p}'")
    for name, values in raw.items():  # sections first, so that overrides and presets below meet tables only
        if name in _CLASSES and not isinstance(values, dict):
            raise ConfigError(f"[{name}] must be a table of keys, got {name}={short_repr(values)}.")
    for section, key, value in overrides or []:
        raw.setdefault(section, {})[key] = value
    explicit = {s: set(v) for s, v in raw.items() if isinstance(v, dict)}
    notes: list[str] = []
    preset = raw.get("privacy", {}).get("preset")
    if preset is not None:
        check_choice("privacy.preset", preset, tuple(PRESETS))
        for section, values in PRESETS[preset].items():
            for key, value in values.items():
                if key not in explicit.get(section, set()):
                    if section == "privacy" and key == "epsilon" and (
                        "noise_multiplier" in explicit.get("privacy", set())
                        or raw.get("privacy", {}).get("non_private")):
                        continue
                    raw.setdefault(section, {})[key] = value
                    notes.append(f"preset '{preset}': {section}.{key} = {value}")
    for section, values in FALLBACKS.items():
        for key, value in values.items():
            if raw.get(section, {}).get(key) is None:
                raw.setdefault(section, {})[key] = value
    cfg = _build(raw)
    return _fit_attacks(cfg, notes, explicit_attacks="attacks" in explicit.get("audit", set())), notes


def _fit_attacks(cfg: Config, notes: list[str], *, explicit_attacks: bool) -> Config:
    """With ``audit.attacks`` unset and fewer than :data:`MIN_SHADOWS_REFERENCE_ATTACKS` shadows, only the
    attacks that can run (``loss``), with a note; attacks the user named are checked by the audit."""
    a = cfg.audit
    if explicit_attacks or a.num_shadows >= MIN_SHADOWS_REFERENCE_ATTACKS:
        return cfg
    kept = tuple(x for x in a.attacks if x in SHADOW_FREE_ATTACKS)
    dropped = [x for x in a.attacks if x not in kept]
    if dropped:
        notes.append(f"{a.num_shadows} shadows: running only {', '.join(kept)} ({', '.join(dropped)} need "
                     f"audit.num_shadows ≥ {MIN_SHADOWS_REFERENCE_ATTACKS}, e.g. --shadows "
                     f"{MIN_SHADOWS_REFERENCE_ATTACKS})")
    return dataclasses.replace(cfg, audit=dataclasses.replace(a, attacks=kept))
