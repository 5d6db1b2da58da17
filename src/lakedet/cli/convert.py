"""``lakedet convert SRC DEST``: a Deep Lake 3 dataset as a new Deep Lake 4 dataset."""

from __future__ import annotations

import argparse

from .options import add_creds, standalone_parser

HELP = ("a Deep Lake 3 dataset as a new Deep Lake 4 dataset (data of one commit, saved views as tags); reading v3 "
        "data needs no conversion")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("src", help="the Deep Lake 3 dataset (read only)")
    parser.add_argument("dest", help="the new Deep Lake 4 dataset (must not exist)")
    parser.add_argument("--ref", default=None, help="a v3 commit id or branch (its latest commit); HEAD for main's "
                                                    "uncommitted changes (default: main's latest commit)")
    parser.add_argument("--token", default=None, help="Deep Lake API token for hub:// / al:// datasets "
                                                      "(default: ACTIVELOOP_TOKEN)")
    add_creds(parser, "--creds", "reading a cloud SRC")
    add_creds(parser, "--dest-creds", "writing a cloud DEST")


def get_args_parser() -> argparse.ArgumentParser:
    return standalone_parser("convert", HELP, add_arguments)


def main(args) -> int:
    from ..source.credentials import parse_creds
    from ..tools.convert import convert_deeplake3

    report = convert_deeplake3(args.src, args.dest, ref=args.ref, token=args.token,
                               creds=parse_creds(args.creds) if args.creds else None,
                               dest_creds=parse_creds(args.dest_creds) if args.dest_creds else None,
                               progress=lambda line: print(line, flush=True))
    print(f"converted {report.rows} rows of {report.source}@{report.commit} into {report.dest} "
          f"({len(report.views)} saved views kept as tags"
          f"{f', {len(report.skipped_views)} not kept' if report.skipped_views else ''})")
    return 0
