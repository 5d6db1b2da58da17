import copy
import logging

import pytest
from mmengine.config import Config

from lakedet.config.translate import is_2x_config, translate_config, translate_pipeline
from lakedet.errors import ConfigError

pytestmark = pytest.mark.timeout(60)

IMG_NORM = dict(mean=[1, 2, 3], std=[4, 5, 6], to_rgb=True)


def seed_style(**overrides):
    """A minimal seed-style config (no _base_): data section plus top-level deeplake keys."""
    cfg = dict(
        model=dict(type="RetinaNet"),
        train_cfg=dict(type="EpochBasedTrainLoop", max_epochs=12, val_interval=1),
        data=dict(
            samples_per_gpu=3, workers_per_gpu=1,
            train=dict(deeplake_path="/data/train", pipeline=[
                dict(type="LoadImageFromFile"), dict(type="LoadAnnotations", with_bbox=True),
                dict(type="Resize", img_scale=[(320, 320), (416, 416)], keep_ratio=True),
                dict(type="RandomFlip", flip_ratio=0.5), dict(type="Normalize", **IMG_NORM),
                dict(type="Pad", size_divisor=32), dict(type="DefaultFormatBundle"),
                dict(type="Collect", keys=["img", "gt_bboxes", "gt_labels"])]),
            val=dict(deeplake_path="/data/val", pipeline=[
                dict(type="LoadImageFromFile"),
                dict(type="MultiScaleFlipAug", img_scale=(416, 416), flip=False, transforms=[
                    dict(type="Resize", keep_ratio=True), dict(type="RandomFlip", flip_ratio=0.0),
                    dict(type="Normalize", **IMG_NORM), dict(type="Pad", size_divisor=32),
                    dict(type="ImageToTensor", keys=["img"]), dict(type="Collect", keys=["img"])])])),
    )
    cfg.update(overrides)
    return Config(cfg)


def test_detects_2x_configs():
    assert is_2x_config(seed_style())
    assert not is_2x_config(Config(dict(train_dataloader=dict())))


def test_data_section_becomes_dataloaders_with_translated_pipelines():
    out = translate_config(seed_style())
    train = out.train_dataloader
    assert train.batch_size == 3 and train.num_workers == 1 and train.sampler.shuffle is True
    assert train.dataset.type == "DeepLakeDetDataset" and train.dataset.deeplake_path == "/data/train"
    assert [t["type"] for t in train.dataset.pipeline] == [
        "LoadImageFromFile", "LoadAnnotations", "RandomResize", "RandomFlip", "PackDetInputs"]
    assert train.dataset.pipeline[2]["scale"] == [(320, 320), (416, 416)]
    assert train.dataset.pipeline[3]["prob"] == 0.5
    val = out.val_dataloader
    assert val.batch_size == 1 and val.sampler.shuffle is False and val.dataset.test_mode is True
    assert [t["type"] for t in val.dataset.pipeline] == ["LoadImageFromFile", "Resize", "LoadAnnotations", "PackDetInputs"]
    assert val.dataset.pipeline[1]["scale"] == (416, 416) and "scale_factor" in val.dataset.pipeline[-1]["meta_keys"]
    assert out.test_dataloader.dataset.deeplake_path == "/data/val"
    pre = out.model.data_preprocessor
    assert pre.mean == [1, 2, 3] and pre.std == [4, 5, 6] and pre.bgr_to_rgb is True and pre.pad_size_divisor == 32
    assert "data" not in out


def test_resize_sampling_semantics_are_kept():
    model = {}
    assert translate_pipeline([dict(type="Resize", img_scale=[(100, 100), (200, 200)], multiscale_mode="value")],
                              "p", model, loads=False) == [
        dict(type="RandomChoiceResize", scales=[(100, 100), (200, 200)], keep_ratio=True)]
    assert translate_pipeline([dict(type="Resize", img_scale=(100, 50), ratio_range=(0.5, 2.0), keep_ratio=False)],
                              "p", model, loads=False) == [
        dict(type="RandomResize", scale=(100, 50), ratio_range=(0.5, 2.0), keep_ratio=False)]
    assert translate_pipeline([dict(type="Resize", img_scale=(100, 50))], "p", model, loads=False) == [
        dict(type="Resize", scale=(100, 50), keep_ratio=True)]
    kept = [dict(type="Expand", mean=[0, 0, 0], to_rgb=True, ratio_range=(1, 2)), dict(type="PhotoMetricDistortion")]
    assert translate_pipeline(kept, "p", model, loads=False) == kept


