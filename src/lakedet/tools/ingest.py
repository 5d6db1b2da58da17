"""``lakedet ingest``: COCO and Pascal VOC annotations into a Deep Lake dataset lakedet reads.

COCO layout (one row per image, in the file's image order; per-instance arrays in the file's
annotation order): ``images`` (Image; JPEG bytes stored as they are, a PNG column when any image is
not JPEG: PNGs as they are, other formats re-encoded losslessly), ``boxes`` (BoundingBox, LTWH pixel,
float64: the file's values exactly), ``labels`` (ClassLabel; ``class_names`` in category-id order,
``category_ids`` the COCO ids of the labels, ``categories`` the file's category list),
``iscrowd``, ``area`` (COCO's ``area``), ``annotation_id``, the masks (below), ``image_id``,
``file_name``, ``height``, ``width``, and ``coco_extra`` (any other field of an image or annotation,
as JSON, so ``lakedet export coco`` gives them back). ``info`` / ``licenses`` are kept in the
``image_id`` column's metadata.

Masks (``masks=``): ``"coco"`` (the default) keeps every ``segmentation`` exactly as the file has
it (polygons, multi-part polygons, RLE compressed and uncompressed) in a ``segmentation`` Text
column, one JSON list per row; lakedet hands them to MMDetection's own ``LoadAnnotations``, so the
masks are the ones MMDetection decodes from the file (see ``benchmarks/masks.py`` for the bytes and
decode times behind this choice). ``"polygon"``: a Deep Lake Polygon column (one float32 polygon per
instance; multi-part polygons and RLE are bad entries); ``"binary"``: BinaryMask (H x W x N, lz4);
None: no masks.

VOC layout: boxes as MMDetection's ``XMLDataset`` reads them (``int(float(v)) - 1``: LTRB pixel,
``minus_one=True``), ``difficult`` per object, ``height`` / ``width`` from the XML.

The annotation file is read by a streaming scan (``lakedet.tools.cocofile``) and checked in full before
anything is written. Rows are then written in batches of ``BATCH`` and committed every
``CHECKPOINT_ROWS`` rows (Deep Lake keeps uncommitted rows in memory): memory stays bounded
whatever the dataset size. Until the last commit the dataset is marked
``lakedet_ingest = "in-progress"`` (``DeepLakeDetDataset`` refuses to read it). An ingest that stops
(an exception, Ctrl-C, a killed process) keeps its committed rows; running the same command again
resumes after them (same annotation file, size and modification time, same options), anything
else starts over.

Deep Lake 4's own ``deeplake.from_coco`` was measured first: on an instances-only COCO file it
stops with ``KeyError: 'supercategory'`` and, with that added, ``KeyError: 'keypoints'`` (it wants
keypoint and stuff files too), and it records no box format; so lakedet writes its own.
"""

from __future__ import annotations

import json
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DataError, SourceError
from ..schema.masks import segmentation_to_mask
from .cocofile import ANN_KEYS, scan_coco

__all__ = ["IngestReport", "ingest_coco", "ingest_voc", "VOC_CLASSES", "MASK_CHOICES"]

VOC_CLASSES = ("aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
               "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
               "train", "tvmonitor")
MASK_CHOICES = ("coco", "polygon", "binary", "none")
_MARKER = "lakedet_ingest"
_SOURCE = "lakedet_ingest_source"
#: Rows built and appended at a time.
BATCH = 64
#: Rows between commits (bounds what Deep Lake holds in memory, and what a crash loses).
CHECKPOINT_ROWS = 1024
_IMAGE_KEYS = ("id", "file_name", "height", "width")


@dataclass
class IngestReport:
    dest: str
    images: int = 0
    instances: int = 0
    classes: tuple[str, ...] = ()
    skipped: list[str] = field(default_factory=list)
    commit: str | None = None
    resumed_at: int = 0  # rows found committed by an earlier, interrupted run of the same ingest


# --- writing ---------------------------------------------------------------------------------------

def _creds_kwargs(creds: dict | None) -> dict:
    return dict(creds=creds) if creds else {}


