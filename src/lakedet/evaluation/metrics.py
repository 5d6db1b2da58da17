"""Evaluation with ground truth taken from the Deep Lake rows, in memory.

``DeepLakeCocoMetric`` is MMDetection's ``CocoMetric`` whose ground truth comes from the
``instances`` every test-mode ``DeepLakeDetDataset`` sample carries (lakedet evaluates Deep Lake
splits with ``test_mode=True``), turned into a pycocotools ``COCO`` index
in memory: no annotation or result file is read or written. It reports pycocotools' numbers at
full precision (MMDetection rounds to 3 decimals), reports 0 instead of nothing when the model
predicted no box, and keeps per-class tables (``last_tables``) for ``lakedet eval``.
``DeepLakeVOCMetric`` is MMDetection's ``VOCMetric`` plus per-class AP.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from mmdet.datasets.api_wrappers import COCO, COCOeval
from mmdet.evaluation.functional import eval_map
from mmdet.evaluation.metrics import CocoMetric, VOCMetric
from mmdet.registry import METRICS

from ..data.keys import ROWS_KEY
from ..schema.boxes import BoxMode, convert_boxes
from ..schema.masks import segmentation_area

__all__ = ["DeepLakeCocoMetric", "DeepLakeVOCMetric", "CocoMetricOrRows", "VOCMetricOrRows", "CocoSummary",
           "coco_ground_truth", "coco_from_dict", "coco_detections", "coco_evaluate", "STAT_NAMES"]

STAT_NAMES = ("mAP", "mAP_50", "mAP_75", "mAP_s", "mAP_m", "mAP_l")


def coco_ground_truth(gt_dicts: Sequence[dict], classes: Sequence[str]) -> dict:
    """COCO-format ground truth from per-image dicts (``img_id``, ``width``, ``height``, ``anns``).

    Each ann has ``bbox`` (pixel x1y1x2y2), ``bbox_label``, ``ignore_flag`` (-> ``iscrowd``) and
    optionally ``mask`` (polygons or RLE) and ``area``. ``area`` (what COCO's area ranges use) is the
    ann's own ``area`` when it has one (data ingested from COCO: the file's value, as ``CocoMetric``
    reads it from the annotation file), else the mask's area when there is a mask (the COCO
    convention), else the box's. Category ids are the label indices, as in MMDetection's
    ``CocoMetric``. Images repeated by distributed padding are kept once.
    """
    images, annotations, seen = [], [], set()
    for gt in gt_dicts:
        if gt["img_id"] in seen:
            continue
        seen.add(gt["img_id"])
        images.append(dict(id=gt["img_id"], width=gt["width"], height=gt["height"], file_name=""))
        for ann in gt["anns"]:
            x1, y1, x2, y2 = (float(v) for v in ann["bbox"])
            ltwh = convert_boxes([ann["bbox"]], BoxMode.LTRB, BoxMode.LTWH)[0].tolist()
            annotation = dict(id=len(annotations) + 1, image_id=gt["img_id"], bbox=ltwh, area=ltwh[2] * ltwh[3],
                              iscrowd=int(ann.get("ignore_flag", 0)), category_id=int(ann["bbox_label"]))
            mask = ann.get("mask")
            if "mask" in ann and not mask:  # a dropped degenerate polygon: its box is the region
                mask = [[x1, y1, x2, y1, x2, y2, x1, y2]]
            if mask:
                if isinstance(mask, dict) and isinstance(mask.get("counts"), bytes):
                    mask = dict(mask, counts=mask["counts"].decode())
                annotation["segmentation"] = mask
                annotation["area"] = segmentation_area(mask, gt["height"], gt["width"])
            if ann.get("area") is not None:
                annotation["area"] = float(ann["area"])
            annotations.append(annotation)
    return dict(info=dict(description="ground truth from Deep Lake rows (lakedet)"), licenses=[],
                images=images, annotations=annotations,
                categories=[dict(id=i, name=name) for i, name in enumerate(classes)])


def coco_from_dict(dataset: dict) -> COCO:
    """A pycocotools ``COCO`` index built from an in-memory dict (no file)."""
    coco = COCO()
    coco.dataset = dataset
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def coco_detections(preds: Sequence[dict], iou_type: str) -> list[dict]:
    """COCO result dicts from CocoMetric's per-image predictions (``bboxes`` x1y1x2y2, ``masks`` RLE)."""
    dets = []
    for pred in preds:
        labels, scores = pred["labels"], pred["scores"]
        if iou_type == "segm":
            if "masks" not in pred:
                raise ValueError("segm evaluation needs mask predictions; the model gives boxes only")
            mask_scores = pred.get("mask_scores", scores)
            for label, score, rle in zip(labels, mask_scores, pred["masks"]):
                counts = rle["counts"]
                dets.append(dict(image_id=pred["img_id"], category_id=int(label), score=float(score),
                                 segmentation=dict(rle, counts=counts.decode() if isinstance(counts, bytes) else counts)))
        else:
            for label, score, box in zip(labels, scores, convert_boxes(pred["bboxes"], BoxMode.LTRB, BoxMode.LTWH)):
                dets.append(dict(image_id=pred["img_id"], category_id=int(label), score=float(score),
                                 bbox=box.tolist()))
    return dets


