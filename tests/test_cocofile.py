"""The streaming COCO scan: any key order and formatting, values split across blocks, UTF-8, bad files."""

import json

import numpy as np
import pytest

import lakedet.tools.cocofile as cocofile
from lakedet.tools.cocofile import scan_coco
from lakedet.errors import DataError

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize("indent", [None, 2])
def test_the_scan_indexes_every_entry_exactly(tmp_path, monkeypatch, indent):
    monkeypatch.setattr(cocofile, "BLOCK", 37)  # every value straddles blocks
    anns = [dict(id=10 + i, image_id=i % 3 + 1, category_id=3, bbox=[1.5, 2, 3e2, 4.25], area=12.5 if i else None,
                 iscrowd=i % 2, segmentation=[[1.5, 2, 3, 4, 5, 6.125]] if i % 2 == 0
                 else dict(size=[4, 5], counts="abc\\\\d"), **({"note": "ünï", "kind": "segmentation"} if i == 3 else {}))
            for i in range(8)]
    coco = dict(annotations=anns, info=dict(description="ünïcode ✓"),
                images=[dict(id=i, file_name=f"ïm_{i}.jpg", height=10, width=20) for i in (1, 2, 3)],
                categories=[dict(id=3, name="猫")], extra=[1, {"x": None}])
    path = tmp_path / "c.json"
    path.write_text(json.dumps(coco, indent=indent, ensure_ascii=False), encoding="utf-8")
    index = scan_coco(path)
    assert index.info == coco["info"] and index.categories == coco["categories"]
    assert index.other_keys == {"extra": coco["extra"]}
    assert index.image_names == [i["file_name"] for i in coco["images"]]
    assert index.read_many(index.image_spans) == coco["images"] and index.read_many(index.ann_spans) == anns
    assert index.ann_image_ids.tolist() == [a["image_id"] for a in anns]
    assert index.ann_boxes.tolist() == [a["bbox"] for a in anns] and np.isnan(index.ann_area[0])
    assert index.ann_crowd.tolist() == [bool(a["iscrowd"]) for a in anns]
    assert index.ann_extra.tolist() == [i == 3 for i in range(8)] and not index.ann_problems
    assert index.ann_parts.tolist() == [1, -1] * 4
    for k, ann in enumerate(anns):  # the file's text, compact
        text = index.segmentation_text(k)
        assert json.loads(text) == ann["segmentation"] and " " not in text
    index.close()


def test_bad_files_and_entries_are_named(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"images": [{"id": 1}, ')
    with pytest.raises(DataError, match=r"bad.json' is not valid COCO JSON: .* at byte"):
        scan_coco(path)
    path.write_text(json.dumps(dict(images=[], annotations=[dict(id=1, image_id=1, bbox=[1, 2]),
                                                            dict(id=2, image_id=1, bbox=[0, 0, 1, 1],
                                                                 segmentation={"counts": "x"})])))
    problems = scan_coco(path).ann_problems
    assert "bbox must be [x, y, width, height]" in problems[0] and "RLE segmentation needs 'size'" in problems[1]
