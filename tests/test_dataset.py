import logging

import cv2
import deeplake
import numpy as np
import pytest

from lakedet import DeepLakeDetDataset
from lakedet.errors import ConfigError, DataError, SchemaError
from lakedet.tools.synthetic import SHAPE_CLASSES, encode_jpeg, render_rows, write_dataset

pytestmark = pytest.mark.timeout(120)

ZOO_PIPELINE = [
    dict(type="LoadImageFromFile", backend_args=None),
    dict(type="LoadAnnotations", with_bbox=True),
    dict(type="PackDetInputs"),
]


def ltwh_to_xyxy(b):
    b = np.asarray(b, np.float32).reshape(-1, 4)
    return np.concatenate([b[:, :2], b[:, :2] + b[:, 2:]], 1)


def test_samples_hold_exactly_the_written_boxes_labels_and_pixels(tmp_path):
    rows = render_rows(6, size=48, seed=1, min_side=10, max_side=20, empty_every=3)
    write_dataset(str(tmp_path / "png"), rows, jpeg=False)  # lossless: pixels must match exactly
    ds = DeepLakeDetDataset(deeplake_path=str(tmp_path / "png"), pipeline=ZOO_PIPELINE[:2])
    assert len(ds) == 6 and ds.metainfo["classes"] == ("circle", "square", "triangle")
    for i, row in enumerate(rows):
        sample = ds[i]
        assert sample["img_id"] == i
        np.testing.assert_array_equal(sample["img"], row.image[:, :, ::-1])  # BGR uint8
        assert sample["img"].dtype == np.uint8 and sample["ori_shape"] == (48, 48)
        np.testing.assert_allclose(sample["gt_bboxes"].tensor.numpy(), ltwh_to_xyxy(row.boxes))
        np.testing.assert_array_equal(sample["gt_bboxes_labels"], row.labels.astype(np.int64))
    assert len(ds[2]["gt_bboxes"]) == 0  # a row without boxes gives an empty sample


def test_jpeg_rows_decode_to_the_stored_bytes(shapes):
    path, rows = shapes
    ds = DeepLakeDetDataset(deeplake_path=path, pipeline=ZOO_PIPELINE[:1])
    expected = cv2.imdecode(np.frombuffer(encode_jpeg(rows[4].image), np.uint8), cv2.IMREAD_COLOR)
    np.testing.assert_array_equal(ds[4]["img"], expected)


def test_zoo_pipeline_works_as_written_and_honours_with_bbox(shapes):
    path, rows = shapes
    ds = DeepLakeDetDataset(deeplake_path=path, pipeline=ZOO_PIPELINE)
    types = [type(t).__name__ for t in ds.pipeline.transforms]
    assert types == ["LoadImageFromDeepLake", "LoadDeepLakeAnnotations", "PackDetInputs"]
    packed = ds[1]
    assert packed["inputs"].shape == (3, 64, 64)
    np.testing.assert_allclose(packed["data_samples"].gt_instances.bboxes.numpy(), ltwh_to_xyxy(rows[1].boxes))
    assert packed["data_samples"].img_id == 1
    no_boxes = DeepLakeDetDataset(deeplake_path=path, pipeline=[
        dict(type="LoadImageFromFile"), dict(type="LoadAnnotations", with_bbox=False, with_label=True)])
    sample = no_boxes[1]
    assert "gt_bboxes" not in sample and len(sample["gt_bboxes_labels"]) == len(rows[1].labels)


def test_fractional_ltrb_boxes_are_converted_with_the_image_size(tmp_path):
    rows = render_rows(2, size=40, seed=2)
    for r in rows:  # store fractional LTRB instead of pixel LTWH
        xyxy = ltwh_to_xyxy(r.boxes)
        r.boxes = (xyxy / np.array([40, 40, 40, 40], np.float32)).astype(np.float32)
    write_dataset(str(tmp_path / "frac"), rows, coords={"mode": "LTRB", "type": "fractional"})
    ds = DeepLakeDetDataset(deeplake_path=str(tmp_path / "frac"), pipeline=ZOO_PIPELINE[:2])
    np.testing.assert_allclose(ds[1]["gt_bboxes"].tensor.numpy(), rows[1].boxes * 40, atol=1e-4)
    assert ds.get_data_info(1)["instances"]  # instances exist before loading (converted at load)


