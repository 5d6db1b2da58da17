"""``lakedet ingest``: COCO and Pascal VOC annotations into a Deep Lake dataset lakedet reads.

Layout written: ``images`` (Image; JPEG bytes stored as they are, a PNG column when any image is
not JPEG: PNGs as they are, other formats re-encoded losslessly), ``boxes`` (BoundingBox, LTWH
pixel, with ``coords`` metadata), ``labels`` (ClassLabel with ``class_names`` in the dataset's
class order), ``iscrowd`` (per instance; VOC ``difficult`` goes here too), optional ``polygons``
(Polygon) or ``masks`` (BinaryMask), and the original ``image_id`` / ``file_name``.

Schema and rows are written in one commit at the end. An ingest stopped by an exception (Ctrl-C
included) deletes what it wrote (Deep Lake would otherwise auto-commit the pending rows when the
dataset object goes away; such data would carry ``lakedet_ingest = "in-progress"``, which
``DeepLakeDetDataset`` refuses). One killed outright leaves an empty dataset without columns
(uncommitted data is dropped), which the next ingest to that DEST starts over.

Deep Lake 4's own ``deeplake.from_coco`` was measured first: on an instances-only COCO file it
stops with ``KeyError: 'supercategory'`` and, with that added, ``KeyError: 'keypoints'`` (it wants
keypoint and stuff files too), and it records no box format; so lakedet writes its own.
"""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import DataError, SourceError

__all__ = ["IngestReport", "ingest_coco", "ingest_voc", "VOC_CLASSES"]

VOC_CLASSES = ("aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
               "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
               "train", "tvmonitor")
_MARKER = "lakedet_ingest"
_BATCH = 64


@dataclass
class IngestReport:
    dest: str
    images: int = 0
    instances: int = 0
    classes: tuple[str, ...] = ()
    skipped: list[str] = field(default_factory=list)
    commit: str | None = None


@dataclass
class _Row:
    image: bytes
    boxes: np.ndarray
    labels: np.ndarray
    iscrowd: np.ndarray
    image_id: int
    file_name: str
    masks: list = field(default_factory=list)  # polygons (K, 2) or binary (H, W) per instance
    size: tuple[int, int] | None = None  # (height, width)


def _is_jpeg(data: bytes) -> bool:
    return data[:3] == b"\xff\xd8\xff"


def _is_png(data: bytes) -> bool:
    return data[:8] == b"\x89PNG\r\n\x1a\n"


def _image_size(data: bytes) -> tuple[int, int] | None:
    import cv2

    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    return None if img is None else img.shape[:2]


def _start(dest: str, creds: dict | None, overwrite: bool):
    """Create ``dest`` (or restart an interrupted ingest there); refuse to clobber finished data."""
    import deeplake

    kwargs = dict(creds=creds) if creds else {}
    if deeplake.exists(dest, **kwargs):
        existing = deeplake.open_read_only(dest, **kwargs)
        state = existing.metadata[_MARKER] if _MARKER in existing.metadata.keys() else None
        # an ingest killed before its commit leaves an empty dataset without columns: start it over
        unfinished = state == "in-progress" or (len(existing) == 0 and not list(existing.schema.columns))
        if not unfinished and not overwrite:
            raise SourceError(f"{dest!r} already holds a dataset ({len(existing)} rows"
                              f"{', ingested by lakedet' if state else ''}); choose another DEST or pass --overwrite")
        del existing
        deeplake.delete(dest, **kwargs)
    return deeplake.create(dest, **kwargs)


def _write(dest: str, rows: list[_Row], classes: tuple[str, ...], masks: str | None, message: str,
           creds: dict | None, overwrite: bool, progress: Callable | None) -> str:
    import cv2
    from deeplake import types

    all_jpeg = all(_is_jpeg(r.image) for r in rows)
    ds = _start(dest, creds, overwrite)
    ds.add_column("images", types.Image(dtype="uint8", sample_compression="jpeg" if all_jpeg else "png"))
    ds.add_column("boxes", types.BoundingBox(dtype="float32", format="ltwh", bbox_type="pixel"))
    ds.add_column("labels", types.ClassLabel(types.Array("uint32", dimensions=1)))
    ds.add_column("iscrowd", types.Array("bool", dimensions=1))
    if masks == "polygon":
        ds.add_column("polygons", types.Polygon())
    elif masks == "binary":
        ds.add_column("masks", types.BinaryMask(sample_compression="lz4"))
    ds.add_column("image_id", types.Int64())
    ds.add_column("file_name", types.Text())
    ds["boxes"].metadata["coords"] = {"mode": "LTWH", "type": "pixel"}
    ds["labels"].metadata["class_names"] = list(classes)
    ds.metadata[_MARKER] = "in-progress"  # only committed if Deep Lake auto-commits a failed ingest

    def stored(data: bytes) -> bytes:
        if all_jpeg or _is_png(data):
            return data  # as they are
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        return cv2.imencode(".png", img)[1].tobytes()  # lossless

    try:
        _append_rows(ds, rows, masks, stored, progress)
        ds.metadata[_MARKER] = "complete"
        ds.commit(message)
        return str(ds.version)
    except BaseException as exc:
        # Deep Lake commits pending rows when the dataset object goes away ("Auto commit"): let it
        # happen now (the traceback's frames hold the object too), then delete the half-written
        # dataset, so nothing half-ingested is left to read.
        import gc
        import traceback

        import deeplake

        traceback.clear_frames(exc.__traceback__)
        del ds
        gc.collect()
        deeplake.delete(dest, **(dict(creds=creds) if creds else {}))
        raise


