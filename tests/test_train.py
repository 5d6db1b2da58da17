import json
import os

import deeplake
import pytest
import torch
from mmengine.config import Config

from conftest import CONFIG_DIR, dataset_hash
from lakedet import build_detector, train_detector
from lakedet.engine.runner import last_metrics
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


def test_opened_views_and_mappings_override_the_config(shapes, tmp_path):
    from lakedet.tools.synthetic import make_shapes_dataset

    val, _ = make_shapes_dataset(str(tmp_path / "val"), 4, size=64, seed=31)
    val.add_column("other_boxes", deeplake.types.BoundingBox())  # two box columns: inference cannot choose
    val.commit("a second box column")
    cfg = tiny_config("/does/not/exist", "/does/not/exist/either", tmp_path / "work")
    train_view = deeplake.open_read_only(shapes[0]).query("SELECT * WHERE ROW_NUMBER() < 10")
    with pytest.raises(Exception, match="cannot infer 'gt_bboxes'"):
        train_detector(build_detector(cfg.model), cfg, ds_train=train_view, ds_val=deeplake.open_read_only(str(tmp_path / "val")))
    runner = train_detector(build_detector(cfg.model), cfg, ds_train=train_view,
                            ds_val=deeplake.open_read_only(str(tmp_path / "val")),
                            ds_val_tensors={"img": "images", "gt_bboxes": "boxes", "gt_labels": "labels"},
                            validate=True)
    assert len(runner.train_dataloader.dataset) == 10
    assert runner.val_dataloader.dataset.tensor_map.gt_bboxes == "boxes"
    assert "coco/bbox_mAP" in last_metrics(runner)
    assert "/does/not/exist" not in repr(runner.train_dataloader.dataset)  # the object, not the config path


def test_validate_false_skips_validation(shapes, tmp_path):
    cfg = tiny_config(shapes[0], "/nowhere", tmp_path / "work")
    runner = train_detector(build_detector(cfg.model), cfg, validate=False)
    assert runner.iter == 2 and last_metrics(runner) == {}


def test_distributed_without_launcher_on_cpu_needs_a_stated_rank_count(shapes, tmp_path, monkeypatch):
    """From a plain process train_detector spawns the ranks (tests/test_distributed.py); on a machine
    without CUDA it cannot tell how many."""
    for var in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    cfg = tiny_config(shapes[0], shapes[0], tmp_path)
    with pytest.raises(ConfigError, match=r"state the number of CPU ranks.*nprocs=2.*torchrun"):
        train_detector(None, cfg, distributed=True)


from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module(force=True)
class RecordBatchesHook(Hook):
    """Records what the model is fed: batch sizes and the rows (img_id) of every training batch."""

    batches: list = []

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        RecordBatchesHook.batches.append([s.img_id for s in data_batch["data_samples"]])


def seed_style_config(train_path, val_path, work_dir, **train_keys):
    cfg = Config.fromfile(str(CONFIG_DIR / "tiny_seed_style.py"))
    cfg.data.train.deeplake_path = train_path
    cfg.data.val.deeplake_path = val_path
    cfg.data.train.update(train_keys)
    cfg.work_dir = str(work_dir)
    cfg.custom_hooks = [dict(type="RecordBatchesHook")]
    RecordBatchesHook.batches = []
    return cfg


def test_seed_style_batch_size_and_shuffle_reach_the_model(shapes, shapes_val, tmp_path):
    cfg = seed_style_config(shapes[0], shapes_val[0], tmp_path,
                            deeplake_dataloader={"shuffle": False, "batch_size": 3, "num_workers": 0})
    runner = train_detector(build_detector(cfg.model), cfg)
    assert RecordBatchesHook.batches == [[0, 1, 2], [3, 4, 5]]  # batch_size 3, no shuffle: rows in order
    assert "coco/bbox_mAP" in last_metrics(runner)
    cfg = seed_style_config(shapes[0], shapes_val[0], tmp_path / "shuffled",
                            deeplake_dataloader={"shuffle": True, "batch_size": 4, "num_workers": 0})
    train_detector(build_detector(cfg.model), cfg, validate=False)
    assert [len(b) for b in RecordBatchesHook.batches] == [4, 4]
    assert RecordBatchesHook.batches[0] != [0, 1, 2, 3]


def test_seed_style_commit_view_and_query_select_the_training_rows(tmp_path, shapes_val):
    from lakedet.tools.synthetic import make_shapes_dataset

    path = str(tmp_path / "versioned")
    ds, _ = make_shapes_dataset(path, 5, size=64, seed=7)
    first = ds.version
    more, _ = make_shapes_dataset(str(tmp_path / "more"), 5, size=64, seed=8)
    ds.append({c: more[c][:] if c != "images" else [more["images"].get_bytes(i) for i in range(5)]
               for c in ("images", "boxes", "labels")})
    ds.commit("five more rows")
    ds.query("SELECT * WHERE ROW_NUMBER() >= 6").tag("last_four")
    before = dataset_hash(path)
    for keys, rows in (({"deeplake_commit_id": first}, 5), ({"deeplake_commit": first}, 5),
                       ({"deeplake_view_id": "last_four"}, 4),
                       ({"deeplake_query": "SELECT * WHERE ROW_NUMBER() < 3"}, 3), ({}, 10)):
        cfg = seed_style_config(path, shapes_val[0], tmp_path / "w", **keys)
        cfg.data.train.deeplake_dataloader = {"shuffle": False, "batch_size": 2, "num_workers": 0}
        runner = train_detector(build_detector(cfg.model), cfg, validate=False)
        assert len(runner.train_dataloader.dataset) == rows, keys
        # lineage.json records exactly which data trained the model
        lineage = json.loads((tmp_path / "w" / "lineage.json").read_text())["latest"]
        train = lineage["splits"]["train"][0]
        assert train["url"] == path and train["rows"] == rows and train["branch"] == "main"
        assert train["commit"] == (first if "deeplake_commit_id" in keys or "deeplake_commit" in keys
                                   else ds.version)
        assert train["view"] == keys.get("deeplake_view_id") and train["query"] == keys.get("deeplake_query")
        assert train["tensors"]["gt_bboxes"] == "boxes" and lineage["versions"]["mmdet"] == "3.3.0"
    assert dataset_hash(path) == before  # nothing above wrote to the dataset