def test_grayscale_and_rgba_images_become_bgr(tmp_path):
    gray = render_rows(2, size=32, seed=5, grayscale=True)
    write_dataset(str(tmp_path / "gray"), gray, jpeg=False)
    ds = DeepLakeDetDataset(deeplake_path=str(tmp_path / "gray"), pipeline=ZOO_PIPELINE[:1])
    img = ds[0]["img"]
    assert img.shape == (32, 32, 3) and np.array_equal(img[:, :, 0], gray[0].image[:, :, 0])
    rgba_ds = deeplake.create(str(tmp_path / "rgba"))
    rgba_ds.add_column("images", deeplake.types.Image(sample_compression="png"))
    rgba_ds.add_column("boxes", deeplake.types.BoundingBox())
    rgba_ds.add_column("labels", deeplake.types.ClassLabel(deeplake.types.Array("uint32", dimensions=1)))
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 255  # pure red, opaque
    rgba_ds.append({"images": [rgba], "boxes": [np.zeros((0, 4), np.float32)], "labels": [np.zeros(0, np.uint32)]})
    rgba_ds.commit()
    out = DeepLakeDetDataset(deeplake_path=str(tmp_path / "rgba"), pipeline=ZOO_PIPELINE[:1])[0]["img"]
    assert out.shape == (8, 8, 3) and out[0, 0].tolist() == [0, 0, 200]


def test_img_id_is_the_row_in_the_opened_view(shapes):
    path, rows = shapes
    ds = DeepLakeDetDataset(deeplake_path=path, deeplake_query="SELECT * WHERE ROW_NUMBER() >= 20",
                            pipeline=ZOO_PIPELINE[:2])
    assert len(ds) == 4
    assert ds[0]["img_id"] == 0
    np.testing.assert_allclose(ds[0]["gt_bboxes"].tensor.numpy(), ltwh_to_xyxy(rows[20].boxes))


def test_filter_empty_gt_drops_rows_without_boxes_when_training(shapes):
    path, rows = shapes
    ds = DeepLakeDetDataset(deeplake_path=path, pipeline=ZOO_PIPELINE,
                            filter_cfg=dict(filter_empty_gt=True, min_size=32))
    assert len(ds) == sum(1 for r in rows if len(r.boxes))
    assert ds.get_cat_ids(0) == rows[0].labels.tolist()


def test_missing_column_in_mapping_is_an_error(shapes):
    path, _ = shapes
    with pytest.raises(SchemaError, match=r"\['gt_labels'\]: no column 'label'.*did you mean 'labels'"):
        DeepLakeDetDataset(deeplake_path=path, deeplake_tensors={"gt_labels": "label"})


def test_ambiguous_columns_are_an_error(tmp_path):
    ds = deeplake.create(str(tmp_path / "amb"))
    ds.add_column("images", deeplake.types.Image(sample_compression="jpeg"))
    ds.add_column("thumbs", deeplake.types.Image(sample_compression="jpeg"))
    ds.add_column("boxes", deeplake.types.BoundingBox())
    ds.add_column("labels", deeplake.types.ClassLabel(deeplake.types.Array("uint32", dimensions=1)))
    jpeg = encode_jpeg(np.zeros((8, 8, 3), np.uint8))
    ds.append({"images": [jpeg], "thumbs": [jpeg], "boxes": [np.zeros((0, 4), np.float32)],
               "labels": [np.zeros(0, np.uint32)]})
    ds.commit()
    with pytest.raises(SchemaError, match=r"'images'.*'thumbs'.*'img': 'images'"):
        DeepLakeDetDataset(deeplake_path=str(tmp_path / "amb"))
    assert DeepLakeDetDataset(deeplake_path=str(tmp_path / "amb"), deeplake_tensors={"img": "thumbs"}).tensor_map.img == "thumbs"


def test_a_selection_without_rows_is_an_error(shapes):
    with pytest.raises(DataError, match="no rows"):
        DeepLakeDetDataset(deeplake_path=shapes[0], deeplake_query="SELECT * WHERE ROW_NUMBER() > 1000")


def test_unknown_coords_mode_is_an_error(tmp_path):
    write_dataset(str(tmp_path / "c"), render_rows(1, size=32), coords={"mode": "XYXY", "type": "pixel"})
    with pytest.raises(SchemaError, match="'boxes'.*XYXY"):
        DeepLakeDetDataset(deeplake_path=str(tmp_path / "c"))


