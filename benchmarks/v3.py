"""Deep Lake 3 benchmark: lakedet's loader on a v3 dataset read in place vs the same data converted
to Deep Lake 4, and ``lakedet convert`` throughput beside ``deeplake.convert`` alone.

One command (``python benchmarks/v3.py``) prints tables and writes ``benchmarks/results/v3.json``.

The data: N JPEG images (320x240, 1-6 boxes each, class labels) written by Deep Lake 3 itself
(``--dl3-python``: a Python with ``deeplake<4``, e.g. ``python3 -m venv /tmp/dl3 &&
/tmp/dl3/bin/pip install "deeplake<4" "numpy<2" pillow``), one commit, and a saved view of every
second row. Its Deep Lake 4 copy is made with ``deeplake.convert`` (same rows, same JPEG bytes),
and the view becomes a tag there (``lakedet convert``).

* loader: ``DeepLakeDetDataset`` (the ``c++`` loader, MMDetection's DataLoader, batch 8, shuffled,
  the seed's train pipeline) over the v3 dataset in place and over its v4 copy, the whole dataset
  and the saved view, for each ``--workers``; each measurement in a fresh process, the median of
  ``--epochs`` passes; v3 and v4 alternate ``--repeats`` times (ABBA order) and the medians are compared
  (target: v3 >= 0.9x v4). Also the time to open (metadata, ref, view resolution).
* convert: rows/s of ``lakedet convert`` (data + views + metadata) and of ``deeplake.convert``
  alone on the same source, alternating.

The machine's load average is recorded beside the figures (shared machines are noisy: ratios
measured in the same run count, not absolute rates).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from loader import PIPELINES, machine, table, write_results  # noqa: E402

BATCH = 8
CLASSES = ("box", "disc", "bar")

#: Run by the Deep Lake 3 Python: writes N rows, one commit, a saved view of the even rows.
WRITE_V3 = r'''
import sys, numpy as np, deeplake
path, n = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(0)
ds = deeplake.empty(path, overwrite=True, verbose=False)
with ds:
    ds.create_tensor("images", htype="image", sample_compression="jpeg")
    ds.create_tensor("boxes", htype="bbox", coords={"type": "pixel", "mode": "LTWH"})
    ds.create_tensor("labels", htype="class_label", class_names=["box", "disc", "bar"])
    for i in range(n):
        coarse = rng.integers(30, 220, (6, 8, 3)).astype(np.uint8)
        img = np.kron(coarse, np.ones((40, 40, 1), np.uint8))
        img = np.clip(img.astype(np.int16) + rng.integers(-20, 21, img.shape), 0, 255).astype(np.uint8)
        boxes, labels = [], []
        for _ in range(int(rng.integers(1, 7))):
            w, h = int(rng.integers(12, 100)), int(rng.integers(12, 80))
            x, y = int(rng.integers(0, 320 - w)), int(rng.integers(0, 240 - h))
            img[y:y + h, x:x + w] = rng.integers(0, 256, 3)
            boxes.append([x, y, w, h]); labels.append(int(rng.integers(0, 3)))
        ds.append({"images": img, "boxes": np.array(boxes, np.float32), "labels": np.array(labels, np.uint32)})
ds.commit("%d rows" % n)
ds[list(range(0, n, 2))].save_view(id="even", message="every second row", verbose=False)
print(deeplake.__version__)
'''


def make_data(root: Path, n: int, dl3_python: str) -> dict:
    """The v3 dataset (written by Deep Lake 3) and its v4 copy (``lakedet convert``), reused when present."""
    v3, v4, done = root / f"v3-{n}", root / f"v4-{n}", root / f"complete-{n}"
    if not done.exists():
        shutil.rmtree(v3, ignore_errors=True)
        shutil.rmtree(v4, ignore_errors=True)
        root.mkdir(parents=True, exist_ok=True)
        if not Path(dl3_python).exists():
            raise SystemExit(f"--dl3-python {dl3_python}: no such Python; make one with `python3 -m venv /tmp/dl3 && "
                             "/tmp/dl3/bin/pip install \"deeplake<4\" \"numpy<2\" pillow`")
        out = subprocess.run([dl3_python, "-W", "ignore", "-c", WRITE_V3, str(v3), str(n)], capture_output=True,
                             text=True)
        if out.returncode:
            raise RuntimeError(f"writing the v3 dataset failed:\n{out.stderr[-3000:]}")
        from lakedet.tools.convert import convert_deeplake3

        convert_deeplake3(str(v3), str(v4), progress=None)
        done.write_text(out.stdout.strip().splitlines()[-1])
    return dict(v3=str(v3), v4=str(v4), dl3_version=done.read_text().strip())


def measure(path: str, view: str | None, workers: int, epochs: int) -> dict:
    """Open time and median images/s of ``epochs`` passes, in this (fresh) process."""
    import lakedet  # noqa: F401  (registers DeepLakeDetDataset and the transforms)
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner
    from mmengine.utils.dl_utils import set_multi_processing

    from loader import epoch_rates

    init_default_scope("mmdet")
    set_multi_processing(mp_start_method="fork", opencv_num_threads=0)
    from lakedet.source import SourceSpec, open_source

    started = time.perf_counter()
    opened = open_source(SourceSpec(path, view=view))
    open_s = time.perf_counter() - started
    rows = len(opened)
    del opened
    cfg = dict(batch_size=BATCH, num_workers=workers, persistent_workers=workers > 0,
               sampler=dict(type="DefaultSampler", shuffle=True, seed=0), collate_fn=dict(type="pseudo_collate"),
               dataset=dict(type="DeepLakeDetDataset", deeplake_path=path, deeplake_view_id=view,
                            deeplake_dataloader_type="c++", pipeline=PIPELINES["seed"]))
    loader = Runner.build_dataloader(cfg, seed=0)
    return dict(open_s=open_s, rows=rows, img_per_s=statistics.median(epoch_rates(loader, epochs)))


def measure_in_subprocess(path: str, view: str | None, workers: int, epochs: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--measure", path, view or "-", str(workers), "--epochs",
                          str(epochs)], capture_output=True, text=True, check=False)
    if out.returncode:
        raise RuntimeError(f"measuring {path} view={view} workers={workers} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def convert_rates(v3: str, root: Path, repeats: int) -> dict:
    """Rows/s of ``lakedet convert`` and of ``deeplake.convert`` alone (latest commit), alternating."""
    import deeplake

    from lakedet.tools.convert import convert_deeplake3
    from lakedet.source.deeplake3 import read_info
    from lakedet.source import SourceSpec

    info = read_info(SourceSpec(v3))
    source = f"{v3}@{info.latest_commit('main')}"
    times = {"lakedet convert": [], "deeplake.convert": []}
    rows = 0
    for repeat in range(repeats):
        for name in (list(times) if repeat % 2 == 0 else list(times)[::-1]):
            dest = root / "convert-out"
            shutil.rmtree(dest, ignore_errors=True)
            started = time.perf_counter()
            if name == "deeplake.convert":
                deeplake.convert(source, str(dest))
            else:
                rows = convert_deeplake3(v3, str(dest), progress=None).rows
            times[name].append(time.perf_counter() - started)
            shutil.rmtree(dest, ignore_errors=True)
    return {name: dict(seconds=round(statistics.median(t), 3), rows_per_s=round(rows / statistics.median(t), 1))
            for name, t in times.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1000, help="images (default 1000)")
    parser.add_argument("--epochs", type=int, default=3, help="passes per measurement; the median counts")
    parser.add_argument("--repeats", type=int, default=2, help="alternations of v3 and v4 per case")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--dl3-python", default=os.environ.get("LAKEDET_DL3_PYTHON", "/tmp/dl3/bin/python"),
                        help="a Python with Deep Lake 3 (writes the v3 data)")
    parser.add_argument("--data", default=str(HERE / ".data" / "v3"), help="where the benchmark data is kept")
    parser.add_argument("--out", default=str(HERE / "results" / "v3.json"))
    parser.add_argument("--measure", nargs=3, metavar=("PATH", "VIEW", "WORKERS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        path, view, workers = args.measure
        print(json.dumps(measure(path, None if view == "-" else view, int(workers), args.epochs)))
        return 0

    root = Path(args.data)
    load_before = os.getloadavg()
    print(f"machine: {machine()}; load average {load_before[0]:.2f}")
    print(f"building / reusing {args.n} rows written by Deep Lake 3 under {root} ...", flush=True)
    data = make_data(root, args.n, args.dl3_python)
    rows = []
    for view in (None, "even"):
        for workers in args.workers:
            found = {"v3": [], "v4": []}
            for repeat in range(args.repeats):  # ABBA: neither format always runs second (load drifts)
                for fmt in (("v4", "v3") if repeat % 2 == 0 else ("v3", "v4")):
                    found[fmt].append(measure_in_subprocess(data[fmt], view, workers, args.epochs))
            v3_rate = statistics.median(r["img_per_s"] for r in found["v3"])
            v4_rate = statistics.median(r["img_per_s"] for r in found["v4"])
            rows.append(dict(selection=view or "all rows", workers=workers, rows=found["v3"][0]["rows"],
                             v4_img_per_s=round(v4_rate, 1), v3_img_per_s=round(v3_rate, 1),
                             ratio=round(v3_rate / v4_rate, 3),
                             v4_runs=[round(r["img_per_s"], 1) for r in found["v4"]],
                             v3_runs=[round(r["img_per_s"], 1) for r in found["v3"]],
                             v4_open_s=round(statistics.median(r["open_s"] for r in found["v4"]), 3),
                             v3_open_s=round(statistics.median(r["open_s"] for r in found["v3"]), 3)))
            print(f"  {rows[-1]['selection']:8s} workers={workers}: v4 {v4_rate:6.1f} img/s, v3 in place "
                  f"{v3_rate:6.1f} img/s ({v3_rate / v4_rate:.2f}x)", flush=True)
    print("convert ...", flush=True)
    converts = convert_rates(data["v3"], root, args.repeats)
    load_after = os.getloadavg()
    result = dict(machine=machine(), load_average_before=[round(x, 2) for x in load_before],
                  load_average_after=[round(x, 2) for x in load_after], images=args.n, image_size="320x240",
                  batch_size=BATCH, pipeline="seed", epochs=args.epochs, repeats=args.repeats,
                  deeplake3_version=data["dl3_version"], loader=rows, convert=converts,
                  min_ratio=min(r["ratio"] for r in rows), target_ratio=0.9)
    result["met"] = result["min_ratio"] >= 0.9
    print()
    print(table(["selection", "workers", "rows", "v4 img/s", "v3 img/s", "v3/v4", "v4 open s", "v3 open s"],
                [(r["selection"], r["workers"], r["rows"], r["v4_img_per_s"], r["v3_img_per_s"], r["ratio"],
                  r["v4_open_s"], r["v3_open_s"]) for r in rows]))
    print()
    print(table(["conversion", "seconds", "rows/s"], [(k, v["seconds"], v["rows_per_s"]) for k, v in converts.items()]))
    print(f"\nloader v3/v4: min {result['min_ratio']} (target >= 0.9: {'met' if result['met'] else 'NOT met'}); "
          f"load average {load_before[0]:.1f} -> {load_after[0]:.1f}")
    write_results(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
