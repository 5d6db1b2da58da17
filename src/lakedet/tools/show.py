"""``lakedet show``: a grid of dataset rows with their ground truth (and predictions, when the
rows have ``pred_boxes`` / ``pred_labels`` / ``pred_scores`` columns, as ``lakedet predict``
writes them), drawn by MMDetection's ``DetLocalVisualizer`` with class names.

With ``errors=True`` (``lakedet show --errors``) each cell is one image with the matching
``lakedet errors`` wrote: true-positive predictions, false-positive predictions and missed
(false-negative) ground-truth boxes in three colours (``ERROR_COLOURS``), each labelled with its
kind, class and score.
"""

from __future__ import annotations

import numpy as np

from ..evaluation.matching import FN, FP, TP
from ..schema.boxes import BoxMode, convert_boxes
from ..source import SourceSpec

__all__ = ["ERROR_COLOURS", "ISSUE_COLOURS", "render_grid", "render_cells", "parse_rows"]

#: RGB colours of ``show --errors``: TP green, FP red, FN blue.
ERROR_COLOURS = {TP: (0, 200, 0), FP: (230, 0, 0), FN: (0, 90, 255)}
_ERROR_COLUMNS = ("pred_boxes", "pred_labels", "pred_scores", "pred_match", "gt_match")
#: RGB colours of ``show --issues`` by ``ISSUE_NAMES`` code: missing magenta, spurious orange, swap
#: yellow, localisation cyan.
ISSUE_COLOURS = {1: (230, 0, 230), 2: (255, 140, 0), 3: (240, 230, 0), 4: (0, 220, 220)}
_ISSUE_COLUMNS = ("pred_boxes", "pred_labels", "pred_scores", "pred_missing", "issue_kind", "issue_score")


def parse_rows(text: str, length: int) -> list[int]:
    """``"0:16"``, ``"3"`` or ``"1,5,9"`` -> row indices (checked against ``length``)."""
    from ..errors import ConfigError

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


