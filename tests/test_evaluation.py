import numpy as np
import pytest
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from lakedet.evaluation import DeepLakeCocoMetric, coco_ground_truth

pytestmark = pytest.mark.timeout(60)

CLASSES = ("circle", "square", "triangle")


def _random_case(seed=0, n_images=12):
    """Ground truth with empty images, and noisy predictions (jittered GT + false positives)."""
    rng = np.random.default_rng(seed)
    gts, preds = [], []
    for img_id in range(n_images):
        n = 0 if img_id % 5 == 4 else int(rng.integers(1, 5))
        xy = rng.uniform(0, 80, (n, 2))
        wh = rng.uniform(8, 40, (n, 2))
        boxes = np.concatenate([xy, xy + wh], 1)
        labels = rng.integers(0, 3, n)
        gts.append(dict(img_id=img_id, width=128, height=96, anns=[
            dict(bbox=b.tolist(), bbox_label=int(l), ignore_flag=0) for b, l in zip(boxes, labels)]))
        keep = rng.random(n) < 0.8
        jitter = boxes[keep] + rng.normal(0, 3, (int(keep.sum()), 4))
        fp = rng.uniform(0, 60, (2, 2))
        fp = np.concatenate([fp, fp + 20], 1)
        pboxes = np.concatenate([jitter, fp])
        plabels = np.concatenate([labels[keep], rng.integers(0, 3, 2)])
        scores = rng.uniform(0.05, 1, len(pboxes))
        preds.append((pboxes, plabels, scores))
    return gts, preds


def _reference_stats(gts, preds):
    """pycocotools directly, on COCO dicts written independently of lakedet."""
    images = [dict(id=g["img_id"], width=g["width"], height=g["height"]) for g in gts]
    anns = []
    for g in gts:
        for a in g["anns"]:
            x1, y1, x2, y2 = a["bbox"]
            anns.append(dict(id=len(anns) + 1, image_id=g["img_id"], category_id=a["bbox_label"],
                             bbox=[x1, y1, x2 - x1, y2 - y1], area=(x2 - x1) * (y2 - y1), iscrowd=0))
    coco = COCO()
    coco.dataset = dict(info={}, images=images, annotations=anns,
                        categories=[dict(id=i, name=n) for i, n in enumerate(CLASSES)])
    coco.createIndex()
    dets = [dict(image_id=g["img_id"], category_id=int(l), score=float(s),
                 bbox=[float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])])
            for g, (boxes, labels, scores) in zip(gts, preds) for b, l, s in zip(boxes, labels, scores)]
    ev = COCOeval(coco, coco.loadRes(dets), "bbox")
    ev.evaluate(), ev.accumulate(), ev.summarize()
    return ev.stats


def test_metric_equals_pycocotools_on_random_predictions():
    gts, preds = _random_case()
    metric = DeepLakeCocoMetric(metric="bbox")
    metric.dataset_meta = dict(classes=CLASSES)
    samples = [dict(img_id=g["img_id"], ori_shape=(g["height"], g["width"]), instances=g["anns"],
                    pred_instances=dict(bboxes=torch.tensor(b, dtype=torch.float32),
                                        scores=torch.tensor(s, dtype=torch.float32),
                                        labels=torch.tensor(l)))
               for g, (b, l, s) in zip(gts, preds)]
    metric.process({}, samples[:6])
    metric.process({}, samples[6:])
    result = metric.evaluate(len(samples))
    stats = _reference_stats(gts, preds)
    names = ["bbox_mAP", "bbox_mAP_50", "bbox_mAP_75", "bbox_mAP_s", "bbox_mAP_m", "bbox_mAP_l"]
    assert 0.1 < stats[0] < 0.95  # a non-trivial case
    for i, name in enumerate(names):
        assert result[f"coco/{name}"] == pytest.approx(round(stats[i], 3), abs=1e-9), name


def test_ground_truth_dict_keeps_empty_images_and_drops_duplicates():
    gts, _ = _random_case(n_images=5)
    coco = coco_ground_truth(gts + gts[:2], CLASSES)
    assert [i["id"] for i in coco["images"]] == [0, 1, 2, 3, 4]
    assert len(coco["annotations"]) == sum(len(g["anns"]) for g in gts)
    assert coco["categories"][2] == dict(id=2, name="triangle")


def test_annotation_file_is_refused():
    with pytest.raises(ValueError, match="CocoMetric for an annotation file"):
        DeepLakeCocoMetric(ann_file="x.json")
