"""``lakedet errors``: which of a model's boxes are right, written back to the dataset.

Like FiftyOne's ``evaluate_detections``, but versioned and queryable with TQL: the model's
predictions (``lakedet predict``'s columns) and their matching to the ground truth go on a new
branch in one commit, whose message records the config, the checkpoint's SHA-256, the source
commit, the IoU threshold and the matching rule, and ends with the same as a JSON record
(``lakedet.tools.evaluated.commit_record`` reads it; nothing goes into the dataset's metadata,
which Deep Lake 4.7.4 shares with every branch).
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
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path

import numpy as np

from ..evaluation.breakdown import SIZES, Breakdown, breakdown, threshold_sweep
from ..evaluation.matching import (MATCH_NAMES, ClassCurve, ImageMatch, confusion_labels, confusion_matrix,
                                   expand_match, f1_score, match_image)
from .evaluated import json_ready, with_record
from .predict import RowPrediction, write_rows

__all__ = ["matching_rule", "Evaluation", "ErrorReport", "check_thresholds", "class_indices", "restrict_to_classes",
           "evaluate_predictions", "write_matches", "class_table", "size_table", "sweep_table", "report_json",
           "errors_to_branch"]


def matching_rule(max_dets: int = 100, classwise: bool = True) -> str:
    """How boxes are matched, as recorded in the commit message."""
    scope = "per class" if classwise else "any class with any class (useCats=0)"
    return (f"COCO (pycocotools COCOeval.evaluateImg, area 'all'): {scope}, greedy by score, crowd regions matched "
            f"last and ignored, max {max_dets} predictions per class and image")


@dataclass
class Evaluation:
    """One run: matches per branch row, and the ``Breakdown`` the per-class report, the per-size
    numbers and the threshold sweep come from.

    ``classes`` are the evaluated classes (all, or a ``--classes`` selection), ``names`` the
    reported ones (``classes``, or ``["any class"]`` with class-agnostic matching). ``matches``
    cover every box of a row; boxes of classes outside the selection are ``ignore``.
    """

    classes: list[str]
    iou_thr: float
    max_dets: int
    matches: dict[int, ImageMatch]
    breakdown: Breakdown
    confusion: np.ndarray  # (C + 1, C + 1): ground truth x prediction, index C = missing
    confusion_thr: float
    classwise: bool = True
    selected: list[str] | None = None

    @property
    def names(self) -> list[str]:
        return self.breakdown.classes

    @property
    def curves(self) -> list[ClassCurve]:
        """Per reported class, COCO's PR curve at the IoU threshold."""
        return self.breakdown.curves()

    @cached_property
    def metrics(self) -> dict:
        """``Breakdown.metrics()``: per class (and ``all``) and COCO size, AP, AP50, AR, counts."""
        return self.breakdown.metrics()

    @cached_property
    def sweep(self) -> dict:
        """``threshold_sweep``: precision, recall, F1 per score threshold and the best-F1 threshold per class."""
        return threshold_sweep(self.breakdown)

    @property
    def totals(self) -> tuple[int, int, int]:
        """(TP, FP, FN) over all rows (the selected classes)."""
        return (sum(m.tp for m in self.matches.values()), sum(m.fp for m in self.matches.values()),
                sum(m.fn for m in self.matches.values()))


def check_thresholds(iou_thr: float, max_dets: int) -> None:
    """Raises ConfigError for an IoU threshold outside (0, 1] or ``max_dets`` < 1."""
    from ..errors import ConfigError

    if not 0 < iou_thr <= 1:
        raise ConfigError(f"--iou-thr {iou_thr}: the IoU threshold must be in (0, 1]")
    if max_dets < 1:
        raise ConfigError(f"--max-dets {max_dets}: at least one prediction per class and image must count")