def test_boxes_and_labels_of_different_lengths_name_the_row(tmp_path):
    rows = render_rows(3, size=32, seed=0, max_objects=2)
    rows[2].labels = np.append(rows[2].labels, np.uint32(1))
    write_dataset(str(tmp_path / "m"), rows)
    with pytest.raises(DataError, match=r"row 2: column 'boxes' has \d boxes but column 'labels' has \d labels"):
        DeepLakeDetDataset(deeplake_path=str(tmp_path / "m"))


def test_label_outside_the_class_list_names_the_row(tmp_path):
    rows = render_rows(2, size=32, seed=0)
    rows[1].labels[:] = 7
    write_dataset(str(tmp_path / "l"), rows)
    with pytest.raises(DataError, match="row 1, column 'labels': label 7 is outside the 3 classes"):
        DeepLakeDetDataset(deeplake_path=str(tmp_path / "l"))


@pytest.fixture
def corrupt(tmp_path):
    """Four JPEG rows; row 2 holds bytes that are not an image."""
    rows = render_rows(4, size=32, seed=9)
    ds = write_dataset(str(tmp_path / "bad"), rows[:2])
    ds.append({"images": [b"\xff\xd8\xff\xe0 this is not a jpeg" * 4], "boxes": [rows[2].boxes],
               "labels": [rows[2].labels]})
    ds.append({"images": [encode_jpeg(rows[3].image)], "boxes": [rows[3].boxes], "labels": [rows[3].labels]})
    ds.commit("corrupt row 2")
    return str(tmp_path / "bad")


def test_corrupt_image_is_an_error_naming_row_and_column(corrupt):
    ds = DeepLakeDetDataset(deeplake_path=corrupt, pipeline=ZOO_PIPELINE)
    ds[1]
    with pytest.raises(DataError, match=r"row 2, column 'images': the image cannot be decoded.*skip_bad_images"):
        ds[2]


def test_corrupt_image_is_skipped_with_a_warning_when_configured(corrupt, caplog):
    ds = DeepLakeDetDataset(deeplake_path=corrupt, pipeline=ZOO_PIPELINE, skip_bad_images=True)
    with caplog.at_level(logging.WARNING, logger="lakedet"):
        sample = ds[2]  # training mode: MMDetection draws another row instead
    assert sample["data_samples"].img_id != 2
    assert "skipping row 2, column 'images'" in caplog.text


def test_unknown_deeplake_argument_gets_did_you_mean(shapes):
    with pytest.raises(ConfigError, match="'deeplake_tensor'.*did you mean 'deeplake_tensors'"):
        DeepLakeDetDataset(deeplake_path=shapes[0], deeplake_tensor={})


def test_username_password_credentials_point_to_tokens(shapes):
    with pytest.raises(ConfigError, match="use deeplake_credentials\\['token'\\]"):
        DeepLakeDetDataset(deeplake_path=shapes[0], deeplake_credentials={"username": "u", "password": "p"})


def test_opened_dataset_object_can_be_passed(shapes):
    path, rows = shapes
    view = deeplake.open_read_only(path).query("SELECT * WHERE ROW_NUMBER() < 3")
    ds = DeepLakeDetDataset(deeplake_dataset=view, pipeline=ZOO_PIPELINE[:2])
    assert len(ds) == 3
    np.testing.assert_allclose(ds[2]["gt_bboxes"].tensor.numpy(), ltwh_to_xyxy(rows[2].boxes))


# --- MMDetection's dataset wrappers over DeepLakeDetDataset ------------------------------------

def _build(cfg):
    from mmdet.registry import DATASETS

    return DATASETS.build(cfg)


def _deeplake(path, pipeline=ZOO_PIPELINE, **kwargs):
    return dict(type="DeepLakeDetDataset", deeplake_path=path, pipeline=pipeline, **kwargs)


def test_repeat_concat_and_class_balanced_wrappers(shapes, shapes_val):
    repeat = _build(dict(type="RepeatDataset", times=3, dataset=_deeplake(shapes[0])))
    assert len(repeat) == 3 * 24 and repeat[24 + 1]["data_samples"].img_id == 1
    concat = _build(dict(type="ConcatDataset", datasets=[_deeplake(shapes[0]), _deeplake(shapes_val[0])]))
    assert len(concat) == 24 + 8
    np.testing.assert_allclose(concat[24 + 1]["data_samples"].gt_instances.bboxes.numpy(),
                               ltwh_to_xyxy(shapes_val[1][1].boxes))
    balanced = _build(dict(type="ClassBalancedDataset", oversample_thr=0.9, dataset=_deeplake(shapes[0])))
    assert len(balanced) > 24  # rare classes repeated, computed from the label column alone
    assert balanced[0]["inputs"].shape[0] == 3


