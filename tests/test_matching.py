"""lakedet.evaluation.matching against pycocotools' own COCOeval, box by box (evalImgs) and class by class."""

import contextlib
import io

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from lakedet.evaluation.matching import FN, FP, IGNORE, TP, box_iou, class_pr, confusion_matrix, f1_score, match_image

pytestmark = pytest.mark.timeout(120)

CLASSES = 3


def _random_set(seed: int, images: int = 40):
    """Images with several classes, crowd regions, duplicate and tied predictions, empty images."""
    rng = np.random.default_rng(seed)
    data = []
    for i in range(images):
        count = 0 if i % 9 == 8 else int(rng.integers(1, 7))
        xy = rng.uniform(0, 80, (count, 2))
        wh = rng.uniform(4, 40, (count, 2))
        gt_boxes = np.concatenate([xy, xy + wh], 1)
        gt_labels = rng.integers(0, CLASSES, count)
        crowd = rng.random(count) < 0.2
        gt_boxes[crowd, 2:] += 30  # crowd regions are large and overlap the rest
        preds, labels, scores = [], [], []
        for box, label in zip(gt_boxes, gt_labels):
            for _ in range(int(rng.integers(0, 4))):  # 0-3 detections per object: duplicates
                preds.append(box + rng.normal(0, rng.choice([1.0, 4.0, 10.0]), 4))
                labels.append(label if rng.random() < 0.85 else rng.integers(0, CLASSES))
                scores.append(rng.choice([0.9, 0.5]) if rng.random() < 0.3 else rng.random())  # ties
        if len(preds) and rng.random() < 0.5:  # an exact duplicate with the same score
            preds.append(preds[0].copy())
            labels.append(labels[0])
            scores.append(scores[0])
        for _ in range(int(rng.integers(0, 3))):  # background detections
            corner = rng.uniform(0, 90, 2)
            preds.append(np.concatenate([corner, corner + rng.uniform(3, 30, 2)]))
            labels.append(rng.integers(0, CLASSES))
            scores.append(rng.random())
        preds = np.asarray(preds, np.float64).reshape(-1, 4)
        preds[:, 2:] = np.maximum(preds[:, 2:], preds[:, :2] + 0.5)
        data.append(dict(gt_boxes=gt_boxes.astype(np.float32).astype(np.float64), gt_labels=gt_labels,
                         crowd=crowd, pred_boxes=preds.astype(np.float32).astype(np.float64),
                         pred_labels=np.asarray(labels, np.int64), pred_scores=np.asarray(scores, np.float32)))
    return data


def _cocoeval(data, iou_thr, max_dets, use_cats):
    gt_anns, dets = [], []
    gt_index, det_index = {}, {}
    for image, d in enumerate(data):
        for j, (box, label, crowd) in enumerate(zip(d["gt_boxes"], d["gt_labels"], d["crowd"])):
            x1, y1, x2, y2 = (float(v) for v in box)
            gt_anns.append(dict(id=len(gt_anns) + 1, image_id=image, category_id=int(label), iscrowd=int(crowd),
                                bbox=[x1, y1, x2 - x1, y2 - y1], area=(x2 - x1) * (y2 - y1)))
            gt_index[len(gt_anns)] = (image, j)
        for k, (box, label, score) in enumerate(zip(d["pred_boxes"], d["pred_labels"], d["pred_scores"])):
            x1, y1, x2, y2 = (float(v) for v in box)
            dets.append(dict(image_id=image, category_id=int(label), score=float(score),
                             bbox=[x1, y1, x2 - x1, y2 - y1]))
            det_index[len(dets)] = (image, k)  # loadRes numbers results 1, 2, ... in order
    gt = COCO()
    gt.dataset = dict(info={}, licenses=[], images=[dict(id=i) for i in range(len(data))], annotations=gt_anns,
                      categories=[dict(id=c, name=str(c)) for c in range(CLASSES)])
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
        evaluator = COCOeval(gt, gt.loadRes(dets), "bbox")
        evaluator.params.iouThrs = np.array([iou_thr])
        evaluator.params.maxDets = [max_dets]
        evaluator.params.areaRng, evaluator.params.areaRngLbl = [[0, 1e10]], ["all"]
        evaluator.params.useCats = int(use_cats)
        evaluator.evaluate()
        evaluator.accumulate()
    return evaluator, gt_index, det_index


def _ours(data, iou_thr, max_dets, classwise):
    return [match_image(d["pred_boxes"], d["pred_labels"], d["pred_scores"], d["gt_boxes"], d["gt_labels"],
                        d["crowd"], iou_thr=iou_thr, max_dets=max_dets, classwise=classwise) for d in data]


@pytest.mark.parametrize("seed, iou_thr, max_dets, classwise", [
    (0, 0.5, 100, True), (1, 0.75, 100, True), (2, 0.3, 100, True), (3, 0.5, 3, True), (4, 0.5, 100, False),
    (5, 0.9, 2, False)])