def test_untranslatable_transforms_and_keys_are_errors_naming_them():
    with pytest.raises(ConfigError, match=r"data.train.pipeline\[2\].*'RandomFlop'.*did you mean 'RandomFlip'"):
        translate_config(seed_style(data=dict(train=dict(deeplake_path="x", pipeline=[
            dict(type="LoadImageFromFile"), dict(type="LoadAnnotations"), dict(type="RandomFlop")]))))
    with pytest.raises(ConfigError, match="MultiScaleFlipAug.*TestTimeAug"):
        translate_pipeline([dict(type="MultiScaleFlipAug", img_scale=[(1, 1), (2, 2)], transforms=[])], "p", {})
    with pytest.raises(ConfigError, match="momentum_config"):
        translate_config(seed_style(momentum_config=dict(policy="cyclic")))
    with pytest.raises(ConfigError, match="data.train.ann_file"):
        translate_config(seed_style(data=dict(train=dict(deeplake_path="x", ann_file="a.json"))))


def test_unknown_deeplake_keys_get_did_you_mean():
    with pytest.raises(ConfigError, match="'deeplake_tensor'.*did you mean 'deeplake_tensors'"):
        translate_config(seed_style(data=dict(train=dict(deeplake_path="x", deeplake_tensor={}))))
    with pytest.raises(ConfigError, match="'deeplake_metric_format'.*did you mean 'deeplake_metrics_format'"):
        translate_config(seed_style(deeplake_metric_format="COCO"))
    with pytest.raises(ConfigError, match="'batchsize'.*did you mean 'batch_size'"):
        translate_config(seed_style(data=dict(train=dict(deeplake_path="x", deeplake_dataloader={"batchsize": 2}))))


def test_deeplake_dataloader_wins_over_samples_per_gpu():
    cfg = seed_style()
    cfg.data.train.deeplake_dataloader = {"shuffle": False, "batch_size": 5, "num_workers": 0}
    out = translate_config(cfg)
    loader = out.train_dataloader
    assert (loader.batch_size, loader.num_workers, loader.sampler.shuffle, loader.persistent_workers) == (5, 0, False, False)
    with pytest.raises(ConfigError, match=r"\['batch_size'\]=0"):
        cfg.data.train.deeplake_dataloader = {"batch_size": 0}
        translate_config(cfg)


@pytest.mark.parametrize("value,routed", [("c++", "cpp"), ("cpp", "cpp"), ("python", "python"), ("auto", "auto"),
                                          (None, "auto")])
def test_dataloader_type_is_validated_and_routed_to_the_datasets(value, routed):
    out = translate_config(seed_style(deeplake_dataloader_type=value))
    assert out.train_dataloader.dataset.deeplake_dataloader_type == routed
    assert out.val_dataloader.dataset.deeplake_dataloader_type == routed


def test_bad_dataloader_type_and_metrics_format_are_errors():
    with pytest.raises(ConfigError, match="deeplake_dataloader_type='rust'.*'c\\+\\+'"):
        translate_config(seed_style(deeplake_dataloader_type="rust"))
    with pytest.raises(ConfigError, match="deeplake_metrics_format='VOC'.*PascalVOC"):
        translate_config(seed_style(deeplake_metrics_format="VOC"))


