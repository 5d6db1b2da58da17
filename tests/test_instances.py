"""MMDetection's dataset rules (lakedet.data.instances), and lakedet side by side with MMDetection's own
CocoDataset / VOCDataset reading the same files."""

import logging

import deeplake
import numpy as np
import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope

from conftest import CONFIG_DIR
from lakedet import DeepLakeDetDataset, build_detector, train_detector
from lakedet.errors import ConfigError
from lakedet.tools.ingest import ingest_coco, ingest_voc
from lakedet.data.instances import rows_to_keep, select_classes, small_boxes, training_targets
from real_files import write_coco, write_voc

pytestmark = pytest.mark.timeout(300)
init_default_scope("mmdet")  # MMDetection's own datasets build their pipelines in its registry

COCO_LOAD = [dict(type="LoadImageFromFile"), dict(type="LoadAnnotations", with_bbox=True, with_mask=True)]
VOC_LOAD = [dict(type="LoadImageFromFile"), dict(type="LoadAnnotations", with_bbox=True)]


def test_class_selection_follows_the_format_of_the_data():
    stored = ("person", "car", "dog")
    coco = select_classes(stored, ("dog", "person"), "coco")
    assert coco.classes == ("person", "dog") and coco.new_label.tolist() == [0, -1, 1]
    # CocoDataset numbers in the file's category order, which may differ from the id order
    unsorted = select_classes(stored, ("dog", "person"), "coco", file_order=("dog", "car", "person"))
    assert unsorted.classes == ("dog", "person") and unsorted.new_label.tolist() == [1, -1, 0]
    voc = select_classes(stored, ("dog", "cow", "person"))
    assert voc.classes == ("dog", "cow", "person") and voc.new_label.tolist() == [2, -1, 0]
    assert voc.missing == ("cow",) and select_classes(stored, None).identity


def test_training_targets_small_boxes_and_row_filters():
    boxes = np.array([[0, 0, 10, 10], [0, 0, 0.5, 10], [0, 0, 10, 0], [5, 5, 9, 9], [70, 70, 80, 80]], float)
    assert training_targets(boxes, None, None).tolist() == [True, False, False, True, True]
    area = np.array([100, 5, 0, 0, np.nan])  # COCO's area decides, where given (NaN: the box's)
    sizes = np.array([[64, 64]] * 5)
    assert training_targets(boxes, area, sizes).tolist() == [True, False, False, False, False]
    assert small_boxes(boxes, 5).tolist() == [False, True, True, True, False]
    assert not small_boxes(boxes, None).any()
    keep = rows_to_keep(np.array([2, 0, 1]), np.array([[40, 30], [64, 64], [31, 64]]), True, 32)
    assert keep.tolist() == [False, False, False]
    assert rows_to_keep(np.array([2, 0, 1]), None, True, 32).tolist() == [True, False, True]


@pytest.fixture(scope="module")
def coco_pair(tmp_path_factory):
    root = tmp_path_factory.mktemp("coco")
    coco = write_coco(root)
    ingest_coco(root / "instances.json", root / "images", str(root / "ds"))
    return root, coco


def _same_instances(ours, theirs, image_id):
    where = f"image {image_id}"
    assert image_id == theirs["img_id"], where
    np.testing.assert_array_equal(ours["gt_bboxes"].tensor.numpy(), theirs["gt_bboxes"].tensor.numpy(), where)
    np.testing.assert_array_equal(ours["gt_bboxes_labels"], theirs["gt_bboxes_labels"], where)
    np.testing.assert_array_equal(ours["gt_ignore_flags"], theirs["gt_ignore_flags"], where)
    if "gt_masks" in theirs:
        assert type(ours["gt_masks"]) is type(theirs["gt_masks"]), where
        if hasattr(theirs["gt_masks"], "masks") and not isinstance(theirs["gt_masks"].masks, list):
            np.testing.assert_array_equal(ours["gt_masks"].masks, theirs["gt_masks"].masks, where)
        else:
            for a, b in zip(ours["gt_masks"].masks, theirs["gt_masks"].masks):
                assert [p.tolist() for p in a] == [p.tolist() for p in b], where


