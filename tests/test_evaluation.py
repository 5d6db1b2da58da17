"""lakedet's metrics against the reference implementations, on ground truth read from Deep Lake rows."""

import json

import numpy as np
import pytest
import torch
from mmdet.evaluation.functional import eval_map
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from lakedet import DeepLakeDetDataset
from lakedet.evaluation.metrics import DeepLakeCocoMetric, DeepLakeVOCMetric, coco_ground_truth
from lakedet.tools.synthetic import SHAPE_CLASSES, render_rows, write_dataset

pytestmark = pytest.mark.timeout(120)

# a real resize (64 -> 96 px) and annotations loaded after it: metrics must still use original pixels
TEST_PIPELINE = [dict(type="LoadImageFromFile"), dict(type="LoadAnnotations", with_bbox=True),
                 dict(type="Resize", scale=(96, 96), keep_ratio=True),
                 dict(type="PackDetInputs", meta_keys=("img_id", "img_path", "ori_shape", "img_shape", "scale_factor"))]


@pytest.fixture(scope="module")
def crowd_rows(tmp_path_factory):
    """12 rows with binary masks; every 4th image empty; some instances are crowd."""
    rows = render_rows(12, size=64, seed=21, min_side=12, max_side=28, max_objects=4, empty_every=4)
    rng = np.random.default_rng(0)
    for r in rows:
        r.iscrowd = rng.random(len(r.boxes)) < 0.2
    path = str(tmp_path_factory.mktemp("crowd") / "ds")
    write_dataset(path, rows, masks="binary", crowd=True)
    return path, rows


def _samples(path):
    """What the metric receives from the model for each row, minus predictions."""
    ds = DeepLakeDetDataset(deeplake_path=path, test_mode=True, pipeline=TEST_PIPELINE)
    return [ds[i]["data_samples"] for i in range(len(ds))]


def _predictions(rows, seed=1):
    """Seeded predictions: jittered true boxes/masks (some dropped) plus false positives."""
    rng = np.random.default_rng(seed)
    preds = []
    for r in rows:
        xyxy = np.concatenate([r.boxes[:, :2], r.boxes[:, :2] + r.boxes[:, 2:]], 1)
        keep = rng.random(len(xyxy)) < 0.8
        boxes = xyxy[keep] + rng.normal(0, 2, (int(keep.sum()), 4))
        masks = [np.roll(r.masks[:, :, i], int(rng.integers(-2, 3)), axis=1) for i in np.flatnonzero(keep)]
        labels = r.labels[keep].astype(np.int64)
        for _ in range(2):  # false positives, also on images without ground truth
            x, y = rng.uniform(0, 40, 2)
            boxes = np.concatenate([boxes, [[x, y, x + 16, y + 16]]])
            fp = np.zeros((64, 64), bool)
            fp[int(y):int(y) + 16, int(x):int(x) + 16] = True
            masks.append(fp)
            labels = np.append(labels, rng.integers(0, 3))
        preds.append(dict(bboxes=boxes.astype(np.float32), labels=labels,
                          scores=rng.uniform(0.05, 1, len(boxes)).astype(np.float32),
                          masks=np.stack(masks) if masks else np.zeros((0, 64, 64), bool)))
    return preds


def _feed(metric, samples, preds):
    batch = []
    for sample, pred in zip(samples, preds):
        data = sample.to_dict()
        data["pred_instances"] = dict(bboxes=torch.from_numpy(pred["bboxes"]), scores=torch.from_numpy(pred["scores"]),
                                      labels=torch.from_numpy(pred["labels"]), masks=torch.from_numpy(pred["masks"]))
        batch.append(data)
    metric.process({}, batch[:5])
    metric.process({}, batch[5:])
    return metric.evaluate(len(batch))