def _append_rows(ds, rows, masks, stored, progress) -> None:
    for start in range(0, len(rows), _BATCH):
        chunk = rows[start:start + _BATCH]
        data = dict(images=[stored(r.image) for r in chunk], boxes=[r.boxes for r in chunk],
                    labels=[r.labels for r in chunk], iscrowd=[r.iscrowd for r in chunk],
                    image_id=[r.image_id for r in chunk], file_name=[r.file_name for r in chunk])
        if masks == "polygon":  # an empty row as a (0, 3, 2) array: Deep Lake cannot type an empty list
            data["polygons"] = [r.masks if r.masks else np.zeros((0, 3, 2), np.float32) for r in chunk]
        elif masks == "binary":
            data["masks"] = [np.stack(r.masks, -1) if r.masks else np.zeros((*r.size, 0), bool) for r in chunk]
        ds.append(data)
        if progress:
            progress(min(start + _BATCH, len(rows)), len(rows))


def _problem(message: str, skip: bool, report: IngestReport) -> None:
    if not skip:
        raise DataError(message + "; fix the annotation or pass --skip-bad to skip and count such cases")
    report.skipped.append(message)


def ingest_coco(annotations: str | Path, images_dir: str | Path, dest: str, masks: str | None = "polygon",
                skip_bad: bool = False, creds: dict | None = None, overwrite: bool = False,
                progress: Callable | None = None) -> IngestReport:
    """Write a COCO detection/segmentation set into ``dest``.

    Args:
        annotations: the COCO JSON (``images``, ``annotations``, ``categories``).
        images_dir: folder the ``file_name`` entries are relative to.
        masks: ``"polygon"`` (one polygon per instance), ``"binary"`` (rasterised H x W x N) or None.
        skip_bad: skip (and count) annotations with an unknown category or a box outside the image,
            and images whose file is missing, instead of stopping.

    Raises:
        DataError: a malformed annotation (named by id) when ``skip_bad`` is False.
    """
    from pycocotools import mask as mask_utils

    annotations, images_dir = Path(annotations), Path(images_dir)
    coco = json.loads(annotations.read_text())
    categories = sorted(coco.get("categories", []), key=lambda c: c["id"])
    label_of = {c["id"]: i for i, c in enumerate(categories)}
    report = IngestReport(dest, classes=tuple(c["name"] for c in categories))
    per_image: dict[int, list] = {}
    for ann in coco.get("annotations", []):
        per_image.setdefault(ann["image_id"], []).append(ann)
    rows = []
    for image in sorted(coco.get("images", []), key=lambda i: i["id"]):
        path = images_dir / image["file_name"]
        if not path.is_file():
            _problem(f"image id {image['id']}: file {str(path)!r} is missing", skip_bad, report)
            continue
        data = path.read_bytes()
        height, width = image.get("height"), image.get("width")
        if not height or not width:
            size = _image_size(data)
            if size is None:
                _problem(f"image id {image['id']}: {str(path)!r} cannot be decoded", skip_bad, report)
                continue
            height, width = size
        boxes, labels, crowd, shapes = [], [], [], []
        for ann in per_image.get(image["id"], []):
            where = f"annotation id {ann.get('id')} (image id {image['id']}, {image['file_name']!r})"
            if ann.get("category_id") not in label_of:
                _problem(f"{where}: unknown category_id {ann.get('category_id')}; categories: "
                         f"{sorted(label_of)}", skip_bad, report)
                continue
            x, y, w, h = (float(v) for v in ann["bbox"])
            if x < -0.5 or y < -0.5 or x + w > width + 0.5 or y + h > height + 0.5 or w < 0 or h < 0:
                _problem(f"{where}: box {ann['bbox']} is outside the {width}x{height} image", skip_bad, report)
                continue
            shape = None
            if masks:
                segmentation = ann.get("segmentation")
                if masks == "polygon":
                    if not (isinstance(segmentation, list) and len(segmentation) == 1):
                        _problem(f"{where}: segmentation is {'RLE' if isinstance(segmentation, dict) else f'{len(segmentation or [])} polygons'}; "
                                 "a Polygon column holds one polygon per instance: use --masks binary",
                                 skip_bad, report)
                        continue
                    shape = np.asarray(segmentation[0], np.float32).reshape(-1, 2)
                else:
                    if isinstance(segmentation, list):
                        rle = mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
                    elif isinstance(segmentation, dict) and isinstance(segmentation.get("counts"), list):
                        rle = mask_utils.frPyObjects(segmentation, height, width)
                    elif isinstance(segmentation, dict):
                        rle = segmentation
                    else:
                        _problem(f"{where}: no segmentation for --masks binary", skip_bad, report)
                        continue
                    shape = mask_utils.decode(rle).astype(bool)
            boxes.append([x, y, w, h])
            labels.append(label_of[ann["category_id"]])
            crowd.append(bool(ann.get("iscrowd", 0)))
            shapes.append(shape)
        rows.append(_Row(data, np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(labels, np.uint32),
                         np.asarray(crowd, bool), int(image["id"]), str(image["file_name"]),
                         shapes if masks else [], (height, width)))
    report.images = len(rows)
    report.instances = sum(len(r.boxes) for r in rows)
    message = (f"lakedet ingest coco: {report.images} images, {report.instances} instances, "
               f"{len(report.classes)} classes from {annotations.name}"
               + (f"; skipped {len(report.skipped)} bad entries" if report.skipped else ""))
    report.commit = _write(dest, rows, report.classes, masks, message, creds, overwrite, progress)
    return report


