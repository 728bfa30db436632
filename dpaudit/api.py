"""The Python front door: ``dpaudit.train`` → ``dpaudit.audit`` → ``dpaudit.gate`` → ``dpaudit.render``.

Each function is what the CLI command of the same name does, minus argparse and printing (the commands
call these). Configuration, in one convention for both ``train`` and ``audit``:

* ``config``: a TOML path, a :class:`~dpaudit.config.Config` (e.g. from :func:`dpaudit.load_config`), a
  ``{section: {key: value}}`` mapping, or ``None`` (the defaults);
* ``overrides={"train.epochs": 1, "data.max_length": 16}``: any config key, as ``--set`` sets it;
* a few keyword shortcuts for the common keys, applied last: ``data``, ``model``, ``epsilon``, ``delta``,
  ``epochs``, ``batch_size``, ``max_examples``, ``seed`` (and ``shadows``, ``attacks`` for ``audit``).

Files stay optional: without ``run_dir``, training and the audit run in a temporary directory that is
deleted afterwards; the results hold what the files held (``.save(run_dir)`` writes them). Everything is
validated before any work, and bad input raises a :class:`~dpaudit.errors.DpauditError` whose message is
one line (``ConfigError`` and ``DataError`` are ``ValueError`` s).
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dpaudit.config import Config, load_config
from dpaudit.errors import ConfigError

logger = logging.getLogger(__name__)

__all__ = ["Report", "TrainResult", "audit", "resolve_config", "train"]  # gate, render: dpaudit.gating

#: keyword shortcut → (section, key).
SHORTCUTS: dict[str, tuple[str, str]] = {
    "data": ("data", "path"), "model": ("model", "path"), "epsilon": ("privacy", "epsilon"),
    "delta": ("privacy", "delta"), "epochs": ("train", "epochs"), "batch_size": ("train", "batch_size"),
    "max_examples": ("data", "max_examples"), "seed": ("train", "seed"), "shadows": ("audit", "num_shadows"),
    "attacks": ("audit", "attacks"),
}
_MODELS, _SPLIT, _METRICS = "models.safetensors", "split.json", "metrics.json"


def resolve_config(config: str | Path | Config | Mapping | None = None, overrides: Mapping[str, Any] | None = None,
                   **shortcuts: Any) -> Config:
    """The validated :class:`Config` of ``config`` with ``overrides`` (``"section.key": value``) and the
    :data:`SHORTCUTS` that are not ``None`` applied on top, in that order; preset notes go to the log."""
    items: list[tuple[str, str, Any]] = []
    path = None
    if isinstance(config, Config) and not overrides and all(v is None for v in shortcuts.values()):
        return config  # already resolved and validated
    if isinstance(config, Config):
        config = config.to_dict()
    if isinstance(config, Mapping):
        items = [(s, k, v) for s, section in config.items() for k, v in dict(section).items()]
    elif config is not None:
        path = config
    for name, value in (overrides or {}).items():
        section, dot, key = str(name).partition(".")
        if not dot or not section or not key:
            raise ConfigError(f"overrides keys are 'section.key', got {name!r}; e.g. overrides={{'train.epochs': 1}}.")
        items.append((section, key, value))
    for name, value in shortcuts.items():
        if name not in SHORTCUTS:
            raise ConfigError(f"unknown keyword {name!r}; known: {', '.join(SHORTCUTS)}, or overrides={{...}}.")
        if value is not None:
            items.append((*SHORTCUTS[name], list(value) if name == "attacks" else value))
    cfg, notes = load_config(path, items)
    for note in notes:
        logger.info(note)
    return cfg


@dataclass(frozen=True)
class TrainResult:
    """One trained DP-BiTFiT model: what ``dpaudit train`` writes, in memory.

    Attributes:
        config: the resolved config.
        metrics: ``metrics.json`` (held-out accuracy, ε, δ, σ, q, steps, clipping, wall time).
        checkpoint: ``models.safetensors`` bytes (tables, optimizer state, metadata).
        split: ``split.json`` (train / held-out ids, commitment key): PRIVATE, never publish it.
        run_dir: the run directory it was trained into, or ``None`` (nothing kept on disk).
    """

    config: Config
    metrics: dict
    checkpoint: bytes
    split: dict
    run_dir: Path | None = None

    @property
    def privacy(self) -> dict[str, Any]:
        """The claim: ``epsilon`` (nats, ``None`` when non-private), ``delta``, ``noise_multiplier`` (σ),
        ``sample_rate`` (q), ``steps``, ``accountant``, ``non_private``, ``noise``."""
        keys = ("epsilon", "delta", "noise_multiplier", "sample_rate", "steps", "accountant", "non_private", "noise")
        return {k: self.metrics.get(k) for k in keys}

    @property
    def accuracy(self) -> float:
        """Held-out accuracy (fraction)."""
        return float(self.metrics["heldout_accuracy"])

    @property
    def tables(self) -> dict:
        """The trained tensors (biases and head) by name, ``torch.Tensor`` each (imports torch)."""
        from dpaudit.trainers.checkpoint import parse_checkpoint

        return parse_checkpoint(self.checkpoint)[0]

    @classmethod
    def read(cls, run_dir: str | Path, config: Config, *, keep: bool = True) -> TrainResult:
        """Read a finished ``dpaudit train`` run directory (``keep``: remember it as ``run_dir``)."""
        path = Path(run_dir)
        return cls(config=config, metrics=json.loads((path / _METRICS).read_text(encoding="utf-8")),
                   checkpoint=(path / _MODELS).read_bytes(),
                   split=json.loads((path / _SPLIT).read_text(encoding="utf-8")), run_dir=path if keep else None)

    def save(self, run_dir: str | Path, *, force_run_dir: bool = False) -> Path:
        """Write the run directory ``dpaudit train`` would have written (a new directory); returns it."""
        from dpaudit.rundir import RunDir, config_inputs

        run = RunDir.claim(run_dir, command="train", force=force_run_dir)
        run.bind({"config": config_inputs(self.config.to_dict()), "dataset_sha256": self.metrics["dataset_sha256"],
                  "n_examples": self.split["n_examples"], "model_sha256": self.metrics["backbone_sha256"]})
        run.write_json("config.json", self.config.to_dict())
        run.write_json(_SPLIT, self.split)
        run.write(_MODELS, self.checkpoint, steps=int(self.metrics["steps"]))
        run.write_json(_METRICS, self.metrics)
        return run.path


def train(config: str | Path | Config | Mapping | None = None, *, data: str | None = None, model: str | None = None,
          run_dir: str | Path | None = None, overrides: Mapping[str, Any] | None = None, epsilon: float | None = None,
          delta: float | None = None, epochs: float | None = None, batch_size: int | None = None,
          max_examples: int | None = None, seed: int | None = None, progress: bool = False,
          force_run_dir: bool = False) -> TrainResult | None:
    """Fine-tune one model with DP-BiTFiT and state its (ε, δ): ``dpaudit train`` as a function.

    With ``run_dir`` it trains into that directory (an interrupted run there resumes); without, into a
    temporary one that is deleted. ``None`` on torchrun ranks other than 0. See the module docstring for
    ``config``/``overrides``/shortcuts; ``data="embedded"``/``model="embedded"`` use the bundled assets.
    """
    from dpaudit.training import train_run

    cfg = resolve_config(config, overrides, data=data, model=model, epsilon=epsilon, delta=delta, epochs=epochs,
                         batch_size=batch_size, max_examples=max_examples, seed=seed)
    if run_dir is not None:
        done = train_run(cfg, run_dir, progress=progress, force_run_dir=force_run_dir)
        return None if done is None else TrainResult.read(done.run.path, cfg)
    with tempfile.TemporaryDirectory(prefix="dpaudit-train-") as tmp:
        done = train_run(cfg, Path(tmp) / "run", progress=progress)
        return None if done is None else TrainResult.read(done.run.path, cfg, keep=False)


@dataclass(frozen=True)
class Report:
    """An audit's result: the validated :class:`~dpaudit.report_schema.AuditReport` (``.audit``) and its
    headline numbers. ``run_dir`` is the audit's directory, or ``None`` when it ran in a temporary one."""

    audit: Any
    run_dir: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        """``audit.json`` as a dict (valid against ``dpaudit/schema/audit-1.0.json``)."""
        return self.audit.to_dict()

    def save(self, path: str | Path) -> Path:
        """Write ``audit.json`` (``path``: a file, or a directory to hold ``audit.json``); returns the file."""
        from dpaudit.report_io import dump_report

        p = Path(path)
        return dump_report(self.audit, p / "audit.json" if p.is_dir() else p)

    @property
    def claimed_epsilon(self) -> float | None:
        """The claim's ε (nats; an upper bound), ``None`` when non-private or no claim."""
        return self.audit.privacy.epsilon

    @property
    def epsilon_lb(self) -> float | None:
        """The headline empirical ε lower bound (Bonferroni family of every bound), ``None`` if absent."""
        return (self.audit.epsilon_lb_family or {}).get("epsilon_lb")

    @property
    def protection_level(self) -> str | None:
        return self.audit.verdict.protection_level

    @property
    def strongest_attack(self) -> str | None:
        return self.audit.verdict.strongest_attack

    @property
    def auc(self) -> float | None:
        """AUC of the strongest attack (``None`` if every attack was inconclusive)."""
        best = self.audit.strongest_attack()
        return None if best is None else best.auc


