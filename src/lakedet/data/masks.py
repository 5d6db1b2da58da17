"""A row's instance masks, read when its sample is prepared: for the pipeline (MMDetection's
``LoadAnnotations``, which lakedet's ``LoadDeepLakeAnnotations`` extends with binary masks) and
for the metric (each evaluated instance's ``mask``, as ``CocoMetric`` reads it from a file).

Columns: a Text column of COCO segmentations (JSON, as ``lakedet ingest coco`` writes it, handed
over as the file had them), a BinaryMask column (H x W x N), or a Polygon column (one polygon per
instance). A degenerate polygon (< 3 points or zero area) is dropped with a counted warning and
its instance becomes an ignore region.
"""

from __future__ import annotations

import json
import logging

import numpy as np

from ..errors import DataError
from ..schema.masks import polygon_area
from ..source.deadline import wait
from .keys import SampleKey

__all__ = ["MaskColumn"]

logger = logging.getLogger("lakedet")


class MaskColumn:
    """The mask column of a dataset and how its rows become instance masks.

    Args:
        column: the column name; ``kind`` its Deep Lake type kind (``Text``, ``BinaryMask``,
            ``Polygon``, ``Generic``).
        boxes_column: named in errors about counts.
        fractional: polygons are stored as fractions of the image size.
        remote: the name of remote storage, whose reads are bounded in time (None: local data).
    """

    def __init__(self, column: str, kind: str, boxes_column: str, fractional: bool = False,
                 remote: str | None = None):
        self.column, self.kind, self.boxes_column = column, kind, boxes_column
        self.fractional, self.remote = fractional, remote
        self.degenerate_polygons = 0

    def read(self, ds, row: int):
        """The stored value of ``row``."""
        if self.remote is not None:
            return wait(ds[self.column].get_async(row), f"row {row}, column {self.column!r} of {self.remote!r}")
        return ds[self.column][row]

    def add(self, ds, info: dict, row: int, kept: np.ndarray, stored: int, for_pipeline: bool,
            for_metric: bool) -> None:
        """Add the masks of the row's ``kept`` instances (of ``stored``) to the sample ``info``:
        what the pipeline loads (``for_pipeline``) and each instance's ``mask`` for the metric
        (``for_metric``; COCO segmentations and polygons always ride on the instances).

        Raises:
            DataError: the row holds another number of masks than boxes, or a bad segmentation.
        """
        value = self.read(ds, row)
        instances = info["instances"]
        info[SampleKey.MASK_COLUMN] = self.column
        if self.kind == "Text":
            self._add_segmentations(info, row, value, kept, stored, for_pipeline)
            return
        if self.kind in ("BinaryMask", "Generic"):
            masks = np.asarray(value)
            masks = masks.reshape(masks.shape[0], masks.shape[1], -1) if masks.ndim >= 2 else \
                np.zeros((0, 0, 0), bool)
            if masks.shape[2] != stored:
                raise DataError(f"row {row}: column {self.column!r} has {masks.shape[2]} masks but "
                                f"column {self.boxes_column!r} has {stored} boxes")
            masks = masks[:, :, kept]
            if for_pipeline:
                info[SampleKey.BINARY_MASKS] = masks
            if for_metric and len(instances):
                from pycocotools import mask as mask_utils

                rles = mask_utils.encode(np.asfortranarray(masks.astype(np.uint8)))
                for instance, rle in zip(instances, rles):
                    instance["mask"] = dict(size=[int(v) for v in rle["size"]], counts=rle["counts"].decode())
            return
        self._add_polygons(info, row, value, kept, stored)

    def _add_polygons(self, info: dict, row: int, value, kept: np.ndarray, stored: int) -> None:
        polygons = list(value) if value is not None else []
        if len(polygons) != stored:
            raise DataError(f"row {row}: column {self.column!r} has {len(polygons)} polygons but "
                            f"column {self.boxes_column!r} has {stored} boxes")
        for index, instance in zip(kept.tolist(), info["instances"]):
            polygon = polygons[index]
            points = np.asarray(polygon, dtype=np.float64).reshape(-1, 2)
            if len(points) >= 3 and polygon_area(points) > 0:
                instance["mask"] = [points.reshape(-1).tolist()]
                continue
            self.degenerate_polygons += 1
            logger.warning("row %d, column %r: the polygon of instance %d has %d points%s; it is dropped "
                           "and the instance becomes an ignore region (%d degenerate polygons so far)",
                           row, self.column, index, len(points), "" if len(points) < 3 else " and no area",
                           self.degenerate_polygons)
            instance["mask"] = []
            instance["ignore_flag"] = 1
        if self.fractional:
            info[SampleKey.FRACTIONAL_POLYGONS] = True

    def _add_segmentations(self, info: dict, row: int, value, kept: np.ndarray, stored: int,
                           for_pipeline: bool) -> None:
        """COCO segmentations as ``CocoDataset`` puts them on instances: ``mask`` is the file's
        polygons or RLE, absent when the annotation had none."""
        try:
            segmentations = json.loads(value) if value else []
        except (TypeError, ValueError) as exc:
            raise DataError(f"row {row}, column {self.column!r}: not a JSON list of COCO segmentations ({exc})") from exc
        if not isinstance(segmentations, list) or len(segmentations) != stored:
            raise DataError(f"row {row}: column {self.column!r} holds "
                            f"{len(segmentations) if isinstance(segmentations, list) else 'no list of'} "
                            f"segmentations but column {self.boxes_column!r} has {stored} boxes")
        for index, instance in zip(kept.tolist(), info["instances"]):
            if segmentations[index]:
                instance["mask"] = segmentations[index]
            elif for_pipeline:
                raise DataError(f"row {row}, column {self.column!r}: instance {index} has no segmentation and the "
                                "pipeline loads masks (LoadAnnotations with_mask=True); give it one, or map "
                                "deeplake_tensors['gt_masks'] to None for a box-only model")