def test_evaluation_and_metrics_format_choose_the_evaluator_and_interval():
    out = translate_config(seed_style(evaluation=dict(metric=["bbox", "segm"], interval=3)))
    assert out.val_evaluator == dict(type="DeepLakeCocoMetric", metric=["bbox", "segm"])
    assert out.train_cfg.val_interval == 3
    voc = translate_config(seed_style(deeplake_metrics_format="PascalVOC", evaluation=dict(metric="mAP", interval=1)))
    assert voc.val_evaluator.type == "DeepLakeVOCMetric" and voc.val_evaluator.eval_mode == "11points"
    both = translate_config(seed_style(deeplake_metrics_format="PascalVOC",
                                       evaluation=dict(metric=["mAP", "recall"], eval_mode="area")))
    assert [(e["metric"], e["eval_mode"]) for e in both.val_evaluator] == [("mAP", "area"), ("recall", "area")]
    with pytest.raises(ConfigError, match="'bbbox'.*did you mean 'bbox'"):
        translate_config(seed_style(evaluation=dict(metric="bbbox")))


def test_schedule_keys_become_their_3x_equivalents():
    out = translate_config(seed_style(
        optimizer=dict(type="SGD", lr=0.01, momentum=0.9, weight_decay=1e-4),
        optimizer_config=dict(grad_clip=dict(max_norm=35, norm_type=2)),
        lr_config=dict(policy="step", warmup="linear", warmup_iters=100, warmup_ratio=0.001, step=[8, 11]),
        runner=dict(type="EpochBasedRunner", max_epochs=12),
        checkpoint_config=dict(interval=2), log_config=dict(interval=7, hooks=[dict(type="TextLoggerHook")]),
        workflow=[("train", 1)]))
    assert out.optim_wrapper == dict(type="OptimWrapper", optimizer=dict(type="SGD", lr=0.01, momentum=0.9,
                                     weight_decay=1e-4), clip_grad=dict(max_norm=35, norm_type=2))
    assert out.param_scheduler == [
        dict(type="LinearLR", start_factor=0.001, by_epoch=False, begin=0, end=100),
        dict(type="MultiStepLR", by_epoch=True, begin=0, end=12, milestones=[8, 11], gamma=0.1)]
    assert out.train_cfg.max_epochs == 12 and out.train_cfg.type == "EpochBasedTrainLoop"
    assert out.default_hooks.checkpoint.interval == 2 and out.default_hooks.logger.interval == 7
    for key in ("optimizer", "optimizer_config", "lr_config", "runner", "checkpoint_config", "log_config", "workflow"):
        assert key not in out
    iters = translate_config(seed_style(total_epochs=5))
    assert iters.train_cfg.max_epochs == 5
    by_iter = translate_config(seed_style(runner=dict(type="IterBasedRunner", max_iters=40)))
    assert by_iter.train_cfg.type == "IterBasedTrainLoop" and by_iter.train_cfg.max_iters == 40
    assert by_iter.default_hooks.checkpoint.by_epoch is False


def test_wrappers_and_lists_translate_their_inner_datasets():
    cfg = seed_style()
    inner = cfg.data.train
    cfg.data.train = dict(type="RepeatDataset", times=2, dataset=inner)
    out = translate_config(cfg)
    assert out.train_dataloader.dataset.type == "RepeatDataset" and out.train_dataloader.dataset.times == 2
    assert out.train_dataloader.dataset.dataset.type == "DeepLakeDetDataset"
    cfg.data.train = [inner, inner]
    out = translate_config(cfg)
    assert out.train_dataloader.dataset.type == "ConcatDataset" and len(out.train_dataloader.dataset.datasets) == 2


def test_empty_strings_are_unset_and_credentials_are_cleaned():
    cfg = seed_style()
    cfg.data.train.update(deeplake_commit_id="", deeplake_view_id="",
                          deeplake_credentials={"username": None, "password": None, "token": None, "creds": None})
    dataset = translate_config(cfg).train_dataloader.dataset
    assert "deeplake_commit_id" not in dataset and "deeplake_view_id" not in dataset
    assert dataset.deeplake_credentials == {}


def test_one_summary_of_the_changes_is_logged(caplog):
    with caplog.at_level(logging.INFO, logger="lakedet"):
        translate_config(seed_style())
    summaries = [r for r in caplog.records if "translated the 2.x-style config" in r.getMessage()]
    assert len(summaries) == 1
    text = summaries[0].getMessage()
    assert "data.train" in text and "RandomResize" in text and "data_preprocessor" in text


