"""``DeepLakeDetDataset``: an MMDetection 3 dataset over a Deep Lake dataset, read row by row.

At start-up only the schema and the annotation columns (boxes, labels) are read, column-wise; a
row's image bytes (and masks) are read when the pipeline asks for that row. No file is written.
The pipeline's image/annotation loading steps are replaced by lakedet's own
(``LoadImageFromFile`` -> ``LoadImageFromDeepLake``, ``LoadAnnotations`` -> ``LoadDeepLakeAnnotations``)
so MMDetection zoo configs work as written.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from mmdet.datasets import BaseDetDataset
from mmengine.registry import DefaultScope
from mmdet.registry import DATASETS

from . import transforms as _transforms  # noqa: F401  (registers the loading transforms)
from ..config.translate import bare_type, loader_type
from ..errors import ConfigError, DataError, SchemaError, did_you_mean
from .handover import share_batch
from ..source.deadline import wait
from .instances import COCO_FORMAT, ClassSelection, rows_to_keep, select_classes, small_boxes, training_targets
from .reader import ImageReader, chunk_layout
from ..schema.columns import (BoxFormat, TensorMap, box_format_from_metadata, boxes_to_xyxy,
                     class_names_from_metadata, resolve_tensor_map)
from ..source.rowrange import RowRange, is_row_range_view
from ..source.open import (OpenedDataset, Origin, SourceSpec, is_deeplake_dataset, open_source_with_origin,
                     origin_of)

__all__ = ["DeepLakeDetDataset", "RowInfo", "DATASET_KEYS", "column_kinds", "column_metadata", "place_loading_steps",
           "seed_sample"]

logger = logging.getLogger("lakedet")

#: The ``metainfo`` key (value True) marking a Deep Lake dataset: its evaluated samples carry their rows' ground
#: truth, which the metrics (``lakedet.evaluation.metrics``) then use instead of an annotation file.
ROWS_KEY = "deeplake_source"

#: The ``deeplake_*`` arguments the dataset itself takes.
DATASET_KEYS = ("deeplake_path", "deeplake_credentials", "deeplake_commit_id", "deeplake_commit",
                "deeplake_view_id", "deeplake_query", "deeplake_tensors", "deeplake_dataset",
                "deeplake_dataloader_type", "deeplake_cache", "deeplake_prefetch")

_IMAGE_LOADERS = {"LoadImageFromFile", "LoadImageFromNDArray", "LoadImageFromDeepLake"}
_ANNOTATION_LOADERS = {"LoadAnnotations", "LoadDeepLakeAnnotations"}
_COMPRESSED = {"jpeg", "jpg", "png", "webp", "bmp", "tiff", "tif", "jp2", "gif"}


def column_kinds(ds) -> dict[str, str]:
    """Column name -> Deep Lake type kind name (``"Image"``, ``"BoundingBox"``, ...)."""
    return {c.name: c.dtype.kind.name for c in ds.schema.columns}


def column_metadata(ds, column: str) -> dict:
    """A column's Deep Lake metadata as a plain dict."""
    metadata = ds[column].metadata
    return {key: metadata[key] for key in metadata.keys()}


def place_loading_steps(pipeline: Sequence, skip_bad_images: bool = False, top_level: bool = True,
                        keep_instances: bool = True) -> list:
    """Put lakedet's loading transforms in place of MMDetection's file loaders.

    ``LoadImageFromFile`` (any scope) becomes ``LoadImageFromDeepLake``; ``LoadAnnotations`` becomes
    ``LoadDeepLakeAnnotations`` with the same options; with ``keep_instances`` (evaluation),
    ``PackDetInputs`` also keeps ``instances`` (the row's original ground truth) so metrics need no
    annotation file, and ``image_id`` (the original image id, where the dataset has one). A pipeline with no image
    loader gets one in front.
    """
    from mmdet.datasets.transforms import PackDetInputs

    placed = []
    for step in pipeline:
        if not isinstance(step, Mapping):
            placed.append(step)  # an already built transform: leave it alone
            continue
        step = dict(step)
        kind = bare_type(step)
        if kind in _IMAGE_LOADERS:
            step = dict(type="LoadImageFromDeepLake", to_float32=step.get("to_float32", False),
                        color_type=step.get("color_type", "color"),
                        imdecode_backend=step.get("imdecode_backend", "cv2"),
                        skip_bad_images=step.get("skip_bad_images", skip_bad_images))
        elif kind in _ANNOTATION_LOADERS:
            step.pop("backend_args", None)
            step.pop("file_client_args", None)
            step["type"] = "LoadDeepLakeAnnotations"
        elif kind == "PackDetInputs" and keep_instances:
            meta_keys = tuple(step.get("meta_keys", PackDetInputs().meta_keys))
            step["meta_keys"] = meta_keys + tuple(k for k in ("instances", "image_id") if k not in meta_keys)
        for nested in ("transforms",):  # TestTimeAug / MultiScaleFlipAug
            if isinstance(step.get(nested), list):
                inner = step[nested]
                step[nested] = ([place_loading_steps(x, skip_bad_images, False, keep_instances) for x in inner]
                                if inner and isinstance(inner[0], list)
                                else place_loading_steps(inner, skip_bad_images, False, keep_instances))
        placed.append(step)
    kinds = [bare_type(s) for s in placed if isinstance(s, Mapping)]
    if top_level and pipeline and "LoadImageFromDeepLake" not in kinds:
        placed.insert(0, dict(type="LoadImageFromDeepLake", skip_bad_images=skip_bad_images))
    return placed


def polygon_area(points: np.ndarray) -> float:
    """Area of a simple polygon given as (K, 2) points (shoelace formula)."""
    x, y = points[:, 0], points[:, 1]
    return float(abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))) / 2)


def _wants_masks(pipeline: Sequence) -> bool:
    return any(isinstance(s, Mapping) and bare_type(s) == "LoadDeepLakeAnnotations"
               and s.get("with_mask", False) for s in pipeline)


