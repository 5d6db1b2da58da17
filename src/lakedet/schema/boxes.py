"""Box formats and the one box converter.

``BoxFormat`` describes how boxes are stored (``BoxMode`` + pixels or fractions of the image
size). Deep Lake 4 does not expose the format declared on a BoundingBox column to Python, so
lakedet reads it from the column metadata ``coords = {"mode": "LTWH"|"LTRB"|"CCWH", "type":
"pixel"|"fractional"}``. ``convert_boxes`` converts between the modes; every other box
conversion in lakedet goes through it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

import numpy as np

from ..errors import SchemaError, did_you_mean

__all__ = ["BoxMode", "BoxFormat", "convert_boxes", "boxes_to_xyxy", "box_format_from_metadata"]

logger = logging.getLogger("lakedet")


class BoxMode(str, Enum):
    """How the four numbers of a box are laid out."""

    LTWH = "LTWH"  # left, top, width, height (COCO)
    LTRB = "LTRB"  # left, top, right, bottom (Pascal VOC, MMDetection's x1, y1, x2, y2)
    CCWH = "CCWH"  # center x, center y, width, height (YOLO)


@dataclass(frozen=True)
class BoxFormat:
    """Box layout plus whether coordinates are pixels or fractions of the image size."""

    mode: BoxMode = BoxMode.LTWH
    fractional: bool = False


def convert_boxes(boxes, source: BoxMode | str, target: BoxMode | str = BoxMode.LTRB, dtype=np.float64) -> np.ndarray:
    """Convert ``(N, 4)`` boxes from one layout to another (same units).

    Args:
        boxes: an ``(N, 4)`` array-like (``(0,)`` or ``(0, 4)`` for no boxes), any numeric dtype.
        source, target: ``BoxMode`` (or its name).
        dtype: of the result (computed in float64).

    Returns:
        ``(N, 4)`` array of ``dtype``.
    """
    source, target = BoxMode(source), BoxMode(target)
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if source is BoxMode.LTWH:
        ltrb = np.concatenate([b[:, :2], b[:, :2] + b[:, 2:]], axis=1)
    elif source is BoxMode.CCWH:
        ltrb = np.concatenate([b[:, :2] - b[:, 2:] / 2, b[:, :2] + b[:, 2:] / 2], axis=1)
    else:
        ltrb = b
    if target is BoxMode.LTWH:
        out = np.concatenate([ltrb[:, :2], ltrb[:, 2:] - ltrb[:, :2]], axis=1)
    elif target is BoxMode.CCWH:
        out = np.concatenate([(ltrb[:, :2] + ltrb[:, 2:]) / 2, ltrb[:, 2:] - ltrb[:, :2]], axis=1)
    else:
        out = ltrb
    return out.astype(dtype, copy=out is b)


def boxes_to_xyxy(boxes: np.ndarray, fmt: BoxFormat, height: int | None = None,
                  width: int | None = None, dtype=np.float32) -> np.ndarray:
    """Convert stored boxes to MMDetection's pixel ``x1, y1, x2, y2``.

    Args:
        boxes: ``(N, 4)`` array (any float or int dtype; ``(0,)`` or ``(0, 4)`` for no boxes).
        fmt: the stored format.
        height, width: image size in pixels; required when ``fmt.fractional``.

    Returns:
        ``(N, 4)`` array of ``dtype`` (float32 unless asked).

    Raises:
        ValueError: fractional boxes without the image size.
    """
    out = convert_boxes(boxes, fmt.mode, BoxMode.LTRB)
    if fmt.fractional:
        if height is None or width is None:
            raise ValueError("fractional boxes need the image height and width")
        out = out * np.array([width, height, width, height], dtype=np.float64)
    return out.astype(dtype)


def box_format_from_metadata(metadata: Mapping, column: str) -> BoxFormat:
    """Read a BoundingBox column's ``coords`` metadata.

    Missing metadata means LTWH pixel, with a logged warning.

    Raises:
        SchemaError: the metadata names an unknown mode or type.
    """
    coords = metadata.get("coords") if metadata is not None else None
    if coords is None:
        logger.warning(
            "column %r has no 'coords' metadata; assuming boxes are LTWH in pixels. "
            "Declare it with ds[%r].metadata['coords'] = {'mode': 'LTWH', 'type': 'pixel'}",
            column, column)
        return BoxFormat()
    if not isinstance(coords, Mapping):
        raise SchemaError(f"column {column!r}: metadata 'coords' must be a dict like "
                          f"{{'mode': 'LTWH', 'type': 'pixel'}}, got {coords!r}")
    mode = str(coords.get("mode", "LTWH")).upper()
    modes = [m.value for m in BoxMode]
    if mode not in modes:
        raise SchemaError(f"column {column!r}: unknown box mode coords['mode']={coords.get('mode')!r}"
                          f"{did_you_mean(mode, modes)}; expected one of {modes}")
    kind = str(coords.get("type", "pixel")).lower()
    if kind not in ("pixel", "fractional"):
        raise SchemaError(f"column {column!r}: unknown box type coords['type']={coords.get('type')!r}; "
                          "expected 'pixel' or 'fractional'")
    return BoxFormat(BoxMode(mode), kind == "fractional")
