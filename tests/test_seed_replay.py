"""The seed integration's own test suite (Deep Lake 3's ``integrations/tests/test_mmdet.py``),
replayed on lakedet in our own code: its box-format expectations, its checks of config fields,
its end-to-end ``test_mmdet`` flow, and the transforms it refused, which lakedet trains with."""

import copy

import deeplake
import numpy as np
import pytest
from mmengine.config import Config

from conftest import CONFIG_DIR, dataset_hash
from lakedet import build_detector, train_detector
from lakedet.config.translate import translate_config
from lakedet.schema import BoxFormat, BoxMode, boxes_to_xyxy, convert_boxes
from lakedet.tools.synthetic import make_shapes_dataset
from lakedet.engine.runner import last_metrics

pytestmark = pytest.mark.timeout(300)

SHAPE = (10, 10)  # the seed's image size (height, width)


# --- box formats: the seed's inputs and expected values ---------------------------------------

@pytest.mark.parametrize("mode, pixel, fractional, xyxy", [
    ("LTWH", [4, 5, 2, 2], [0.4, 0.5, 0.2, 0.2], [4, 5, 6, 7]),  # test_coco_to_pascal_format
    ("CCWH", [4, 5, 2, 2], [0.4, 0.5, 0.2, 0.2], [3, 4, 5, 6]),  # test_yolo_to_pascal_format
    ("LTRB", [4, 5, 6, 7], [0.4, 0.5, 0.6, 0.7], [4, 5, 6, 7]),  # test_pascal_to_pascal_format
])
def test_stored_boxes_to_pascal_xyxy(mode, pixel, fractional, xyxy):
    height, width = SHAPE
    for boxes, is_fraction in ((pixel, False), (fractional, True)):
        out = boxes_to_xyxy(np.array([boxes]), BoxFormat(BoxMode(mode), is_fraction), height, width)
        np.testing.assert_array_equal(out, np.array([xyxy]))


@pytest.mark.parametrize("mode, pixel, fractional, ltwh", [
    ("LTRB", [4, 5, 6, 7], [0.4, 0.5, 0.6, 0.7], [4, 5, 2, 2]),  # test_pascal_to_coco_format
    ("CCWH", [4, 5, 2, 2], [0.4, 0.5, 0.2, 0.2], [3, 4, 2, 2]),  # test_yolo_to_coco_format
    ("LTWH", [4, 5, 2, 2], [0.4, 0.5, 0.2, 0.2], [4, 5, 2, 2]),  # test_coco_to_coco_format
])
def test_stored_boxes_to_coco_ltwh(mode, pixel, fractional, ltwh):
    height, width = SHAPE
    for boxes, is_fraction in ((pixel, False), (fractional, True)):
        out = convert_boxes(boxes_to_xyxy(np.array([boxes]), BoxFormat(BoxMode(mode), is_fraction), height, width), BoxMode.LTRB, BoxMode.LTWH)
        np.testing.assert_allclose(out, np.array([ltwh]), rtol=0, atol=1e-6)


# --- the seed's checks of config fields -----------------------------------------------------------

def seed_style(train_path, val_path, pipeline=None, **top):
    """The tiny RetinaNet of tests/configs, its data written the seed's way (``data=dict(...)``)."""
    cfg = Config.fromfile(str(CONFIG_DIR / "tiny_seed_style.py"))
    cfg.data.train.deeplake_path = train_path
    cfg.data.val.deeplake_path = val_path
    if pipeline is not None:
        cfg.data.train.pipeline = pipeline
    cfg.runner = dict(type="IterBasedRunner", max_iters=1)
    cfg.merge_from_dict(top)
    return cfg


def test_file_dataset_fields_left_in_a_config_are_warned_about():
    # test_check_unused_dataset_fields: dataset_type, then data_root as well
    cfg = seed_style("/data/train", "/data/val")
    cfg.pop("data_root", None)
    cfg.dataset_type = "CocoDataset"
    with pytest.warns(UserWarning, match=r"dataset_type='CocoDataset' are not used"):
        translate_config(cfg)
    cfg.data_root = "./"
    with pytest.warns(UserWarning, match=r"dataset_type='CocoDataset' and data_root='\./' are not used"):
        translate_config(cfg)


