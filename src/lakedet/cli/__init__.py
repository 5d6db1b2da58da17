"""The ``lakedet`` command: ``demo``, ``train``, ``eval``, ``ingest``, ``export``, ``inspect``, ``predict``, ``errors``, ``show``.

Each command is ``<name>_parser()`` + ``<name>(args)``: parse, build the config, hand off to
``lakedet.engine.runner``. Options follow OpenMMLab's ``tools/train.py`` and ``tools/test.py``.
"""

from __future__ import annotations

import argparse
import os
import sys

__all__ = ["main", "get_args_parser"]


class _KeyValue(argparse.Action):
    """``--cfg-options a.b=1 c=[1,2]`` -> dict (values parsed as by mmengine's DictAction)."""

    def __call__(self, parser, namespace, values, option_string=None):
        from mmengine.config import DictAction

        DictAction(self.option_strings, self.dest)(parser, namespace, values, option_string)


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lakedet", description="Train MMDetection detectors on Deep Lake data.")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="train and evaluate a detector on the embedded synthetic dataset")
    demo.add_argument("--work-dir", default="work_dirs/demo")
    demo.add_argument("--data-dir", default=None, help="where the demo datasets are built (default: ~/.cache/lakedet/demo)")
    demo.add_argument("--epochs", type=int, default=None)
    demo.add_argument("--train-size", type=int, default=400)
    demo.add_argument("--val-size", type=int, default=100)
    demo.add_argument("--num-workers", type=int, default=None)
    demo.add_argument("--cfg-options", nargs="+", action=_KeyValue, default=None)

    train = sub.add_parser("train", help="train from a config (MMDetection 3 style)")
    train.add_argument("config")
    train.add_argument("--work-dir")
    train.add_argument("--cfg-options", nargs="+", action=_KeyValue, default=None)
    train.add_argument("--resume", nargs="?", const="auto", default=None,
                       help="resume from CKPT, or from the latest checkpoint in the work dir")
    train.add_argument("--amp", action="store_true", help="automatic mixed precision")
    train.add_argument("--launcher", choices=["none", "pytorch", "slurm", "mpi"], default="none")
    train.add_argument("--local_rank", "--local-rank", type=int, default=0)

    evaluate = sub.add_parser("eval", help="evaluate a checkpoint on the config's test split")
    evaluate.add_argument("config")
    evaluate.add_argument("checkpoint")
    evaluate.add_argument("--work-dir")
    evaluate.add_argument("--cfg-options", nargs="+", action=_KeyValue, default=None)
    evaluate.add_argument("--out", help="dump raw predictions to this pickle file")
    evaluate.add_argument("--commit", help="evaluate on the dataset as of this commit (deeplake_commit_id)")
    evaluate.add_argument("--view", help="evaluate on this saved view (deeplake_view_id)")
    evaluate.add_argument("--query", help="evaluate on the rows this TQL query selects (deeplake_query)")
    evaluate.add_argument("--launcher", choices=["none", "pytorch", "slurm", "mpi"], default="none")
    evaluate.add_argument("--local_rank", "--local-rank", type=int, default=0)
    ingest = sub.add_parser("ingest", help="write COCO or Pascal VOC data into a Deep Lake dataset")
    formats = ingest.add_subparsers(dest="format", required=True)
    coco = formats.add_parser("coco", help="COCO JSON + image folder")
    coco.add_argument("annotations")
    coco.add_argument("images_dir")
    coco.add_argument("dest")
    coco.add_argument("--masks", choices=["coco", "polygon", "binary", "none"], default="coco",
                      help="coco (default): every segmentation as the file has it (polygons, multi-part, RLE); "
                           "polygon: a Polygon column (one polygon per instance); binary: H x W x N masks")
    voc = formats.add_parser("voc", help="a Pascal VOC root (Annotations/, JPEGImages/, ImageSets/Main/)")
    voc.add_argument("root")
    voc.add_argument("dest")
    voc.add_argument("--split", default="trainval")
    for fmt in (coco, voc):
        fmt.add_argument("--skip-bad", action="store_true", help="skip and count malformed entries")
        fmt.add_argument("--overwrite", action="store_true", help="replace a dataset already at DEST")
        fmt.add_argument("--creds", nargs="+", metavar="KEY=VALUE|@FILE|env:NAME", default=None,
                         help="credentials for a cloud DEST: KEY=VALUE items (aws_access_key_id=... "
                              "endpoint_url=...), @FILE (a JSON object or KEY=VALUE lines) or env:NAME (a JSON "
                              "object in that environment variable), so secrets need not be on the command line; "
                              "without it the cloud SDK's own chain (environment, profiles, roles) is used")

    export = sub.add_parser("export", help="write a Deep Lake dataset (or a commit / view / query) as files")
    export_formats = export.add_subparsers(dest="format", required=True)
    export_coco = export_formats.add_parser("coco", help="OUT/annotations.json (COCO) + OUT/images/")
    export_coco.add_argument("path")
    export_coco.add_argument("out")
    export_coco.add_argument("--commit")
    exported = export_coco.add_mutually_exclusive_group()
    exported.add_argument("--view")
    exported.add_argument("--query")
    export_coco.add_argument("--overwrite", action="store_true", help="replace OUT/annotations.json")

    predict = sub.add_parser("predict", help="write a model's predictions to a new branch of the dataset")
    errors = sub.add_parser("errors", help="write a model's predictions and their TP/FP/FN matching (COCO's rule) "
                                           "to a new branch; plot PR curves and a confusion matrix")
    for command, work_dir in ((predict, "work_dirs/predict"), (errors, "work_dirs/errors")):
        command.add_argument("config")
        command.add_argument("checkpoint")
        command.add_argument("path")
        command.add_argument("--branch", required=True, help="the new branch to write the results on")
        command.add_argument("--work-dir", default=work_dir, help="where lineage.json (and plots) are written")
        command.add_argument("--score-thr", type=float, default=0.05, help="keep predictions scored at least this")
        command.add_argument("--batch-size", type=int, default=4)
        command.add_argument("--num-workers", type=int, default=2, help="DataLoader workers (default 2)")
        command.add_argument("--device", default=None, help="cuda, cuda:1, cpu ... (default: cuda when present)")
        command.add_argument("--tta", action="store_true", help="test-time augmentation: the config's tta_model "
                                                               "and tta_pipeline, as tools/test.py --tta")
        command.add_argument("--cfg-options", nargs="+", action=_KeyValue, default=None)
        selected = command.add_mutually_exclusive_group()
        selected.add_argument("--view", help="only the rows of this saved view")
        selected.add_argument("--query", help="only the rows this TQL query selects (SELECT * WHERE ...)")
    errors.add_argument("--iou-thr", type=float, default=0.5, help="a match needs IoU >= this (default 0.5)")
    errors.add_argument("--max-dets", type=int, default=100,
                        help="predictions per class and image that count (COCO: 100)")
    errors.add_argument("--confusion-thr", type=float, default=0.3,
                        help="score threshold of the predictions counted in the confusion matrix (default 0.3)")

    show = sub.add_parser("show", help="draw rows with ground truth (and predictions) into a PNG grid")
    show.add_argument("path")
    show.add_argument("--rows", default="0:16", help="START:STOP, N or N,M,... (default 0:16)")
    show.add_argument("--out", default="grid.png")
    show.add_argument("--columns", type=int, default=4)
    show.add_argument("--errors", action="store_true",
                      help="draw `lakedet errors` results: TP green, FP red, FN blue, with class and score")
    show.add_argument("--score-thr", type=float, default=0.3, help="hide predictions scored below this")
    version = show.add_mutually_exclusive_group()
    version.add_argument("--commit")
    version.add_argument("--branch", help="the rows as of this branch's latest commit (e.g. `lakedet errors`' branch)")
    shown = show.add_mutually_exclusive_group()
    shown.add_argument("--view")
    shown.add_argument("--query")

    convert = sub.add_parser("convert", help="a Deep Lake 3 dataset as a new Deep Lake 4 dataset (data of one "
                                              "commit, saved views as tags); reading v3 data needs no conversion")
    convert.add_argument("src", help="the Deep Lake 3 dataset (read only)")
    convert.add_argument("dest", help="the new Deep Lake 4 dataset (must not exist)")
    convert.add_argument("--ref", default=None, help="a v3 commit id or branch (its latest commit); HEAD for main's "
                                                    "uncommitted changes (default: main's latest commit)")
    convert.add_argument("--token", default=None, help="Deep Lake API token for hub:// / al:// datasets "
                                                      "(default: ACTIVELOOP_TOKEN)")
    convert.add_argument("--creds", nargs="+", metavar="KEY=VALUE|@FILE|env:NAME", default=None,
                         help="credentials to read a cloud SRC (as ingest's --creds)")
    convert.add_argument("--dest-creds", nargs="+", metavar="KEY=VALUE|@FILE|env:NAME", default=None,
                         help="credentials to write a cloud DEST")

    inspect = sub.add_parser("inspect", help="schema, statistics, problems and history of a dataset")
    inspect.add_argument("path")
    inspect.add_argument("--commit")
    inspect.add_argument("--view")
    inspect.add_argument("--query", help="a TQL query (on Deep Lake 3 data it may run over --view)")
    inspect.add_argument("--no-images", action="store_true", help="do not decode images (faster)")
    inspect.add_argument("--strict", action="store_true", help="exit with status 1 when problems exist")
    return parser


