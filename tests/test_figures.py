"""One figure, one source: every measured number in the README and docs/ sits in the scope of a
source note naming the benchmark command and its result file, and that file holds the number.

A source note is written ``(source: `python benchmarks/NAME.py ...`, `benchmarks/results/NAME.json`)``
(several result files may follow the command). Its scope is the text since the previous note or
heading, up to the end of the paragraph or table holding the note (up to the note itself when
another note follows in the same paragraph). Measured numbers are those with
a unit of time, speed, size or ratio (``0.42 s``, ``616 img/s``, ``1.09x``, ``12 %``, ``833 MB``) and
every number of a table. Each must be a value of one of the cited files, as printed (rounded to
the digits shown; a percentage may be a fraction in the file, and a figure may be in a unit 1000
times larger or smaller than the file's: kB for MB, ms for s). A number after a bound or a
default (``<= 3 s``, ``default 20 s``, ``~8 MB``) or before ``RTT`` is a setting or a target, not a
measurement, inside a scope or not.
"""

import json
import math
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
NOTE = re.compile(r"\(source:\s+`(python benchmarks/[^`]+)`((?:,\s+`[^`]+`)+)\)")
UNIT = r"(?:x\b|×|\s?%|\s?(?:s|ms|µs|img/s|rows/s|MB|GB|kB|GiB|MiB)\b)"
MEASURED = re.compile(rf"(?<![\w.])(\d+(?:\.\d+)?){UNIT}")
HEADING = re.compile(r"^#{1,6} ", re.M)
#: what makes a number a setting or a target, not a measurement: a bound or default before it, or an
#: RTT after it (the benchmark's simulated latency)
SETTING_BEFORE = re.compile(r"(?:<=|>=|≤|≥|<|>|~|\bdefault:?|\bwithin|\bcap of|\bat most|\btimeout)\s*$")
SETTING_AFTER = re.compile(r"\s?RTT")


def scopes(text: str):
    """(scope text, command, [result files], (begin, end)) for every source note."""
    notes = list(NOTE.finditer(text))
    for k, note in enumerate(notes):
        heading = max((m.end() for m in HEADING.finditer(text, 0, note.start())), default=0)
        begin = max(notes[k - 1].end() if k else 0, heading)
        end = text.find("\n\n", note.end())
        end = len(text) if end == -1 else end
        if k + 1 < len(notes) and notes[k + 1].start() < end:  # the next note of the paragraph takes what follows
            end = note.end()
        files = re.findall(r"`([^`]+)`", note.group(2))
        yield text[begin:end], note.group(1), files, (begin, end)


def is_setting(text: str, match) -> bool:
    return bool(SETTING_BEFORE.search(text[max(0, match.start() - 16):match.start()])
                or SETTING_AFTER.match(text, match.end()))


def numbers_in(scope: str) -> list[str]:
    text = NOTE.sub("", scope)
    found = [m.group(1) for m in MEASURED.finditer(text) if not is_setting(text, m)]
    for line in scope.splitlines():
        if line.startswith("|") and not set(line) <= set("|-: "):
            for cell in line.strip("|").split("|"):
                cell = cell.strip().strip("*").strip()
                if re.fullmatch(r"\d+(?:\.\d+)?", cell):
                    found.append(cell)
    return found


def leaves(value):
    if isinstance(value, dict):
        for item in value.values():
            yield from leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from leaves(item)
    elif isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        yield float(value)


#: how a printed figure may relate to the file's value: as is, a fraction as a percentage, a unit
#: apart by 1000 (MB printed as kB, s as ms, and back)
SCALES = (1, 100, 1000, 0.001)


def holds(values: list[float], printed: str) -> bool:
    digits = len(printed.split(".")[1]) if "." in printed else 0
    target, tolerance = float(printed), 0.5 * 10 ** -digits + 1e-9
    return any(abs(scale * v - target) <= tolerance for v in values for scale in SCALES)


CITED = [(doc, scope, command, files) for doc in DOCS for scope, command, files, _ in scopes(doc.read_text())]


def test_every_result_file_cited_exists_and_every_figure_is_in_it():
    assert CITED, "no source notes found"
    for doc, scope, command, files in CITED:
        values = []
        for name in files:
            path = ROOT / name
            assert path.exists(), f"{doc.name}: {name} (cited for {command}) does not exist"
            values += list(leaves(json.loads(path.read_text())))
        missing = [n for n in numbers_in(scope) if not holds(values, n)]
        assert not missing, f"{doc.name}: {missing} are in none of {files} (scope: {scope[:300]!r})"
        script = command.split()[1]
        assert (ROOT / script).exists(), f"{doc.name}: {script} does not exist"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_no_measured_figure_without_a_source(doc):
    text = doc.read_text()
    covered = [span for *_, span in scopes(text)]
    loose = []
    for match in MEASURED.finditer(text):
        if any(a <= match.start() < b for a, b in covered):
            continue
        line = text[text.rfind("\n", 0, match.start()) + 1:text.find("\n", match.start())]
        if is_setting(text, match):
            continue
        loose.append(f"{match.group(0)!r} in: {line.strip()[:120]}")
    assert not loose, f"{doc.name}: figures without a source note:\n" + "\n".join(loose)


def test_a_wrong_figure_is_caught(tmp_path):
    """The check itself: a number the cited file does not hold is reported."""
    result = tmp_path / "r.json"
    result.write_text(json.dumps({"a": {"ratio": 0.902, "rate": 616.4}, "share": 0.122}))
    values = list(leaves(json.loads(result.read_text())))
    assert holds(values, "0.90") and holds(values, "616") and holds(values, "12.2") and not holds(values, "0.91")
    text = f"## S\n\nratio 0.91x at 616 img/s (source: `python benchmarks/x.py`, `{result}`)\n"
    (scope, command, files, _), = scopes(text)
    assert numbers_in(scope) == ["0.91", "616"] and command == "python benchmarks/x.py"
