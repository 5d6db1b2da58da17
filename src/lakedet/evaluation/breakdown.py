"""Per-class and per-size numbers of one evaluation, their bootstrap over images, and a score sweep.

Pure functions over per-image arrays (anything with ``boxes``, ``labels``, ``scores``,
``gt_boxes``, ``gt_labels``, ``gt_crowd`` and optionally ``gt_area``, as
``lakedet.tools.predict.RowPrediction``). Every image is matched with ``matching.match_image`` at
COCO's ten IoU thresholds (0.5:0.95) and the evaluation's own threshold, for COCO's area ranges
(``SIZES``), and accumulated with ``matching.pr_curve``, so the numbers are pycocotools' per class:

* ``AP`` (mean over the ten thresholds), ``AP50``, ``AR`` (COCO's average recall: the highest recall
  reached, averaged over the ten thresholds, ``max_dets`` per class and image);
* ``gts``, ``preds``, ``tp``, ``fp``, ``fn``, ``precision``, ``recall`` at the evaluation's IoU
  threshold, counting every prediction given.

The class ``"all"`` sums the counts and averages AP / AP50 / AR over the classes with ground truth
(COCO's mAP). ``Breakdown.metrics(weights)`` recomputes everything with each image counted
``weights[i]`` times, which is how ``bootstrap_deltas`` resamples images.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .matching import FP, IGNORE, TP, ClassCurve, match_image, pr_curve

__all__ = ["SIZES", "COCO_IOUS", "METRIC_NAMES", "Breakdown", "breakdown", "bootstrap_deltas", "threshold_counts",
           "threshold_sweep"]

#: COCO's area ranges (pixels²), as ``COCOeval.params.areaRng``.
SIZES = {"all": (0.0, 1e10), "small": (0.0, 32.0 ** 2), "medium": (32.0 ** 2, 96.0 ** 2), "large": (96.0 ** 2, 1e10)}
#: COCO's IoU thresholds 0.5, 0.55, ..., 0.95.
COCO_IOUS = np.linspace(0.5, 0.95, 10)
METRIC_NAMES = ("gts", "preds", "tp", "fp", "fn", "precision", "recall", "AP", "AP50", "AR")


def _ratio(a: float, b: float) -> float:
    return float(a / b) if b else float("nan")


@dataclass
class _Flat:
    """One (size, IoU threshold, class): its predictions' codes and scores, best score first, the
    image (position) of each, and the ground-truth boxes counted per image."""

    codes: np.ndarray
    scores: np.ndarray
    image: np.ndarray
    gts: np.ndarray


@dataclass
class Breakdown:
    """The matches of one evaluation, ready to be accumulated (``metrics``) any number of times."""

    rows: list[int]
    classes: list[str]
    iou_thr: float
    thresholds: np.ndarray  # COCO_IOUS plus iou_thr when it is not one of them
    flat: dict  # (size, threshold index, class) -> _Flat
    matches: dict[int, object]  # row -> ImageMatch at iou_thr, area "all", classwise as asked

    def curves(self, size: str = "all") -> list[ClassCurve]:
        """Each class's ``ClassCurve`` at the evaluation's IoU threshold (COCO's 101-point
        precision, AP, counts) over the area range ``size``."""
        at = int(np.flatnonzero(np.isclose(self.thresholds, self.iou_thr))[0])
        return [pr_curve(self.flat[size, at, c].codes, float(self.flat[size, at, c].gts.sum()))
                for c in range(len(self.classes))]

    def metrics(self, weights: np.ndarray | None = None) -> dict[str, dict[str, dict[str, float]]]:
        """``{class or "all": {size: {metric: value}}}``; ``weights`` counts image ``i`` (in
        ``rows`` order) that many times."""
        at = int(np.flatnonzero(np.isclose(self.thresholds, self.iou_thr))[0])
        coco = [int(np.flatnonzero(np.isclose(self.thresholds, t))[0]) for t in COCO_IOUS]
        half = int(np.flatnonzero(np.isclose(self.thresholds, 0.5))[0])
        out: dict[str, dict[str, dict[str, float]]] = {name: {} for name in [*self.classes, "all"]}
        for size in SIZES:
            per_class = []
            for c, name in enumerate(self.classes):
                curves = {}
                for t in sorted({at, half, *coco}):
                    flat = self.flat[size, t, c]
                    w = None if weights is None else weights[flat.image]
                    gts = float(flat.gts.sum()) if weights is None else float((flat.gts * weights).sum())
                    curves[t] = pr_curve(flat.codes, gts, w)
                main = curves[at]
                preds = float(main.tp + main.fp)
                values = dict(gts=main.gts, preds=preds, tp=main.tp, fp=main.fp, fn=main.fn,
                              precision=_ratio(main.tp, preds), recall=_ratio(main.tp, main.gts),
                              AP=float(np.mean([curves[t].ap for t in coco])), AP50=curves[half].ap,
                              AR=float(np.mean([curves[t].recall for t in coco])))
                out[name][size] = values
                per_class.append(values)
            sums = {k: float(sum(v[k] for v in per_class)) for k in ("gts", "preds", "tp", "fp", "fn")}
            with_gt = [v for v in per_class if v["gts"]]
            out["all"][size] = dict(sums, precision=_ratio(sums["tp"], sums["preds"]),
                                    recall=_ratio(sums["tp"], sums["gts"]),
                                    **{k: float(np.mean([v[k] for v in with_gt])) if with_gt else float("nan")
                                       for k in ("AP", "AP50", "AR")})
        return out


def breakdown(images: Mapping[int, object], classes: Sequence[str], iou_thr: float = 0.5, max_dets: int = 100,
              classwise: bool = True) -> Breakdown:
    """Match every image at every threshold and area range (see the module docstring).

    Args:
        images: row -> its predictions and ground truth (``RowPrediction``-like).
        classes: the class names (labels index them).
        classwise: False matches boxes of any class with each other (COCO's ``useCats=0``): the
            result then has one class, ``"any class"``.
    """
    rows = sorted(images)
    names = list(classes) if classwise else ["any class"]
    thresholds = COCO_IOUS if np.isclose(COCO_IOUS, iou_thr).any() else np.sort(np.append(COCO_IOUS, iou_thr))
    collected = {key: ([], [], [], []) for key in ((s, t, c) for s in SIZES for t in range(len(thresholds))
                                                    for c in range(len(names)))}
    matches = {}
    for position, row in enumerate(rows):
        r = images[row]
        labels = np.asarray(r.labels, np.int64).reshape(-1)
        gt_labels = np.asarray(r.gt_labels, np.int64).reshape(-1)
        if not classwise:
            labels, gt_labels = np.zeros_like(labels), np.zeros_like(gt_labels)
        scores = np.asarray(r.scores, np.float64).reshape(-1)
        area = getattr(r, "gt_area", None)
        for size, area_range in SIZES.items():
            for t, threshold in enumerate(thresholds):
                match = match_image(r.boxes, labels, scores, r.gt_boxes, gt_labels, r.gt_crowd, iou_thr=threshold,
                                    max_dets=max_dets, area_range=None if size == "all" else area_range,
                                    gt_area=area)
                if size == "all" and np.isclose(threshold, iou_thr):
                    matches[row] = match
                for c in range(len(names)):
                    dets = np.flatnonzero(labels == c)
                    codes, order_scores, image, gts = collected[size, t, c]
                    codes.append(match.pred_match[dets])
                    order_scores.append(scores[dets])
                    image.append(np.full(len(dets), position))
                    gts.append(int(np.count_nonzero((gt_labels == c) & (match.gt_match != IGNORE))))
    flat = {}
    for key, (codes, scores, image, gts) in collected.items():
        codes = np.concatenate(codes) if codes else np.zeros(0, np.uint8)
        scores = np.concatenate(scores) if scores else np.zeros(0)
        image = np.concatenate(image) if image else np.zeros(0, np.int64)
        order = np.argsort(-scores, kind="mergesort")  # as COCOeval.accumulate: stable, images in order
        flat[key] = _Flat(codes[order], scores[order], image[order], np.asarray(gts, np.float64))
    return Breakdown(rows, names, iou_thr, thresholds, flat, matches)


def bootstrap_deltas(a: Breakdown, b: Breakdown, samples: int = 200, seed: int = 0,
                     level: float = 0.95) -> dict[str, dict[str, dict[str, tuple[float, float]]]]:
    """The ``level`` percentile interval of ``b - a`` for every number of ``Breakdown.metrics``,
    over ``samples`` paired bootstrap resamples of the images (the same resampled images on both
    sides; ``a`` and ``b`` must hold the same rows in the same order).

    A difference whose interval excludes 0 is larger than the noise of which images (and so how
    many boxes) happened to be evaluated.

    Raises:
        ValueError: the two sides hold different rows, or ``samples`` < 1.
    """
    if a.rows != b.rows:
        raise ValueError(f"the two evaluations hold different rows ({len(a.rows)} and {len(b.rows)}): "
                         "the bootstrap pairs images")
    if samples < 1:
        raise ValueError(f"samples={samples}: at least one bootstrap resample is needed")
    rng = np.random.default_rng(seed)
    n = len(a.rows)
    draws: dict = {}
    for _ in range(samples):
        weights = rng.multinomial(n, np.full(n, 1.0 / n)).astype(float) if n else np.zeros(0)
        ma, mb = a.metrics(weights), b.metrics(weights)
        for name in mb:
            for size in mb[name]:
                for metric, value in mb[name][size].items():
                    draws.setdefault((name, size, metric), []).append(value - ma[name][size][metric])
    tail = (1 - level) / 2 * 100
    out: dict = {}
    for (name, size, metric), values in draws.items():
        values = np.asarray(values, float)
        values = values[~np.isnan(values)]
        interval = ((float(np.percentile(values, tail)), float(np.percentile(values, 100 - tail)))
                    if len(values) else (float("nan"), float("nan")))
        out.setdefault(name, {}).setdefault(size, {})[metric] = interval
    return out


def threshold_counts(result: Breakdown, thresholds: Sequence[float]) -> dict[str, tuple]:
    """Per class (and ``"all"``): ``(tp, fp, gts)``, the true and false positives among the
    predictions scored >= each threshold (arrays, matched at the evaluation's IoU threshold, area
    "all") and the ground-truth boxes counted."""
    grid = np.asarray(thresholds, float)
    at = int(np.flatnonzero(np.isclose(result.thresholds, result.iou_thr))[0])
    counts = {}
    for c, name in enumerate(result.classes):
        flat = result.flat["all", at, c]
        tp = np.asarray([np.count_nonzero((flat.codes == TP) & (flat.scores >= t)) for t in grid], float)
        fp = np.asarray([np.count_nonzero((flat.codes == FP) & (flat.scores >= t)) for t in grid], float)
        counts[name] = (tp, fp, float(flat.gts.sum()))
    counts["all"] = tuple(sum(v[k] for v in counts.values()) for k in range(3))
    return counts


def threshold_sweep(result: Breakdown, thresholds: Sequence[float] | None = None) -> dict[str, dict]:
    """Precision, recall and F1 of each class (and ``"all"``) keeping only predictions scored >= each
    threshold (matched at the evaluation's IoU threshold, area "all"), and the threshold of the best F1.

    Returns:
        ``{class: {"thresholds": [...], "precision": [...], "recall": [...], "f1": [...],
        "best_threshold": t, "best_f1": f}}``.
    """
    grid = np.round(np.arange(0.05, 1.0, 0.05), 2) if thresholds is None else np.asarray(thresholds, float)
    counts = threshold_counts(result, grid)
    out = {}
    for name, (tp, fp, gts) in counts.items():
        with np.errstate(divide="ignore", invalid="ignore"):
            precision = np.where(tp + fp > 0, tp / (tp + fp), np.nan)
            recall = tp / gts if gts else np.full(len(grid), np.nan)
            f1 = np.where(tp > 0, 2 * tp / (2 * tp + fp + (gts - tp)), 0.0)
        best = int(np.argmax(f1)) if gts else -1
        out[name] = dict(thresholds=grid.tolist(), precision=precision.tolist(), recall=recall.tolist(),
                         f1=f1.tolist(), best_threshold=float(grid[best]) if best >= 0 else None,
                         best_f1=float(f1[best]) if best >= 0 else None)
    return out
