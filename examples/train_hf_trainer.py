"""Train a target "elsewhere": a non-private full fine-tune with the Hugging Face Trainer.

The population is dpaudit's own: ``dpaudit.data.load_dataset(path="embedded", max_examples=N, seed=S)``
(N = ``--max-examples``, S = ``--population-seed``, which must equal the audit's ``train.seed``). The model
trains on a random half of it (drawn with ``--seed``) and writes:

* ``OUT/model/``: the fine-tuned ``AutoModelForSequenceClassification`` and its tokenizer (save_pretrained);
* ``OUT/members.json``: ``{"train": [ids], "population": {...}}`` — the training-example ids as indices into
  that population, which ``dpaudit audit`` reads as the target's members.

Every weight of the embedded encoder (all-MiniLM-L6-v2) trains, with no clipping and no noise: the leakiest
kind of target, the one a full-fine-tuning shadow recipe imitates. About two minutes at N = 1000 on 2 cores.

    python examples/train_hf_trainer.py --max-examples 1000 --epochs 3 --out runs/hf-target

With ``--data DIR/train.csv`` it trains on every row of that file instead, as any user script would: the
canary round trip of docs/canaries.md (``dpaudit canaries make`` → this → ``dpaudit audit --canaries DIR``;
examples/canaries_hf_trainer.sh).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

from _population import add_population_args, embedded_classifier, training_rows, write_target


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_population_args(parser)
    parser.add_argument("--epochs", type=float, default=3.0, help="training epochs (default 3)")
    parser.add_argument("--batch-size", type=int, default=16, help="examples per step (default 16)")
    parser.add_argument("--lr", type=float, default=5e-5, help="learning rate (default 5e-5)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments

    ds, members = training_rows(args)
    model, tokenizer = embedded_classifier(ds, args.model)
    enc = tokenizer([ds.texts[i] for i in members], truncation=True, max_length=args.max_length)
    train = [{"input_ids": enc["input_ids"][j], "attention_mask": enc["attention_mask"][j],
              "labels": int(ds.labels[i])} for j, i in enumerate(members)]
    scratch = tempfile.TemporaryDirectory()  # the Trainer's output_dir; nothing is checkpointed there
    targs = TrainingArguments(output_dir=scratch.name, num_train_epochs=args.epochs,
                              per_device_train_batch_size=args.batch_size, learning_rate=args.lr, seed=args.seed,
                              save_strategy="no", report_to=[], logging_strategy="no", disable_tqdm=True,
                              dataloader_num_workers=0, use_cpu=not torch.cuda.is_available())
    trainer = Trainer(model=model, args=targs, train_dataset=train, data_collator=DataCollatorWithPadding(tokenizer))
    result = trainer.train()
    scratch.cleanup()
    # save_pretrained writes weights + config only (no pickled training_args)
    write_target(args, ds, members, trainer.model, tokenizer, trainer="transformers.Trainer", non_private=True)
    print(f"trained {len(members)} of {len(ds)} examples for {args.epochs:g} epochs "
          f"(training loss {result.training_loss:.4f}); no DP claim (non-private)")
    print(f"model: {args.out / 'model'}  members: {args.out / 'members.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
