"""Deep Lake 3 datasets read in place (``lakedet.source.deeplake3``) and converted (``lakedet convert``).

The fixtures were written by Deep Lake 3.9.52 itself (``tests/data/make_deeplake3.py``), and
``deeplake3_expected.json`` holds what Deep Lake 3 reads back from each selection: every check
here compares lakedet's reading (through Deep Lake 4) with Deep Lake 3's own, row for row.
The committed fixtures are copied once per module; the copies' bytes are checked unchanged at the
end (nothing lakedet does may write into a v3 folder).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import CONFIG_DIR, upload_folder

pytestmark = [pytest.mark.timeout(300)]

DATA = Path(__file__).parent / "data"
EXPECTED = json.loads((DATA / "deeplake3_expected.json").read_text())
COCO = EXPECTED["coco"]
COMMITS = COCO["commits"]


def folder_hash(path: Path) -> dict:
    """Every file under ``path`` (relative name -> SHA-256): new, changed and removed files all show."""
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def v3(tmp_path_factory):
    """Copies of the committed v3 fixtures: ``{"coco": path, "shapes": path}``, and their hashes."""
    root = tmp_path_factory.mktemp("v3")
    paths = {}
    for name in ("coco", "shapes"):
        paths[name] = root / f"deeplake3_{name}"
        shutil.copytree(DATA / f"deeplake3_{name}", paths[name])
    hashes = {name: folder_hash(p) for name, p in paths.items()}
    originals = {name: folder_hash(DATA / f"deeplake3_{name}") for name in paths}
    yield {name: str(p) for name, p in paths.items()}
    # after every test of the module: not one byte of the v3 folders changed
    assert {name: folder_hash(p) for name, p in paths.items()} == hashes
    assert {name: folder_hash(DATA / f"deeplake3_{name}") for name in paths} == originals


def dataset(path, **keys):
    from lakedet.data.dataset import DeepLakeDetDataset

    return DeepLakeDetDataset(deeplake_path=path, test_mode=True, pipeline=[], **keys)


def ltwh_to_xyxy(boxes):
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    return np.concatenate([b[:, :2], b[:, :2] + b[:, 2:]], 1)


SELECTIONS = [("default", {}), (COMMITS[0], {"deeplake_commit_id": COMMITS[0]}),
              (COMMITS[1], {"deeplake_commit_id": COMMITS[1]}), ("relabel", {"deeplake_commit_id": "relabel"}),
              ("view:first_rows", {"deeplake_view_id": "first_rows"}), ("view:dogs", {"deeplake_view_id": "dogs"}),
              ("view:dogs+query", {"deeplake_view_id": "dogs", "deeplake_query": EXPECTED["view_query"]})]


@pytest.mark.parametrize("name,keys", SELECTIONS, ids=[s[0][:12] for s in SELECTIONS])
def test_rows_are_those_deeplake3_wrote(v3, name, keys):
    """Boxes, labels, crowd flags, masks and stored JPEG bytes of every row, as Deep Lake 3 reads them."""
    from pycocotools import mask as mask_utils

    expected = COCO["selections"][name]
    ds = dataset(v3["coco"], **keys)
    assert len(ds) == len(expected["rows"])
    for i in range(len(ds)):
        info = ds.raw_sample(i)  # the row's stored image and masks, as the pipeline gets them
        instances = info["instances"]
        assert np.allclose([x["bbox"] for x in instances] or np.zeros((0, 4)), ltwh_to_xyxy(expected["boxes"][i]))
        assert [x["bbox_label"] for x in instances] == expected["labels"][i]
        assert [x["ignore_flag"] for x in instances] == expected["iscrowd"][i]  # iscrowd, inferred as gt_ignore
        assert hashlib.md5(bytes(info["img_bytes"])).hexdigest() == expected["image_md5"][i]
        areas = [int(mask_utils.area(x["mask"])) for x in instances]
        assert areas == expected["mask_pixels"][i]
    assert ds.metainfo["classes"] == tuple(COCO["classes"])
    lineage = ds.lineage()
    assert lineage["format"] == "deeplake3" and lineage["view"] == keys.get("deeplake_view_id")
    if name.startswith("view:"):  # read at the version the view was saved at
        info = json.loads((Path(v3["coco"]) / "queries.json").read_text())
        saved = {v["id"]: v["source-dataset-version"] for v in info}
        assert lineage["commit"] == saved[keys["deeplake_view_id"]] and lineage["head"] is False
    elif name in COMMITS:
        assert lineage["commit"] == name and lineage["head"] is False
    else:  # a branch, or no ref: the branch's HEAD, uncommitted changes included (as in Deep Lake 3)
        heads = json.loads((Path(v3["coco"]) / "version_control_info.json").read_text())["branches"]
        assert lineage["commit"] == heads[lineage["branch"]] and lineage["head"] is True


def test_fractional_ccwh_boxes_polygons_and_a_grayscale_row(v3):
    """The shapes fixture through the pipeline: fractional CCWH boxes in pixels, polygons as masks;
    the grayscale row of the coco fixture decodes to 3 channels."""
    from lakedet.data.dataset import DeepLakeDetDataset
    from lakedet.source import SourceSpec, open_source

    expected = EXPECTED["shapes"]["selections"]["default"]
    view = open_source(SourceSpec(v3["shapes"]))
    polygons = view["polygons"]
    for i in range(len(view)):
        assert [np.asarray(p).round(4).tolist() for p in polygons[i]] == expected["polygons"][i]
    del polygons
    pipeline = [dict(type="LoadImageFromFile"), dict(type="LoadAnnotations", with_bbox=True, with_mask=True)]
    ds = DeepLakeDetDataset(deeplake_path=v3["shapes"], pipeline=pipeline)
    assert ds.box_format.mode.value == "CCWH" and ds.box_format.fractional
    for i in range(len(ds)):
        sample = ds[i]
        h, w = expected["image_shapes"][i][:2]
        cx, cy, bw, bh = np.asarray(expected["boxes"][i]).T * np.array([[w], [h], [w], [h]])
        xyxy = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], 1)
        assert np.allclose(sample["gt_bboxes"].tensor.numpy(), xyxy, atol=1e-3)
        assert sample["gt_bboxes_labels"].tolist() == expected["labels"][i]
        assert len(sample["gt_masks"]) == len(expected["polygons"][i])
    coco = DeepLakeDetDataset(deeplake_path=v3["coco"], pipeline=[dict(type="LoadImageFromFile")])
    gray = [i for i, shape in enumerate(COCO["selections"]["default"]["image_shapes"]) if shape[-1] == 1]
    assert gray and coco[gray[0]]["img"].shape == (48, 64, 3)


def test_unknown_commit_and_view_list_what_exists(v3):
    from lakedet.errors import SourceError

    with pytest.raises(SourceError) as err:
        dataset(v3["coco"], deeplake_commit_id="0123abc")
    text = str(err.value)
    assert "deeplake_commit_id='0123abc'" in text and "['main', 'relabel']" in text and COMMITS[1] in text
    assert "first_rows" in text and "dogs" in text
    with pytest.raises(SourceError) as err:
        dataset(v3["coco"], deeplake_view_id="dgos")
    assert "deeplake_view_id='dgos'" in str(err.value) and "['first_rows', 'dogs']" in str(err.value)
    assert "did you mean 'dogs'" in str(err.value)
    # no way into <path>/versions/<id> (Deep Lake 4 can hang there) or out of .queries/
    with pytest.raises(SourceError, match=f"deeplake_commit_id='{COMMITS[0]}'"):
        dataset(f"{v3['coco']}/versions/{COMMITS[0]}")
    with pytest.raises(SourceError, match="deeplake_view_id='dogs'"):
        dataset(f"{v3['coco']}/.queries/dogs")
    for bad in ("../versions/" + COMMITS[0], "x\" OR \"y"):
        with pytest.raises(SourceError, match="no such commit"):
            dataset(v3["coco"], deeplake_commit_id=bad)
        with pytest.raises(SourceError, match="no saved view"):
            dataset(v3["coco"], deeplake_view_id=bad)


def test_views_pickle_as_queries_and_fork_workers_read_them(v3):
    """A DataLoader with fork workers reads the v3 view; pickled (spawn), the dataset reopens it."""
    import pickle

    import torch

    ds = dataset(v3["coco"], deeplake_view_id="dogs")
    clone = pickle.loads(pickle.dumps(ds))
    assert clone.opened is None and clone[0]["img_id"] == ds[0]["img_id"] and len(clone.opened) == 4
    loader = torch.utils.data.DataLoader(ds, batch_size=2, num_workers=1, collate_fn=list,
                                         multiprocessing_context="fork")
    rows = [sample["img_id"] for batch in loader for sample in batch]
    assert rows == [0, 1, 2, 3]


def test_inspect_and_show_read_v3_in_place(v3, tmp_path, capsys):
    from lakedet.cli import main

    assert main(["inspect", v3["coco"], "--commit", COMMITS[0]]) == 0
    out = capsys.readouterr().out
    assert "(6 rows)" in out and "first 6 rows" in out and "4 more rows" in out  # v3 history listed
    assert main(["show", v3["coco"], "--view", "dogs", "--rows", "0:2", "--out", str(tmp_path / "g.png")]) == 0
    assert (tmp_path / "g.png").stat().st_size > 0
    assert main(["show", v3["coco"], "--branch", "relabel", "--rows", "10", "--out", str(tmp_path / "b.png")]) == 0
    assert main(["show", v3["coco"], "--branch", "nope", "--out", str(tmp_path / "n.png")]) == 2
    assert "deeplake_commit_id='nope'" in capsys.readouterr().err
    assert main(["export", "coco", v3["coco"], str(tmp_path / "export"), "--view", "first_rows"]) == 0
    exported = json.loads((tmp_path / "export" / "annotations.json").read_text())
    assert len(exported["images"]) == 3 and [c["name"] for c in exported["categories"]] == COCO["classes"]


def test_mask_rcnn_trains_and_evaluates_on_v3_data(v3, tmp_path):
    """``lakedet train`` on the v3 HEAD (uncommitted rows included), validated on a saved view;
    ``lakedet eval`` on a commit; lineage.json says what was read."""
    from lakedet.cli import main

    options = [f"train_dataloader.dataset.deeplake_path={v3['coco']}",
               f"val_dataloader.dataset.deeplake_path={v3['coco']}", "val_dataloader.dataset.deeplake_view_id=dogs",
               "train_cfg.max_iters=1", "train_cfg.val_interval=1", "default_hooks.checkpoint.interval=1"]
    assert main(["train", str(CONFIG_DIR / "tiny_mask_rcnn.py"), "--work-dir", str(tmp_path), "--cfg-options",
                 *options]) == 0
    lineage = json.loads((tmp_path / "lineage.json").read_text())["latest"]["splits"]
    assert lineage["train"][0]["format"] == "deeplake3" and lineage["train"][0]["rows"] == 12
    assert lineage["train"][0]["head"] is True and lineage["val"][0]["view"] == "dogs"
    assert main(["eval", str(CONFIG_DIR / "tiny_mask_rcnn.py"), str(tmp_path / "iter_1.pth"), "--work-dir",
                 str(tmp_path / "eval"), "--commit", COMMITS[0], "--cfg-options",
                 f"test_dataloader.dataset.deeplake_path={v3['coco']}"]) == 0
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())["metrics"]
    assert "coco/bbox_mAP" in metrics and "coco/segm_mAP" in metrics


def test_retinanet_trains_and_evaluates_on_v3_through_train_detector(v3, tmp_path):
    """The seed's API (``train_detector``) on fractional CCWH boxes written by Deep Lake 3."""
    from mmengine.config import Config

    from lakedet import build_detector, train_detector
    from lakedet.engine.runner import last_metrics

    cfg = Config.fromfile(str(CONFIG_DIR / "tiny_retinanet.py"))
    cfg.train_dataloader.dataset.deeplake_path = v3["shapes"]
    cfg.val_dataloader.dataset.deeplake_path = v3["shapes"]
    cfg.train_cfg.max_iters, cfg.train_cfg.val_interval = 1, 1
    cfg.default_hooks.checkpoint.interval = 1
    cfg.work_dir = str(tmp_path)
    runner = train_detector(build_detector(cfg.model), cfg, validate=True)
    assert "coco/bbox_mAP" in last_metrics(runner)
    assert len(runner.train_dataloader.dataset) == 8
    lineage = json.loads((tmp_path / "lineage.json").read_text())["latest"]["splits"]
    assert lineage["train"][0]["format"] == "deeplake3"
    import deeplake

    from lakedet.data.dataset import DeepLakeDetDataset

    opened = deeplake.query(f'SELECT * FROM "{v3["coco"]}@relabel"')  # a view the caller queried
    given = DeepLakeDetDataset(deeplake_dataset=opened, pipeline=[])
    assert len(given) == 11 and given.lineage()["format"] == "deeplake3" and given.lineage()["commit"] == "relabel"