def class_indices(classes, selected) -> list[int]:
    """The indices of the ``selected`` class names (all classes for None), in the dataset's order.

    Raises:
        ConfigError: a name is not a class of the dataset (the message lists the classes).
    """
    from ..errors import ConfigError

    classes = list(classes)
    if selected is None:
        return list(range(len(classes)))
    unknown = [name for name in selected if name not in classes]
    if unknown or not selected:
        raise ConfigError(f"--classes {','.join(selected)}: " + (f"no class {', '.join(map(repr, unknown))}"
                                                                  if unknown else "no class given")
                          + f"; the dataset's classes: {', '.join(classes)}")
    return [k for k, name in enumerate(classes) if name in selected]


def restrict_to_classes(results: dict[int, RowPrediction], keep: list[int]):
    """Each row with only the boxes (predicted and ground truth) of the classes ``keep``, relabelled
    ``0 .. len(keep) - 1`` (masks dropped), and per row the positions of the kept boxes:
    ``({row: RowPrediction}, {row: (pred positions, gt positions)})``."""
    lookup = np.full(max([*keep, 0]) + 1, -1, np.int64)
    lookup[keep] = np.arange(len(keep))
    chosen, positions = {}, {}
    for row, r in results.items():
        labels, gt_labels = np.asarray(r.labels, np.int64), np.asarray(r.gt_labels, np.int64)
        preds = np.flatnonzero(np.isin(labels, keep))
        gts = np.flatnonzero(np.isin(gt_labels, keep))
        chosen[row] = replace(r, boxes=r.boxes[preds], labels=lookup[labels[preds]], scores=r.scores[preds], masks=None,
                              gt_boxes=r.gt_boxes[gts], gt_labels=lookup[gt_labels[gts]], gt_crowd=r.gt_crowd[gts],
                              gt_area=None if r.gt_area is None else np.asarray(r.gt_area)[gts])
        positions[row] = (preds, gts)
    return chosen, positions


def evaluate_predictions(results: dict[int, RowPrediction], classes, iou_thr: float = 0.5, max_dets: int = 100,
                         confusion_thr: float = 0.3, classwise: bool = True,
                         selected: list[str] | None = None) -> Evaluation:
    """Match every row's predictions to its ground truth (COCO's rule) and break the result down
    per class and COCO size (``lakedet.evaluation.breakdown``).

    Args:
        classwise: False matches boxes of any class with each other (COCO's ``useCats=0``).
        selected: evaluate only these classes (their boxes; the others are ignored), or all.

    The confusion matrix counts a class-agnostic match of the predictions scored >= ``confusion_thr``.

    Raises:
        ConfigError: a bad threshold, or a selected class the dataset does not have.
    """
    check_thresholds(iou_thr, max_dets)
    keep = class_indices(classes, selected)
    names = [list(classes)[k] for k in keep]
    chosen, positions = restrict_to_classes(results, keep)
    result = breakdown(chosen, names, iou_thr, max_dets, classwise)
    matches = {row: expand_match(result.matches[row], *positions[row], len(results[row].labels),
                                 len(results[row].gt_labels)) for row in result.rows}
    agnostic = []
    for row in result.rows:
        r = chosen[row]
        kept = r.scores >= confusion_thr
        agnostic.append((match_image(r.boxes[kept], r.labels[kept], r.scores[kept], r.gt_boxes, r.gt_labels,
                                     r.gt_crowd, iou_thr=iou_thr, max_dets=max_dets, classwise=False),
                         r.labels[kept], r.gt_labels))
    return Evaluation(names, iou_thr, max_dets, matches, result, confusion_matrix(agnostic, len(names)), confusion_thr,
                      classwise, None if selected is None else names)


def write_matches(target, results: dict[int, RowPrediction], evaluation: Evaluation) -> None:
    """Add the match columns to ``target`` and fill them (nothing is committed; the caller's commit
    message records how they were made)."""
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


