"""COCO and Pascal VOC ingestion: round trips, real-format files, bad input, bounded memory, resumed ingests."""

import json
import subprocess
import sys

import deeplake
import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils

import lakedet.tools.ingest as ingest_module
import lakedet.tools.progress as progress
from lakedet import DeepLakeDetDataset
from lakedet.errors import DataError
from lakedet.evaluation.metrics import DeepLakeCocoMetric
from lakedet.tools.ingest import ingest_coco, ingest_voc
from lakedet.tools.synthetic import SHAPE_CLASSES, encode_jpeg, render_rows
from real_files import VOC_OBJECTS, write_coco, write_voc

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def coco_set(tmp_path):
    """A COCO set with polygons, one crowd instance, an image without annotations, category ids 7/3/5."""
    rows = render_rows(6, size=64, seed=12, min_side=14, max_side=28, empty_every=4)
    (tmp_path / "img").mkdir()
    cat_ids = [7, 3, 5]  # label i -> category id; sorted ids give the class order square, triangle, circle
    images, anns = [], []
    for i, r in enumerate(rows):
        name = f"im_{i}.jpg"
        (tmp_path / "img" / name).write_bytes(encode_jpeg(r.image))
        images.append(dict(id=50 + i, file_name=name, width=64, height=64))
        for b, l, p in zip(r.boxes, r.labels, r.polygons):
            anns.append(dict(id=1000 + len(anns), image_id=50 + i, category_id=cat_ids[l], bbox=[float(v) for v in b],
                             area=float(b[2] * b[3]), iscrowd=int(len(anns) == 2),
                             segmentation=[p.reshape(-1).astype(float).tolist()]))
    coco = dict(images=images, annotations=anns,
                categories=[dict(id=c, name=SHAPE_CLASSES[i]) for i, c in enumerate(cat_ids)])
    (tmp_path / "ann.json").write_text(json.dumps(coco))
    return tmp_path, coco


def test_coco_round_trip_rows_bytes_and_ap(coco_set, tmp_path):
    root, coco = coco_set
    report = ingest_coco(root / "ann.json", root / "img", str(tmp_path / "ds"))
    assert report.images == 6 and report.instances == len(coco["annotations"]) and not report.skipped
    ds = deeplake.open_read_only(str(tmp_path / "ds"))
    classes = ds["labels"].metadata["class_names"]
    assert classes == ["square", "triangle", "circle"]  # category id order 3, 5, 7
    name_of = {c["id"]: c["name"] for c in coco["categories"]}
    for row, image in enumerate(coco["images"]):
        anns = [a for a in coco["annotations"] if a["image_id"] == image["id"]]
        assert ds["image_id"][row] == image["id"] and ds["file_name"][row] == image["file_name"]
        np.testing.assert_allclose(np.asarray(ds["boxes"][row]).reshape(-1, 4), [a["bbox"] for a in anns] or np.zeros((0, 4)))
        assert [classes[int(v)] for v in np.asarray(ds["labels"][row]).reshape(-1)] == [name_of[a["category_id"]] for a in anns]
        assert np.asarray(ds["iscrowd"][row]).reshape(-1).tolist() == [bool(a["iscrowd"]) for a in anns]
        assert json.loads(ds["segmentation"][row]) == [a["segmentation"] for a in anns]
        assert ds["images"].get_bytes(row) == (root / "img" / image["file_name"]).read_bytes()  # not re-encoded
    assert "lakedet ingest coco: 6 images" in list(ds.history)[-1].message
    # the ground truth, evaluated as predictions through lakedet, is perfect
    dataset = DeepLakeDetDataset(deeplake_path=str(tmp_path / "ds"), test_mode=True, pipeline=[
        dict(type="LoadImageFromFile"), dict(type="Resize", scale=(64, 64), keep_ratio=True),
        dict(type="PackDetInputs", meta_keys=("img_id", "img_path", "ori_shape", "img_shape", "scale_factor"))])
    assert dataset.tensor_map.gt_ignore == "iscrowd"
    metric = DeepLakeCocoMetric(metric=["bbox", "segm"])
    metric.dataset_meta = dataset.metainfo
    samples = []
    for i in range(len(dataset)):
        sample = dataset[i]["data_samples"].to_dict()
        instances = sample["instances"]
        masks = np.stack([mask_utils.decode(mask_utils.frPyObjects(inst["mask"], 64, 64)).max(-1) for inst in instances]) \
            if instances else np.zeros((0, 64, 64), np.uint8)
        sample["pred_instances"] = dict(bboxes=torch.tensor([inst["bbox"] for inst in instances]).reshape(-1, 4),
                                        labels=torch.tensor([inst["bbox_label"] for inst in instances], dtype=torch.long),
                                        scores=torch.ones(len(instances)), masks=torch.from_numpy(masks.astype(bool)))
        samples.append(sample)
    metric.process({}, samples)
    result = metric.evaluate(len(samples))
    assert result["coco/bbox_mAP"] == pytest.approx(1.0) and result["coco/segm_mAP"] == pytest.approx(1.0)