def _target_overrides(target, target_members, tmp: Path) -> dict[str, Any]:
    if isinstance(target, TrainResult):  # a model trained by dpaudit.train: its checkpoint and split
        run = target.run_dir if target.run_dir is not None else target.save(tmp / "target")
        target, target_members = run / _MODELS, target_members or run / _SPLIT
    out = {} if target is None else {"target.path": str(target)}
    if target_members is not None:
        out["target.members"] = str(target_members)
    return out


def audit(config: str | Path | Config | Mapping | None = None, *, run_dir: str | Path | None = None,
          target: str | Path | TrainResult | None = None, target_members: str | Path | None = None,
          data: str | None = None, model: str | None = None, shadows: int | None = None,
          attacks: Iterable[str] | None = None, overrides: Mapping[str, Any] | None = None,
          epsilon: float | None = None, epochs: float | None = None, batch_size: int | None = None,
          max_examples: int | None = None, seed: int | None = None, rerun: str | None = None,
          progress: bool = False, force_run_dir: bool = False) -> Report | None:
    """Train (or load) the target and K shadows, attack the target, report: ``dpaudit audit`` as a function.

    ``target``: ``None`` (train the target here), a path (``--target``: checkpoint, HF directory, scores
    file; with ``target_members``), or a :class:`TrainResult` (its checkpoint and split; its config is
    the default ``config``). ``None`` on torchrun ranks other than 0.
    """
    from dpaudit.pipeline import run_audit

    if config is None and isinstance(target, TrainResult):
        config = target.config
    with tempfile.TemporaryDirectory(prefix="dpaudit-audit-") as tmp:
        extra = {**dict(overrides or {}), **_target_overrides(target, target_members, Path(tmp))}
        cfg = resolve_config(config, extra, data=data, model=model, shadows=shadows, attacks=attacks,
                             epsilon=epsilon, epochs=epochs, batch_size=batch_size, max_examples=max_examples,
                             seed=seed)
        where = Path(run_dir) if run_dir is not None else Path(tmp) / "audit"
        outcome = run_audit(cfg, where, progress=progress, force_run_dir=force_run_dir, rerun=rerun)
        if outcome is None:
            return None
        return Report(audit=outcome.report, run_dir=outcome.run_dir if run_dir is not None else None)
