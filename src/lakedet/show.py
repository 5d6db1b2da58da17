"""``lakedet show``: a grid of dataset rows with their ground truth (and predictions, when the
rows have ``pred_boxes`` / ``pred_labels`` / ``pred_scores`` columns, as ``lakedet predict``
writes them), drawn by MMDetection's ``DetLocalVisualizer`` with class names."""

from __future__ import annotations

import numpy as np

from .source import SourceSpec

__all__ = ["render_grid", "parse_rows"]


def parse_rows(text: str, length: int) -> list[int]:
    """``"0:16"``, ``"3"`` or ``"1,5,9"`` -> row indices (checked against ``length``)."""
    from .errors import ConfigError

    try:
        if ":" in text:
            start, _, stop = text.partition(":")
            rows = list(range(int(start or 0), min(int(stop) if stop else length, length)))
        else:
            rows = [int(v) for v in text.split(",")]
    except ValueError:
        raise ConfigError(f"--rows {text!r}: expected START:STOP, N or N,M,...") from None
    bad = [r for r in rows if not 0 <= r < length]
    if bad or not rows:
        raise ConfigError(f"--rows {text!r}: rows must be within 0..{length - 1}" + (f" (got {bad[0]})" if bad else ""))
    return rows


def render_grid(spec: SourceSpec, rows: str, columns: int = 4, score_thr: float = 0.3) -> np.ndarray:
    """An RGB image: one cell per row (ground truth, and predictions beside it when present)."""
    import torch
    from mmdet.structures import DetDataSample
    from mmdet.visualization import DetLocalVisualizer
    from mmengine.structures import InstanceData

    from .dataset import DeepLakeDetDataset

    dataset = DeepLakeDetDataset(deeplake_path=spec.path, deeplake_commit_id=spec.commit, deeplake_view_id=spec.view,
                                 deeplake_query=spec.query, test_mode=True,
                                 pipeline=[dict(type="LoadImageFromFile"), dict(type="LoadAnnotations")])
    names = {c.name for c in dataset._ds.schema.columns}
    with_preds = {"pred_boxes", "pred_labels", "pred_scores"} <= names
    visualizer = DetLocalVisualizer(name=f"lakedet-show-{id(dataset)}")
    visualizer.dataset_meta = dict(classes=dataset.metainfo["classes"])
    cells = []
    for row in parse_rows(rows, len(dataset)):
        sample = dataset[row]
        data = DetDataSample()
        data.gt_instances = InstanceData(bboxes=sample["gt_bboxes"].tensor,
                                         labels=torch.as_tensor(sample["gt_bboxes_labels"]))
        if with_preds:
            boxes = np.asarray(dataset._ds["pred_boxes"][row], np.float32).reshape(-1, 4)
            scores = np.array(dataset._ds["pred_scores"][row], np.float32).reshape(-1)
            data.pred_instances = InstanceData(
                bboxes=torch.from_numpy(np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], 1)),
                labels=torch.as_tensor(np.asarray(dataset._ds["pred_labels"][row], np.int64).reshape(-1)),
                scores=torch.from_numpy(scores))
        visualizer.add_datasample(str(row), sample["img"][:, :, ::-1], data_sample=data, draw_gt=True,
                                  draw_pred=with_preds, show=False, pred_score_thr=score_thr)
        cells.append(visualizer.get_image())
    height = max(c.shape[0] for c in cells)
    width = max(c.shape[1] for c in cells)
    columns = min(columns, len(cells))
    grid = np.zeros((height * ((len(cells) + columns - 1) // columns), width * columns, 3), np.uint8)
    for i, cell in enumerate(cells):
        y, x = (i // columns) * height, (i % columns) * width
        grid[y:y + cell.shape[0], x:x + cell.shape[1]] = cell
    return grid
