"""``DeepLakeDetDataset``: an MMDetection 3 dataset over a Deep Lake dataset, read row by row.

At start-up only the schema and the annotation columns (boxes, labels) are read, column-wise
(``lakedet.data.annotations``); a row's image bytes (and masks) are read when the pipeline asks
for that row (``lakedet.data.reader``, ``lakedet.data.masks``). No file is written. The
pipeline's image/annotation loading steps are replaced by lakedet's own
(``lakedet.data.pipeline``), so MMDetection zoo configs work as written.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from mmdet.datasets import BaseDetDataset
from mmdet.registry import DATASETS
from mmengine.config import ConfigDict
from mmengine.registry import DefaultScope

from ..config.keys import DATASET_KEYS, SOURCE_KEYS, check_keys, loader_type
from ..config.secrets import refuse_written_secrets
from ..errors import ConfigError, DataError, SchemaError, did_you_mean
from ..schema.boxes import box_format_from_metadata
from ..schema.columns import class_names_from_metadata, column_kinds, column_metadata, resolve_tensor_map
from ..source import (OpenedDataset, Origin, SourceSpec, is_deeplake_dataset, is_row_range_view,
                      open_source_with_origin, origin_of, reopen_source, storage_layout)
from ..source.rowrange import RowRange
from .annotations import read_annotations
from . import transforms  # noqa: F401  (registers the loading transforms its pipelines name)
from .cache import open_cache
from .decode import image_size
from .handover import share_batch
from .instances import COCO_FORMAT, ClassSelection, rows_to_keep, select_classes, small_boxes, training_targets
from .keys import ROWS_KEY, SampleKey
from .masks import MaskColumn
from .pipeline import loads_masks, place_loading_steps
from .reader import ImageReader
from .seeding import in_worker, kept_random_states, seed_sample, single_threaded
from .workers import start_worker_server

__all__ = ["DeepLakeDetDataset", "RowInfo", "deeplake_datasets"]

logger = logging.getLogger("lakedet")

_COMPRESSED = {"jpeg", "jpg", "png", "webp", "bmp", "tiff", "tif", "jp2", "gif"}


def deeplake_datasets(dataset) -> list:
    """Every ``DeepLakeDetDataset`` inside a (possibly wrapped) built dataset."""
    if dataset is None:
        return []
    if isinstance(dataset, DeepLakeDetDataset):
        return [dataset]
    found = []
    for inner in list(getattr(dataset, "datasets", []) or []) + [getattr(dataset, "dataset", None)]:
        found += deeplake_datasets(inner)
    return found


@DATASETS.register_module()
class DeepLakeDetDataset(BaseDetDataset):
    """A detection / instance segmentation dataset streamed from Deep Lake.

    Args:
        deeplake_path: dataset URL (local path, ``file://``, ``mem://``, ``s3://``, ``hub://`` ...).
        deeplake_credentials: ``{"token": ..., "creds": {...}}`` for remote datasets; in a config,
            secrets by reference only (``'env:NAME'``, ``'file:PATH'``; see ``lakedet.config.secrets``).
        deeplake_commit_id / deeplake_commit: read the dataset as of this commit.
        deeplake_view_id: open this saved view (a tag).
        deeplake_query: a TQL query selecting the rows.
        deeplake_tensors: ``{"img": col, "gt_bboxes": col, "gt_labels": col, "gt_masks": col}``;
            keys not given are inferred from column types (``gt_masks`` only when one column fits
            or the pipeline loads masks; see ``lakedet.schema.columns.resolve_tensor_map``).
        deeplake_dataset: an already opened Deep Lake dataset or view (overrides the path), or an
            ``OpenedDataset`` holding one (what ``train_detector(ds_train=...)`` puts in the config).
        deeplake_cache: a local cache for remote data, opt-in: a folder (``str``) or
            ``{"path": folder, "max_gb": 20}``; chunks read whole are kept there (bounded, least
            recently used dropped first; several workers and ranks on one machine share it), so
            later epochs read local disk (``lakedet.data.cache``). Also ``LAKEDET_CACHE_DIR`` /
            ``LAKEDET_CACHE_GB``.
        deeplake_prefetch: windows read ahead of the current batch when the sampler's order is
            known (default 1; 0 reads only the current batch's rows ahead).
        deeplake_dataloader_type: ``"c++"``/``"cpp"`` (or ``"auto"``; unset: the config's top-level
            key, else auto): a DataLoader batch's images are read together (``ImageReader``: one
            call for local data; for remote data, Deep Lake's native multi-threaded reader,
            fetching overlapping decoding, every wait bounded), samples are prepared
            single-threaded and a worker hands the batch over in one shared buffer; ``"python"``:
            one row at a time. Both deliver identical samples (same rows, order, boxes and pixels)
            for the same seed.
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
                 deeplake_dataloader_type: str | None = None, skip_bad_images: bool = False,
                 deeplake_cache: str | Mapping | None = None, deeplake_prefetch: int = 1,
                 pipeline: Sequence = (), **kwargs):
        check_keys(kwargs, DATASET_KEYS, "DeepLakeDetDataset")
        self.loader_type_given = deeplake_dataloader_type not in (None, "")
        self.loader_type = "python" if loader_type(deeplake_dataloader_type) == "python" else "cpp"
        if isinstance(deeplake_credentials, ConfigDict):  # from a config, which mmengine has written out
            refuse_written_secrets(deeplake_credentials)
        self._open(deeplake_dataset, dict(deeplake_path=deeplake_path, deeplake_credentials=deeplake_credentials,
                                          deeplake_commit_id=deeplake_commit_id, deeplake_commit=deeplake_commit,
                                          deeplake_view_id=deeplake_view_id, deeplake_query=deeplake_query))
        _refuse_unfinished_ingest(self._ds, self.description)
        if len(self._ds) == 0:
            raise DataError(f"{self.description!r} has no rows; check deeplake_path, "
                            "deeplake_commit_id, deeplake_view_id or deeplake_query")
        test_mode = kwargs.get("test_mode", False)
        # the original ground truth rides along with each sample only where a metric needs it
        self._pipeline_cfg = list(pipeline)
        self._skip_bad_images = skip_bad_images
        placed = place_loading_steps(pipeline, skip_bad_images, keep_instances=test_mode)
        self._masks_for_pipeline = loads_masks(placed)
        needed = ("gt_ignore", "gt_masks") if self._masks_for_pipeline else ("gt_ignore",)
        self.tensor_map = resolve_tensor_map(column_kinds(self._ds), deeplake_tensors, needed=needed)
        self.box_format = box_format_from_metadata(column_metadata(self._ds, self.tensor_map.gt_bboxes),
                                                   self.tensor_map.gt_bboxes)
        remote = self.description if self.is_remote else None
        self._annotations = read_annotations(self._ds, self.tensor_map, self.box_format, remote)
        num_classes = int(self._annotations.labels.max()) + 1 if len(self._annotations.labels) else 0
        label_metadata = column_metadata(self._ds, self.tensor_map.gt_labels)
        classes = class_names_from_metadata(label_metadata, self.tensor_map.gt_labels, num_classes)
        self.annotation_format = label_metadata.get("annotation_format")
        image_type = self._ds.schema[self.tensor_map.img].dtype
        self._image_compressed = (image_type.kind.name == "Image"
                                  and str(image_type.sample_compression).lower() in _COMPRESSED)
        self.reader = ImageReader(self._ds, self.tensor_map.img, self._image_compressed, self.description,
                                  remote=self.is_remote,
                                  layout=storage_layout(self.source, self._ds, self.origin, self.tensor_map.img),
                                  cache=open_cache(deeplake_cache), cache_key=f"{self.description}@{self.origin.commit}")
        self.masks = None
        if self.tensor_map.gt_masks:
            column = self.tensor_map.gt_masks
            fractional = str((column_metadata(self._ds, column).get("coords") or {}).get("type", "pixel"))
            self.masks = MaskColumn(column, self._ds.schema[column].dtype.kind.name, self.tensor_map.gt_bboxes,
                                    fractional.lower() == "fractional", remote)
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
        self.dropped_boxes = 0  # boxes left out of the training targets (CocoDataset's rules), counted in full_init
        kwargs.setdefault("data_prefix", {})
        ann_file = kwargs.pop("ann_file", "")  # a zoo config's CocoDataset keys stay when only `type` is swapped
        if ann_file:
            logger.info("DeepLakeDetDataset(%s): ann_file=%r is not read; the annotations come from the rows",
                        self.description, ann_file)
        with DefaultScope.overwrite_default_scope(_transforms_scope()):
            super().__init__(ann_file="", metainfo=metainfo, pipeline=placed, **kwargs)
        _warn_without_stand_ins()

    def _open(self, given, keys: dict) -> None:
        """Open the rows: ``self._ds`` (read-only), ``self.origin``, ``self.source`` (what lakedet
        opens, reopened by spawned workers; None for an object the caller opened) and ``self.description``."""
        if isinstance(given, OpenedDataset):
            given = given.dataset
        self.source, self.given_type = None, None
        if given is None:
            self.source = SourceSpec.from_keys(**keys)
            if self.source.remote:  # while Deep Lake is not imported, workers' server can be a fork of this process
                start_worker_server()
            self._ds, self.origin = open_source_with_origin(self.source)
            self.description = self.source.description
            return
        if not is_deeplake_dataset(given):
            raise ConfigError(f"deeplake_dataset must be an opened Deep Lake dataset or view, got "
                              f"{type(given).__name__} ({given!r}); give deeplake_path instead (a dataset object "
                              "cannot be written in a config file)")
        selection = [k for k in SOURCE_KEYS if keys[k] and k not in ("deeplake_path", "deeplake_credentials")]
        if selection:
            raise ConfigError(f"{selection[0]} cannot be applied to an opened dataset object (deeplake_dataset / "
                              "ds_train / ds_val): select the rows on the object itself, e.g. ds.query(...)")
        self.given_type = type(given).__name__
        path = keys["deeplake_path"]
        if is_row_range_view(given):  # rows only: schema and metadata from deeplake_path, if given
            parent, self.origin = (open_source_with_origin(SourceSpec.from_keys(
                deeplake_path=path, deeplake_credentials=keys["deeplake_credentials"])) if path
                else (None, Origin(None, None)))
            self._ds = RowRange(given, parent)
            self.description = f"rows of {path}" if path else f"opened {self.given_type}"
            self._parent_path = path
        else:
            self._ds, self.origin = given, origin_of(given)
            self.description = f"opened {self.given_type}"
            self._parent_path = None

    def _build_pipeline(self, placed: list) -> None:
        from mmengine.dataset import Compose

        with DefaultScope.overwrite_default_scope(_transforms_scope()):
            self.pipeline = Compose(placed)

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
        self.dropped_boxes = 0
        if not self.test_mode and not self.box_format.fractional:
            valid = training_targets(ann.boxes, ann.area, None if ann.sizes is None else ann.sizes[row_of])
            dropped = selected & ~valid
            self.dropped_boxes = int(dropped.sum())
            if self.dropped_boxes:
                rows = np.unique(row_of[dropped])
                logger.warning("%s: %d boxes with area <= 0, a side under 1 pixel or outside the image are left "
                               "out of the training targets, as MMDetection's CocoDataset does (rows %s%s)",
                               self.description, self.dropped_boxes, ", ".join(map(str, rows[:10].tolist())),
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
                               "columns (lakedet ingest writes them)", self.description, min_size)
            per_row = np.bincount(row_of[selected], minlength=len(ann))
            rows = rows[rows_to_keep(per_row, ann.sizes, bool(filter_cfg.get("filter_empty_gt", False)), min_size)]
        if self._indices is not None:
            rows = _select(rows, self._indices)
        self.source_rows = rows
        self.data_list = []
        self._fully_initialized = True

    def __len__(self) -> int:
        if not self._fully_initialized:
            self.full_init()
        return len(self.source_rows)

    def get_subset_(self, indices) -> None:
        """Keep only the samples at ``indices`` (an int keeps the first/last ones), in place."""
        if not self._fully_initialized:
            self.full_init()
        self.source_rows = _select(self.source_rows, indices)

    def get_subset(self, indices) -> "DeepLakeDetDataset":
        """A dataset over the samples at ``indices``, sharing this one's opened source."""
        if not self._fully_initialized:
            self.full_init()
        subset = copy.copy(self)
        subset.source_rows, subset._pending = _select(self.source_rows, indices), {}
        return subset

    def evaluated(self) -> bool:
        """Serve this dataset for evaluation (``test_mode``), if it was built for training: every
        instance of a selected class stays, no row is filtered out, and each sample carries its
        row's ground truth for the metric (what lakedet's run hooks do for a val/test split).
        Returns whether anything changed (wrappers around it must then count its rows again)."""
        if self.test_mode:
            return False
        logger.info("%s is evaluated: it runs with test_mode=True", self.description)
        self.test_mode = True
        self._build_pipeline(place_loading_steps(self._pipeline_cfg, self._skip_bad_images, keep_instances=True))
        self._fully_initialized = False
        self.full_init()
        return True

    def set_loader_type(self, value) -> None:
        """``deeplake_dataloader_type`` from elsewhere (a config's top-level key): applied unless
        the dataset was given its own."""
        if not self.loader_type_given:
            self.loader_type = "python" if loader_type(value) == "python" else "cpp"

    def _sample(self, idx: int) -> dict:
        """``img_id`` (the row), ``img_path`` (``<dataset>[row]``) and ``sample_idx`` of sample ``idx``."""
        if not self._fully_initialized:
            self.full_init()
        if idx < 0:
            idx += len(self.source_rows)
        row = int(self.source_rows[idx])
        return {"img_id": row, "img_path": f"{self.description}[{row}]", "sample_idx": idx}

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
            info[SampleKey.FRACTIONAL_BOXES] = True
        return info

    def raw_sample(self, idx: int) -> dict:
        """Sample ``idx`` as the pipeline's first step receives it: ``get_data_info`` plus the row's
        stored image (and masks), before any transform."""
        self._ensure_open()
        return self._add_row_data(self.get_data_info(idx))

    def _add_row_data(self, info: dict) -> dict:
        """The row's stored image bytes (or array), and its masks where the pipeline loads them or
        the metric needs them (segm ground truth), for the loading transforms."""
        row = info["img_id"]
        pending = self._pending.pop(row, None) if self._pending else None
        value = pending.result() if pending is not None else self.reader.read(row)
        info[SampleKey.IMAGE_BYTES if isinstance(value, (bytes, bytearray, memoryview)) else SampleKey.IMAGE_ARRAY] = value
        info[SampleKey.IMAGE_COLUMN] = self.tensor_map.img
        if self.masks is not None and (self._masks_for_pipeline or self.test_mode):
            ann = self._annotations
            start = ann.offsets[row]
            kept = np.flatnonzero(self._keep[start:ann.offsets[row + 1]])
            self.masks.add(self._ds, info, row, kept, int(ann.count(row)), self._masks_for_pipeline, self.test_mode)
        return dict(info)

    def image_size(self, row: int) -> tuple[int, int]:
        """``(height, width)`` of a row's image, from its header (kept once read)."""
        sizes = self.__dict__.setdefault("_header_sizes", {})
        if row not in sizes:
            found = image_size(self.reader.read(row), self._image_compressed)
            if found is None:
                raise DataError(f"row {row}, column {self.tensor_map.img!r} of {self.description!r}: "
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
        with kept_random_states(self._plan is not None and not in_worker() and not self._in_batch):
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
            self._pending = self.reader.start(dict.fromkeys(rows))
            try:
                samples = [self[idx] for idx in indices]
            finally:
                self._pending = {}
            if in_worker():
                share_batch(samples)
            return samples

    def __getitem__(self, idx: int) -> dict:
        self._ensure_open()
        with kept_random_states(self._plan is not None and not in_worker() and not self._in_batch):
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
        """Reads can stall on a network: cloud storage, the Deep Lake API, or a dataset object the
        caller opened (which may live anywhere)."""
        return self.source is None or self.source.remote

    @property
    def opened(self):
        """The opened Deep Lake dataset or view the rows are read from (None in a spawned worker
        before its first read)."""
        return self._ds

    def read_blocks(self):
        """For each sample position, the index of the storage chunk holding its image (the
        blocks of the chunk-aware order), or None when the layout is unknown (views and queries
        of Deep Lake 4 data; ``lakedet.source.storage_layout``)."""
        layout = self.reader.layout
        if layout is None:
            return None
        if not self._fully_initialized:
            self.full_init()
        return layout.chunk_of(self.source_rows)

    def attach_read_plan(self, plan) -> None:
        """Take the sampler's ``ReadPlan`` (order, seed, shared epoch): rows are read ahead along
        it and each sample's random draws are seeded from it."""
        self._plan = plan
        self._following = None

    def _follow_plan(self) -> None:
        """Point the reader at the rows this worker reads this epoch (once per epoch and worker)."""
        plan = self._plan
        if plan is None or plan.epoch < 0 or not self.reader.remote:
            return  # local reads are one batched call in any order (measured: reading ahead costs more)
        import torch.utils.data

        info = torch.utils.data.get_worker_info()
        worker = info.id if info is not None else 0
        key = (plan.epoch, worker, plan.seed)
        if self._following == key:
            return
        self._following = key
        positions = plan.worker_rows(plan.epoch, worker, len(self))
        layout = self.reader.layout
        chunk_rows = float(layout.sizes().mean()) if layout is not None else 64.0
        lookahead = int(self.prefetch * plan.window * chunk_rows) if plan.order == "chunks" else \
            self.prefetch * plan.batch_size * 2
        following = plan.worker_rows(plan.epoch + 1, worker, len(self)) if plan.shuffle else positions
        self.reader.follow(self.source_rows[positions], lookahead, whole_chunks=plan.order == "chunks",
                           next_rows=self.source_rows[following])

    def _ensure_open(self) -> None:
        """Reopen the source in a worker started by ``spawn``/``forkserver`` (see ``__getstate__``)."""
        if self._ds is None:
            self._ds = reopen_source(self.source, self.origin)
            self.reader.ds = self._ds

    def __getstate__(self):
        """Pickled for ``spawn``/``forkserver`` DataLoader workers: a source lakedet opened is
        reopened by the worker (no Deep Lake object crosses processes); a dataset object the
        caller opened goes as Deep Lake pickles it."""
        state = dict(self.__dict__)
        state["_pending"], state["_following"] = {}, None
        if self.source is not None:
            state["_ds"] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        if self._ds is not None:
            self.reader.ds = self._ds

    def get_cat_ids(self, idx: int) -> list[int]:
        """Labels of one sample, without reading its image (used by ClassBalancedDataset)."""
        row = self._sample(idx)["img_id"]
        start, stop = self._annotations.offsets[row], self._annotations.offsets[row + 1]
        return self._labels[start:stop][self._keep[start:stop]].tolist()

    # --- classes -----------------------------------------------------------------------------

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
            import json

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
            raise ConfigError(f"cannot name {count} classes of {self.description!r}: its classes are "
                              f"{tuple(self._metainfo['classes'])}")
        self._metainfo["classes"] = tuple(f"class_{i}" for i in range(count))

    def needs_masks_for(self, what: str) -> None:
        """Raise unless this dataset has a mask column (``what`` needs one, e.g. segm evaluation).

        Raises:
            SchemaError: several columns fit and none was chosen (names them), or none fits.
        """
        if self.tensor_map.gt_masks:
            return
        candidates = self.tensor_map.undecided.get("gt_masks")
        if candidates:
            raise SchemaError(f"{what} needs ground-truth masks, and {self.description!r} has several mask columns: "
                              f"{list(candidates)}; choose one, e.g. deeplake_tensors=dict(gt_masks={candidates[0]!r})")
        raise SchemaError(f"{what} needs ground-truth masks, and {self.description!r} has no BinaryMask, Polygon or "
                          "COCO segmentation column: map deeplake_tensors['gt_masks'], or evaluate metric='bbox'")

    def lineage(self) -> dict:
        """Which data this dataset reads: URL, branch, commit, view/query, rows, column mapping."""
        extra = {}
        if self.origin.format != "deeplake4":  # data Deep Lake 3 wrote, read in place
            extra = dict(head=self.origin.head)  # the commit is a branch's HEAD: uncommitted changes included
        if self.given_type is not None:
            extra["opened"] = self.given_type  # an object the caller opened (ds_train / deeplake_dataset)
        source = self.source
        return dict(url=source.path if source else self._parent_path, format=self.origin.format, **extra,
                    branch=self.origin.branch, commit=self.origin.commit,
                    requested_commit=source.commit if source else None, view=source.view if source else None,
                    query=source.query if source else None,
                    rows=len(self), rows_in_source=len(self._annotations), tensors=self.tensor_map.as_dict(),
                    box_format=dict(mode=self.box_format.mode.value,
                                    type="fractional" if self.box_format.fractional else "pixel"),
                    classes=list(self.metainfo.get("classes", ())))

    def __repr__(self) -> str:
        return (f"DeepLakeDetDataset({self.description!r}, rows={len(self._annotations)}, "
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


_warned_scopes: set = set()


def _warn_without_stand_ins() -> None:
    """Say so when the registry scope a runner builds in lacks lakedet's stand-ins (they live in
    MMDetection's scope): its run would get none of lakedet's run hooks and samplers."""
    from mmengine.registry import HOOKS

    current = DefaultScope.get_current_instance()
    if current is None or current.scope_name in _warned_scopes:
        return
    with HOOKS.switch_scope_and_registry(None) as registry:
        hook = registry.get("RuntimeInfoHook")
    if hook is not None and not hook.__module__.startswith("lakedet"):
        _warned_scopes.add(current.scope_name)
        logger.warning("DeepLakeDetDataset is built in registry scope %r, where lakedet's run hooks and samplers are "
                       "not registered (they are in MMDetection's): set default_scope='mmdet' in the config",
                       current.scope_name)


def _transforms_scope() -> str:
    """The registry scope to build the pipeline in: MMDetection's (its transforms live there), or
    a downstream project's current one, whatever scope a caller left current."""
    current = DefaultScope.get_current_instance()
    return "mmdet" if current is None or current.scope_name == "mmengine" else current.scope_name


def _select(rows: np.ndarray, indices) -> np.ndarray:
    """``rows`` at ``indices``, as mmengine's ``indices`` argument means it (an int: the first n,
    or the last -n)."""
    if isinstance(indices, (int, np.integer)):
        return rows[:indices] if indices >= 0 else rows[indices:]
    if isinstance(indices, (Sequence, np.ndarray)) and not isinstance(indices, str):
        return rows[np.asarray(indices, dtype=np.int64)] if len(indices) else rows[:0]
    raise ConfigError(f"indices={indices!r}: expected an int (the first n samples) or a list of sample indices")


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
