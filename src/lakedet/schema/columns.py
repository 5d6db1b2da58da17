"""The schema of a detection dataset: which column holds what, and in which box format.

``TensorMap`` names the columns for MMDetection's keys (``img``, ``gt_bboxes``, ``gt_labels``,
``gt_masks``); ``resolve_tensor_map`` infers it from Deep Lake column types where the user did not
write it. ``BoxFormat`` describes how boxes are stored; Deep Lake 4 does not expose the format
declared on a BoundingBox column to Python, so lakedet reads it from the column metadata
``coords = {"mode": "LTWH"|"LTRB"|"CCWH", "type": "pixel"|"fractional"}``.
The conversions to MMDetection's pixel ``x1, y1, x2, y2`` are pure functions.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

import numpy as np

from ..errors import SchemaError, did_you_mean

__all__ = [
    "BoxMode",
    "BoxFormat",
    "TensorMap",
    "TENSOR_KEYS",
    "boxes_to_xyxy",
    "xyxy_to_ltwh",
    "box_format_from_metadata",
    "resolve_tensor_map",
    "class_names_from_metadata",
]

logger = logging.getLogger("lakedet")

#: MMDetection keys a column can be mapped to, in the seed's spelling (``gt_ignore``: a per-instance
#: boolean, e.g. COCO's ``iscrowd``; ``iscrowd`` is accepted as another name for it).
TENSOR_KEYS = ("img", "gt_bboxes", "gt_labels", "gt_masks", "gt_ignore")
_KEY_ALIASES = {"iscrowd": "gt_ignore"}
#: Column names that fill ``gt_ignore`` when inferring (it has no Deep Lake type of its own).
_NAMES_FOR_IGNORE = ("iscrowd", "difficult")
#: Text columns that fill ``gt_masks`` when inferring: COCO segmentations as JSON (``lakedet ingest coco``).
_NAMES_FOR_MASKS = ("segmentation",)

#: Deep Lake column kinds (``TypeKind`` names) that can fill each key when inferring.
_KINDS_FOR_KEY = {
    "img": ("Image",),
    "gt_bboxes": ("BoundingBox",),
    "gt_labels": ("ClassLabel",),
    "gt_masks": ("BinaryMask", "Polygon"),
    "gt_ignore": (),
}
_REQUIRED_KEYS = ("img", "gt_bboxes", "gt_labels")


class BoxMode(str, Enum):
    """How the four numbers of a stored box are laid out."""

    LTWH = "LTWH"  # left, top, width, height (COCO)
    LTRB = "LTRB"  # left, top, right, bottom (Pascal VOC, MMDetection)
    CCWH = "CCWH"  # center x, center y, width, height (YOLO)


@dataclass(frozen=True)
class BoxFormat:
    """Box layout plus whether coordinates are pixels or fractions of the image size."""

    mode: BoxMode = BoxMode.LTWH
    fractional: bool = False


def boxes_to_xyxy(boxes: np.ndarray, fmt: BoxFormat, height: int | None = None,
                  width: int | None = None, dtype=np.float32) -> np.ndarray:
    """Convert stored boxes to MMDetection's pixel ``x1, y1, x2, y2``.

    Args:
        boxes: ``(N, 4)`` array (any float or int dtype; ``(0,)`` or ``(0, 4)`` for no boxes).
        fmt: the stored format.
        height, width: image size in pixels; required when ``fmt.fractional``.

    Returns:
        ``(N, 4)`` array of ``dtype`` (float32 unless asked).
    """
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if fmt.mode is BoxMode.LTWH:
        out = np.stack([b[:, 0], b[:, 1], b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]], axis=1)
    elif fmt.mode is BoxMode.LTRB:
        out = b.copy()
    else:  # CCWH
        half_w, half_h = b[:, 2] / 2, b[:, 3] / 2
        out = np.stack([b[:, 0] - half_w, b[:, 1] - half_h, b[:, 0] + half_w, b[:, 1] + half_h], axis=1)
    if fmt.fractional:
        if height is None or width is None:
            raise ValueError("fractional boxes need the image height and width")
        out *= np.array([width, height, width, height], dtype=np.float64)
    return out.astype(dtype)


def xyxy_to_ltwh(boxes: np.ndarray) -> np.ndarray:
    """MMDetection's ``x1, y1, x2, y2`` -> COCO's ``left, top, width, height`` (same units, float64)."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.concatenate([b[:, :2], b[:, 2:] - b[:, :2]], axis=1)


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


@dataclass(frozen=True)
class TensorMap:
    """Which dataset column feeds each MMDetection key (``gt_masks`` may be absent)."""

    img: str
    gt_bboxes: str
    gt_labels: str
    gt_masks: str | None = None
    gt_ignore: str | None = None

    def as_dict(self) -> dict[str, str]:
        return {k: getattr(self, k) for k in TENSOR_KEYS if getattr(self, k)}


