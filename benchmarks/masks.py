"""Mask layout benchmark: why ``lakedet ingest coco`` stores COCO segmentations as JSON text by default.

One command (``python benchmarks/masks.py``) prints a table and writes ``benchmarks/results/masks.json``.

The same N synthetic 640x480 annotations (7 instances per image, one of them a 2-part polygon,
12-40 points per polygon, coordinates with 2 decimals as in COCO) are stored in each candidate
Deep Lake layout, and for each the per-image cost of getting MMDetection's ``gt_masks`` is
measured, against MMDetection's own ``CocoDataset`` reading the same polygons from the JSON file:

* ``mmdet (JSON file)``: ``CocoDataset.get_data_info`` (the parsed file, unpickled per sample)
  + ``LoadAnnotations(with_mask=True)`` (pycocotools rasterises the polygons);
* ``segmentation (JSON text)``, the default: read the row's Text value, ``json.loads``, then the
  same ``LoadAnnotations``: the polygons / RLE MMDetection would have read from the file;
* ``masks (BinaryMask lz4)``: ``--masks binary``: read the H x W x N array, no rasterising;
* ``polygons (Polygon, float32)``: ``--masks polygon``, one polygon per instance only; float32
  coordinates rasterise differently from the file's float64 ones at some pixel boundaries.

"read+decode" is the layout's own part (read, parse); "to gt_masks" includes the rasterising.
Bytes per instance: the column's files on disk divided by the instances.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
H, W, PER_IMAGE = 480, 640, 7


def _polygon(rng) -> list[float]:
    k = int(rng.integers(12, 40))
    cx, cy, r = rng.uniform(80, W - 80), rng.uniform(80, H - 80), rng.uniform(15, 70)
    angles = np.sort(rng.uniform(0, 2 * np.pi, k))
    radii = r * rng.uniform(0.6, 1.0, k)
    return [round(float(v), 2) for v in np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], 1).ravel()]


def _du(path: Path) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


def _timed(fn, n: int, repeats: int = 3) -> float:
    """Median over ``repeats`` passes of the microseconds per image of ``fn(i)`` for i < n."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        for i in range(n):
            fn(i)
        times.append((time.perf_counter() - started) / n * 1e6)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--data", default="/tmp/lakedet-bench-masks")
    args = parser.parse_args()
    import deeplake
    from deeplake import types
    from mmdet.datasets import CocoDataset
    from mmdet.datasets.transforms import LoadAnnotations

    from lakedet.schema.masks import segmentation_to_mask
    from lakedet.data.transforms import LoadDeepLakeAnnotations

    data = Path(args.data)
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows, images, anns = [], [], []
    for i in range(args.images):
        segs = [[_polygon(rng), _polygon(rng)] if k == 0 else [_polygon(rng)] for k in range(PER_IMAGE)]
        rows.append(segs)
        images.append(dict(id=i + 1, file_name=f"{i}.jpg", height=H, width=W))
        for seg in segs:
            xs = [v for p in seg for v in p[0::2]]
            ys = [v for p in seg for v in p[1::2]]
            anns.append(dict(id=len(anns) + 1, image_id=i + 1, category_id=1, iscrowd=0, area=1.0, segmentation=seg,
                             bbox=[min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]))
    (data / "ann.json").write_text(json.dumps(dict(images=images, annotations=anns, categories=[dict(id=1, name="x")])))
    instances = len(anns)

    layouts = {
        "segmentation (JSON text)": (types.Text(), lambda segs: json.dumps(segs, separators=(",", ":"))),
        "masks (BinaryMask lz4)": (types.BinaryMask(sample_compression="lz4"),
                                   lambda segs: np.stack([segmentation_to_mask(s, H, W) for s in segs], -1)),
        "polygons (Polygon, float32)": (types.Polygon(), lambda segs: [np.asarray(s[0], np.float32).reshape(-1, 2)
                                                                       for s in segs]),
    }
    columns = {}
    for name, (kind, convert) in layouts.items():
        path = data / name.split()[0]
        ds = deeplake.create(str(path))
        ds.add_column("x", kind)
        ds.commit("schema")
        empty = _du(path)
        for start in range(0, len(rows), 64):
            ds.append({"x": [convert(r) for r in rows[start:start + 64]]})
        ds.commit("rows")
        columns[name] = dict(bytes_per_instance=(_du(path) - empty) / instances)
        columns[name]["ds"] = deeplake.open_read_only(str(path))

    load = LoadAnnotations(with_bbox=False, with_label=False, with_mask=True)
    load_lake = LoadDeepLakeAnnotations(with_bbox=False, with_label=False, with_mask=True)
    mmdet = CocoDataset(ann_file=str(data / "ann.json"), data_prefix=dict(img=""), pipeline=[], metainfo=dict(classes=("x",)))
    results = {}

    def mmdet_decode(i):
        return mmdet.get_data_info(i)

    def mmdet_full(i):
        info = mmdet.get_data_info(i)
        info["ori_shape"] = (info["height"], info["width"])
        return load(info)["gt_masks"]

    text = columns["segmentation (JSON text)"]["ds"]["x"]

    def text_decode(i):
        return [dict(bbox=[0, 0, 1, 1], bbox_label=0, ignore_flag=0, mask=s) for s in json.loads(text[i])]

    def text_full(i):
        return load(dict(instances=text_decode(i), ori_shape=(H, W)))["gt_masks"]

    binary = columns["masks (BinaryMask lz4)"]["ds"]["x"]

    def binary_decode(i):
        return np.asarray(binary[i])

    def binary_full(i):
        masks = binary_decode(i)
        return load_lake(dict(instances=[dict(bbox=[0, 0, 1, 1], bbox_label=0, ignore_flag=0)] * masks.shape[2],
                              deeplake_binary_masks=masks, ori_shape=(H, W)))["gt_masks"]

    polygon = columns["polygons (Polygon, float32)"]["ds"]["x"]

    def polygon_decode(i):
        return [dict(bbox=[0, 0, 1, 1], bbox_label=0, ignore_flag=0, mask=[np.asarray(p, np.float64).ravel().tolist()])
                for p in polygon[i]]

    def polygon_full(i):
        return load(dict(instances=polygon_decode(i), ori_shape=(H, W)))["gt_masks"]

    json_bytes = (data / "ann.json").stat().st_size
    results["mmdet (JSON file)"] = dict(bytes_per_instance=json_bytes / instances, read_decode_us=_timed(mmdet_decode, args.images),
                                        to_gt_masks_us=_timed(mmdet_full, args.images))
    for name, decode, full in (("segmentation (JSON text)", text_decode, text_full),
                               ("masks (BinaryMask lz4)", binary_decode, binary_full),
                               ("polygons (Polygon, float32)", polygon_decode, polygon_full)):
        results[name] = dict(bytes_per_instance=columns[name]["bytes_per_instance"],
                             read_decode_us=_timed(decode, args.images), to_gt_masks_us=_timed(full, args.images))
    # exactness against the file: the default's masks are the file's; float32 polygons are not always
    differing_pixels = 0
    for i in range(args.images):
        # instance 0 is the 2-part polygon a Polygon column cannot hold: compare the single polygons
        differing_pixels += int((mmdet_full(i).masks[1:] != polygon_full(i).masks[1:]).sum())
        assert (mmdet_full(i).masks == text_full(i).masks).all()
    results["polygons (Polygon, float32)"]["pixels_differing_from_the_file"] = differing_pixels
    print(f"{args.images} images of {W}x{H}, {PER_IMAGE} instances each ({instances} instances)\n")
    print("| layout | bytes / instance | read+decode us / image | to gt_masks us / image |")
    print("|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {r['bytes_per_instance']:.0f} | {r['read_decode_us']:.0f} | {r['to_gt_masks_us']:.0f} |")
    print(f"\nfloat32 polygons: {differing_pixels} mask pixels of single-polygon instances differ from the "
          "file's masks (the JSON text layout: 0)")
    out = HERE / "results" / "masks.json"
    out.write_text(json.dumps(dict(images=args.images, instances=instances, results=results,
                                   machine=dict(cpus=os.cpu_count(), python=platform.python_version())), indent=2))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
