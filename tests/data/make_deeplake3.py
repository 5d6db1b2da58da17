"""Writes the Deep Lake 3 test datasets, and what Deep Lake 3 itself reads back from them.

Run with Deep Lake 3 (it cannot share an environment with Deep Lake 4), from the repository root:
    python3.11 -m venv /tmp/dl3 && /tmp/dl3/bin/pip install "deeplake<4" "numpy<2" pillow
    /tmp/dl3/bin/python tests/data/make_deeplake3.py
(written with deeplake 3.9.52). Writes, next to this script:

* ``deeplake3_coco``: 64x48 JPEGs, pixel LTWH ``boxes``, ``categories`` (class_label), ``masks``
  (binary_mask), ``iscrowd``; row 3 is grayscale, rows 4 and 8 have no boxes. History: commit 1
  (6 rows), commit 2 (4 rows appended, row 1 relabelled), a branch ``relabel`` from commit 2 (two
  rows relabelled, one appended, committed), saved views ``first_rows`` (rows 0, 2, 3 at commit 1)
  and ``dogs`` (rows with a dog at commit 2), then 2 rows appended to ``main`` and left
  uncommitted (the v3 HEAD).
* ``deeplake3_shapes``: 8 rows of fractional CCWH ``boxes``, ``labels`` (class_label) and
  ``polygons``, one commit.
* ``deeplake3_expected.json``: for each dataset and selection (the default, each commit id, the
  branch, each view, a query over a view), the rows as Deep Lake 3 reads them: source row ids,
  boxes, labels, crowd flags, mask pixel counts, polygons, image shapes and the MD5 of the stored
  JPEG bytes. The tests compare lakedet's reading (through Deep Lake 4) with this, row for row.
"""

import hashlib
import json
import os
import shutil
from pathlib import Path

import deeplake
import numpy as np

HERE = Path(__file__).parent
W, H = 64, 48
CLASSES = ["cat", "dog", "bird"]
#: The query run over the ``dogs`` view in the tests; ``QUERY_KEEPS`` is the same selection in Python.
VIEW_QUERY = "SELECT * WHERE shape(boxes)[0] >= 3"


def QUERY_KEEPS(row):
    return len(row["boxes"]) >= 3


rng = np.random.default_rng(13)
#: More rows than any dataset here has (a view's list index ignores it).
SOURCE_ROWS = 1000


def coco_row(i: int, count: int, gray: bool = False, crowd_at: int | None = None):
    """An image with ``count`` filled rectangles (one per instance, colour by class)."""
    pixels = rng.integers(0, 60, (H, W, 3), dtype=np.uint8)
    boxes, labels, masks = [], [], np.zeros((H, W, count), bool)
    for k in range(count):
        w, h = int(rng.integers(10, 26)), int(rng.integers(8, 20))
        x, y = int(rng.integers(0, W - w)), int(rng.integers(0, H - h))
        label = int(rng.integers(0, len(CLASSES)))
        pixels[y:y + h, x:x + w] = [(220, 40, 40), (40, 220, 40), (40, 40, 220)][label]
        masks[y:y + h, x:x + w, k] = True
        boxes.append([x, y, w, h])
        labels.append(label)
    if gray:
        pixels = pixels.mean(axis=2, keepdims=True).astype(np.uint8)
    return {"images": pixels,
            "boxes": np.array(boxes, np.float32).reshape(-1, 4),
            "categories": np.array(labels, np.uint32),
            "masks": masks,
            "iscrowd": np.array([k == crowd_at for k in range(count)], bool)}


def write_coco(path: Path) -> dict:
    shutil.rmtree(path, ignore_errors=True)
    ds = deeplake.empty(str(path), verbose=False)
    with ds:
        ds.create_tensor("images", htype="image", sample_compression="jpeg")
        ds.create_tensor("boxes", htype="bbox", coords={"type": "pixel", "mode": "LTWH"})
        ds.create_tensor("categories", htype="class_label", class_names=CLASSES)
        ds.create_tensor("masks", htype="binary_mask", sample_compression="lz4")
        ds.create_tensor("iscrowd", dtype="bool")
        for i, count in enumerate([2, 1, 3, 2, 0, 1]):
            ds.append(coco_row(i, count, gray=(i == 3), crowd_at=(1 if i == 2 else None)))
    first = ds.commit("first 6 rows")
    with ds:
        for i, count in enumerate([2, 3, 0, 1], start=6):
            ds.append(coco_row(i, count))
        ds.categories[1] = np.array([(int(ds.categories[1].numpy()[0]) + 1) % 3], np.uint32)
    second = ds.commit("4 more rows, row 1 relabelled")
    ds.checkout("relabel", create=True)
    with ds:
        for row in (0, 5):
            ds.categories[row] = (ds.categories[row].numpy().astype(np.int64) + 1).astype(np.uint32) % 3
        ds.append(coco_row(10, 2))
    relabel = ds.commit("relabel rows 0 and 5, one row more")
    ds.checkout("main")
    # saved views: at commit 1 (a slice of rows) and at commit 2 (a filter); both at committed versions
    ds.checkout(first)
    ds[[0, 2, 3]].save_view(id="first_rows", message="rows 0, 2, 3 of commit 1", verbose=False)
    ds.checkout("main")
    dogs = [i for i in range(len(ds)) if 1 in ds.categories[i].numpy().reshape(-1).tolist()]
    ds[dogs].save_view(id="dogs", message="rows with a dog", verbose=False)
    with ds:  # the uncommitted HEAD of main
        for i, count in enumerate([1, 2], start=10):
            ds.append(coco_row(i, count))
    ds.flush()
    return {"commits": [first, second], "branch_commit": relabel, "dogs": dogs}