def test_without_data_val_the_base_configs_file_based_val_split_is_removed():
    cfg = seed_style(val_dataloader=dict(dataset=dict(type="CocoDataset", ann_file="instances_val2017.json")),
                     val_evaluator=dict(type="CocoMetric"), val_cfg=dict(type="ValLoop"))
    del cfg.data["val"]
    out = translate_config(cfg)
    assert "val_dataloader" not in out and "val_evaluator" not in out and "val_interval" not in out.train_cfg


def test_settings_the_translation_would_lose_are_errors():
    with pytest.raises(ConfigError, match="TensorboardLoggerHook"):
        translate_config(seed_style(log_config=dict(interval=5, hooks=[dict(type="TextLoggerHook"),
                                                                        dict(type="TensorboardLoggerHook")])))
    with pytest.raises(ConfigError, match="warmup_by_epoch"):
        translate_config(seed_style(lr_config=dict(policy="step", step=[1], warmup="linear", warmup_iters=2,
                                                   warmup_by_epoch=True)))
    with pytest.raises(ConfigError, match="scale_factor"):
        translate_pipeline([dict(type="MultiScaleFlipAug", scale_factor=1.0, transforms=[])], "p", {})


def test_normalize_must_agree_across_pipelines():
    cfg = seed_style()
    cfg.data.val.pipeline[1]["transforms"][2]["mean"] = [0, 0, 0]
    with pytest.raises(ConfigError, match=r"data.val.pipeline\[1\].*Normalize.*differs from data.train.pipeline\[4\]"):
        translate_config(cfg)


def test_per_split_dataloader_overrides_of_2x_are_translated():
    cfg = seed_style()
    cfg.data.update(train_dataloader=dict(shuffle=False, samples_per_gpu=5, workers_per_gpu=0, drop_last=True, dist=True),
                    val_dataloader=dict(samples_per_gpu=2, workers_per_gpu=3, seed=7),
                    test_dataloader=dict(class_aware_sampler=dict(num_sample_class=1)))
    cfg.data.test = copy.deepcopy(cfg.data.val)
    out = translate_config(cfg)
    train = out.train_dataloader
    assert (train.batch_size, train.num_workers, train.drop_last, train.persistent_workers) == (5, 0, True, False)
    assert train.sampler == dict(type="DefaultSampler", shuffle=False)
    val = out.val_dataloader
    assert (val.batch_size, val.num_workers, val.sampler.seed) == (2, 3, 7)
    assert out.test_dataloader.sampler == dict(type="ClassAwareSampler", num_sample_class=1)
    # the split's deeplake_dataloader is stronger than data.<split>_dataloader
    cfg.data.train.deeplake_dataloader = dict(batch_size=6, shuffle=True)
    train = translate_config(cfg).train_dataloader
    assert train.batch_size == 6 and train.sampler.shuffle is True and train.num_workers == 0


def test_bad_per_split_dataloader_keys_are_named():
    cfg = seed_style()
    cfg.data.train_dataloader = dict(shufle=False)
    with pytest.raises(ConfigError, match=r"data.train_dataloader: unknown key 'shufle' \(did you mean 'shuffle'\?\)"):
        translate_config(cfg)
    cfg.data.train_dataloader = dict(samples_per_gpu=0)
    with pytest.raises(ConfigError, match=r"data.train_dataloader\['samples_per_gpu'\]=0: expected an integer >= 1"):
        translate_config(cfg)
    cfg.data.train_dataloader = None
    cfg.data.val_dataloaders = {}
    with pytest.raises(ConfigError, match="data.val_dataloaders: unknown key.*did you mean 'val_dataloader'"):
        translate_config(cfg)


