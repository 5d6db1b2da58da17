"""`--help` is the source of truth: every option of every command has help and shows its default,
and the README's synopsis is the one the parsers print."""

import argparse
import re
from pathlib import Path

import pytest

from lakedet.cli.synopsis import BEGIN, END, command_parsers, synopsis

README = Path(__file__).parent.parent / "README.md"
COMMANDS = dict(command_parsers())


def option_blocks(help_text: str) -> dict[str, str]:
    """option string -> its lines of ``--help`` (up to the next option)."""
    blocks, current = {}, None
    for line in help_text.splitlines():
        found = re.match(r"^  (-{1,2}[\w-]+)", line)
        if found:
            current = found.group(1)
            blocks[current] = line
        elif current and line.startswith("   "):
            blocks[current] += " " + line.strip()
        else:
            current = None
    return blocks


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_option_has_help_and_shows_its_default(name):
    parser = COMMANDS[name]
    blocks = option_blocks(parser.format_help())
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        assert action.help and action.help is not argparse.SUPPRESS, f"{name} {action.dest}: no help"
        if action.option_strings and action.default not in (None, False, argparse.SUPPRESS):
            block = blocks[action.option_strings[0]]
            assert "default" in block, f"{name} {action.option_strings[0]}: the default is not shown: {block}"


def test_the_readme_synopsis_is_the_parsers():
    text = README.read_text()
    block = text.split(BEGIN, 1)[1].split(END, 1)[0].strip()
    assert block == synopsis(), "README's synopsis is stale: run python -m lakedet.cli.synopsis --write README.md"
    for name in COMMANDS:  # and every command is in it
        assert f"\n{name} [" in f"\n{block}"


def test_eval_takes_a_view_or_a_query_not_both(capsys):
    with pytest.raises(SystemExit):
        COMMANDS["lakedet eval"].parse_args(["c.py", "x.pth", "--view", "v", "--query", "SELECT *"])
    assert "not allowed with argument" in capsys.readouterr().err
    args = COMMANDS["lakedet eval"].parse_args(["c.py", "x.pth", "--commit", "abc", "--query", "SELECT *"])
    assert args.commit == "abc" and args.query == "SELECT *"
