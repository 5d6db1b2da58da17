"""``lakedet predict CONFIG CHECKPOINT PATH --branch NAME``: a model's predictions as columns of a new branch."""

from __future__ import annotations

import argparse

from .options import add_cfg_options, standalone_parser

HELP = "write a model's predictions to a new branch of the dataset"


def add_common(parser: argparse.ArgumentParser, work_dir: str, work_dir_help: str = "where lineage.json is written") -> None:
    """The options ``predict`` and ``errors`` share."""
    parser.add_argument("config", help="the config (its test pipeline and model)")
    parser.add_argument("checkpoint", help="the .pth file")
    parser.add_argument("path", help="the Deep Lake dataset to predict (Deep Lake 4; its current branch is never written)")
    parser.add_argument("--branch", required=True, help="the new branch to write the results on")
    parser.add_argument("--work-dir", default=work_dir, help=work_dir_help)
    parser.add_argument("--score-thr", type=float, default=0.05, help="keep predictions scored at least this")
    parser.add_argument("--batch-size", type=int, default=4, help="rows per batch")
    parser.add_argument("--num-workers", type=int, default=2, help="DataLoader workers")
    parser.add_argument("--device", default=None, help="cuda, cuda:1, cpu ... (default: cuda when present)")
    parser.add_argument("--tta", action="store_true", help="test-time augmentation: the config's tta_model "
                                                           "and tta_pipeline, as tools/test.py --tta")
    add_cfg_options(parser)
    selected = parser.add_mutually_exclusive_group()
    selected.add_argument("--view", help="only the rows of this saved view")
    selected.add_argument("--query", help="only the rows this TQL query selects (SELECT * WHERE ...)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common(parser, "work_dirs/predict")


def get_args_parser() -> argparse.ArgumentParser:
    return standalone_parser("predict", HELP, add_arguments)


def main(args) -> int:
    from ..tools.predict import predict_to_branch
    from ..tools.progress import print_progress

    report = predict_to_branch(args.config, args.checkpoint, args.path, args.branch, cfg_options=args.cfg_options,
                               score_thr=args.score_thr, batch_size=args.batch_size, view=args.view,
                               query=args.query, work_dir=args.work_dir, progress=print_progress,
                               num_workers=args.num_workers, device=args.device, tta=args.tta)
    print(f"predicted {report.rows} rows ({report.boxes} boxes) of {report.path}@{report.source_commit}; "
          f"written to branch {report.branch!r} as commit {report.commit}")
    return 0