def _open_dest(dest: str, creds: dict | None, overwrite: bool, fingerprint: str):
    """``(dataset, rows already written)``: resume an interrupted ingest of the same source, or
    start over; refuse to clobber finished data unless ``overwrite``."""
    import deeplake

    from ..source.deeplake3 import refuse_writing_into

    kwargs = _creds_kwargs(creds)
    if deeplake.exists(dest, **kwargs):
        existing = deeplake.open_read_only(dest, **kwargs)
        keys = existing.metadata.keys()
        state = existing.metadata[_MARKER] if _MARKER in keys else None
        source = existing.metadata[_SOURCE] if _SOURCE in keys else None
        # an ingest killed before its first commit leaves an empty dataset without columns
        unfinished = state == "in-progress" or (len(existing) == 0 and not list(existing.schema.columns))
        if not unfinished and not overwrite:
            raise SourceError(f"{dest!r} already holds a dataset ({len(existing)} rows"
                              f"{', ingested by lakedet' if state else ''}); choose another DEST or pass --overwrite")
        if state == "in-progress" and source == fingerprint and not overwrite:
            rows = len(existing)
            del existing
            return deeplake.open(dest, **kwargs), rows
        del existing
        deeplake.delete(dest, **kwargs)
    else:  # deeplake.exists() is False on Deep Lake 3 data too, and create would hide it
        refuse_writing_into(dest, "ingest", creds=creds)
    return deeplake.create(dest, **kwargs), 0


class _Writer:
    """Appends rows in batches, commits every ``CHECKPOINT_ROWS``, marks the dataset finished at the end."""

    def __init__(self, ds, rows_done: int, total: int, kind: str, progress: Callable | None):
        self.ds, self.done, self.total, self.kind, self.progress = ds, rows_done, total, kind, progress
        self.since_commit = 0

    def write(self, rows: Iterator[dict]) -> None:
        batch: list[dict] = []
        for row in rows:
            batch.append(row)
            if len(batch) == BATCH:
                self._append(batch)
                batch = []
        if batch:
            self._append(batch)

    def _append(self, batch: list[dict]) -> None:
        self.ds.append({key: [row[key] for row in batch] for key in batch[0]})
        self.done += len(batch)
        self.since_commit += len(batch)
        if self.since_commit >= CHECKPOINT_ROWS and self.done < self.total:  # the last rows: the final commit
            self.ds.commit(f"lakedet ingest {self.kind}: checkpoint, {self.done} of {self.total} images")
            self.since_commit = 0
        if self.progress:
            self.progress(self.done, self.total)


def _write(dest: str, creds: dict | None, overwrite: bool, fingerprint: str, kind: str, total: int,
           define: Callable, rows: Callable[[int], Iterator[dict]], message: Callable[[], str],
           progress: Callable | None, report: IngestReport) -> str:
    """Open or resume ``dest``, define its schema (``define(ds)``) when new, write ``rows(start)``
    from the first row not yet written, and commit; return the commit id."""
    ds, done = _open_dest(dest, creds, overwrite, fingerprint)
    report.resumed_at = done
    if not list(ds.schema.columns):
        define(ds)
        ds.metadata[_MARKER] = "in-progress"
        ds.metadata[_SOURCE] = fingerprint
        ds.commit(f"lakedet ingest {kind}: schema, {total} images to write")
    writer = _Writer(ds, done, total, kind, progress)
    try:
        if progress:
            progress(done, total)
        writer.write(rows(done))
        ds.metadata[_MARKER] = "complete"
        ds.commit(message())
        return str(ds.version)
    except BaseException:
        # keep what was committed for a resume; drop the rows appended since (Deep Lake would
        # otherwise commit them when the dataset object goes away)
        ds.rollback()
        print(f"\nlakedet ingest {kind}: stopped with {writer.done - writer.since_commit} of {total} images "
              f"committed in {dest!r}; run the same command again to resume", file=sys.stderr)
        raise


def _fingerprint(kind: str, source: Path, **options) -> str:
    stat = source.stat()
    return json.dumps(dict(kind=kind, source=str(source.resolve()), size=stat.st_size, mtime_ns=stat.st_mtime_ns,
                           layout=2, **options), sort_keys=True)


def _problem(message: str, report: IngestReport) -> None:
    """Count a malformed entry (``report.skipped``); ``_check_problems`` then stops unless skipping."""
    report.skipped.append(message)


def _check_problems(report: IngestReport, skip: bool, source: Path) -> None:
    if report.skipped and not skip:
        shown = report.skipped[:10]
        more = f"\n  ... and {len(report.skipped) - len(shown)} more" if len(report.skipped) > len(shown) else ""
        raise DataError(f"{len(report.skipped)} malformed entr{'y' if len(report.skipped) == 1 else 'ies'} in "
                        f"{str(source)!r}:\n  " + "\n  ".join(shown) + more +
                        "\nfix them or pass --skip-bad to skip and count such cases; nothing was written")