def test_malformed_coco_entries_are_named_or_skipped_and_counted(coco_set, tmp_path):
    root, coco = coco_set
    coco["annotations"][0]["category_id"] = 99
    coco["annotations"][1]["bbox"] = [60.0, 60.0, 20.0, 20.0]
    coco["images"].append(dict(id=999, file_name="missing.jpg", width=64, height=64))
    (root / "bad.json").write_text(json.dumps(coco))
    with pytest.raises(DataError, match=r"annotation id 1000 \(image id 50, 'im_0.jpg'\): unknown category_id 99"):
        ingest_coco(root / "bad.json", root / "img", str(tmp_path / "bad"))
    out = subprocess.run([sys.executable, "-m", "lakedet", "ingest", "coco", str(root / "bad.json"), str(root / "img"),
                          str(tmp_path / "skipped"), "--skip-bad"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "skipped 3 bad entries" in out.stdout and "missing.jpg" in out.stdout and "outside the 64x64 image" in out.stdout
    assert len(deeplake.open_read_only(str(tmp_path / "skipped"))) == 6


def _columns(path):
    """Every column of every row (image bytes as stored) and the labels / ids metadata."""
    ds = deeplake.open_read_only(path)
    values = {c.name: [ds[c.name].get_bytes(i) if c.dtype.kind.name == "Image" else ds[c.name][i]
                       for i in range(len(ds))] for c in ds.schema.columns}
    metadata = {c: {k: ds[c].metadata[k] for k in ds[c].metadata.keys()} for c in ("boxes", "labels", "image_id")}
    return values, metadata


def _assert_same_rows(a, b):
    assert a[1] == b[1] and a[0].keys() == b[0].keys()
    for column, values in a[0].items():
        assert len(values) == len(b[0][column]), column
        for row, (x, y) in enumerate(zip(values, b[0][column])):
            if isinstance(x, (bytes, str)):
                assert x == y, (column, row)
            else:
                np.testing.assert_array_equal(np.asarray(x), np.asarray(y), err_msg=f"{column} row {row}")


def test_default_ingest_keeps_every_annotation_of_a_real_coco_file(tmp_path):
    from pycocotools.coco import COCO

    coco = write_coco(tmp_path)
    report = ingest_coco(tmp_path / "instances.json", tmp_path / "images", str(tmp_path / "ds"))
    assert report.images == 4 and report.instances == len(coco["annotations"]) == 10 and not report.skipped
    ds = deeplake.open_read_only(str(tmp_path / "ds"))
    labels_meta = ds["labels"].metadata
    assert list(labels_meta["class_names"]) == ["person", "car", "dog", "dining table"]  # category id order
    assert [int(v) for v in labels_meta["category_ids"]] == [1, 3, 18, 67]
    assert json.loads(labels_meta["categories"]) == coco["categories"]
    assert json.loads(ds["image_id"].metadata["coco_info"]) == coco["info"]
    for row, image in enumerate(coco["images"]):  # the file's image order
        anns = [a for a in coco["annotations"] if a["image_id"] == image["id"]]
        assert int(ds["image_id"][row]) == image["id"] and ds["file_name"][row] == image["file_name"]
        assert (int(ds["height"][row]), int(ds["width"][row])) == (image["height"], image["width"])
        assert np.asarray(ds["boxes"][row]).reshape(-1, 4).tolist() == [a["bbox"] for a in anns]  # exactly
        assert np.asarray(ds["area"][row]).tolist() == [a["area"] for a in anns]
        assert np.asarray(ds["annotation_id"][row]).tolist() == [a["id"] for a in anns]
        assert np.asarray(ds["iscrowd"][row]).tolist() == [bool(a["iscrowd"]) for a in anns]
        assert [labels_meta["category_ids"][int(v)] for v in np.asarray(ds["labels"][row]).reshape(-1)] == \
            [a["category_id"] for a in anns]
        assert json.loads(ds["segmentation"][row]) == [a["segmentation"] for a in anns]
        assert ds["images"].get_bytes(row) == (tmp_path / "images" / image["file_name"]).read_bytes()
    extra = json.loads(ds["coco_extra"][1])
    assert extra["image"] == {"license": 1} and extra["annotations"][0] == {"attributes": {"occluded": True}}
    # every instance's mask, as the dataset delivers it through MMDetection's LoadAnnotations,
    # equals pycocotools' decoding of the original file (polygons, 3-part polygon, both RLE kinds)
    truth = COCO(str(tmp_path / "instances.json"))
    dataset = DeepLakeDetDataset(deeplake_path=str(tmp_path / "ds"), test_mode=True, pipeline=[
        dict(type="LoadImageFromFile"), dict(type="LoadAnnotations", with_bbox=True, with_mask=True)])
    assert dataset.tensor_map.gt_masks == "segmentation" and dataset.tensor_map.gt_ignore == "iscrowd"
    checked = 0
    for row, image in enumerate(coco["images"]):
        sample = dataset[row]
        anns = truth.loadAnns(truth.getAnnIds(imgIds=[image["id"]]))
        assert len(sample["gt_masks"]) == len(anns)
        for mask, ann in zip(sample["gt_masks"].masks, anns):
            np.testing.assert_array_equal(mask, truth.annToMask(ann))
            checked += 1
        assert sample["gt_ignore_flags"].tolist() == [bool(a["iscrowd"]) for a in anns]
    assert checked == 10


def test_explicit_mask_layouts(tmp_path):
    from pycocotools.coco import COCO

    write_coco(tmp_path, degenerate=False)
    with pytest.raises(DataError, match=r"annotation id 900107 \(image id 397133.*segmentation is 3 polygons; a "
                                        r"Polygon column holds one polygon per instance: use --masks coco"):
        ingest_coco(tmp_path / "instances.json", tmp_path / "images", str(tmp_path / "p"), masks="polygon")
    assert not deeplake.exists(str(tmp_path / "p"))  # checked before anything is written
    ingest_coco(tmp_path / "instances.json", tmp_path / "images", str(tmp_path / "b"), masks="binary")
    ingest_coco(tmp_path / "instances.json", tmp_path / "images", str(tmp_path / "n"), masks="none")
    binary, truth = deeplake.open_read_only(str(tmp_path / "b")), COCO(str(tmp_path / "instances.json"))
    for row, image_id in enumerate(truth.getImgIds()):
        expected = [truth.annToMask(a) for a in truth.loadAnns(truth.getAnnIds(imgIds=[image_id]))]
        masks = np.asarray(binary["masks"][row])
        assert masks.shape[-1] == len(expected)
        for k, mask in enumerate(expected):
            np.testing.assert_array_equal(masks[:, :, k], mask.astype(bool))
    assert "segmentation" not in [c.name for c in deeplake.open_read_only(str(tmp_path / "n")).schema.columns]


def test_ingest_holds_a_bounded_number_of_rows(tmp_path, monkeypatch):
    """Rows are built and appended a batch at a time and committed every CHECKPOINT_ROWS: what
    Deep Lake holds uncommitted, and what lakedet holds built, never exceeds those bounds; the
    annotation file is never parsed whole."""
    rows = render_rows(11, size=32, seed=3, max_objects=2)
    (tmp_path / "img").mkdir()
    images, anns = [], []
    for i, r in enumerate(rows):
        (tmp_path / "img" / f"{i}.jpg").write_bytes(encode_jpeg(r.image))
        images.append(dict(id=i + 1, file_name=f"{i}.jpg", width=32, height=32))
        for b, p in zip(r.boxes, r.polygons):
            anns.append(dict(id=len(anns) + 1, image_id=i + 1, category_id=1, bbox=[float(v) for v in b], area=1.0,
                             iscrowd=0, segmentation=[p.reshape(-1).astype(float).tolist()]))
    (tmp_path / "ann.json").write_text(json.dumps(dict(images=images, annotations=anns,
                                                       categories=[dict(id=1, name="shape")])))
    monkeypatch.setattr(ingest_module, "BATCH", 3)
    monkeypatch.setattr(ingest_module, "CHECKPOINT_ROWS", 4)
    monkeypatch.setattr(json, "load", lambda *a, **k: pytest.fail("the annotation file was parsed whole"))
    built, appended, pending, worst = [0], [0], [0], dict(built=0, pending=0, append=0)
    real_row, real_append, real_commit = ingest_module._coco_row, deeplake.Dataset.append, deeplake.Dataset.commit

    def row(*args):
        built[0] += 1
        worst["built"] = max(worst["built"], built[0] - appended[0])
        return real_row(*args)

    def append(self, data):
        size = len(next(iter(data.values())))
        appended[0] += size
        pending[0] += size
        worst["append"], worst["pending"] = max(worst["append"], size), max(worst["pending"], pending[0])
        return real_append(self, data)

    def commit(self, *args, **kwargs):
        pending[0] = 0
        return real_commit(self, *args, **kwargs)

    monkeypatch.setattr(ingest_module, "_coco_row", row)
    monkeypatch.setattr(deeplake.Dataset, "append", append)
    monkeypatch.setattr(deeplake.Dataset, "commit", commit)
    ingest_coco(tmp_path / "ann.json", tmp_path / "img", str(tmp_path / "ds"))
    assert appended[0] == built[0] == 11
    assert worst == dict(built=3, append=3, pending=6)  # 3 + 3 rows, then a checkpoint commit
    assert len(deeplake.open_read_only(str(tmp_path / "ds"))) == 11


def test_a_stopped_ingest_resumes_where_it_stopped(tmp_path, monkeypatch, capsys):
    write_coco(tmp_path)
    ann, images, dest = tmp_path / "instances.json", tmp_path / "images", str(tmp_path / "ds")
    ingest_coco(ann, images, str(tmp_path / "clean"))
    monkeypatch.setattr(ingest_module, "BATCH", 1)
    monkeypatch.setattr(ingest_module, "CHECKPOINT_ROWS", 2)
    real_append = deeplake.Dataset.append
    calls = {"n": 0}

    def failing_append(self, data):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt("stopped")
        return real_append(self, data)

    monkeypatch.setattr(deeplake.Dataset, "append", failing_append)
    with pytest.raises(KeyboardInterrupt):
        ingest_coco(ann, images, dest)
    assert "stopped with 2 of 4 images committed" in capsys.readouterr().err
    monkeypatch.setattr(deeplake.Dataset, "append", real_append)
    assert len(deeplake.open_read_only(dest)) == 2  # the third row was rolled back, not auto-committed
    with pytest.raises(DataError, match="interrupted `lakedet ingest`"):
        DeepLakeDetDataset(deeplake_path=dest)
    report = ingest_coco(ann, images, dest)
    assert report.resumed_at == 2 and report.images == 4
    _assert_same_rows(_columns(dest), _columns(str(tmp_path / "clean")))
    messages = [v.message for v in deeplake.open_read_only(dest).history]
    assert messages[-1].startswith("lakedet ingest coco: 4 images, 10 instances")
    with pytest.raises(Exception, match="already holds a dataset.*--overwrite"):
        ingest_coco(ann, images, dest)
    # an interrupted ingest of another file (or other options) starts over instead
    marked = deeplake.open(dest)
    marked.metadata["lakedet_ingest"] = "in-progress"
    marked.commit("pretend it stopped")
    del marked
    assert ingest_coco(ann, images, dest, masks="binary").resumed_at == 0
    # a process killed before its first commit leaves an empty dataset without columns: started over
    deeplake.delete(dest)
    deeplake.create(dest)
    assert ingest_coco(ann, images, dest).images == 4


def test_voc_boxes_and_difficult_as_mmdetection_reads_them(tmp_path):
    voc = write_voc(tmp_path)
    report = ingest_voc(voc, str(tmp_path / "ds"), split="trainval")
    ds = deeplake.open_read_only(str(tmp_path / "ds"))
    classes = list(ds["labels"].metadata["class_names"])
    assert classes[7] == "cat" and len(classes) == 20 and report.images == 4 and report.instances == 6
    assert ds["boxes"].metadata["coords"] == {"mode": "LTRB", "type": "pixel"}
    for row, (stem, (width, height, objects)) in enumerate(VOC_OBJECTS.items()):
        expected = [[int(float(v)) - 1 for v in o[2:]] for o in objects]  # XMLDataset, minus_one=True
        assert np.asarray(ds["boxes"][row]).reshape(-1, 4).tolist() == expected
        assert [classes[int(v)] for v in np.asarray(ds["labels"][row]).reshape(-1)] == [o[0] for o in objects]
        assert np.asarray(ds["difficult"][row]).tolist() == [bool(o[1]) for o in objects]
        assert (int(ds["height"][row]), int(ds["width"][row])) == (height, width)
        assert ds["images"].get_bytes(row) == (voc / "JPEGImages" / f"{stem}.jpg").read_bytes()
    dataset = DeepLakeDetDataset(deeplake_path=str(tmp_path / "ds"), pipeline=[
        dict(type="LoadImageFromFile"), dict(type="LoadAnnotations"), dict(type="PackDetInputs")])
    assert dataset.tensor_map.gt_ignore == "difficult"
    assert len(dataset[0]["data_samples"].ignored_instances) == 1  # difficult -> ignored
    with pytest.raises(Exception, match="no split file.*trainval"):
        ingest_voc(voc, str(tmp_path / "ds2"), split="test")


@pytest.mark.remote
def test_coco_ingest_to_s3_and_train_reading_it_back(coco_set, s3_server, tmp_path):
    root, coco = coco_set
    creds = [f"{k}={v}" for k, v in s3_server.items()]
    out = subprocess.run([sys.executable, "-m", "lakedet", "ingest", "coco", str(root / "ann.json"), str(root / "img"),
                          "s3://lakedet/coco-ingest", "--creds", *creds], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    dataset = DeepLakeDetDataset(deeplake_path="s3://lakedet/coco-ingest", deeplake_credentials={"creds": s3_server},
                                 pipeline=[dict(type="LoadImageFromFile"), dict(type="LoadAnnotations")])
    assert len(dataset) == 6 and dataset.metainfo["classes"] == ("square", "triangle", "circle")
    assert dataset.opened["images"].get_bytes(1) == (root / "img" / "im_1.jpg").read_bytes()
    first = [a["bbox"] for a in coco["annotations"] if a["image_id"] == 50]
    np.testing.assert_allclose(dataset[0]["gt_bboxes"].tensor.numpy()[:, :2], np.asarray(first)[:, :2])


def test_progress_bar_shows_rate_and_time_left(monkeypatch):
    import io

    clock = iter([100.0, 102.0, 104.0])
    monkeypatch.setattr(progress.time, "monotonic", lambda: next(clock))
    out = io.StringIO()
    bar = progress.ProgressBar(stream=out)
    bar(0, 10)
    bar(5, 10)  # 5 images in 2 s
    assert out.getvalue().endswith("5/10 images, 2.5 images/s, ETA 00:02")
    bar(10, 10)
    assert out.getvalue().endswith("10/10 images, 2.5 images/s, ETA 00:00\n")
