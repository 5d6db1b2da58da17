"""Instance mask formats: COCO segmentations (polygons, RLE), polygons and binary masks, converted
the way pycocotools and MMDetection convert them."""

from __future__ import annotations

import numpy as np

__all__ = ["segmentation_rle", "segmentation_area", "segmentation_to_mask", "polygon_area"]


def segmentation_rle(segmentation, height: int, width: int) -> dict:
    """A COCO segmentation (polygons, uncompressed or compressed RLE) as one compressed RLE, the way
    pycocotools' ``annToRLE`` and MMDetection's ``LoadAnnotations`` turn it into a mask."""
    from pycocotools import mask as mask_utils

    if isinstance(segmentation, list):  # polygons: one object may have several parts
        return mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
    if isinstance(segmentation.get("counts"), list):  # uncompressed RLE
        return mask_utils.frPyObjects(segmentation, height, width)
    counts = segmentation["counts"]
    return dict(segmentation, counts=counts.encode() if isinstance(counts, str) else counts)


def segmentation_area(segmentation, height: int, width: int) -> float:
    """The area in pixels of a COCO segmentation's mask (as pycocotools computes it)."""
    from pycocotools import mask as mask_utils

    return float(mask_utils.area(segmentation_rle(segmentation, height, width)))


def segmentation_to_mask(segmentation, height: int, width: int) -> np.ndarray:
    """A COCO segmentation as an ``(height, width)`` boolean mask."""
    from pycocotools import mask as mask_utils

    return mask_utils.decode(segmentation_rle(segmentation, height, width)).astype(bool)


def polygon_area(points: np.ndarray) -> float:
    """Area of a simple polygon given as (K, 2) points (shoelace formula)."""
    x, y = points[:, 0], points[:, 1]
    return float(abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))) / 2)
