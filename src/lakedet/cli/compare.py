"""``lakedet compare PATH A B``: two evaluations side by side, per class, per size and per box."""

from __future__ import annotations

import argparse

from .options import add_cfg_options, add_class_agnostic, standalone_parser

HELP = ("compare two evaluations (two `lakedet errors` branches, or models run on the fly, on the same or "
        "different commits): per-class and per-size deltas with their bootstrap noise, boxes found and lost, "
        "the label diff")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", help="the Deep Lake dataset (Deep Lake 4)")
    parser.add_argument("a", help="side A: BRANCH or BRANCH@COMMIT holding `lakedet errors`/`predict` columns "
                                  "(or the data to run --model-a on)")
    parser.add_argument("b", help="side B, as A; the comparison branch is made from it")
    parser.add_argument("--branch", help="write the per-box and per-row comparison columns on this new branch "
                                         "(made from B)")
    parser.add_argument("--model-a", nargs=2, metavar=("CONFIG", "CHECKPOINT"),
                        help="run this model on A's rows instead of reading A's stored predictions")
    parser.add_argument("--model-b", nargs=2, metavar=("CONFIG", "CHECKPOINT"), help="the same for B")
    parser.add_argument("--id-column", help="a column identifying each row across commits (default: the row "
                                            "index, checked by comparing each row's image)")
    parser.add_argument("--iou-thr", type=float, default=0.5, help="a match needs IoU >= this (TP/FP/FN, recall, "
                                                                    "precision, the per-box changes)")
    parser.add_argument("--max-dets", type=int, default=100, help="predictions per class and image that count")
    add_class_agnostic(parser)
    parser.add_argument("--bootstrap", type=int, default=200,
                        help="paired bootstrap resamples of the images for the 95%% intervals of the deltas (0: none)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap")
    parser.add_argument("--moved-iou", type=float, default=0.9,
                        help="label diff: a box paired across commits with IoU below this was moved")
    parser.add_argument("--pair-iou", type=float, default=0.1,
                        help="label diff: boxes of two commits with IoU >= this can be the same box")
    parser.add_argument("--work-dir", default="work_dirs/compare", help="where compare.json and lineage.json go")
    parser.add_argument("--score-thr", type=float, default=0.05, help="models run on the fly: keep predictions "
                                                                      "scored at least this")
    parser.add_argument("--batch-size", type=int, default=4, help="models run on the fly: rows per batch")
    parser.add_argument("--num-workers", type=int, default=2, help="models run on the fly: DataLoader workers")
    parser.add_argument("--device", default=None, help="models run on the fly: cuda, cpu ... (default: cuda when present)")
    add_cfg_options(parser)


def get_args_parser() -> argparse.ArgumentParser:
    return standalone_parser("compare", HELP, add_arguments)


def main(args) -> int:
    from ..evaluation.tables import format_table
    from ..tools.compare import compare_to_branch, diff_table, size_table, summary_table
    from ..tools.progress import print_progress

    predict_options = dict(score_thr=args.score_thr, batch_size=args.batch_size, num_workers=args.num_workers,
                           device=args.device, cfg_options=args.cfg_options)
    report = compare_to_branch(args.path, args.a, args.b, args.branch, model_a=args.model_a, model_b=args.model_b,
                               work_dir=args.work_dir, progress=print_progress, predict_options=predict_options,
                               iou_thr=args.iou_thr, max_dets=args.max_dets, classwise=not args.class_agnostic,
                               id_column=args.id_column, bootstrap=args.bootstrap, seed=args.seed,
                               moved_iou=args.moved_iou, pair_iou=args.pair_iou)
    c = report.comparison
    noise = (f"*: the delta's 95% interval over {args.bootstrap} paired bootstrap resamples of the images excludes 0"
             if args.bootstrap else "no bootstrap (--bootstrap 0): no significance marks")
    print(f"A = {c.a.ref.name}@{c.a.ref.commit} ({c.a.source['kind']}), B = {c.b.ref.name}@{c.b.ref.commit} "
          f"({c.b.source['kind']}), {len(c.pairs)} rows; {noise}")
    print(format_table(*summary_table(c)))
    print(format_table(*size_table(c)))
    if any(v for d in c.label_diff.values() for v in d.values()):
        print("labels differ between A and B:")
        print(format_table(*diff_table(c)))
    if report.branch:
        print(f"per-box changes written to branch {report.branch!r} as commit {report.commit}")
    print("wrote " + ", ".join(report.files.values()))
    return 0