def write_shapes(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
    ds = deeplake.empty(str(path), verbose=False)
    with ds:
        ds.create_tensor("images", htype="image", sample_compression="jpeg")
        ds.create_tensor("boxes", htype="bbox", coords={"type": "fractional", "mode": "CCWH"})
        ds.create_tensor("labels", htype="class_label", class_names=["circle", "square", "triangle"])
        ds.create_tensor("polygons", htype="polygon")
        for i in range(8):
            pixels = rng.integers(0, 50, (H, W, 3), dtype=np.uint8)
            boxes, labels, polygons = [], [], []
            for _ in range(1 + i % 2):
                w, h = int(rng.integers(12, 24)), int(rng.integers(10, 20))
                x, y = int(rng.integers(0, W - w)), int(rng.integers(0, H - h))
                label = int(rng.integers(0, 3))
                pixels[y:y + h, x:x + w] = [(230, 60, 60), (60, 230, 60), (60, 60, 230)][label]
                boxes.append([(x + w / 2) / W, (y + h / 2) / H, w / W, h / H])
                labels.append(label)
                polygons.append(np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], np.float32))
            ds.append({"images": pixels, "boxes": np.array(boxes, np.float32),
                       "labels": np.array(labels, np.uint32), "polygons": polygons})
    ds.commit("8 rows")


def rows_of(view) -> dict:
    """What Deep Lake 3 reads: every row of ``view`` (columns that exist)."""
    out = {"rows": [], "boxes": [], "labels": [], "image_shapes": [], "image_md5": []}
    names = set(view.tensors)
    label_column = "categories" if "categories" in names else "labels"
    if "iscrowd" in names:
        out["iscrowd"] = []
    if "masks" in names:
        out["mask_pixels"] = []
    if "polygons" in names:
        out["polygons"] = []
    # a view's rows in its source (the index Deep Lake 3 keeps); a dataset's are 0..n-1
    out["rows"] = (list(range(len(view))) if view.index.is_trivial()
                   else [int(r) for r in view.index.values[0].indices(SOURCE_ROWS)])
    for i in range(len(view)):
        out["boxes"].append(view.boxes[i].numpy().reshape(-1, 4).astype(float).round(6).tolist())
        out["labels"].append(view[label_column][i].numpy().reshape(-1).astype(int).tolist())
        image = view.images[i]
        out["image_shapes"].append(list(image.shape))
        out["image_md5"].append(hashlib.md5(image.tobytes()).hexdigest())
        if "iscrowd" in out:
            out["iscrowd"].append(view.iscrowd[i].numpy().reshape(-1).astype(int).tolist())
        if "mask_pixels" in out:
            masks = view.masks[i].numpy()
            out["mask_pixels"].append(masks.reshape(-1, masks.shape[-1]).sum(0).astype(int).tolist()
                                      if masks.size else [])
        if "polygons" in out:
            out["polygons"].append([np.asarray(p).round(4).tolist() for p in view.polygons[i].numpy()])
    return out


def expected_coco(path: Path, made: dict) -> dict:
    found = {}
    ds = deeplake.load(str(path), read_only=True, verbose=False)
    found["default"] = rows_of(ds)  # the v3 HEAD of main, uncommitted rows included
    for commit in made["commits"]:
        ds.checkout(commit)
        found[commit] = rows_of(ds)
    ds.checkout("relabel")
    found["relabel"] = rows_of(ds)
    ds.checkout("main")
    for view_id in ("first_rows", "dogs"):
        view = ds.load_view(view_id)
        found[f"view:{view_id}"] = rows_of(view)
    dogs = found["view:dogs"]
    keep = [k for k in range(len(dogs["rows"])) if QUERY_KEEPS({"boxes": dogs["boxes"][k]})]
    found["view:dogs+query"] = {key: [values[k] for k in keep] for key, values in dogs.items()}
    found["view:dogs+query"]["view_rows"] = keep  # positions in the view
    return found


def main() -> None:
    # relative paths: Deep Lake 3 records the path it was given in its saved views ("source-dataset")
    os.chdir(HERE)
    coco, shapes = Path("deeplake3_coco"), Path("deeplake3_shapes")
    made = write_coco(coco)
    write_shapes(shapes)
    info = json.loads((coco / "version_control_info.json").read_text())
    expected = {
        "deeplake_version": deeplake.__version__,
        "view_query": VIEW_QUERY,
        "coco": {"classes": CLASSES, "commits": made["commits"], "branch": "relabel",
                 "branch_commit": made["branch_commit"], "views": ["first_rows", "dogs"],
                 "branches": sorted(info["branches"]),
                 "selections": expected_coco(coco, made)},
    }
    ds = deeplake.load(str(shapes), read_only=True, verbose=False)
    expected["shapes"] = {"classes": ["circle", "square", "triangle"], "selections": {"default": rows_of(ds)}}
    for lock in list(coco.rglob("*.lock")) + list(shapes.rglob("*.lock")):
        lock.unlink()
    Path("deeplake3_expected.json").write_text(json.dumps(expected, indent=1) + "\n")
    print(f"wrote {HERE / coco}, {HERE / shapes} and deeplake3_expected.json with deeplake {deeplake.__version__}")


if __name__ == "__main__":
    main()
