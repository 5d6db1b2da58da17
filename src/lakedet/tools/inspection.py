"""``lakedet inspect``: what a Deep Lake detection dataset holds, and what is wrong with it.

Unlike ``DeepLakeDetDataset`` (which stops at the first bad row), inspection reads every row and
collects every problem: mismatched box/label counts, boxes outside the image or without area,
labels outside the class list, rows without boxes, images that do not decode.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from ..schema import (BoxFormat, box_format_from_metadata, boxes_to_xyxy, class_names_from_metadata, column_kinds,
                      column_metadata,
                     resolve_tensor_map)
from ..source import SourceSpec, open_source, source_history

__all__ = ["Problem", "Inspection", "inspect_source"]


@dataclass(frozen=True)
class Problem:
    row: int
    column: str
    kind: str
    detail: str

    def __str__(self) -> str:
        return f"row {self.row}, column {self.column!r}: {self.kind}: {self.detail}"


@dataclass
class Inspection:
    """Everything ``lakedet inspect`` prints."""

    description: str
    rows: int
    columns: dict[str, str]
    tensors: dict[str, str]
    box_format: BoxFormat
    classes: tuple[str, ...]
    class_counts: Counter
    boxes_per_image: np.ndarray
    box_sides: np.ndarray  # (N, 2) widths, heights in pixels (rows whose image decoded)
    problems: list[Problem] = field(default_factory=list)
    crowd: int = 0  # instances marked crowd / ignore (the ``gt_ignore`` column's true values)
    history: list[tuple[str, str, str]] = field(default_factory=list)  # id, time, message


def inspect_source(spec: SourceSpec, tensors: dict | None = None, check_images: bool = True,
                   progress=None) -> Inspection:
    """Read every row of the selection and report its content and its problems.

    Args:
        spec: what to open (path, commit, view or query).
        tensors: explicit column mapping (as ``deeplake_tensors``).
        check_images: decode every image (needed for undecodable images and boxes outside the image).
        progress: called with (rows done, rows) now and then.
    """
    from ..data.decode import decode_image

    ds = open_source(spec)
    columns = column_kinds(ds)
    tensor_map = resolve_tensor_map(columns, tensors)
    box_format = box_format_from_metadata(column_metadata(ds, tensor_map.gt_bboxes), tensor_map.gt_bboxes)
    box_rows = ds[tensor_map.gt_bboxes][:]
    label_rows = [np.asarray(v).reshape(-1) for v in ds[tensor_map.gt_labels][:]]
    max_label = max((int(v.max()) for v in label_rows if v.size), default=-1)
    classes = class_names_from_metadata(column_metadata(ds, tensor_map.gt_labels), tensor_map.gt_labels,
                                        max_label + 1)
    compressed = str(ds.schema[tensor_map.img].dtype.sample_compression).lower() not in ("none", "null", "")
    problems, counts, sides, per_image = [], Counter(), [], []
    for row, (boxes, labels) in enumerate(zip(box_rows, label_rows)):
        boxes = np.asarray(boxes, dtype=np.float64)
        boxes = boxes.reshape(0, 4) if boxes.size == 0 else boxes
        per_image.append(len(boxes))
        if boxes.ndim != 2 or boxes.shape[1] != 4:
            problems.append(Problem(row, tensor_map.gt_bboxes, "bad shape", f"boxes have shape {boxes.shape}, not (N, 4)"))
            continue
        if len(boxes) != len(labels):
            problems.append(Problem(row, tensor_map.gt_labels, "count mismatch",
                                    f"{len(boxes)} boxes but {len(labels)} labels"))
        if len(boxes) == 0:
            problems.append(Problem(row, tensor_map.gt_bboxes, "no boxes", "the row has no boxes"))
        for label in labels:
            if label < 0 or label >= len(classes):
                problems.append(Problem(row, tensor_map.gt_labels, "label outside class list",
                                        f"label {int(label)} (classes: {len(classes)})"))
            else:
                counts[classes[int(label)]] += 1
        size = None
        if check_images:
            data = ds[tensor_map.img].get_bytes(row) if compressed else ds[tensor_map.img][row]
            img = decode_image(data, compressed=compressed)
            if img is None:
                problems.append(Problem(row, tensor_map.img, "undecodable image", "the image cannot be decoded"))
            else:
                size = img.shape[:2]
        if box_format.fractional and size is None:
            continue
        xyxy = boxes_to_xyxy(boxes, box_format, *(size or (None, None)))
        for i, (x1, y1, x2, y2) in enumerate(xyxy):
            if x2 - x1 <= 0 or y2 - y1 <= 0:
                problems.append(Problem(row, tensor_map.gt_bboxes, "zero area", f"box {i} = {boxes[i].tolist()}"))
            elif size is not None and (x1 < -0.5 or y1 < -0.5 or x2 > size[1] + 0.5 or y2 > size[0] + 0.5):
                problems.append(Problem(row, tensor_map.gt_bboxes, "outside image",
                                        f"box {i} = {boxes[i].tolist()} in a {size[1]}x{size[0]} image"))
            sides.append((x2 - x1, y2 - y1))
        if progress is not None and (row + 1) % 500 == 0:
            progress(row + 1, len(box_rows))
    crowd = 0
    if tensor_map.gt_ignore:
        crowd = sum(int(np.count_nonzero(np.asarray(v))) for v in ds[tensor_map.gt_ignore][:] if v is not None)
    history = []
    try:
        history = source_history(spec)
    except Exception:  # views of in-memory datasets: history is best effort
        pass
    return Inspection(spec.description, len(box_rows), columns, tensor_map.as_dict(), box_format, classes,
                      counts, np.asarray(per_image), np.asarray(sides).reshape(-1, 2), problems, crowd, history)