def test_splits_given_as_objects_need_no_path_and_a_pathless_test_split_is_dropped(caplog):
    cfg = seed_style()
    for split in ("train", "val"):
        del cfg.data[split]["deeplake_path"]
    cfg.data.test = copy.deepcopy(cfg.data.val)
    with pytest.raises(ConfigError, match=r"data.train.deeplake_path is missing.*ds_train"):
        translate_config(cfg)
    with caplog.at_level(logging.WARNING, logger="lakedet"):
        out = translate_config(cfg, given=("train", "val"))
    assert "deeplake_path" not in out.train_dataloader.dataset and "deeplake_path" not in out.val_dataloader.dataset
    assert "test_dataloader" not in out and "test_evaluator" not in out
    assert any("data.test has no deeplake_path" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="lakedet"):
        out = translate_config(cfg, given=("train",))
    assert "val_dataloader" not in out and "val_interval" not in out.train_cfg
    assert any("training runs without validation" in r.getMessage() for r in caplog.records)


def test_2x_seed_key_becomes_randomness_seed():
    assert translate_config(seed_style(seed=5)).randomness == dict(seed=5)
    out = translate_config(seed_style(seed=None))
    assert "seed" not in out and "randomness" not in out


def test_mixing_transforms_in_a_plain_pipeline_get_a_multi_image_mix_dataset():
    cfg = seed_style()
    cfg.data.train.pipeline = [dict(type="LoadImageFromFile"), dict(type="LoadAnnotations", with_bbox=True),
                               dict(type="Mosaic", img_scale=(64, 64)), dict(type="MixUp", img_scale=(64, 64)),
                               dict(type="DefaultFormatBundle"), dict(type="Collect", keys=["img"])]
    dataset = translate_config(cfg).train_dataloader.dataset
    assert dataset.type == "MultiImageMixDataset"
    assert [s["type"] for s in dataset.pipeline] == ["Mosaic", "MixUp", "PackDetInputs"]
    assert dataset.dataset.type == "DeepLakeDetDataset" and dataset.dataset.deeplake_path == "/data/train"
    assert [s["type"] for s in dataset.dataset.pipeline] == ["LoadImageFromFile", "LoadAnnotations"]


def test_cfg_options_on_3x_keys_are_applied_after_the_translation():
    from lakedet.config.translate import merge_options

    out = merge_options(seed_style(), {"data.train.deeplake_path": "/other/train", "train_dataloader.batch_size": 7,
                                       "train_dataloader.num_workers": 0, "runner": dict(type="EpochBasedRunner", max_epochs=3)})
    assert out.train_dataloader.dataset.deeplake_path == "/other/train"  # a 2.x key: before the translation
    assert out.train_dataloader.batch_size == 7 and out.train_dataloader.num_workers == 0  # 3.x keys: after it
    assert out.train_cfg.max_epochs == 3


def test_iteration_wise_lr_config_under_an_epoch_runner():
    step = translate_config(seed_style(runner=dict(type="EpochBasedRunner", max_epochs=4),
                                       lr_config=dict(policy="step", by_epoch=False, step=[100, 200])))
    assert step.param_scheduler == [dict(type="MultiStepLR", by_epoch=False, begin=0, milestones=[100, 200], gamma=0.1)]
    cosine = translate_config(seed_style(runner=dict(type="EpochBasedRunner", max_epochs=4),
                                         lr_config=dict(policy="CosineAnnealing", by_epoch=False, min_lr=1e-5)))
    assert cosine.param_scheduler == [dict(type="CosineAnnealingLR", by_epoch=True, convert_to_iter_based=True,
                                           begin=0, end=4, T_max=4, eta_min=1e-5)]
    from mmengine.optim.scheduler import CosineAnnealingLR, MultiStepLR  # noqa: F401  (they build: no end=None)
    import torch

    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    for scheduler in step.param_scheduler:
        MultiStepLR(optimizer, **{k: v for k, v in scheduler.items() if k != "type"})
    CosineAnnealingLR.build_iter_from_epoch(optimizer, **{k: v for k, v in cosine.param_scheduler[0].items()
                                                          if k not in ("type", "convert_to_iter_based")}, epoch_length=10)