@pytest.mark.parametrize("options", [
    dict(),
    dict(filter_cfg=dict(filter_empty_gt=True, min_size=32)),
    dict(metainfo=dict(classes=("dog", "person"))),
    dict(metainfo=dict(classes=("dining table", "car")), filter_cfg=dict(filter_empty_gt=True)),
    dict(poly2mask=False),
], ids=["plain", "filter_cfg", "reordered-classes", "classes+filter", "polygon-masks"])
def test_coco_instances_equal_mmdetection_cocodataset(coco_pair, options):
    from mmdet.datasets import CocoDataset

    root, coco = coco_pair
    options = dict(options)
    pipeline = [COCO_LOAD[0], dict(COCO_LOAD[1], poly2mask=options.pop("poly2mask", True))]
    theirs = CocoDataset(data_root=str(root), ann_file="instances.json", data_prefix=dict(img="images/"),
                         pipeline=pipeline, **options)
    ours = DeepLakeDetDataset(deeplake_path=str(root / "ds"), pipeline=pipeline, **options)
    assert len(ours) == len(theirs) > 0
    stored = deeplake.open_read_only(str(root / "ds"))
    for i in range(len(theirs)):
        mine = ours[i]
        _same_instances(mine, theirs[i], int(stored["image_id"][mine["img_id"]]))
        assert (mine["height"], mine["width"]) == (theirs[i]["height"], theirs[i]["width"])
    # the labels mean the same classes: MMDetection's label k is its cat_ids[k]
    names = {c["id"]: c["name"] for c in coco["categories"]}
    assert tuple(names[c] for c in theirs.cat_ids) == ours.metainfo["classes"]


def test_degenerate_boxes_are_counted_and_logged_once(coco_pair, caplog):
    root, _ = coco_pair
    with caplog.at_level(logging.WARNING, logger="lakedet"):
        ds = DeepLakeDetDataset(deeplake_path=str(root / "ds"), pipeline=COCO_LOAD)
        for i in range(len(ds)):
            ds[i]
    assert ds.dropped_boxes == 3  # the 0.5 px wide dog, the zero-width car, the zero-area dog polygon
    assert caplog.text.count("left out of the training targets") == 1 and "(rows 1)" in caplog.text
    evaluated = DeepLakeDetDataset(deeplake_path=str(root / "ds"), pipeline=COCO_LOAD[:1], test_mode=True)
    assert len(evaluated.get_data_info(1)["instances"]) == 6  # evaluation sees the file's ground truth


def test_classes_naming_nothing_in_the_dataset_is_an_error(coco_pair):
    root, _ = coco_pair
    with pytest.raises(ConfigError, match=r"none of these is a class of column 'labels'.*'dining table'"):
        DeepLakeDetDataset(deeplake_path=str(root / "ds"), metainfo=dict(classes=("table",)))


@pytest.fixture(scope="module")
def voc_pair(tmp_path_factory):
    root = tmp_path_factory.mktemp("voc")
    voc = write_voc(root)
    ingest_voc(voc, str(root / "ds"))
    return root


@pytest.mark.parametrize("options", [
    dict(),
    dict(filter_cfg=dict(filter_empty_gt=True, min_size=32, bbox_min_size=8)),
    dict(metainfo=dict(classes=("dog", "cat")), filter_cfg=dict(filter_empty_gt=True)),
], ids=["plain", "filter_cfg", "reordered-classes"])
def test_voc_instances_equal_mmdetection_vocdataset(voc_pair, options):
    from mmdet.datasets import VOCDataset

    theirs = VOCDataset(data_root=str(voc_pair), ann_file="VOC2007/ImageSets/Main/trainval.txt",
                        data_prefix=dict(sub_data_root="VOC2007/"), pipeline=VOC_LOAD, **options)
    ours = DeepLakeDetDataset(deeplake_path=str(voc_pair / "ds"), pipeline=VOC_LOAD, **options)
    assert len(ours) == len(theirs) > 0 and ours.metainfo["classes"] == theirs.metainfo["classes"]
    stored = deeplake.open_read_only(str(voc_pair / "ds"))
    for i in range(len(theirs)):
        mine = ours[i]
        _same_instances(mine, theirs[i], str(stored["file_name"][mine["img_id"]])[:-4])


def test_training_with_a_zero_width_box_and_a_zero_area_polygon_has_finite_losses(coco_pair, tmp_path):
    root, _ = coco_pair
    cfg = Config.fromfile(str(CONFIG_DIR / "tiny_mask_rcnn.py"))
    cfg.model.roi_head.bbox_head.num_classes = cfg.model.roi_head.mask_head.num_classes = 4
    cfg.train_dataloader.dataset.deeplake_path = str(root / "ds")
    cfg.train_dataloader.dataset.indices = [1, 1]  # the image with the degenerate boxes, twice
    cfg.val_dataloader.dataset.deeplake_path = str(root / "ds")
    cfg.work_dir = str(tmp_path)
    runner = train_detector(build_detector(cfg.model), cfg, validate=False)
    losses = {key: buffer.data[0] for key, buffer in runner.message_hub.log_scalars.items()
              if key.startswith("train/loss")}
    assert runner.iter == 2 and "train/loss_bbox" in losses and "train/loss_mask" in losses
    for key, values in losses.items():
        assert len(values) == 2 and np.isfinite(values).all(), (key, values)