def _reference_coco(rows, preds, iou_type):
    """pycocotools on COCO dicts built straight from the written rows (not through lakedet)."""
    images, anns = [], []
    for img_id, r in enumerate(rows):
        images.append(dict(id=img_id, width=64, height=64))
        for i, (box, label) in enumerate(zip(r.boxes, r.labels)):
            rle = mask_utils.encode(np.asfortranarray(r.masks[:, :, i].astype(np.uint8)))
            anns.append(dict(id=len(anns) + 1, image_id=img_id, category_id=int(label), bbox=[float(v) for v in box],
                             area=float(mask_utils.area(rle)), iscrowd=int(r.iscrowd[i]),
                             segmentation=dict(size=rle["size"], counts=rle["counts"].decode())))
    gt = COCO()
    gt.dataset = dict(info={}, images=images, annotations=anns,
                      categories=[dict(id=i, name=n) for i, n in enumerate(SHAPE_CLASSES)])
    gt.createIndex()
    dets = []
    for img_id, p in enumerate(preds):
        for box, label, score, mask in zip(p["bboxes"], p["labels"], p["scores"], p["masks"]):
            det = dict(image_id=img_id, category_id=int(label), score=float(score))
            if iou_type == "bbox":
                det["bbox"] = [float(box[0]), float(box[1]), float(box[2] - box[0]), float(box[3] - box[1])]
            else:
                rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
                det["segmentation"] = dict(size=rle["size"], counts=rle["counts"].decode())
            dets.append(det)
    ev = COCOeval(gt, gt.loadRes(dets), iou_type)
    ev.params.maxDets = [100, 300, 1000]
    ev.evaluate(), ev.accumulate(), ev.summarize()
    return ev.stats


def test_coco_bbox_and_segm_equal_pycocotools_with_crowd_and_empty_images(crowd_rows):
    path, rows = crowd_rows
    assert any(r.iscrowd.any() for r in rows) and any(len(r.boxes) == 0 for r in rows)
    preds = _predictions(rows)
    metric = DeepLakeCocoMetric(metric=["bbox", "segm"], classwise=True)
    metric.dataset_meta = dict(classes=SHAPE_CLASSES)
    result = _feed(metric, _samples(path), preds)
    names = ["mAP", "mAP_50", "mAP_75", "mAP_s", "mAP_m", "mAP_l"]
    for iou_type in ("bbox", "segm"):
        stats = _reference_coco(rows, preds, iou_type)
        assert 0.05 < stats[0] < 0.95, stats  # a non-trivial case
        for i, name in enumerate(names):  # MMDetection's keys and rounding; full precision in last_tables
            assert result[f"coco/{iou_type}_{name}"] == round(stats[i], 3), (iou_type, name)
            assert metric.last_tables[iou_type].stats[i] == pytest.approx(stats[i], abs=1e-9), (iou_type, name)
        assert {row["name"] for row in metric.last_tables[iou_type].per_class} == set(SHAPE_CLASSES)
    assert {f"coco/{name}_precision" for name in SHAPE_CLASSES} <= set(result)  # classwise, as MMDetection names it


def _reference_voc_inputs(rows, preds):
    annotations, results = [], []
    for r, p in zip(rows, preds):
        xyxy = np.concatenate([r.boxes[:, :2], r.boxes[:, :2] + r.boxes[:, 2:]], 1).astype(np.float32)
        crowd = r.iscrowd.astype(bool)
        annotations.append(dict(bboxes=xyxy[~crowd], labels=r.labels[~crowd].astype(np.int64),
                                bboxes_ignore=xyxy[crowd], labels_ignore=r.labels[crowd].astype(np.int64)))
        dets = [np.concatenate([p["bboxes"][p["labels"] == k], p["scores"][p["labels"] == k, None]], 1)
                for k in range(len(SHAPE_CLASSES))]
        results.append(dets)
    return results, annotations


@pytest.mark.parametrize("eval_mode", ["11points", "area"])
def test_pascal_voc_equals_mmdetection_eval_map(crowd_rows, eval_mode):
    path, rows = crowd_rows
    preds = _predictions(rows, seed=2)
    metric = DeepLakeVOCMetric(metric="mAP", eval_mode=eval_mode, iou_thrs=[0.5, 0.75])
    metric.dataset_meta = dict(classes=SHAPE_CLASSES)
    result = _feed(metric, _samples(path), preds)
    results, annotations = _reference_voc_inputs(rows, preds)
    expected = {}
    for thr in (0.5, 0.75):
        mean_ap, per_class = eval_map(results, annotations, iou_thr=thr, eval_mode=eval_mode,
                                      use_legacy_coordinate=True, logger="silent")
        expected[thr] = (mean_ap, per_class)
    assert result["pascal_voc/mAP"] == pytest.approx((expected[0.5][0] + expected[0.75][0]) / 2, abs=1e-6)
    assert result["pascal_voc/AP50"] == pytest.approx(round(expected[0.5][0], 3), abs=1e-9)
    for name, row in zip(SHAPE_CLASSES, expected[0.5][1]):
        assert result[f"pascal_voc/{name}_AP50"] == pytest.approx(float(row["ap"]), abs=1e-6)


