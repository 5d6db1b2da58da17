"""How likely each label of an image is a mistake, and of which kind, from a model's predictions.

A pure function over one image's arrays (``score_image``). The predictions should be
out-of-sample (made by a model that did not train on the image); ``lakedet issues`` documents how.
With ``e(p, g) = score(p) * IoU(p, g)`` the evidence a prediction ``p`` gives for box ``g``
(IoU over any class), the scores (each in [0, 1], higher = more likely a mistake) are:

* ``missing`` (per prediction): ``score(p) * (1 - max IoU with any ground-truth box)``: a
  confident prediction where nothing is labelled;
* ``spurious`` (per box): ``1 - max score(p)`` over the predictions with IoU >= ``near_iou``:
  nothing was predicted near the box;
* ``swap`` (per box): ``max(0, max e(p, g) over other classes - max e(p, g) over its class)``:
  another class's prediction covers it better than its own;
* ``localisation`` (per box): ``max over its class's predictions with IoU >= near_iou of
  score(p) * (1 - IoU)`` for the prediction with the most evidence: a confident prediction of
  its class that overlaps it only partly.

A box's ``kind`` is the kind of its highest score; crowd boxes get 0. The image's score is the
highest of its boxes' and predictions' scores.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .matching import box_iou

__all__ = ["ISSUE_NAMES", "NONE", "MISSING", "SPURIOUS", "SWAP", "LOCALISATION", "ImageIssues", "score_image"]

#: Codes of the ``issue_kind`` column, in the order of its ``class_names``.
ISSUE_NAMES = ("none", "missing", "spurious", "swap", "localisation")
NONE, MISSING, SPURIOUS, SWAP, LOCALISATION = range(5)


@dataclass(frozen=True)
class ImageIssues:
    """One image's scores: ``box_scores[:, k]`` per ground-truth box for kind ``k`` in
    (spurious, swap, localisation); ``box_kind`` / ``box_score`` its strongest one; ``missing``
    per prediction; ``score`` the image's."""

    box_scores: np.ndarray  # (G, 3) float32
    box_kind: np.ndarray  # (G,) uint8
    box_score: np.ndarray  # (G,) float32
    missing: np.ndarray  # (D,) float32
    score: float


def score_image(pred_boxes, pred_labels, pred_scores, gt_boxes, gt_labels, gt_crowd=None,
                near_iou: float = 0.1) -> ImageIssues:
    """Score one image's labels (see the module docstring).

    Args:
        pred_boxes, gt_boxes: pixel ``x1, y1, x2, y2``; labels and scores ``(D,)`` / ``(G,)``;
            ``gt_crowd`` ``(G,)`` bool or None.
        near_iou: a prediction with at least this IoU is "near" a box.
    """
    pred_labels = np.asarray(pred_labels).reshape(-1)
    scores = np.asarray(pred_scores, np.float64).reshape(-1)
    gt_labels = np.asarray(gt_labels).reshape(-1)
    crowd = np.zeros(len(gt_labels), bool) if gt_crowd is None else np.asarray(gt_crowd, bool).reshape(-1)
    ious = box_iou(pred_boxes, gt_boxes, crowd)  # (D, G); a crowd region: intersection over the prediction
    missing = (scores * (1 - (ious.max(1) if ious.shape[1] else np.zeros(len(scores))))).astype(np.float32)
    box_scores = np.zeros((len(gt_labels), 3), np.float32)
    if len(gt_labels):
        near = ious >= near_iou
        evidence = scores[:, None] * ious
        box_scores[:, 0] = 1 - np.where(near, scores[:, None], 0).max(0, initial=0.0)
        same = pred_labels[:, None] == gt_labels[None, :]
        own = np.where(same, evidence, 0).max(0, initial=0.0)
        other = np.where(~same, evidence, 0).max(0, initial=0.0)
        box_scores[:, 1] = np.maximum(0, other - own)
        own_near = np.where(same & near, evidence, -1.0)
        best = own_near.argmax(0) if len(scores) else np.zeros(len(gt_labels), int)
        has = own_near.max(0, initial=-1.0) >= 0
        columns = np.arange(len(gt_labels))
        box_scores[:, 2] = np.where(has, scores[best] * (1 - ious[best, columns]) if len(scores) else 0, 0)
        box_scores[crowd] = 0
    box_score = box_scores.max(1) if len(gt_labels) else np.zeros(0, np.float32)
    box_kind = np.where(box_score > 0, box_scores.argmax(1) + SPURIOUS, NONE).astype(np.uint8)
    score = float(max(missing.max(initial=0.0), box_score.max(initial=0.0)))
    return ImageIssues(box_scores, box_kind, box_score.astype(np.float32), missing, score)
