"""``lakedet demo``: build the embedded synthetic datasets once, train RetinaNet-R18 on them, evaluate."""

from __future__ import annotations

import argparse

from .options import add_cfg_options, standalone_parser

HELP = "train and evaluate a detector on the embedded synthetic dataset"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--work-dir", default="work_dirs/demo", help="where checkpoints, logs and lineage go")
    parser.add_argument("--data-dir", default=None, help="where the demo datasets are built (default: ~/.cache/lakedet/demo)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs to train (default: the config's, 12)")
    parser.add_argument("--train-size", type=int, default=400, help="rows of the training dataset")
    parser.add_argument("--val-size", type=int, default=100, help="rows of the validation dataset")
    parser.add_argument("--num-workers", type=int, default=None, help="DataLoader workers (default: the config's)")
    add_cfg_options(parser)
    parser.add_argument("--examples-data", metavar="DIR",
                        help="only write the data of the example configs (configs/*.py): DIR/shapes-train (64 rows) "
                             "and DIR/shapes-val (16 rows), columns images, boxes, categories, masks; then stop")


def get_args_parser() -> argparse.ArgumentParser:
    return standalone_parser("demo", HELP, add_arguments)


def main(args) -> int:
    from ..tools.demo import run_demo, write_example_datasets

    if args.examples_data:
        write_example_datasets(args.examples_data)
        return 0
    run_demo(work_dir=args.work_dir, data_dir=args.data_dir, epochs=args.epochs, train_size=args.train_size,
             val_size=args.val_size, num_workers=args.num_workers, cfg_options=args.cfg_options)
    return 0
