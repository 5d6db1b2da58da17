"""Instance masks from Deep Lake BinaryMask and Polygon columns, through MMDetection."""

import logging

import numpy as np
import pytest
from mmengine.config import Config

from conftest import CONFIG_DIR
from lakedet import DeepLakeDetDataset, build_detector, train_detector
from lakedet.errors import DataError
from lakedet.tools.synthetic import render_rows, write_dataset
from lakedet.engine.runner import last_metrics

pytestmark = pytest.mark.timeout(300)

LOAD = [dict(type="LoadImageFromFile"), dict(type="LoadAnnotations", with_bbox=True, with_mask=True)]


@pytest.fixture(scope="module")
def mask_datasets(tmp_path_factory):
    root = tmp_path_factory.mktemp("masks")
    rows = render_rows(8, size=64, seed=5, min_side=14, max_side=30, max_objects=3)
    val = render_rows(4, size=64, seed=6, min_side=14, max_side=30, max_objects=3)
    for kind in ("binary", "polygon"):
        write_dataset(str(root / f"train-{kind}"), rows, masks=kind)
        write_dataset(str(root / f"val-{kind}"), val, masks=kind)
    return root, rows


@pytest.mark.parametrize("kind,mask_type", [("binary", "BitmapMasks"), ("polygon", "BitmapMasks")])
def test_masks_are_inferred_and_delivered_as_mmdetection_masks(mask_datasets, kind, mask_type):
    root, rows = mask_datasets
    ds = DeepLakeDetDataset(deeplake_path=str(root / f"train-{kind}"), pipeline=LOAD)
    assert ds.tensor_map.gt_masks == ("masks" if kind == "binary" else "polygons")
    sample = ds[1]
    assert type(sample["gt_masks"]).__name__ == mask_type and len(sample["gt_masks"]) == len(rows[1].boxes)
    polygons = DeepLakeDetDataset(deeplake_path=str(root / "train-polygon"), pipeline=[
        LOAD[0], dict(LOAD[1], poly2mask=False)])[1]["gt_masks"]
    assert type(polygons).__name__ == "PolygonMasks"


@pytest.mark.parametrize("kind", ["binary", "polygon"])
def test_masks_match_the_written_masks_after_the_pipelines_resize(mask_datasets, kind):
    """The same MMDetection Resize applied to the source masks gives the delivered masks."""
    from mmdet.datasets.transforms import Resize
    from mmdet.structures.mask import BitmapMasks

    root, rows = mask_datasets
    resize = dict(type="Resize", scale=(96, 96), keep_ratio=True)
    ds = DeepLakeDetDataset(deeplake_path=str(root / f"train-{kind}"), pipeline=LOAD + [resize])
    for i in (0, 3):
        delivered = ds[i]["gt_masks"].masks
        if kind == "binary":
            source = np.moveaxis(rows[i].masks, -1, 0).astype(np.uint8)
        else:  # the source polygons, rasterised the way MMDetection rasterises polygons
            from pycocotools import mask as mask_utils

            source = np.stack([mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(
                [p.reshape(-1).astype(np.float64).tolist()], 64, 64))) for p in rows[i].polygons])
        expected = Resize(scale=(96, 96), keep_ratio=True)(dict(
            img=np.zeros((64, 64, 3), np.uint8), gt_masks=BitmapMasks(source, 64, 64)))["gt_masks"].masks
        assert delivered.shape == expected.shape == (len(rows[i].boxes), 96, 96)
        np.testing.assert_array_equal(delivered, expected)


def test_mask_and_box_count_mismatch_names_the_row(tmp_path):
    rows = render_rows(3, size=32, seed=1, max_objects=2)
    rows[1].masks = rows[1].masks[:, :, :0]
    write_dataset(str(tmp_path / "m"), rows, masks="binary")
    ds = DeepLakeDetDataset(deeplake_path=str(tmp_path / "m"), pipeline=LOAD)
    with pytest.raises(DataError, match=r"row 1: column 'masks' has 0 masks but column 'boxes' has \d boxes"):
        ds[1]


def test_degenerate_polygons_are_dropped_with_a_counted_warning(tmp_path, caplog):
    rows = render_rows(2, size=48, seed=2, max_objects=2, min_side=10, max_side=20)
    rows[0].polygons[0] = rows[0].polygons[0][:2]  # 2 points
    rows[1].polygons[0] = np.array([[1, 1], [5, 5], [9, 9]], np.float32)  # collinear: no area
    write_dataset(str(tmp_path / "p"), rows, masks="polygon")
    ds = DeepLakeDetDataset(deeplake_path=str(tmp_path / "p"), pipeline=LOAD + [dict(type="PackDetInputs")])
    with caplog.at_level(logging.WARNING, logger="lakedet"):
        first, second = ds[0], ds[1]
    assert ds.masks.degenerate_polygons == 2
    assert "row 0, column 'polygons': the polygon of instance 0 has 2 points" in caplog.text
    assert "row 1, column 'polygons': the polygon of instance 0 has 3 points and no area" in caplog.text
    for packed, row in ((first, rows[0]), (second, rows[1])):  # the instance became an ignore region
        assert len(packed["data_samples"].ignored_instances) == 1
        assert len(packed["data_samples"].gt_instances) == len(row.boxes) - 1


def test_fractional_polygons_follow_the_coords_metadata(tmp_path):
    rows = render_rows(1, size=40, seed=3, max_objects=1)
    pixel_polygon = rows[0].polygons[0].copy()
    rows[0].polygons[0] = pixel_polygon / 40.0
    ds = write_dataset(str(tmp_path / "f"), rows, masks="polygon")
    ds["polygons"].metadata["coords"] = {"type": "fractional"}
    ds.commit("fractional polygons")
    sample = DeepLakeDetDataset(deeplake_path=str(tmp_path / "f"), pipeline=LOAD)[0]
    np.testing.assert_allclose(np.asarray(sample["instances"][0]["mask"][0]).reshape(-1, 2), pixel_polygon,
                               atol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["binary", "polygon"])
def test_mask_rcnn_trains_two_iterations_and_evaluates_segm(mask_datasets, kind, tmp_path):
    root, _ = mask_datasets
    cfg = Config.fromfile(str(CONFIG_DIR / "tiny_mask_rcnn.py"))
    cfg.train_dataloader.dataset.deeplake_path = str(root / f"train-{kind}")
    cfg.val_dataloader.dataset.deeplake_path = str(root / f"val-{kind}")
    cfg.work_dir = str(tmp_path)
    runner = train_detector(build_detector(cfg.model), cfg)
    metrics = last_metrics(runner)
    assert runner.iter == 2
    for key in ("coco/bbox_mAP", "coco/segm_mAP", "coco/segm_mAP_50"):
        assert 0 <= metrics[key] <= 1, metrics
