"""What `make demo` does, measured: `lakedet demo` run as a user runs it, in a fresh process.

Records the final bbox mAP / mAP@0.5 (the demo is seeded: the same machine prints the same
numbers), the wall time, every logged iteration's `time` and `data_time` (mmengine's IterTimerHook:
`data_time` is the wait for the batch, `time` the whole iteration), and the share of the time
spent waiting for data, `sum(data_time) / sum(time)` over the epochs after the first (the first
also starts the DataLoader workers). The demo's datasets are built first (not timed) in --data-dir.
Writes benchmarks/results/demo.json, with the load average before and after.

    python benchmarks/demo.py [--epochs 12] [--repeats 1] [--cfg-options K=V ...] [--out JSON]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from loader import write_results  # noqa: E402

HERE = Path(__file__).parent


def one_run(epochs: int, data_dir: str, cfg_options: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as work:
        started = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "lakedet", "demo", "--work-dir", work, "--data-dir", data_dir,
                              "--epochs", str(epochs), *(["--cfg-options", *cfg_options] if cfg_options else [])],
                             capture_output=True, text=True)
        wall = time.perf_counter() - started
        if out.returncode:
            raise SystemExit(out.stdout[-3000:] + out.stderr[-3000:])
        (scalars,) = Path(work).glob("*/vis_data/scalars.json")
        lines = [json.loads(line) for line in scalars.read_text().splitlines()]
    logged = [line for line in lines if "data_time" in line and "epoch" in line]
    later = [line for line in logged if line["epoch"] > 1]
    metrics = [line for line in lines if "coco/bbox_mAP" in line][-1]
    return dict(wall_s=round(wall, 1), bbox_mAP=metrics["coco/bbox_mAP"], bbox_mAP_50=metrics["coco/bbox_mAP_50"],
                iterations_logged=len(logged),
                median_time_s=round(statistics.median(line["time"] for line in later), 3),
                median_data_time_s=round(statistics.median(line["data_time"] for line in later), 4),
                wait_share=round(sum(line["data_time"] for line in later) / sum(line["time"] for line in later), 4))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--data-dir", default=str(HERE / ".data" / "demo"))
    parser.add_argument("--out", default=str(HERE / "results" / "demo.json"))
    parser.add_argument("--cfg-options", nargs="+", default=[], help="passed to lakedet demo")
    args = parser.parse_args()
    subprocess.run([sys.executable, "-c", "from pathlib import Path; from lakedet.tools.demo import "
                    f"ensure_demo_datasets; ensure_demo_datasets(Path({args.data_dir!r}))"], check=True)
    before = os.getloadavg()
    runs = [one_run(args.epochs, args.data_dir, args.cfg_options) for _ in range(args.repeats)]
    result = dict(command="python benchmarks/demo.py " + " ".join(sys.argv[1:]), machine=f"{os.cpu_count()} cores",
                  load_average_before=[round(x, 2) for x in before],
                  load_average_after=[round(x, 2) for x in os.getloadavg()], epochs=args.epochs, cfg_options=args.cfg_options, runs=runs,
                  bbox_mAP=[r["bbox_mAP"] for r in runs], bbox_mAP_50=[r["bbox_mAP_50"] for r in runs],
                  wall_s=[r["wall_s"] for r in runs], wait_share=[r["wait_share"] for r in runs])
    for run in runs:
        print(run)
    write_results(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