def class_table(evaluation: Evaluation) -> tuple[list[str], list[tuple]]:
    """Headers and rows of the per-class report (and an ``all`` row: sums, means over the classes
    with ground truth): counts, precision and recall over every written prediction and AP at the
    IoU threshold, then COCO's AP and mean average recall over IoU 0.5:0.95."""
    headers = ["class", "gts", "preds", "tp", "fp", "fn", "precision", "recall", f"AP@{evaluation.iou_thr:g}",
               "AP@[.5:.95]", "AR@[.5:.95]"]
    curves = evaluation.curves
    aps = [c.ap for c in curves if c.gts]
    at_thr = [c.ap for c in curves] + [float(np.mean(aps)) if aps else float("nan")]
    rows = []
    for name, ap in zip([*evaluation.names, "all"], at_thr):
        m = evaluation.metrics[name]["all"]
        rows.append((name, int(m["gts"]), int(m["preds"]), int(m["tp"]), int(m["fp"]), int(m["fn"]), m["precision"],
                     m["recall"], ap, m["AP"], m["AR"]))
    return headers, rows


def size_table(evaluation: Evaluation) -> tuple[list[str], list[tuple]]:
    """All reported classes together, per COCO size (small < 32², medium, large > 96² pixels)."""
    headers = ["size", "gts", "preds", "tp", "fp", "fn", "precision", "recall", "AP@[.5:.95]", "AP50", "AR@[.5:.95]"]
    rows = []
    for size in SIZES:
        m = evaluation.metrics["all"][size]
        rows.append((size, int(m["gts"]), int(m["preds"]), int(m["tp"]), int(m["fp"]), int(m["fn"]), m["precision"],
                     m["recall"], m["AP"], m["AP50"], m["AR"]))
    return headers, rows


def sweep_table(evaluation: Evaluation) -> tuple[list[str], list[tuple]]:
    """Per class (and ``all``): the score threshold of the best F1, with precision, recall and F1 there."""
    headers = ["class", "best score thr", "precision", "recall", "F1"]
    rows = []
    for name, entry in evaluation.sweep.items():
        if entry["best_threshold"] is None:
            rows.append((name, "-", float("nan"), float("nan"), float("nan")))
            continue
        k = entry["thresholds"].index(entry["best_threshold"])
        rows.append((name, f"{entry['best_threshold']:g}", entry["precision"][k], entry["recall"][k], entry["f1"][k]))
    return headers, rows


@dataclass
class ErrorReport:
    path: str
    branch: str
    rows: int
    source_commit: str
    commit: str
    evaluation: Evaluation
    files: dict[str, str]  # what was written in the work dir: pr_curves, threshold_sweep, confusion_matrix, errors, lineage


