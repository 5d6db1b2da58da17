"""The ``lakedet`` command: one module per command (``get_args_parser()`` + ``main(args)``), as
OpenMMLab's and torchvision's tools are written: parse, build the config, hand off. Heavy imports
happen inside ``main``, so ``lakedet --help`` answers at once.
"""

from __future__ import annotations

import argparse
import os
import sys

from . import compare, convert, demo, error_analysis, evaluate, export, ingest, inspection, label_issues, predict, report, show, train
from .options import add_subcommand

__all__ = ["main", "get_args_parser", "COMMANDS"]

#: command name -> its module
COMMANDS = {"demo": demo, "train": train, "eval": evaluate, "ingest": ingest, "export": export, "inspect": inspection,
            "show": show, "predict": predict, "errors": error_analysis, "compare": compare,
            "issues": label_issues, "convert": convert, "report": report}


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lakedet", description="Train MMDetection detectors on Deep Lake data.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, module in COMMANDS.items():
        module.add_arguments(add_subcommand(sub, name, module.HELP))
    return parser


def _original_message(exc: Exception) -> str:
    """The error's own message; for one re-raised from a DataLoader worker, without the worker's traceback."""
    text = str(exc)
    marker = f"{type(exc).__name__}: "
    if "Original Traceback" in text and marker in text:
        return text.rsplit(marker, 1)[1].strip()
    return text


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    from .. import register_all
    from ..errors import LakedetError, SourceTimeout

    register_all()  # the command's process imports lakedet without registering (see lakedet/__init__.py)

    try:
        return COMMANDS[args.command].main(args)
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
