"""COCO and Pascal VOC ingestion round trips, bad input, and interrupted ingests."""

import json
import subprocess
import sys

import deeplake
import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils

import lakedet.ingest as ingest_module
from lakedet import DeepLakeDetDataset
from lakedet.errors import DataError
from lakedet.evaluation import DeepLakeCocoMetric
from lakedet.ingest import ingest_coco, ingest_voc
from lakedet.synthetic import SHAPE_CLASSES, encode_jpeg, render_rows

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
        for polygon, a in zip(ds["polygons"][row], anns):
            np.testing.assert_allclose(np.asarray(polygon).reshape(-1), a["segmentation"][0], atol=1e-4)
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


def test_an_interrupted_ingest_leaves_no_commit_and_a_rerun_finishes(coco_set, tmp_path, monkeypatch):
    root, coco = coco_set
    dest = str(tmp_path / "ds")
    monkeypatch.setattr(ingest_module, "_BATCH", 2)
    calls = {"n": 0}
    real_append = deeplake.Dataset.append

    def failing_append(self, data):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt("interrupted")
        return real_append(self, data)

    monkeypatch.setattr(deeplake.Dataset, "append", failing_append)
    with pytest.raises(KeyboardInterrupt):
        ingest_coco(root / "ann.json", root / "img", dest)
    assert not deeplake.exists(dest)  # what was written is gone, nothing half-ingested to read
    monkeypatch.setattr(deeplake.Dataset, "append", real_append)
    # data auto-committed while marked in-progress is refused by readers
    marked = ingest_module._start(dest, None, False)
    marked.add_column("images", deeplake.types.Image(sample_compression="jpeg"))
    marked.metadata["lakedet_ingest"] = "in-progress"
    marked.commit("what an auto commit of a failed ingest would hold")
    del marked
    with pytest.raises(DataError, match="interrupted `lakedet ingest`"):
        DeepLakeDetDataset(deeplake_path=dest)
    ingest_coco(root / "ann.json", root / "img", dest)  # and the next ingest starts it over
    # a process killed outright leaves an empty dataset without columns: the next ingest starts over
    deeplake.delete(dest)
    deeplake.create(dest)
    ingest_coco(root / "ann.json", root / "img", dest)
    finished = deeplake.open_read_only(dest)
    assert len(finished) == 6
    assert [v.message for v in finished.history][1:] == [list(finished.history)[-1].message]  # one commit
    with pytest.raises(Exception, match="already holds a dataset.*--overwrite"):
        ingest_coco(root / "ann.json", root / "img", dest)


def _write_voc(root, rows):
    for sub in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (root / sub).mkdir(parents=True)
    names = ("cat", "dog", "person")
    stems = []
    for i, r in enumerate(rows):
        stem = f"2007_{i:06d}"
        stems.append(stem)
        (root / "JPEGImages" / f"{stem}.jpg").write_bytes(encode_jpeg(r.image))
        objects = "".join(
            f"<object><name>{names[l]}</name><difficult>{int(k == 0 and i == 1)}</difficult><bndbox>"
            f"<xmin>{b[0]:.0f}</xmin><ymin>{b[1]:.0f}</ymin><xmax>{b[0] + b[2]:.0f}</xmax><ymax>{b[1] + b[3]:.0f}</ymax>"
            "</bndbox></object>" for k, (b, l) in enumerate(zip(r.boxes, r.labels)))
        (root / "Annotations" / f"{stem}.xml").write_text(
            f"<annotation><size><width>64</width><height>64</height><depth>3</depth></size>{objects}</annotation>")
    (root / "ImageSets" / "Main" / "trainval.txt").write_text("\n".join(stems) + "\n")
    return stems


def test_voc_round_trip_with_difficult(tmp_path):
    rows = render_rows(4, size=64, seed=13, min_side=14, max_side=28)
    for r in rows:
        r.boxes = np.round(r.boxes)
    stems = _write_voc(tmp_path / "VOC2007", rows)
    report = ingest_voc(tmp_path / "VOC2007", str(tmp_path / "ds"), split="trainval")
    ds = deeplake.open_read_only(str(tmp_path / "ds"))
    classes = list(ds["labels"].metadata["class_names"])
    assert classes[7] == "cat" and len(classes) == 20 and report.images == 4
    for row, (r, stem) in enumerate(zip(rows, stems)):
        np.testing.assert_allclose(np.asarray(ds["boxes"][row]).reshape(-1, 4), r.boxes)
        assert [classes[int(v)] for v in np.asarray(ds["labels"][row]).reshape(-1)] == \
            [("cat", "dog", "person")[l] for l in r.labels]
        assert ds["images"].get_bytes(row) == (tmp_path / "VOC2007" / "JPEGImages" / f"{stem}.jpg").read_bytes()
    assert np.asarray(ds["iscrowd"][1]).reshape(-1)[0] and not np.asarray(ds["iscrowd"][0]).any()
    dataset = DeepLakeDetDataset(deeplake_path=str(tmp_path / "ds"), pipeline=[
        dict(type="LoadImageFromFile"), dict(type="LoadAnnotations"), dict(type="PackDetInputs")])
    assert len(dataset[1]["data_samples"].ignored_instances) == 1  # difficult -> ignored
    with pytest.raises(Exception, match="no split file.*trainval"):
        ingest_voc(tmp_path / "VOC2007", str(tmp_path / "ds2"), split="test")


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
    assert dataset._ds["images"].get_bytes(1) == (root / "img" / "im_1.jpg").read_bytes()
    first = [a["bbox"] for a in coco["annotations"] if a["image_id"] == 50]
    np.testing.assert_allclose(dataset[0]["gt_bboxes"].tensor.numpy()[:, :2], np.asarray(first)[:, :2])
