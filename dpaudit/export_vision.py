"""``dpaudit export`` for image classifiers: the run as a plain ``AutoModelForImageClassification``.

dpaudit's vision head reads the feature the family's own image classifier reads (:mod:`trainers.vision`):
``ViTForImageClassification`` / ``DeiTForImageClassification`` put their ``classifier`` on the CLS token of
the last hidden state, ``ConvNextForImageClassification`` on ``pooler_output`` and
``ResNetForImageClassification`` on the flattened ``pooler_output`` (``classifier.1`` after a Flatten). So a
run with ``model.pooling = "mean"`` (the family feature) exports exactly: the trained biases go into
``base_model.<module>.bias``, the head into that classifier. The exported logits are compared with dpaudit's
on probe images (seeded normal pixel values in the preprocessed space) before anything is written, as for
text. The model directory's image processor (if any) is saved beside the model.
"""

from __future__ import annotations

from pathlib import Path

from dpaudit.errors import CheckpointError, ConfigError

#: ``model_type`` → the ``*ForImageClassification`` submodule (an ``nn.Linear``) that reads dpaudit's feature.
EXPORT_VISION_HEADS = {"vit": "classifier", "deit": "classifier", "convnext": "classifier", "resnet": "classifier.1"}
PROBE_IMAGES = 4


def check_vision_exportable(meta: dict, run_dir: Path) -> None:
    if meta.get("pooling", "mean") != "mean":
        raise ConfigError(f"'{run_dir}' trained its image head on the backbone's pooler (model.pooling = 'pooler'), "
                          f"which no built-in image classifier reads; retrain with model.pooling = 'mean' to export.")


def build_exported_vision(model_dir: Path, tables: dict, meta: dict):
    """``(hf_model, image processor or None)`` with the trained biases and head."""
    from dpaudit.export import copy_target_tables
    from dpaudit.models import quiet_hf_loading
    from dpaudit.vision_models import load_vision_backbone

    labels = list(meta["label_names"])
    with quiet_hf_loading(model_dir, "the vision backbone"):
        from transformers import AutoModelForImageClassification

        hf = AutoModelForImageClassification.from_pretrained(
            model_dir, local_files_only=True, trust_remote_code=False, num_labels=len(labels),
            id2label=dict(enumerate(labels)), label2id={name: i for i, name in enumerate(labels)},
            ignore_mismatched_sizes=True)
    head_attr = EXPORT_VISION_HEADS.get(hf.config.model_type)
    if head_attr is None:
        raise ConfigError(f"export supports vision backbones of type {sorted(EXPORT_VISION_HEADS)}, not "
                          f"'{hf.config.model_type}'.")
    copy_target_tables(hf, hf.get_submodule(head_attr), tables)
    _, prep, _ = load_vision_backbone(model_dir)
    return hf.eval(), prep.processor


def check_vision_logits(hf, model_dir: Path, tables: dict, meta: dict, tolerance: float) -> float:
    """Largest |logit difference| between ``hf`` and dpaudit's classifier on probe images; refused above it."""
    import torch

    from dpaudit.trainers.classifier import BankedClassifier
    from dpaudit.vision_models import load_vision_backbone

    backbone, prep, _ = load_vision_backbone(model_dir)
    clf = BankedClassifier.from_backbone(backbone, num_models=1, num_labels=len(meta["label_names"]),
                                         exclude_modules=meta.get("exclude_modules", ("pooler",)),
                                         pooling=meta.get("pooling", "mean"))
    clf.load_trainable_state(tables)
    clf.eval()
    size = prep.image_size or int((meta.get("image_shape") or [32])[0])
    x = torch.randn(PROBE_IMAGES, prep.num_channels, size, size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ours = clf(x, None, torch.zeros(PROBE_IMAGES, dtype=torch.long))
        clf.bank.release()
        theirs = hf(pixel_values=x).logits
    gap = float((ours.double() - theirs.double()).abs().max())
    if not gap <= tolerance:
        raise CheckpointError(f"the exported model's logits differ from dpaudit's by {gap:.3g} (> {tolerance}); "
                              f"nothing was written — report this backbone ({hf.config.model_type}).")
    return gap
