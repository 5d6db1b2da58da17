"""COCO evaluation with ground truth taken from the Deep Lake rows, in memory.

``DeepLakeCocoMetric`` is MMDetection's ``CocoMetric`` (same options, same numbers) whose ground
truth comes from the ``instances`` every ``DeepLakeDetDataset`` sample carries, turned into a
pycocotools ``COCO`` object in memory: no annotation file is read or written.
"""

from __future__ import annotations

from collections.abc import Sequence

from mmdet.datasets.api_wrappers import COCO
from mmdet.evaluation.metrics import CocoMetric
from mmdet.registry import METRICS

__all__ = ["DeepLakeCocoMetric", "coco_ground_truth", "coco_from_dict"]


def coco_ground_truth(gt_dicts: Sequence[dict], classes: Sequence[str]) -> dict:
    """COCO-format ground truth from per-image dicts (``img_id``, ``width``, ``height``, ``anns``).

    Each ann has ``bbox`` (pixel x1y1x2y2), ``bbox_label``, ``ignore_flag`` and optionally ``mask``
    (polygons or RLE). Category ids are the label indices, as in MMDetection's ``CocoMetric``.
    Duplicated images (padding of distributed samplers) are kept once.
    """
    images, annotations, seen = [], [], set()
    for gt in gt_dicts:
        if gt["img_id"] in seen:
            continue
        seen.add(gt["img_id"])
        images.append(dict(id=gt["img_id"], width=gt["width"], height=gt["height"], file_name=""))
        for ann in gt["anns"]:
            x1, y1, x2, y2 = (float(v) for v in ann["bbox"])
            annotation = dict(id=len(annotations) + 1, image_id=gt["img_id"],
                              bbox=[x1, y1, x2 - x1, y2 - y1], area=(x2 - x1) * (y2 - y1),
                              iscrowd=int(ann.get("ignore_flag", 0)), category_id=int(ann["bbox_label"]))
            mask = ann.get("mask")
            if mask:
                if isinstance(mask, dict) and isinstance(mask.get("counts"), bytes):
                    mask = dict(mask, counts=mask["counts"].decode())
                annotation["segmentation"] = mask
            annotations.append(annotation)
    return dict(info=dict(description="ground truth from Deep Lake rows (lakedet)"), licenses=[],
                images=images, annotations=annotations,
                categories=[dict(id=i, name=name) for i, name in enumerate(classes)])


def coco_from_dict(dataset: dict) -> COCO:
    """A pycocotools ``COCO`` index built from an in-memory dict (no file)."""
    coco = COCO()
    coco.dataset = dataset
    coco.createIndex()
    return coco


@METRICS.register_module()
class DeepLakeCocoMetric(CocoMetric):
    """``CocoMetric`` with in-memory ground truth from the evaluated Deep Lake rows.

    Takes every ``CocoMetric`` argument; ``ann_file`` must stay unset.
    """

    def __init__(self, *args, **kwargs):
        if kwargs.get("ann_file"):
            raise ValueError("DeepLakeCocoMetric takes its ground truth from the dataset rows; "
                             "use CocoMetric for an annotation file")
        super().__init__(*args, **kwargs)

    def compute_metrics(self, results: list) -> dict[str, float]:
        gts = [gt for gt, _ in results]
        self._coco_api = coco_from_dict(coco_ground_truth(gts, self.dataset_meta["classes"]))
        self.cat_ids = None  # recomputed by CocoMetric from the new index
        self.img_ids = None
        try:
            return super().compute_metrics(results)
        finally:
            self._coco_api = None  # next evaluation rebuilds from its own rows
