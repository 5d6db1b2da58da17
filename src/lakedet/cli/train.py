"""``lakedet train CONFIG``: OpenMMLab's ``tools/train.py``, for configs over Deep Lake data.

A config runs the same through MMDetection's own ``tools/train.py``; what this command adds is
listed in ``lakedet.engine.runner`` (the seed's 2.x-style configs, secrets written as values
hidden, DDP on CPU-only torch, ``--amp`` checked against the machine).
"""

from __future__ import annotations

import argparse

from .options import add_cfg_options, add_launcher, load_config, standalone_parser

HELP = "train from a config (MMDetection 3, or the seed's 2.x style)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="the config file")
    parser.add_argument("--work-dir", help="where checkpoints, logs and lineage.json go (default: work_dirs/<config name>)")
    add_cfg_options(parser)
    parser.add_argument("--resume", nargs="?", const="auto", default=None, metavar="CKPT",
                        help="resume from CKPT, or from the latest checkpoint in the work dir")
    parser.add_argument("--amp", action="store_true", help="automatic mixed precision (needs a CUDA GPU)")
    add_launcher(parser)


def get_args_parser() -> argparse.ArgumentParser:
    return standalone_parser("train", HELP, add_arguments)


def main(args) -> int:
    from ..engine.launch import end_process_group
    from ..engine.runner import build_runner
    from ..errors import ConfigError

    cfg = load_config(args)
    if args.amp:
        import torch

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
    end_process_group()
    return 0
