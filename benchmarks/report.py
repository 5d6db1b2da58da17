"""Report benchmark: the time, folder size and peak memory of ``lakedet report`` as the rows grow.

One command (``python benchmarks/report.py``) prints a table and writes ``benchmarks/results/report.json``.

For each row count, a synthetic shapes dataset (128 px JPEG rows, 1-3 shapes each) with a
``lakedet errors``-style branch (``synthetic.write_errors_branch``: predictions made from the
ground truth, no model) is written once; then, each in a fresh process so its
peak resident memory is its own:

* baseline: ``lakedet inspect``'s reading of the same rows (``inspect_source``, images decoded),
  the statistics the data section shows;
* data: ``write_report`` with the data section only;
* full: ``write_report`` with the data section and the evaluation of the errors branch.

Galleries are capped (24 samples, 12 rows per gallery), so the folder's size should not grow with
the rows, and the peak memory only with the boxes read (not the images).
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path


HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))


def make_case(path: str, rows: int) -> None:
    """The dataset and its errors branch ``errs``."""
    from lakedet.tools.synthetic import make_shapes_dataset, write_errors_branch

    ds, drawn = make_shapes_dataset(path, rows, size=128, seed=0, min_side=12, max_side=60, empty_every=10)
    write_errors_branch(ds, "errs", drawn)


def child(kind: str, path: str, out: str) -> dict:
    """One measurement in this process: seconds, folder size, peak RSS."""
    import lakedet

    lakedet.register_all()
    from lakedet.source import SourceSpec
    from lakedet.tools.inspection import inspect_source
    from lakedet.tools.report import write_report

    start = time.perf_counter()
    size = 0
    if kind == "inspect":
        inspect_source(SourceSpec(path))
    else:
        size = write_report(SourceSpec(path), out, errors="errs" if kind == "full" else None).size_bytes
    seconds = time.perf_counter() - start
    return dict(seconds=round(seconds, 2), folder_mb=round(size / 1e6, 2),
                peak_rss_mb=peak_rss_mb())


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike getrusage's ru_maxrss, which Linux
    carries over an exec from the parent that forked it, it starts anew with the program)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="1000,10000", help="row counts, comma-separated")
    parser.add_argument("--out", default=str(HERE / "results" / "report.json"))
    parser.add_argument("--child", nargs=3, metavar=("KIND", "PATH", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(*args.child)))
        return 0
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for rows in [int(v) for v in args.rows.split(",")]:
            path = f"{tmp}/ds{rows}"
            start = time.perf_counter()
            make_case(path, rows)
            made = time.perf_counter() - start
            entry = dict(rows=rows, make_dataset_s=round(made, 1))
            for kind in ("inspect", "data", "full"):
                run = subprocess.run([sys.executable, __file__, "--child", kind, path, f"{tmp}/out{rows}{kind}"],
                                     capture_output=True, text=True, check=True)
                entry[kind] = json.loads(run.stdout.strip().splitlines()[-1])
            entry["data_vs_inspect"] = round(entry["data"]["seconds"] / entry["inspect"]["seconds"], 2)
            results.append(entry)
            print(f"{rows} rows done", file=sys.stderr)
    header = ("rows", "inspect s", "report (data) s", "ratio", "report (data + errors) s", "folder MB",
              "peak RSS MB (inspect / data / full)")
    print(" | ".join(header))
    for e in results:
        print(" | ".join(str(v) for v in (e["rows"], e["inspect"]["seconds"], e["data"]["seconds"], e["data_vs_inspect"],
                                          e["full"]["seconds"], e["full"]["folder_mb"],
                                          f'{e["inspect"]["peak_rss_mb"]} / {e["data"]["peak_rss_mb"]} / '
                                          f'{e["full"]["peak_rss_mb"]}')))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(dict(machine=platform.platform(), python=platform.python_version(),
                                              results=results), indent=2))
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
