"""Export a ``dpaudit train`` run as a plain Hugging Face sequence classifier (``dpaudit export``,
:func:`export_run`; docs/library.md).

The run's checkpoint holds the trained biases (one table per backbone module) and the head. The export loads
the run's backbone as ``AutoModelForSequenceClassification``, writes every trained bias into its module
(``base_model.<module>.bias``) and the head into the classifier, and saves the model, the backbone's tokenizer
and a model card (:mod:`dpaudit.model_card`) into a new directory. ``AutoModelForSequenceClassification
.from_pretrained(DIR)`` then loads it without dpaudit and without custom code.

Exact or refused: before anything is written, the exported model's logits are compared with dpaudit's own
classifier on probe inputs (padded, of several lengths) and the export is refused if they differ by more than
1e-5. dpaudit's default head mean-pools the last hidden states over the real tokens; no built-in transformers
sequence classifier of a BERT-style encoder computes that, so such a run is refused (a custom-code model
would be needed, and dpaudit neither writes nor runs code in a model directory). A run trained with
``model.pooling = "pooler"`` — the head on the backbone's pooler output, as ``BertForSequenceClassification``
computes it — exports exactly. So do only backbones listed in :data:`EXPORT_HEADS`, a single model
(``num_models = 1``) and no DP-BiTFiT-Add biases (``model.add_biases``: the base architecture has no slot for them).
An image classifier exports as ``AutoModelForImageClassification`` (:mod:`dpaudit.export_vision`).
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

from dpaudit.errors import CheckpointError, ConfigError

#: ``model_type`` → attribute of the ``*ForSequenceClassification`` whose ``nn.Linear`` reads the pooler output.
EXPORT_HEADS = {"bert": "classifier"}
#: Largest |logit difference| between dpaudit's classifier and the exported model on the probe inputs.
LOGIT_TOLERANCE = 1e-5
PROBES = ("a fine film", "the plot was dull and far too long for what it had to say", "bad", "warm, bright and funny")


def _read_run(run_dir: Path) -> tuple[dict, dict, dict, dict]:
    """``(tables, meta, metrics, config)`` of a finished ``dpaudit train`` run (files checked against the record)."""
    from dpaudit.rundir import RunDir
    from dpaudit.trainers.checkpoint import MODELS_FILE, read_models

    run = RunDir.open_existing(run_dir)
    found = {name: run.verified(name) for name in (MODELS_FILE, "metrics.json", "config.json")}
    missing = [n for n, p in found.items() if p is None]
    if missing:
        raise CheckpointError(f"run directory '{run_dir}' has no {', '.join(missing)}; export a finished "
                              f"`dpaudit train` run.")
    tables, meta = read_models(found[MODELS_FILE])
    metrics = json.loads(found["metrics.json"].read_text(encoding="utf-8"))
    config = json.loads(found["config.json"].read_text(encoding="utf-8"))
    return tables, meta, metrics, config


def _check_exportable(meta: dict, run_dir: Path) -> None:
    if meta.get("num_models", 1) != 1:
        raise CheckpointError(f"'{run_dir}' holds {meta.get('num_models')} models; export a single-model run.")
    if meta.get("add_biases"):
        raise ConfigError(f"'{run_dir}' trained DP-BiTFiT-Add biases (model.add_biases), which the base architecture "
                          f"has no parameter for; it cannot be exported as a plain Hugging Face model.")
    if meta.get("modality") == "image":
        from dpaudit.export_vision import check_vision_exportable

        return check_vision_exportable(meta, run_dir)
    if meta.get("pooling", "mean") != "pooler":
        raise ConfigError(
            f"'{run_dir}' trained dpaudit's mean-pooling head: no built-in transformers sequence classifier "
            f"mean-pools a BERT-style encoder, and dpaudit ships no custom code — retrain with --set "
            f"model.pooling=pooler (the head on the pooler output, as BertForSequenceClassification) to export.")


def _model_dir(config: dict, meta: dict) -> Path:
    from dpaudit.models import backbone_sha256, resolve_model_dir

    model_dir, _ = resolve_model_dir((config.get("model") or {}).get("path"))
    if backbone_sha256(model_dir) != meta.get("backbone_sha256"):
        raise CheckpointError(f"the backbone at '{model_dir}' is not the one the run trained on (hash mismatch); "
                              f"restore it ({str(meta.get('backbone_source'))[:200]}).")
    return model_dir


def copy_target_tables(hf, head, tables: dict) -> None:
    """Write the target's row (row 0) of every bank table into a plain HF model: ``head.weight``/``head.bias``
    into ``head`` (the task classifier), each bias slot into ``hf.base_model``'s module of that name."""
    import torch

    with torch.no_grad():
        for name, table in tables.items():
            if name in ("head.weight", "head.bias"):
                head.get_parameter(name.split(".")[1]).copy_(table[0])
            else:
                hf.base_model.get_submodule(name).bias.copy_(table[0])


