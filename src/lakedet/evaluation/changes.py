"""What changed in one image between two evaluations: labels (a diff of two commits' boxes) and matches.

Pure functions over arrays. ``diff_labels`` pairs the boxes of an image at two commits;
``gt_changes`` says which ground-truth boxes went from found to missed (``lost``) or the other way
(``found``), given that pairing; ``fp_changes`` which false positives appeared or vanished.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .matching import FN, FP, IGNORE, TP, box_iou

__all__ = ["DIFF_NAMES", "SAME", "ADDED", "MOVED", "RELABELLED", "MOVED_RELABELLED", "LabelDiff", "diff_labels",
           "CHANGE_NAMES", "UNCHANGED", "LOST", "FOUND", "NEW", "gt_changes", "FP_CHANGE_NAMES", "NOT_FP", "NEW_FP",
           "KEPT_FP", "fp_changes"]

#: Per box of the newer commit (``gt_diff``): its change from the older commit.
DIFF_NAMES = ("same", "added", "moved", "relabelled", "moved_relabelled")
SAME, ADDED, MOVED, RELABELLED, MOVED_RELABELLED = range(5)
#: Per ground-truth box of side B (``gt_change``): its match on side B against side A.
CHANGE_NAMES = ("unchanged", "lost", "found", "new", "ignore")
UNCHANGED, LOST, FOUND, NEW, CHANGE_IGNORE = range(5)
#: Per prediction of side B (``pred_change``).
FP_CHANGE_NAMES = ("not_fp", "new_fp", "kept_fp")
NOT_FP, NEW_FP, KEPT_FP = range(3)


@dataclass(frozen=True)
class LabelDiff:
    """One image's boxes at commit B against commit A.

    ``state[j]`` is box ``j`` of B's change (``DIFF_NAMES``), ``partner[j]`` the index of its box
    in A (-1 for an added box), ``iou[j]`` their IoU; ``removed`` the indices of A's boxes that
    have no partner in B.
    """

    state: np.ndarray  # (G_b,) uint8
    partner: np.ndarray  # (G_b,) int32
    iou: np.ndarray  # (G_b,) float32
    removed: np.ndarray  # (k,) int32

    def count(self, code: int) -> int:
        return int(np.count_nonzero(self.state == code))


def diff_labels(a_boxes, a_labels, b_boxes, b_labels, moved_iou: float = 0.9, pair_iou: float = 0.1) -> LabelDiff:
    """Pair an image's boxes at two commits and classify each of B's boxes.

    Pairs are made greedily by IoU (highest first, any class) among pairs with IoU >= ``pair_iou``:
    a box of B without a partner was ``added``, one of A without a partner ``removed``. A paired
    box with IoU < ``moved_iou`` was ``moved``; with another class, ``relabelled`` (both:
    ``moved_relabelled``); otherwise ``same``.

    Args:
        a_boxes, b_boxes: ``(G, 4)`` pixel ``x1, y1, x2, y2``; ``a_labels``, ``b_labels``: ``(G,)``.
    """
    if not 0 < pair_iou <= moved_iou <= 1:
        raise ValueError(f"pair_iou={pair_iou}, moved_iou={moved_iou}: need 0 < pair_iou <= moved_iou <= 1")
    a_boxes, b_boxes = np.asarray(a_boxes, np.float64).reshape(-1, 4), np.asarray(b_boxes, np.float64).reshape(-1, 4)
    a_labels, b_labels = np.asarray(a_labels).reshape(-1), np.asarray(b_labels).reshape(-1)
    ious = box_iou(b_boxes, a_boxes)  # (G_b, G_a)
    partner = np.full(len(b_boxes), -1, np.int32)
    pair_ious = np.zeros(len(b_boxes), np.float32)
    taken = np.zeros(len(a_boxes), bool)
    candidates = np.argwhere(ious >= pair_iou)
    # highest IoU first; among equal IoUs the same class first, then input order
    order = np.lexsort((candidates[:, 1], candidates[:, 0],
                        b_labels[candidates[:, 0]] != a_labels[candidates[:, 1]],
                        -ious[candidates[:, 0], candidates[:, 1]])) if len(candidates) else []
    for j, i in candidates[order]:
        if partner[j] == -1 and not taken[i]:
            partner[j], pair_ious[j], taken[i] = i, ious[j, i], True
    state = np.full(len(b_boxes), ADDED, np.uint8)
    paired = partner >= 0
    moved = paired & (pair_ious < moved_iou)
    relabelled = paired & (b_labels != np.where(paired, a_labels[np.maximum(partner, 0)] if len(a_labels) else -1, -1))
    state[paired] = SAME
    state[moved & ~relabelled] = MOVED
    state[relabelled & ~moved] = RELABELLED
    state[moved & relabelled] = MOVED_RELABELLED
    return LabelDiff(state, partner, pair_ious, np.flatnonzero(~taken).astype(np.int32))


def gt_changes(a_gt_match, b_gt_match, partner=None) -> np.ndarray:
    """``CHANGE_NAMES`` codes of B's ground-truth boxes: ``lost`` (TP on side A, FN on side B),
    ``found`` (FN, then TP), ``new`` (no partner in A: an added box), ``ignore`` (ignored on
    either side), else ``unchanged``.

    Args:
        a_gt_match, b_gt_match: the two sides' ``ImageMatch.gt_match``.
        partner: B's box -> A's box (``LabelDiff.partner``); None when both sides have the same boxes.
    """
    a, b = np.asarray(a_gt_match).reshape(-1), np.asarray(b_gt_match).reshape(-1)
    partner = np.arange(len(b)) if partner is None else np.asarray(partner).reshape(-1)
    if partner is not None and len(partner) != len(b):
        raise ValueError(f"{len(partner)} partners for {len(b)} ground-truth boxes")
    out = np.full(len(b), UNCHANGED, np.uint8)
    for j, i in enumerate(partner):
        if i < 0:
            out[j] = CHANGE_IGNORE if b[j] == IGNORE else NEW
        elif a[i] == IGNORE or b[j] == IGNORE:
            out[j] = CHANGE_IGNORE
        elif a[i] == TP and b[j] == FN:
            out[j] = LOST
        elif a[i] == FN and b[j] == TP:
            out[j] = FOUND
    return out


def fp_changes(a_boxes, a_labels, a_pred_match, b_boxes, b_labels, b_pred_match,
               iou_thr: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Which false positives appeared and vanished between two sides' predictions of one image.

    A false positive of one side is ``kept`` when the other side has a false positive of the same
    class with IoU >= ``iou_thr`` with it; otherwise it is new (side B) or vanished (side A).

    Returns:
        ``(b_codes, a_vanished)``: ``FP_CHANGE_NAMES`` codes of B's predictions, and the indices of
        A's false positives that vanished.
    """
    a_fp = np.flatnonzero(np.asarray(a_pred_match).reshape(-1) == FP)
    b_fp = np.flatnonzero(np.asarray(b_pred_match).reshape(-1) == FP)
    a_labels, b_labels = np.asarray(a_labels).reshape(-1), np.asarray(b_labels).reshape(-1)
    ious = box_iou(np.asarray(b_boxes).reshape(-1, 4)[b_fp], np.asarray(a_boxes).reshape(-1, 4)[a_fp])
    same = (ious >= iou_thr) & (b_labels[b_fp][:, None] == a_labels[a_fp][None, :])
    codes = np.full(len(b_labels), NOT_FP, np.uint8)
    codes[b_fp] = np.where(same.any(1), KEPT_FP, NEW_FP) if len(b_fp) else codes[b_fp]
    return codes, a_fp[~same.any(0)].astype(np.int32) if len(a_fp) else np.zeros(0, np.int32)