def _is_jpeg(data: bytes) -> bool:
    return data[:3] == b"\xff\xd8\xff"


def _is_png(data: bytes) -> bool:
    return data[:8] == b"\x89PNG\r\n\x1a\n"


def _image_size(data: bytes) -> tuple[int, int] | None:
    import cv2

    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    return None if img is None else img.shape[:2]


def _stored_image(data: bytes, jpeg_column: bool) -> bytes:
    """The bytes to store: as they are, or (a non-PNG in a PNG column) re-encoded losslessly."""
    if jpeg_column or _is_png(data):
        return data
    import cv2

    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    return cv2.imencode(".png", img)[1].tobytes()


def _image_columns(ds, jpeg: bool) -> None:
    from deeplake import types

    ds.add_column("images", types.Image(dtype="uint8", sample_compression="jpeg" if jpeg else "png"))


def _box_columns(ds, mode: str, classes, label_metadata: dict) -> None:
    from deeplake import types

    ds.add_column("boxes", types.BoundingBox(dtype="float64", format=mode.lower(), bbox_type="pixel"))
    ds.add_column("labels", types.ClassLabel(types.Array("uint32", dimensions=1)))
    ds["boxes"].metadata["coords"] = {"mode": mode, "type": "pixel"}
    ds["labels"].metadata["class_names"] = list(classes)
    for key, value in label_metadata.items():
        ds["labels"].metadata[key] = value


def _row_columns(ds) -> None:
    from deeplake import types

    ds.add_column("image_id", types.Int64())
    ds.add_column("file_name", types.Text())
    ds.add_column("height", types.Int64())
    ds.add_column("width", types.Int64())


# --- COCO --------------------------------------------------------------------------------------------

def ingest_coco(annotations: str | Path, images_dir: str | Path, dest: str, masks: str | None = "coco",
                skip_bad: bool = False, creds: dict | None = None, overwrite: bool = False,
                progress: Callable | None = None) -> IngestReport:
    """Write a COCO detection / instance segmentation set into ``dest`` (layout: module docstring).

    Args:
        annotations: the COCO JSON (``images``, ``annotations``, ``categories``).
        images_dir: folder the ``file_name`` entries are relative to.
        masks: ``"coco"`` (default: every segmentation as the file has it), ``"polygon"``,
            ``"binary"``, or None / ``"none"``.
        skip_bad: skip (and count) malformed annotations (unknown category or image, box outside the
            image, a bad segmentation, duplicate ids) and images whose file is missing, instead of stopping.
        progress: called with (images written, images) after each batch.

    Raises:
        DataError: a malformed entry (named by id) when ``skip_bad`` is False; nothing is written then.
    """
    masks = None if masks in (None, "none") else masks
    if masks not in (None, "coco", "polygon", "binary"):
        raise DataError(f"masks={masks!r}: choose one of {list(MASK_CHOICES)}")
    annotations, images_dir = Path(annotations), Path(images_dir)
    if not annotations.is_file():
        raise SourceError(f"no annotation file {str(annotations)!r}")
    coco = scan_coco(annotations)
    categories = sorted(coco.categories, key=lambda c: c["id"])
    label_of = {int(c["id"]): i for i, c in enumerate(categories)}
    if len(label_of) != len(categories):
        raise DataError(f"{str(annotations)!r}: category ids repeat ({[c['id'] for c in categories]}); "
                        "each category needs its own id")
    report = IngestReport(dest, classes=tuple(str(c["name"]) for c in categories))
    plan = _plan_coco(coco, images_dir, label_of, masks, report)
    _check_problems(report, skip_bad, annotations)
    report.images = len(plan.images)
    report.instances = int(sum(len(a) for a in plan.anns))

    def define(ds):
        from deeplake import types

        _image_columns(ds, plan.all_jpeg)
        _box_columns(ds, "LTWH", report.classes, dict(
            annotation_format="coco", category_ids=[int(c["id"]) for c in categories],
            categories=json.dumps(coco.categories)))
        ds.add_column("iscrowd", types.Array("bool", dimensions=1))
        ds.add_column("area", types.Array("float64", dimensions=1))
        ds.add_column("annotation_id", types.Array("int64", dimensions=1))
        if masks == "coco":
            ds.add_column("segmentation", types.Text())
            ds["segmentation"].metadata["encoding"] = "coco"
        elif masks == "polygon":
            ds.add_column("polygons", types.Polygon())
        elif masks == "binary":
            ds.add_column("masks", types.BinaryMask(sample_compression="lz4"))
        _row_columns(ds)
        ds.add_column("coco_extra", types.Text())
        ds["image_id"].metadata["coco_info"] = json.dumps(coco.info)
        ds["image_id"].metadata["coco_licenses"] = json.dumps(coco.licenses)
        ds["image_id"].metadata["coco_other"] = json.dumps(coco.other_keys)

    def rows(start: int) -> Iterator[dict]:
        for position in range(start, len(plan.images)):
            yield _coco_row(coco, images_dir, plan, position, label_of, masks)

    def message() -> str:
        return (f"lakedet ingest coco: {report.images} images, {report.instances} instances, "
                f"{len(report.classes)} classes from {annotations.name}"
                + (f"; skipped {len(report.skipped)} bad entries" if report.skipped else ""))

    fingerprint = _fingerprint("coco", annotations, images_dir=str(images_dir.resolve()), masks=masks,
                               skip_bad=skip_bad)
    try:
        report.commit = _write(dest, creds, overwrite, fingerprint, "coco", len(plan.images), define, rows, message,
                               progress, report)
    finally:
        coco.close()
    return report