@pytest.mark.parametrize("step", [dict(type="LoadImageFromFile"), dict(type="LoadAnnotations", with_bbox=True)])
def test_replaced_file_loaders_are_explained(step):
    # test_check_unsupported_train_pipeline_fields, the two steps the seed warned about
    cfg = seed_style("/data/train", "/data/val", pipeline=[step, dict(type="PackDetInputs")])
    with pytest.warns(UserWarning, match=rf"data.train.pipeline\[0\] \({step['type']}\).*read from the Deep Lake row") as caught:
        out = translate_config(cfg)
    message = next(str(w.message) for w in caught if "Deep Lake row" in str(w.message))
    assert "LoadImageFromDeepLake" in message and "LoadDeepLakeAnnotations" in message
    assert out.train_dataloader.dataset.pipeline[0]["type"] == "LoadImageFromFile"  # the dataset swaps it in


@pytest.fixture(scope="module")
def rows_with_masks(tmp_path_factory):
    root = tmp_path_factory.mktemp("replay")
    make_shapes_dataset(str(root / "train"), 6, size=64, seed=5, masks="binary", min_side=14, max_side=30)
    make_shapes_dataset(str(root / "val"), 4, size=64, seed=6, min_side=14, max_side=30)
    return str(root / "train"), str(root / "val")


LOAD = [dict(type="LoadImageFromFile"), dict(type="LoadAnnotations", with_bbox=True)]
PACK = [dict(type="Resize", img_scale=(64, 64), keep_ratio=True), dict(type="DefaultFormatBundle"),
        dict(type="Collect", keys=["img", "gt_bboxes", "gt_labels"])]
REFUSED_BY_THE_SEED = {
    "Corrupt": LOAD + [dict(type="Corrupt", corruption="gaussian_noise", severity=1)] + PACK,
    "MinIoURandomCrop": LOAD + [dict(type="MinIoURandomCrop", min_ious=(0.1, 0.3), min_crop_size=0.5)] + PACK,
    "RandomCrop": LOAD + [dict(type="RandomCrop", crop_size=(48, 48), allow_negative_crop=True)] + PACK,
    "YOLOXHSVRandomAug": LOAD + [dict(type="YOLOXHSVRandomAug")] + PACK,
    "CopyPaste": [dict(type="LoadImageFromFile"), dict(type="LoadAnnotations", with_bbox=True, with_mask=True),
                  dict(type="CopyPaste", max_num_pasted=3, paste_by_box=False),
                  dict(type="Resize", img_scale=(64, 64), keep_ratio=True), dict(type="DefaultFormatBundle"),
                  dict(type="Collect", keys=["img", "gt_bboxes", "gt_labels", "gt_masks"])],
    "CutOut": LOAD + [dict(type="CutOut", n_holes=2, cutout_shape=(8, 8))] + PACK,
    "Mosaic": LOAD + [dict(type="Mosaic", img_scale=(64, 64), pad_val=114.0)] + PACK,
}


class TestTransformsTheSeedRefused:
    """test_check_unsupported_train_pipeline_fields raised on these; lakedet trains with them."""

    @pytest.mark.slow
    @pytest.mark.parametrize("name", sorted(REFUSED_BY_THE_SEED))
    def test_trains_one_iteration(self, name, rows_with_masks, tmp_path):
        train, val = rows_with_masks
        cfg = seed_style(train, val, pipeline=copy.deepcopy(REFUSED_BY_THE_SEED[name]), work_dir=str(tmp_path))
        translated = translate_config(cfg)
        if name in ("Mosaic", "CopyPaste"):  # they mix rows: MMDetection 3 runs them in a MultiImageMixDataset
            dataset = translated.train_dataloader.dataset
            assert dataset.type == "MultiImageMixDataset" and dataset.pipeline[0]["type"] == name
            assert dataset.dataset.type == "DeepLakeDetDataset"
        np.random.seed(0)
        runner = train_detector(build_detector(cfg.model), cfg, validate=False)
        assert runner.iter == 1
        assert np.isfinite(runner.message_hub.get_scalar("train/loss").current())

    @pytest.mark.slow
    def test_concat_dataset_trains_one_iteration(self, rows_with_masks, tmp_path):
        # test_check_dataset_augmentation_formats: a ConcatDataset of two Deep Lake datasets
        train, val = rows_with_masks
        cfg = seed_style(train, val, work_dir=str(tmp_path))
        cfg.data.train = dict(type="ConcatDataset", datasets=[dict(cfg.data.train), dict(cfg.data.train, deeplake_path=val)])
        runner = train_detector(build_detector(cfg.model), cfg, validate=False)
        assert runner.iter == 1 and len(runner.train_dataloader.dataset) == 6 + 4