def test_matches_equal_pycocotools_evalimgs(seed, iou_thr, max_dets, classwise):
    data = _random_set(seed)
    evaluator, gt_index, det_index = _cocoeval(data, iou_thr, max_dets, use_cats=classwise)
    ours = _ours(data, iou_thr, max_dets, classwise)
    seen, kinds = set(), {TP: 0, FP: 0, IGNORE: 0, FN: 0}
    for e in evaluator.evalImgs:
        if e is None:
            continue
        for det_id, matched, ignored in zip(e["dtIds"], e["dtMatches"][0], e["dtIgnore"][0]):
            image, k = det_index[det_id]
            seen.add((image, k))
            match = ours[image]
            expected_gt = gt_index[int(matched)][1] if matched else -1
            assert match.pred_gt[k] == expected_gt, (image, k)
            expected = IGNORE if ignored else TP if matched else FP
            assert match.pred_match[k] == expected, (image, k)
            kinds[expected] += 1
        for gt_id, matched, ignored in zip(e["gtIds"], e["gtMatches"][0], e["gtIgnore"]):
            image, j = gt_index[gt_id]
            match = ours[image]
            assert match.gt_pred[j] == (det_index[int(matched)][1] if matched else -1), (image, j)
            expected = IGNORE if ignored else TP if matched else FN
            assert match.gt_match[j] == expected, (image, j)
            kinds[expected] += 1 if expected == FN else 0
    # predictions past max_dets are not evaluated by COCO: ignored here
    for image, match in enumerate(ours):
        for k in range(len(match.pred_match)):
            if (image, k) not in seen:
                assert match.pred_match[k] == IGNORE and match.pred_gt[k] == -1
    assert min(kinds.values()) > 0, kinds  # the set exercises every outcome
    if classwise:
        images = [(m, d["pred_labels"], d["pred_scores"], d["gt_labels"]) for m, d in zip(ours, data)]
        curves = class_pr(images, CLASSES)
        for k, curve in enumerate(curves):
            np.testing.assert_allclose(curve.precision, evaluator.eval["precision"][0, :, k, 0, 0], rtol=0, atol=1e-12)
            assert curve.recall == pytest.approx(evaluator.eval["recall"][0, k, 0, 0], abs=1e-12)
            assert curve.ap == pytest.approx(evaluator.eval["precision"][0, :, k, 0, 0].mean(), abs=1e-12)


def test_crowd_regions_take_many_detections_and_count_for_nothing():
    gt = np.array([[0, 0, 100, 100], [10, 10, 20, 20]], float)
    crowd = np.array([True, False])
    preds = np.array([[10, 10, 20, 20], [10, 10, 20, 20], [50, 50, 60, 60], [200, 200, 210, 210]], float)
    match = match_image(preds, [0, 0, 0, 0], [0.9, 0.8, 0.7, 0.6], gt, [0, 0], crowd)
    # the first takes the regular box; its duplicate falls into the crowd region (IoU = 100 / own area = 1)
    assert match.pred_match.tolist() == [TP, IGNORE, IGNORE, FP]
    assert match.pred_gt.tolist() == [1, 0, 0, -1]
    assert match.gt_match.tolist() == [IGNORE, TP] and match.gt_pred.tolist() == [2, 0]  # COCO keeps the last
    assert (match.tp, match.fp, match.fn) == (1, 1, 0)
    assert box_iou(preds[2:3], gt[:1], [True])[0, 0] == 1.0 and box_iou(preds[2:3], gt[:1])[0, 0] == pytest.approx(0.01)


def test_iou_threshold_and_classes():
    gt = np.array([[0, 0, 10, 10]], float)
    pred = np.array([[0, 0, 10, 5], [0, 0, 10, 10]], float)  # IoU 0.5 and 1.0
    low = match_image(pred[:1], [0], [1.0], gt, [0], iou_thr=0.5)
    assert low.pred_match.tolist() == [TP] and low.pred_iou[0] == pytest.approx(0.5)
    high = match_image(pred[:1], [0], [1.0], gt, [0], iou_thr=0.6)
    assert high.pred_match.tolist() == [FP] and high.gt_match.tolist() == [FN]
    assert high.pred_iou[0] == pytest.approx(0.5)  # an unmatched box keeps its best IoU
    other = match_image(pred[1:], [1], [1.0], gt, [0])
    assert other.pred_match.tolist() == [FP] and other.pred_iou[0] == 0  # other class: no IoU counted
    agnostic = match_image(pred[1:], [1], [1.0], gt, [0], classwise=False)
    assert agnostic.pred_match.tolist() == [TP]
    counts = confusion_matrix([(agnostic, [1], [0])], num_classes=2)
    assert counts.tolist() == [[0, 1, 0], [0, 0, 0], [0, 0, 0]]  # a box of class 0 taken for class 1
    missed = match_image(pred[:1], [1], [1.0], gt, [0], classwise=False, iou_thr=0.6)
    counts = confusion_matrix([(missed, [1], [0])], num_classes=2)
    assert counts.tolist() == [[0, 0, 1], [0, 0, 0], [0, 1, 0]]  # a missed box, a background detection


def test_empty_images_and_bad_input():
    empty = match_image(np.zeros((0, 4)), [], [], np.zeros((0, 4)), [])
    assert (empty.tp, empty.fp, empty.fn) == (0, 0, 0) and f1_score(0, 0, 0) == 1.0
    assert f1_score(1, 1, 0) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="2 predicted boxes, 1 labels"):
        match_image(np.zeros((2, 4)), [0], [0.5, 0.4], np.zeros((0, 4)), [])
