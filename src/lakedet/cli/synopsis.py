"""The README's command synopsis, generated from the parsers, so ``--help`` stays the source of truth.

``python -m lakedet.cli.synopsis`` prints it; ``--write README.md`` replaces the block between the
markers (``tests/test_cli_help.py`` fails when the README's block differs from the parsers').
"""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

from . import get_args_parser
from .options import HelpFormatter

__all__ = ["command_parsers", "synopsis", "write_synopsis", "BEGIN", "END"]

WIDTH = 110
BEGIN = "<!-- synopsis: generated from the parsers by `python -m lakedet.cli.synopsis --write README.md` -->"
END = "<!-- end of synopsis -->"


def command_parsers(parser: argparse.ArgumentParser | None = None, prefix: str = "lakedet"):
    """(``"lakedet ingest coco"``, its parser) for every command that runs, sub-commands included."""
    parser = parser or get_args_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                nested = any(isinstance(a, argparse._SubParsersAction) for a in sub._actions)
                if nested:
                    yield from command_parsers(sub, f"{prefix} {name}")
                else:
                    yield f"{prefix} {name}", sub


def synopsis() -> str:
    """Every command's usage line(s), as ``--help`` prints them at a fixed width."""
    blocks = []
    for _, parser in command_parsers():
        parser.formatter_class = functools.partial(HelpFormatter, width=WIDTH)
        usage = parser.format_usage().removeprefix("usage: ").rstrip()
        blocks.append(usage.replace("\n" + " " * len("usage: "), "\n"))
    return "```\n" + "\n".join(blocks) + "\n```"


def write_synopsis(readme: Path) -> bool:
    """Replace the synopsis block of ``readme``; True when it changed."""
    text = readme.read_text()
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{readme} has no synopsis block: put the lines\n{BEGIN}\n{END}\nwhere it belongs")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    new = f"{head}{BEGIN}\n{synopsis()}\n{END}{tail}"
    readme.write_text(new)
    return new != text


if __name__ == "__main__":
    if sys.argv[1:2] == ["--write"]:
        print("updated" if write_synopsis(Path(sys.argv[2])) else "unchanged")
    else:
        print(synopsis())