def _rows(ds):
    """Every row of a lakedet dataset as plain values: boxes, labels, crowd flags, image bytes, mask areas."""
    from pycocotools import mask as mask_utils

    out = []
    for i in range(len(ds)):
        info = ds.raw_sample(i)
        out.append(([x["bbox"] for x in info["instances"]], [x["bbox_label"] for x in info["instances"]],
                    [x["ignore_flag"] for x in info["instances"]], bytes(info["img_bytes"]),
                    [int(mask_utils.area(x["mask"])) for x in info["instances"]]))
    return out


def test_convert_keeps_samples_views_and_the_v3_source(v3, tmp_path, capsys):
    """`lakedet convert` (default ref: main's latest commit, not the uncommitted HEAD): the same samples,
    the saved views as tags of the same rows, and the v3 source in the commit message and metadata."""
    import deeplake

    from lakedet.cli import main

    dest = tmp_path / "coco-v4"
    assert main(["convert", v3["coco"], str(dest)]) == 0
    out = capsys.readouterr().out
    assert "saved view 'dogs': 4 rows -> tag 'dogs'" in out and "done in" in out  # progress shown
    assert sorted(p.name for p in tmp_path.iterdir()) == ["coco-v4"]  # no temporary folder left
    converted = deeplake.open_read_only(str(dest))
    assert len(converted) == 10 and sorted(converted.tags.names()) == ["dogs", "first_rows"]
    assert _rows(dataset(str(dest))) == _rows(dataset(v3["coco"], deeplake_commit_id=COMMITS[1]))
    expected = COCO["selections"]["view:dogs"]
    dogs = dataset(str(dest), deeplake_view_id="dogs")
    assert [x[1] for x in _rows(dogs)] == expected["labels"]
    assert [hashlib.md5(x[3]).hexdigest() for x in _rows(dogs)] == expected["image_md5"]
    assert len(converted.tags["first_rows"].open()) == 3
    record = converted.metadata["deeplake3_source"]
    assert record["path"] == v3["coco"] and record["commit"] == COMMITS[1] and record["branch"] == "main"
    assert record["head"] is False and record["views"]["first_rows"]["saved_at"] == COMMITS[0]
    assert COMMITS[1] in converted.history[converted.version].message and v3["coco"] in converted.history[
        converted.version].message
    assert converted["deeplake3_row"][:].tolist() == list(range(10))
    # HEAD on request, a branch's latest commit; and what needs a v4 dataset works on the copy
    assert main(["convert", v3["coco"], str(tmp_path / "head"), "--ref", "HEAD"]) == 0
    assert len(deeplake.open_read_only(str(tmp_path / "head"))) == 12
    assert main(["convert", v3["coco"], str(tmp_path / "relabel"), "--ref", "relabel"]) == 0
    relabel = deeplake.open_read_only(str(tmp_path / "relabel"))
    assert len(relabel) == 11 and relabel.metadata["deeplake3_source"]["commit"] == COCO["branch_commit"]
    # the first commit has 6 rows: the view saved at commit 2 (rows up to 7) cannot be kept, and says so
    assert main(["convert", v3["coco"], str(tmp_path / "first"), "--ref", COMMITS[0]]) == 0
    assert "saved view 'dogs' not kept: saved at commit" in capsys.readouterr().out
    first = deeplake.open_read_only(str(tmp_path / "first"))
    assert list(first.tags.names()) == ["first_rows"] and "dogs" in first.metadata["deeplake3_source"]["skipped_views"]