@dataclass
class _CocoPlan:
    images: np.ndarray  # indices into the file's images, in the order written
    anns: list  # per written image: annotation indices, in file order
    all_jpeg: bool


def _plan_coco(coco, images_dir: Path, label_of: dict, masks: str | None, report: IngestReport) -> _CocoPlan:
    """Check every image and annotation (before anything is written) and decide what goes in."""
    where_image = {}
    usable = np.ones(len(coco.image_ids), bool)
    all_jpeg = True
    for index, (image_id, name) in enumerate(zip(coco.image_ids.tolist(), coco.image_names)):
        if image_id < 0 or name is None:
            _problem(f"image #{index} in the file: needs an integer 'id' and a 'file_name'", report)
            usable[index] = False
            continue
        if image_id in where_image:
            _problem(f"image id {image_id} appears twice (file names {coco.image_names[where_image[image_id]]!r}, "
                     f"{name!r})", report)
            usable[index] = False
            continue
        where_image[image_id] = index
        try:
            with open(images_dir / name, "rb") as f:
                all_jpeg &= _is_jpeg(f.read(3))
        except OSError:
            _problem(f"image id {image_id}: file {str(images_dir / name)!r} is missing", report)
            usable[index] = False
    bad = dict(coco.ann_problems)
    ids, counts = np.unique(coco.ann_ids, return_counts=True)
    duplicated = set(ids[counts > 1].tolist())
    seen: set[int] = set()
    for k, (ann_id, image_id, category) in enumerate(zip(coco.ann_ids.tolist(), coco.ann_image_ids.tolist(),
                                                         coco.ann_category_ids.tolist())):
        if k not in bad:
            problem = _annotation_problem(coco, k, ann_id in duplicated and ann_id in seen, category in label_of,
                                          where_image.get(image_id), usable, masks)
            if problem:
                bad[k] = problem
        seen.add(ann_id)
    for k in sorted(bad):
        image_id = int(coco.ann_image_ids[k])
        name = coco.image_names[where_image[image_id]] if image_id in where_image else None
        _problem(f"annotation id {int(coco.ann_ids[k])} (image id {image_id}"
                 f"{f', {name!r}' if name else ''}): {bad[k]}", report)
    good = np.ones(len(coco.ann_ids), bool)
    good[list(bad)] = False
    written = np.flatnonzero(usable)
    position_of = np.full(len(coco.image_ids), -1, np.int64)
    position_of[written] = np.arange(len(written))
    ann_index = np.flatnonzero(good)
    ann_position = position_of[[where_image[i] for i in coco.ann_image_ids[ann_index].tolist()]] \
        if len(ann_index) else np.zeros(0, np.int64)
    order = np.argsort(ann_position, kind="stable")
    ann_index, ann_position = ann_index[order], ann_position[order]
    bounds = np.searchsorted(ann_position, np.arange(len(written) + 1))
    anns = [ann_index[bounds[i]:bounds[i + 1]] for i in range(len(written))]
    return _CocoPlan(written, anns, all_jpeg)


