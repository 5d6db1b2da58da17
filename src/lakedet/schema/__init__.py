"""The schema layer: which column is what (``TensorMap``), how boxes are stored (``BoxFormat``,
the one box converter), how masks are encoded, and how rows are laid out in storage."""

from .boxes import BoxFormat, BoxMode, box_format_from_metadata, boxes_to_xyxy, convert_boxes
from .columns import (OPTIONAL_KEYS, TENSOR_KEYS, TensorMap, class_names_from_metadata, column_kinds, column_metadata,
                      resolve_tensor_map)

__all__ = ["BoxFormat", "BoxMode", "box_format_from_metadata", "boxes_to_xyxy", "convert_boxes", "TensorMap",
           "TENSOR_KEYS", "OPTIONAL_KEYS", "resolve_tensor_map", "class_names_from_metadata", "column_kinds",
           "column_metadata"]