def test_convert_errors_and_an_interrupted_conversion_leaves_nothing(v3, tmp_path, capsys, monkeypatch):
    import deeplake

    from lakedet.cli import main

    (tmp_path / "taken").mkdir()
    assert main(["convert", v3["coco"], str(tmp_path / "taken")]) == 2
    err = capsys.readouterr().err
    assert f"DEST={str(tmp_path / 'taken')!r} already exists" in err
    assert main(["convert", v3["coco"], str(tmp_path / "x"), "--ref", "nope"]) == 2
    err = capsys.readouterr().err
    assert "--ref 'nope'" in err and "['main', 'relabel']" in err and not (tmp_path / "x").exists()
    assert main(["convert", v3["coco"], v3["coco"] + "/inside"]) == 2
    assert "never written to" in capsys.readouterr().err
    assert main(["convert", str(tmp_path / "taken"), str(tmp_path / "y")]) == 2
    assert "is not a Deep Lake 3 dataset" in capsys.readouterr().err
    real = deeplake.convert

    def interrupted(src, dst, **kwargs):
        real(src, dst, **kwargs)
        raise KeyboardInterrupt  # after the data, before views and the final commit

    monkeypatch.setattr(deeplake, "convert", interrupted)
    with pytest.raises(KeyboardInterrupt):
        main(["convert", v3["coco"], str(tmp_path / "half")])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]  # neither DEST nor its temporary sibling


