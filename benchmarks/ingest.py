"""Ingest benchmark: ``lakedet ingest coco`` at 2k and 20k images against plainly copying the JPEGs.

One command (``python benchmarks/ingest.py``) prints a table and writes ``benchmarks/results/ingest.json``.

Synthetic COCO-format sets (640x480 JPEGs, 5-9 polygon instances each, about 7) of each size are
written once under ``--data`` (the JPEGs are ``--distinct`` rendered images, hard-linked under
their file names: the files are real, the bytes repeat). Each measurement runs in its own process
(peak RSS is that process's ``ru_maxrss``):

* ``copy``: the baseline: read every JPEG file and append its bytes to a Deep Lake ``Image``
  column, in batches of ``lakedet.tools.ingest.BATCH``, committing every ``CHECKPOINT_ROWS`` rows as the
  ingest does (without commits Deep Lake keeps every row in memory);
* ``ingest``: ``lakedet ingest coco`` with its default options (every segmentation kept).

The two alternate ``--repeats`` times per size (the machine is shared: medians of throughput,
the largest peak RSS). Targets (issue #14): peak RSS of the 20k ingest <= 1.2x that of the 2k
ingest; ingest throughput >= 0.5x the copy's.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
WIDTH, HEIGHT = 640, 480
CLASSES = ("person", "car", "dog")


def _polygon(rng) -> list[float]:
    k = int(rng.integers(12, 40))
    cx, cy, r = rng.uniform(80, WIDTH - 80), rng.uniform(80, HEIGHT - 80), rng.uniform(15, 70)
    angles = np.sort(rng.uniform(0, 2 * np.pi, k))
    radii = r * rng.uniform(0.6, 1.0, k)
    points = np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], 1)
    return [round(float(v), 2) for v in points.reshape(-1)]


def make_set(root: Path, n: int, distinct: int, seed: int = 0) -> Path:
    """``root/instances.json`` + ``root/images/``; returns the annotation file."""
    import cv2

    ann_file = root / "instances.json"
    if ann_file.is_file():
        return ann_file
    rng = np.random.default_rng(seed)
    pool = root.parent / "pool"
    pool.mkdir(parents=True, exist_ok=True)
    for k in range(distinct):
        target = pool / f"{k}.jpg"
        if not target.is_file():
            coarse = rng.integers(0, 255, (6, 8, 3), dtype=np.uint8)
            img = cv2.resize(coarse, (WIDTH, HEIGHT), interpolation=cv2.INTER_CUBIC)
            img = np.clip(img.astype(np.int16) + rng.integers(-30, 31, img.shape), 0, 255).astype(np.uint8)
            cv2.imwrite(str(target), img, [cv2.IMWRITE_JPEG_QUALITY, 90])
    (root / "images").mkdir(parents=True, exist_ok=True)
    images, anns = [], []
    for i in range(n):
        name = f"{i:012d}.jpg"
        link = root / "images" / name
        if not link.exists():
            os.link(pool / f"{i % distinct}.jpg", link)
        images.append(dict(id=i + 1, file_name=name, height=HEIGHT, width=WIDTH))
        for _ in range(int(rng.integers(5, 10))):
            poly = _polygon(rng)
            xs, ys = poly[0::2], poly[1::2]
            anns.append(dict(id=len(anns) + 1, image_id=i + 1, category_id=int(rng.integers(1, 4)), iscrowd=0,
                             bbox=[min(xs), min(ys), round(max(xs) - min(xs), 2), round(max(ys) - min(ys), 2)],
                             area=1.0, segmentation=[poly]))
    # written compactly, as the real COCO files are
    ann_file.write_text(json.dumps(dict(images=images, annotations=anns,
                                        categories=[dict(id=k + 1, name=c) for k, c in enumerate(CLASSES)]),
                                   separators=(",", ":")))
    return ann_file


def run_copy(ann_file: str, dest: str) -> None:
    import deeplake
    from deeplake import types

    from lakedet.tools.ingest import BATCH, CHECKPOINT_ROWS

    images = Path(ann_file).parent / "images"
    names = sorted(p.name for p in images.iterdir())
    ds = deeplake.create(dest)
    ds.add_column("images", types.Image(dtype="uint8", sample_compression="jpeg"))
    ds.commit("schema")
    since = 0
    for start in range(0, len(names), BATCH):
        batch = names[start:start + BATCH]
        ds.append({"images": [(images / name).read_bytes() for name in batch]})
        since += len(batch)
        if since >= CHECKPOINT_ROWS:
            ds.commit("checkpoint")
            since = 0
    ds.commit("done")


def run_ingest(ann_file: str, dest: str) -> None:
    from lakedet.tools.ingest import ingest_coco

    ingest_coco(ann_file, Path(ann_file).parent / "images", dest)


def child(kind: str, ann_file: str, dest: str) -> None:
    import deeplake  # noqa: F401  (imports are not what is measured)

    import lakedet.tools.ingest  # noqa: F401

    shutil.rmtree(dest, ignore_errors=True)
    started = time.perf_counter()
    (run_copy if kind == "copy" else run_ingest)(ann_file, dest)
    seconds = time.perf_counter() - started
    print(json.dumps(dict(seconds=seconds, peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)))


def measure(kind: str, ann_file: Path, dest: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(HERE.parent / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, __file__, "--child", kind, str(ann_file), str(dest)], env=env,
                         capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"{kind} on {ann_file} failed:\n{out.stderr[-3000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    shutil.rmtree(dest, ignore_errors=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 20000])
    parser.add_argument("--distinct", type=int, default=500, help="distinct JPEGs rendered")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data", default="/tmp/lakedet-bench-ingest")
    parser.add_argument("--child", nargs=3, metavar=("KIND", "ANN", "DEST"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(*args.child)
    data = Path(args.data)
    results = []
    for n in args.sizes:
        ann_file = make_set(data / f"coco-{n}", n, args.distinct)
        instances = len(json.loads(ann_file.read_text())["annotations"])
        row = dict(images=n, instances=instances)
        runs = {"copy": [], "ingest": []}
        for _ in range(args.repeats):
            for kind in runs:
                runs[kind].append(measure(kind, ann_file, data / f"lake-{kind}-{n}"))
        for kind, measured in runs.items():
            row[f"{kind}_images_per_s"] = statistics.median(n / r["seconds"] for r in measured)
            row[f"{kind}_peak_rss_mb"] = max(r["peak_rss_mb"] for r in measured)
        row["throughput_ratio"] = row["ingest_images_per_s"] / row["copy_images_per_s"]
        results.append(row)
        print(f"{n} images: copy {row['copy_images_per_s']:.0f} img/s, ingest {row['ingest_images_per_s']:.0f} img/s "
              f"(peak RSS {row['copy_peak_rss_mb']:.0f} / {row['ingest_peak_rss_mb']:.0f} MB)", flush=True)
    print()
    print("| images | instances | copy img/s | ingest img/s | ingest / copy | copy peak RSS MB | ingest peak RSS MB |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['images']} | {r['instances']} | {r['copy_images_per_s']:.0f} | {r['ingest_images_per_s']:.0f} | "
              f"{r['throughput_ratio']:.2f} | {r['copy_peak_rss_mb']:.0f} | {r['ingest_peak_rss_mb']:.0f} |")
    summary = dict(results=results)
    if len(results) >= 2:
        summary["rss_ratio_largest_to_smallest"] = results[-1]["ingest_peak_rss_mb"] / results[0]["ingest_peak_rss_mb"]
        summary["min_throughput_ratio"] = min(r["throughput_ratio"] for r in results)
        print(f"\npeak RSS {results[-1]['images']} / {results[0]['images']} images: "
              f"{summary['rss_ratio_largest_to_smallest']:.2f} (target <= 1.2); "
              f"ingest / copy throughput: {summary['min_throughput_ratio']:.2f} at worst (target >= 0.5)")
    summary["machine"] = dict(cpus=os.cpu_count(), python=platform.python_version(), processor=platform.processor())
    out = HERE / "results" / "ingest.json"
    out.write_text(json.dumps(summary, indent=2))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
