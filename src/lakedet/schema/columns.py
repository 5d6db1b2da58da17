"""Which dataset column holds what: ``TensorMap`` and its inference from Deep Lake column types.

``TensorMap`` names the columns for MMDetection's keys (``img``, ``gt_bboxes``, ``gt_labels``,
``gt_masks``, ``gt_ignore``); ``resolve_tensor_map`` infers it from Deep Lake column types where
the user did not write it, and asks to choose only for what the run uses: two columns that could
hold the masks are an error for a pipeline that loads masks, and are left alone by a pure detector.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from ..errors import SchemaError, did_you_mean

__all__ = ["RESULT_COLUMNS", "TensorMap", "TENSOR_KEYS", "OPTIONAL_KEYS", "resolve_tensor_map", "class_names_from_metadata",
           "column_kinds", "column_metadata"]

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
#: Keys a run may leave unmapped.
OPTIONAL_KEYS = tuple(k for k in TENSOR_KEYS if k not in _REQUIRED_KEYS)


def column_kinds(ds) -> dict[str, str]:
    """Column name -> Deep Lake type kind name (``"Image"``, ``"BoundingBox"``, ...)."""
    return {c.name: c.dtype.kind.name for c in ds.schema.columns}


def column_metadata(ds, column: str) -> dict:
    """A column's Deep Lake metadata as a plain dict."""
    metadata = ds[column].metadata
    return {key: metadata[key] for key in metadata.keys()}


@dataclass(frozen=True)
class TensorMap:
    """Which dataset column feeds each MMDetection key (``gt_masks`` may be absent)."""

    img: str
    gt_bboxes: str
    gt_labels: str
    gt_masks: str | None = None
    gt_ignore: str | None = None
    #: optional keys left unmapped because several columns fit and the run did not need them
    #: (key -> the columns that fit), so that whoever needs one later can ask to choose
    undecided: Mapping[str, tuple] = field(default_factory=dict, compare=False, repr=False, hash=False)

    def as_dict(self) -> dict[str, str]:
        return {k: getattr(self, k) for k in TENSOR_KEYS if getattr(self, k)}


#: Box and class columns lakedet's commands write as results (``errors``, ``compare``, ``issues``):
#: never taken for ground truth.
RESULT_COLUMNS = frozenset({"gt_match", "gt_change", "gt_diff", "issue_kind", "vanished_fp_boxes",
                            "vanished_fp_labels", "removed_boxes", "removed_labels"})


def resolve_tensor_map(columns: Mapping[str, str], explicit: Mapping[str, str] | None = None,
                       where: str = "deeplake_tensors", needed: Collection[str] = OPTIONAL_KEYS) -> TensorMap:
    """Choose the column for each MMDetection key.

    Args:
        columns: column name -> Deep Lake type kind name (``"Image"``, ``"BoundingBox"``, ...).
        explicit: the user's mapping; it wins over inference key by key.
        where: how to name the mapping in error messages (e.g. ``data.train.deeplake_tensors``).
        needed: the optional keys (``gt_masks``, ``gt_ignore``) the run uses. An optional key
            several columns fit is an error only when it is needed; otherwise it stays unmapped
            (``TensorMap.undecided`` keeps the candidates). One fitting column is always taken.

    Raises:
        SchemaError: unknown key, missing column, two candidate columns for a needed key,
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
    undecided: dict[str, tuple] = {}
    for key in TENSOR_KEYS:
        if key in chosen:
            continue
        if key == "gt_ignore":
            candidates = [name for name in columns if name.lower() in _NAMES_FOR_IGNORE]
        elif key == "gt_masks":
            candidates = [name for name, kind in columns.items() if not name.startswith("pred_") and (
                kind in _KINDS_FOR_KEY[key] or (kind == "Text" and name.lower() in _NAMES_FOR_MASKS))]
        else:  # `pred_*` and RESULT_COLUMNS are results (lakedet predict / errors ... write them), never ground truth
            candidates = [name for name, kind in columns.items()
                          if kind in _KINDS_FOR_KEY[key] and not name.startswith("pred_") and name not in RESULT_COLUMNS]
        if len(candidates) > 1 and key in OPTIONAL_KEYS and key not in needed:
            undecided[key] = tuple(candidates)
            chosen[key] = None
            continue
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
    return TensorMap(**chosen, undecided=undecided)


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