def _load_config(args):
    from mmengine.config import Config

    from ..config.translate import merge_options

    cfg = merge_options(Config.fromfile(args.config), args.cfg_options)  # translated when 2.x-style
    if args.work_dir:
        cfg.work_dir = args.work_dir
    elif not cfg.get("work_dir"):
        from pathlib import Path

        cfg.work_dir = str(Path("work_dirs") / Path(args.config).stem)
    cfg.launcher = args.launcher
    return cfg


def demo(args) -> int:
    from ..tools.demo import run_demo

    run_demo(work_dir=args.work_dir, data_dir=args.data_dir, epochs=args.epochs,
             train_size=args.train_size, val_size=args.val_size, num_workers=args.num_workers,
             cfg_options=args.cfg_options)
    return 0


def train(args) -> int:
    from ..engine.runner import build_runner

    cfg = _load_config(args)
    if args.amp:
        import torch

        from ..errors import ConfigError

        if not torch.cuda.is_available():
            raise ConfigError("--amp (mixed precision) needs a CUDA GPU; this machine has none: drop --amp")
        if "optim_wrapper" not in cfg:
            raise ConfigError("--amp needs an optim_wrapper (or a 2.x optimizer) in the config")
        cfg.optim_wrapper.type = "AmpOptimWrapper"
        cfg.optim_wrapper.setdefault("loss_scale", "dynamic")
    if args.resume == "auto":
        cfg.resume, cfg.load_from = True, None
    elif args.resume:
        cfg.resume, cfg.load_from = True, args.resume
    build_runner(cfg).train()
    _end_process_group()
    return 0


