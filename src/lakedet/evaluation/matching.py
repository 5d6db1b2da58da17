"""Matching predicted boxes to ground truth exactly as COCO's evaluation does, box by box.

Pure functions over arrays (no dataset, no model), so the rule can be tested against
pycocotools itself. ``match_image`` reproduces what ``COCOeval.evaluateImg`` decides for one image
at one IoU threshold over the area range "all": per class, detections greedy by score (highest
first, ties in input order), each taking the not yet matched ground-truth box of the same class
with the highest IoU >= the threshold (ties: the later box); crowd boxes are tried last, may be
matched by any number of detections, and the IoU with a crowd box is the intersection over the
detection's own area; a detection matched to a crowd box is ignored (neither TP nor FP), and so
is every detection past the ``max_dets`` best of its class in the image. ``class_pr`` accumulates
the matches into COCO's 101-point interpolated precision and AP per class
(``COCOeval.accumulate``); ``confusion_matrix`` counts a class-agnostic match, with a "missing"
row and column for boxes without a partner.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..schema.boxes import BoxMode, convert_boxes

__all__ = ["MATCH_NAMES", "TP", "FP", "FN", "IGNORE", "RECALL_POINTS", "ImageMatch", "box_iou", "match_image",
           "ClassCurve", "class_pr", "pr_curve", "confusion_matrix", "MISSING", "confusion_labels", "f1_score",
           "expand_match"]

#: Codes of the per-box match columns, in the order of their ``class_names``.
MATCH_NAMES = ("tp", "fp", "fn", "ignore")
TP, FP, FN, IGNORE = range(4)
#: COCO's recall thresholds: 0, 0.01, ..., 1.
RECALL_POINTS = np.linspace(0.0, 1.0, 101)
#: The confusion matrix's last row and column: no box on that side.
MISSING = "missing"


@dataclass(frozen=True)
class ImageMatch:
    """The matching of one image: codes, partner indices and IoUs, in the input order of the boxes.

    ``pred_gt[i]`` is the index of the ground-truth box prediction ``i`` matched, or -1;
    ``gt_pred[j]`` the index of the prediction that matched ground-truth box ``j``, or -1 (for a
    crowd box matched several times: the last, lowest-scored one, as COCO keeps it). ``pred_iou``
    is the IoU with the matched box; for an unmatched prediction, its best IoU with any
    ground-truth box of its class (0 when there is none).
    """

    pred_match: np.ndarray  # (D,) uint8: TP, FP or IGNORE
    pred_gt: np.ndarray  # (D,) int32
    pred_iou: np.ndarray  # (D,) float32
    gt_match: np.ndarray  # (G,) uint8: TP, FN or IGNORE
    gt_pred: np.ndarray  # (G,) int32

    @property
    def tp(self) -> int:
        return int(np.count_nonzero(self.pred_match == TP))

    @property
    def fp(self) -> int:
        return int(np.count_nonzero(self.pred_match == FP))

    @property
    def fn(self) -> int:
        return int(np.count_nonzero(self.gt_match == FN))


def expand_match(match: ImageMatch, pred_index, gt_index, num_preds: int, num_gts: int) -> ImageMatch:
    """The match of some of an image's boxes as a match of all ``num_preds`` / ``num_gts`` of them:
    the matched boxes sit at ``pred_index`` / ``gt_index`` (their positions among all, in the
    matched order), every other box is ``IGNORE`` with no partner."""
    pred_index, gt_index = np.asarray(pred_index, np.int64), np.asarray(gt_index, np.int64)
    if len(pred_index) != len(match.pred_match) or len(gt_index) != len(match.gt_match):
        raise ValueError(f"{len(pred_index)} / {len(gt_index)} positions for a match of {len(match.pred_match)} "
                         f"predictions and {len(match.gt_match)} ground-truth boxes")
    pred_match, gt_match = np.full(num_preds, IGNORE, np.uint8), np.full(num_gts, IGNORE, np.uint8)
    pred_gt, gt_pred = np.full(num_preds, -1, np.int32), np.full(num_gts, -1, np.int32)
    pred_iou = np.zeros(num_preds, np.float32)
    pred_match[pred_index], gt_match[gt_index], pred_iou[pred_index] = match.pred_match, match.gt_match, match.pred_iou
    pred_gt[pred_index] = np.where(match.pred_gt >= 0, gt_index[np.maximum(match.pred_gt, 0)] if len(gt_index) else -1, -1)
    gt_pred[gt_index] = np.where(match.gt_pred >= 0, pred_index[np.maximum(match.gt_pred, 0)] if len(pred_index) else -1,
                                 -1)
    return ImageMatch(pred_match, pred_gt, pred_iou, gt_match, gt_pred)


def f1_score(tp: int, fp: int, fn: int) -> float:
    """``2 TP / (2 TP + FP + FN)``; 1.0 for an image with nothing to find and nothing found."""
    denominator = 2 * tp + fp + fn
    return 1.0 if denominator == 0 else 2 * tp / denominator


def box_iou(pred_boxes, gt_boxes, gt_crowd=None) -> np.ndarray:
    """``(D, G)`` IoU of pixel ``x1, y1, x2, y2`` boxes, computed as pycocotools' ``maskUtils.iou``
    does for boxes (float64, no +1; for a crowd box, intersection over the prediction's area)."""
    d, g = convert_boxes(pred_boxes, BoxMode.LTRB, BoxMode.LTWH), convert_boxes(gt_boxes, BoxMode.LTRB, BoxMode.LTWH)
    crowd = np.zeros(len(g), bool) if gt_crowd is None else np.asarray(gt_crowd, bool).reshape(-1)
    if not len(d) or not len(g):
        return np.zeros((len(d), len(g)))
    dx, dy, dw, dh = (d[:, None, k] for k in range(4))
    gx, gy, gw, gh = (g[None, :, k] for k in range(4))
    w = np.minimum(dx + dw, gx + gw) - np.maximum(dx, gx)
    h = np.minimum(dy + dh, gy + gh) - np.maximum(dy, gy)
    inter = np.where((w > 0) & (h > 0), w * h, 0.0)
    pred_area = (d[:, 2] * d[:, 3])[:, None]
    union = np.where(crowd[None, :], pred_area, pred_area + (g[:, 2] * g[:, 3])[None, :] - inter)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(inter > 0, inter / union, 0.0)


def match_image(pred_boxes, pred_labels, pred_scores, gt_boxes, gt_labels, gt_crowd=None, iou_thr: float = 0.5,
                max_dets: int = 100, classwise: bool = True, area_range: tuple[float, float] | None = None,
                gt_area=None) -> ImageMatch:
    """Match one image's predictions to its ground truth as ``COCOeval.evaluateImg`` does.

    Args:
        pred_boxes: ``(D, 4)`` pixel ``x1, y1, x2, y2``; ``pred_labels`` / ``pred_scores``: ``(D,)``.
        gt_boxes: ``(G, 4)`` pixel ``x1, y1, x2, y2``; ``gt_labels``: ``(G,)``;
            ``gt_crowd``: ``(G,)`` bool (COCO's ``iscrowd``), None for none.
        iou_thr: a match needs IoU >= this (COCO caps it at ``1 - 1e-10``).
        max_dets: only the best ``max_dets`` predictions of each class count (COCO's ``maxDets``);
            the others are ignored.
        classwise: False matches across classes (COCO's ``useCats=0``).
        area_range: ``(min, max)`` area: as COCO's ``areaRng``, ground truth outside it is ignored
            (tried last, like crowd boxes, but matched once) and so are unmatched predictions
            outside it; None is area "all".
        gt_area: ``(G,)`` COCO areas of the ground truth (default: the boxes' areas).

    Returns:
        An ``ImageMatch`` (boxes in the order given).
    """
    pred_labels = np.asarray(pred_labels).reshape(-1)
    pred_scores = np.asarray(pred_scores, np.float64).reshape(-1)
    gt_labels = np.asarray(gt_labels).reshape(-1)
    crowd = np.zeros(len(gt_labels), bool) if gt_crowd is None else np.asarray(gt_crowd, bool).reshape(-1)
    if not len(pred_labels) == len(pred_scores) == len(np.asarray(pred_boxes).reshape(-1, 4)):
        raise ValueError(f"{len(np.asarray(pred_boxes).reshape(-1, 4))} predicted boxes, {len(pred_labels)} labels "
                         f"and {len(pred_scores)} scores: each box needs one label and one score")
    if not len(gt_labels) == len(crowd) == len(np.asarray(gt_boxes).reshape(-1, 4)):
        raise ValueError(f"{len(np.asarray(gt_boxes).reshape(-1, 4))} ground-truth boxes, {len(gt_labels)} labels "
                         f"and {len(crowd)} crowd flags: each box needs one label and one flag")
    ious = box_iou(pred_boxes, gt_boxes, crowd)
    ignored, outside = crowd, np.zeros(len(pred_labels), bool)
    if area_range is not None:
        gt_xyxy, pred_xyxy = np.asarray(gt_boxes, np.float64).reshape(-1, 4), np.asarray(pred_boxes, np.float64).reshape(-1, 4)
        area = ((gt_xyxy[:, 2] - gt_xyxy[:, 0]) * (gt_xyxy[:, 3] - gt_xyxy[:, 1]) if gt_area is None
                else np.asarray(gt_area, np.float64).reshape(-1))
        ignored = crowd | (area < area_range[0]) | (area > area_range[1])
        pred_area = (pred_xyxy[:, 2] - pred_xyxy[:, 0]) * (pred_xyxy[:, 3] - pred_xyxy[:, 1])
        outside = (pred_area < area_range[0]) | (pred_area > area_range[1])
    pred_match = np.full(len(pred_labels), IGNORE, np.uint8)
    pred_gt = np.full(len(pred_labels), -1, np.int32)
    pred_iou = np.zeros(len(pred_labels), np.float32)
    gt_match = np.where(ignored, IGNORE, FN).astype(np.uint8)
    gt_pred = np.full(len(gt_labels), -1, np.int32)
    threshold = min(iou_thr, 1 - 1e-10)
    if classwise:
        groups = [(np.flatnonzero(pred_labels == label), np.flatnonzero(gt_labels == label))
                  for label in np.unique(np.concatenate([pred_labels, gt_labels]))]
    else:  # COCO pools the classes one after the other, each in input order
        groups = [(np.argsort(pred_labels, kind="mergesort"), np.argsort(gt_labels, kind="mergesort"))]
    for dets, gts in groups:
        if len(dets) and len(gts):
            pred_iou[dets] = ious[np.ix_(dets, gts)].max(1)
        gts = gts[np.argsort(ignored[gts], kind="mergesort")]  # regular boxes first, crowd / ignored boxes last
        dets = dets[np.argsort(-pred_scores[dets], kind="mergesort")][:max_dets]
        matched = np.zeros(len(gts), bool)
        for det in dets:
            best, best_iou = -1, threshold
            for k, gt in enumerate(gts):
                if matched[k] and not crowd[gt]:
                    continue
                if best > -1 and not ignored[gts[best]] and ignored[gt]:
                    break  # matched to a regular box: crowd / ignored boxes cannot take it over
                if ious[det, gt] < best_iou:
                    continue
                best, best_iou = k, ious[det, gt]
            if best == -1:
                pred_match[det] = IGNORE if outside[det] else FP
                continue
            gt = gts[best]
            matched[best] = True
            pred_match[det] = IGNORE if ignored[gt] else TP
            pred_gt[det], pred_iou[det], gt_pred[gt] = gt, ious[det, gt], det
            if not ignored[gt]:
                gt_match[gt] = TP
    return ImageMatch(pred_match, pred_gt, pred_iou, gt_match, gt_pred)


@dataclass(frozen=True)
class ClassCurve:
    """One class's accumulated result: COCO's interpolated precision at ``RECALL_POINTS`` and AP
    (NaN when the class has no non-crowd ground truth), plus counts over all predictions."""

    precision: np.ndarray  # (101,)
    recall: float  # the highest recall reached
    ap: float
    gts: int  # non-crowd ground-truth boxes
    tp: int
    fp: int
    fn: int


def class_pr(images: Sequence[tuple[ImageMatch, np.ndarray, np.ndarray, np.ndarray]],
             num_classes: int) -> list[ClassCurve]:
    """Accumulate per-image matches into one ``ClassCurve`` per class, as ``COCOeval.accumulate``
    does for one IoU threshold, area "all" and the matching's ``max_dets``.

    Args:
        images: per image, ``(match, pred_labels, pred_scores, gt_labels)``, in image order.
        num_classes: classes ``0 .. num_classes - 1``.
    """
    curves = []
    for label in range(num_classes):
        scores, codes, gts = [], [], 0
        for match, pred_labels, pred_scores, gt_labels in images:
            dets = np.flatnonzero(np.asarray(pred_labels).reshape(-1) == label)
            order = dets[np.argsort(-np.asarray(pred_scores, np.float64).reshape(-1)[dets], kind="mergesort")]
            scores.append(np.asarray(pred_scores, np.float64).reshape(-1)[order])
            codes.append(match.pred_match[order])
            ours = np.asarray(gt_labels).reshape(-1) == label
            gts += int(np.count_nonzero(ours & (match.gt_match != IGNORE)))
        scores = np.concatenate(scores) if scores else np.zeros(0)
        codes = np.concatenate(codes) if codes else np.zeros(0, np.uint8)
        curves.append(pr_curve(codes[np.argsort(-scores, kind="mergesort")], gts))
    return curves


def pr_curve(codes: np.ndarray, gts: float, weights: np.ndarray | None = None) -> ClassCurve:
    """One class's ``ClassCurve`` from its predictions' codes sorted by score (highest first) and
    its number of ground-truth boxes, as ``COCOeval.accumulate`` computes it.

    ``weights`` (one per prediction, default 1) counts a prediction that many times: the bootstrap
    of ``lakedet.evaluation.breakdown`` resamples images this way (``gts`` is then the weighted count).
    """
    codes = np.asarray(codes).reshape(-1)
    w = np.ones(len(codes)) if weights is None else np.asarray(weights, float).reshape(-1)
    tp_sum = np.cumsum((codes == TP) * w)
    fp_sum = np.cumsum((codes == FP) * w)
    tp, fp = (float(tp_sum[-1]), float(fp_sum[-1])) if len(codes) else (0.0, 0.0)
    if weights is None:
        tp, fp = int(tp), int(fp)
    precision = np.zeros(len(RECALL_POINTS))
    if gts == 0:
        return ClassCurve(precision, float("nan"), float("nan"), 0, tp, fp, 0)
    recall = tp_sum / gts
    pr = tp_sum / (tp_sum + fp_sum + np.spacing(1))
    pr = np.maximum.accumulate(pr[::-1])[::-1] if len(pr) else pr  # the precision envelope
    hits = np.searchsorted(recall, RECALL_POINTS, side="left")
    valid = hits < len(pr)
    precision[valid] = pr[hits[valid]]
    return ClassCurve(precision, float(recall[-1]) if len(recall) else 0.0, float(precision.mean()), gts, tp, fp,
                      gts - tp)


def confusion_labels(classes: Sequence[str]) -> list[str]:
    """The names of the confusion matrix's rows and columns: the classes, then ``MISSING``."""
    return [*classes, MISSING]


def confusion_matrix(images: Sequence[tuple[ImageMatch, np.ndarray, np.ndarray]], num_classes: int) -> np.ndarray:
    """``(C + 1, C + 1)`` counts from class-agnostic matches (``match_image(classwise=False)``):
    rows are the ground-truth class, columns the predicted class, index ``C`` is ``MISSING`` (no
    box on that side).

    A matched prediction counts at (its ground-truth box's class, its class); an unmatched one (a
    false positive: its ground truth is missing) at (missing, its class); a missed ground-truth box
    (its prediction is missing) at (its class, missing); ignored boxes (crowd) are not counted.

    Args:
        images: per image, ``(match, pred_labels, gt_labels)``.
    """
    counts = np.zeros((num_classes + 1, num_classes + 1), np.int64)
    for match, pred_labels, gt_labels in images:
        pred_labels = np.asarray(pred_labels, np.int64).reshape(-1)
        gt_labels = np.asarray(gt_labels, np.int64).reshape(-1)
        for det in np.flatnonzero(match.pred_match == TP):
            counts[gt_labels[match.pred_gt[det]], pred_labels[det]] += 1
        for det in np.flatnonzero(match.pred_match == FP):
            counts[num_classes, pred_labels[det]] += 1
        for gt in np.flatnonzero(match.gt_match == FN):
            counts[gt_labels[gt], num_classes] += 1
    return counts