def test_predict_on_v3_explains_the_conversion(v3, tmp_path, capsys):
    """predict / errors stop with the conversion to run; ingest and export refuse a v3 folder as DEST / OUT
    (deeplake.exists() is False there, and deeplake.create would hide the v3 data)."""
    from lakedet.cli import main

    coco = tmp_path / "coco.json"
    coco.write_text(json.dumps({"images": [], "annotations": [], "categories": [{"id": 1, "name": "a"}]}))
    assert main(["ingest", "coco", str(coco), str(tmp_path), v3["coco"], "--overwrite"]) == 2
    assert f"DEST={v3['coco']!r} holds a Deep Lake 3 dataset" in capsys.readouterr().err
    assert main(["export", "coco", v3["shapes"], v3["coco"]]) == 2
    assert f"OUT={v3['coco']!r} holds a Deep Lake 3 dataset" in capsys.readouterr().err

    assert main(["predict", str(CONFIG_DIR / "tiny_retinanet.py"), str(tmp_path / "none.pth"), v3["coco"],
                 "--branch", "b"]) == 2
    err = capsys.readouterr().err
    assert "is a Deep Lake 3 dataset" in err and f"lakedet convert {v3['coco']} {v3['coco']}-v4" in err


@pytest.fixture(scope="module")
def v3_on_s3(s3_server):
    """The coco fixture's files uploaded to ``s3://lakedet/deeplake3-coco`` (moto), as Deep Lake 3 wrote them."""
    url, objects = upload_folder(s3_server, DATA / "deeplake3_coco", "deeplake3-coco")
    return url, s3_server, objects