def ingest_voc(root: str | Path, dest: str, split: str = "trainval", skip_bad: bool = False,
               creds: dict | None = None, overwrite: bool = False, progress: Callable | None = None) -> IngestReport:
    """Write a Pascal VOC split (``ImageSets/Main/{split}.txt``) into ``dest``.

    Boxes are stored as written in the XML (``xmin, ymin, xmax - xmin, ymax - ymin``); ``difficult``
    objects go to ``iscrowd`` (ignored in evaluation). Classes are VOC's 20 in their usual order
    when every name is a VOC class, else the names found, sorted.
    """
    root = Path(root)
    ids_file = root / "ImageSets" / "Main" / f"{split}.txt"
    if not ids_file.is_file():
        raise SourceError(f"no split file {str(ids_file)!r}; splits here: "
                          f"{sorted(p.stem for p in (root / 'ImageSets' / 'Main').glob('*.txt'))}")
    report = IngestReport(dest)
    parsed = []
    for image_index, stem in enumerate(line.split()[0] for line in ids_file.read_text().splitlines() if line.strip()):
        xml_path, jpg = root / "Annotations" / f"{stem}.xml", root / "JPEGImages" / f"{stem}.jpg"
        if not xml_path.is_file() or not jpg.is_file():
            _problem(f"image {stem!r}: {'annotation' if not xml_path.is_file() else 'image'} file missing",
                     skip_bad, report)
            continue
        tree = ET.parse(xml_path).getroot()
        size = tree.find("size")
        width, height = int(size.find("width").text), int(size.find("height").text)
        objects = []
        for number, obj in enumerate(tree.findall("object")):
            box = obj.find("bndbox")
            x1, y1, x2, y2 = (float(box.find(k).text) for k in ("xmin", "ymin", "xmax", "ymax"))
            if x1 < 0 or y1 < 0 or x2 > width or y2 > height or x2 <= x1 or y2 <= y1:
                _problem(f"image {stem!r}, object {number}: box {[x1, y1, x2, y2]} is outside the "
                         f"{width}x{height} image or empty", skip_bad, report)
                continue
            difficult = obj.find("difficult")
            objects.append((obj.find("name").text.strip(), [x1, y1, x2 - x1, y2 - y1],
                            difficult is not None and difficult.text.strip() == "1"))
        parsed.append((image_index, stem, jpg.read_bytes(), objects, (height, width)))
    names = {name for *_, objects, _ in parsed for name, _, _ in objects}
    classes = VOC_CLASSES if names <= set(VOC_CLASSES) else tuple(sorted(names))
    label_of = {name: i for i, name in enumerate(classes)}
    rows = [_Row(data, np.asarray([b for _, b, _ in objects], np.float32).reshape(-1, 4),
                 np.asarray([label_of[n] for n, _, _ in objects], np.uint32),
                 np.asarray([d for _, _, d in objects], bool), index, f"{stem}.jpg", [], size)
            for index, stem, data, objects, size in parsed]
    report.classes, report.images = classes, len(rows)
    report.instances = sum(len(r.boxes) for r in rows)
    message = (f"lakedet ingest voc: {report.images} images, {report.instances} objects from split {split!r}"
               + (f"; skipped {len(report.skipped)} bad entries" if report.skipped else ""))
    report.commit = _write(dest, rows, classes, None, message, creds, overwrite, progress)
    return report


def print_progress(done: int, total: int) -> None:
    """A one-line progress bar on stderr."""
    width = 30
    filled = int(width * done / max(total, 1))
    print(f"\r  [{'#' * filled}{'.' * (width - filled)}] {done}/{total} images", end="" if done < total else "\n",
          file=sys.stderr, flush=True)