def _end_process_group() -> None:
    """Tear down a distributed run's process group (gloo aborts at exit when it is left up)."""
    from ..engine.runner import end_process_group

    end_process_group()


def evaluate(args) -> int:
    from ..engine.runner import build_runner

    cfg = _load_config(args)
    cfg.load_from, cfg.resume = args.checkpoint, False  # evaluate exactly this checkpoint
    _select_test_rows(cfg, commit=args.commit, view=args.view, query=args.query)
    runner = build_runner(cfg, training=False)
    if args.out:
        from mmdet.evaluation.metrics import DumpDetResults

        runner.test_evaluator.metrics.append(DumpDetResults(out_file_path=args.out))
    metrics = runner.test()  # every rank gets the metrics, computed once on rank 0 from all ranks' results
    from mmengine.dist import is_main_process

    if is_main_process():
        _report_metrics(runner, metrics, cfg.work_dir, args)
    _end_process_group()
    return 0


def _report_metrics(runner, metrics, work_dir, args) -> None:
    import json
    from pathlib import Path

    from ..evaluation.tables import format_table, per_class_tables

    for metric in runner.test_evaluator.metrics:
        for title, headers, rows in per_class_tables(metric):
            print(f"\n{title}")
            print(format_table(headers, rows))
    summary = {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))}
    print("\nsummary")
    print(format_table(["metric", "value"], sorted(summary.items())))
    out = Path(work_dir) / "metrics.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(dict(config=args.config, checkpoint=args.checkpoint, metrics=summary), indent=2))
    print(f"metrics written to {out}" + (f"; raw predictions to {args.out}" if args.out else ""))


