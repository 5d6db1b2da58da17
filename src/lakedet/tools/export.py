"""``lakedet export coco``: a Deep Lake detection dataset (or a commit / view / query of it) as COCO files.

Writes ``OUT/annotations.json`` and every image to ``OUT/images/<file_name>`` (the stored bytes as
they are). For data ``lakedet ingest coco`` wrote, the file is the original one in content:
original image, annotation and category ids, categories in the file's order with all their
fields, boxes and areas exactly, segmentations as they were (polygons, RLE either way), crowd
flags, ``info`` / ``licenses``, and any other fields of images and annotations; ingesting it again
gives the same rows. Other datasets get COCO ids made up from rows and labels (image id = row,
category id = label + 1, annotation ids from 1), masks as polygons (Polygon columns) or
compressed RLE (BinaryMask columns). The file is written as the rows are read, in chunks: memory
does not grow with the dataset.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from ..errors import DataError, SourceError

__all__ = ["ExportReport", "export_coco", "CHUNK"]

#: Rows read from the dataset at a time.
CHUNK = 256


@dataclass
class ExportReport:
    out: Path
    images: int = 0
    annotations: int = 0


def _json(value) -> str:
    return json.dumps(value, ensure_ascii=False)


def _metadata_json(ds, column: str, key: str):
    try:
        metadata = ds[column].metadata
        return json.loads(metadata[key]) if key in metadata.keys() else None
    except Exception:  # no such column
        return None


def _safe_name(name: str, row: int) -> str:
    path = PurePosixPath(name)
    if not name or path.is_absolute() or ".." in path.parts:
        raise DataError(f"row {row}, column 'file_name': {name!r} is not a relative path inside the export folder")
    return name


def export_coco(spec, out: str | Path, overwrite: bool = False, progress: Callable | None = None) -> ExportReport:
    """Write the rows ``spec`` (a ``SourceSpec``) selects as a COCO instances file plus images.

    Raises:
        SourceError: ``OUT/annotations.json`` exists and ``overwrite`` is False.
        DataError: a row's file name would leave ``OUT``, or its columns disagree in length.
    """
    from ..schema import (BoxMode, box_format_from_metadata, boxes_to_xyxy, class_names_from_metadata, column_kinds,
                          column_metadata, convert_boxes, resolve_tensor_map)
    from ..source import open_source

    from ..source.deeplake3 import refuse_writing_into

    refuse_writing_into(str(out), "export", "OUT")
    out = Path(out)
    target = out / "annotations.json"
    if target.exists() and not overwrite:
        raise SourceError(f"{str(target)!r} exists; choose another OUT or pass --overwrite")
    ds = open_source(spec)
    kinds = column_kinds(ds)
    tensors = resolve_tensor_map(kinds)
    fmt = box_format_from_metadata(column_metadata(ds, tensors.gt_bboxes), tensors.gt_bboxes)
    label_meta = column_metadata(ds, tensors.gt_labels)
    classes = class_names_from_metadata(label_meta, tensors.gt_labels, 0)
    category_ids = [int(v) for v in label_meta.get("category_ids") or range(1, len(classes) + 1)]
    categories = (json.loads(label_meta["categories"]) if label_meta.get("categories")
                  else [dict(id=i, name=n) for i, n in zip(category_ids, classes)])
    has = set(kinds)
    compression = str(ds.schema[tensors.img].dtype.sample_compression).lower()
    suffix = ".png" if "png" in compression else ".jpg"
    mask_column, mask_kind = tensors.gt_masks, kinds.get(tensors.gt_masks)
    top = {k: v for k, v in (("info", _metadata_json(ds, "image_id", "coco_info")),
                             ("licenses", _metadata_json(ds, "image_id", "coco_licenses"))) if v is not None}
    report = ExportReport(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile("w+", encoding="utf-8", dir=out) as anns, \
            open(target.with_suffix(".json.partial"), "w", encoding="utf-8") as f:
        f.write("{" + "".join(f"{_json(k)}: {_json(v)}, " for k, v in top.items()) + '"images": [')
        next_ann_id, names = 1, {}
        for start in range(0, len(ds), CHUNK):
            stop = min(len(ds), start + CHUNK)
            cols = {name: ds[name][start:stop] for name in
                    (tensors.gt_bboxes, tensors.gt_labels, tensors.gt_ignore, "area", "annotation_id", "image_id",
                     "file_name", "height", "width", "coco_extra", mask_column)
                    if name and name in has and not (name == mask_column and mask_kind != "Text"
                                                     and mask_kind != "Polygon")}
            for offset in range(stop - start):
                row = start + offset
                data = ds[tensors.img].get_bytes(row)
                height, width = _size(cols, offset, data)
                extra = json.loads(cols["coco_extra"][offset] or "{}") if "coco_extra" in cols else {}
                image_id = int(cols["image_id"][offset]) if "image_id" in cols else row
                name = _safe_name(str(cols["file_name"][offset]), row) if "file_name" in cols \
                    else f"{row:012d}{suffix}"
                if name in names:
                    raise DataError(f"rows {names[name]} and {row} have the same file_name {name!r}; "
                                    "each exported image needs its own")
                names[name] = row
                image = dict(id=image_id, file_name=name, height=height, width=width, **extra.get("image", {}))
                f.write(("" if report.images == 0 else ", ") + _json(image))
                path = out / "images" / name
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
                boxes = np.asarray(cols[tensors.gt_bboxes][offset], np.float64).reshape(-1, 4)
                xyxy = boxes_to_xyxy(boxes, fmt, height, width, dtype=np.float64)
                ltwh = convert_boxes(xyxy, BoxMode.LTRB, BoxMode.LTWH) \
                    if not (fmt.mode is BoxMode.LTWH and not fmt.fractional) else boxes
                labels = np.asarray(cols[tensors.gt_labels][offset]).reshape(-1)
                crowd = (np.asarray(cols[tensors.gt_ignore][offset]).reshape(-1).astype(bool)
                         if tensors.gt_ignore else np.zeros(len(boxes), bool))
                area = np.asarray(cols["area"][offset], np.float64).reshape(-1) if "area" in cols else None
                ids = np.asarray(cols["annotation_id"][offset]).reshape(-1) if "annotation_id" in cols else None
                mask_value = cols[mask_column][offset] if mask_column in cols else \
                    (ds[mask_column][row] if mask_column else None)  # binary masks: one row at a time
                segmentations = _segmentations(mask_value, mask_column, mask_kind, len(boxes))
                extras = extra.get("annotations") or [None] * len(boxes)
                if not (len(labels) == len(crowd) == len(segmentations) == len(extras) == len(boxes)) or (
                        area is not None and len(area) != len(boxes)) or (ids is not None and len(ids) != len(boxes)):
                    raise DataError(f"row {row}: the annotation columns disagree in length ({len(boxes)} boxes)")
                for k in range(len(boxes)):
                    ann = dict(id=int(ids[k]) if ids is not None else next_ann_id, image_id=image_id,
                               category_id=category_ids[int(labels[k])], bbox=[float(v) for v in ltwh[k]])
                    next_ann_id += 1
                    if area is not None:
                        if area[k] == area[k]:  # NaN: the file had none
                            ann["area"] = float(area[k])
                    else:
                        ann["area"] = _area(segmentations[k], ltwh[k], height, width)
                    ann["iscrowd"] = int(crowd[k])
                    ann.update(extras[k] or {})
                    text = _json(ann)
                    if segmentations[k] is not None:  # the stored JSON text as it is
                        text = text[:-1] + ', "segmentation": ' + segmentations[k] + "}"
                    anns.write(("" if report.annotations == 0 else ", ") + text)
                    report.annotations += 1
                report.images += 1
                if progress and (report.images % CHUNK == 0 or report.images == len(ds)):
                    progress(report.images, len(ds))
        f.write('], "annotations": [')
        anns.seek(0)
        while block := anns.read(1 << 20):
            f.write(block)
        f.write("], " + f'"categories": {_json(categories)}')
        for key, value in (_metadata_json(ds, "image_id", "coco_other") or {}).items():
            f.write(f", {_json(key)}: {_json(value)}")
        f.write("}")
    target.with_suffix(".json.partial").replace(target)
    return report


def _size(cols: dict, offset: int, data: bytes) -> tuple[int, int]:
    if "height" in cols and "width" in cols:
        return int(cols["height"][offset]), int(cols["width"][offset])
    from ..data.decode import decode_image

    img = decode_image(data, compressed=True)
    if img is None:
        raise DataError("an image cannot be decoded and the dataset has no height / width columns")
    return img.shape[:2]


def _segmentations(value, column: str | None, kind: str | None, count: int) -> list:
    """Per instance: the COCO segmentation as JSON text (or None) from whichever mask column the
    dataset has; a ``segmentation`` Text column's items exactly as stored."""
    if not column:
        return [None] * count
    if kind == "Text":
        return _json_items(value) if value else [None] * count
    if kind == "Polygon":
        return [_json([np.asarray(p, np.float64).reshape(-1).tolist()]) for p in (value if value is not None else [])]
    from pycocotools import mask as mask_utils

    masks = np.asarray(value)
    if masks.ndim < 3:
        masks = masks.reshape(*masks.shape[:2], -1) if masks.ndim == 2 else np.zeros((0, 0, 0), bool)
    rles = mask_utils.encode(np.asfortranarray(masks.astype(np.uint8))) if masks.shape[2] else []
    return [_json(dict(size=[int(v) for v in r["size"]], counts=r["counts"].decode())) for r in rles]


_DECODER = json.JSONDecoder()


def _json_items(text: str) -> list:
    """The items of a JSON list as their own texts (None for ``null``)."""
    items, pos = [], text.index("[") + 1
    while True:
        while text[pos] in " \t\n\r,":
            pos += 1
        if text[pos] == "]":
            return items
        value, end = _DECODER.raw_decode(text, pos)
        items.append(None if value is None else text[pos:end])
        pos = end


def _area(segmentation: str | None, ltwh, height: int, width: int) -> float:
    if segmentation is None:
        return float(ltwh[2] * ltwh[3])
    from ..schema.masks import segmentation_area

    return segmentation_area(json.loads(segmentation), height, width)
