"""``lakedet inspect PATH``: schema, statistics, problems and history of a dataset."""

from __future__ import annotations

import argparse

import sys

from .options import add_creds, source_of, standalone_parser

HELP = "schema, statistics, problems and history of a dataset"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", help="the Deep Lake dataset (Deep Lake 4 or 3)")
    parser.add_argument("--commit", help="the rows as of this commit (or a Deep Lake 3 branch)")
    parser.add_argument("--view", help="the rows of this saved view")
    parser.add_argument("--query", help="a TQL query (on Deep Lake 3 data it may run over --view)")
    parser.add_argument("--no-images", action="store_true", help="do not decode images (faster)")
    parser.add_argument("--strict", action="store_true", help="exit with status 1 when problems exist")
    add_creds(parser, what="a cloud PATH")


def get_args_parser() -> argparse.ArgumentParser:
    return standalone_parser("inspect", HELP, add_arguments)


def main(args) -> int:
    import numpy as np

    from ..evaluation.tables import format_table
    from ..tools.inspection import inspect_source

    spec = source_of(args)
    report = inspect_source(spec, check_images=not args.no_images,
                            progress=lambda done, total: print(f"  inspected {done}/{total} rows", file=sys.stderr))
    fmt = report.box_format
    print(f"dataset: {report.description}  ({report.rows} rows)")
    print(format_table(["column", "type", "used as"],
                       [(name, kind, ", ".join(k for k, v in report.tensors.items() if v == name) or "-")
                        for name, kind in report.columns.items()]))
    print(f"boxes: {fmt.mode.value} {'fractional' if fmt.fractional else 'pixel'}")
    print(format_table(["class", "instances"], [(c, report.class_counts.get(c, 0)) for c in report.classes]))
    per_image = report.boxes_per_image
    if len(per_image):
        print(f"boxes per image: min {per_image.min()}, mean {per_image.mean():.2f}, max {per_image.max()}")
    if len(report.box_sides):
        area = np.sqrt(report.box_sides[:, 0].clip(0) * report.box_sides[:, 1].clip(0))
        q = np.percentile(area, [0, 25, 50, 75, 100])
        print("box size (sqrt area, px): min {:.1f}, p25 {:.1f}, median {:.1f}, p75 {:.1f}, max {:.1f}".format(*q))
        print(f"COCO size ranges: small {(area < 32).sum()}, medium {((area >= 32) & (area < 96)).sum()}, "
              f"large {(area >= 96).sum()}")
    if report.history:
        print(format_table(["commit", "time", "message"], report.history[::-1][:20]))
    if report.problems:
        print(f"{len(report.problems)} problem(s):")
        for problem in report.problems[:50]:
            print(f"  {problem}")
        if len(report.problems) > 50:
            print(f"  ... and {len(report.problems) - 50} more")
    else:
        print("no problems found")
    return 1 if args.strict and report.problems else 0
