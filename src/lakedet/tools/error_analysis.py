"""``lakedet errors``: which of a model's boxes are right, written back to the dataset.

Like FiftyOne's ``evaluate_detections``, but versioned and queryable with TQL: the model's
predictions (``lakedet predict``'s columns) and their matching to the ground truth go on a new
branch in one commit, whose message (and the branch's ``lakedet_errors`` metadata) records the
config, the checkpoint's SHA-256, the source commit, the IoU threshold and the matching rule.
The matching is COCO's (``lakedet.evaluation.matching``). Columns written besides ``pred_*``:

* per predicted box: ``pred_match`` (ClassLabel ``tp`` / ``fp`` / ``ignore``), ``pred_match_gt``
  (index of the matched ground-truth box in the row, or -1), ``pred_iou``;
* per ground-truth box: ``gt_match`` (``tp`` / ``fn`` / ``ignore``), ``gt_match_pred`` (index of
  the matching prediction, or -1), ``gt_area`` (box area in pixels, for COCO's size ranges);
* per row: ``eval_tp``, ``eval_fp``, ``eval_fn`` (int32) and ``eval_f1`` (float32); rows outside
  a ``--view`` / ``--query`` selection get -1 and NaN.

``ignore`` is what COCO leaves out of both counts: crowd boxes, predictions matched to them, and
predictions past the ``max_dets`` best of their class in an image.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..evaluation.matching import MATCH_NAMES, ClassCurve, ImageMatch, class_pr, confusion_matrix, f1_score, match_image
from .predict import RowPrediction, write_rows

__all__ = ["MATCHING_RULE", "Evaluation", "ErrorReport", "check_thresholds", "evaluate_predictions", "write_matches",
           "class_table", "errors_to_branch"]

#: How boxes are matched, as recorded in the commit message and the branch metadata.
MATCHING_RULE = ("COCO (pycocotools COCOeval.evaluateImg, area 'all'): per class, greedy by score, crowd regions "
                 "matched last and ignored, max {max_dets} predictions per class and image")


@dataclass
class Evaluation:
    """Matches per branch row, the per-class COCO curves and the confusion matrix of one run."""

    classes: list[str]
    iou_thr: float
    max_dets: int
    matches: dict[int, ImageMatch]
    curves: list[ClassCurve]
    confusion: np.ndarray  # (C + 1, C + 1): ground truth x prediction, index C = background
    confusion_thr: float

    @property
    def totals(self) -> tuple[int, int, int]:
        """(TP, FP, FN) over all rows."""
        return (sum(m.tp for m in self.matches.values()), sum(m.fp for m in self.matches.values()),
                sum(m.fn for m in self.matches.values()))


def check_thresholds(iou_thr: float, max_dets: int) -> None:
    """Raises ConfigError for an IoU threshold outside (0, 1] or ``max_dets`` < 1."""
    from ..errors import ConfigError

    if not 0 < iou_thr <= 1:
        raise ConfigError(f"--iou-thr {iou_thr}: the IoU threshold must be in (0, 1]")
    if max_dets < 1:
        raise ConfigError(f"--max-dets {max_dets}: at least one prediction per class and image must count")


def evaluate_predictions(results: dict[int, RowPrediction], classes, iou_thr: float = 0.5, max_dets: int = 100,
                         confusion_thr: float = 0.3) -> Evaluation:
    """Match every row's predictions to its ground truth (COCO's rule) and accumulate per class.

    The confusion matrix counts a class-agnostic match of the predictions scored >= ``confusion_thr``.
    """
    check_thresholds(iou_thr, max_dets)
    rows = sorted(results)
    matches = {row: match_image(results[row].boxes, results[row].labels, results[row].scores, results[row].gt_boxes,
                                results[row].gt_labels, results[row].gt_crowd, iou_thr=iou_thr, max_dets=max_dets)
               for row in rows}
    curves = class_pr([(matches[row], results[row].labels, results[row].scores, results[row].gt_labels)
                       for row in rows], len(classes))
    agnostic = []
    for row in rows:
        r = results[row]
        keep = r.scores >= confusion_thr
        agnostic.append((match_image(r.boxes[keep], r.labels[keep], r.scores[keep], r.gt_boxes, r.gt_labels,
                                     r.gt_crowd, iou_thr=iou_thr, max_dets=max_dets, classwise=False),
                         r.labels[keep], r.gt_labels))
    return Evaluation(list(classes), iou_thr, max_dets, matches, curves, confusion_matrix(agnostic, len(classes)),
                      confusion_thr)


def write_matches(target, results: dict[int, RowPrediction], evaluation: Evaluation, record: dict) -> None:
    """Add the match columns to ``target`` and fill them (nothing is committed).

    ``record`` (config, checkpoint, thresholds, rule ...) goes into the branch's ``lakedet_errors``
    metadata.
    """
    from deeplake import types

    for name in ("pred_match", "gt_match"):
        target.add_column(name, types.ClassLabel(types.Array("uint8", dimensions=1)))
        target[name].metadata["class_names"] = list(MATCH_NAMES)
    for name in ("pred_match_gt", "gt_match_pred"):
        target.add_column(name, types.Array("int32", dimensions=1))
    for name in ("pred_iou", "gt_area"):
        target.add_column(name, types.Array("float32", dimensions=1))
    for name in ("eval_tp", "eval_fp", "eval_fn"):
        target.add_column(name, types.Int32())
    target.add_column("eval_f1", types.Float32())
    matches = evaluation.matches
    for name, field in (("pred_match", "pred_match"), ("pred_match_gt", "pred_gt"), ("pred_iou", "pred_iou"),
                        ("gt_match", "gt_match"), ("gt_match_pred", "gt_pred")):
        write_rows(target[name], {row: getattr(match, field) for row, match in matches.items()})
    write_rows(target["gt_area"], {row: ((r.gt_boxes[:, 2] - r.gt_boxes[:, 0]) * (r.gt_boxes[:, 3] - r.gt_boxes[:, 1]))
                                   .astype(np.float32) for row, r in results.items() if row in matches})
    rows = len(target)
    counts = np.full((rows, 3), -1, np.int32)  # rows not evaluated: -1 (and NaN F1)
    f1 = np.full(rows, np.nan, np.float32)
    for row, match in matches.items():
        counts[row] = match.tp, match.fp, match.fn
        f1[row] = f1_score(match.tp, match.fp, match.fn)
    if rows:
        for k, name in enumerate(("eval_tp", "eval_fp", "eval_fn")):
            target[name][0:rows] = counts[:, k]
        target["eval_f1"][0:rows] = f1
    target.metadata["lakedet_errors"] = record


def class_table(evaluation: Evaluation) -> tuple[list[str], list[tuple]]:
    """Headers and rows of the per-class report (and an ``all`` row: sums, mAP over classes with
    ground truth); precision and recall count every written prediction."""
    iou = f"AP@{evaluation.iou_thr:g}"
    headers = ["class", "gts", "preds", "tp", "fp", "fn", "precision", "recall", iou]
    rows = []
    for name, curve in zip(evaluation.classes, evaluation.curves):
        rows.append((name, curve.gts, curve.tp + curve.fp, curve.tp, curve.fp, curve.fn,
                     _ratio(curve.tp, curve.tp + curve.fp), _ratio(curve.tp, curve.gts), curve.ap))
    gts, tp, fp, fn = (sum(c.gts for c in evaluation.curves), sum(c.tp for c in evaluation.curves),
                       sum(c.fp for c in evaluation.curves), sum(c.fn for c in evaluation.curves))
    aps = [c.ap for c in evaluation.curves if c.gts]
    rows.append(("all", gts, tp + fp, tp, fp, fn, _ratio(tp, tp + fp), _ratio(tp, gts),
                 float(np.mean(aps)) if aps else float("nan")))
    return headers, rows


def _ratio(a: int, b: int) -> float:
    return a / b if b else float("nan")


@dataclass
class ErrorReport:
    path: str
    branch: str
    rows: int
    source_commit: str
    commit: str
    evaluation: Evaluation
    files: dict[str, str]  # what was written in the work dir: pr_curves, confusion_matrix, errors, lineage


def errors_to_branch(config: str, checkpoint: str, path: str, branch: str, iou_thr: float = 0.5,
                     score_thr: float = 0.05, max_dets: int = 100, confusion_thr: float = 0.3,
                     cfg_options: dict | None = None, batch_size: int = 4, view: str | None = None,
                     query: str | None = None, work_dir: str = "work_dirs/errors", progress=None,
                     num_workers: int = 2, device: str | None = None, tta: bool = False) -> ErrorReport:
    """Predict the rows of ``path`` (all, or a saved view's / a query's), match the predictions to
    the ground truth and commit both on the new ``branch`` (one commit); write the PR curves,
    the confusion matrix, ``errors.json`` and ``lineage.json`` in ``work_dir``.

    The source branch is never written; a run that fails deletes the new branch again.

    Raises:
        SourceError: as ``lakedet predict`` (unknown view, existing branch, Deep Lake 3 dataset ...).
        ConfigError: a bad threshold or config.
    """
    from ..evaluation.plots import plot_confusion_matrix, plot_pr_curves
    from .predict import (PredictionBranch, check_checkpoint, load_config, predict_rows, prepare_model,
                          refuse_deeplake3, sha256_of, write_predictions)

    refuse_deeplake3(path, "errors")
    check_thresholds(iou_thr, max_dets)
    check_checkpoint(checkpoint)
    cfg, pipeline = load_config(config, cfg_options, tta=tta)
    run = PredictionBranch.open(path, branch, pipeline, view=view, query=query, command="errors")
    try:
        model = prepare_model(cfg, checkpoint, device, tta)
        results = predict_rows(model, run, batch_size, score_thr, progress, num_workers)
        classes = list(run.dataset.metainfo["classes"])
        evaluation = evaluate_predictions(results, classes, iou_thr, max_dets, confusion_thr)
        rule = MATCHING_RULE.format(max_dets=max_dets)
        digest = sha256_of(checkpoint)
        record = dict(iou_thr=iou_thr, matching=rule, max_dets=max_dets, score_thr=score_thr, config=str(config),
                      checkpoint=str(checkpoint), checkpoint_sha256=digest, source_branch=run.source_branch,
                      source_commit=run.source_commit, view=view, query=query if not view else None)
        write_predictions(run.target, results, classes)
        write_matches(run.target, results, evaluation, record)
        tp, fp, fn = evaluation.totals
        run.target.commit(f"lakedet errors: {len(results)} rows, TP {tp} FP {fp} FN {fn} at IoU >= {iou_thr}; "
                          f"matching {rule}; predictions with score >= {score_thr}; config {Path(config).name}; "
                          f"checkpoint {Path(checkpoint).name} sha256 {digest}; source "
                          f"{run.source_branch}@{run.source_commit}" + run.selection)
    except BaseException:
        run.discard()
        raise
    commit = str(run.target.version)
    out = Path(work_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = dict(pr_curves=str(out / "pr_curves.png"), confusion_matrix=str(out / "confusion_matrix.png"),
                 errors=str(out / "errors.json"))
    plot_pr_curves(evaluation.curves, classes, files["pr_curves"], iou_thr)
    plot_confusion_matrix(evaluation.confusion, classes, files["confusion_matrix"], iou_thr, confusion_thr)
    headers, table = class_table(evaluation)
    written = dict(branch=branch, commit=commit, rows=len(results), tp=tp, fp=fp, fn=fn)
    Path(files["errors"]).write_text(json.dumps(dict(
        record, written=written, per_class=[{k: None if isinstance(v, float) and np.isnan(v) else v
                                             for k, v in zip(headers, row)} for row in table],
        confusion_matrix=dict(rows="ground truth", columns="prediction", labels=classes + ["background"],
                              score_thr=confusion_thr, counts=evaluation.confusion.tolist())), indent=2, default=str))
    from ..engine.lineage import write_lineage

    files["lineage"] = write_lineage(work_dir, "errors", {"errors": [run.lineage()]}, checkpoint=checkpoint,
                                     written=dict(written, iou_thr=iou_thr, matching=rule))
    return ErrorReport(path, branch, len(results), run.source_commit, commit, evaluation, files)