def errors_to_branch(config: str, checkpoint: str, path: str, branch: str, iou_thr: float = 0.5,
                     score_thr: float = 0.05, max_dets: int = 100, confusion_thr: float = 0.3,
                     cfg_options: dict | None = None, batch_size: int = 4, view: str | None = None,
                     query: str | None = None, work_dir: str = "work_dirs/errors", progress=None,
                     num_workers: int = 2, device: str | None = None, tta: bool = False, classwise: bool = True,
                     classes: list[str] | None = None) -> ErrorReport:
    """Predict the rows of ``path`` (all, or a saved view's / a query's), match the predictions to
    the ground truth and commit both on the new ``branch`` (one commit); write the PR curves, the
    threshold sweep, the confusion matrix, ``errors.json`` and ``lineage.json`` in ``work_dir``.

    ``classwise`` False matches boxes of any class with each other; ``classes`` restricts the
    matching, the per-row counts and the report to those classes (the other boxes are ``ignore``).
    The source branch is never written; a run that fails deletes the new branch again.

    Raises:
        SourceError: as ``lakedet predict`` (unknown view, existing branch, Deep Lake 3 dataset ...).
        ConfigError: a bad threshold, config or class name.
    """
    from ..evaluation.plots import plot_confusion_matrix, plot_pr_curves, plot_threshold_sweep
    from .predict import (PredictionBranch, check_checkpoint, load_config, predict_rows, prepare_model,
                          refuse_deeplake3, sha256_of, write_predictions)

    refuse_deeplake3(path, "errors")
    check_thresholds(iou_thr, max_dets)
    check_checkpoint(checkpoint)
    cfg, pipeline = load_config(config, cfg_options, tta=tta)
    run = PredictionBranch.open(path, branch, pipeline, view=view, query=query, command="errors")
    try:
        all_classes = list(run.dataset.metainfo["classes"])
        class_indices(all_classes, classes)  # a wrong name stops the run before the model does
        model = prepare_model(cfg, checkpoint, device, tta)
        results = predict_rows(model, run, batch_size, score_thr, progress, num_workers)
        evaluation = evaluate_predictions(results, all_classes, iou_thr, max_dets, confusion_thr, classwise, classes)
        rule = matching_rule(max_dets, classwise)
        digest = sha256_of(checkpoint)
        record = dict(iou_thr=iou_thr, matching=rule, max_dets=max_dets, classwise=classwise,
                      classes=evaluation.selected, score_thr=score_thr, config=str(config),
                      checkpoint=str(checkpoint), checkpoint_sha256=digest, source_branch=run.source_branch,
                      source_commit=run.source_commit, view=view, query=query if not view else None)
        write_predictions(run.target, results, all_classes)
        write_matches(run.target, results, evaluation)
        tp, fp, fn = evaluation.totals
        selection = f" of classes {', '.join(evaluation.selected)}" if evaluation.selected else ""
        run.target.commit(with_record(
            f"lakedet errors: {len(results)} rows, TP {tp} FP {fp} FN {fn}{selection} at IoU >= {iou_thr}; "
            f"matching {rule}; predictions with score >= {score_thr}; config {Path(config).name}; checkpoint "
            f"{Path(checkpoint).name} sha256 {digest}; source {run.source_branch}@{run.source_commit}" + run.selection,
            record))
    except BaseException:
        run.discard()
        raise
    commit = str(run.target.version)
    out = Path(work_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = dict(pr_curves=str(out / "pr_curves.png"), threshold_sweep=str(out / "threshold_sweep.png"),
                 confusion_matrix=str(out / "confusion_matrix.png"), errors=str(out / "errors.json"))
    plot_pr_curves(evaluation.curves, evaluation.names, files["pr_curves"], iou_thr)
    plot_threshold_sweep(evaluation.sweep, files["threshold_sweep"], iou_thr)
    plot_confusion_matrix(evaluation.confusion, evaluation.classes, files["confusion_matrix"], iou_thr, confusion_thr)
    written = dict(branch=branch, commit=commit, rows=len(results), tp=tp, fp=fp, fn=fn)
    Path(files["errors"]).write_text(json.dumps(json_ready(dict(record, written=written, **report_json(evaluation))),
                                                indent=2, default=str))
    from ..engine.lineage import write_lineage

    files["lineage"] = write_lineage(work_dir, "errors", {"errors": [run.lineage()]}, checkpoint=checkpoint,
                                     written=dict(written, iou_thr=iou_thr, matching=rule))
    return ErrorReport(path, branch, len(results), run.source_commit, commit, evaluation, files)


def report_json(evaluation: Evaluation) -> dict:
    """The report of ``errors.json``: ``per_class`` (the printed table), ``metrics`` (per class and
    COCO size: AP, AP50, AR, counts), ``threshold_sweep`` and ``confusion_matrix`` (its last row and
    column labelled ``missing``)."""
    headers, table = class_table(evaluation)
    return dict(per_class=[dict(zip(headers, row)) for row in table], metrics=evaluation.metrics,
                threshold_sweep=evaluation.sweep,
                confusion_matrix=dict(rows="ground truth", columns="prediction",
                                      labels=confusion_labels(evaluation.classes),
                                      missing="last row: predictions that matched no ground-truth box (false "
                                              "positives); last column: ground-truth boxes no prediction matched "
                                              "(missed)", score_thr=evaluation.confusion_thr,
                                      counts=evaluation.confusion.tolist()))