# --- test_mmdet: the seed's own end-to-end flow ---------------------------------------------------

def seed_test_config(work_dir):
    """``get_test_config()`` of the seed's test file, with ``_base_`` renamed to MMDetection 3's file
    and the backbone's pretrained weights off (nothing is fetched in tests)."""
    img_norm_cfg = dict(mean=[0, 0, 0], std=[255.0, 255.0, 255.0], to_rgb=True)
    train_pipeline = [
        dict(type="LoadImageFromFile"),
        dict(type="LoadAnnotations", with_bbox=True),
        dict(type="Resize", img_scale=[(320, 320), (416, 416)], keep_ratio=True),
        dict(type="RandomFlip", flip_ratio=0.0),
        dict(type="PhotoMetricDistortion"),
        dict(type="Normalize", **img_norm_cfg),
        dict(type="Pad", size_divisor=32),
        dict(type="DefaultFormatBundle"),
        dict(type="Collect", keys=["img", "gt_bboxes", "gt_labels"]),
    ]
    test_pipeline = [
        dict(type="LoadImageFromFile"),
        dict(type="MultiScaleFlipAug", img_scale=(416, 416), flip=False, transforms=[
            dict(type="Resize", keep_ratio=True),
            dict(type="RandomFlip", flip_ratio=0.0),
            dict(type="Normalize", **img_norm_cfg),
            dict(type="Pad", size_divisor=32),
            dict(type="ImageToTensor", keys=["img"]),
            dict(type="Collect", keys=["img"]),
        ]),
    ]
    cfg = Config.fromstring("_base_ = 'mmdet::yolo/yolov3_d53_8xb8-ms-416-273e_coco.py'\n", ".py")
    cfg.img_norm_cfg = img_norm_cfg
    cfg.train_pipeline = train_pipeline
    cfg.test_pipeline = test_pipeline
    cfg.data = dict(
        train_dataloader={"shuffle": False},
        samples_per_gpu=4,
        workers_per_gpu=2,
        train=dict(pipeline=train_pipeline),
        val=dict(pipeline=test_pipeline),
        test=dict(pipeline=test_pipeline),
    )
    cfg.deeplake_dataloader_type = "c++"
    cfg.deeplake_metrics_format = "COCO"
    cfg.evaluation = dict(metric=["bbox"], interval=1)
    cfg.work_dir = str(work_dir)
    cfg.log_config = dict(interval=10, hooks=[dict(type="TextLoggerHook")])
    cfg.checkpoint_config = dict(interval=12)
    cfg.seed = None
    cfg.device = "cpu"
    cfg.runner = dict(type="EpochBasedRunner", max_epochs=1)
    cfg.model.backbone.init_cfg = None
    cfg.model.test_cfg.score_thr = 0.0  # untrained: keep its boxes so that mAP is computed
    cfg.model.test_cfg.conf_thr = 0.0
    return cfg


@pytest.fixture(scope="module")
def coco_like(tmp_path_factory):
    """Stand-ins for hub://activeloop/coco-{train,val}: the seed's column names, 80 classes."""
    root = tmp_path_factory.mktemp("coco_like")
    classes = [f"class_{i}" for i in range(80)]
    for split, seed in (("train", 1), ("val", 2)):
        make_shapes_dataset(str(root / split), 5, size=96, seed=seed, labels_column="categories", classes=classes)
    return str(root / "train"), str(root / "val")


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_mmdet(coco_like, tmp_path):
    train_path, val_path = coco_like
    before = dataset_hash(train_path), dataset_hash(val_path)
    cfg = seed_test_config(tmp_path / "mmdet_outputs")
    cfg.model.bbox_head.num_classes = 80
    ds_train = deeplake.open_read_only(train_path)[:3]
    ds_val = deeplake.open_read_only(val_path)[:3]
    model = build_detector(cfg.model)
    runner = train_detector(model, cfg, ds_train=ds_train, ds_val=ds_val)
    assert runner.epoch == 1 and runner.iter == 1  # 3 rows, samples_per_gpu=4: one iteration
    assert runner.train_dataloader.num_workers == 2 and runner.train_dataloader.batch_size == 4
    assert len(runner.train_dataloader.dataset) == 3 and len(runner.val_dataloader.dataset) == 3
    assert "coco/bbox_mAP" in last_metrics(runner)
    assert (dataset_hash(train_path), dataset_hash(val_path)) == before