def _select_test_rows(cfg, **selection) -> None:
    """Set deeplake_commit_id / _view_id / _query on the test split's Deep Lake dataset(s)."""
    keys = dict(commit="deeplake_commit_id", view="deeplake_view_id", query="deeplake_query")
    chosen = {keys[k]: v for k, v in selection.items() if v}
    if not chosen:
        return
    from ..config.translate import bare_type
    from ..errors import ConfigError

    found = []

    def visit(node):
        if isinstance(node, dict):
            if bare_type(node) == "DeepLakeDetDataset":
                found.append(node)
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(cfg.get("test_dataloader", {}).get("dataset"))
    if not found:
        raise ConfigError("--commit/--view/--query: the config's test_dataloader has no DeepLakeDetDataset")
    for dataset in found:
        if "deeplake_view_id" in chosen or "deeplake_query" in chosen:
            dataset.pop("deeplake_view_id", None)
            dataset.pop("deeplake_query", None)
        if "deeplake_commit_id" in chosen:
            dataset.pop("deeplake_commit", None)  # the other spelling of the same key
        dataset.update(chosen)


def ingest(args) -> int:
    from ..errors import ConfigError
    from ..tools.ingest import ProgressBar, ingest_coco, ingest_voc

    creds = parse_creds(args.creds) if args.creds else None
    if args.format == "coco":
        report = ingest_coco(args.annotations, args.images_dir, args.dest,
                             masks=args.masks, skip_bad=args.skip_bad, creds=creds, overwrite=args.overwrite,
                             progress=ProgressBar())
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


def export(args) -> int:
    from ..tools.export import export_coco
    from ..tools.ingest import ProgressBar
    from ..source.open import SourceSpec

    report = export_coco(SourceSpec(args.path, commit=args.commit, view=args.view, query=args.query), args.out,
                         overwrite=args.overwrite, progress=ProgressBar())
    print(f"exported {report.images} images, {report.annotations} annotations to {report.out}/annotations.json "
          f"and {report.out}/images/")
    return 0