def test_detections_on_images_without_ground_truth_are_false_positives(tmp_path):
    """One true box found perfectly on image 0; one extra confident box on the empty image 1.

    With the false positive ranked first, precision at recall 1 is 1/2: AP@0.5 = 0.5 for that
    class (101-point interpolation: every recall level has precision 0.5)."""
    rows = render_rows(2, size=64, seed=3, max_objects=1, min_side=20, max_side=20, empty_every=2)
    write_dataset(str(tmp_path / "ds"), rows)
    samples = [s.to_dict() for s in _samples(str(tmp_path / "ds"))]
    box = np.concatenate([rows[0].boxes[:, :2], rows[0].boxes[:, :2] + rows[0].boxes[:, 2:]], 1)
    label = torch.tensor(rows[0].labels.astype(np.int64))
    samples[0]["pred_instances"] = dict(bboxes=torch.tensor(box), scores=torch.tensor([0.5]), labels=label)
    samples[1]["pred_instances"] = dict(bboxes=torch.tensor([[5.0, 5, 30, 30]]), scores=torch.tensor([0.9]),
                                        labels=label)
    metric = DeepLakeCocoMetric(metric="bbox")
    metric.dataset_meta = dict(classes=SHAPE_CLASSES)
    metric.process({}, samples)
    assert metric.evaluate(2)["coco/bbox_mAP_50"] == pytest.approx(0.5, abs=1e-6)


def test_no_detections_give_zero_instead_of_nothing(crowd_rows):
    path, rows = crowd_rows
    samples = [s.to_dict() for s in _samples(path)]
    for s in samples:
        s["pred_instances"] = dict(bboxes=torch.zeros((0, 4)), scores=torch.zeros(0), labels=torch.zeros(0, dtype=torch.long))
    metric = DeepLakeCocoMetric(metric="bbox")
    metric.dataset_meta = dict(classes=SHAPE_CLASSES)
    metric.process({}, samples)
    assert metric.evaluate(len(samples))["coco/bbox_mAP"] == 0.0


def test_ground_truth_dict_keeps_empty_images_drops_duplicates_and_marks_crowd(crowd_rows):
    path, rows = crowd_rows
    gts = [dict(img_id=s.img_id, width=64, height=64, anns=s.instances) for s in _samples(path)]
    coco = coco_ground_truth(gts + gts[:2], SHAPE_CLASSES)
    assert [i["id"] for i in coco["images"]] == list(range(12))
    assert len(coco["annotations"]) == sum(len(r.boxes) for r in rows)
    assert sum(a["iscrowd"] for a in coco["annotations"]) == sum(int(r.iscrowd.sum()) for r in rows)
    assert coco["categories"][2] == dict(id=2, name="triangle")


def test_annotation_file_is_refused():
    with pytest.raises(ValueError, match="CocoMetric for an annotation file"):
        DeepLakeCocoMetric(ann_file="x.json")


def test_pascal_voc_recall_when_asked(crowd_rows):
    path, rows = crowd_rows
    metric = DeepLakeVOCMetric(metric="recall", proposal_nums=(10, 100), iou_thrs=[0.5])
    metric.dataset_meta = dict(classes=SHAPE_CLASSES)
    result = _feed(metric, _samples(path), _predictions(rows, seed=4))
    assert set(result) == {"pascal_voc/recall@10@0.5", "pascal_voc/recall@100@0.5"}
    assert 0.5 < result["pascal_voc/recall@100@0.5"] <= 1.0  # most true boxes are among the predictions


def test_concatenated_datasets_keep_their_images_apart(crowd_rows, tmp_path):
    """Row numbers repeat across a ConcatDataset: both copies must be scored as separate images."""
    path, rows = crowd_rows
    samples = _samples(path)
    preds = _predictions(rows)
    metric = DeepLakeCocoMetric(metric="bbox")
    metric.dataset_meta = dict(classes=SHAPE_CLASSES)
    single = _feed(metric, samples, preds)["coco/bbox_mAP"]
    twin = [s.clone() for s in samples]
    for s in twin:
        s.set_metainfo(dict(img_path=s.img_path + "#copy"))
    metric = DeepLakeCocoMetric(metric="bbox")
    metric.dataset_meta = dict(classes=SHAPE_CLASSES)
    batch = []
    for sample, pred in zip(samples + twin, preds + preds):
        data = sample.to_dict()
        data["pred_instances"] = dict(bboxes=torch.from_numpy(pred["bboxes"]), scores=torch.from_numpy(pred["scores"]),
                                      labels=torch.from_numpy(pred["labels"]))
        batch.append(data)
    metric.process({}, batch)
    assert len({gt["img_key"] for gt, _ in metric.results}) == 24  # the copies are images of their own
    assert metric.evaluate(len(batch))["coco/bbox_mAP"] == pytest.approx(single, abs=1e-9)


