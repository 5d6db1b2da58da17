"""``lakedet export coco``: ingest -> export -> ingest is the identity; selections and other layouts."""

import json
import subprocess
import sys

import deeplake
import numpy as np
import pytest

from lakedet.errors import SourceError
from lakedet.tools.export import export_coco
from lakedet.tools.ingest import ingest_coco
from lakedet.source import SourceSpec
from lakedet.tools.synthetic import render_rows, write_dataset
from real_files import write_coco
from test_ingest import _assert_same_rows, _columns

pytestmark = pytest.mark.timeout(120)


def test_ingest_export_ingest_is_the_identity(tmp_path):
    original = write_coco(tmp_path)
    ingest_coco(tmp_path / "instances.json", tmp_path / "images", str(tmp_path / "ds"))
    out = subprocess.run([sys.executable, "-m", "lakedet", "export", "coco", str(tmp_path / "ds"), str(tmp_path / "out")],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "exported 4 images, 10 annotations" in out.stdout
    exported = json.loads((tmp_path / "out" / "annotations.json").read_text())
    for key in ("info", "licenses", "categories", "annotations"):
        assert exported[key] == original[key], key
    assert [dict(sorted(i.items())) for i in exported["images"]] == [dict(sorted(i.items())) for i in original["images"]]
    for image in original["images"]:
        assert (tmp_path / "out" / "images" / image["file_name"]).read_bytes() == \
            (tmp_path / "images" / image["file_name"]).read_bytes()
    ingest_coco(tmp_path / "out" / "annotations.json", tmp_path / "out" / "images", str(tmp_path / "again"))
    _assert_same_rows(_columns(str(tmp_path / "again")), _columns(str(tmp_path / "ds")))
    with pytest.raises(SourceError, match="annotations.json' exists.*--overwrite"):
        export_coco(SourceSpec(str(tmp_path / "ds")), tmp_path / "out")


def test_export_of_a_query_and_of_a_dataset_not_from_coco(tmp_path):
    from pycocotools.coco import COCO

    write_coco(tmp_path)
    ingest_coco(tmp_path / "instances.json", tmp_path / "images", str(tmp_path / "ds"))
    report = export_coco(SourceSpec(str(tmp_path / "ds"), query="SELECT * WHERE image_id == 37777"), tmp_path / "q")
    selected = json.loads((tmp_path / "q" / "annotations.json").read_text())
    assert report.images == 1 and [i["id"] for i in selected["images"]] == [37777]
    assert {a["image_id"] for a in selected["annotations"]} == {37777} and len(selected["annotations"]) == 6
    rows = render_rows(3, size=40, seed=2, max_objects=2)
    write_dataset(str(tmp_path / "plain"), rows, masks="polygon")
    export_coco(SourceSpec(str(tmp_path / "plain")), tmp_path / "p")
    coco = COCO(str(tmp_path / "p" / "annotations.json"))
    assert sorted(coco.getImgIds()) == [0, 1, 2] and [c["id"] for c in coco.dataset["categories"]] == [1, 2, 3]
    for row, r in enumerate(rows):
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[row]))
        np.testing.assert_allclose([a["bbox"] for a in anns], r.boxes, atol=1e-4)
        assert [a["category_id"] for a in anns] == (r.labels + 1).tolist()
        assert all(coco.annToMask(a).sum() > 0 for a in anns)
    assert len(deeplake.open_read_only(str(tmp_path / "plain"))) == 3