@dataclass
class CocoSummary:
    """pycocotools' 12 summary numbers and a per-class table for one IoU type."""

    iou_type: str
    stats: np.ndarray
    per_class: list[dict] = field(default_factory=list)  # name, AP, AP50, AP75, AP_s, AP_m, AP_l


def _load_results(coco_gt: COCO, dets: list[dict]) -> COCO:
    if dets:
        with contextlib.redirect_stdout(io.StringIO()):
            return coco_gt.loadRes(dets)
    empty = COCO()  # pycocotools cannot load an empty result list: build the empty index directly
    empty.dataset = dict(images=list(coco_gt.dataset["images"]), categories=list(coco_gt.dataset["categories"]),
                         annotations=[])
    with contextlib.redirect_stdout(io.StringIO()):
        empty.createIndex()
    return empty


def coco_evaluate(coco_gt: COCO, dets: list[dict], iou_type: str, iou_thrs: Sequence[float] | None = None,
                  max_dets: Sequence[int] = (100, 300, 1000)) -> CocoSummary:
    """Run pycocotools' COCOeval as MMDetection's CocoMetric configures it; return its numbers."""
    evaluator = COCOeval(coco_gt, _load_results(coco_gt, dets), iou_type)
    evaluator.params.catIds = sorted(coco_gt.getCatIds())
    evaluator.params.imgIds = sorted(coco_gt.getImgIds())
    evaluator.params.maxDets = list(max_dets)
    if iou_thrs is not None:
        evaluator.params.iouThrs = np.asarray(iou_thrs, dtype=np.float64)
    with contextlib.redirect_stdout(io.StringIO()):
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return CocoSummary(iou_type, np.asarray(evaluator.stats), _per_class(evaluator, coco_gt))


def _per_class(evaluator: COCOeval, coco_gt: COCO) -> list[dict]:
    precision = evaluator.eval["precision"]  # [iou, recall, class, area, max_dets]
    thresholds = evaluator.params.iouThrs

    def mean(values):
        values = values[values > -1]
        return float(np.mean(values)) if values.size else float("nan")

    def at(threshold, k):
        hits = np.flatnonzero(np.isclose(thresholds, threshold))
        return mean(precision[hits[0], :, k, 0, -1]) if hits.size else float("nan")

    rows = []
    for k, cat_id in enumerate(evaluator.params.catIds):
        rows.append(dict(name=coco_gt.loadCats(int(cat_id))[0]["name"], AP=mean(precision[:, :, k, 0, -1]),
                         AP50=at(0.5, k), AP75=at(0.75, k), AP_s=mean(precision[:, :, k, 1, -1]),
                         AP_m=mean(precision[:, :, k, 2, -1]), AP_l=mean(precision[:, :, k, 3, -1])))
    return rows


