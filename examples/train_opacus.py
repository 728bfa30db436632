"""Train a target "elsewhere" with Opacus: the seed's recipe, every weight frozen except the biases and the
classifier head, DP-SGD at a target ε.

The population is dpaudit's own: ``dpaudit.data.load_dataset(path="embedded", max_examples=N, seed=S)``
(N = ``--max-examples``, S = ``--population-seed``, which must equal the audit's ``train.seed``). The model
trains on a random half (drawn with ``--seed``) with Opacus' ``PrivacyEngine.make_private_with_epsilon``:
Poisson sampling at Opacus' rate q = 1 / (batches per epoch) = 1 / ceil(members / batch size), per-example
clipping to C, Gaussian noise σ·C, σ calibrated so that the accountant's ε after ``--epochs`` is at most
``--epsilon`` at δ. It writes:

* ``OUT/model/``: the ``AutoModelForSequenceClassification`` and its tokenizer (save_pretrained);
* ``OUT/members.json``: ``{"train": [ids], "population": {...}, "claim": {...}}`` — the training ids as indices
  into that population, and the DP claim;
* and prints σ, q, steps, δ and ε, so that the user can state the claim to ``dpaudit audit``.

The noise comes from torch's default generator (Opacus ``secure_mode=False``): fine for an audit exercise,
not for a release (Opacus' ``secure_mode=True`` needs torchcsprng). About two minutes at N = 1000 on 2 cores.

    python examples/train_opacus.py --max-examples 1000 --epsilon 8 --out runs/opacus-target
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings

from _population import add_population_args, embedded_classifier, training_rows, write_target


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_population_args(parser)
    parser.add_argument("--epochs", type=int, default=3, help="epochs (default 3); steps = epochs / q")
    parser.add_argument("--batch-size", type=int, default=64, help="expected Poisson batch (default 64)")
    parser.add_argument("--lr", type=float, default=5e-3, help="Adam learning rate (default 5e-3)")
    parser.add_argument("--epsilon", type=float, default=8.0, help="target ε (default 8)")
    parser.add_argument("--delta", type=float, default=None, help="δ (default 1/(10·members))")
    parser.add_argument("--max-grad-norm", type=float, default=1.0, help="clipping threshold C (default 1)")
    parser.add_argument("--accountant", default="prv", choices=("prv", "rdp"), help="Opacus accountant (default prv)")
    return parser.parse_args(argv)


def freeze_all_but_biases_and_head(model) -> int:
    """DP-BiTFiT's trainable set in a plain model: every ``*.bias`` and the classifier; returns their count."""
    n = 0
    for name, p in model.named_parameters():
        p.requires_grad = name.endswith(".bias") or name.startswith("classifier.")
        n += p.numel() if p.requires_grad else 0
    return n


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from opacus import PrivacyEngine

    torch.manual_seed(args.seed)
    ds, members = training_rows(args)
    delta = args.delta if args.delta is not None else 1.0 / (10 * len(members))
    model, tokenizer = embedded_classifier(ds, args.model)
    model.train()  # from_pretrained returns eval mode; dropout off below, as dpaudit trains
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    n_trainable = freeze_all_but_biases_and_head(model)
    enc = tokenizer([ds.texts[i] for i in members], truncation=True, max_length=args.max_length,
                    padding="max_length", return_tensors="pt")
    data = torch.utils.data.TensorDataset(enc["input_ids"], enc["attention_mask"],
                                          torch.as_tensor(ds.labels[members], dtype=torch.long))
    loader = torch.utils.data.DataLoader(data, batch_size=args.batch_size)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=args.lr)
    engine = PrivacyEngine(accountant=args.accountant)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # opacus' notes on secure_mode and on full backward hooks
        model, optimizer, loader = engine.make_private_with_epsilon(
            module=model, optimizer=optimizer, data_loader=loader, target_epsilon=args.epsilon,
            target_delta=delta, epochs=args.epochs, max_grad_norm=args.max_grad_norm, poisson_sampling=True)
        steps = 0
        for _ in range(args.epochs):
            for ids, mask, labels in loader:
                optimizer.zero_grad(set_to_none=True)
                if len(ids):
                    logits = model(input_ids=ids, attention_mask=mask).logits
                    torch.nn.functional.cross_entropy(logits, labels).backward()
                else:  # an empty Poisson batch: the step is noise alone
                    for p in optimizer.params:
                        p.grad_sample = torch.zeros((0, *p.shape), dtype=p.dtype)
                optimizer.step()
                steps += 1
        epsilon = engine.get_epsilon(delta)
    sigma, q = optimizer.noise_multiplier, loader.sample_rate
    plain = model._module
    plain.eval()
    claim = {"noise_multiplier": sigma, "sample_rate": q, "steps": steps, "delta": delta, "epsilon": epsilon,
             "accountant": args.accountant, "max_grad_norm": args.max_grad_norm}
    write_target(args, ds, members, plain, tokenizer, trainer="opacus", trainable="biases + classifier", claim=claim)
    print(f"trained {n_trainable:,} bias/head parameters on {len(members)} of {len(ds)} examples with Opacus")
    print(f"claim: sigma={sigma:.6g} q={q:.6g} steps={steps} delta={delta:.6g} epsilon={epsilon:.4f} "
          f"({args.accountant}, C={args.max_grad_norm})")
    print(f"model: {args.out / 'model'}  members: {args.out / 'members.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