OPENED = {
    "Dataset": lambda path: deeplake.open(path),
    "ReadOnlyDataset": lambda path: deeplake.open_read_only(path),
    "DatasetView": lambda path: deeplake.open_read_only(path).query("SELECT * WHERE ROW_NUMBER() < 4"),
    "RowRangeView": lambda path: deeplake.open_read_only(path)[1:5],
    "row list": lambda path: deeplake.open_read_only(path)[[0, 2, 3, 5]],
}


def pathless_seed_style(work_dir, workers=2):
    cfg = seed_style("", "", work_dir=str(work_dir), data=dict(workers_per_gpu=workers))
    del cfg.data.train["deeplake_path"], cfg.data.val["deeplake_path"]
    return cfg


@pytest.mark.parametrize("kind", sorted(OPENED))
def test_every_kind_of_opened_dataset_reaches_dataloader_workers(kind, rows_with_masks, tmp_path):
    from lakedet.engine.runner import build_runner

    train, val = rows_with_masks
    runner = build_runner(pathless_seed_style(tmp_path), ds_train=OPENED[kind](train), ds_val=OPENED[kind](val))
    # mmengine deep-copies the loader config holding the object, then forks 2 workers that read it
    loader = runner.build_dataloader(runner._train_dataloader, seed=0)
    batch = next(iter(loader))
    assert loader.num_workers == 2 and len(batch["inputs"]) == 2
    expected = {"Dataset": [0, 1, 2, 3, 4, 5], "ReadOnlyDataset": [0, 1, 2, 3, 4, 5], "DatasetView": [0, 1, 2, 3],
                "RowRangeView": [0, 1, 2, 3], "row list": [0, 1, 2, 3]}[kind]
    assert sorted(int(r) for r in loader.dataset.source_rows) == expected
    rows = [s.img_id for s in batch["data_samples"]]
    assert all(0 <= r < len(expected) for r in rows)


def test_a_row_range_takes_schema_and_metadata_from_the_splits_path(rows_with_masks, tmp_path, caplog):
    from lakedet import DeepLakeDetDataset
    from lakedet.tools.synthetic import SHAPE_CLASSES

    train, _ = rows_with_masks
    plain = DeepLakeDetDataset(deeplake_dataset=OPENED["row list"](train), pipeline=[])
    assert plain.class_names_generated and plain.metainfo["classes"][0] == "class_0"
    caplog.clear()
    with caplog.at_level("WARNING", logger="lakedet"):
        ranged = DeepLakeDetDataset(deeplake_dataset=OPENED["row list"](train), deeplake_path=train, pipeline=[])
    assert ranged.metainfo["classes"] == tuple(SHAPE_CLASSES) and not ranged.class_names_generated
    assert not any("RowRangeView" in r.getMessage() for r in caplog.records)
    whole = DeepLakeDetDataset(deeplake_path=train, pipeline=[])
    for index, row in enumerate([0, 2, 3, 5]):  # same boxes and image bytes as the rows they were cut from
        assert ranged.get_data_info(index)["instances"] == whole.get_data_info(row)["instances"]
        assert ranged[index]["img_bytes"] == whole[row]["img_bytes"]  # no pipeline: the row as read
    with pytest.raises(Exception, match="row range of a dataset of 6 rows, but deeplake_path holds 4 rows"):
        DeepLakeDetDataset(deeplake_dataset=OPENED["row list"](train), deeplake_path=rows_with_masks[1], pipeline=[])


@pytest.mark.slow
def test_a_row_range_trains_with_workers_and_unnamed_classes_follow_the_head(rows_with_masks, tmp_path):
    train, val = rows_with_masks
    cfg = pathless_seed_style(tmp_path)
    cfg.model.bbox_head.num_classes = 5  # the rows show 3 labels and carry no class names
    runner = train_detector(build_detector(cfg.model), cfg, ds_train=OPENED["RowRangeView"](train),
                            ds_val=deeplake.open_read_only(val)[:2])
    assert runner.iter == 1 and runner.train_dataloader.num_workers == 2
    assert runner.train_dataloader.dataset.metainfo["classes"] == tuple(f"class_{i}" for i in range(5))
    assert "coco/bbox_mAP" in last_metrics(runner)
