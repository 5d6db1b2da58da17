"""``lakedet errors CONFIG CHECKPOINT PATH --branch NAME``: predictions and their TP/FP/FN matching on a new branch."""

from __future__ import annotations

import argparse

from .options import add_class_agnostic, class_list, standalone_parser
from .predict import add_common

HELP = ("write a model's predictions and their TP/FP/FN matching (COCO's rule) to a new branch; report per class "
        "and size (AP, mean average recall, the best score threshold); plot PR curves, the threshold sweep and a "
        "confusion matrix")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common(parser, "work_dirs/errors", "where errors.json, pr_curves.png, threshold_sweep.png, "
                                           "confusion_matrix.png and lineage.json are written")
    parser.add_argument("--iou-thr", type=float, default=0.5, help="a match needs IoU >= this")
    parser.add_argument("--max-dets", type=int, default=100, help="predictions per class and image that count (COCO's maxDets)")
    parser.add_argument("--confusion-thr", type=float, default=0.3,
                        help="score threshold of the predictions counted in the confusion matrix")
    add_class_agnostic(parser)
    parser.add_argument("--classes", type=class_list, metavar="A,B", default=None,
                        help="evaluate only these classes: the per-row counts and F1 on the branch and the report "
                             "count only their boxes (the others are 'ignore')")


def get_args_parser() -> argparse.ArgumentParser:
    return standalone_parser("errors", HELP, add_arguments)


def main(args) -> int:
    from ..evaluation.tables import format_table
    from ..tools.error_analysis import class_table, errors_to_branch, size_table, sweep_table
    from ..tools.progress import print_progress

    report = errors_to_branch(args.config, args.checkpoint, args.path, args.branch, iou_thr=args.iou_thr,
                              score_thr=args.score_thr, max_dets=args.max_dets, confusion_thr=args.confusion_thr,
                              cfg_options=args.cfg_options, batch_size=args.batch_size, view=args.view,
                              query=args.query, work_dir=args.work_dir, progress=print_progress,
                              num_workers=args.num_workers, device=args.device, tta=args.tta,
                              classwise=not args.class_agnostic, classes=args.classes)
    evaluation = report.evaluation
    print("per class:")
    print(format_table(*class_table(evaluation)))
    print("per COCO size (all classes above):")
    print(format_table(*size_table(evaluation)))
    print("score threshold of the best F1:")
    print(format_table(*sweep_table(evaluation)))
    tp, fp, fn = evaluation.totals
    print(f"matched {report.rows} rows of {report.path}@{report.source_commit} at IoU >= {args.iou_thr}: "
          f"TP {tp}, FP {fp}, FN {fn}; written to branch {report.branch!r} as commit {report.commit}")
    print("wrote " + ", ".join(report.files.values()))
    return 0