def render_grid(spec: SourceSpec, rows: str, columns: int = 4, score_thr: float = 0.3, errors: bool = False,
                branch: str | None = None, issues: bool = False) -> np.ndarray:
    """An RGB image: one cell per row (ground truth, and predictions beside it when present; with
    ``errors``, one image with TP / FP / FN boxes; with ``issues``, the labels ``lakedet issues``
    scored >= ``score_thr`` and the likely missing ones). ``branch`` reads the rows as of that branch's
    latest commit (``spec.query`` then runs on it).

    Raises:
        SourceError: the branch does not exist.
        SchemaError: ``errors`` and the rows lack the columns ``lakedet errors`` writes.
    """
    cells = [cell for _, cell in render_cells(spec, rows, score_thr, errors, branch, issues)]
    height = max(c.shape[0] for c in cells)
    width = max(c.shape[1] for c in cells)
    columns = min(columns, len(cells))
    grid = np.zeros((height * ((len(cells) + columns - 1) // columns), width * columns, 3), np.uint8)
    for i, cell in enumerate(cells):
        y, x = (i // columns) * height, (i % columns) * width
        grid[y:y + cell.shape[0], x:x + cell.shape[1]] = cell
    return grid


def render_cells(spec: SourceSpec, rows, score_thr: float = 0.3, errors: bool = False, branch: str | None = None,
                 issues: bool = False, masks: bool = False):
    """Yield ``(row, RGB image)`` for each of ``rows`` (a ``--rows`` text or a list of row
    indices), drawn as ``render_grid`` draws a cell; ``masks`` also draws the ground-truth masks
    when the rows have a mask column. The dataset is opened once."""
    import torch
    from mmdet.structures import DetDataSample
    from mmdet.visualization import DetLocalVisualizer
    from mmengine.structures import InstanceData

    from ..data.dataset import DeepLakeDetDataset

    pipeline = [dict(type="LoadImageFromFile"), dict(type="LoadAnnotations")]
    opened = ()  # a Deep Lake view does not keep the dataset it came from alive: this function does
    if branch:
        opened = _open_branch(spec, branch)
        dataset = DeepLakeDetDataset(deeplake_dataset=opened[-1], test_mode=True, pipeline=pipeline)
    else:
        dataset = DeepLakeDetDataset(deeplake_path=spec.path, deeplake_commit_id=spec.commit,
                                     deeplake_view_id=spec.view, deeplake_query=spec.query, test_mode=True,
                                     pipeline=pipeline)
    if masks:
        from ..schema import column_kinds, resolve_tensor_map

        tensors = resolve_tensor_map(column_kinds(dataset.opened), dataset.tensor_map.as_dict(),
                                     needed=("gt_ignore", "gt_masks"))
        if tensors.gt_masks:
            opened = (*opened, dataset)
            dataset = DeepLakeDetDataset(deeplake_dataset=dataset.opened, test_mode=True, pipeline=[
                dict(type="LoadImageFromFile"), dict(type="LoadAnnotations", with_mask=True)],
                deeplake_tensors=tensors.as_dict())
    names = {c.name for c in dataset.opened.schema.columns}
    if errors and not set(_ERROR_COLUMNS) <= names:
        from ..errors import SchemaError

        missing = sorted(set(_ERROR_COLUMNS) - names)
        raise SchemaError(f"--errors: {spec.description}{f' (branch {branch!r})' if branch else ''} has no column "
                          f"{', '.join(map(repr, missing))}; run `lakedet errors` first and show the branch it "
                          "wrote (--branch NAME)")
    if issues and not set(_ISSUE_COLUMNS) <= names:
        from ..errors import SchemaError

        missing = sorted(set(_ISSUE_COLUMNS) - names)
        raise SchemaError(f"--issues: {spec.description}{f' (branch {branch!r})' if branch else ''} has no column "
                          f"{', '.join(map(repr, missing))}; run `lakedet issues` first and show the branch it "
                          "wrote (--branch NAME)")
    with_preds = {"pred_boxes", "pred_labels", "pred_scores"} <= names
    visualizer = DetLocalVisualizer(name=f"lakedet-show-{id(dataset)}")
    visualizer.dataset_meta = dict(classes=dataset.metainfo["classes"])
    for row in parse_rows(rows, len(dataset)) if isinstance(rows, str) else rows:
        sample = dataset[row]
        if errors or issues:
            yield row, (_draw_errors if errors else _draw_issues)(visualizer, dataset, row, sample, score_thr)
            continue
        data = DetDataSample()
        data.gt_instances = InstanceData(bboxes=sample["gt_bboxes"].tensor,
                                         labels=torch.as_tensor(sample["gt_bboxes_labels"]))
        if "gt_masks" in sample and len(sample["gt_masks"]):
            data.gt_instances.masks = sample["gt_masks"].to_ndarray().astype(bool)
        if with_preds:
            boxes, labels, scores = _predictions(dataset, row)
            data.pred_instances = InstanceData(bboxes=torch.from_numpy(boxes), labels=torch.from_numpy(labels),
                                               scores=torch.from_numpy(scores))
        visualizer.add_datasample(str(row), sample["img"][:, :, ::-1], data_sample=data, draw_gt=True,
                                  draw_pred=with_preds, show=False, pred_score_thr=score_thr)
        yield row, visualizer.get_image()
    del opened


def _open_branch(spec: SourceSpec, branch: str) -> tuple:
    """(dataset, branch, rows) opened read-only: the branch's latest commit, ``spec.query`` applied."""
    from ..errors import ConfigError, SourceError
    from ..source import open_source

    if spec.commit or spec.view:
        raise ConfigError("--branch selects the branch's latest commit: give it without --commit and --view "
                          "(a saved view is tied to the commit it was saved at; use --query)")
    from ..source.deeplake3 import is_deeplake3_folder

    if is_deeplake3_folder(spec.path):  # a v3 branch is a ref like a commit (its HEAD)
        return (open_source(SourceSpec(spec.path, token=spec.token, creds=spec.creds, commit=branch,
                                       query=spec.query)),)
    root = open_source(SourceSpec(spec.path, token=spec.token, creds=spec.creds))
    names = list(root.branches.names())
    if branch not in names:
        raise SourceError(f"--branch {branch!r}: no such branch in {spec.path!r}; branches: {names}")
    opened = root.branches[branch].open()
    if not spec.query:
        return root, opened
    try:
        return root, opened, opened.query(spec.query)
    except Exception as exc:
        raise SourceError(f"--query {spec.query!r} on branch {branch!r} of {spec.path!r} failed: {exc}") from exc


def _predictions(dataset, row: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A row's ``pred_*`` columns: pixel x1y1x2y2 boxes, labels, scores."""
    boxes = convert_boxes(dataset.opened["pred_boxes"][row], BoxMode.LTWH, BoxMode.LTRB, np.float32)
    labels = np.asarray(dataset.opened["pred_labels"][row], np.int64).reshape(-1)
    scores = np.asarray(dataset.opened["pred_scores"][row], np.float32).reshape(-1)
    return boxes, labels, scores


def _draw_errors(visualizer, dataset, row: int, sample: dict, score_thr: float) -> np.ndarray:
    """One image with its TP and FP predictions (scored >= ``score_thr``) and FN ground truth."""
    classes = dataset.metainfo["classes"]
    boxes, labels, scores = _predictions(dataset, row)
    pred_match = np.asarray(dataset.opened["pred_match"][row], np.int64).reshape(-1)
    gt_match = np.asarray(dataset.opened["gt_match"][row], np.int64).reshape(-1)
    gt_boxes = sample["gt_bboxes"].tensor.numpy().reshape(-1, 4)
    gt_labels = np.asarray(sample["gt_bboxes_labels"], np.int64).reshape(-1)
    drawn = []  # (box, colour, text)
    for box, label, score, code in zip(boxes, labels, scores, pred_match):
        if code in (TP, FP) and score >= score_thr:
            drawn.append((box, ERROR_COLOURS[code], f"{'tp' if code == TP else 'fp'} {classes[label]} {score:.2f}"))
    for box, label, code in zip(gt_boxes, gt_labels, gt_match):
        if code == FN:
            drawn.append((box, ERROR_COLOURS[code], f"fn {classes[label]}"))
    return _draw_labelled(visualizer, sample["img"], drawn)


def _draw_issues(visualizer, dataset, row: int, sample: dict, score_thr: float) -> np.ndarray:
    """One image with its labels scored >= ``score_thr`` by ``lakedet issues`` (kind, class, score)
    and its predictions whose missing-label score is >= ``score_thr``."""
    from ..evaluation.label_issues import ISSUE_NAMES, MISSING

    classes = dataset.metainfo["classes"]
    boxes, labels, _ = _predictions(dataset, row)
    missing = np.asarray(dataset.opened["pred_missing"][row], np.float32).reshape(-1)
    kinds = np.asarray(dataset.opened["issue_kind"][row], np.int64).reshape(-1)
    scores = np.asarray(dataset.opened["issue_score"][row], np.float32).reshape(-1)
    gt_boxes = sample["gt_bboxes"].tensor.numpy().reshape(-1, 4)
    gt_labels = np.asarray(sample["gt_bboxes_labels"], np.int64).reshape(-1)
    drawn = [(box, ISSUE_COLOURS[kind], f"{ISSUE_NAMES[kind]} {classes[label]} {score:.2f}")
             for box, label, kind, score in zip(gt_boxes, gt_labels, kinds, scores) if kind and score >= score_thr]
    drawn += [(box, ISSUE_COLOURS[MISSING], f"missing? {classes[label]} {score:.2f}")
              for box, label, score in zip(boxes, labels, missing) if score >= score_thr]
    return _draw_labelled(visualizer, sample["img"], drawn)


def _draw_labelled(visualizer, image: np.ndarray, drawn: list) -> np.ndarray:
    """``image`` (RGB) with each ``(box, colour, text)`` drawn and labelled at its top-left corner."""
    visualizer.set_image(np.ascontiguousarray(image[:, :, ::-1]))
    font = int(np.clip(round(min(image.shape[:2]) / 40), 7, 16))  # 7 pt at 64 px .. 16 pt from 640 px
    if drawn:
        colours = [colour for _, colour, _ in drawn]
        visualizer.draw_bboxes(np.stack([box for box, _, _ in drawn]), edge_colors=colours, alpha=1.0,
                               line_widths=2)
        for (box, colour, text) in drawn:
            visualizer.draw_texts(text, box[:2] + 2, colors=colour, font_sizes=font,
                                  bboxes=[dict(facecolor="black", alpha=0.8, pad=0.7, edgecolor="none")])
    return visualizer.get_image()