def _annotation_problem(coco, k: int, repeated_id: bool, known_category: bool, image_index: int | None,
                        usable: np.ndarray, masks: str | None) -> str | None:
    """What is wrong with annotation ``k`` (already scanned), or None."""
    if repeated_id:
        return f"annotation id {int(coco.ann_ids[k])} is not unique"
    if not known_category:
        return f"unknown category_id {int(coco.ann_category_ids[k])}; categories: {sorted(coco.category_ids)}"
    if image_index is None:
        return f"image_id {int(coco.ann_image_ids[k])} is not an image of the file"
    if not usable[image_index]:
        return f"its image (id {int(coco.ann_image_ids[k])}) is skipped"
    parts = int(coco.ann_parts[k])
    if masks == "polygon" and parts != 1:
        return (f"segmentation is {'RLE' if parts < 0 else f'{parts} polygons'}; a Polygon column holds one polygon "
                "per instance: use --masks coco (the default) or binary")
    if masks == "binary" and parts == 0:
        return "no segmentation for --masks binary"
    height, width = coco.image_sizes[image_index]
    x, y, w, h = coco.ann_boxes[k]
    if w < 0 or h < 0 or (height and width and (x < -0.5 or y < -0.5 or x + w > width + 0.5 or y + h > height + 0.5)):
        return f"box {coco.ann_boxes[k].tolist()} is outside the {width}x{height} image"
    return None


def _coco_row(coco, images_dir: Path, plan: _CocoPlan, position: int, label_of: dict, masks: str | None) -> dict:
    """One image's row, from the scan's index: only the image entry (and annotations with extra
    fields) are parsed here; segmentations are stored as the file's text."""
    index = int(plan.images[position])
    picked = plan.anns[position]
    image = coco.read_many([coco.image_spans[index]])[0]
    data = (images_dir / image["file_name"]).read_bytes()
    height, width = image.get("height"), image.get("width")
    if not height or not width:
        size = _image_size(data)
        if size is None:
            raise DataError(f"image id {image['id']}: {str(images_dir / image['file_name'])!r} cannot be decoded "
                            "and the file gives no height / width")
        height, width = size
    extra = {}
    extra_image = {k: v for k, v in image.items() if k not in _IMAGE_KEYS}
    if extra_image:
        extra["image"] = extra_image
    if coco.ann_extra[picked].any():
        extra["annotations"] = [({k: v for k, v in coco.read_many([coco.ann_spans[k]])[0].items()
                                  if k not in ANN_KEYS} if coco.ann_extra[k] else None) for k in picked.tolist()]
    row = dict(images=_stored_image(data, plan.all_jpeg), boxes=coco.ann_boxes[picked],
               labels=np.asarray([label_of[c] for c in coco.ann_category_ids[picked].tolist()], np.uint32),
               iscrowd=coco.ann_crowd[picked], area=coco.ann_area[picked], annotation_id=coco.ann_ids[picked],
               image_id=int(image["id"]), file_name=str(image["file_name"]), height=int(height), width=int(width),
               coco_extra=json.dumps(extra) if extra else "")
    if masks == "coco":
        row["segmentation"] = "[" + ",".join(coco.segmentation_text(k) for k in picked.tolist()) + "]"
    elif masks is not None:
        segmentations = [json.loads(coco.segmentation_text(k)) for k in picked.tolist()]
        if masks == "polygon":  # an empty row as a (0, 3, 2) array: Deep Lake cannot type an empty list
            row["polygons"] = ([np.asarray(seg[0], np.float32).reshape(-1, 2) for seg in segmentations]
                               or np.zeros((0, 3, 2), np.float32))
        else:
            row["masks"] = (np.stack([segmentation_to_mask(seg, height, width) for seg in segmentations], -1)
                            if segmentations else np.zeros((height, width, 0), bool))
    return row


def _voc_objects(xml_path: Path):
    """``(height, width or None, [(name, [x1, y1, x2, y2], difficult)])`` as ``XMLDataset`` reads them."""
    root = ET.parse(xml_path).getroot()
    size = root.find("size")
    shape = (int(size.find("height").text), int(size.find("width").text)) if size is not None else None
    objects = []
    for obj in root.findall("object"):
        difficult = obj.find("difficult")
        box = obj.find("bndbox")
        coords = [int(float(box.find(k).text)) - 1 for k in ("xmin", "ymin", "xmax", "ymax")]  # minus_one
        objects.append((obj.find("name").text, coords, 0 if difficult is None else int(difficult.text)))
    return shape, objects


