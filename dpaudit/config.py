"""Typed configuration for ``dpaudit train`` and ``dpaudit audit``, loaded from TOML.

Every section is a frozen dataclass; an unknown key, a wrong type or a missing file is a one-line
:class:`~dpaudit.errors.ConfigError`. Command-line ``--set section.key=value`` overrides (values parsed as
TOML) apply on top of the file, and privacy presets fill only what the user left unset.

Presets (the seed's tuning guide): ``high`` (ε < 2), ``balanced`` (ε 3–8), ``utility`` (ε > 8).
"""

from __future__ import annotations

import dataclasses
import math
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from dpaudit._validation import check_real
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
    max_examples: int | None = None
    max_length: int = 64
    holdout_fraction: float = 0.2


@dataclass(frozen=True)
class ModelConfig:
    path: str = "embedded"
    add_biases: bool = False
    exclude_modules: tuple[str, ...] = ("pooler",)


@dataclass(frozen=True)
class PrivacyConfig:
    preset: str | None = None
    epsilon: float | None = None
    noise_multiplier: float | None = None
    delta: float | None = None
    accountant: str = "prv"
    non_private: bool = False
    force: bool = False


@dataclass(frozen=True)
class ClippingSection:
    max_grad_norm: float | None = None
    style: str = "abadi"
    mode: str = "all_layer"
    groups: dict = field(default_factory=dict)


@dataclass(frozen=True)
class OptimConfig:
    optimizer: str = "adam"
    lr: float | None = None
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
    fprs: tuple[float, ...] = (0.001, 0.01, 0.1)
    significance: float = 0.05
    loo_targets: int = 4
    canary_guess_fraction: float = 0.1
    score_batch_size: int = 256
    target_checkpoint: str | None = None
    target_members: str | None = None


@dataclass(frozen=True)
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)
    clipping: ClippingSection = field(default_factory=ClippingSection)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    audit: AuditConfig = field(default_factory=AuditConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    # ε < 2: strong noise needs large batches and a larger step size.
    "high": {"privacy": {"epsilon": 1.0}, "train": {"batch_size": 512, "epochs": 3.0},
             "optim": {"lr": 1e-2}, "clipping": {"max_grad_norm": 1.0}},
    # ε 3–8.
    "balanced": {"privacy": {"epsilon": 5.0}, "train": {"batch_size": 512, "epochs": 3.0},
                 "optim": {"lr": 5e-3}, "clipping": {"max_grad_norm": 1.0}},
    # ε > 8.
    "utility": {"privacy": {"epsilon": 10.0}, "train": {"batch_size": 256, "epochs": 3.0},
                "optim": {"lr": 5e-3}, "clipping": {"max_grad_norm": 1.0}},
}
#: Values used when neither the user nor a preset set them.
FALLBACKS: dict[str, dict[str, Any]] = {
    "train": {"batch_size": 256, "epochs": 3.0}, "optim": {"lr": 5e-3}, "clipping": {"max_grad_norm": 1.0},
}

#: Allowed ranges of numeric keys ``(low, high, closed)``, checked on load so that a bad value fails before any
#: work; ε, δ, σ, the clipping threshold, FPRs and num_shadows are checked where their messages name the fix.
_RANGES: dict[tuple[str, str], tuple[float, float, str]] = {
    ("data", "max_examples"): (1, math.inf, "left"), ("data", "max_length"): (1, math.inf, "left"),
    ("data", "holdout_fraction"): (0.0, 1.0, "neither"),
    ("optim", "lr"): (0.0, math.inf, "neither"), ("optim", "warmup_fraction"): (0.0, 1.0, "left"),
    ("optim", "weight_decay"): (0.0, math.inf, "left"), ("optim", "momentum"): (0.0, 1.0, "left"),
    ("train", "epochs"): (0.0, math.inf, "neither"), ("train", "batch_size"): (1, math.inf, "left"),
    ("train", "micro_batch_size"): (1, math.inf, "left"), ("train", "seed"): (0, math.inf, "left"),
    ("audit", "significance"): (0.0, 1.0, "neither"), ("audit", "loo_targets"): (1, math.inf, "left"),
    ("audit", "canary_guess_fraction"): (0.0, 1.0, "right"), ("audit", "score_batch_size"): (1, math.inf, "left"),
}

