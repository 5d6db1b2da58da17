"""Error-analysis benchmark: lakedet's COCO matching vs pycocotools, and writing the match columns.

One command (``python benchmarks/errors.py``) prints a table and writes ``benchmarks/results/errors.json``.

* matching: ``match_image`` + ``class_pr`` over N images (3 classes, ~10 objects and ~30
  predictions per image, crowd regions) against pycocotools' ``COCOeval.evaluate`` +
  ``accumulate`` on the same boxes (area "all", one IoU threshold): the baseline, measured in the
  same run. The results are checked equal (AP per class).
* writing: the per-box and per-row columns of ``lakedet errors`` for N rows into a Deep Lake
  branch, as ``write_matches`` does (one slice per run of rows) against one assignment per row.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))


def make_set(images: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    data = []
    for _ in range(images):
        count = int(rng.integers(1, 20))
        xy = rng.uniform(0, 600, (count, 2))
        gt = np.concatenate([xy, xy + rng.uniform(8, 120, (count, 2))], 1)
        crowd = rng.random(count) < 0.05
        labels = rng.integers(0, 3, count)
        picks = rng.integers(0, count, 3 * count)
        preds = gt[picks] + rng.normal(0, 6, (len(picks), 4))
        preds[:, 2:] = np.maximum(preds[:, 2:], preds[:, :2] + 1)
        pred_labels = np.where(rng.random(len(picks)) < 0.9, labels[picks], rng.integers(0, 3, len(picks)))
        data.append((preds, pred_labels, rng.random(len(picks)).astype(np.float32), gt, labels, crowd))
    return data


def time_lakedet(data):
    from lakedet.evaluation.matching import class_pr, match_image

    start = time.perf_counter()
    matches = [match_image(p, pl, ps, g, gl, c) for p, pl, ps, g, gl, c in data]
    curves = class_pr([(m, d[1], d[2], d[4]) for m, d in zip(matches, data)], 3)
    return time.perf_counter() - start, [c.ap for c in curves]


def time_pycocotools(data):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    anns, dets = [], []
    for image, (p, pl, ps, g, gl, c) in enumerate(data):
        for box, label, crowd in zip(g, gl, c):
            anns.append(dict(id=len(anns) + 1, image_id=image, category_id=int(label), iscrowd=int(crowd),
                             bbox=[box[0], box[1], box[2] - box[0], box[3] - box[1]],
                             area=(box[2] - box[0]) * (box[3] - box[1])))
        for box, label, score in zip(p, pl, ps):
            dets.append(dict(image_id=image, category_id=int(label), score=float(score),
                             bbox=[box[0], box[1], box[2] - box[0], box[3] - box[1]]))
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = dict(info={}, licenses=[], images=[dict(id=i) for i in range(len(data))], annotations=anns,
                          categories=[dict(id=k) for k in range(3)])
        gt.createIndex()
        start = time.perf_counter()
        evaluator = COCOeval(gt, gt.loadRes(dets), "bbox")
        evaluator.params.iouThrs = np.array([0.5])
        evaluator.params.maxDets = [100]
        evaluator.params.areaRng, evaluator.params.areaRngLbl = [[0, 1e10]], ["all"]
        evaluator.evaluate()
        evaluator.accumulate()
        seconds = time.perf_counter() - start
    return seconds, [float(evaluator.eval["precision"][0, :, k, 0, 0].mean()) for k in range(3)]


def time_writes(rows: int):
    import deeplake
    from deeplake import types

    from lakedet.tools.predict import write_rows

    rng = np.random.default_rng(1)
    values = {row: rng.integers(0, 3, int(rng.integers(0, 30))).astype(np.uint8) for row in range(rows)}
    with tempfile.TemporaryDirectory() as folder:
        ds = deeplake.create(folder + "/ds")
        ds.add_column("x", types.Int32())
        ds.append({"x": np.zeros(rows, np.int32)})
        ds.commit("rows")
        seconds = {}
        for name in ("sliced", "per_row"):
            ds.add_column(name, types.ClassLabel(types.Array("uint8", dimensions=1)))
            start = time.perf_counter()
            if name == "sliced":
                write_rows(ds[name], values)
            else:
                for row, value in values.items():
                    ds[name][row] = value
            seconds[name] = time.perf_counter() - start
        ds.commit("written")
        for row in range(0, rows, max(1, rows // 50)):
            assert np.array_equal(np.asarray(ds["sliced"][row]), values[row])
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--rows", type=int, default=20000)
    args = parser.parse_args()
    data = make_set(args.images)
    ours, our_ap = time_lakedet(data)
    theirs, their_ap = time_pycocotools(data)
    assert np.allclose(our_ap, their_ap, atol=1e-12), (our_ap, their_ap)
    writes = time_writes(args.rows)
    boxes = sum(len(d[0]) + len(d[3]) for d in data)
    table = [
        ("matching + AP, lakedet", f"{args.images} images, {boxes} boxes", ours),
        ("matching + AP, pycocotools (baseline)", f"{args.images} images, {boxes} boxes", theirs),
        ("write a per-box column, one slice per run", f"{args.rows} rows", writes["sliced"]),
        ("write a per-box column, one row at a time (baseline)", f"{args.rows} rows", writes["per_row"]),
    ]
    width = max(len(t[0]) for t in table)
    print(f"{'measure'.ljust(width)} | {'size'.ljust(28)} | seconds")
    for name, size, seconds in table:
        print(f"{name.ljust(width)} | {size.ljust(28)} | {seconds:.3f}")
    ratios = dict(matching_lakedet_over_pycocotools=ours / theirs,
                  writing_per_row_over_sliced=writes["per_row"] / writes["sliced"])
    print(", ".join(f"{k} {v:.2f}" for k, v in ratios.items()))
    out = HERE / "results" / "errors.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(dict(machine=dict(python=platform.python_version(), processor=platform.processor()),
                                   args=vars(args), rows=[dict(measure=n, size=s, seconds=v) for n, s, v in table],
                                   ratios=ratios, ap_equal=True), indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