def build_exported(model_dir: Path, tables: dict, meta: dict):
    """``(hf_model, tokenizer)``: the backbone as a sequence classifier with the trained biases and head."""
    from dpaudit.models import quiet_hf_loading

    labels = list(meta["label_names"])
    with quiet_hf_loading(model_dir, "the backbone", "with its tokenizer"):
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True, trust_remote_code=False)
        hf = AutoModelForSequenceClassification.from_pretrained(
            model_dir, local_files_only=True, trust_remote_code=False, num_labels=len(labels),
            id2label=dict(enumerate(labels)), label2id={name: i for i, name in enumerate(labels)})
    head_attr = EXPORT_HEADS.get(hf.config.model_type)
    if head_attr is None:
        raise ConfigError(f"export supports backbones of type {sorted(EXPORT_HEADS)}, not "
                          f"'{hf.config.model_type}'; its classifier does not read the pooler output alone.")
    copy_target_tables(hf, hf.get_submodule(head_attr), tables)
    return hf.eval(), tokenizer


def _dpaudit_logits(model_dir: Path, tables: dict, meta: dict, ids, mask):
    """dpaudit's own classifier (fresh backbone + the run's tables) on ``ids``/``mask``: logits (B, C)."""
    import torch
    from transformers import AutoModel

    from dpaudit.models import quiet_hf_loading
    from dpaudit.trainers.classifier import BankedClassifier

    with quiet_hf_loading(model_dir, "the backbone"):
        backbone = AutoModel.from_pretrained(model_dir, local_files_only=True, trust_remote_code=False)
    clf = BankedClassifier.from_backbone(backbone, num_models=1, num_labels=len(meta["label_names"]),
                                         exclude_modules=meta.get("exclude_modules", ("pooler",)),
                                         pooling=meta.get("pooling", "mean"))
    clf.load_trainable_state(tables)
    clf.eval()
    with torch.no_grad():
        logits = clf(ids, mask, torch.zeros(len(ids), dtype=torch.long))
    clf.bank.release()
    return logits


