"""``dpaudit export``: write a trained run as a plain Hugging Face sequence classifier with a privacy model card.

``dpaudit export RUN_DIR --out DIR`` folds the run's trained biases into the backbone and its head into the
classifier, checks that the result's logits equal dpaudit's (≤ 1e-5 on probe inputs), and writes the model,
the tokenizer, ``README.md`` (ε, δ, σ, q, steps, C, accountant, neighbouring relation, and the headline of
``--audit`` or ``RUN_DIR/audit.json`` when present) and ``dpaudit-privacy.json``. The card holds nothing
private: no dataset hash and no training-set size. Load it with
``AutoModelForSequenceClassification.from_pretrained(DIR)`` — no dpaudit, no custom code. A head that
transformers cannot express (dpaudit's default mean pooling) is refused: train with
``--set model.pooling=pooler`` to export (see ``dpaudit.export``).
"""

from __future__ import annotations

import argparse

DESCRIPTION = "write a trained run as a plain Hugging Face classifier with a privacy model card"


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("export", help=DESCRIPTION, description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a finished `dpaudit train` run directory")
    parser.add_argument("--out", required=True, help="new directory to write (must not exist)")
    parser.add_argument("--audit", help="audit.json of this model for the card (default: RUN_DIR/audit.json if present)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dpaudit.export import export_run
    from dpaudit.model_card import loader_name

    out = export_run(args.run_dir, args.out, audit=args.audit)
    image = (out / "preprocessor_config.json").is_file() or "image-classification" in (out / "README.md").read_text(
        encoding="utf-8")
    print(f"exported to {out}: load with {loader_name('image' if image else 'text')}.from_pretrained('{out}')")
    return 0