def test_pascal_voc_metrics_format_gives_pascal_voc_map(shapes, shapes_val, tmp_path):
    cfg = seed_style_config(shapes[0], shapes_val[0], tmp_path)
    cfg.deeplake_metrics_format = "PascalVOC"
    cfg.evaluation = dict(metric=["mAP"], interval=2)
    runner = train_detector(build_detector(cfg.model), cfg)
    metrics = last_metrics(runner)
    assert "pascal_voc/mAP" in metrics and "coco/bbox_mAP" not in metrics
    assert 0 <= metrics["pascal_voc/mAP"] <= 1


def test_meta_cannot_replace_mmengines_own_checkpoint_keys(shapes, tmp_path):
    cfg = tiny_config(shapes[0], shapes[0], tmp_path)
    with pytest.raises(ConfigError, match=r"meta\['epoch'\]"):
        train_detector(build_detector(cfg.model), cfg, meta={"epoch": 3})


def test_a_built_model_follows_the_2x_pipelines_normalize(shapes, shapes_val, tmp_path):
    """The seed builds the model before train_detector translates Normalize into the preprocessor."""
    from lakedet.engine.runner import build_runner

    cfg = seed_style_config(shapes[0], shapes_val[0], tmp_path)
    model = build_detector(cfg.model)  # the base config's mean/std
    for step in cfg.data.train.pipeline + cfg.data.val.pipeline[1]["transforms"]:
        if step["type"] == "Normalize":
            step.update(mean=[1.0, 2.0, 3.0], std=[4.0, 5.0, 6.0])
    build_runner(cfg, model=model)
    assert model.data_preprocessor.mean.flatten().tolist() == [1.0, 2.0, 3.0]
    assert model.data_preprocessor.std.flatten().tolist() == [4.0, 5.0, 6.0]


def test_evaluated_deeplake_datasets_run_in_test_mode(shapes, shapes_val, tmp_path):
    """A val split written without test_mode=True still evaluates (its samples carry the ground truth)."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner

    from lakedet.engine.hooks import prepare_dataloader

    init_default_scope("mmdet")
    filtered = dict(filter_empty_gt=True)  # shapes has empty rows: filtered when training, kept when evaluated
    pipeline = [dict(type="LoadImageFromFile"), dict(type="PackDetInputs")]
    loader = Runner.build_dataloader(dict(batch_size=2, sampler=dict(type="DefaultSampler", shuffle=False), dataset=dict(
        type="ConcatDataset", datasets=[
            dict(type="DeepLakeDetDataset", deeplake_path=shapes[0], filter_cfg=filtered, pipeline=pipeline),
            dict(type="DeepLakeDetDataset", deeplake_path=shapes_val[0], pipeline=pipeline)])))
    assert not any(d.test_mode for d in loader.dataset.datasets) and len(loader.dataset.datasets[0]) == 20
    assert len(loader.dataset) == 28
    prepare_dataloader(loader, "val")
    assert all(d.test_mode for d in loader.dataset.datasets) and len(loader.dataset.datasets[0]) == 24
    assert len(loader.dataset) == 32 and len(loader.sampler) == 32  # the wrapper counted its rows again
    assert all("instances" in sample["data_samples"].metainfo for sample in loader.dataset.datasets[0].__getitems__([0, 1]))
    e2e = Config.fromfile(str(CONFIG_DIR / "tiny_retinanet.py"))
    e2e.train_dataloader.dataset.deeplake_path = shapes[0]
    e2e.val_dataloader.dataset.deeplake_path = shapes_val[0]
    e2e.val_dataloader.dataset.test_mode = False
    e2e.work_dir = str(tmp_path)
    from lakedet import build_detector, train_detector
    from lakedet.engine.runner import last_metrics

    runner = train_detector(build_detector(e2e.model), e2e, validate=True)
    assert 0 <= last_metrics(runner)["coco/bbox_mAP"] <= 1


@pytest.mark.slow
def test_run_hooks_are_installed_whatever_the_priority_of_the_hook_that_installs_them(shapes_val, tmp_path):
    """mmengine walks its hook list as it is; lakedet's run hooks still run before the run when the
    RuntimeInfoHook that installs them is given the lowest priority, and a config without
    default_scope gets MMDetection's (where the stand-ins are)."""
    from mmengine.config import Config

    from lakedet.engine.runner import build_runner

    cfg = Config.fromfile(str(CONFIG_DIR / "tiny_retinanet.py"))
    cfg.test_dataloader.dataset.deeplake_path = shapes_val[0]
    cfg.default_hooks.runtime_info = dict(type="RuntimeInfoHook", priority="LOWEST")
    cfg.pop("default_scope")
    cfg.work_dir = str(tmp_path)
    runner = build_runner(cfg, training=False)
    assert runner.cfg.default_scope == "mmdet"
    runner.test()
    log = next(tmp_path.rglob("*.log")).read_text()
    assert "hooks added: DeepLakeRunHook" in log
    assert "test_dataloader samples with ShardedRowSampler" in log  # DeepLakeRunHook.before_run ran
    assert (tmp_path / "lineage.json").exists()
