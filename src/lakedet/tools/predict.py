"""``lakedet predict``: run a trained detector over a Deep Lake dataset and write the predictions
as new columns on a new branch, in one commit that records the config, the checkpoint's hash and
the source commit. The source branch is never written.

Columns written on the branch: ``pred_boxes`` (BoundingBox, LTWH pixel, with ``coords``
metadata), ``pred_labels`` (ClassLabel, the model's classes as ``class_names``), ``pred_scores``
(float32 per box) and, for models that predict masks, ``pred_masks`` (BinaryMask, H x W x N).

The steps are shared with ``lakedet errors`` (``lakedet.tools.error_analysis``): ``load_config``,
``PredictionBranch.open``, ``load_model``, ``predict_rows``, ``write_predictions``, then one commit.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, SourceError
from ..schema.boxes import BoxMode, convert_boxes

__all__ = ["PredictReport", "RowPrediction", "PredictionBranch", "DatasetRows", "predict_to_branch", "check_checkpoint", "load_config",
           "load_model", "prepare_model", "prediction_loader", "iter_predictions", "predict_rows", "write_rows",
           "add_prediction_columns", "write_prediction_rows", "write_predictions", "WRITE_ROWS", "refuse_deeplake3",
           "open_writable", "sha256_of", "discard_branch"]


@dataclass
class PredictReport:
    path: str
    branch: str
    rows: int
    boxes: int
    source_commit: str
    commit: str


@dataclass
class RowPrediction:
    """One row's predictions (pixel ``x1, y1, x2, y2``) and its ground truth as the model saw it
    (the row's boxes in original-image pixels, labels and crowd/ignore flags)."""

    boxes: np.ndarray  # (N, 4) float32
    labels: np.ndarray  # (N,) int64
    scores: np.ndarray  # (N,) float32
    masks: np.ndarray | None  # (H, W, N) bool, or None for box-only models
    gt_boxes: np.ndarray  # (G, 4) float32
    gt_labels: np.ndarray  # (G,) int64
    gt_crowd: np.ndarray  # (G,) bool
    gt_area: np.ndarray | None = None  # (G,) COCO areas where the rows store them (else box areas are used)


def sha256_of(path: str) -> str:
    """The SHA-256 of a file, hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _convert_first(path: str, command: str) -> str:
    return (f"{path!r} is a Deep Lake 3 dataset: `lakedet {command}` writes its results on a new branch, which Deep "
            "Lake 4 cannot do in a v3 dataset (and would hide the v3 data). Convert it first, then run "
            f"`lakedet {command}` on the copy: lakedet convert {path} {path.rstrip('/')}-v4")


def refuse_deeplake3(path: str, command: str = "predict") -> None:
    """The first check of ``predict`` and ``errors``: their results go on a new branch, which Deep
    Lake 4 cannot write into a Deep Lake 3 dataset.

    Raises:
        SourceError: ``path`` holds a Deep Lake 3 dataset; the message gives the conversion to run.
    """
    from ..source.deeplake3 import is_deeplake3_folder

    if is_deeplake3_folder(path):
        raise SourceError(_convert_first(path, command))


def open_writable(path: str, command: str = "predict"):
    """Open ``path`` for writing a new branch (the one place ``predict`` and ``errors`` do).

    Raises:
        SourceError: ``path`` cannot be opened for writing.
    """
    import deeplake

    try:
        return deeplake.open(path)
    except Exception as exc:
        from ..source import SourceSpec, is_remote
        from ..source.deeplake3 import probe_remote

        if is_remote(path) and "does not exist" in str(exc) and probe_remote(SourceSpec(path)):
            raise SourceError(_convert_first(path, command)) from exc
        raise SourceError(f"cannot open {path!r} for writing a {command} branch: {exc}") from exc


def load_config(config: str, cfg_options: dict | None = None, tta: bool = False):
    """The config (translated from 2.x style when needed) and its test pipeline (with ``tta``,
    its ``tta_pipeline``) without a top-level ``LoadAnnotations``.

    Raises:
        ConfigError: the config has no test/val dataloader to take the pipeline from.
    """
    from mmengine.config import Config

    from ..config.translate import merge_options
    from ..config.walk import bare_type
    from ..engine.runner import registries

    registries()
    cfg = merge_options(Config.fromfile(config), cfg_options)
    loader = cfg.get("test_dataloader") or cfg.get("val_dataloader")
    if not loader:
        raise ConfigError(f"{config}: no test_dataloader or val_dataloader to take the test pipeline from")
    pipeline = (cfg.get("tta_pipeline") if tta and cfg.get("tta_pipeline") else loader["dataset"].get("pipeline")) or []
    return cfg, [s for s in pipeline if bare_type(s) != "LoadAnnotations"]


def check_checkpoint(checkpoint: str) -> None:
    """Raises ConfigError unless ``checkpoint`` is a file (checked before any branch is made)."""
    if not os.path.isfile(checkpoint):
        raise ConfigError(f"checkpoint {checkpoint!r}: no such file (give the path of a .pth file)")


def load_model(cfg, checkpoint: str):
    """The config's detector with the checkpoint's weights, in eval mode.

    Raises:
        ConfigError: the checkpoint cannot be loaded (not a checkpoint, or another model's).
    """
    from mmengine.runner import load_checkpoint

    from ..engine.runner import build_detector

    model = build_detector(cfg.model)
    try:
        load_checkpoint(model, checkpoint, map_location="cpu", logger="silent")
    except Exception as exc:
        raise ConfigError(f"checkpoint {checkpoint!r} cannot be loaded into the config's model: "
                          f"{type(exc).__name__}: {exc}") from exc
    model.eval()
    return model


def discard_branch(writable, name: str) -> None:
    """Delete branch ``name`` after a failure (nothing half-written stays behind); a failure to
    delete is swallowed, so it never hides the failure that led here."""
    try:
        writable.branches[name].delete()
    except Exception:
        pass


@dataclass
class PredictionBranch:
    """A new branch of ``path``, made from its current branch, and the dataset of the rows to
    predict on it (all rows, or those of a saved view / TQL query).

    With a view or query, the branch gets ``lakedet_row`` (each row's index): Deep Lake views do
    not tell which rows they hold, so the selection is run on the new branch and read back
    through that column (``row_of``).
    """

    path: str
    name: str
    writable: Any
    target: Any
    dataset: Any  # DeepLakeDetDataset over the selected rows
    source_branch: str
    source_commit: str
    view: str | None = None
    query: str | None = None
    base_rows: list[int] | None = field(default=None, repr=False)

    @classmethod
    def open(cls, path: str, name: str, pipeline: list, view: str | None = None, query: str | None = None,
             command: str = "predict") -> "PredictionBranch":
        """Create branch ``name`` of ``path`` and the dataset to predict.

        Raises:
            SourceError: ``path`` cannot be opened for writing, ``name`` already exists, the view
                is unknown or the query fails (the branch is then removed again).
            ConfigError: both view and query are given.
        """
        from deeplake import types

        from ..data.dataset import DeepLakeDetDataset

        if view and query:
            raise ConfigError("give --view or --query, not both")
        writable = open_writable(path, command)
        branches = list(writable.branches.names())
        if name in branches:
            raise SourceError(f"branch {name!r} already exists in {path!r}; choose a new --branch "
                              f"(branches: {branches})")
        if view:
            if view not in list(writable.tags.names()):
                raise SourceError(f"--view {view!r}: no saved view of that name in {path!r}; saved views: "
                                  f"{list(writable.tags.names()) or '(none)'}")
            query = writable.tags[view].query
        source_branch, source_commit = writable.current_branch.name, str(writable.version)
        target = writable.branch(name).open()
        run = cls(path, name, writable, target, None, source_branch, source_commit, view, query)
        try:
            if query:
                target.add_column("lakedet_row", types.Int64())
                target["lakedet_row"][0:len(target)] = np.arange(len(target), dtype=np.int64)
                try:
                    selected = target.query(query)
                    run.base_rows = [int(v) for v in np.asarray(selected["lakedet_row"][:]).reshape(-1)]
                except Exception as exc:
                    raise SourceError(f"query {query!r} on {path!r} failed (it must keep every column, e.g. "
                                      f"SELECT * WHERE ...): {exc}") from exc
                run.dataset = DeepLakeDetDataset(deeplake_dataset=selected, test_mode=True, pipeline=pipeline)
            else:
                run.dataset = DeepLakeDetDataset(deeplake_path=path, deeplake_commit_id=source_commit,
                                                 test_mode=True, pipeline=pipeline)
        except BaseException:
            run.discard()
            raise
        return run

    def row_of(self, img_id: int) -> int:
        """The branch row of a sample's ``img_id`` (its index in the selection)."""
        return img_id if self.base_rows is None else self.base_rows[img_id]

    @property
    def selection(self) -> str:
        """``"; rows of view 'v'"`` / ``"; rows of query '...'"`` / ``""``, for commit messages."""
        return f"; rows of view {self.view!r}" if self.view else f"; rows of query {self.query!r}" if self.query else ""

    def discard(self) -> None:
        """Delete the branch (after a failure: nothing half-written stays behind)."""
        discard_branch(self.writable, self.name)

    def lineage(self) -> dict:
        """The source of the rows, for ``lineage.json``."""
        return dict(self.dataset.lineage(), url=self.path, branch=self.source_branch, commit=self.source_commit,
                    view=self.view, query=self.query if not self.view else None)


@dataclass
class DatasetRows:
    """Rows to predict without a branch (``iter_predictions`` over a dataset opened read-only):
    sample ``img_id`` is the row."""

    dataset: Any

    def row_of(self, img_id: int) -> int:
        return img_id


def prediction_loader(dataset, batch_size: int = 4, num_workers: int = 2):
    """The DataLoader a test loop would build over ``dataset``: rows in order, whole batches read
    at once (``DeepLakeDetDataset.__getitems__``), ``num_workers`` workers (``forkserver`` ones
    for remote data, see ``lakedet.data.workers``), MMDetection's ``pseudo_collate``."""
    import torch.utils.data
    from mmengine.dataset import pseudo_collate

    if not isinstance(batch_size, int) or batch_size < 1 or not isinstance(num_workers, int) or num_workers < 0:
        raise ConfigError(f"batch_size={batch_size!r} / num_workers={num_workers!r}: expected integers >= 1 / >= 0")
    context = None
    if num_workers and dataset.is_remote and dataset.source is not None:
        from ..data.workers import worker_context

        context = worker_context()
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                                       collate_fn=pseudo_collate, multiprocessing_context=context)


def iter_predictions(model, run: PredictionBranch | DatasetRows, batch_size: int = 4, score_thr: float = 0.05,
                     progress=None, num_workers: int = 0):
    """Run ``model`` (in eval mode, on its device) over the selected rows through
    ``prediction_loader``; yield ``(branch row, RowPrediction)`` (score >= ``score_thr``) batch by
    batch, so a caller can write them as they come.

    Raises:
        ConfigError: the model predicts another number of classes than the dataset has.
    """
    import torch

    from ..engine.hooks import check_class_count

    dataset = run.dataset
    check_class_count(model, dataset)  # the check training and testing make
    done = 0
    with torch.no_grad():
        for batch in prediction_loader(dataset, batch_size, num_workers):
            for sample in model.test_step(batch):
                pred = sample.pred_instances
                keep = pred.scores >= score_thr
                instances = sample.metainfo.get("instances", [])
                yield run.row_of(sample.img_id), RowPrediction(
                    boxes=pred.bboxes[keep].cpu().numpy().astype(np.float32).reshape(-1, 4),
                    labels=pred.labels[keep].cpu().numpy().astype(np.int64),
                    scores=pred.scores[keep].cpu().numpy().astype(np.float32),
                    masks=(np.moveaxis(pred.masks[keep].cpu().numpy().astype(bool), 0, -1)
                           if "masks" in pred else None),
                    gt_boxes=np.asarray([i["bbox"] for i in instances], np.float32).reshape(-1, 4),
                    gt_labels=np.asarray([i["bbox_label"] for i in instances], np.int64),
                    gt_crowd=np.asarray([bool(i.get("ignore_flag", 0)) for i in instances], bool))
                done += 1
            if progress:
                progress(done, len(dataset))


def predict_rows(model, run: PredictionBranch, batch_size: int = 4, score_thr: float = 0.05,
                 progress=None, num_workers: int = 0) -> dict[int, RowPrediction]:
    """Every selected row's predictions and ground truth at once (``iter_predictions``)."""
    return dict(iter_predictions(model, run, batch_size, score_thr, progress, num_workers))


def write_rows(column, values: dict) -> None:
    """Write ``{row: value}`` into a Deep Lake column, one slice per run of consecutive rows
    (measured: 60x faster than one assignment per row)."""
    rows = sorted(values)
    start = 0
    for end in range(1, len(rows) + 1):
        if end == len(rows) or rows[end] != rows[end - 1] + 1:
            column[rows[start]:rows[end - 1] + 1] = [values[row] for row in rows[start:end]]
            start = end


def add_prediction_columns(target, classes, with_masks: bool) -> None:
    """The ``pred_*`` columns, empty (nothing is committed)."""
    from deeplake import types

    target.add_column("pred_boxes", types.BoundingBox(dtype="float32", format="ltwh", bbox_type="pixel"))
    target.add_column("pred_labels", types.ClassLabel(types.Array("uint32", dimensions=1)))
    target.add_column("pred_scores", types.Array("float32", dimensions=1))
    if with_masks:
        target.add_column("pred_masks", types.BinaryMask(sample_compression="lz4"))
    target["pred_boxes"].metadata["coords"] = {"mode": "LTWH", "type": "pixel"}
    target["pred_labels"].metadata["class_names"] = list(classes)


def write_prediction_rows(target, results: dict[int, RowPrediction]) -> None:
    """Fill the ``pred_*`` columns of the given rows (Deep Lake writes them out as they come:
    uncommitted column writes are not held in memory, measured)."""
    write_rows(target["pred_boxes"], {row: convert_boxes(r.boxes, BoxMode.LTRB, BoxMode.LTWH, np.float32)
                                      for row, r in results.items()})
    write_rows(target["pred_labels"], {row: r.labels.astype(np.uint32) for row, r in results.items()})
    write_rows(target["pred_scores"], {row: r.scores for row, r in results.items()})
    if "pred_masks" in [c.name for c in target.schema.columns]:
        write_rows(target["pred_masks"], {row: r.masks for row, r in results.items() if r.masks is not None})


def write_predictions(target, results: dict[int, RowPrediction], classes) -> None:
    """Add the ``pred_*`` columns to ``target`` and fill the predicted rows (nothing is committed)."""
    add_prediction_columns(target, classes, any(r.masks is not None for r in results.values()))
    write_prediction_rows(target, results)


#: Rows of predictions ``predict`` holds before writing them to the branch.
WRITE_ROWS = 256


def prepare_model(cfg, checkpoint: str, device: str | None = None, tta: bool = False):
    """``load_model`` on ``device`` (default: ``cuda`` when there is one, else ``cpu``); with
    ``tta``, the config's ``tta_model`` around it, as MMDetection's ``tools/test.py --tta`` builds
    it (the test pipeline is then the config's ``tta_pipeline``).

    Raises:
        ConfigError: ``tta`` without ``tta_model`` / ``tta_pipeline`` in the config, or a device
            this machine does not have.
    """
    import torch

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {device}: this machine has no CUDA GPU; use --device cpu")
    if tta:
        missing = [key for key in ("tta_model", "tta_pipeline") if not cfg.get(key)]
        if missing:
            raise ConfigError(f"--tta needs {' and '.join(missing)} in the config (MMDetection's test-time "
                              "augmentation, e.g. the zoo's *_tta.py configs)")
        cfg.model = dict(**cfg.tta_model, module=cfg.model)
    return load_model(cfg, checkpoint).to(device)


def predict_to_branch(config: str, checkpoint: str, path: str, branch: str, cfg_options: dict | None = None,
                      score_thr: float = 0.05, batch_size: int = 4, view: str | None = None,
                      query: str | None = None, work_dir: str | None = None, progress=None,
                      num_workers: int = 2, device: str | None = None, tta: bool = False) -> PredictReport:
    """Predict the rows of ``path`` (its current branch; all rows, or those a saved view or a TQL
    query selects) and commit the results on ``branch``; unselected rows get no prediction.

    The rows go through the DataLoader a test loop builds (``prediction_loader``: batches of
    ``batch_size``, ``num_workers`` workers) into the model on ``device`` (with ``tta``, the
    config's ``tta_model`` over its ``tta_pipeline``); predictions are written to the branch
    ``WRITE_ROWS`` rows at a time, never all held in memory.

    With a view or query, the branch also gets ``lakedet_row`` (see ``PredictionBranch``). A run
    that fails after the branch was made deletes the branch again.

    Raises:
        SourceError: ``path`` cannot be opened for writing (a Deep Lake 3 dataset must be
            converted first), ``branch`` already exists, or the view is unknown.
        ConfigError: the config has no test/val pipeline, or both view and query are given.
    """
    refuse_deeplake3(path, "predict")
    check_checkpoint(checkpoint)
    cfg, pipeline = load_config(config, cfg_options, tta=tta)
    run = PredictionBranch.open(path, branch, pipeline, view=view, query=query)
    try:
        model = prepare_model(cfg, checkpoint, device, tta)
        pending: dict[int, RowPrediction] = {}
        rows = boxes = 0
        columns = False
        for row, prediction in iter_predictions(model, run, batch_size, score_thr, progress, num_workers):
            if not columns:
                add_prediction_columns(run.target, run.dataset.metainfo["classes"], prediction.masks is not None)
                columns = True
            pending[row] = prediction
            rows, boxes = rows + 1, boxes + len(prediction.labels)
            if len(pending) >= WRITE_ROWS:
                write_prediction_rows(run.target, pending)
                pending.clear()
        if not columns:
            add_prediction_columns(run.target, run.dataset.metainfo["classes"], False)
        write_prediction_rows(run.target, pending)
        run.target.commit(f"lakedet predict: {rows} rows, {boxes} boxes (score >= {score_thr}); config "
                          f"{Path(config).name}; checkpoint {Path(checkpoint).name} sha256 "
                          f"{sha256_of(checkpoint)[:16]}; source {run.source_branch}@{run.source_commit}"
                          + run.selection)
    except BaseException:
        run.discard()
        raise
    report = PredictReport(path, branch, rows, boxes, run.source_commit, str(run.target.version))
    if work_dir:
        from ..engine.lineage import write_lineage

        write_lineage(work_dir, "predict", {"predict": [run.lineage()]}, checkpoint=checkpoint,
                      written=dict(branch=branch, commit=report.commit, rows=report.rows, boxes=report.boxes))
    return report
