"""What several commands share: ``--cfg-options``, ``--creds``, and loading a config as
OpenMMLab's ``tools/train.py`` does (``--work-dir``, the 2.x-style translation, the launcher)."""

from __future__ import annotations

import argparse

__all__ = ["KeyValue", "HelpFormatter", "add_cfg_options", "add_class_agnostic", "class_list", "add_creds", "add_launcher", "load_config",
           "standalone_parser", "add_subcommand", "add_view_or_query", "source_of", "LAUNCHERS"]

LAUNCHERS = ["none", "pytorch", "slurm", "mpi"]


class HelpFormatter(argparse.HelpFormatter):
    """argparse's help, with each option's default where it has one worth saying."""

    def _get_help_string(self, action):
        text = action.help or ""
        if (action.option_strings and action.default not in (None, False, argparse.SUPPRESS)
                and "default" not in text):
            text += " (default: %(default)s)"
        return text


class KeyValue(argparse.Action):
    """``--cfg-options a.b=1 c=[1,2]`` -> dict (values parsed as by mmengine's DictAction)."""

    def __call__(self, parser, namespace, values, option_string=None):
        from mmengine.config import DictAction

        DictAction(self.option_strings, self.dest)(parser, namespace, values, option_string)


def add_cfg_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cfg-options", nargs="+", action=KeyValue, default=None, metavar="KEY=VALUE",
                        help="override config settings, e.g. train_cfg.max_epochs=2 (as tools/train.py)")


def add_class_agnostic(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--class-agnostic", action="store_true",
                        help="match boxes of any class with each other (COCO's useCats=0)")


def class_list(text: str) -> list[str]:
    """``--classes a,b`` -> ``["a", "b"]`` (spaces around names dropped)."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"{text!r}: give class names separated by commas, e.g. circle,square")
    return names


def add_launcher(parser: argparse.ArgumentParser) -> None:
    """``--launcher`` and the ``--local_rank`` that ``torch.distributed.launch`` passes, as tools/train.py takes them."""
    parser.add_argument("--launcher", choices=LAUNCHERS, default="none", help="distributed launcher")
    parser.add_argument("--local_rank", "--local-rank", type=int, default=0,
                        help="set by torch.distributed.launch, taken as tools/train.py takes it (torchrun sets LOCAL_RANK)")


def add_subcommand(subparsers, name: str, help: str) -> argparse.ArgumentParser:
    """A sub-command's parser (``lakedet ingest coco`` ...), with the same help formatting."""
    return subparsers.add_parser(name, help=help, description=help, formatter_class=HelpFormatter)


def standalone_parser(command: str, description: str, add_arguments) -> argparse.ArgumentParser:
    """The parser of one command on its own (``lakedet <command>``)."""
    parser = argparse.ArgumentParser(prog=f"lakedet {command}", description=description, formatter_class=HelpFormatter)
    add_arguments(parser)
    return parser


def add_creds(parser: argparse.ArgumentParser, flag: str = "--creds", what: str = "a cloud DEST") -> None:
    parser.add_argument(flag, nargs="+", metavar="KEY=VALUE|@FILE|env:NAME", default=None,
                        help=f"credentials for {what}: KEY=VALUE items (aws_access_key_id=... endpoint_url=...), "
                             "@FILE (a JSON object or KEY=VALUE lines) or env:NAME (a JSON object in that environment "
                             "variable), so secrets need not be on the command line; without it the cloud SDK's own "
                             "chain (environment, profiles, roles) is used")


def add_view_or_query(parser: argparse.ArgumentParser, what: str = "the rows") -> None:
    """``--view`` or ``--query`` (one of them), selecting ``what``."""
    shown = parser.add_mutually_exclusive_group()
    shown.add_argument("--view", help=f"{what} of this saved view")
    shown.add_argument("--query", help=f"{what} this TQL query selects")


def source_of(args):
    """The ``SourceSpec`` a command's ``path`` / ``--creds`` / ``--commit`` / ``--view`` / ``--query`` name."""
    from ..source import SourceSpec
    from ..source.credentials import parse_creds

    return SourceSpec(args.path, creds=parse_creds(args.creds) if args.creds else None, commit=args.commit,
                      view=args.view, query=args.query)


def load_config(args):
    """``args.config`` merged with ``--cfg-options`` (translated when 2.x-style), with
    ``--work-dir`` (default ``work_dirs/<config name>``) and ``--launcher``."""
    from pathlib import Path

    from mmengine.config import Config

    from ..config.translate import merge_options

    cfg = merge_options(Config.fromfile(args.config), args.cfg_options)
    if args.work_dir:
        cfg.work_dir = args.work_dir
    elif not cfg.get("work_dir"):
        cfg.work_dir = str(Path("work_dirs") / Path(args.config).stem)
    cfg.launcher = args.launcher
    return cfg
