"""Synthetic detection datasets in Deep Lake: coloured shapes on textured backgrounds.

Used by ``lakedet demo`` and by the tests. Boxes are written LTWH in pixels (with the ``coords``
metadata), labels as a ClassLabel column with ``class_names``, images as JPEG bytes stored as
they are. Optional masks come as a BinaryMask or a Polygon column.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..schema.boxes import BoxMode, convert_boxes

__all__ = ["SHAPE_CLASSES", "SyntheticRow", "render_rows", "write_dataset", "make_shapes_dataset", "predictions_from_truth",
           "write_errors_branch"]

SHAPE_CLASSES = ("circle", "square", "triangle")


@dataclass
class SyntheticRow:
    """One image and its ground truth, as written (RGB pixels, LTWH pixel boxes)."""

    image: np.ndarray
    boxes: np.ndarray  # (N, 4) float32 LTWH
    labels: np.ndarray  # (N,) uint32
    polygons: list = field(default_factory=list)  # per instance: (K, 2) float32 points
    masks: np.ndarray | None = None  # (H, W, N) bool
    iscrowd: np.ndarray | None = None  # (N,) bool; None means no crowd instance


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    import cv2

    coarse = rng.integers(40, 200, (4, 4, 3), dtype=np.uint8)
    img = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC).astype(np.int16)
    img += rng.integers(-25, 26, (size, size, 3), dtype=np.int16)
    return np.clip(img, 0, 255).astype(np.uint8)


def _shape_polygon(label: int, x: float, y: float, s: float) -> np.ndarray:
    if label == 0:  # circle, as a 24-gon
        angles = np.linspace(0, 2 * np.pi, 24, endpoint=False)
        r = s / 2
        return np.stack([x + r + r * np.cos(angles), y + r + r * np.sin(angles)], 1)
    if label == 1:
        return np.array([[x, y], [x + s, y], [x + s, y + s], [x, y + s]], dtype=np.float64)
    return np.array([[x + s / 2, y], [x + s, y + s], [x, y + s]], dtype=np.float64)


def render_rows(n: int, size: int = 128, seed: int = 0, max_objects: int = 3,
                min_side: int = 24, max_side: int = 60, empty_every: int = 0,
                grayscale: bool = False) -> list[SyntheticRow]:
    """Draw ``n`` images with 1..max_objects shapes each (every ``empty_every``-th image has none)."""
    import cv2

    rng = np.random.default_rng(seed)
    max_side = min(max_side, size - 1)
    min_side = min(min_side, max_side)
    rows = []
    for i in range(n):
        img = _background(rng, size)
        count = 0 if empty_every and i % empty_every == empty_every - 1 else int(rng.integers(1, max_objects + 1))
        boxes, labels, polygons, masks = [], [], [], []
        for _ in range(count):
            label = int(rng.integers(0, len(SHAPE_CLASSES)))
            s = float(rng.integers(min_side, max_side + 1))
            x, y = (float(v) for v in rng.integers(0, size - int(s), 2))
            poly = _shape_polygon(label, x, y, s)
            colour = tuple(int(c) for c in rng.integers(0, 256, 3))
            mask = np.zeros((size, size), np.uint8)
            cv2.fillPoly(mask, [np.round(poly).astype(np.int32)], 1)
            img[mask.astype(bool)] = colour
            x1, y1 = poly.min(0)
            x2, y2 = poly.max(0)
            boxes.append(convert_boxes([[x1, y1, x2, y2]], BoxMode.LTRB, BoxMode.LTWH)[0].tolist())
            labels.append(label)
            polygons.append(poly.astype(np.float32))
            masks.append(mask.astype(bool))
        if grayscale:
            img = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)[:, :, None]  # Deep Lake images are HxWxC
        rows.append(SyntheticRow(
            image=img, boxes=np.asarray(boxes, np.float32).reshape(-1, 4),
            labels=np.asarray(labels, np.uint32), polygons=polygons,
            masks=np.stack(masks, -1) if masks else np.zeros((size, size, 0), bool)))
    return rows


def encode_jpeg(image: np.ndarray, quality: int = 90) -> bytes:
    """JPEG bytes of an RGB (or grayscale) image."""
    import cv2

    bgr = image if image.ndim == 2 or image.shape[2] == 1 else cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return buf.tobytes()


def write_dataset(path: str, rows: list[SyntheticRow], classes=SHAPE_CLASSES, masks: str | None = None,
                  image_column: str = "images", boxes_column: str = "boxes",
                  labels_column: str = "labels", coords: dict | None = None,
                  jpeg: bool = True, crowd: bool = False, message: str = "synthetic shapes",
                  creds: dict | None = None):
    """Create a Deep Lake dataset at ``path`` holding ``rows``; return it (writable, committed).

    Args:
        masks: None, ``"binary"`` (BinaryMask column ``masks``) or ``"polygon"`` (Polygon ``polygons``).
        coords: the boxes column's ``coords`` metadata; default LTWH pixel. ``{}`` writes none.
        jpeg: store JPEG bytes (as they are); False stores raw RGB arrays (PNG column).
        crowd: add an ``iscrowd`` column (per-instance bool) from ``SyntheticRow.iscrowd``.
        creds: storage credentials for a remote ``path`` (``s3://`` ...), as Deep Lake takes them.
    """
    import deeplake
    from deeplake import types

    ds = deeplake.create(path, creds=creds) if creds else deeplake.create(path)
    ds.add_column(image_column, types.Image(dtype="uint8", sample_compression="jpeg" if jpeg else "png"))
    ds.add_column(boxes_column, types.BoundingBox(dtype="float32", format="ltwh", bbox_type="pixel"))
    ds.add_column(labels_column, types.ClassLabel(types.Array("uint32", dimensions=1)))
    if coords != {}:
        ds[boxes_column].metadata["coords"] = coords or {"mode": "LTWH", "type": "pixel"}
    if classes is not None:
        ds[labels_column].metadata["class_names"] = list(classes)
    if masks == "binary":
        ds.add_column("masks", types.BinaryMask(sample_compression="lz4"))
    elif masks == "polygon":
        ds.add_column("polygons", types.Polygon())
    if crowd:
        ds.add_column("iscrowd", types.Array("bool", dimensions=1))
    batch = 64
    for start in range(0, len(rows), batch):
        chunk = rows[start:start + batch]
        data = {
            image_column: [encode_jpeg(r.image) if jpeg else r.image for r in chunk],
            boxes_column: [r.boxes for r in chunk],
            labels_column: [r.labels for r in chunk],
        }
        if masks == "binary":
            data["masks"] = [r.masks for r in chunk]
        elif masks == "polygon":
            data["polygons"] = [r.polygons if r.polygons else np.zeros((0, 3, 2), np.float32) for r in chunk]
        if crowd:
            data["iscrowd"] = [np.zeros(len(r.boxes), bool) if r.iscrowd is None else np.asarray(r.iscrowd, bool)
                               for r in chunk]
        ds.append(data)
    ds.commit(message)
    return ds


def make_shapes_dataset(path: str, n: int, size: int = 128, seed: int = 0, **kwargs):
    """Render ``n`` shape images and write them to ``path``; return ``(dataset, rows)``."""
    render_keys = ("max_objects", "min_side", "max_side", "empty_every", "grayscale")
    rows = render_rows(n, size=size, seed=seed, **{k: kwargs.pop(k) for k in render_keys if k in kwargs})
    return write_dataset(path, rows, **kwargs), rows


def predictions_from_truth(rows: list[SyntheticRow], side: int = 1) -> dict:
    """Made-up predictions with known errors, no model: ``row -> RowPrediction``.

    Each row's boxes are found with scores 0.15, 0.35, ..., 0.95 in turn, except every third box
    (counted over all rows: the third, sixth ... with ``side`` 1, the first, fourth ... with 2),
    which is missed; odd rows (``side`` 1; even rows with 2) get a false-positive circle scored
    0.55 in the top-left corner.
    """
    from .predict import RowPrediction

    results, k = {}, 0
    for row, r in enumerate(rows):
        gt = convert_boxes(r.boxes, BoxMode.LTWH, BoxMode.LTRB, np.float32).reshape(-1, 4)
        boxes, labels, scores = [], [], []
        for box, label in zip(gt, r.labels):
            k += 1
            if (k + side - 1) % 3:
                boxes.append(box)
                labels.append(int(label))
                scores.append(0.15 + 0.2 * (k % 5))
        if row % 2 == side % 2:
            boxes.append([0, 0, 6, 6])
            labels.append(0)
            scores.append(0.55)
        results[row] = RowPrediction(np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(labels, np.int64),
                                     np.asarray(scores, np.float32), None, gt, r.labels.astype(np.int64),
                                     np.zeros(len(gt), bool))
    return results


def write_errors_branch(ds, name: str, rows: list[SyntheticRow], side: int = 1, classes=SHAPE_CLASSES) -> dict:
    """A branch ``name`` of the writable ``ds`` as ``lakedet errors`` writes it (``pred_*`` and match
    columns, one commit with its record at IoU 0.5), from ``predictions_from_truth(rows, side)``,
    which it returns."""
    from .error_analysis import evaluate_predictions, write_matches
    from .evaluated import with_record
    from .predict import write_predictions

    results = predictions_from_truth(rows, side)
    branch = ds.branch(name).open()
    write_predictions(branch, results, classes)
    write_matches(branch, results, evaluate_predictions(results, classes))
    branch.commit(with_record(f"lakedet errors (made up from the ground truth, side {side})",
                              dict(iou_thr=0.5, max_dets=100, classwise=True)))
    return results
