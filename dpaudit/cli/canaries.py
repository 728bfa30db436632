"""``dpaudit canaries make``: canaries for a model trained by any tool, with dpaudit's own fair coin per canary.

Writes into ``--out DIR`` the training file (your data, same format and columns, with the included canaries
mixed in; 0600: it shows which canaries are in it), ``canaries.json`` (all m canaries, public) and
``inclusion.json`` (the secret coins, 0600). Train on DIR's training file with any tool, then
``dpaudit audit --target MODEL --canaries DIR`` gives a one-run ε lower bound (arXiv 2305.08846 v1,
Theorem 3) for that model: a bound, not an estimate, because the coins were dpaudit's. See docs/canaries.md.
"""

from __future__ import annotations

import argparse

DESCRIPTION = "make canaries for a model trained anywhere: mix them into your training file, keep the coins"


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("canaries", help=DESCRIPTION, description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    make = actions.add_parser("make", help="write DIR: training file with canaries, canaries.json, inclusion.json",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    make.add_argument("--data", required=True, help="your training data: CSV/TSV/JSONL/Parquet file or a saved "
                      "Hugging Face datasets directory")
    make.add_argument("--count", type=int, required=True, help="m canaries (each IN by a fair coin)")
    make.add_argument("--out", required=True, help="new directory to write (refused if it holds files)")
    make.add_argument("--kind", default="mislabeled", help="mislabeled (default: a training row with another "
                      "class) or unique (a made-up text with a random class)")
    make.add_argument("--text-column", default="text", help="the text column of --data (default text)")
    make.add_argument("--label-column", default="label", help="the label column of --data (default label)")
    make.add_argument("--text-pair-column", help="second text column of text pairs")
    make.add_argument("--split", default="train", help="split of a saved DatasetDict")
    make.add_argument("--seed", type=int, default=0, help="which rows/texts become canaries (public; the coins "
                      "are never seeded)")
    make.set_defaults(func=run)
    parser.set_defaults(func=lambda args: _usage(parser))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def run(args: argparse.Namespace) -> int:
    from dpaudit.canary_table import make_canary_dir

    made = make_canary_dir(args.data, args.out, args.count, args.kind, text_column=args.text_column,
                           label_column=args.label_column, text_pair_column=args.text_pair_column,
                           split=args.split, seed=args.seed)
    print(f"{made.count} {args.kind} canaries made; {made.n_included} mixed into {made.train_path} "
          f"({made.n_natural} natural rows + {made.n_included} canaries)")
    print(f"train on {made.train_path} with any tool, then: dpaudit audit --target MODEL --canaries {args.out}")
    print(f"keep {made.inclusion_path} secret (0600); canaries.json is public")
    return 0
