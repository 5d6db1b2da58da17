"""``lakedet issues PATH --predictions BRANCH... --branch NAME``: label-issue scores on a new branch."""

from __future__ import annotations

import argparse

from .options import standalone_parser

HELP = ("score how likely each label is a mistake (missing, spurious, class swap, poor localisation) from "
        "out-of-sample predictions; write the scores to a new branch")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", help="the Deep Lake dataset (Deep Lake 4)")
    parser.add_argument("--predictions", nargs="+", required=True, metavar="BRANCH",
                        help="`lakedet predict` / `lakedet errors` branches with the predictions, each covering "
                             "its own rows (one per fold, see docs/label-issues.md)")
    parser.add_argument("--branch", required=True, help="the new branch to write the scores on (made from --labels)")
    parser.add_argument("--labels", help="the branch whose labels are scored (default: the current branch)")
    parser.add_argument("--near-iou", type=float, default=0.1,
                        help="a prediction with at least this IoU is near a box (spurious and localisation scores)")
    parser.add_argument("--top", type=int, default=20, help="print (and put in issues.json) the top this many")
    parser.add_argument("--work-dir", default="work_dirs/issues", help="where issues.json and lineage.json go")


def get_args_parser() -> argparse.ArgumentParser:
    return standalone_parser("issues", HELP, add_arguments)


def main(args) -> int:
    from ..evaluation.tables import format_table
    from ..tools.label_issues import issues_to_branch, top_boxes

    report = issues_to_branch(args.path, args.predictions, args.branch, labels=args.labels, near_iou=args.near_iou,
                              work_dir=args.work_dir, top=args.top)
    print(format_table(*top_boxes(report.scores, report.results, report.classes, args.top)))
    print(f"scored {report.rows} rows; written to branch {report.branch!r} as commit {report.commit}")
    print("wrote " + ", ".join(report.files.values()))
    return 0
