"""``lakedet predict``: run a trained detector over a Deep Lake dataset and write the predictions
as new columns on a new branch, in one commit that records the config, the checkpoint's hash and
the source commit. The source branch is never written.

Columns written on the branch: ``pred_boxes`` (BoundingBox, LTWH pixel, with ``coords``
metadata), ``pred_labels`` (ClassLabel, the model's classes as ``class_names``), ``pred_scores``
(float32 per box) and, for models that predict masks, ``pred_masks`` (BinaryMask, H x W x N).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ConfigError, SourceError

__all__ = ["PredictReport", "predict_to_branch"]


@dataclass
class PredictReport:
    path: str
    branch: str
    rows: int
    boxes: int
    source_commit: str
    commit: str


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def predict_to_branch(config: str, checkpoint: str, path: str, branch: str, cfg_options: dict | None = None,
                      score_thr: float = 0.05, batch_size: int = 4, view: str | None = None,
                      query: str | None = None, work_dir: str | None = None, progress=None) -> PredictReport:
    """Predict the rows of ``path`` (its current branch; all rows, or those a saved view or a TQL
    query selects) and commit the results on ``branch``; unselected rows get no prediction.

    With a view or query, the branch also gets ``lakedet_row`` (each row's index): Deep Lake views
    do not tell which rows they hold, so the selection is run on the new branch and read back
    through that column.

    Raises:
        SourceError: ``path`` cannot be opened for writing, ``branch`` already exists, or the view
            is unknown.
        ConfigError: the config has no test/val pipeline, or both view and query are given.
    """
    import deeplake
    import torch
    from deeplake import types
    from mmengine.config import Config
    from mmengine.dataset import pseudo_collate
    from mmengine.runner import load_checkpoint

    from .config import bare_type, merge_options
    from .dataset import DeepLakeDetDataset
    from .train import _registries, build_detector

    _registries()
    cfg = merge_options(Config.fromfile(config), cfg_options)
    loader = cfg.get("test_dataloader") or cfg.get("val_dataloader")
    if not loader:
        raise ConfigError(f"{config}: no test_dataloader or val_dataloader to take the test pipeline from")
    pipeline = loader["dataset"].get("pipeline")
    try:
        writable = deeplake.open(path)
    except Exception as exc:
        raise SourceError(f"cannot open {path!r} for writing a prediction branch: {exc}") from exc
    if branch in list(writable.branches.names()):
        raise SourceError(f"branch {branch!r} already exists in {path!r}; choose a new --branch "
                          f"(branches: {list(writable.branches.names())})")
    if view and query:
        raise ConfigError("give --view or --query, not both")
    if view:
        if view not in list(writable.tags.names()):
            raise SourceError(f"--view {view!r}: no saved view of that name in {path!r}; saved views: "
                              f"{list(writable.tags.names()) or '(none)'}")
        query = writable.tags[view].query
    source_branch, source_commit = writable.current_branch.name, str(writable.version)
    target = writable.branch(branch).open()
    pipeline = [s for s in pipeline if bare_type(s) != "LoadAnnotations"]
    if query:
        target.add_column("lakedet_row", types.Int64())
        target["lakedet_row"][0:len(target)] = np.arange(len(target), dtype=np.int64)
        try:
            selected = target.query(query)
            base_rows = [int(v) for v in np.asarray(selected["lakedet_row"][:]).reshape(-1)]
        except Exception as exc:
            writable.branches[branch].delete()
            raise SourceError(f"query {query!r} on {path!r} failed (it must keep every column, e.g. "
                              f"SELECT * WHERE ...): {exc}") from exc
        dataset = DeepLakeDetDataset(deeplake_dataset=selected, test_mode=True, pipeline=pipeline)
    else:
        base_rows = None
        dataset = DeepLakeDetDataset(deeplake_path=path, deeplake_commit_id=source_commit, test_mode=True,
                                     pipeline=pipeline)
    model = build_detector(cfg.model)
    load_checkpoint(model, checkpoint, map_location="cpu", logger="silent")
    model.eval()
    results: dict[int, dict] = {}
    with torch.no_grad():
        for start in range(0, len(dataset), batch_size):
            batch = pseudo_collate([dataset[i] for i in range(start, min(start + batch_size, len(dataset)))])
            for sample in model.test_step(batch):
                pred = sample.pred_instances
                keep = pred.scores >= score_thr
                boxes = pred.bboxes[keep].cpu().numpy()
                row = sample.img_id if base_rows is None else base_rows[sample.img_id]
                results[row] = dict(
                    boxes=np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], 1).astype(np.float32),
                    labels=pred.labels[keep].cpu().numpy().astype(np.uint32),
                    scores=pred.scores[keep].cpu().numpy().astype(np.float32),
                    masks=(np.moveaxis(pred.masks[keep].cpu().numpy().astype(bool), 0, -1)
                           if "masks" in pred else None))
            if progress:
                progress(min(start + batch_size, len(dataset)), len(dataset))
    target.add_column("pred_boxes", types.BoundingBox(dtype="float32", format="ltwh", bbox_type="pixel"))
    target.add_column("pred_labels", types.ClassLabel(types.Array("uint32", dimensions=1)))
    target.add_column("pred_scores", types.Array("float32", dimensions=1))
    with_masks = any(r["masks"] is not None for r in results.values())
    if with_masks:
        target.add_column("pred_masks", types.BinaryMask(sample_compression="lz4"))
    target["pred_boxes"].metadata["coords"] = {"mode": "LTWH", "type": "pixel"}
    target["pred_labels"].metadata["class_names"] = list(dataset.metainfo["classes"])
    for row, result in sorted(results.items()):
        target["pred_boxes"][row] = result["boxes"]
        target["pred_labels"][row] = result["labels"]
        target["pred_scores"][row] = result["scores"]
        if with_masks:
            target["pred_masks"][row] = result["masks"]
    message = (f"lakedet predict: {len(results)} rows, {sum(len(r['labels']) for r in results.values())} boxes "
               f"(score >= {score_thr}); config {Path(config).name}; checkpoint {Path(checkpoint).name} "
               f"sha256 {_sha256(checkpoint)[:16]}; source {source_branch}@{source_commit}"
               + (f"; rows of view {view!r}" if view else f"; rows of query {query!r}" if query else ""))
    target.commit(message)
    report = PredictReport(path, branch, len(results), sum(len(r["labels"]) for r in results.values()),
                           source_commit, str(target.version))
    if work_dir:
        from .hooks import write_lineage

        source = dict(dataset.lineage(), url=path, branch=source_branch, commit=source_commit, view=view,
                      query=query if not view else None)
        write_lineage(work_dir, "predict", {"predict": [source]}, checkpoint=checkpoint,
                      written=dict(branch=branch, commit=report.commit, rows=report.rows, boxes=report.boxes))
    return report