def parse_creds(items: list[str]) -> dict:
    """``--creds`` items as one dict: ``KEY=VALUE``, ``@FILE`` (JSON object, or ``KEY=VALUE`` lines;
    ``#`` comments) or ``env:NAME`` (a JSON object in that variable); later items win.

    Raises:
        ConfigError: an item of none of these forms, a missing file or variable, bad JSON.
    """
    import json

    from ..errors import ConfigError

    def pairs(lines, where):
        found = {}
        for line in lines:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if "=" not in line:
                raise ConfigError(f"--creds {where}: {line.split('=')[0][:40]!r} is not KEY=VALUE")
            key, value = line.split("=", 1)
            found[key.strip()] = value.strip()
        return found

    def parsed(text, where):
        if text.lstrip().startswith("{"):
            try:
                value = json.loads(text)
            except ValueError as exc:
                raise ConfigError(f"--creds {where}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
            if not isinstance(value, dict):
                raise ConfigError(f"--creds {where}: expected a JSON object of settings")
            return {str(k): str(v) for k, v in value.items()}
        return pairs(text.splitlines(), where)

    creds = {}
    for item in items:
        if item.startswith("@"):
            try:
                text = open(item[1:]).read()
            except OSError as exc:
                raise ConfigError(f"--creds {item}: cannot read the file ({exc.strerror})") from None
            creds.update(parsed(text, item))
        elif item.startswith("env:"):
            name = item[4:]
            if name not in os.environ:
                raise ConfigError(f"--creds {item}: the environment variable {name!r} is not set")
            creds.update(parsed(os.environ[name], item))
        elif "=" in item:
            creds.update(pairs([item], repr(item.split("=")[0])))
        else:
            raise ConfigError(f"--creds {item[:40]!r}: expected KEY=VALUE, @FILE or env:NAME")
    return creds


def predict(args) -> int:
    from ..tools.ingest import print_progress
    from ..tools.predict import predict_to_branch

    report = predict_to_branch(args.config, args.checkpoint, args.path, args.branch, cfg_options=args.cfg_options,
                               score_thr=args.score_thr, batch_size=args.batch_size, view=args.view,
                               query=args.query, work_dir=args.work_dir, progress=print_progress,
                               num_workers=args.num_workers, device=args.device, tta=args.tta)
    print(f"predicted {report.rows} rows ({report.boxes} boxes) of {report.path}@{report.source_commit}; "
          f"written to branch {report.branch!r} as commit {report.commit}")
    return 0


def find_errors(args) -> int:
    from ..tools.error_analysis import class_table, errors_to_branch
    from ..tools.ingest import print_progress
    from ..evaluation.tables import format_table

    report = errors_to_branch(args.config, args.checkpoint, args.path, args.branch, iou_thr=args.iou_thr,
                              score_thr=args.score_thr, max_dets=args.max_dets, confusion_thr=args.confusion_thr,
                              cfg_options=args.cfg_options, batch_size=args.batch_size, view=args.view,
                              query=args.query, work_dir=args.work_dir, progress=print_progress,
                              num_workers=args.num_workers, device=args.device, tta=args.tta)
    print(format_table(*class_table(report.evaluation)))
    tp, fp, fn = report.evaluation.totals
    print(f"matched {report.rows} rows of {report.path}@{report.source_commit} at IoU >= {args.iou_thr}: "
          f"TP {tp}, FP {fp}, FN {fn}; written to branch {report.branch!r} as commit {report.commit}")
    print("wrote " + ", ".join(report.files.values()))
    return 0


def convert(args) -> int:
    from ..tools.convert import convert_deeplake3

    report = convert_deeplake3(args.src, args.dest, ref=args.ref, token=args.token,
                               creds=parse_creds(args.creds) if args.creds else None,
                               dest_creds=parse_creds(args.dest_creds) if args.dest_creds else None,
                               progress=lambda line: print(line, flush=True))
    print(f"converted {report.rows} rows of {report.source}@{report.commit} into {report.dest} "
          f"({len(report.views)} saved views kept as tags"
          f"{f', {len(report.skipped_views)} not kept' if report.skipped_views else ''})")
    return 0


def show(args) -> int:
    import cv2

    from ..tools.show import render_grid
    from ..source.open import SourceSpec

    grid = render_grid(SourceSpec(args.path, commit=args.commit, view=args.view, query=args.query), args.rows,
                       columns=args.columns, score_thr=args.score_thr, errors=args.errors, branch=args.branch)
    cv2.imwrite(args.out, grid[:, :, ::-1])
    print(f"wrote {args.out} ({grid.shape[1]}x{grid.shape[0]} px)")
    return 0


def inspect(args) -> int:
    import numpy as np

    from ..tools.inspection import inspect_source
    from ..evaluation.tables import format_table
    from ..source.open import SourceSpec

    spec = SourceSpec(args.path, commit=args.commit, view=args.view, query=args.query)
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


def _original_message(exc: Exception) -> str:
    """The error's own message; for one re-raised from a DataLoader worker, without the worker's traceback."""
    text = str(exc)
    marker = f"{type(exc).__name__}: "
    if "Original Traceback" in text and marker in text:
        return text.rsplit(marker, 1)[1].strip()
    return text


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    from ..errors import LakedetError, SourceTimeout

    try:
        return {"demo": demo, "train": train, "eval": evaluate, "inspect": inspect,
                "ingest": ingest, "export": export, "predict": predict, "errors": find_errors,
                "show": show, "convert": convert}[args.command](args)
    except LakedetError as exc:
        print(f"lakedet {args.command}: {type(exc).__name__}: {_original_message(exc)}", file=sys.stderr)
        if isinstance(exc, SourceTimeout):
            # Deep Lake's native threads may still wait on the dead server and would hold the
            # interpreter's exit for minutes: leave now, and take the DataLoader workers along
            # (they would otherwise go on waiting on their own reads as orphans).
            import multiprocessing

            for child in multiprocessing.active_children():
                child.kill()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(2)
        return 2


if __name__ == "__main__":
    sys.exit(main())
