"""How long the ``lakedet`` command takes to answer ``--help`` and an argument error.

One command (``python benchmarks/startup.py``) prints a table and writes
``benchmarks/results/startup.json``. Each case runs ``--runs`` times in a fresh interpreter; the
table shows the median wall time and the median CPU time of the child (user + system, which a busy
machine does not inflate), next to the baseline of an interpreter that does nothing
(``python -c pass``) and to ``import lakedet`` outside the command (which registers everything, as
``custom_imports`` needs). Target: ``lakedet --help`` and an argument error under 0.5 s.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "startup.json"
CASES = {
    "python -c pass (baseline)": [sys.executable, "-c", "pass"],
    "lakedet --help": [sys.executable, "-m", "lakedet", "--help"],
    "lakedet train (argument error)": [sys.executable, "-m", "lakedet", "train"],
    "python -c 'import lakedet' (registers all)": [sys.executable, "-c", "import lakedet"],
}
TARGET_S = 0.5


def run_once(command: list[str]) -> tuple[float, float]:
    """Wall and child CPU seconds of one run."""
    before = os.times()
    started = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    wall = time.perf_counter() - started
    after = os.times()
    return wall, (after.children_user - before.children_user) + (after.children_system - before.children_system)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    rows = {}
    for name, command in CASES.items():
        times = [run_once(command) for _ in range(args.runs)]
        rows[name] = dict(wall_s=statistics.median(t[0] for t in times), cpu_s=statistics.median(t[1] for t in times))
    width = max(len(n) for n in rows)
    print(f"{'case'.ljust(width)} | wall (median) | cpu (median)")
    print("-" * (width + 32))
    for name, row in rows.items():
        print(f"{name.ljust(width)} | {row['wall_s']:11.3f} s | {row['cpu_s']:10.3f} s")
    checks = {name: rows[name]["wall_s"] <= TARGET_S for name in ("lakedet --help", "lakedet train (argument error)")}
    for name, ok in checks.items():
        print(f"target: {name} <= {TARGET_S} s: {'met' if ok else 'NOT met'}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(dict(runs=args.runs, load_average=os.getloadavg(), cases=rows,
                                       target_s=TARGET_S, met=checks), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
