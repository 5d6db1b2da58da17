"""``lakedet report PATH -o OUT/``: one offline HTML page about the data, an evaluation and a comparison."""

from __future__ import annotations

import argparse

from .options import add_creds, add_view_or_query, source_of, standalone_parser

HELP = "write an offline HTML report (OUT/index.html) of the data, an errors branch and a comparison"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..tools.report import GALLERY, SAMPLES

    parser.add_argument("path", help="the Deep Lake dataset")
    parser.add_argument("-o", "--out", required=True, help="the folder to write (index.html and assets/)")
    parser.add_argument("--errors", metavar="BRANCH", help="add the evaluation a `lakedet errors` branch holds")
    parser.add_argument("--compare", nargs=2, metavar=("A", "B"),
                        help="add the comparison of two refs (BRANCH or BRANCH@COMMIT with predictions), as "
                             "`lakedet compare A B`")
    parser.add_argument("--samples", type=int, default=SAMPLES, help="rows drawn in the data section's grid")
    parser.add_argument("--gallery", type=int, default=GALLERY, help="rows drawn per gallery of worst rows")
    parser.add_argument("--score-thr", type=float, default=0.3,
                        help="predictions drawn in the galleries (the page's slider covers every score)")
    parser.add_argument("--commit", help="the data section: the rows as of this commit")
    add_view_or_query(parser, "the data section: the rows")
    add_creds(parser, what="a cloud PATH")


def get_args_parser() -> argparse.ArgumentParser:
    return standalone_parser("report", HELP, add_arguments)


def main(args) -> int:
    from ..tools.progress import ProgressBar
    from ..tools.report import write_report

    written = write_report(source_of(args), args.out, errors=args.errors,
                           compare=tuple(args.compare) if args.compare else None, samples=args.samples,
                           gallery=args.gallery, score_thr=args.score_thr, progress=ProgressBar("rows"))
    print(f"wrote {written.index} ({', '.join(written.sections)}; {written.images} images, "
          f"{written.size_bytes / 1e6:.1f} MB, {written.seconds:.1f} s): open it in a browser")
    return 0