class _Annotations:
    """Boxes (pixel or fractional x1y1x2y2, float64), labels and ignore flags of every row: flat arrays
    + offsets; COCO ``area`` per instance and (height, width) per row where the dataset has them."""

    def __init__(self, boxes: np.ndarray, labels: np.ndarray, ignore: np.ndarray, offsets: np.ndarray,
                 area: np.ndarray | None = None, sizes: np.ndarray | None = None,
                 image_ids: np.ndarray | None = None):
        self.boxes, self.labels, self.ignore, self.offsets = boxes, labels, ignore, offsets
        self.area, self.sizes, self.image_ids = area, sizes, image_ids

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def row(self, row: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        start, stop = self.offsets[row], self.offsets[row + 1]
        return self.boxes[start:stop], self.labels[start:stop], self.ignore[start:stop]

    def count(self, row: int) -> int:
        return int(self.offsets[row + 1] - self.offsets[row])


#: Rows whose annotation columns are read at once: bounds the memory of reading 100k+ rows.
ANNOTATION_CHUNK = 8192


#: Per-instance COCO area, per-row image size and original image id columns, read when the dataset has them.
AREA_COLUMN, SIZE_COLUMNS, IMAGE_ID_COLUMN = "area", ("height", "width"), "image_id"


def _read_rows(ds, column: str, start: int, stop: int, remote: str | None):
    """``ds[column][start:stop]``; from remote storage (``remote`` names it) a bounded wait."""
    if not remote:
        return ds[column][start:stop]
    return wait(ds[column].get_async(slice(start, stop)), f"rows {start}-{stop - 1}, column {column!r} of {remote!r}")


def read_annotations(ds, tensor_map: TensorMap, box_format: BoxFormat, remote: str | None = None) -> _Annotations:
    """Read the box, label (and ignore) columns of every row, column-wise in chunks of rows, and
    check them row by row; also ``area`` (per instance), ``height`` / ``width`` and ``image_id``
    (per row) when the dataset has such columns. ``remote``: the URL of remote storage, whose
    reads are bounded in time.

    Raises:
        DataError: a row's boxes are not ``(N, 4)``, or its box, label, flag and area counts differ.
    """
    names = {c.name for c in ds.schema.columns}
    has_area, has_sizes = AREA_COLUMN in names, all(c in names for c in SIZE_COLUMNS)
    counts = np.zeros(len(ds), dtype=np.int64)
    flat_boxes, flat_labels, flat_ignore, flat_area = [], [], [], []
    sizes = np.zeros((len(ds), 2), np.int64) if has_sizes else None
    image_ids = np.zeros(len(ds), np.int64) if IMAGE_ID_COLUMN in names else None
    for start in range(0, len(ds), ANNOTATION_CHUNK):
        stop = min(len(ds), start + ANNOTATION_CHUNK)
        box_rows = _read_rows(ds, tensor_map.gt_bboxes, start, stop, remote)
        label_rows = _read_rows(ds, tensor_map.gt_labels, start, stop, remote)
        ignore_rows = _read_rows(ds, tensor_map.gt_ignore, start, stop, remote) if tensor_map.gt_ignore else None
        area_rows = _read_rows(ds, AREA_COLUMN, start, stop, remote) if has_area else None
        if sizes is not None:
            for k, column in enumerate(SIZE_COLUMNS):
                values = _integers(ds, column, start, stop, remote)
                sizes = None if values is None else sizes
                if sizes is not None:
                    sizes[start:stop, k] = values
        if image_ids is not None:
            values = _integers(ds, IMAGE_ID_COLUMN, start, stop, remote)
            image_ids = None if values is None else image_ids
            if image_ids is not None:
                image_ids[start:stop] = values
        boxes_chunk, labels_chunk, ignore_chunk = [], [], []
        for offset, (boxes, labels) in enumerate(zip(box_rows, label_rows)):
            row = start + offset
            boxes = np.asarray(boxes)
            labels = np.asarray(labels).reshape(-1)
            if boxes.size == 0:
                boxes = boxes.reshape(0, 4)
            if boxes.ndim != 2 or boxes.shape[1] != 4:
                raise DataError(f"row {row}, column {tensor_map.gt_bboxes!r}: boxes must have shape (N, 4), "
                                f"got {boxes.shape}")
            if len(boxes) != len(labels):
                raise DataError(f"row {row}: column {tensor_map.gt_bboxes!r} has {len(boxes)} boxes but "
                                f"column {tensor_map.gt_labels!r} has {len(labels)} labels; each box needs "
                                "exactly one label")
            if ignore_rows is not None:
                ignore = np.asarray(ignore_rows[offset]).reshape(-1).astype(bool)
                if len(ignore) != len(boxes):
                    raise DataError(f"row {row}: column {tensor_map.gt_ignore!r} has {len(ignore)} flags but "
                                    f"column {tensor_map.gt_bboxes!r} has {len(boxes)} boxes; each box needs "
                                    "one flag")
                ignore_chunk.append(ignore)
            if area_rows is not None:
                area = np.asarray(area_rows[offset], np.float64).reshape(-1)
                if len(area) != len(boxes):
                    raise DataError(f"row {row}: column {AREA_COLUMN!r} has {len(area)} values but column "
                                    f"{tensor_map.gt_bboxes!r} has {len(boxes)} boxes")
                flat_area.append(area)
            counts[row] = len(boxes)
            boxes_chunk.append(boxes)
            labels_chunk.append(labels)
        del box_rows, label_rows, ignore_rows, area_rows
        if boxes_chunk:
            flat_boxes.append(boxes_to_xyxy(np.concatenate(boxes_chunk),
                                            BoxFormat(box_format.mode, False), dtype=np.float64))
            flat_labels.append(np.concatenate(labels_chunk).astype(np.int64))
            flat_ignore.append(np.concatenate(ignore_chunk) if ignore_chunk
                               else np.zeros(len(flat_boxes[-1]), bool))
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    boxes = np.concatenate(flat_boxes) if flat_boxes else np.zeros((0, 4), np.float64)
    labels = np.concatenate(flat_labels) if flat_labels else np.zeros((0,), np.int64)
    ignore = np.concatenate(flat_ignore) if flat_ignore else np.zeros((0,), bool)
    area = (np.concatenate(flat_area) if flat_area else np.zeros((0,), np.float64)) if has_area else None
    return _Annotations(boxes, labels, ignore, offsets, area, sizes, image_ids)


def _integers(ds, column: str, start: int, stop: int, remote: str | None = None) -> np.ndarray | None:
    """One integer per row of ``column`` (None when it does not hold one integer per row)."""
    try:
        values = np.asarray(_read_rows(ds, column, start, stop, remote)).reshape(-1)
        return values.astype(np.int64) if values.dtype.kind in "iu" and len(values) == stop - start else None
    except (TypeError, ValueError):
        return None


@DATASETS.register_module()
class DeepLakeDetDataset(BaseDetDataset):
    """A detection / instance segmentation dataset streamed from Deep Lake.

    Args:
        deeplake_path: dataset URL (local path, ``file://``, ``mem://``, ``s3://``, ``hub://`` ...).
        deeplake_credentials: ``{"token": ..., "creds": {...}}`` for remote datasets.
        deeplake_commit_id / deeplake_commit: read the dataset as of this commit.
        deeplake_view_id: open this saved view (a tag).
        deeplake_query: a TQL query selecting the rows.
        deeplake_tensors: ``{"img": col, "gt_bboxes": col, "gt_labels": col, "gt_masks": col}``;
            keys not given are inferred from column types.
        deeplake_dataset: an already opened Deep Lake dataset or view (overrides the path), or an
            ``OpenedDataset`` holding one (what ``train_detector(ds_train=...)`` puts in the config).
        deeplake_cache: a local cache for remote data, opt-in: a folder (``str``) or
            ``{"path": folder, "max_gb": 20}``; chunks read whole are kept there (bounded, least
            recently used dropped first; several workers and ranks on one machine share it), so
            later epochs read local disk (``lakedet.data.cache``). Also ``LAKEDET_CACHE_DIR`` /
            ``LAKEDET_CACHE_GB``.
        deeplake_prefetch: windows read ahead of the current batch when the sampler's order is
            known (default 1; 0 reads only the current batch's rows ahead).
        deeplake_dataloader_type: ``"c++"``/``"cpp"`` (or ``"auto"``, the default): a DataLoader batch's
            images are read together (``ImageReader``: one call for local data; for remote data,
            Deep Lake's native multi-threaded reader, fetching overlapping decoding, every wait
            bounded), samples are prepared single-threaded and a worker hands the batch over in
            one shared buffer; ``"python"``: one row at a time.
            Both deliver identical samples (same rows, order, boxes and pixels) for the same seed.
        skip_bad_images: skip rows whose image cannot be decoded, with a warning, instead of raising.
        **kwargs: MMDetection ``BaseDetDataset`` arguments (``pipeline``, ``test_mode``,
            ``filter_cfg``, ``metainfo``, ``indices`` ...). ``CocoDataset``'s ``ann_file``,
            ``data_root``, ``data_prefix`` and ``backend_args`` are accepted and unused, so a zoo
            config's dataset becomes a Deep Lake one by setting ``type`` and ``deeplake_path`` alone.

    Every sample's ``img_id`` is its row index in the opened dataset (or view).
    """

    METAINFO: dict = {"classes": (), "palette": None}

    def __init__(self, deeplake_path: str | None = None, deeplake_credentials: Mapping | None = None,
                 deeplake_commit_id: str | None = None, deeplake_commit: str | None = None,
                 deeplake_view_id: str | None = None, deeplake_query: str | None = None,
                 deeplake_tensors: Mapping[str, str] | None = None, deeplake_dataset: Any = None,
                 deeplake_dataloader_type: str = "auto", skip_bad_images: bool = False,
                 deeplake_cache: str | Mapping | None = None, deeplake_prefetch: int = 1,
                 pipeline: Sequence = (), **kwargs):
        unknown = [k for k in kwargs if k.startswith("deeplake_")]
        if unknown:
            raise ConfigError(f"DeepLakeDetDataset: unknown argument {unknown[0]!r}"
                              f"{did_you_mean(unknown[0], DATASET_KEYS)}; dataset arguments are "
                              f"{list(DATASET_KEYS)}")
        self.loader_type = "python" if loader_type(deeplake_dataloader_type) == "python" else "cpp"
        if isinstance(deeplake_dataset, OpenedDataset):
            deeplake_dataset = deeplake_dataset.dataset
        self.source = _source_spec(deeplake_path, deeplake_credentials, deeplake_commit_id,
                                   deeplake_commit, deeplake_view_id, deeplake_query, deeplake_dataset)
        if is_row_range_view(deeplake_dataset):  # rows only: schema and metadata from deeplake_path, if given
            parent, self.origin = (open_source_with_origin(SourceSpec(
                deeplake_path, token=(deeplake_credentials or {}).get("token"),
                creds=(deeplake_credentials or {}).get("creds"))) if deeplake_path else (None, Origin(None, None)))
            self._ds = RowRange(deeplake_dataset, parent)
        elif deeplake_dataset is not None:
            self._ds, self.origin = deeplake_dataset, origin_of(deeplake_dataset)
        else:
            self._ds, self.origin = open_source_with_origin(self.source)
        self._reopen = deeplake_dataset is None  # a worker started by spawn/forkserver opens its own
        _refuse_unfinished_ingest(self._ds, self.source.description)
        if len(self._ds) == 0:
            raise DataError(f"{self.source.description!r} has no rows; check deeplake_path, "
                            "deeplake_commit_id, deeplake_view_id or deeplake_query")
        self.tensor_map = resolve_tensor_map(column_kinds(self._ds), deeplake_tensors)
        self.box_format = box_format_from_metadata(column_metadata(self._ds, self.tensor_map.gt_bboxes),
                                                   self.tensor_map.gt_bboxes)
        remote = self.source.description if _is_remote_url(self.source.path) else None
        self._annotations = read_annotations(self._ds, self.tensor_map, self.box_format, remote)
        num_classes = int(self._annotations.labels.max()) + 1 if len(self._annotations.labels) else 0
        label_metadata = column_metadata(self._ds, self.tensor_map.gt_labels)
        classes = class_names_from_metadata(label_metadata, self.tensor_map.gt_labels, num_classes)
        self.annotation_format = label_metadata.get("annotation_format")
        image_type = self._ds.schema[self.tensor_map.img].dtype
        self._image_compressed = (image_type.kind.name == "Image"
                                  and str(image_type.sample_compression).lower() in _COMPRESSED)
        from .cache import open_cache

        self._reader = ImageReader(self._ds, self.tensor_map.img, self._image_compressed, self.source.description,
                                   layout=chunk_layout(self._ds, self.tensor_map.img),
                                   cache=open_cache(deeplake_cache), cache_key=f"{self.source.description}@{self.origin.commit}")
        self._pending: dict = {}  # row -> PendingRead, for the batch being prepared (c++ loader)
        if isinstance(deeplake_prefetch, bool) or not isinstance(deeplake_prefetch, int) or deeplake_prefetch < 0:
            raise ConfigError(f"deeplake_prefetch={deeplake_prefetch!r}: expected a number of windows >= 0, e.g. 1")
        self.prefetch = deeplake_prefetch
        self._plan = None  # the sampler's ReadPlan (attach_read_plan)
        self._in_batch = False  # inside __getitems__: the random states are restored once, after the batch
        self.samples_prepared = 0  # samples that went through the pipeline in this process
        self._following: tuple | None = None
        metainfo = dict(kwargs.pop("metainfo", None) or {})
        # no class_names anywhere: names were made up for the labels seen (the model may know more)
        self.class_names_generated = not metainfo.get("classes") and not label_metadata.get("class_names")
        self._selection = self._select_classes(classes, metainfo.get("classes"), label_metadata)
        metainfo["classes"] = self._selection.classes
        # the same value for every Deep Lake split: wrappers (ConcatDataset) compare metainfos
        metainfo[ROWS_KEY] = True
        if label_metadata.get("category_ids") and label_metadata.get("class_names"):
            # the COCO category id of each label, for results written in COCO ids
            id_of = {name: int(i) for name, i in zip(classes, label_metadata["category_ids"])}
            metainfo["category_ids"] = tuple(id_of.get(name) for name in self._selection.classes)
        # the original ground truth rides along with each sample only where a metric needs it
        pipeline = place_loading_steps(pipeline, skip_bad_images, keep_instances=kwargs.get("test_mode", False))
        self._masks_for_pipeline = self.tensor_map.gt_masks is not None and _wants_masks(pipeline)
        self._mask_kind = (self._ds.schema[self.tensor_map.gt_masks].dtype.kind.name
                           if self.tensor_map.gt_masks else None)
        self._fractional_polygons = bool(self.tensor_map.gt_masks) and str(
            (column_metadata(self._ds, self.tensor_map.gt_masks).get("coords") or {}).get("type", "pixel")
        ).lower() == "fractional"
        self.degenerate_polygons = 0
        self.dropped_boxes = 0  # boxes left out of the training targets (CocoDataset's rules), counted in full_init
        kwargs.setdefault("data_prefix", {})
        ann_file = kwargs.pop("ann_file", "")  # a zoo config's CocoDataset keys stay when only `type` is swapped
        if ann_file:
            logger.info("DeepLakeDetDataset(%s): ann_file=%r is not read; the annotations come from the rows",
                        self.source.description, ann_file)
        # the pipeline's transforms live in MMDetection's registry (or a downstream project's, whose
        # scope is kept): build them there whatever scope a caller left current
        current = DefaultScope.get_current_instance()
        scope = "mmdet" if current is None or current.scope_name == "mmengine" else current.scope_name
        with DefaultScope.overwrite_default_scope(scope):
            super().__init__(ann_file="", metainfo=metainfo, pipeline=pipeline, **kwargs)

    # --- what BaseDataset asks of a subclass -------------------------------------------------

    def full_init(self) -> None:
        """Decide which instances are targets and which rows this dataset serves, as MMDetection's
        ``CocoDataset`` / ``XMLDataset`` do (``lakedet.data.instances``), in flat arrays (no per-row
        dicts: 100k rows cost a few MB): instances of classes ``metainfo['classes']`` leaves out
        are dropped; when training, degenerate boxes are dropped (counted, logged once), boxes
        under ``filter_cfg.bbox_min_size`` become ignore regions (not for COCO data, as in
        MMDetection), and ``filter_cfg`` (``filter_empty_gt``, ``min_size``) selects rows; then
        ``indices``. In test mode every instance of a selected class stays: evaluation sees the
        ground truth ``CocoMetric`` reads from the annotation file."""
        if self._fully_initialized:
            return
        ann = self._annotations
        labels = self._selection.new_label[ann.labels] if len(ann.labels) else ann.labels
        selected = labels >= 0
        keep, ignore = selected.copy(), ann.ignore.copy()
        row_of = np.repeat(np.arange(len(ann), dtype=np.int64), np.diff(ann.offsets))
        filter_cfg = dict(self.filter_cfg or {})
        if not self.test_mode and not self.box_format.fractional:
            valid = training_targets(ann.boxes, ann.area, None if ann.sizes is None else ann.sizes[row_of])
            dropped = selected & ~valid
            self.dropped_boxes = int(dropped.sum())
            if self.dropped_boxes:
                rows = np.unique(row_of[dropped])
                logger.warning("%s: %d boxes with area <= 0, a side under 1 pixel or outside the image are left "
                               "out of the training targets, as MMDetection's CocoDataset does (rows %s%s)",
                               self.source.description, self.dropped_boxes, ", ".join(map(str, rows[:10].tolist())),
                               " ..." if len(rows) > 10 else "")
            keep &= valid
            if filter_cfg.get("bbox_min_size") is not None and self.annotation_format != COCO_FORMAT:
                ignore |= small_boxes(ann.boxes, filter_cfg["bbox_min_size"])
        self._labels, self._keep, self._ignore = labels, keep, ignore
        rows = np.arange(len(ann), dtype=np.int64)
        if not self.test_mode and filter_cfg:
            min_size = filter_cfg.get("min_size", 0) or 0
            if min_size and ann.sizes is None:
                logger.warning("%s: filter_cfg.min_size=%s is not applied: the dataset has no 'height' / 'width' "
                               "columns (lakedet ingest writes them)", self.source.description, min_size)
            per_row = np.bincount(row_of[selected], minlength=len(ann))
            rows = rows[rows_to_keep(per_row, ann.sizes, bool(filter_cfg.get("filter_empty_gt", False)), min_size)]
        if self._indices is not None:
            rows = _select(rows, self._indices)
        self._rows = rows
        self.data_list = []
        self._fully_initialized = True

    def __len__(self) -> int:
        if not self._fully_initialized:
            self.full_init()
        return len(self._rows)

    def get_subset_(self, indices) -> None:
        """Keep only the samples at ``indices`` (an int keeps the first/last ones), in place."""
        if not self._fully_initialized:
            self.full_init()
        self._rows = _select(self._rows, indices)

    def get_subset(self, indices) -> "DeepLakeDetDataset":
        """A dataset over the samples at ``indices``, sharing this one's opened source."""
        if not self._fully_initialized:
            self.full_init()
        subset = copy.copy(self)
        subset._rows, subset._pending = _select(self._rows, indices), {}
        return subset

    def _sample(self, idx: int) -> dict:
        """``img_id`` (the row), ``img_path`` (``<dataset>[row]``) and ``sample_idx`` of sample ``idx``."""
        if not self._fully_initialized:
            self.full_init()
        if idx < 0:
            idx += len(self._rows)
        row = int(self._rows[idx])
        return {"img_id": row, "img_path": f"{self.source.description}[{row}]", "sample_idx": idx}

    def get_data_info(self, idx: int) -> dict:
        """Sample ``idx`` as MMDetection's datasets describe one, without reading its image:
        ``img_id``, ``img_path``, ``instances`` (boxes, labels, ignore flags, COCO areas) and
        ``height`` / ``width`` (stored columns, else read from the image's header when first asked:
        what the zoo's ``AspectRatioBatchSampler`` reads). ``prepare_data`` adds the row's stored
        image (and masks) for the loading transforms."""
        info = RowInfo(self, self._sample(idx))
        row = info["img_id"]
        ann = self._annotations
        start = ann.offsets[row]
        kept = np.flatnonzero(self._keep[start:ann.offsets[row + 1]])
        flat = start + kept
        info["instances"] = [{"bbox": box.tolist(), "bbox_label": int(label), "ignore_flag": int(flag)}
                             for box, label, flag in zip(ann.boxes[flat], self._labels[flat], self._ignore[flat])]
        if ann.area is not None:  # COCO's area: the metric's area ranges, as CocoMetric reads the file
            for instance, area in zip(info["instances"], ann.area[flat]):
                if area == area:
                    instance["area"] = float(area)
        if ann.sizes is not None:
            info["height"], info["width"] = (int(v) for v in ann.sizes[row])
        if ann.image_ids is not None:  # the original (COCO) image id, for results written in COCO ids
            info["image_id"] = int(ann.image_ids[row])
        if self.box_format.fractional:
            info["deeplake_fractional_boxes"] = True
        return info

    def _add_row_data(self, info: dict) -> dict:
        """The row's stored image bytes (or array), and its masks where the pipeline loads them or
        the metric needs them (segm ground truth), for the loading transforms."""
        row = info["img_id"]
        pending = self._pending.pop(row, None) if self._pending else None
        value = pending.result() if pending is not None else self._reader.read(row)
        info["img_bytes" if isinstance(value, (bytes, bytearray, memoryview)) else "img_array"] = value
        info["deeplake_img_column"] = self.tensor_map.img
        if self._masks_for_pipeline or (self.test_mode and self._mask_kind):
            ann = self._annotations
            start = ann.offsets[row]
            kept = np.flatnonzero(self._keep[start:ann.offsets[row + 1]])
            self._add_masks(info, row, kept, int(ann.count(row)))
        return dict(info)

    def image_size(self, row: int) -> tuple[int, int]:
        """``(height, width)`` of a row's image, from its header (kept once read)."""
        sizes = self.__dict__.setdefault("_header_sizes", {})
        if row not in sizes:
            from .transforms import image_size

            found = image_size(self._reader.read(row), self._image_compressed)
            if found is None:
                raise DataError(f"row {row}, column {self.tensor_map.img!r} of {self.source.description!r}: "
                                "the image's size cannot be read (corrupt or unsupported bytes)")
            sizes[row] = found
        return sizes[row]

    def __getitems__(self, indices: Sequence[int]) -> list:
        """A batch of samples (PyTorch's DataLoader asks for a whole batch at once when this exists).

        With the ``c++`` loader, the batch's images are read together (``ImageReader``: one call
        for a local dataset; for remote storage every row is requested at once and waited for,
        bounded, when its sample is prepared), then each sample goes through ``__getitem__`` (so
        MMDetection's re-draw of a failed training sample still applies); OpenCV and torch run
        single-threaded meanwhile; inside DataLoader workers, the batch's tensors are
        handed to the main process in one shared-memory buffer (``share_batch``). The ``python``
        loader reads one row at a time and leaves the hand-over to PyTorch.
        """
        self._ensure_open()
        with _kept_random_states(self._plan is not None and not in_worker() and not self._in_batch):
            self._in_batch = True
            try:
                return self._batch(indices)
            finally:
                self._in_batch = False

    def _batch(self, indices: Sequence[int]) -> list:
        if self.loader_type == "python":
            return [self[idx] for idx in indices]
        rows = [self._sample(idx)["img_id"] for idx in indices]
        with single_threaded():
            self._follow_plan()
            self._pending = self._reader.start(dict.fromkeys(rows))
            try:
                samples = [self[idx] for idx in indices]
            finally:
                self._pending = {}
            if in_worker():
                share_batch(samples)
            return samples

    def __getitem__(self, idx: int) -> dict:
        self._ensure_open()
        with _kept_random_states(self._plan is not None and not in_worker() and not self._in_batch):
            return super().__getitem__(idx)

    def prepare_data(self, idx) -> Any:
        """The pipeline's result for sample ``idx``; with a sampler's ``ReadPlan`` the sample's
        random draws (Python, NumPy, torch) are seeded from ``(seed, epoch, rank, idx)``: the same
        augmentations whatever the number of DataLoader workers, and after ``--resume``."""
        plan = self._plan
        if plan is not None and plan.epoch >= 0:
            seed_sample(plan.seed, plan.epoch, plan.rank, int(idx))
        self.samples_prepared += 1
        return self.pipeline(self._add_row_data(self.get_data_info(idx)))

    # --- the read plan, remote reading -------------------------------------------------------

    @property
    def is_remote(self) -> bool:
        """The rows come from remote storage (or a dataset object the caller opened)."""
        return self._reader.remote

    def read_blocks(self):
        """For each sample position, the index of the storage chunk holding its image (the
        blocks of the chunk-aware order), or None when Deep Lake does not report the layout
        (views, queries)."""
        layout = self._reader.layout
        if layout is None:
            return None
        if not self._fully_initialized:
            self.full_init()
        return layout.chunk_of(self._rows)

    def attach_read_plan(self, plan) -> None:
        """Take the sampler's ``ReadPlan`` (order, seed, shared epoch): rows are read ahead along
        it and each sample's random draws are seeded from it."""
        self._plan = plan
        self._following = None

    def _follow_plan(self) -> None:
        """Point the reader at the rows this worker reads this epoch (once per epoch and worker)."""
        plan = self._plan
        if plan is None or plan.epoch < 0 or not self._reader.remote:
            return  # local reads are one batched call in any order (measured: reading ahead costs more)
        import torch.utils.data

        info = torch.utils.data.get_worker_info()
        worker = info.id if info is not None else 0
        key = (plan.epoch, worker)
        if self._following == key:
            return
        self._following = key
        positions = plan.worker_rows(plan.epoch, worker, len(self))
        layout = self._reader.layout
        chunk_rows = float(np.diff(layout.bounds).mean()) if layout is not None else 64.0
        lookahead = int(self.prefetch * plan.window * chunk_rows) if plan.order == "chunks" else \
            self.prefetch * plan.batch_size * 2
        following = plan.worker_rows(plan.epoch + 1, worker, len(self)) if plan.shuffle else positions
        self._reader.follow(self._rows[positions], lookahead, whole_chunks=plan.order == "chunks",
                            next_rows=self._rows[following])

    def _ensure_open(self) -> None:
        """Reopen the source in a worker started by ``spawn``/``forkserver`` (see ``__getstate__``)."""
        if self._ds is None:
            self._ds = open_source_with_origin(self.source)[0]
            self._reader.ds = self._ds

    def __getstate__(self):
        """Pickled for ``spawn``/``forkserver`` DataLoader workers: a source lakedet opened is
        reopened by the worker (no Deep Lake object crosses processes); a dataset object the
        caller opened goes as Deep Lake pickles it."""
        state = dict(self.__dict__)
        state["_pending"], state["_following"] = {}, None
        if self._reopen:
            state["_ds"] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        if self._ds is not None:
            self._reader.ds = self._ds

    def get_cat_ids(self, idx: int) -> list[int]:
        """Labels of one sample, without reading its image (used by ClassBalancedDataset)."""
        row = self._sample(idx)["img_id"]
        start, stop = self._annotations.offsets[row], self._annotations.offsets[row + 1]
        return self._labels[start:stop][self._keep[start:stop]].tolist()

    # --- helpers -----------------------------------------------------------------------------

    def _add_masks(self, info: dict, row: int, kept: np.ndarray, stored: int) -> None:
        """The masks of the row's ``kept`` instances (of ``stored``): COCO segmentations (a Text
        column of JSON) as the file had them, for MMDetection's ``LoadAnnotations`` to decode;
        binary masks (H x W x N) for the pipeline and as RLE for the metric; polygons as
        MMDetection's instance ``mask`` lists. A degenerate polygon (< 3 points or zero area) is
        dropped with a counted warning and its instance becomes an ignore region."""
        column = self.tensor_map.gt_masks
        if self._reader.remote:
            value = wait(self._ds[column].get_async(row), f"row {row}, column {column!r} of {self.source.description!r}")
        else:
            value = self._ds[column][row]
        instances = info["instances"]
        info["deeplake_mask_column"] = column
        if self._mask_kind == "Text":
            self._add_segmentations(info, row, value, kept, stored)
            return
        if self._mask_kind in ("BinaryMask", "Generic"):
            masks = np.asarray(value)
            masks = masks.reshape(masks.shape[0], masks.shape[1], -1) if masks.ndim >= 2 else \
                np.zeros((0, 0, 0), bool)
            if masks.shape[2] != stored:
                raise DataError(f"row {row}: column {column!r} has {masks.shape[2]} masks but "
                                f"column {self.tensor_map.gt_bboxes!r} has {stored} boxes")
            masks = masks[:, :, kept]
            if self._masks_for_pipeline:
                info["deeplake_binary_masks"] = masks
            if self.test_mode and len(instances):
                from pycocotools import mask as mask_utils

                rles = mask_utils.encode(np.asfortranarray(masks.astype(np.uint8)))
                for instance, rle in zip(instances, rles):
                    instance["mask"] = dict(size=[int(v) for v in rle["size"]], counts=rle["counts"].decode())
            return
        polygons = list(value) if value is not None else []
        if len(polygons) != stored:
            raise DataError(f"row {row}: column {column!r} has {len(polygons)} polygons but "
                            f"column {self.tensor_map.gt_bboxes!r} has {stored} boxes")
        for index, instance in zip(kept.tolist(), instances):
            polygon = polygons[index]
            points = np.asarray(polygon, dtype=np.float64).reshape(-1, 2)
            if len(points) >= 3 and polygon_area(points) > 0:
                instance["mask"] = [points.reshape(-1).tolist()]
                continue
            self.degenerate_polygons += 1
            logger.warning("row %d, column %r: the polygon of instance %d has %d points%s; it is dropped "
                           "and the instance becomes an ignore region (%d degenerate polygons so far)",
                           row, column, index, len(points), "" if len(points) < 3 else " and no area",
                           self.degenerate_polygons)
            instance["mask"] = []
            instance["ignore_flag"] = 1
        if self._fractional_polygons:
            info["deeplake_fractional_polygons"] = True

    def _add_segmentations(self, info: dict, row: int, value, kept: np.ndarray, stored: int) -> None:
        """COCO segmentations as ``CocoDataset`` puts them on instances: ``mask`` is the file's
        polygons or RLE, absent when the annotation had none."""
        column = self.tensor_map.gt_masks
        try:
            segmentations = json.loads(value) if value else []
        except (TypeError, ValueError) as exc:
            raise DataError(f"row {row}, column {column!r}: not a JSON list of COCO segmentations ({exc})") from exc
        if not isinstance(segmentations, list) or len(segmentations) != stored:
            raise DataError(f"row {row}: column {column!r} holds "
                            f"{len(segmentations) if isinstance(segmentations, list) else 'no list of'} "
                            f"segmentations but column {self.tensor_map.gt_bboxes!r} has {stored} boxes")
        for index, instance in zip(kept.tolist(), info["instances"]):
            if segmentations[index]:
                instance["mask"] = segmentations[index]
            elif self._masks_for_pipeline:
                raise DataError(f"row {row}, column {column!r}: instance {index} has no segmentation and the "
                                "pipeline loads masks (LoadAnnotations with_mask=True); give it one, or map "
                                "deeplake_tensors['gt_masks'] to None for a box-only model")

    def _select_classes(self, stored: tuple, wanted, label_metadata: dict) -> ClassSelection:
        """``metainfo['classes']`` against the stored class names (``lakedet.data.instances.select_classes``)."""
        column = self.tensor_map.gt_labels
        if wanted is not None and not label_metadata.get("class_names"):
            # no names to select by: the given names name the stored labels by position
            self._check_labels(len(wanted), "metainfo['classes']")
            return ClassSelection(tuple(wanted), np.arange(len(wanted), dtype=np.int64))
        self._check_labels(len(stored), f"column {column!r} class_names")
        if wanted is None:
            return select_classes(stored, None)
        wanted = (wanted,) if isinstance(wanted, str) else tuple(wanted)
        file_order = None
        if self.annotation_format == COCO_FORMAT and label_metadata.get("categories"):
            file_order = [str(c.get("name")) for c in json.loads(label_metadata["categories"])]
        selection = select_classes(stored, wanted, self.annotation_format, file_order)
        if len(selection.missing) == len(wanted):
            raise ConfigError(f"metainfo['classes'] = {wanted}: none of these is a class of column {column!r} "
                              f"(its classes: {list(stored)}); classes are selected by name")
        if selection.missing:
            logger.warning("metainfo['classes']: %s not a class of column %r%s; no annotation gets %s",
                           " and ".join(map(repr, selection.missing)) + (" is" if len(selection.missing) == 1
                                                                         else " are"),
                           column, did_you_mean(selection.missing[0], stored),
                           "it" if len(selection.missing) == 1 else "them")
        if self.annotation_format == COCO_FORMAT and selection.classes != tuple(n for n in wanted if n in stored):
            logger.warning("metainfo['classes'] = %s: as in MMDetection's CocoDataset, labels follow the COCO "
                           "file's category order, not the order given: label i is %s[i]", wanted, selection.classes)
        return selection

    def _check_labels(self, num_classes: int, source: str) -> None:
        labels = self._annotations.labels
        bad = np.flatnonzero((labels < 0) | (labels >= num_classes))
        if len(bad):
            row = int(np.searchsorted(self._annotations.offsets, bad[0], side="right") - 1)
            raise DataError(f"row {row}, column {self.tensor_map.gt_labels!r}: label {labels[bad[0]]} "
                            f"is outside the {num_classes} classes of {source}")

    def name_classes(self, count: int) -> None:
        """Generated class names only: name ``count`` classes (``class_0 ..``), e.g. as many as the
        model's head predicts, so that labels the rows do not show still have a name."""
        if not self.class_names_generated or count < len(self._metainfo["classes"]):
            raise ConfigError(f"cannot name {count} classes of {self.source.description!r}: its classes are "
                              f"{tuple(self._metainfo['classes'])}")
        self._metainfo["classes"] = tuple(f"class_{i}" for i in range(count))

    def lineage(self) -> dict:
        """Which data this dataset reads: URL, branch, commit, view/query, rows, column mapping."""
        extra = {}
        if self.origin.format != "deeplake4":  # data Deep Lake 3 wrote, read in place
            extra = dict(head=self.origin.head)  # the commit is a branch's HEAD: uncommitted changes included
        return dict(url=self.source.path, format=self.origin.format, **extra, branch=self.origin.branch,
                    commit=self.origin.commit,
                    requested_commit=self.source.commit, view=self.source.view, query=self.source.query,
                    rows=len(self), rows_in_source=len(self._annotations), tensors=self.tensor_map.as_dict(),
                    box_format=dict(mode=self.box_format.mode.value,
                                    type="fractional" if self.box_format.fractional else "pixel"),
                    classes=list(self.metainfo.get("classes", ())))

    def __repr__(self) -> str:
        return (f"DeepLakeDetDataset({self.source.description!r}, rows={len(self._annotations)}, "
                f"tensors={self.tensor_map.as_dict()}, boxes={self.box_format.mode.value}"
                f"{' fractional' if self.box_format.fractional else ' pixel'})")


class RowInfo(dict):
    """A sample's ``data_info``; ``height`` / ``width`` not stored in the dataset are read from the
    image's header on first access (``DeepLakeDetDataset.image_size``), so that nothing is read
    for the many users of ``get_data_info`` that never look at them."""

    def __init__(self, dataset: "DeepLakeDetDataset", info: dict):
        super().__init__(info)
        self._dataset = dataset

    def __missing__(self, key):
        if key not in ("height", "width"):
            raise KeyError(key)
        self["height"], self["width"] = self._dataset.image_size(self["img_id"])
        return self[key]

    def __reduce__(self):  # pickles (and copies) as a plain dict
        return dict, (dict(self),)


def _select(rows: np.ndarray, indices) -> np.ndarray:
    """``rows`` at ``indices``, as mmengine's ``indices`` argument means it (an int: the first n,
    or the last -n)."""
    if isinstance(indices, (int, np.integer)):
        return rows[:indices] if indices >= 0 else rows[indices:]
    if isinstance(indices, (Sequence, np.ndarray)) and not isinstance(indices, str):
        return rows[np.asarray(indices, dtype=np.int64)] if len(indices) else rows[:0]
    raise ConfigError(f"indices={indices!r}: expected an int (the first n samples) or a list of sample indices")




def _is_remote_url(path: str) -> bool:
    from ..source.open import is_remote

    return is_remote(path) or path.startswith("<")


def seed_sample(seed: int, epoch: int, rank: int, idx: int) -> None:
    """Seed Python's, NumPy's and torch's (CPU) global random streams for one sample, from a hash
    of ``(seed, epoch, rank, idx)``: about 15 us (``torch.manual_seed``, which also seeds every
    accelerator, took 0.2-1 ms)."""
    import hashlib
    import random

    import torch

    digest = hashlib.blake2b(b"%d,%d,%d,%d" % (seed, epoch, rank, idx), digest_size=4).digest()
    value = int.from_bytes(digest, "little")
    random.seed(value)
    np.random.seed(value)
    torch.default_generator.manual_seed(value)


@contextlib.contextmanager
def _kept_random_states(keep: bool):
    """Restore the random states afterwards (``keep``): in the training process per-sample seeding
    must not move the streams the model draws from."""
    if not keep:
        yield
        return
    from ..engine.checkpoints import get_rng_states, set_rng_states

    states = get_rng_states()
    try:
        yield
    finally:
        set_rng_states(states)


_threads_limited_in: int | None = None


def in_worker() -> bool:
    """True inside a PyTorch DataLoader worker process."""
    import torch.utils.data

    return torch.utils.data.get_worker_info() is not None


@contextlib.contextmanager
def single_threaded():
    """Run OpenCV and torch single-threaded while preparing samples.

    Inside a DataLoader worker this is set once for the process: each worker already is one of
    several processes sharing the cores, and their own thread pools would only compete
    (over-subscription; measured: torch's HWC->CHW copy in ``PackDetInputs`` takes 2.7 ms with two
    threads and 0.3 ms with one on 2 cores). In the main process (``num_workers=0``) the settings
    are restored afterwards, since the model runs there too.
    """
    global _threads_limited_in
    import cv2
    import torch

    if in_worker():
        if _threads_limited_in != os.getpid():
            _threads_limited_in = os.getpid()
            cv2.setNumThreads(1)
            torch.set_num_threads(1)
        yield
        return
    torch_threads, cv2_threads = torch.get_num_threads(), cv2.getNumThreads()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        torch.set_num_threads(torch_threads)
        cv2.setNumThreads(cv2_threads)


def _refuse_unfinished_ingest(ds, description: str) -> None:
    try:
        state = ds.metadata["lakedet_ingest"] if "lakedet_ingest" in ds.metadata.keys() else None
    except Exception:  # views have no dataset metadata
        return
    if state == "in-progress":
        raise DataError(f"{description!r} is an interrupted `lakedet ingest` (marked in-progress); "
                        "run the ingest again to finish it")
    converting = ds.metadata["lakedet_convert"] if "lakedet_convert" in ds.metadata.keys() else None
    if converting == "in-progress":
        raise DataError(f"{description!r} is an interrupted `lakedet convert` (marked in-progress); delete it "
                        "and run the conversion again")


def _source_spec(path, credentials, commit_id, commit, view, query, dataset) -> SourceSpec:
    credentials = dict(credentials or {})
    for key in ("username", "password"):
        if credentials.get(key):
            raise ConfigError(f"deeplake_credentials[{key!r}] is not supported by Deep Lake 4; "
                              "use deeplake_credentials['token'] (an API token) instead")
    unknown = set(credentials) - {"username", "password", "token", "creds"}
    if unknown:
        key = sorted(unknown)[0]
        raise ConfigError(f"deeplake_credentials: unknown key {key!r}"
                          f"{did_you_mean(key, ['token', 'creds'])}; keys are 'token' and 'creds'")
    if commit_id and commit and commit_id != commit:
        raise ConfigError(f"deeplake_commit_id={commit_id!r} and deeplake_commit={commit!r} disagree; give one")
    if dataset is not None:
        if not is_deeplake_dataset(dataset):
            raise ConfigError(f"deeplake_dataset must be an opened Deep Lake dataset or view, "
                              f"got {type(dataset).__name__}")
        given = [k for k, v in (("deeplake_commit_id", commit_id), ("deeplake_commit", commit),
                                ("deeplake_view_id", view), ("deeplake_query", query)) if v]
        if given:
            raise ConfigError(f"{given[0]} cannot be applied to an opened dataset object (deeplake_dataset / "
                              "ds_train / ds_val): select the rows on the object itself, e.g. ds.query(...)")
        path = f"<rows of {path}>" if path and type(dataset).__name__ == "RowRangeView" else f"<opened {type(dataset).__name__}>"
    if not path:
        raise ConfigError("DeepLakeDetDataset needs deeplake_path (a dataset URL) or deeplake_dataset")
    return SourceSpec(path=path, token=credentials.get("token"), creds=credentials.get("creds"),
                      commit=commit_id or commit, view=view, query=query)