@pytest.fixture(scope="module")
def masked(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("masked") / "ds")
    rows = render_rows(8, size=64, seed=11, min_side=16, max_side=30)
    write_dataset(path, rows, masks="binary")
    return path, rows


def test_multi_image_mix_dataset_with_mosaic_mixup_and_copypaste(masked):
    path, _ = masked
    boxes_only = [dict(type="LoadImageFromFile"), dict(type="LoadAnnotations", with_bbox=True)]
    mosaic = _build(dict(
        type="MultiImageMixDataset", dataset=_deeplake(path, pipeline=boxes_only),
        pipeline=[dict(type="Mosaic", img_scale=(64, 64), pad_val=114.0),
                  dict(type="MixUp", img_scale=(64, 64), ratio_range=(0.8, 1.6), pad_val=114.0),
                  dict(type="PackDetInputs")]))
    assert len(mosaic) == 8
    for i in range(3):
        sample = mosaic[i]
        assert sample["inputs"].shape[:2] == (3, 128)  # mosaic doubles the side
        assert len(sample["data_samples"].gt_instances.bboxes) > 0
    # CopyPaste pastes instances (masks) of another row; MMDetection's Mosaic/MixUp do not carry masks
    with_masks = [dict(type="LoadImageFromFile"), dict(type="LoadAnnotations", with_bbox=True, with_mask=True)]
    paste = _build(dict(
        type="MultiImageMixDataset", dataset=_deeplake(path, pipeline=with_masks),
        pipeline=[dict(type="CopyPaste", max_num_pasted=5, paste_by_box=False), dict(type="PackDetInputs")]))
    counts = []
    np.random.seed(0)  # CopyPaste draws with NumPy's global generator
    for i in range(4):
        instances = paste[i]["data_samples"].gt_instances
        assert len(instances.bboxes) == len(instances.labels) == len(instances.masks)
        counts.append(len(instances.bboxes))
    assert sum(counts) > sum(len(r.boxes) for r in masked[1][:4])  # instances were pasted in


def test_binary_masks_reach_the_pipeline_as_bitmap_masks(masked):
    path, rows = masked
    ds = DeepLakeDetDataset(deeplake_path=path, pipeline=[
        dict(type="LoadImageFromFile"), dict(type="LoadAnnotations", with_bbox=True, with_mask=True)])
    sample = ds[2]
    assert type(sample["gt_masks"]).__name__ == "BitmapMasks"
    np.testing.assert_array_equal(sample["gt_masks"].masks, np.moveaxis(rows[2].masks, -1, 0).astype(np.uint8))


def test_dataloader_type_is_validated_and_kept(shapes):
    assert DeepLakeDetDataset(deeplake_path=shapes[0], deeplake_dataloader_type="c++").loader_type == "cpp"
    with pytest.raises(ConfigError, match="deeplake_dataloader_type='fast'"):
        DeepLakeDetDataset(deeplake_path=shapes[0], deeplake_dataloader_type="fast")


def test_commit_and_view_select_rows(tmp_path):
    ds = write_dataset(str(tmp_path / "v"), render_rows(4, size=32, seed=1))
    first = ds.version
    extra = render_rows(2, size=32, seed=2)
    ds.append({"images": [encode_jpeg(r.image) for r in extra], "boxes": [r.boxes for r in extra],
               "labels": [r.labels for r in extra]})
    ds.commit("two more")
    ds.query("SELECT * WHERE ROW_NUMBER() >= 4").tag("new_rows")
    path = str(tmp_path / "v")
    assert len(DeepLakeDetDataset(deeplake_path=path, deeplake_commit_id=first)) == 4
    assert len(DeepLakeDetDataset(deeplake_path=path, deeplake_commit=first)) == 4
    view = DeepLakeDetDataset(deeplake_path=path, deeplake_view_id="new_rows", pipeline=ZOO_PIPELINE[:2])
    assert len(view) == 2
    np.testing.assert_allclose(view[1]["gt_bboxes"].tensor.numpy(), ltwh_to_xyxy(extra[1].boxes))
    with pytest.raises(ConfigError, match="disagree"):
        DeepLakeDetDataset(deeplake_path=path, deeplake_commit_id=first, deeplake_commit="other")


