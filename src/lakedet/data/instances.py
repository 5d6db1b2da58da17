"""MMDetection 3.3's dataset rules, as pure functions over flat annotation arrays.

What MMDetection's ``CocoDataset``, ``XMLDataset`` (``VOCDataset``) and ``BaseDetDataset`` decide
when they turn annotation files into training samples, applied to the rows of a Deep Lake dataset:

* **class selection** (``metainfo=dict(classes=...)``): annotations of classes not named are
  dropped and labels renumbered by name. ``CocoDataset`` numbers the selected classes in the
  annotation file's category order (``COCO.get_cat_ids(cat_names=...)`` keeps the file's order,
  whatever the order of ``classes``); ``XMLDataset`` numbers them in the order of ``classes``.
  Data lakedet ingested from COCO (labels metadata ``annotation_format = "coco"``) follows the
  first rule, everything else the second.
* **training targets** (``CocoDataset.parse_data_info``): a box with COCO ``area <= 0``, width or
  height below 1 pixel, or no overlap with the image is not a training target.
* ``filter_cfg``: ``filter_empty_gt`` drops training images without any annotation of a selected
  class (crowd and degenerate ones count, as in ``CocoDataset.filter_data``), ``min_size`` drops
  images whose shorter side is smaller; ``bbox_min_size`` (``XMLDataset`` only) makes smaller
  boxes ignore regions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["COCO_FORMAT", "VOC_FORMAT", "ClassSelection", "select_classes", "training_targets",
           "small_boxes", "rows_to_keep"]

COCO_FORMAT, VOC_FORMAT = "coco", "voc"


@dataclass(frozen=True)
class ClassSelection:
    """The classes a dataset serves (in label order) and each stored label's new label (-1: dropped)."""

    classes: tuple[str, ...]
    new_label: np.ndarray  # indexed by stored label
    missing: tuple[str, ...] = ()  # names asked for that the dataset does not have

    @property
    def identity(self) -> bool:
        return bool(np.array_equal(self.new_label, np.arange(len(self.new_label))))


def select_classes(stored: Sequence[str], wanted: Sequence[str] | None, annotation_format: str | None = None,
                   file_order: Sequence[str] | None = None) -> ClassSelection:
    """Select and renumber classes by name, as MMDetection's dataset of that format does.

    Args:
        stored: the dataset's class names, by stored label.
        wanted: ``metainfo['classes']``; None keeps every stored class as it is.
        annotation_format: ``"coco"``: numbered in the annotation file's category order
            (``file_order``, default ``stored``), as ``CocoDataset``; otherwise in the order of
            ``wanted`` (names the dataset lacks keep their place), as ``XMLDataset``.
        file_order: the COCO file's category names in file order.
    """
    stored = tuple(stored)
    if wanted is None:
        return ClassSelection(stored, np.arange(len(stored), dtype=np.int64))
    wanted = tuple(wanted)
    missing = tuple(name for name in wanted if name not in stored)
    if annotation_format == COCO_FORMAT:
        order = [name for name in (file_order or stored) if name in wanted and name in stored]
        classes = tuple(dict.fromkeys(order))
    else:
        classes = wanted
    position = {}
    for index, name in enumerate(classes):
        position.setdefault(name, index)
    new_label = np.asarray([position.get(name, -1) for name in stored], dtype=np.int64)
    return ClassSelection(classes, new_label, missing)


def training_targets(boxes: np.ndarray, area: np.ndarray | None, image_sizes: np.ndarray | None) -> np.ndarray:
    """Which boxes ``CocoDataset.parse_data_info`` keeps as training targets.

    Args:
        boxes: ``(N, 4)`` pixel x1, y1, x2, y2.
        area: ``(N,)`` COCO ``area`` values, or None (the box area is used; also where NaN).
        image_sizes: ``(N, 2)`` height, width of each box's image, or None (not checked).

    Returns:
        ``(N,)`` bool: False for ``area <= 0``, width or height < 1, or no overlap with the image.
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    area = w * h if area is None else np.where(np.isnan(area), w * h, np.asarray(area, np.float64))
    keep = (area > 0) & (w >= 1) & (h >= 1)
    if image_sizes is not None:
        height, width = (np.asarray(image_sizes, np.float64).reshape(-1, 2)[:, k] for k in (0, 1))
        inter_w = np.maximum(0, np.minimum(boxes[:, 2], width) - np.maximum(boxes[:, 0], 0))
        inter_h = np.maximum(0, np.minimum(boxes[:, 3], height) - np.maximum(boxes[:, 1], 0))
        keep &= inter_w * inter_h != 0
    return keep


def small_boxes(boxes: np.ndarray, bbox_min_size: float | None) -> np.ndarray:
    """``XMLDataset``'s ``bbox_min_size``: boxes narrower or lower than it (they become ignore regions)."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    if bbox_min_size is None:
        return np.zeros(len(boxes), bool)
    return ((boxes[:, 2] - boxes[:, 0]) < bbox_min_size) | ((boxes[:, 3] - boxes[:, 1]) < bbox_min_size)


def rows_to_keep(selected_per_row: np.ndarray, image_sizes: np.ndarray | None, filter_empty_gt: bool,
                 min_size: float) -> np.ndarray:
    """``filter_data`` of ``CocoDataset`` / ``XMLDataset`` for training.

    Args:
        selected_per_row: ``(R,)`` number of annotations of a selected class in each row.
        image_sizes: ``(R, 2)`` height, width, or None (then ``min_size`` cannot apply).
    """
    keep = np.ones(len(selected_per_row), bool)
    if filter_empty_gt:
        keep &= np.asarray(selected_per_row) > 0
    if min_size and image_sizes is not None:
        keep &= np.asarray(image_sizes).reshape(-1, 2).min(axis=1) >= min_size
    return keep
