"""The COCO-scale benchmark's own parts (``benchmarks/scale.py``): its data generator claims COCO
train2017's statistics, and its memory probe sees what processes hold."""

import multiprocessing
import time

import numpy as np
import pytest

from conftest import benchmark_module

pytestmark = pytest.mark.timeout(120)

scale = benchmark_module("scale")


def test_the_class_table_is_coco_train2017s():
    ids = [c[0] for c in scale.COCO_CLASSES]
    assert len(ids) == 80 and len(set(c[1] for c in scale.COCO_CLASSES)) == 80
    assert ids == sorted(ids) and ids[-1] == 90  # ids with COCO's gaps
    assert set(range(1, 91)) - set(ids) == {12, 26, 29, 30, 45, 66, 68, 69, 71, 83}
    assert 850_000 <= sum(c[2] for c in scale.COCO_CLASSES) <= 870_000  # COCO train2017: ~860k instances


def test_generated_annotations_have_cocos_statistics():
    from pycocotools import mask as mask_utils

    coco = scale.coco_annotations(2000, seed=3)
    anns = coco["annotations"]
    assert [c["id"] for c in coco["categories"]] == [c[0] for c in scale.COCO_CLASSES]
    per_image = len(anns) / len(coco["images"])
    assert abs(per_image - scale.INSTANCES_PER_IMAGE) < 0.3
    # per-class frequencies within 1 % (percentage points) of COCO's
    index = {c[0]: k for k, c in enumerate(scale.COCO_CLASSES)}
    shares = np.bincount([index[a["category_id"]] for a in anns], minlength=80) / len(anns)
    assert np.abs(shares - scale.class_shares()).max() < 0.01
    crowd = [a for a in anns if a["iscrowd"]]
    assert abs(len(crowd) / len(anns) - scale.CROWD_SHARE) < 0.005
    assert all(isinstance(a["segmentation"], dict) for a in crowd)  # crowd regions: uncompressed RLE
    assert all(isinstance(a["segmentation"], list) and len(a["segmentation"][0]) >= 16 for a in anns if not a["iscrowd"])
    for a in crowd[:20]:  # the RLE decodes to the mask whose area the annotation states
        rle = mask_utils.frPyObjects(a["segmentation"], scale.HEIGHT, scale.WIDTH)
        assert mask_utils.area(rle) == a["area"] > 0
    for a in anns[:200]:
        x, y, w, h = a["bbox"]
        assert w >= 1 and h >= 1 and x + w <= scale.WIDTH and y + h <= scale.HEIGHT and 0 < a["area"] <= w * h


def _hold(megabytes, ready, done):
    block = np.ones(megabytes * 2**20, dtype=np.uint8)  # written: resident and private
    ready.set()
    done.wait(30)
    return block


def test_the_memory_probe_sees_a_worker_that_allocates_100_mb():
    context = multiprocessing.get_context("fork")
    workers = []
    for megabytes in (100, 0):
        ready, done = context.Event(), context.Event()
        process = context.Process(target=_hold, args=(megabytes, ready, done))
        process.start()
        workers.append((process, ready, done))
    try:
        for _, ready, _ in workers:
            assert ready.wait(30)
        with scale.MemoryProbe(interval=0.05) as probe:
            time.sleep(0.3)
        big, small = (probe.peak[p.pid] for p, _, _ in workers)
        assert big["uss"] >= 100 and big["pss"] >= 100
        assert small["uss"] < 50 and big["uss"] - small["uss"] >= 95
        now = scale.memory(workers[0][0].pid)
        assert now["rss"] >= now["pss"] >= now["uss"] >= 100
    finally:
        for process, _, done in workers:
            done.set()
            process.join(10)