def test_test_time_augmentation_pipelines_load_once_at_the_top(shapes):
    ds = DeepLakeDetDataset(deeplake_path=shapes[0], test_mode=True, pipeline=[
        dict(type="LoadImageFromFile"),
        dict(type="TestTimeAug", transforms=[
            [dict(type="Resize", scale=(64, 64), keep_ratio=True), dict(type="Resize", scale=(96, 96), keep_ratio=True)],
            [dict(type="RandomFlip", prob=1.0), dict(type="RandomFlip", prob=0.0)],
            [dict(type="PackDetInputs", meta_keys=("img_id", "img_shape", "ori_shape", "scale_factor", "flip"))]])])
    sample = ds[0]
    assert len(sample["inputs"]) == 4  # 2 scales x 2 flips, each from the one decoded image
    assert sorted(tuple(x.shape[1:]) for x in sample["inputs"]) == [(64, 64), (64, 64), (96, 96), (96, 96)]


def test_metainfo_classes_select_and_renumber_classes_by_name(shapes, tmp_path):
    path, rows = shapes
    ds = DeepLakeDetDataset(deeplake_path=path, pipeline=ZOO_PIPELINE[:2], metainfo=dict(classes=("triangle", "circle")))
    assert ds.metainfo["classes"] == ("triangle", "circle")
    for i in range(len(ds)):  # squares are dropped, the others renumbered in the order given
        sample = ds[i]
        names = [SHAPE_CLASSES[k] for k in rows[i].labels]
        kept = [n for n in names if n != "square"]
        assert [("triangle", "circle")[k] for k in sample["gt_bboxes_labels"]] == kept
        np.testing.assert_allclose(sample["gt_bboxes"].tensor.numpy(),
                                   ltwh_to_xyxy(rows[i].boxes[[n != "square" for n in names]]).reshape(-1, 4))
    with pytest.raises(ConfigError, match=r"none of these is a class of column 'labels'"):
        DeepLakeDetDataset(deeplake_path=path, metainfo=dict(classes=("only_one",)))
    # without class names in the dataset, the given names name the labels by position
    unnamed = str(tmp_path / "unnamed")
    write_dataset(unnamed, render_rows(2, size=32, seed=1), classes=None)
    with pytest.raises(DataError, match=r"row 0, column 'labels': label \d is outside the 1 classes of metainfo"):
        DeepLakeDetDataset(deeplake_path=unnamed, metainfo=dict(classes=("only_one",)))
    assert DeepLakeDetDataset(deeplake_path=unnamed, metainfo=dict(classes=("a", "b", "c"))).metainfo["classes"] == \
        ("a", "b", "c")


def test_an_opened_object_refuses_row_selection_keys(shapes):
    view = deeplake.open_read_only(shapes[0])
    with pytest.raises(ConfigError, match="deeplake_query cannot be applied to an opened dataset object"):
        DeepLakeDetDataset(deeplake_dataset=view, deeplake_query="SELECT * WHERE ROW_NUMBER() < 2")


def test_two_mask_columns_are_asked_about_only_when_the_run_needs_masks(tmp_path):
    """A pure detector (no masks in its pipeline) builds on a dataset with two mask columns without
    deeplake_tensors; a Mask R-CNN pipeline, or a segm metric, asks to choose, naming both."""
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner

    from lakedet.engine.hooks import prepare_dataloader

    rows = render_rows(2, size=32, seed=5)
    ds = write_dataset(str(tmp_path / "two"), rows, masks="binary")
    ds.add_column("polygons", deeplake.types.Polygon())
    ds.commit("a second mask column")
    path = str(tmp_path / "two")
    detector = DeepLakeDetDataset(deeplake_path=path, pipeline=ZOO_PIPELINE)
    assert detector.tensor_map.gt_masks is None and len(detector[0]["data_samples"].gt_instances) == len(rows[0].boxes)
    with_masks = [dict(type="LoadImageFromFile"), dict(type="LoadAnnotations", with_bbox=True, with_mask=True),
                  dict(type="PackDetInputs")]
    with pytest.raises(SchemaError, match=r"cannot infer 'gt_masks': columns \['masks', 'polygons'\] all fit"):
        DeepLakeDetDataset(deeplake_path=path, pipeline=with_masks)
    chosen = DeepLakeDetDataset(deeplake_path=path, deeplake_tensors={"gt_masks": "masks"}, pipeline=with_masks)
    assert chosen[0]["data_samples"].gt_instances.masks.masks.shape == (len(rows[0].boxes), 32, 32)
    init_default_scope("mmdet")
    loader = Runner.build_dataloader(dict(batch_size=1, sampler=dict(type="DefaultSampler", shuffle=False),
                                          dataset=dict(type="DeepLakeDetDataset", deeplake_path=path, test_mode=True,
                                                       pipeline=ZOO_PIPELINE)))
    prepare_dataloader(loader, "val")  # a bbox metric needs no masks
    with pytest.raises(SchemaError, match=r"val_evaluator's segm metric needs ground-truth masks.*several mask columns: "
                                          r"\['masks', 'polygons'\]; choose one, e.g. deeplake_tensors=dict\(gt_masks='masks'\)"):
        prepare_dataloader(loader, "val", metric="segm")
    plain = DeepLakeDetDataset(deeplake_path=path, deeplake_tensors={"gt_masks": None}, test_mode=True,
                               pipeline=ZOO_PIPELINE)
    assert plain.tensor_map.gt_masks is None
    assert "mask" not in plain.raw_sample(0)["instances"][0]  # nothing read for the metric


