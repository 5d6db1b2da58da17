"""The ``lakedet`` command: ``demo``, ``train``, ``eval``.

Each command is ``<name>_parser()`` + ``<name>(args)``: parse, build the config, hand off to
``lakedet.train``. Options follow OpenMMLab's ``tools/train.py`` and ``tools/test.py``.
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
    evaluate.add_argument("--launcher", choices=["none", "pytorch", "slurm", "mpi"], default="none")
    return parser


def _load_config(args):
    from mmengine.config import Config

    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir:
        cfg.work_dir = args.work_dir
    elif not cfg.get("work_dir"):
        from pathlib import Path

        cfg.work_dir = str(Path("work_dirs") / Path(args.config).stem)
    cfg.launcher = args.launcher
    return cfg


def demo(args) -> int:
    from .demo import run_demo

    run_demo(work_dir=args.work_dir, data_dir=args.data_dir, epochs=args.epochs,
             train_size=args.train_size, val_size=args.val_size, num_workers=args.num_workers,
             cfg_options=args.cfg_options)
    return 0


def train(args) -> int:
    from .train import build_runner

    cfg = _load_config(args)
    if args.amp:
        cfg.optim_wrapper.type = "AmpOptimWrapper"
        cfg.optim_wrapper.setdefault("loss_scale", "dynamic")
    if args.resume == "auto":
        cfg.resume, cfg.load_from = True, None
    elif args.resume:
        cfg.resume, cfg.load_from = True, args.resume
    build_runner(cfg).train()
    return 0


def evaluate(args) -> int:
    from .train import build_runner

    cfg = _load_config(args)
    cfg.load_from = args.checkpoint
    if args.out:
        cfg.test_evaluator = list(cfg.test_evaluator) if isinstance(cfg.test_evaluator, list) else [cfg.test_evaluator]
        cfg.test_evaluator.append(dict(type="DumpDetResults", out_file_path=args.out))
    metrics = build_runner(cfg).test()
    from .report import format_table

    print(format_table(["metric", "value"], [(k, float(v)) for k, v in metrics.items()
                                            if isinstance(v, (int, float))]))
    return 0


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    from .errors import LakedetError, SourceTimeout

    try:
        return {"demo": demo, "train": train, "eval": evaluate}[args.command](args)
    except LakedetError as exc:
        print(f"lakedet {args.command}: {type(exc).__name__}: {exc}", file=sys.stderr)
        if isinstance(exc, SourceTimeout):
            # Deep Lake's native threads may still wait on the dead server and would hold the
            # interpreter's exit for minutes: leave now.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(2)
        return 2


if __name__ == "__main__":
    sys.exit(main())
