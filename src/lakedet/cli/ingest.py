"""``lakedet ingest coco|voc ... DEST``: COCO or Pascal VOC files into a Deep Lake dataset."""

from __future__ import annotations

import argparse

from .options import add_creds, add_subcommand, standalone_parser

HELP = "write COCO or Pascal VOC data into a Deep Lake dataset"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    formats = parser.add_subparsers(dest="format", required=True)
    coco = add_subcommand(formats, "coco", "a COCO instances JSON + its image folder, as columns images, boxes (LTWH "
                          "pixel), labels (class_names in category-id order), iscrowd, area, annotation_id, "
                          "segmentation (--masks), image_id, file_name, height, width, coco_extra")
    coco.add_argument("annotations", help="the COCO instances JSON file")
    coco.add_argument("images_dir", help="the folder its file_name entries are relative to")
    coco.add_argument("dest", help="the new Deep Lake dataset (a path or URL)")
    coco.add_argument("--masks", choices=["coco", "polygon", "binary", "none"], default="coco",
                      help="coco: every segmentation as the file has it (polygons, multi-part, RLE); "
                           "polygon: a Polygon column (one polygon per instance); binary: H x W x N masks")
    voc = add_subcommand(formats, "voc", "a Pascal VOC root (Annotations/, JPEGImages/, ImageSets/Main/), as columns "
                         "images, boxes (LTRB pixel), labels, difficult, image_id, file_name, height, width")
    voc.add_argument("root", help="the VOC root folder")
    voc.add_argument("dest", help="the new Deep Lake dataset (a path or URL)")
    voc.add_argument("--split", default="trainval", help="which images: the list ImageSets/Main/<SPLIT>.txt (train, val, trainval, test)")
    for fmt in (coco, voc):
        fmt.add_argument("--skip-bad", action="store_true", help="skip and count malformed entries")
        fmt.add_argument("--overwrite", action="store_true", help="replace a dataset already at DEST")
        add_creds(fmt)


def get_args_parser() -> argparse.ArgumentParser:
    return standalone_parser("ingest", HELP, add_arguments)


def main(args) -> int:
    from ..source.credentials import parse_creds
    from ..tools.ingest import ingest_coco, ingest_voc
    from ..tools.progress import ProgressBar

    creds = parse_creds(args.creds) if args.creds else None
    if args.format == "coco":
        report = ingest_coco(args.annotations, args.images_dir, args.dest, masks=args.masks, skip_bad=args.skip_bad,
                             creds=creds, overwrite=args.overwrite, progress=ProgressBar())
    else:
        report = ingest_voc(args.root, args.dest, split=args.split, skip_bad=args.skip_bad, creds=creds,
                            overwrite=args.overwrite, progress=ProgressBar())
    print(f"ingested {report.images} images, {report.instances} instances, {len(report.classes)} classes "
          f"into {report.dest} (commit {report.commit}"
          f"{f'; resumed after {report.resumed_at} images' if report.resumed_at else ''})")
    if report.skipped:
        print(f"skipped {len(report.skipped)} bad entries:")
        for message in report.skipped[:20]:
            print(f"  {message}")
    return 0
