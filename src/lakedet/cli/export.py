"""``lakedet export coco PATH OUT``: a Deep Lake dataset (or a commit, view or query of it) as COCO files."""

from __future__ import annotations

import argparse

from .options import add_creds, add_subcommand, source_of, standalone_parser

HELP = "write a Deep Lake dataset (or a commit / view / query) as files"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    formats = parser.add_subparsers(dest="format", required=True)
    coco = add_subcommand(formats, "coco", "OUT/annotations.json (COCO) + OUT/images/")
    coco.add_argument("path", help="the Deep Lake dataset")
    coco.add_argument("out", help="the folder to write")
    coco.add_argument("--commit", help="the rows as of this commit")
    selected = coco.add_mutually_exclusive_group()
    selected.add_argument("--view", help="only the rows of this saved view")
    selected.add_argument("--query", help="only the rows this TQL query selects")
    coco.add_argument("--overwrite", action="store_true", help="replace OUT/annotations.json")
    add_creds(coco, what="a cloud PATH")


def get_args_parser() -> argparse.ArgumentParser:
    return standalone_parser("export", HELP, add_arguments)


def main(args) -> int:
    from ..tools.export import export_coco
    from ..tools.progress import ProgressBar

    report = export_coco(source_of(args), args.out,
                         overwrite=args.overwrite, progress=ProgressBar())
    print(f"exported {report.images} images, {report.annotations} annotations to {report.out}/annotations.json "
          f"and {report.out}/images/")
    return 0