def test_segm_without_ground_truth_masks_is_a_clear_error(tmp_path):
    rows = render_rows(2, size=64, seed=3)
    write_dataset(str(tmp_path / "ds"), rows)
    samples = [s.to_dict() for s in _samples(str(tmp_path / "ds"))]
    for s in samples:
        s["pred_instances"] = dict(bboxes=torch.zeros((0, 4)), scores=torch.zeros(0),
                                   labels=torch.zeros(0, dtype=torch.long), masks=torch.zeros((0, 64, 64), dtype=torch.bool))
    metric = DeepLakeCocoMetric(metric=["bbox", "segm"])
    metric.dataset_meta = dict(classes=SHAPE_CLASSES)
    metric.process({}, samples)
    with pytest.raises(ValueError, match="gt_masks"):
        metric.evaluate(2)


def test_metric_on_ingested_coco_equals_pycocotools_on_the_original_file(tmp_path):
    """Fixed predictions, evaluated by lakedet from the ingested rows and by pycocotools from the
    original JSON (predictions mapped back to COCO image and category ids): bbox and segm agree."""
    import deeplake

    from lakedet.tools.ingest import ingest_coco
    from real_files import write_coco

    write_coco(tmp_path)
    ingest_coco(tmp_path / "instances.json", tmp_path / "images", str(tmp_path / "ds"))
    stored = deeplake.open_read_only(str(tmp_path / "ds"))
    category_ids = [int(v) for v in stored["labels"].metadata["category_ids"]]
    dataset = DeepLakeDetDataset(deeplake_path=str(tmp_path / "ds"), test_mode=True, pipeline=TEST_PIPELINE[:1] + [
        TEST_PIPELINE[2], TEST_PIPELINE[3]])
    rng = np.random.default_rng(7)
    samples, bbox_dets, segm_dets, score = [], [], [], 0.999
    for i in range(len(dataset)):
        sample = dataset[i]["data_samples"].to_dict()
        height, width = sample["ori_shape"]
        boxes, labels, scores, masks = [], [], [], []
        for inst in sample["instances"] + [dict(bbox=[2.0, 2.0, 20.0, 15.0], bbox_label=1)]:  # + a false positive
            x1, y1, x2, y2 = (v + rng.uniform(-1.5, 1.5) for v in inst["bbox"])
            box = [max(x1, 0), max(y1, 0), min(max(x2, x1 + 1), width), min(max(y2, y1 + 1), height)]
            mask = np.zeros((height, width), bool)
            mask[int(box[1]):int(np.ceil(box[3])), int(box[0]):int(np.ceil(box[2]))] = True
            boxes.append(box), labels.append(inst["bbox_label"]), scores.append(score), masks.append(mask)
            score -= 0.013  # every score distinct: no tie broken differently by different image orders
        sample["pred_instances"] = dict(bboxes=torch.tensor(boxes, dtype=torch.float32), scores=torch.tensor(scores),
                                        labels=torch.tensor(labels), masks=torch.from_numpy(np.stack(masks)))
        samples.append(sample)
        image_id = int(stored["image_id"][sample["img_id"]])
        for box, label, s, mask in zip(sample["pred_instances"]["bboxes"].tolist(), labels,
                                       sample["pred_instances"]["scores"].tolist(), masks):
            x1, y1, x2, y2 = box
            bbox_dets.append(dict(image_id=image_id, category_id=category_ids[label], score=s,
                                  bbox=[x1, y1, x2 - x1, y2 - y1]))
            rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
            segm_dets.append(dict(image_id=image_id, category_id=category_ids[label], score=s,
                                  segmentation=dict(size=rle["size"], counts=rle["counts"].decode())))
    metric = DeepLakeCocoMetric(metric=["bbox", "segm"])
    metric.dataset_meta = dataset.metainfo
    metric.process({}, samples)
    ours = metric.evaluate(len(samples))
    # format_only writes the same predictions in the file's image and category ids
    writer = DeepLakeCocoMetric(metric=["bbox", "segm"], format_only=True, outfile_prefix=str(tmp_path / "results"))
    writer.dataset_meta = dataset.metainfo
    writer.process({}, samples)
    assert writer.evaluate(len(samples)) == {}
    written = {t: json.loads((tmp_path / f"results.{t}.json").read_text()) for t in ("bbox", "segm")}
    key = lambda d: (d["image_id"], d["category_id"], round(d["score"], 6))  # noqa: E731
    assert sorted(map(key, written["bbox"])) == sorted(map(key, bbox_dets))
    truth = COCO(str(tmp_path / "instances.json"))
    for iou_type, dets in (("bbox", bbox_dets), ("segm", segm_dets), ("bbox", written["bbox"]),
                           ("segm", written["segm"])):
        evaluator = COCOeval(truth, truth.loadRes(dets), iou_type)
        evaluator.params.maxDets = [100, 300, 1000]  # as MMDetection's CocoMetric sets them
        evaluator.evaluate(), evaluator.accumulate(), evaluator.summarize()
        for k, name in enumerate(("mAP", "mAP_50", "mAP_75", "mAP_s", "mAP_m", "mAP_l")):
            assert metric.last_tables[iou_type].stats[k] == pytest.approx(evaluator.stats[k], abs=1e-9), (iou_type, name)
            assert ours[f"coco/{iou_type}_{name}"] == round(evaluator.stats[k], 3), (iou_type, name)
        assert 0 < evaluator.stats[0] < 1