def resolve_tensor_map(columns: Mapping[str, str], explicit: Mapping[str, str] | None = None,
                       where: str = "deeplake_tensors") -> TensorMap:
    """Choose the column for each MMDetection key.

    Args:
        columns: column name -> Deep Lake type kind name (``"Image"``, ``"BoundingBox"``, ...).
        explicit: the user's mapping; it wins over inference key by key.
        where: how to name the mapping in error messages (e.g. ``data.train.deeplake_tensors``).

    Raises:
        SchemaError: unknown key, missing column, two candidate columns for one key,
            or no column for a required key.
    """
    given = {_KEY_ALIASES.get(k, k): v for k, v in (explicit or {}).items()}
    explicit = {k: v for k, v in given.items() if v not in (None, "")}
    # an optional key mapped to None/"" means "not used" (e.g. a pure detector on a dataset with masks)
    chosen: dict[str, str | None] = {k: None for k, v in given.items()
                                     if v in (None, "") and k not in _REQUIRED_KEYS and k in TENSOR_KEYS}
    for key, column in explicit.items():
        if key not in TENSOR_KEYS:
            raise SchemaError(f"{where}: unknown key {key!r}{did_you_mean(key, TENSOR_KEYS)}; "
                              f"keys are {list(TENSOR_KEYS)} (and 'iscrowd' for 'gt_ignore')")
        if column not in columns:
            raise SchemaError(f"{where}[{key!r}]: no column {column!r} in the dataset"
                              f"{did_you_mean(column, columns)}; columns: {_describe(columns)}")
        if columns[column] not in _ALLOWED_KINDS[key]:
            raise SchemaError(f"{where}[{key!r}]: column {column!r} has type {columns[column]}; {key} needs "
                              f"{' or '.join(_ALLOWED_KINDS[key])}")
        chosen[key] = column
    for key in TENSOR_KEYS:
        if key in chosen:
            continue
        if key == "gt_ignore":
            candidates = [name for name in columns if name.lower() in _NAMES_FOR_IGNORE]
        elif key == "gt_masks":
            candidates = [name for name, kind in columns.items() if not name.startswith("pred_") and (
                kind in _KINDS_FOR_KEY[key] or (kind == "Text" and name.lower() in _NAMES_FOR_MASKS))]
        else:  # `pred_*` / `gt_match` are results (lakedet predict / errors write them), never ground truth
            candidates = [name for name, kind in columns.items()
                          if kind in _KINDS_FOR_KEY[key] and not name.startswith("pred_") and name != "gt_match"]
        if len(candidates) > 1:
            suggestion = ", ".join(f"{key!r}: {c!r}" for c in candidates)
            raise SchemaError(
                f"{where}: cannot infer {key!r}: columns {candidates} all fit. Choose one, e.g. "
                f"{where} = {{{_example_mapping(chosen, key, candidates[0])}}} (candidates: {suggestion})")
        if not candidates and key in _REQUIRED_KEYS:
            kinds = " or ".join(_KINDS_FOR_KEY[key])
            raise SchemaError(f"{where}: no column for {key!r}: no column has type {kinds}; "
                              f"map one explicitly, e.g. {where}['{key}'] = '<column>'. "
                              f"Columns: {_describe(columns)}")
        chosen[key] = candidates[0] if candidates else None
    return TensorMap(**chosen)


#: Column kinds an explicit mapping may name for each key ("Generic" = plain arrays / bytes).
_ALLOWED_KINDS = {
    "img": ("Image", "Generic"),
    "gt_bboxes": ("BoundingBox", "Generic"),
    "gt_labels": ("ClassLabel", "Generic"),
    "gt_masks": ("BinaryMask", "Polygon", "Text", "Generic"),
    "gt_ignore": ("Generic",),
}


def class_names_from_metadata(metadata: Mapping | None, column: str, num_classes: int) -> tuple[str, ...]:
    """Class names from a label column's ``class_names`` metadata.

    Absent metadata gives ``class_0 .. class_{num_classes-1}`` and a logged warning.
    (Whether every label has a name is checked row by row by the dataset.)
    """
    names = metadata.get("class_names") if metadata is not None else None
    if not names:
        logger.warning("column %r has no 'class_names' metadata; naming %d classes class_0..class_%d",
                       column, num_classes, max(num_classes - 1, 0))
        return tuple(f"class_{i}" for i in range(num_classes))
    return tuple(str(n) for n in names)


def _describe(columns: Mapping[str, str]) -> str:
    return ", ".join(f"{name!r} ({kind})" for name, kind in columns.items()) or "(none)"


def _example_mapping(chosen: Mapping[str, str | None], key: str, column: str) -> str:
    mapping = {k: v for k, v in chosen.items() if v}
    mapping[key] = column
    return ", ".join(f"{k!r}: {v!r}" for k, v in mapping.items())
