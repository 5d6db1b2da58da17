"""``lakedet show PATH``: rows with their ground truth (and predictions, or TP/FP/FN) drawn into a PNG grid."""

from __future__ import annotations

import argparse

from .options import add_creds, add_view_or_query, source_of, standalone_parser

HELP = "draw rows with ground truth (and predictions) into a PNG grid"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", help="the Deep Lake dataset")
    parser.add_argument("--rows", default="0:16", help="START:STOP, N or N,M,...")
    parser.add_argument("--out", default="grid.png", help="the PNG file to write")
    parser.add_argument("--columns", type=int, default=4, help="images per row of the grid")
    parser.add_argument("--errors", action="store_true",
                        help="draw `lakedet errors` results: TP green, FP red, FN blue, with class and score")
    parser.add_argument("--issues", action="store_true",
                        help="draw `lakedet issues` results: labels scored >= --score-thr with their kind and score, "
                             "and likely missing labels")
    parser.add_argument("--score-thr", type=float, default=0.3, help="hide predictions (with --issues: issue scores) below this")
    version = parser.add_mutually_exclusive_group()
    version.add_argument("--commit", help="the rows as of this commit")
    version.add_argument("--branch", help="the rows as of this branch's latest commit (e.g. `lakedet errors`' branch)")
    add_view_or_query(parser)
    add_creds(parser, what="a cloud PATH")


def get_args_parser() -> argparse.ArgumentParser:
    return standalone_parser("show", HELP, add_arguments)


def main(args) -> int:
    import cv2

    from ..tools.show import render_grid

    grid = render_grid(source_of(args), args.rows,
                       columns=args.columns, score_thr=args.score_thr, errors=args.errors, branch=args.branch,
                       issues=args.issues)
    cv2.imwrite(args.out, grid[:, :, ::-1])
    print(f"wrote {args.out} ({grid.shape[1]}x{grid.shape[0]} px)")
    return 0