def test_the_registered_coco_metric_is_mmdetections_off_deeplake_and_reads_rows_on_it(crowd_rows, tmp_path):
    """Zoo configs keep CocoMetric(ann_file=...): lakedet's stand-in registered under that name is
    MMDetection's CocoMetric on a file dataset, and takes the rows on a Deep Lake one."""
    from mmdet.evaluation.metrics.coco_metric import CocoMetric as MMDetectionCocoMetric
    from mmdet.registry import METRICS
    from mmengine.registry import init_default_scope

    init_default_scope("mmdet")  # as in a zoo config (default_scope = 'mmdet')

    from lakedet.evaluation.metrics import CocoMetricOrRows

    path, rows = crowd_rows
    preds = _predictions(rows, seed=4)
    samples = _samples(path)
    # a COCO file of the same rows, as a file dataset's metric sees it
    images = [dict(id=i, width=64, height=64, file_name=f"{i}.jpg") for i in range(len(rows))]
    anns = [dict(id=len(images) * 100 + 10 * i + k, image_id=i, category_id=int(label), bbox=[float(v) for v in box],
                 area=float(box[2] * box[3]), iscrowd=0)
            for i, r in enumerate(rows) for k, (box, label) in enumerate(zip(r.boxes, r.labels))]
    ann_file = tmp_path / "gt.json"
    ann_file.write_text(json.dumps(dict(info={}, images=images, annotations=anns,
                                        categories=[dict(id=i, name=n) for i, n in enumerate(SHAPE_CLASSES)])))
    file_meta = dict(classes=SHAPE_CLASSES)
    theirs = MMDetectionCocoMetric(ann_file=str(ann_file), metric="bbox", classwise=True)
    ours = METRICS.build(dict(type="CocoMetric", ann_file=str(ann_file), metric="bbox", classwise=True))
    assert type(ours) is CocoMetricOrRows
    results = []
    for metric in (theirs, ours):
        metric.dataset_meta = file_meta
        results.append(_feed(metric, samples, preds))
    assert results[0] == results[1] and "coco/bbox_mAP" in results[0] and "coco/circle_precision" in results[0]
    # over the Deep Lake rows, the same config's metric reads the rows; the file is not needed
    rows_metric = METRICS.build(dict(type="CocoMetric", ann_file=str(tmp_path / "missing.json"), metric="bbox"))
    rows_metric.dataset_meta = DeepLakeDetDataset(deeplake_path=path, test_mode=True, pipeline=TEST_PIPELINE).metainfo
    reference = DeepLakeCocoMetric(metric="bbox")
    reference.dataset_meta = dict(classes=SHAPE_CLASSES)
    assert _feed(rows_metric, samples, preds) == _feed(reference, samples, preds)
    # ... and a missing file on a file dataset is MMDetection's error, once the dataset is known
    missing = METRICS.build(dict(type="CocoMetric", ann_file=str(tmp_path / "missing.json")))
    with pytest.raises(FileNotFoundError):
        missing.dataset_meta = file_meta


def test_metric_items_and_empty_predictions_follow_coco_metric(crowd_rows):
    path, _ = crowd_rows
    samples = [s.to_dict() for s in _samples(path)]
    for s in samples:
        s["pred_instances"] = dict(bboxes=torch.zeros((0, 4)), scores=torch.zeros(0), labels=torch.zeros(0, dtype=torch.long))
    metric = DeepLakeCocoMetric(metric="bbox", metric_items=["mAP", "AR@100"])
    metric.dataset_meta = dict(classes=SHAPE_CLASSES)
    metric.process({}, samples)
    assert metric.evaluate(len(samples)) == {"coco/bbox_mAP": 0.0, "coco/bbox_AR@100": 0.0}