class _OverRows:
    """Whether a metric takes its ground truth from Deep Lake rows: always (``rows_only``, the
    ``DeepLake*`` metrics), or, for the stand-ins registered under MMDetection's own names, when the
    evaluated dataset is a Deep Lake one (its ``metainfo`` has ``ROWS_KEY``); otherwise the metric
    is MMDetection's, unchanged."""

    rows_only = True
    _rows = True

    @property
    def dataset_meta(self):
        return self._dataset_meta

    @dataset_meta.setter
    def dataset_meta(self, meta) -> None:
        self._dataset_meta = meta
        if not self.rows_only:
            self._rows = bool(meta and meta.get(ROWS_KEY))
            self._dataset_changed(meta)

    def _dataset_changed(self, meta) -> None:
        """Hook for the stand-ins: the evaluated dataset is known."""
#: ``CocoMetric``'s default ``metric_items`` per metric (what it reports when none are given).
_DEFAULT_ITEMS = {"bbox": STAT_NAMES, "segm": STAT_NAMES,
                  "proposal": ("AR@100", "AR@300", "AR@1000", "AR_s@1000", "AR_m@1000", "AR_l@1000")}


@METRICS.register_module()
class DeepLakeCocoMetric(_OverRows, CocoMetric):
    """MMDetection's ``CocoMetric`` over the rows of a Deep Lake dataset.

    The same arguments, keys and numbers as ``CocoMetric``: ``coco/bbox_mAP``, ``coco/bbox_mAP_50``
    ... rounded to 3 decimals, ``metric_items``, ``proposal_nums``, ``iou_thrs``, ``classwise``
    (``coco/{class}_precision`` and MMDetection's per-class log table), ``format_only`` +
    ``outfile_prefix``; ``compute_metrics`` is MMDetection's, run on a ground truth index built in
    memory from the evaluated rows (the ``instances`` each test-mode sample carries) instead of
    ``ann_file``, which is not read. lakedet's additions:

    * the area of an instance (COCO's size ranges) is its stored ``area`` (data ingested from
      COCO), else its mask's area, as in COCO's own files (``CocoMetric`` without a file uses box
      areas); crowd regions come from the rows' flags;
    * a metric the model predicted nothing for is reported as 0 instead of left out;
    * image ids are given after every rank's results are gathered (rows of concatenated datasets,
      distributed evaluation);
    * ``format_only`` on data ingested from COCO writes the file's image and category ids;
    * ``last_tables``: per-class AP, AP50, AP75, AP_s/m/l at full precision (``lakedet eval``).
    """

    def __init__(self, ann_file: str | None = None, *args, **kwargs):
        if self.rows_only and ann_file:
            raise ValueError("DeepLakeCocoMetric takes its ground truth from the dataset rows; "
                             "use CocoMetric for an annotation file")
        self._ann_file, self._missing_file = ann_file, None
        try:
            super().__init__(ann_file, *args, **kwargs)
        except (FileNotFoundError, OSError) as exc:  # maybe a Deep Lake split: known once dataset_meta is set
            self._missing_file = exc
            super().__init__(None, *args, **kwargs)
        self._evaluated: tuple | None = None  # (ground truth index, predictions) of the last run
        self._tables: dict[str, CocoSummary] | None = None

    def _dataset_changed(self, meta) -> None:
        if self._rows:
            if self._ann_file:
                from mmengine.logging import MMLogger

                MMLogger.get_current_instance().info(
                    "CocoMetric over a Deep Lake dataset: the ground truth comes from the evaluated rows "
                    f"(ann_file={self._ann_file!r} is not read)")
            self._coco_api = None
        elif self._missing_file is not None:
            raise self._missing_file

    def process(self, data_batch: dict, data_samples) -> None:
        """CocoMetric's ``process``; over rows each result also keeps its ``img_path``
        (``<dataset>[row]``) and the original image id (``image_id``, data ingested from COCO)."""
        first = len(self.results)
        super().process(data_batch, data_samples)
        if not self._rows:
            return
        for (gt, pred), sample in zip(self.results[first:], data_samples):
            gt["img_key"] = pred["img_key"] = str(sample.get("img_path", sample["img_id"]))
            pred["coco_image_id"] = sample.get("image_id")

    def compute_metrics(self, results: list) -> dict[str, float]:
        if not self._rows:
            return super().compute_metrics(results)
        # Image ids are given here, after every rank's results are gathered: ``img_id`` is a row
        # number, so two concatenated datasets share ids, and ids numbered per rank would collide.
        ids: dict[str, int] = {}
        for gt, pred in results:
            gt["img_id"] = pred["img_id"] = ids.setdefault(gt["img_key"], len(ids))
        gts = [gt for gt, _ in results]
        preds = [pred for _, pred in results]
        if "segm" in self.metrics and not any("mask" in ann for gt in gts for ann in gt["anns"]):
            raise ValueError("segm evaluation needs ground-truth masks, and the evaluated rows have none: "
                             "map deeplake_tensors['gt_masks'] to a BinaryMask or Polygon column, or "
                             "evaluate metric='bbox'")
        coco_gt = coco_from_dict(coco_ground_truth(gts, self.dataset_meta["classes"]))
        category_ids = self.dataset_meta.get("category_ids")
        if self.format_only and category_ids and None not in category_ids and \
                all(p.get("coco_image_id") is not None for p in preds):
            return self._write_coco_results(preds, category_ids)
        self._coco_api, self.cat_ids, self.img_ids = coco_gt, None, None
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its summaries
                metrics = super().compute_metrics(results)
        finally:
            self._coco_api = self.cat_ids = self.img_ids = None
        self._evaluated, self._tables = (coco_gt, preds), None
        if not self.format_only:
            for metric in self.metrics:
                for item in self.metric_items or _DEFAULT_ITEMS.get(metric, ()):
                    key = item if metric == "proposal" else f"{metric}_{item}"
                    metrics.setdefault(key, 0.0)  # MMDetection leaves a metric out when nothing was predicted
        return metrics

    @property
    def last_tables(self) -> dict[str, CocoSummary]:
        """Per IoU type (``bbox``, ``segm``) of the last evaluation: pycocotools' 12 numbers at full
        precision and AP per class (computed on first use, from the kept ground truth and predictions)."""
        if self._tables is None:
            self._tables = {}
            if self._evaluated is not None:
                coco_gt, preds = self._evaluated
                for iou_type in (m for m in self.metrics if m in ("bbox", "segm")):
                    self._tables[iou_type] = coco_evaluate(coco_gt, coco_detections(preds, iou_type), iou_type,
                                                           self.iou_thrs, self.proposal_nums)
        return self._tables

    def _write_coco_results(self, preds: list, category_ids) -> dict:
        """``format_only`` on data ingested from COCO: ``{outfile_prefix}.bbox.json`` (and
        ``.segm.json``) in the original image and category ids, ready for the COCO server."""
        import json
        from pathlib import Path

        written = []
        for iou_type in ("bbox", "segm") if "masks" in preds[0] else ("bbox",):
            dets = coco_detections(preds, iou_type)
            for det, pred in zip(dets, (p for p in preds for _ in range(len(p["labels"])))):
                det["image_id"], det["category_id"] = int(pred["coco_image_id"]), int(category_ids[det["category_id"]])
            path = Path(f"{self.outfile_prefix}.{iou_type}.json")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(dets))
            written.append(str(path))
        from mmengine.logging import MMLogger

        MMLogger.get_current_instance().info(f"results in COCO ids written to {', '.join(written)}")
        return {}


