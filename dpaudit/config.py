"""Typed configuration for ``dpaudit train`` and ``dpaudit audit``, loaded from TOML.

Every section is a frozen dataclass whose fields carry their default, range, choices and help in
``dataclasses.field`` metadata (the one source of :data:`RANGES`, :data:`CHOICES`, :data:`FALLBACKS` and
``docs/config.md``). Each section checks itself in ``__post_init__`` (:mod:`dpaudit.config_check`), however it
is built: an unknown key, a wrong type, a value out of its range (NaN and ±inf included), an unknown option or
a missing file is a one-line :class:`~dpaudit.errors.ConfigError`, from TOML and from Python alike.
Command-line ``--set section.key=value`` overrides (values parsed as TOML) apply on top of the file, and
privacy presets fill only what the user left unset.

Presets (:data:`PRESETS`, summarised by :func:`preset_help`): ``high`` (ε = 1), ``balanced`` (ε = 5),
``utility`` (ε = 10).
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from dpaudit._validation import check_choice, short_repr
from dpaudit.clipping import ClippingConfig
from dpaudit.config_check import MAX_ITEMS, MAX_STRING, check_field, field_choices, validate  # noqa: F401 (MAX_*)
from dpaudit.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def _accountants() -> tuple[str, ...]:
    from dpaudit.privacy import ACCOUNTANTS  # numpy/scipy only; imported late to keep `import config` light

    return tuple(ACCOUNTANTS)


def _shadow_recipes() -> tuple[str, ...]:
    from dpaudit.pipeline.shadows import SHADOW_RECIPES  # no torch at import time

    return tuple(SHADOW_RECIPES.names())


def _presets() -> tuple[str, ...]:
    return tuple(PRESETS)


#: Ranges shared by several keys ``(low, high, closed)``. Upper ends are generous sanity caps, not tuning advice:
#: they refuse absurd values (σ = 1e308, 10**400 examples) that would otherwise overflow or stall deep inside
#: training.
_EPSILON, _SIGMA, _DELTA, _LR = (0, 1000, "right"), (0, 1_000_000, "right"), (0, 1, "neither"), (0, 100, "right")
_EPOCHS, _BATCH, _MICRO = (0, 10_000, "right"), (1, 10_000_000, "both"), (1, 65_536, "both")
_HINT_EPS = "use privacy.non_private = true for an ε = ∞ reference"
_HINT_SIGMA = "use privacy.non_private = true to train without noise"


@dataclass(frozen=True)
class DataConfig:
    path: str = field(default="embedded", metadata={
        "help": "the dataset: 'embedded' (the bundled Rotten Tomatoes), 'embedded-images' (Fashion-MNIST), a local "
                "file, folder or Hugging Face dataset"})
    text_column: str = field(default="text", metadata={"help": "column holding the text"})
    modality: str = field(default="auto", metadata={
        "choices": ("auto", "text", "image"),
        "help": "read data.path as texts or images; auto decides by the path (docs/images.md)"})
    image_column: str = field(default="image", metadata={
        "help": "column holding the image (an Image column, or a path relative to the table's folder)"})
    image_size: int | None = field(default=None, metadata={
        "range": (1, 1024, "both"), "help": "resize every image to this many pixels square (unset: one size required)"})
    label_column: str = field(default="label", metadata={"help": "column holding the class label"})
    text_pair_column: str | None = field(default=None, metadata={
        "help": "column of the second text of a pair (sentence-pair tasks)"})
    completion_column: str | None = field(default=None, metadata={
        "help": "causal LM: column of the completion learned after the text (none: learn every token)"})
    split: str = field(default="train", metadata={"help": "the dataset split to read"})
    max_examples: int | None = field(default=None, metadata={
        "range": (1, 10_000_000, "both"), "help": "use a seeded subset of this many rows"})
    max_length: int = field(default=64, metadata={
        "range": (1, 131_072, "both"), "help": "tokens per example (longer texts are truncated)"})
    holdout_fraction: float = field(default=0.2, metadata={
        "range": (0, 1, "neither"), "help": "fraction of the rows held out from training"})

    def __post_init__(self) -> None:
        validate(self, "data")


@dataclass(frozen=True)
class ModelConfig:
    path: str = field(default="embedded", metadata={
        "help": "the backbone: 'embedded' (the bundled MiniLM), 'embedded-lm', 'embedded-vision', a local directory "
                "or a Hugging Face model; a vision model makes the data images (docs/vision-models.md)"})
    task: str = field(default="classification", metadata={
        "choices": ("classification", "causal_lm"),
        "help": "what is trained: a sequence classifier, or next-token prediction (docs/causal-lm.md)"})
    add_biases: bool = field(default=False, metadata={
        "help": "add zero bias terms to the linear layers that have none, so BiTFiT can train them"})
    exclude_modules: tuple[str, ...] = field(default=("pooler",), metadata={
        "help": "modules whose biases stay frozen"})
    # BERT's pooler output tanh(W h_CLS + b) is what BertForSequenceClassification computes, so `dpaudit export`
    # can write the model as a plain HF classifier
    pooling: str = field(default="mean", metadata={
        "choices": ("mean", "pooler"),
        "help": "the head's input: mean of the last hidden states over real tokens, or the backbone's pooler"})

    def __post_init__(self) -> None:
        validate(self, "model")


@dataclass(frozen=True)
class PrivacyConfig:
    """The privacy the user asked for (the ``[privacy]`` section), before anything is resolved.

    Stage 1 of 4: ``PrivacyConfig`` (asked) → ``trainers.recipe.PrivacyPlan`` (resolved: σ calibrated, q, steps,
    δ) → ``dpaudit.privacy.AccountingResult`` (ε the accountant computes for σ, q, steps, δ) →
    ``dpaudit.report_schema.PrivacySection`` (the claim ``audit.json`` states, with clipping and δ(ε)).
    """

    preset: str | None = field(default=None, metadata={
        "choices": _presets, "help": "fill unset training keys from a privacy preset (see --preset)"})
    epsilon: float | None = field(default=None, metadata={
        "range": _EPSILON, "hint": _HINT_EPS, "help": "target ε; σ is calibrated to reach it"})
    noise_multiplier: float | None = field(default=None, metadata={
        "range": _SIGMA, "hint": _HINT_SIGMA, "help": "σ, relative to the clipping norm (instead of epsilon)"})
    delta: float | None = field(default=None, metadata={"range": _DELTA, "help": "target δ"})
    accountant: str = field(default="pld", metadata={
        "choices": _accountants, "help": "the privacy accountant"})
    non_private: bool = field(default=False, metadata={"help": "train without noise (ε = ∞): a reference, never a DP claim"})
    force: bool = field(default=False, metadata={"help": "turn the refusal of δ ≥ 1/N into a warning"})
    #: docs/design.md, "Release boundary".
    neighbouring: str = field(default="replace_one", metadata={
        "choices": ("replace_one", "add_remove"),
        "help": "the relation (ε, δ) is stated for: replace_one (N public) or add_remove (N private)"})

    def __post_init__(self) -> None:
        from dpaudit.privacy import ACCOUNTANTS  # numpy/scipy only

        validate(self, "privacy")
        if self.neighbouring not in ACCOUNTANTS.get(self.accountant).relations:
            raise ConfigError(f"privacy.accountant='{self.accountant}' analyses add_remove neighbours only; set "
                              f"privacy.accountant = 'pld' (or privacy.neighbouring = 'add_remove', which keeps the "
                              f"dataset size private).")


#: ``head_lr`` = 10 × ``lr``: the zero-initialised head learns a probe of already-useful features, the biases
#: take small steps (issue 13's sweep: DP-BiTFiT at ε = 8 gained 2.0 points, 0.732 → 0.752, on 2,500 training
#: snippets; benchmarks/RESULTS.md §2c).
@dataclass(frozen=True)
class OptimConfig:
    optimizer: str = field(default="adam", metadata={"choices": ("adam", "adamw", "sgd"), "help": "the optimizer"})
    lr: float = field(default=5e-3, metadata={"range": _LR, "help": "step size of the biases"})
    head_lr: float | None = field(default=5e-2, metadata={
        "range": _LR, "help": "step size of the task head (none: lr; trainers.optim.make_optimizer)"})
    schedule: str = field(default="constant", metadata={
        "choices": ("constant", "linear", "cosine"), "help": "learning-rate schedule"})
    warmup_fraction: float = field(default=0.0, metadata={
        "range": (0, 1, "left"), "help": "fraction of the steps spent warming the learning rate up"})
    weight_decay: float = field(default=0.0, metadata={"range": (0, 100, "both"), "help": "weight decay"})
    momentum: float = field(default=0.9, metadata={"range": (0, 1, "left"), "help": "SGD momentum"})

    def __post_init__(self) -> None:
        validate(self, "optim")


@dataclass(frozen=True)
class TrainConfig:
    epochs: float = field(default=3.0, metadata={"range": _EPOCHS, "help": "expected passes over the data"})
    batch_size: int = field(default=256, metadata={"range": _BATCH, "help": "expected (Poisson) batch size"})
    micro_batch_size: int = field(default=64, metadata={
        "range": _MICRO, "help": "examples per forward pass (memory only; the batch is the same)"})
    seed: int = field(default=0, metadata={"range": (0, 2**32 - 1, "both"), "help": "seed of sampling and init"})
    noise: str = field(default="secure", metadata={
        "choices": ("secure", "seeded"),
        "help": "secure: OS CSPRNG noise (every release); seeded: reproducible, never a release"})
    device: str = field(default="auto", metadata={
        "pattern": (r"auto|cpu|cuda(:[0-9]{1,3})?", "{auto, cpu, cuda, cuda:N}"),
        "help": "where to train (whether CUDA is present is checked when the device is opened)"})
    autocast: bool = field(default=False, metadata={"help": "run the forward in bf16 (CUDA, or a CPU with native bf16), in training and in the audit's scoring"})
    dropout: bool = field(default=False, metadata={"help": "keep the backbone's dropout on while training"})

    def __post_init__(self) -> None:
        validate(self, "train")


@dataclass(frozen=True)
class AuditConfig:
    num_shadows: int = field(default=8, metadata={
        "range": (2, 1024, "both"), "help": "shadow models trained beside the target (in complementary pairs)"})
    attacks: tuple[str, ...] = field(default=("loss", "shadow", "lira_online", "lira_offline", "rmia"), metadata={
        "help": "membership-inference attacks to run"})
    fprs: tuple[float, ...] | None = field(default=None, metadata={
        "range": (0, 1, "right"), "help": "false-positive rates the TPR is reported at"})
    significance: float = field(default=0.05, metadata={
        "range": (0, 0.5, "right"), "help": "family-wise significance of the ε lower bounds (split over their sources)"})
    loo_targets: int = field(default=4, metadata={
        "range": (1, 1025, "both"), "help": "models of the bank audited as the target in turn (leave-one-out)"})
    canary_guess_fraction: float = field(default=0.1, metadata={
        "range": (0, 1, "right"), "help": "fraction of the canaries the one-run bound guesses on (k₊ = k₋ = ⌊f·m/2⌋)"})
    score_batch_size: int = field(default=256, metadata={
        "range": (1, 65_536, "both"), "help": "examples per forward pass when scoring"})
    shadow_recipe: str = field(default="bitfit", metadata={
        "choices": _shadow_recipes, "help": "how the shadow models are trained"})
    mechanism_check: bool = field(default=False, metadata={
        "help": "run `dpaudit verify` on the target's own DP step (dpaudit/pipeline/mechanism.py)"})
    mechanism_canaries: int = field(default=20_000, metadata={
        "range": (100, 10_000_000, "both"), "help": "canary trials of the mechanism check"})
    reference: str = field(default="none", metadata={
        "choices": ("none", "non_private", "full_non_private"),
        "help": "a non-private reference for context: a BiTFiT bank, or one full fine-tune"})
    canaries: int = field(default=0, metadata={
        "range": (0, 1_000_000, "both"),
        "help": "m crafted canaries added to the population (dpaudit.canaries; 0: none), a target trained here"})
    canary_kind: str = field(default="mislabeled", metadata={
        "choices": ("mislabeled", "unique"), "help": "what a canary is (dpaudit.canaries.CANARY_KINDS)"})
    canary_delta: float = field(default=1e-5, metadata={
        "range": (0, 1, "neither"), "help": "δ of the canary bound (the smaller of it and the claim's δ)"})
    canary_score: str = field(default="loss", metadata={
        "choices": ("loss", "lira_offline"), "help": "the canary bound's score rule (dpaudit.pipeline.canary_audit)"})
    reference_lr: float = field(default=5e-5, metadata={
        "range": _LR, "help": "the full_non_private reference: AdamW step size"})
    reference_epochs: float = field(default=3.0, metadata={
        "range": _EPOCHS, "help": "the full_non_private reference: expected epochs over the target's training set"})
    reference_batch_size: int = field(default=32, metadata={
        "range": _BATCH, "help": "the full_non_private reference: expected Poisson batch size"})

    def __post_init__(self) -> None:
        validate(self, "audit")


@dataclass(frozen=True)
class TargetConfig:
    """The model under audit (``[target]``): trained here, or from anywhere, and its (ε, δ) claim.

    ``kind``: ``"auto"`` (from ``path``: none → ``"train"``, a ``.safetensors`` file → ``"checkpoint"``, a
    directory → ``"hf"``, ``.npy``/``.csv``/``.parquet`` → ``"scores"``), or one of those names. The claim (for
    ``hf``/``scores`` targets only): ``claim_epsilon`` + ``claim_delta``, or ``claim_noise_multiplier`` +
    ``claim_sample_rate`` + ``claim_steps`` + ``claim_delta`` (+ ``claim_accountant``); none of them → "no DP
    claim". ``recipe``: with the same ``audit.shadow_recipe`` and a known privacy recipe, the shadows train like
    the target. ``canaries``: the target is then audited on those canaries alone, a one-run bound
    (docs/canaries.md).
    """

    path: str | None = field(default=None, metadata={"help": "the target: a checkpoint, HF directory or scores"})
    kind: str = field(default="auto", metadata={
        "choices": ("auto", "train", "checkpoint", "hf", "scores"), "help": "what path holds (auto: from path)"})
    members: str | None = field(default=None, metadata={
        "help": "the target's training-example ids (needed for every target not trained here)"})
    scores_kind: str = field(default="logits", metadata={
        "choices": ("logits", "probabilities"), "help": "what a scores file holds"})
    claim_epsilon: float | None = field(default=None, metadata={"range": _EPSILON, "help": "the claimed ε"})
    claim_delta: float | None = field(default=None, metadata={"range": _DELTA, "help": "the claimed δ"})
    claim_noise_multiplier: float | None = field(default=None, metadata={"range": _SIGMA, "help": "the claimed σ"})
    claim_sample_rate: float | None = field(default=None, metadata={
        "range": (0, 1, "right"), "help": "the claimed sample rate q"})
    claim_steps: int | None = field(default=None, metadata={
        "range": (1, 10**9, "both"), "help": "the claimed number of steps"})
    claim_accountant: str = field(default="prv", metadata={
        "choices": _accountants, "help": "accountant that turns the claimed σ, q, steps into ε"})
    recipe: str = field(default="unknown", metadata={
        "choices": lambda: ("unknown", *_shadow_recipes()),
        "help": "how the target was trained, as the user states it ('unknown' or a shadow recipe's name)"})
    canaries: str | None = field(default=None, metadata={
        "help": "a directory by `dpaudit canaries make` whose training file the target was trained on"})

    def __post_init__(self) -> None:
        validate(self, "target")


@dataclass(frozen=True)
class Config:
    data: DataConfig = field(default_factory=DataConfig, metadata={"help": "the dataset"})
    model: ModelConfig = field(default_factory=ModelConfig, metadata={"help": "the backbone and its head"})
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig, metadata={"help": "the privacy asked for"})
    clipping: ClippingConfig = field(default_factory=ClippingConfig, metadata={"help": "per-sample clipping"})
    optim: OptimConfig = field(default_factory=OptimConfig, metadata={"help": "the optimizer"})
    train: TrainConfig = field(default_factory=TrainConfig, metadata={"help": "training"})
    audit: AuditConfig = field(default_factory=AuditConfig, metadata={"help": "the membership audit"})
    target: TargetConfig = field(default_factory=TargetConfig, metadata={"help": "the model under audit"})

    def __post_init__(self) -> None:
        for f in fields(self):
            if not isinstance(getattr(self, f.name), _CLASSES[f.name]):
                raise ConfigError(f"Config.{f.name} must be of type {_CLASSES[f.name].__name__}, got "
                                  f"{short_repr(getattr(self, f.name))}.")

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

_CLASSES = {"data": DataConfig, "model": ModelConfig, "privacy": PrivacyConfig, "clipping": ClippingConfig,
            "optim": OptimConfig, "train": TrainConfig, "audit": AuditConfig,
            "target": TargetConfig}


def _field(section: str, key: str) -> dataclasses.Field | None:
    return {f.name: f for f in fields(_CLASSES[section])}.get(key)


#: Derived from the field metadata (the one source): allowed ranges ``(low, high, closed)`` of every numeric
#: key, and the fixed choices of the string options. The clipping ones are :mod:`dpaudit.clipping`'s; the
#: optimizer ones are kept by the trainer too, for direct API use (a test checks that both agree). Choices read
#: from a registry (accountants, shadow recipes, presets) are resolved by :func:`_choices`.
RANGES: dict[tuple[str, str], tuple[float, float, str]] = {
    (s, f.name): f.metadata["range"] for s, cls in _CLASSES.items() for f in fields(cls) if "range" in f.metadata}
CHOICES: dict[tuple[str, str], tuple[str, ...]] = {
    (s, f.name): f.metadata["choices"] for s, cls in _CLASSES.items() for f in fields(cls)
    if isinstance(f.metadata.get("choices"), tuple)}
#: The tuned defaults of the training keys a preset also sets (the dataclass defaults; read by the trainer's
#: own defaults and the CLI help).
FALLBACKS: dict[str, dict[str, Any]] = {
    s: {k: _field(s, k).default for k in keys}
    for s, keys in {"train": ("batch_size", "epochs"), "optim": ("lr", "head_lr"),
                    "clipping": ("max_grad_norm",)}.items()}


def _choices(section: str, key: str) -> tuple[str, ...] | None:
    f = _field(section, key)
    return None if f is None else field_choices(f)


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
            kwargs[key] = check_field(name, known[key], value)  # in file order; __post_init__ checks again
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
        ``(config, notes)`` where ``notes`` lists what the preset filled in, for printing. Keys neither the
        user nor a preset set keep the dataclass defaults, so ``load_config()[0] == Config()``.
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
    cfg = _build(raw)
    return _fit_attacks(cfg, notes, explicit_attacks="attacks" in explicit.get("audit", set())), notes


def _fit_attacks(cfg: Config, notes: list[str], *, explicit_attacks: bool) -> Config:
    """With ``audit.attacks`` unset and fewer than :data:`MIN_SHADOWS_REFERENCE_ATTACKS` shadows, only the
    attacks that can run (``loss``), with a note; attacks the user named are checked by the audit."""
    a = cfg.audit
    if explicit_attacks or a.num_shadows >= MIN_SHADOWS_REFERENCE_ATTACKS or cfg.model.task == "causal_lm":
        return cfg  # a causal LM runs the LM attacks its shadows allow (dpaudit.pipeline.lm_audit)
    kept = tuple(x for x in a.attacks if x in SHADOW_FREE_ATTACKS)
    dropped = [x for x in a.attacks if x not in kept]
    if dropped:
        notes.append(f"{a.num_shadows} shadows: running only {', '.join(kept)} ({', '.join(dropped)} need "
                     f"audit.num_shadows ≥ {MIN_SHADOWS_REFERENCE_ATTACKS}, e.g. --shadows "
                     f"{MIN_SHADOWS_REFERENCE_ATTACKS})")
    return dataclasses.replace(cfg, audit=dataclasses.replace(a, attacks=kept))