@pytest.mark.remote
def test_v3_on_s3_reads_in_place_with_creds(v3_on_s3):
    url, creds, objects = v3_on_s3
    before = objects()
    expected = COCO["selections"]["view:dogs"]
    ds = dataset(url, deeplake_credentials={"creds": creds}, deeplake_view_id="dogs")
    assert ds.is_remote and [[x["bbox_label"] for x in ds.get_data_info(i)["instances"]]
                             for i in range(len(ds))] == expected["labels"]
    assert [hashlib.md5(bytes(ds.raw_sample(i)["img_bytes"])).hexdigest()
            for i in range(len(ds))] == expected["image_md5"]
    assert ds.lineage()["format"] == "deeplake3" and ds.lineage()["commit"] == COMMITS[1]
    from lakedet.errors import SourceError

    with pytest.raises(SourceError, match=r"deeplake_commit_id='nope'.*\['main', 'relabel'\]"):
        dataset(url, deeplake_credentials={"creds": creds}, deeplake_commit_id="nope")
    assert objects() == before  # nothing written to the bucket


@pytest.mark.remote
def test_v3_on_s3_that_stops_answering_fails_within_the_bounds(v3_on_s3):
    import os
    import subprocess
    import sys

    url, creds, _ = v3_on_s3
    env = dict(os.environ, LAKEDET_OPEN_TIMEOUT="3")
    out = subprocess.run([sys.executable, str(Path(__file__).parent / "v3_stalls.py"), url, creds["endpoint_url"],
                          json.dumps(creds)], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["read_before"] > 0
    assert result["read"].startswith("ReadTimeout") and url in result["read"] and result["read_s"] < 10
    assert result["open"].startswith("SourceTimeout") and url in result["open"] and result["open_s"] < 15


@pytest.mark.remote
def test_convert_reads_a_v3_dataset_on_s3_with_the_given_creds(v3_on_s3, tmp_path, monkeypatch):
    import deeplake

    from lakedet.tools.convert import convert_deeplake3

    url, creds, objects = v3_on_s3
    before = objects()
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    report = convert_deeplake3(url, str(tmp_path / "from-s3"), creds=creds, progress=None)
    assert report.rows == 10 and report.views == {"first_rows": 3, "dogs": 4}
    assert len(deeplake.open_read_only(str(tmp_path / "from-s3"))) == 10
    assert "AWS_ACCESS_KEY_ID" not in __import__("os").environ  # lent for the conversion only
    assert objects() == before


@pytest.mark.remote
def test_v3_on_s3_has_the_local_storage_layout_even_with_empty_chunk_set_files(v3_on_s3, v3):
    """The ``relabel`` HEAD changed no image: its ``images/chunk_set`` is empty, which S3 answers
    with 416 to Deep Lake's ranged read; the layout is still read (the same as the local one)."""
    url, creds, _ = v3_on_s3
    empty = Path(v3["coco"]) / "versions" / COCO["branch_commit"]
    heads = json.loads((Path(v3["coco"]) / "version_control_info.json").read_text())["branches"]
    assert (Path(v3["coco"]) / "versions" / heads["relabel"] / "images" / "chunk_set").read_bytes() == b""
    assert empty.is_dir()
    remote = dataset(url, deeplake_credentials={"creds": creds}, deeplake_commit_id="relabel").reader.layout
    local = dataset(v3["coco"], deeplake_commit_id="relabel").reader.layout
    assert remote is not None and remote.bounds.tolist() == local.bounds.tolist() == [0, 6, 10, 11]
    assert remote.names == local.names and remote.stable == local.stable