@METRICS.register_module()
class DeepLakeVOCMetric(_OverRows, VOCMetric):
    """MMDetection's ``VOCMetric`` (same options and numbers) that also reports AP per class.

    Keys: ``pascal_voc/mAP``, ``pascal_voc/AP50`` ..., ``pascal_voc/{class}_AP50`` ...; with
    ``metric='recall'``, MMDetection's ``recall@N@iou`` keys.
    """

    def process(self, data_batch: dict, data_samples) -> None:
        """Ground truth from the row (``instances``, original pixels, crowd as ignored), not from
        whatever the test pipeline loaded; predictions as VOCMetric formats them."""
        if not self._rows:
            return super().process(data_batch, data_samples)
        for sample in data_samples:
            instances = sample["instances"]
            boxes = np.asarray([i["bbox"] for i in instances], np.float32).reshape(-1, 4)
            labels = np.asarray([i["bbox_label"] for i in instances], np.int64)
            ignored = np.asarray([bool(i.get("ignore_flag", 0)) for i in instances], bool)
            ann = dict(bboxes=boxes[~ignored], labels=labels[~ignored], bboxes_ignore=boxes[ignored],
                       labels_ignore=labels[ignored])
            pred = sample["pred_instances"]
            bboxes, scores, pred_labels = (pred[k].cpu().numpy() for k in ("bboxes", "scores", "labels"))
            dets = [np.hstack([bboxes[pred_labels == k], scores[pred_labels == k].reshape(-1, 1)])
                    for k in range(len(self.dataset_meta["classes"]))]
            self.results.append((ann, dets))

    def compute_metrics(self, results: list) -> dict:
        self.last_tables = {}
        if not self._rows:
            return super().compute_metrics(results)
        if self.metric == "recall":
            return self._recall(results)
        metrics = super().compute_metrics(results)
        gts, preds = zip(*results)
        for iou_thr in self.iou_thrs:
            _, per_class = eval_map(list(preds), list(gts), scale_ranges=self.scale_ranges, iou_thr=iou_thr,
                                    dataset=list(self.dataset_meta["classes"]), logger="silent",
                                    eval_mode=self.eval_mode, use_legacy_coordinate=True)
            self.last_tables[iou_thr] = [dict(name=name, AP=float(row["ap"]), gts=int(row["num_gts"]),
                                              dets=int(row["num_dets"]))
                                         for name, row in zip(self.dataset_meta["classes"], per_class)]
            for row in self.last_tables[iou_thr]:
                metrics[f"{row['name']}_AP{int(round(iou_thr * 100)):02d}"] = row["AP"]
        return metrics

    def _recall(self, results: list) -> dict:
        """Class-agnostic recall of the top-N detections of each image.

        MMDetection's own path breaks on numpy >= 1.24 (a ragged ``np.array``) and looks only at
        the first class's detections; this one uses every detection, best score first.
        """
        from mmdet.evaluation.functional.bbox_overlaps import bbox_overlaps
        from mmdet.evaluation.functional.recall import _recalls, set_recall_param

        proposal_nums, iou_thrs = set_recall_param(self.proposal_nums, self.iou_thrs)
        per_image = []
        for gt, pred in results:
            dets = np.concatenate([d for d in pred if len(d)]) if any(len(d) for d in pred) else np.zeros((0, 5))
            dets = dets[np.argsort(-dets[:, 4])][:proposal_nums[-1]] if len(dets) else dets
            ious = (bbox_overlaps(gt["bboxes"], dets[:, :4], use_legacy_coordinate=True)
                    if len(gt["bboxes"]) else np.zeros((0, len(dets)), np.float32))
            per_image.append(ious)
        all_ious = np.empty(len(per_image), dtype=object)
        all_ious[:] = per_image
        recalls = _recalls(all_ious, proposal_nums, iou_thrs)
        return {f"recall@{num}@{thr}": float(recalls[i, j]) for i, num in enumerate(proposal_nums)
                for j, thr in enumerate(iou_thrs)}


# The stand-ins: zoo configs keep ``CocoMetric(ann_file=...)`` / ``VOCMetric`` when only their
# datasets are swapped for Deep Lake ones (MMDetection's tools/train.py and tools/test.py build
# them from the registry): over Deep Lake rows they are the metrics above, over any other dataset
# MMDetection's own.
@METRICS.register_module(name="CocoMetric", force=True)
class CocoMetricOrRows(DeepLakeCocoMetric):
    """MMDetection's ``CocoMetric``; over a Deep Lake dataset, ``DeepLakeCocoMetric`` (the ground
    truth from the evaluated rows; a given ``ann_file`` is not read, a missing one is no error)."""

    rows_only = False


@METRICS.register_module(name="VOCMetric", force=True)
class VOCMetricOrRows(DeepLakeVOCMetric):
    """MMDetection's ``VOCMetric``; over a Deep Lake dataset, ``DeepLakeVOCMetric``."""

    rows_only = False