@pytest.mark.parametrize("context", ["fork", "spawn"])
def test_dataloader_workers_read_every_row_once(shapes, context):
    from mmengine.dataset import pseudo_collate
    from torch.utils.data import DataLoader

    ds = DeepLakeDetDataset(deeplake_path=shapes[0], test_mode=True, pipeline=ZOO_PIPELINE)
    loader = DataLoader(ds, batch_size=4, num_workers=2, collate_fn=pseudo_collate, multiprocessing_context=context)
    seen = [s.img_id for batch in loader for s in batch["data_samples"]]
    assert sorted(seen) == list(range(24))
    np.testing.assert_allclose(
        next(iter(loader))["data_samples"][1].gt_instances.bboxes.numpy(), ltwh_to_xyxy(shapes[1][1].boxes))


def test_a_bytes_column_of_encoded_images_can_be_the_image(tmp_path):
    rows = render_rows(2, size=32, seed=6)
    ds = deeplake.create(str(tmp_path / "b"))
    ds.add_column("jpeg", deeplake.types.Bytes())
    ds.add_column("boxes", deeplake.types.BoundingBox())
    ds.add_column("labels", deeplake.types.ClassLabel(deeplake.types.Array("uint32", dimensions=1)))
    ds.append({"jpeg": [encode_jpeg(r.image) for r in rows], "boxes": [r.boxes for r in rows],
               "labels": [r.labels for r in rows]})
    ds.commit()
    sample = DeepLakeDetDataset(deeplake_path=str(tmp_path / "b"), deeplake_tensors={"img": "jpeg"},
                                pipeline=ZOO_PIPELINE[:1])[1]
    expected = cv2.imdecode(np.frombuffer(encode_jpeg(rows[1].image), np.uint8), cv2.IMREAD_COLOR)
    np.testing.assert_array_equal(sample["img"], expected)


def test_indices_filter_and_subsets_select_rows(shapes):
    path, rows = shapes
    plain = [dict(type="LoadImageFromFile")]
    assert [DeepLakeDetDataset(deeplake_path=path, pipeline=plain, indices=3)[i]["img_id"] for i in range(3)] == [0, 1, 2]
    picked = DeepLakeDetDataset(deeplake_path=path, pipeline=plain, indices=[5, 1])
    assert len(picked) == 2 and [picked[0]["img_id"], picked[1]["img_id"]] == [5, 1]
    filtered = DeepLakeDetDataset(deeplake_path=path, pipeline=plain, filter_cfg=dict(filter_empty_gt=True))
    kept = [filtered.get_data_info(i)["img_id"] for i in range(len(filtered))]
    assert kept == [i for i, r in enumerate(rows) if len(r.boxes)] and len(kept) < len(rows)
    subset = filtered.get_subset([0, -1])
    assert [subset[0]["img_id"], subset[1]["img_id"]] == [kept[0], kept[-1]] and len(filtered) == len(kept)
    filtered.get_subset_(-2)
    assert [filtered.get_data_info(i)["img_id"] for i in range(2)] == kept[-2:]
    with pytest.raises(ConfigError, match="indices='all'"):
        DeepLakeDetDataset(deeplake_path=path, pipeline=plain, indices="all")