def check_logits(hf, tokenizer, model_dir: Path, tables: dict, meta: dict) -> float:
    """Largest |logit difference| on :data:`PROBES`; raises :class:`CheckpointError` above the tolerance."""
    import torch

    enc = tokenizer(list(PROBES), padding=True, truncation=True, max_length=int(meta.get("max_length", 64)),
                    return_tensors="pt")
    with torch.no_grad():
        ours = _dpaudit_logits(model_dir, tables, meta, enc["input_ids"], enc["attention_mask"])
        theirs = hf(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits
    gap = float((ours.double() - theirs.double()).abs().max())
    if not gap <= LOGIT_TOLERANCE:
        raise CheckpointError(f"the exported model's logits differ from dpaudit's by {gap:.3g} (> {LOGIT_TOLERANCE}); "
                              f"nothing was written — report this backbone ({hf.config.model_type}).")
    return gap


def run_claim(meta: dict, metrics: dict, config: dict):
    """The run's :class:`~dpaudit.model_card.ReleaseClaim` from its ``metrics.json`` (what `dpaudit train` accounted)."""
    from dpaudit.model_card import ReleaseClaim

    eps = metrics.get("epsilon")
    privacy = config.get("privacy") or {}
    return ReleaseClaim(epsilon=None if eps is None else float(eps), delta=float(metrics["delta"]),
                 noise_multiplier=float(metrics["noise_multiplier"]), sample_rate=float(metrics["sample_rate"]),
                 steps=int(metrics["steps"]), accountant=str(metrics.get("accountant", "prv")),
                 neighbouring=str(metrics.get("neighbouring") or privacy.get("neighbouring") or "add_remove"),
                 max_grad_norm=(metrics.get("clipping") or {}).get("max_grad_norm"), noise=metrics.get("noise"),
                 non_private=bool(metrics.get("non_private", meta.get("non_private", False))))


def audit_of(path: Path, claim) -> str:
    """The headline of the audit at ``path``, refused unless it audits a model with this claim's σ, q, steps."""
    from dpaudit.model_card import audit_headline
    from dpaudit.report_io import load_report

    report = load_report(path)
    p = report.privacy
    same = (p.steps == claim.steps and math.isclose(p.noise_multiplier, claim.noise_multiplier, rel_tol=1e-9)
            and math.isclose(p.sample_rate, claim.sample_rate, rel_tol=1e-9))
    if not same:
        raise ConfigError(f"'{path}' audits a model with σ={p.noise_multiplier:g}, q={p.sample_rate:g}, "
                          f"steps={p.steps}, not this run's (σ={claim.noise_multiplier:g}, q={claim.sample_rate:g}, "
                          f"steps={claim.steps}); pass the audit of this model, or none.")
    return audit_headline(report)


def export_run(run_dir: str | Path, out: str | Path, *, audit: str | Path | None = None) -> Path:
    """Write ``run_dir``'s model as a plain HF sequence-classification directory ``out`` (which must not exist).

    ``audit``: an ``audit.json`` of this model (default: ``run_dir/audit.json`` if present) whose headline goes
    into the card. Returns ``out``. Raises ConfigError / CheckpointError (one line) and writes nothing then.
    """
    from dpaudit.model_card import render_card

    run_dir, out = Path(run_dir), Path(out)
    if out.exists():
        raise ConfigError(f"'{out}' already exists; export into a new directory.")
    tables, meta, metrics, config = _read_run(run_dir)
    _check_exportable(meta, run_dir)
    model_dir = _model_dir(config, meta)
    claim = run_claim(meta, metrics, config)
    audit_path = Path(audit) if audit is not None else run_dir / "audit.json"
    headline = audit_of(audit_path, claim) if (audit is not None or audit_path.is_file()) else None
    if meta.get("modality") == "image":
        from dpaudit.export_vision import build_exported_vision, check_vision_logits

        hf, tokenizer = build_exported_vision(model_dir, tables, meta)  # the image processor, or None
        check_vision_logits(hf, model_dir, tables, meta, LOGIT_TOLERANCE)
    else:
        hf, tokenizer = build_exported(model_dir, tables, meta)
        check_logits(hf, tokenizer, model_dir, tables, meta)
    card = render_card(claim, base_model=str(meta.get("backbone_source", model_dir.name)), labels=list(meta["label_names"]),
                       source="dpaudit train's accountant for the steps taken (metrics.json of the run; "
                              "docs/library.md, export)", audit=headline, modality=meta.get("modality", "text"))
    _write_dir(out, hf, tokenizer, card, claim.to_dict())
    return out


def _write_dir(out: Path, hf, tokenizer, card: str, claim: dict) -> None:
    """Model, tokenizer (or image processor), README.md and dpaudit-privacy.json into ``out.partial``, then renamed to ``out``."""
    from transformers.utils import logging as hf_logging

    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        hf.save_pretrained(staging)
        if tokenizer is not None:  # the tokenizer, or a vision model's image processor (None: the default)
            tokenizer.save_pretrained(staging)
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    (staging / "README.md").write_text(card, encoding="utf-8")
    (staging / "dpaudit-privacy.json").write_text(json.dumps(claim, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    staging.rename(out)
