"""The annotation columns of every row, read once, column-wise, into flat arrays.

At start-up a ``DeepLakeDetDataset`` reads only its boxes, labels and ignore flags (plus COCO
``area``, ``height`` / ``width`` and ``image_id`` where the dataset has them), in chunks of
``ANNOTATION_CHUNK`` rows, and checks them row by row: 100k rows cost a few MB and a fraction of
a second. Images and masks are read later, row by row, when the pipeline asks for them.
"""

from __future__ import annotations

import numpy as np

from ..errors import DataError
from ..schema.boxes import BoxFormat, BoxMode, convert_boxes
from ..schema.columns import TensorMap
from ..source.deadline import wait

__all__ = ["Annotations", "read_annotations", "ANNOTATION_CHUNK", "AREA_COLUMN", "SIZE_COLUMNS", "IMAGE_ID_COLUMN"]


class Annotations:
    """Boxes (pixel or fractional x1y1x2y2, float64), labels and ignore flags of every row: flat arrays
    + offsets; COCO ``area`` per instance and (height, width) per row where the dataset has them."""

    def __init__(self, boxes: np.ndarray, labels: np.ndarray, ignore: np.ndarray, offsets: np.ndarray,
                 area: np.ndarray | None = None, sizes: np.ndarray | None = None,
                 image_ids: np.ndarray | None = None):
        self.boxes, self.labels, self.ignore, self.offsets = boxes, labels, ignore, offsets
        self.area, self.sizes, self.image_ids = area, sizes, image_ids

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def row(self, row: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        start, stop = self.offsets[row], self.offsets[row + 1]
        return self.boxes[start:stop], self.labels[start:stop], self.ignore[start:stop]

    def count(self, row: int) -> int:
        return int(self.offsets[row + 1] - self.offsets[row])


#: Rows whose annotation columns are read at once: bounds the memory of reading 100k+ rows.
ANNOTATION_CHUNK = 8192


#: Per-instance COCO area, per-row image size and original image id columns, read when the dataset has them.
AREA_COLUMN, SIZE_COLUMNS, IMAGE_ID_COLUMN = "area", ("height", "width"), "image_id"


def _read_rows(ds, column: str, start: int, stop: int, remote: str | None):
    """``ds[column][start:stop]``; from remote storage (``remote``: its name, for errors) a bounded wait."""
    if remote is None:
        return ds[column][start:stop]
    return wait(ds[column].get_async(slice(start, stop)), f"rows {start}-{stop - 1}, column {column!r} of {remote!r}")


def read_annotations(ds, tensor_map: TensorMap, box_format: BoxFormat, remote: str | None = None) -> Annotations:
    """Read the box, label (and ignore) columns of every row, column-wise in chunks of rows, and
    check them row by row; also ``area`` (per instance), ``height`` / ``width`` and ``image_id``
    (per row) when the dataset has such columns. ``remote``: the URL of remote storage, whose
    reads are bounded in time.

    Raises:
        DataError: a row's boxes are not ``(N, 4)``, or its box, label, flag and area counts differ.
    """
    names = {c.name for c in ds.schema.columns}
    has_area, has_sizes = AREA_COLUMN in names, all(c in names for c in SIZE_COLUMNS)
    counts = np.zeros(len(ds), dtype=np.int64)
    flat_boxes, flat_labels, flat_ignore, flat_area = [], [], [], []
    sizes = np.zeros((len(ds), 2), np.int64) if has_sizes else None
    image_ids = np.zeros(len(ds), np.int64) if IMAGE_ID_COLUMN in names else None
    for start in range(0, len(ds), ANNOTATION_CHUNK):
        stop = min(len(ds), start + ANNOTATION_CHUNK)
        box_rows = _read_rows(ds, tensor_map.gt_bboxes, start, stop, remote)
        label_rows = _read_rows(ds, tensor_map.gt_labels, start, stop, remote)
        ignore_rows = _read_rows(ds, tensor_map.gt_ignore, start, stop, remote) if tensor_map.gt_ignore else None
        area_rows = _read_rows(ds, AREA_COLUMN, start, stop, remote) if has_area else None
        if sizes is not None:
            for k, column in enumerate(SIZE_COLUMNS):
                values = _integers(ds, column, start, stop, remote)
                sizes = None if values is None else sizes
                if sizes is not None:
                    sizes[start:stop, k] = values
        if image_ids is not None:
            values = _integers(ds, IMAGE_ID_COLUMN, start, stop, remote)
            image_ids = None if values is None else image_ids
            if image_ids is not None:
                image_ids[start:stop] = values
        boxes_chunk, labels_chunk, ignore_chunk = [], [], []
        for offset, (boxes, labels) in enumerate(zip(box_rows, label_rows)):
            row = start + offset
            boxes = np.asarray(boxes)
            labels = np.asarray(labels).reshape(-1)
            if boxes.size == 0:
                boxes = boxes.reshape(0, 4)
            if boxes.ndim != 2 or boxes.shape[1] != 4:
                raise DataError(f"row {row}, column {tensor_map.gt_bboxes!r}: boxes must have shape (N, 4), "
                                f"got {boxes.shape}")
            if len(boxes) != len(labels):
                raise DataError(f"row {row}: column {tensor_map.gt_bboxes!r} has {len(boxes)} boxes but "
                                f"column {tensor_map.gt_labels!r} has {len(labels)} labels; each box needs "
                                "exactly one label")
            if ignore_rows is not None:
                ignore = np.asarray(ignore_rows[offset]).reshape(-1).astype(bool)
                if len(ignore) != len(boxes):
                    raise DataError(f"row {row}: column {tensor_map.gt_ignore!r} has {len(ignore)} flags but "
                                    f"column {tensor_map.gt_bboxes!r} has {len(boxes)} boxes; each box needs "
                                    "one flag")
                ignore_chunk.append(ignore)
            if area_rows is not None:
                area = np.asarray(area_rows[offset], np.float64).reshape(-1)
                if len(area) != len(boxes):
                    raise DataError(f"row {row}: column {AREA_COLUMN!r} has {len(area)} values but column "
                                    f"{tensor_map.gt_bboxes!r} has {len(boxes)} boxes")
                flat_area.append(area)
            counts[row] = len(boxes)
            boxes_chunk.append(boxes)
            labels_chunk.append(labels)
        del box_rows, label_rows, ignore_rows, area_rows
        if boxes_chunk:
            # fractional boxes stay fractions here: the image's size is known once it is decoded
            flat_boxes.append(convert_boxes(np.concatenate(boxes_chunk), box_format.mode, BoxMode.LTRB))
            flat_labels.append(np.concatenate(labels_chunk).astype(np.int64))
            flat_ignore.append(np.concatenate(ignore_chunk) if ignore_chunk
                               else np.zeros(len(flat_boxes[-1]), bool))
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    boxes = np.concatenate(flat_boxes) if flat_boxes else np.zeros((0, 4), np.float64)
    labels = np.concatenate(flat_labels) if flat_labels else np.zeros((0,), np.int64)
    ignore = np.concatenate(flat_ignore) if flat_ignore else np.zeros((0,), bool)
    area = (np.concatenate(flat_area) if flat_area else np.zeros((0,), np.float64)) if has_area else None
    return Annotations(boxes, labels, ignore, offsets, area, sizes, image_ids)


def _integers(ds, column: str, start: int, stop: int, remote: str | None = None) -> np.ndarray | None:
    """One integer per row of ``column`` (None when it does not hold one integer per row)."""
    try:
        values = np.asarray(_read_rows(ds, column, start, stop, remote)).reshape(-1)
        return values.astype(np.int64) if values.dtype.kind in "iu" and len(values) == stop - start else None
    except (TypeError, ValueError):
        return None
