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
import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from mmdet.datasets import BaseDetDataset
from mmengine.registry import DefaultScope, init_default_scope
from mmdet.registry import DATASETS

from . import transforms as _transforms  # noqa: F401  (registers the loading transforms)
from .config import bare_type, loader_type
from .errors import ConfigError, DataError, SchemaError, did_you_mean
from .handover import share_batch
from .deadline import wait
from .reader import ImageReader, chunk_layout
from .schema import (BoxFormat, TensorMap, box_format_from_metadata, boxes_to_xyxy,
                     class_names_from_metadata, resolve_tensor_map)
from .source import SourceSpec, is_deeplake_dataset, open_source_with_origin, origin_of

__all__ = ["DeepLakeDetDataset", "DATASET_KEYS", "column_kinds", "column_metadata", "place_loading_steps",
           "seed_sample"]

logger = logging.getLogger("lakedet")

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
    annotation file. A pipeline with no image
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
                        skip_bad_images=step.get("skip_bad_images", skip_bad_images))
        elif kind in _ANNOTATION_LOADERS:
            step.pop("backend_args", None)
            step.pop("file_client_args", None)
            step["type"] = "LoadDeepLakeAnnotations"
        elif kind == "PackDetInputs" and keep_instances:
            meta_keys = tuple(step.get("meta_keys", PackDetInputs().meta_keys))
            if "instances" not in meta_keys:
                step["meta_keys"] = meta_keys + ("instances",)
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
    """Boxes (pixel or fractional x1y1x2y2), labels and ignore flags of every row: flat arrays + offsets."""

    def __init__(self, boxes: np.ndarray, labels: np.ndarray, ignore: np.ndarray, offsets: np.ndarray):
        self.boxes, self.labels, self.ignore, self.offsets = boxes, labels, ignore, offsets

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def row(self, row: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        start, stop = self.offsets[row], self.offsets[row + 1]
        return self.boxes[start:stop], self.labels[start:stop], self.ignore[start:stop]

    def count(self, row: int) -> int:
        return int(self.offsets[row + 1] - self.offsets[row])


#: Rows whose annotation columns are read at once: bounds the memory of reading 100k+ rows.
ANNOTATION_CHUNK = 8192


def _read_rows(ds, column: str, start: int, stop: int, remote: str | None):
    """``ds[column][start:stop]``; from remote storage (``remote`` names it) a bounded wait."""
    if not remote:
        return ds[column][start:stop]
    return wait(ds[column].get_async(slice(start, stop)), f"rows {start}-{stop - 1}, column {column!r} of {remote!r}")


def read_annotations(ds, tensor_map: TensorMap, box_format: BoxFormat, remote: str | None = None) -> _Annotations:
    """Read the box, label (and ignore) columns of every row, column-wise in chunks of rows, and
    check them row by row. ``remote``: the URL of remote storage, whose reads are bounded in time.

    Raises:
        DataError: a row's boxes are not ``(N, 4)``, or its box, label and flag counts differ.
    """
    counts = np.zeros(len(ds), dtype=np.int64)
    flat_boxes, flat_labels, flat_ignore = [], [], []
    for start in range(0, len(ds), ANNOTATION_CHUNK):
        stop = min(len(ds), start + ANNOTATION_CHUNK)
        box_rows = _read_rows(ds, tensor_map.gt_bboxes, start, stop, remote)
        label_rows = _read_rows(ds, tensor_map.gt_labels, start, stop, remote)
        ignore_rows = _read_rows(ds, tensor_map.gt_ignore, start, stop, remote) if tensor_map.gt_ignore else None
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
            counts[row] = len(boxes)
            boxes_chunk.append(boxes)
            labels_chunk.append(labels)
        del box_rows, label_rows, ignore_rows
        if boxes_chunk:
            flat_boxes.append(boxes_to_xyxy(np.concatenate(boxes_chunk),
                                            BoxFormat(box_format.mode, False)))
            flat_labels.append(np.concatenate(labels_chunk).astype(np.int64))
            flat_ignore.append(np.concatenate(ignore_chunk) if ignore_chunk
                               else np.zeros(len(flat_boxes[-1]), bool))
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    boxes = np.concatenate(flat_boxes) if flat_boxes else np.zeros((0, 4), np.float32)
    labels = np.concatenate(flat_labels) if flat_labels else np.zeros((0,), np.int64)
    ignore = np.concatenate(flat_ignore) if flat_ignore else np.zeros((0,), bool)
    return _Annotations(boxes, labels, ignore, offsets)


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
        deeplake_dataset: an already opened Deep Lake dataset or view (overrides the path).
        deeplake_cache: a local cache for remote data, opt-in: a folder (``str``) or
            ``{"path": folder, "max_gb": 20}``; chunks read whole are kept there (bounded, least
            recently used dropped first; several workers and ranks on one machine share it), so
            later epochs read local disk (``lakedet.cache``). Also ``LAKEDET_CACHE_DIR`` /
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
            ``filter_cfg``, ``metainfo``, ``indices`` ...).

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
        if DefaultScope.get_current_instance() is None:
            init_default_scope("mmdet")  # the pipeline's transforms live in MMDetection's registry
        self.source = _source_spec(deeplake_path, deeplake_credentials, deeplake_commit_id,
                                   deeplake_commit, deeplake_view_id, deeplake_query, deeplake_dataset)
        if deeplake_dataset is not None:
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
        classes = class_names_from_metadata(column_metadata(self._ds, self.tensor_map.gt_labels),
                                            self.tensor_map.gt_labels, num_classes)
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
        metainfo.setdefault("classes", classes)
        self._check_labels(len(metainfo["classes"]), "metainfo['classes']" if metainfo["classes"] != classes
                           else f"column {self.tensor_map.gt_labels!r} class_names")
        # the original ground truth rides along with each sample only where a metric needs it
        pipeline = place_loading_steps(pipeline, skip_bad_images, keep_instances=kwargs.get("test_mode", False))
        self._masks_for_pipeline = self.tensor_map.gt_masks is not None and _wants_masks(pipeline)
        self._mask_kind = (self._ds.schema[self.tensor_map.gt_masks].dtype.kind.name
                           if self.tensor_map.gt_masks else None)
        self._fractional_polygons = bool(self.tensor_map.gt_masks) and str(
            (column_metadata(self._ds, self.tensor_map.gt_masks).get("coords") or {}).get("type", "pixel")
        ).lower() == "fractional"
        self.degenerate_polygons = 0
        kwargs.setdefault("data_prefix", {})
        super().__init__(ann_file="", metainfo=metainfo, pipeline=pipeline, **kwargs)

    # --- what BaseDataset asks of a subclass -------------------------------------------------

    def full_init(self) -> None:
        """Select the rows this dataset serves, as one index array (no per-row dicts: 100k rows
        cost 0.8 MB): ``filter_cfg.filter_empty_gt`` (training only, as MMDetection's
        CocoDataset), then ``indices``."""
        if self._fully_initialized:
            return
        rows = np.arange(len(self._annotations), dtype=np.int64)
        if not self.test_mode and self.filter_cfg:
            if self.filter_cfg.get("min_size"):
                logger.info("filter_cfg.min_size is not applied: image sizes are only known after decoding")
            if self.filter_cfg.get("filter_empty_gt", False):
                rows = rows[np.diff(self._annotations.offsets) > 0]
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
        """The row's stored image bytes and its ground truth, ready for the loading transforms."""
        info = self._sample(idx)
        row = info["img_id"]
        pending = self._pending.pop(row, None) if self._pending else None
        value = pending.result() if pending is not None else self._reader.read(row)
        info["img_bytes" if isinstance(value, (bytes, bytearray, memoryview)) else "img_array"] = value
        info["deeplake_img_column"] = self.tensor_map.img
        boxes, labels, ignore = self._annotations.row(row)
        info["instances"] = [{"bbox": box.tolist(), "bbox_label": int(label), "ignore_flag": int(flag)}
                             for box, label, flag in zip(boxes, labels, ignore)]
        if self.box_format.fractional:
            info["deeplake_fractional_boxes"] = True
        # masks: for the pipeline when it loads them; for the metric (segm ground truth) when evaluating
        if self._masks_for_pipeline or (self.test_mode and self._mask_kind):
            self._add_masks(info, row)
        return info

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
        return super().prepare_data(idx)

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
        return self._annotations.row(row)[1].tolist()

    # --- helpers -----------------------------------------------------------------------------

    def _add_masks(self, info: dict, row: int) -> None:
        """Binary masks (H x W x N) for the pipeline and as RLE for the metric; polygons as
        MMDetection's instance ``mask`` lists. A degenerate polygon (< 3 points or zero area) is
        dropped with a counted warning and its instance becomes an ignore region."""
        column = self.tensor_map.gt_masks
        if self._reader.remote:
            value = wait(self._ds[column].get_async(row), f"row {row}, column {column!r} of {self.source.description!r}")
        else:
            value = self._ds[column][row]
        instances = info["instances"]
        info["deeplake_mask_column"] = column
        if self._mask_kind in ("BinaryMask", "Generic"):
            masks = np.asarray(value)
            masks = masks.reshape(masks.shape[0], masks.shape[1], -1) if masks.ndim >= 2 else \
                np.zeros((0, 0, 0), bool)
            if masks.shape[2] != len(instances):
                raise DataError(f"row {row}: column {column!r} has {masks.shape[2]} masks but "
                                f"column {self.tensor_map.gt_bboxes!r} has {len(instances)} boxes")
            if self._masks_for_pipeline:
                info["deeplake_binary_masks"] = masks
            if self.test_mode and len(instances):
                from pycocotools import mask as mask_utils

                rles = mask_utils.encode(np.asfortranarray(masks.astype(np.uint8)))
                for instance, rle in zip(instances, rles):
                    instance["mask"] = dict(size=[int(v) for v in rle["size"]], counts=rle["counts"].decode())
            return
        polygons = list(value) if value is not None else []
        if len(polygons) != len(instances):
            raise DataError(f"row {row}: column {column!r} has {len(polygons)} polygons but "
                            f"column {self.tensor_map.gt_bboxes!r} has {len(instances)} boxes")
        for index, (instance, polygon) in enumerate(zip(instances, polygons)):
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

    def _check_labels(self, num_classes: int, source: str) -> None:
        labels = self._annotations.labels
        bad = np.flatnonzero((labels < 0) | (labels >= num_classes))
        if len(bad):
            row = int(np.searchsorted(self._annotations.offsets, bad[0], side="right") - 1)
            raise DataError(f"row {row}, column {self.tensor_map.gt_labels!r}: label {labels[bad[0]]} "
                            f"is outside the {num_classes} classes of {source}")

    def lineage(self) -> dict:
        """Which data this dataset reads: URL, branch, commit, view/query, rows, column mapping."""
        return dict(url=self.source.path, branch=self.origin.branch, commit=self.origin.commit,
                    requested_commit=self.source.commit, view=self.source.view, query=self.source.query,
                    rows=len(self), rows_in_source=len(self._annotations), tensors=self.tensor_map.as_dict(),
                    box_format=dict(mode=self.box_format.mode.value,
                                    type="fractional" if self.box_format.fractional else "pixel"),
                    classes=list(self.metainfo.get("classes", ())))

    def __repr__(self) -> str:
        return (f"DeepLakeDetDataset({self.source.description!r}, rows={len(self._annotations)}, "
                f"tensors={self.tensor_map.as_dict()}, boxes={self.box_format.mode.value}"
                f"{' fractional' if self.box_format.fractional else ' pixel'})")


def _select(rows: np.ndarray, indices) -> np.ndarray:
    """``rows`` at ``indices``, as mmengine's ``indices`` argument means it (an int: the first n,
    or the last -n)."""
    if isinstance(indices, (int, np.integer)):
        return rows[:indices] if indices >= 0 else rows[indices:]
    if isinstance(indices, (Sequence, np.ndarray)) and not isinstance(indices, str):
        return rows[np.asarray(indices, dtype=np.int64)] if len(indices) else rows[:0]
    raise ConfigError(f"indices={indices!r}: expected an int (the first n samples) or a list of sample indices")




def _is_remote_url(path: str) -> bool:
    from .source import is_remote

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
    from .checkpoints import get_rng_states, set_rng_states

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
        path = f"<opened {type(dataset).__name__}>"
    if not path:
        raise ConfigError("DeepLakeDetDataset needs deeplake_path (a dataset URL) or deeplake_dataset")
    return SourceSpec(path=path, token=credentials.get("token"), creds=credentials.get("creds"),
                      commit=commit_id or commit, view=view, query=query)
