"""The repo's example configs: the seed's 2.x-style YOLOv3 config trained for 2 iterations and
evaluated on CPU, and the data both example configs read as written (`lakedet demo --examples-data`).
A native zoo Faster R-CNN config with its datasets swapped is trained, fine-tuned and evaluated by
test_quickstart.py (the README's own config) and test_zoo.py."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lakedet.tools.synthetic import make_shapes_dataset

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

EXAMPLES = Path(__file__).parent.parent / "configs"


@pytest.fixture(scope="module")
def seed_data(tmp_path_factory):
    """Datasets with the seed example's column names (images, boxes, categories, masks)."""
    root = tmp_path_factory.mktemp("seed")
    for split, n, seed in (("train", 4, 1), ("val", 4, 2)):
        make_shapes_dataset(str(root / split), n, size=96, seed=seed, labels_column="categories", masks="binary")
    return root


def test_the_examples_data_command_writes_what_the_example_configs_read_as_written(tmp_path):
    """`lakedet demo --examples-data data` then the configs' own paths and class counts (no option)."""
    out = lakedet("demo", "--examples-data", "data", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    from mmengine.config import Config

    import deeplake

    for name in ("faster-rcnn_r50_fpn_deeplake.py", "seed_yolov3_deeplake.py"):
        cfg = Config.fromfile(str(EXAMPLES / name))
        heads = cfg.model.get("roi_head", cfg.model).get("bbox_head")
        paths = ([cfg.data.train.deeplake_path, cfg.data.val.deeplake_path] if "data" in cfg  # the 2.x style
                 else [cfg.train_dataloader.dataset.deeplake_path, cfg.val_dataloader.dataset.deeplake_path])
        for path in paths:
            ds = deeplake.open_read_only(str(tmp_path / path))
            assert len(ds) > 0 and heads.num_classes == len(ds["categories"].metadata["class_names"]) == 3
    again = lakedet("demo", "--examples-data", "data", cwd=tmp_path)
    assert again.returncode == 2 and "shapes-train exists" in again.stderr


def lakedet(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "lakedet", *args], capture_output=True, text=True, cwd=cwd)


def seed_options(root):
    return [f"data.train.deeplake_path={root / 'train'}", f"data.val.deeplake_path={root / 'val'}",
            "model.backbone.init_cfg=None", "model.bbox_head.num_classes=3",
            "runner.type=IterBasedRunner", "runner.max_iters=2", "evaluation.interval=2",
            "model.test_cfg.score_thr=0", "model.test_cfg.conf_thr=0"]


def test_seed_example_config_trains_and_evaluates_through_lakedet_train(seed_data, tmp_path):
    out = lakedet("train", str(EXAMPLES / "seed_yolov3_deeplake.py"), "--work-dir", str(tmp_path),
                  "--cfg-options", *seed_options(seed_data))
    assert out.returncode == 0, out.stderr[-3000:]
    log = out.stdout + out.stderr
    assert "coco/bbox_mAP:" in log and "translated the 2.x-style config" in log
    assert (tmp_path / "iter_2.pth").exists()


def test_seed_example_config_runs_through_the_python_snippet(seed_data, tmp_path):
    script = tmp_path / "snippet.py"
    script.write_text(textwrap.dedent(f"""
        import os
        import mmengine
        from mmengine import Config
        import lakedet as mmdet_deeplake

        cfg = Config.fromfile({str(EXAMPLES / 'seed_yolov3_deeplake.py')!r})
        cfg.data.train.deeplake_path = {str(seed_data / 'train')!r}
        cfg.data.val.deeplake_path = {str(seed_data / 'val')!r}
        cfg.model.backbone.init_cfg = None
        cfg.model.test_cfg.score_thr = 0
        cfg.model.test_cfg.conf_thr = 0
        cfg.runner = dict(type="IterBasedRunner", max_iters=2)
        cfg.evaluation = dict(metric=["bbox"], interval=2)
        cfg.work_dir = {str(tmp_path / 'work')!r}
        num_classes = 3

        cfg.model.bbox_head.num_classes = num_classes

        # Build the detector
        model = mmdet_deeplake.build_detector(cfg.model)

        # Create work_dir (mmcv.mkdir_or_exist moved to mmengine in OpenMMLab 2.0)
        mmengine.mkdir_or_exist(os.path.abspath(cfg.work_dir))

        # Run the training
        runner = mmdet_deeplake.train_detector(model, cfg, distributed=False, validate=True)
        print("METRICS", sorted(k for k in runner.message_hub.log_scalars if "coco" in k))
    """))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "val/coco/bbox_mAP'" in out.stdout


def test_pretrained_weights_that_cannot_be_fetched_name_the_config_key(seed_data, tmp_path):
    # a checkpoint URL nothing answers at, so the test does not depend on this machine being offline
    options = [o for o in seed_options(seed_data) if not o.startswith("model.backbone.init_cfg")]
    options.append("model.backbone.init_cfg.checkpoint=http://127.0.0.1:9/darknet53.pth")
    out = lakedet("train", str(EXAMPLES / "seed_yolov3_deeplake.py"), "--work-dir", str(tmp_path),
                  "--cfg-options", *options)
    assert out.returncode == 2
    assert "model.backbone.init_cfg" in out.stderr and "=None" in out.stderr and "Traceback" not in out.stderr