def ingest_voc(root: str | Path, dest: str, split: str = "trainval", skip_bad: bool = False,
               creds: dict | None = None, overwrite: bool = False, progress: Callable | None = None) -> IngestReport:
    """Write a Pascal VOC split (``ImageSets/Main/{split}.txt``) into ``dest``.

    Boxes are stored as MMDetection's ``XMLDataset`` reads them (``int(float(v)) - 1``, LTRB pixel),
    ``difficult`` per object (an ignore region, as in MMDetection). Classes are VOC's 20 in their
    usual order when every name is a VOC class, else the names found, sorted.
    """
    root = Path(root)
    ids_file = root / "ImageSets" / "Main" / f"{split}.txt"
    if not ids_file.is_file():
        raise SourceError(f"no split file {str(ids_file)!r}; splits here: "
                          f"{sorted(p.stem for p in (root / 'ImageSets' / 'Main').glob('*.txt'))}")
    report = IngestReport(dest)
    stems, names = [], set()
    for stem in (line.split()[0] for line in ids_file.read_text().splitlines() if line.strip()):
        xml_path, jpg = root / "Annotations" / f"{stem}.xml", root / "JPEGImages" / f"{stem}.jpg"
        if not xml_path.is_file() or not jpg.is_file():
            _problem(f"image {stem!r}: {'annotation' if not xml_path.is_file() else 'image'} file missing",
                     report)
            continue
        try:
            _, objects = _voc_objects(xml_path)
        except (ET.ParseError, AttributeError, TypeError, ValueError) as exc:
            _problem(f"image {stem!r}: {str(xml_path)!r} is not a VOC annotation ({exc})", report)
            continue
        bad = [(n, box) for n, (_, box, _) in enumerate(objects) if box[2] < box[0] or box[3] < box[1]]
        if bad:
            _problem(f"image {stem!r}, object {bad[0][0]}: box {bad[0][1]} has xmax < xmin or ymax < ymin",
                     report)
            continue
        stems.append(stem)
        names.update(name for name, _, _ in objects)
    _check_problems(report, skip_bad, ids_file)
    classes = VOC_CLASSES if names <= set(VOC_CLASSES) else tuple(sorted(names))
    label_of = {name: i for i, name in enumerate(classes)}
    report.classes, report.images = classes, len(stems)
    counted = {"instances": 0}

    def define(ds):
        from deeplake import types

        _image_columns(ds, True)
        _box_columns(ds, "LTRB", classes, dict(annotation_format="voc"))
        ds.add_column("difficult", types.Array("bool", dimensions=1))
        _row_columns(ds)

    def rows(start: int) -> Iterator[dict]:
        for index in range(start, len(stems)):
            stem = stems[index]
            shape, objects = _voc_objects(root / "Annotations" / f"{stem}.xml")
            data = (root / "JPEGImages" / f"{stem}.jpg").read_bytes()
            if shape is None:
                shape = _image_size(data)
                if shape is None:
                    raise DataError(f"image {stem!r}: the XML has no <size> and the JPEG cannot be decoded")
            counted["instances"] += len(objects)
            yield dict(images=_stored_image(data, _is_jpeg(data)),
                       boxes=np.asarray([b for _, b, _ in objects], np.float64).reshape(-1, 4),
                       labels=np.asarray([label_of[n] for n, _, _ in objects], np.uint32),
                       difficult=np.asarray([bool(d) for _, _, d in objects], bool),
                       image_id=index, file_name=f"{stem}.jpg", height=int(shape[0]), width=int(shape[1]))

    def message() -> str:
        report.instances = counted["instances"]
        return (f"lakedet ingest voc: {report.images} images, {report.instances} objects from split {split!r}"
                + (f"; skipped {len(report.skipped)} bad entries" if report.skipped else ""))

    fingerprint = _fingerprint("voc", ids_file, skip_bad=skip_bad)
    report.commit = _write(dest, creds, overwrite, fingerprint, "voc", len(stems), define, rows, message,
                           progress, report)
    return report


# --- progress ------------------------------------------------------------------------------------------