_SECTIONS = {f.name: f.type for f in fields(Config)}
_CLASSES = {"data": DataConfig, "model": ModelConfig, "privacy": PrivacyConfig, "clipping": ClippingSection,
            "optim": OptimConfig, "train": TrainConfig, "audit": AuditConfig}


def _check_type(section: str, key: str, value: Any, default: Any, annotation: str) -> Any:
    where = f"{section}.{key}"
    if value is None:
        if "None" in annotation:
            return None
        raise ConfigError(f"{where} cannot be empty.")
    if "tuple" in annotation:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where} must be a list, got {where}={value!r}.")
        return tuple(value)
    if "dict" in annotation:
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a table, got {where}={value!r}.")
        return dict(value)
    if "bool" in annotation:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {where}={value!r}.")
        return value
    if "float" in annotation:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where} must be a number, got {where}={value!r}.")
        return float(value)
    if "int" in annotation:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be an integer, got {where}={value!r}.")
        return value
    if "str" in annotation and not isinstance(value, str):
        raise ConfigError(f"{where} must be a string, got {where}={value!r}.")
    return value


def _build(raw: dict) -> Config:
    sections = {}
    for name, values in raw.items():
        if name not in _CLASSES:
            raise ConfigError(f"unknown config section [{name}]; known sections: {', '.join(_CLASSES)}.")
        if not isinstance(values, dict):
            raise ConfigError(f"[{name}] must be a table of keys, got {values!r}.")
        cls = _CLASSES[name]
        known = {f.name: f for f in fields(cls)}
        kwargs = {}
        for key, value in values.items():
            if key not in known:
                raise ConfigError(f"unknown key '{key}' in [{name}]; known keys: {', '.join(known)}.")
            f = known[key]
            kwargs[key] = _check_type(name, key, value, f.default, str(f.type))
            if (name, key) in _RANGES and kwargs[key] is not None:
                low, high, closed = _RANGES[name, key]
                check_real(f"{name}.{key}", kwargs[key], low, high, closed=closed)
        sections[name] = cls(**kwargs)
    return Config(**sections)


def parse_override(text: str) -> tuple[str, str, Any]:
    """``"train.epochs=2"`` → ``("train", "epochs", 2)``; the value is parsed as TOML (bare words as strings)."""
    if "=" not in text or "." not in text.split("=", 1)[0]:
        raise ConfigError(f"--set expects section.key=value, got {text!r}.")
    lhs, rhs = text.split("=", 1)
    section, key = lhs.strip().split(".", 1)
    try:
        value = tomllib.loads(f"v = {rhs.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = rhs.strip()
    return section, key, value


def load_config(path: str | Path | None = None, overrides: list[tuple[str, str, Any]] | None = None) -> tuple[Config, list[str]]:
    """Read ``path`` (optional), apply overrides, then the privacy preset.

    Returns:
        ``(config, notes)`` where ``notes`` lists what the preset or fallbacks filled in, for printing.
    """
    raw: dict[str, dict] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file '{p}' does not exist; pass an existing TOML file or omit --config.")
        try:
            raw = tomllib.loads(p.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
            raise ConfigError(f"config file '{p}' is not valid TOML ({err}).") from err
    for section, key, value in overrides or []:
        raw.setdefault(section, {})[key] = value
    explicit = {s: set(v) for s, v in raw.items() if isinstance(v, dict)}
    notes: list[str] = []
    preset = raw.get("privacy", {}).get("preset")
    if preset is not None:
        if preset not in PRESETS:
            raise ConfigError(f"privacy.preset must be one of {{{', '.join(PRESETS)}}}, got preset={preset!r}.")
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
    return _build(raw), notes