def test_2x_voc_iou_thr_and_pad_values_are_translated():
    voc = translate_config(seed_style(deeplake_metrics_format="PascalVOC", evaluation=dict(metric="mAP", iou_thr=0.6)))
    assert voc.val_evaluator.iou_thrs == 0.6
    cfg = seed_style()
    cfg.data.train.pipeline[5] = dict(type="Pad", size_divisor=32, pad_val=dict(img=114, masks=0, seg=255))
    cfg.data.val.pipeline[1]["transforms"][3] = dict(type="Pad", size_divisor=32, pad_val=dict(img=114, masks=0, seg=255))
    pre = translate_config(cfg).model.data_preprocessor
    assert (pre.pad_size_divisor, pre.pad_value, pre.mask_pad_value, pre.seg_pad_value) == (32, 114, 0, 255)
    cfg.data.train.pipeline[5] = dict(type="Pad", size_divisor=32, pad_to_square=True)
    with pytest.raises(ConfigError, match=r"data.train.pipeline\[5\] \(Pad\): Pad\(pad_to_square=...\) has no translation"):
        translate_config(cfg)


def test_top_level_seed_keys_in_a_3x_config_are_honoured_or_refused(shapes, shapes_val):
    """What DeepLakeRunHook does before every run: the top-level keys checked, the loader type applied."""
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner

    from lakedet.engine.hooks import check_run_config, prepare_dataloader

    def native(**top):
        return Config(dict(train_dataloader=dict(dataset=dict(type="DeepLakeDetDataset", deeplake_path=shapes[0])),
                           val_dataloader=dict(dataset=dict(type="RepeatDataset", times=2, dataset=dict(
                               type="DeepLakeDetDataset", deeplake_path=shapes_val[0], deeplake_dataloader_type="cpp"))),
                           val_evaluator=dict(type="CocoMetric", ann_file="a.json"), **top))

    init_default_scope("mmdet")
    cfg = native(deeplake_dataloader_type="python")
    check_run_config(cfg)
    loaders = {split: Runner.build_dataloader(dict(cfg[f"{split}_dataloader"], batch_size=2,
                                                   sampler=dict(type="DefaultSampler", shuffle=False)))
               for split in ("train", "val")}
    for split, loader in loaders.items():
        prepare_dataloader(loader, split, cfg.deeplake_dataloader_type)
    assert loaders["train"].dataset.loader_type == "python"
    assert loaders["val"].dataset.dataset.loader_type == "cpp"  # its own setting wins
    check_run_config(native(deeplake_metrics_format="COCO"))
    with pytest.raises(ConfigError, match=r"deeplake_metrics_format='PascalVOC', but val_evaluator is CocoMetric.*VOCMetric"):
        check_run_config(native(deeplake_metrics_format="PascalVOC"))
    with pytest.raises(ConfigError, match=r"unknown key 'deeplake_path'.*belongs in a split.*argument of DeepLakeDetDataset"):
        check_run_config(native(deeplake_path="/x"))
    with pytest.raises(ConfigError, match="deeplake_dataloader_type='fast'"):
        prepare_dataloader(loaders["train"], "train", "fast")


def test_2x_classes_become_metainfo_from_a_list_or_a_file(tmp_path):
    names = tmp_path / "classes.txt"
    names.write_text("dog\ncat\n\n")
    for given in (["dog", "cat"], str(names)):
        out = translate_config(seed_style(data=dict(train=dict(deeplake_path="x", classes=given, pipeline=[]))))
        assert out.train_dataloader.dataset.metainfo == dict(classes=("dog", "cat"))
    with pytest.raises(ConfigError, match=r"data.train.classes = 'nope.txt': no such file"):
        translate_config(seed_style(data=dict(train=dict(deeplake_path="x", classes="nope.txt", pipeline=[]))))


def test_streaming_settings_of_a_split_reach_the_dataset_and_the_sampler():
    cfg = seed_style()
    cfg.data.train.update(deeplake_cache=dict(path="/tmp/cache", max_gb=2), deeplake_prefetch=0,
                          deeplake_dataloader=dict(order="chunks"))
    loader = translate_config(cfg).train_dataloader
    assert loader.dataset.deeplake_cache == dict(path="/tmp/cache", max_gb=2) and loader.dataset.deeplake_prefetch == 0
    assert loader.sampler == dict(type="DefaultSampler", shuffle=True, order="chunks")
