"""JPEG decoding: ``simplejpeg`` (what lakedet uses) vs ``cv2.imdecode`` (what MMDetection uses).

One command (``python benchmarks/decode.py``) prints a table and writes
``benchmarks/results/decode.json``. The images are the loader benchmark's 640x480 JPEGs (quality
90, textured background, filled boxes). Cases, each decoding every image once per pass, single
threaded (OpenCV set to one thread, as lakedet's loader runs):

* ``cv2``: ``cv2.imdecode(bytes, IMREAD_COLOR)``, MMDetection's ``LoadImageFromFile``;
* ``simplejpeg``: ``simplejpeg.decode_jpeg(bytes, colorspace="BGR")``;
* ``lakedet``: ``lakedet.data.decode.decode_image`` (simplejpeg after a look at the EXIF header).

The cases alternate (ABC, then CBA, ...) for ``--repeats`` rounds; per case the median CPU time per
image and its spread over the rounds, and the paired ratio ``cv2 / simplejpeg`` of each round
(1.14 = simplejpeg 14 % faster, i.e. ``1 - simplejpeg / cv2`` = 12 % less time). Also checked: the
decoded pixels are identical for every image. CPU time (``time.process_time``) is what a busy
machine does not inflate; wall time is reported beside it, with the load average.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import loader as bench  # noqa: E402  (render_jpegs, machine, write_results, table)

CASES = ("cv2", "simplejpeg", "lakedet")


def decoders() -> dict:
    import cv2
    import simplejpeg

    from lakedet.data.decode import decode_image

    return {
        "cv2": lambda data: cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR),
        "simplejpeg": lambda data: simplejpeg.decode_jpeg(data, colorspace="BGR"),
        "lakedet": lambda data: decode_image(data, compressed=True),
    }


def one_pass(decode, images: list[bytes]) -> tuple[float, float]:
    """CPU and wall seconds of decoding every image once."""
    cpu, wall = time.process_time(), time.perf_counter()
    for data in images:
        decode(data)
    return time.process_time() - cpu, time.perf_counter() - wall


def jpegs(n: int, width: int = 640, height: int = 480) -> list[bytes]:
    return [data for data, _, _ in bench.render_jpegs(n, width, height, seed=0)]


def main(argv=None) -> int:
    import cv2

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="distinct images (default 200)")
    parser.add_argument("--passes", type=int, default=3, help="passes over the images per case and round")
    parser.add_argument("--repeats", type=int, default=7, help="rounds, the cases alternating")
    parser.add_argument("--out", default=str(HERE / "results" / "decode.json"))
    args = parser.parse_args(argv)
    cv2.setNumThreads(1)
    images = jpegs(args.n)
    decode = decoders()
    identical = sum(np.array_equal(decode["cv2"](d), decode["simplejpeg"](d)) for d in images)
    for name in CASES:  # warm-up: libraries loaded, caches filled
        one_pass(decode[name], images[:20])
    load_before = os.getloadavg()
    runs = {name: [] for name in CASES}
    for round_ in range(args.repeats):
        for name in (CASES if round_ % 2 == 0 else CASES[::-1]):
            cpu, wall = map(sum, zip(*(one_pass(decode[name], images) for _ in range(args.passes))))
            count = args.n * args.passes
            runs[name].append(dict(cpu_ms_per_img=cpu / count * 1000, wall_ms_per_img=wall / count * 1000))
    load_after = os.getloadavg()
    cases = {}
    for name, rows in runs.items():
        cpu = [r["cpu_ms_per_img"] for r in rows]
        wall = [r["wall_ms_per_img"] for r in rows]
        cases[name] = dict(cpu_ms_per_img=round(statistics.median(cpu), 3),
                           cpu_ms_per_img_spread=[round(min(cpu), 3), round(max(cpu), 3)],
                           wall_ms_per_img=round(statistics.median(wall), 3),
                           wall_ms_per_img_spread=[round(min(wall), 3), round(max(wall), 3)])
    ratios = [c["cpu_ms_per_img"] / s["cpu_ms_per_img"] for c, s in zip(runs["cv2"], runs["simplejpeg"])]
    lakedet_ratios = [c["cpu_ms_per_img"] / s["cpu_ms_per_img"] for c, s in zip(runs["cv2"], runs["lakedet"])]
    result = dict(
        machine=bench.machine(), load_average_before=load_before, load_average_after=load_after,
        command=f"python benchmarks/decode.py --n {args.n} --passes {args.passes} --repeats {args.repeats}",
        images=dict(count=args.n, width=640, height=480, quality=90,
                    mean_kb=round(sum(map(len, images)) / len(images) / 1000, 1)),
        identical_pixels=f"{identical}/{args.n}", cases=cases,
        cv2_vs_simplejpeg_cpu=round(statistics.median(ratios), 3),
        cv2_vs_simplejpeg_cpu_spread=[round(min(ratios), 3), round(max(ratios), 3)],
        simplejpeg_time_saved=round(1 - 1 / statistics.median(ratios), 3),
        cv2_vs_lakedet_cpu=round(statistics.median(lakedet_ratios), 3),
        cv2_vs_lakedet_cpu_spread=[round(min(lakedet_ratios), 3), round(max(lakedet_ratios), 3)],
        raw=runs)
    print(f"machine: {result['machine']}; load average {load_before} -> {load_after}")
    print(f"identical pixels (cv2 vs simplejpeg): {result['identical_pixels']}")
    print(bench.table(["case", "CPU ms/img (median)", "spread", "wall ms/img (median)", "spread"],
                      [(n, c["cpu_ms_per_img"], c["cpu_ms_per_img_spread"], c["wall_ms_per_img"],
                        c["wall_ms_per_img_spread"]) for n, c in cases.items()]))
    print(f"cv2 / simplejpeg CPU time: {result['cv2_vs_simplejpeg_cpu']} (rounds: {result['cv2_vs_simplejpeg_cpu_spread']}); "
          f"cv2 / lakedet's decode_image: {result['cv2_vs_lakedet_cpu']}")
    bench.write_results(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
