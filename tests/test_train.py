import os

import deeplake
import pytest
import torch
from mmengine.config import Config

from conftest import CONFIG_DIR, dataset_hash
from lakedet import build_detector, train_detector
from lakedet.train import last_metrics
from lakedet.errors import ConfigError

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]


def tiny_config(train_path, val_path, work_dir):
    cfg = Config.fromfile(str(CONFIG_DIR / "tiny_retinanet.py"))
    cfg.train_dataloader.dataset.deeplake_path = train_path
    cfg.val_dataloader.dataset.deeplake_path = val_path
    cfg.work_dir = str(work_dir)
    return cfg


def test_two_iterations_train_and_validate_with_coco_metrics(shapes, shapes_val, tmp_path):
    before = dataset_hash(shapes[0]), dataset_hash(shapes_val[0])
    cfg = tiny_config(shapes[0], shapes_val[0], tmp_path / "work")
    model = build_detector(cfg.model)
    runner = train_detector(model, cfg, distributed=False, validate=True, timestamp="run1",
                            meta={"dataset": "shapes", "note": 42})
    metrics = last_metrics(runner)
    for key in ("coco/bbox_mAP", "coco/bbox_mAP_50", "coco/bbox_mAP_75"):
        assert 0 <= metrics[key] <= 1, metrics
    assert runner.iter == 2
    # the seed's timestamp names the log directory and file; meta lands in the checkpoint
    assert (tmp_path / "work" / "run1" / "run1.log").exists()
    checkpoint = torch.load(tmp_path / "work" / "iter_2.pth", map_location="cpu")  # weights_only default
    assert checkpoint["meta"]["note"] == 42 and checkpoint["meta"]["dataset"] == "shapes"
    assert (dataset_hash(shapes[0]), dataset_hash(shapes_val[0])) == before  # nothing written


def test_opened_views_and_mappings_override_the_config(shapes, shapes_val, tmp_path):
    cfg = tiny_config("/does/not/exist", "/does/not/exist/either", tmp_path / "work")
    train_view = deeplake.open_read_only(shapes[0]).query("SELECT * WHERE ROW_NUMBER() < 10")
    runner = train_detector(build_detector(cfg.model), cfg, ds_train=train_view,
                            ds_val=deeplake.open_read_only(shapes_val[0]),
                            ds_val_tensors={"img": "images", "gt_bboxes": "boxes", "gt_labels": "labels"},
                            validate=True)
    assert len(runner.train_dataloader.dataset) == 10
    assert runner.val_dataloader.dataset.tensor_map.gt_bboxes == "boxes"
    assert "coco/bbox_mAP" in last_metrics(runner)


def test_validate_false_skips_validation(shapes, tmp_path):
    cfg = tiny_config(shapes[0], "/nowhere", tmp_path / "work")
    runner = train_detector(build_detector(cfg.model), cfg, validate=False)
    assert runner.iter == 2 and last_metrics(runner) == {}


def test_distributed_without_launcher_environment_is_a_clear_error(shapes, tmp_path, monkeypatch):
    for var in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(var, raising=False)
    cfg = tiny_config(shapes[0], shapes[0], tmp_path)
    with pytest.raises(ConfigError, match="torchrun"):
        train_detector(None, cfg, distributed=True)
