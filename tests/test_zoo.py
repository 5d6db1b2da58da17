"""MMDetection's own zoo configs, with only their datasets swapped for Deep Lake ones
(``tests/configs/zoo/``), trained for one iteration and evaluated, through MMDetection's own
``tools/train.py`` (shipped in the mmdet wheel; ``lakedet train`` builds the same runner from the
same registered components, shown on one config in test_entry_points.py, and runs Mask R-CNN
here); plus MMDetection's
``tools/test.py`` and ``--resume`` on a checkpoint ``tools/train.py`` wrote, and a plain
``Runner.from_cfg(cfg).train()`` script. Only offline and speed settings change, with
``--cfg-options``: no pretrained weights, smaller images, 2 rows per batch, no DataLoader workers,
one epoch with validation after it."""

import subprocess
import sys
from pathlib import Path

import pytest

import mmdet

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

ZOO = Path(__file__).parent / "configs" / "zoo"
TOOLS = Path(mmdet.__file__).parent / ".mim" / "tools"
SMALL = "(128,128)"

#: family -> the --cfg-options that cut its image sizes (indices into the zoo's own pipelines)
FAMILIES = {
    "faster_rcnn": [f"train_dataloader.dataset.pipeline.2.scale={SMALL}", f"val_dataloader.dataset.pipeline.1.scale={SMALL}",
                    f"test_dataloader.dataset.pipeline.1.scale={SMALL}"],
    "retinanet": [f"train_dataloader.dataset.pipeline.2.scale={SMALL}", f"val_dataloader.dataset.pipeline.1.scale={SMALL}",
                  f"test_dataloader.dataset.pipeline.1.scale={SMALL}"],
    "fcos": [f"train_dataloader.dataset.pipeline.2.scale={SMALL}", f"val_dataloader.dataset.pipeline.1.scale={SMALL}",
             f"test_dataloader.dataset.pipeline.1.scale={SMALL}"],
    "mask_rcnn": [f"train_dataloader.dataset.pipeline.2.scale={SMALL}", f"val_dataloader.dataset.pipeline.1.scale={SMALL}",
                  f"test_dataloader.dataset.pipeline.1.scale={SMALL}"],
    "yolox": [f"train_dataloader.dataset.pipeline.0.img_scale={SMALL}", "train_dataloader.dataset.pipeline.1.border=(-64,-64)",
              f"train_dataloader.dataset.pipeline.2.img_scale={SMALL}", f"train_dataloader.dataset.pipeline.5.scale={SMALL}",
              f"val_dataloader.dataset.pipeline.1.scale={SMALL}", f"test_dataloader.dataset.pipeline.1.scale={SMALL}"],
    "rtmdet": [f"train_dataloader.dataset.pipeline.2.img_scale={SMALL}", "train_dataloader.dataset.pipeline.3.scale=(256,256)",
               f"train_dataloader.dataset.pipeline.4.crop_size={SMALL}", f"train_dataloader.dataset.pipeline.7.size={SMALL}",
               f"train_dataloader.dataset.pipeline.8.img_scale={SMALL}",
               f"val_dataloader.dataset.pipeline.1.scale={SMALL}", f"val_dataloader.dataset.pipeline.2.size={SMALL}",
               f"test_dataloader.dataset.pipeline.1.scale={SMALL}", f"test_dataloader.dataset.pipeline.2.size={SMALL}"],
    # DINO picks its 900 queries among the encoder's tokens: 256 px gives 1360 of them (128 px: 340)
    "dino": ["train_dataloader.dataset.pipeline.3.transforms.0.0.scales=[(256,256)]",
             "train_dataloader.dataset.pipeline.3.transforms.1.0.scales=[(256,256)]",
             "train_dataloader.dataset.pipeline.3.transforms.1.2.scales=[(256,256)]",
             "val_dataloader.dataset.pipeline.1.scale=(256,256)", "test_dataloader.dataset.pipeline.1.scale=(256,256)"],
}
#: where each family's Deep Lake training dataset sits in its train_dataloader
TRAIN_DATASET = {"yolox": "train_dataloader.dataset.dataset"}


@pytest.fixture(scope="module")
def coco_like(tmp_path_factory):
    """2 training and 2 validation rows with binary masks and COCO's 80 class names (the labels
    used are the first three), so no head's num_classes changes."""
    from mmdet.datasets import CocoDataset

    from lakedet.tools.synthetic import make_shapes_dataset

    root = tmp_path_factory.mktemp("zoo")
    classes = CocoDataset.METAINFO["classes"]
    for split, seed in (("train", 1), ("val", 2)):
        make_shapes_dataset(str(root / split), 2, size=96, seed=seed, masks="binary", classes=classes,
                            min_side=20, max_side=40)
    return root


def options(family, root):
    train = TRAIN_DATASET.get(family, "train_dataloader.dataset")
    common = [f"{train}.deeplake_path={root / 'train'}", f"val_dataloader.dataset.deeplake_path={root / 'val'}",
              f"test_dataloader.dataset.deeplake_path={root / 'val'}", "model.backbone.init_cfg=None",
              "train_cfg.max_epochs=1", "train_cfg.val_interval=1", "train_dataloader.batch_size=2"]
    for split in ("train", "val", "test"):
        common += [f"{split}_dataloader.num_workers=0", f"{split}_dataloader.persistent_workers=False"]
    return common + FAMILIES[family]


def run(command, work_dir, *extra):
    out = subprocess.run([*command, "--work-dir", str(work_dir), *extra], capture_output=True, text=True)
    return out, out.stdout + out.stderr


def mmdet_tool(name):
    return [sys.executable, str(TOOLS / f"{name}.py")]


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_zoo_config_trains_and_evaluates_through_mmdetections_tools_and_lakedet(family, coco_like, tmp_path):
    config = str(ZOO / f"{family}.py")
    no_checkpoint = ["default_hooks.checkpoint.interval=10", "default_hooks.checkpoint.save_last=False"]  # speed
    commands = [("tools/train.py", mmdet_tool("train") + [config])]
    if family == "mask_rcnn":  # lakedet train builds the same runner (test_entry_points.py): once, on the segm path
        commands.append(("lakedet train", [sys.executable, "-m", "lakedet", "train", config]))
    for name, command in commands:
        work = tmp_path / name.replace("/", "_").replace(" ", "_")
        out, log = run(command, work, "--cfg-options", *options(family, coco_like), *no_checkpoint)
        assert out.returncode == 0, f"{name}: {log[-4000:]}"
        assert "Epoch(train) [1][1/1]" in log, f"{name}: {log[-2000:]}"
        assert "coco/bbox_mAP:" in log, f"{name}: {log[-2000:]}"
        if family == "mask_rcnn":
            assert "coco/segm_mAP:" in log


def test_mmdetection_tools_test_and_resume_and_a_plain_runner(coco_like, tmp_path):
    config = str(ZOO / "faster_rcnn.py")
    settings = options("faster_rcnn", coco_like)
    out, log = run(mmdet_tool("train") + [config], tmp_path / "train", "--cfg-options", *settings)
    assert out.returncode == 0, log[-4000:]
    checkpoint = tmp_path / "train" / "epoch_1.pth"
    # tools/test.py loads it under torch's weights_only=True (lakedet's allow-list, from custom_imports)
    out, log = run(mmdet_tool("test") + [config, str(checkpoint)], tmp_path / "test", "--cfg-options", *settings)
    assert out.returncode == 0, log[-4000:]
    assert "coco/bbox_mAP:" in log
    # --resume picks epoch_1.pth up and trains epoch 2
    out, log = run(mmdet_tool("train") + [config, "--resume"], tmp_path / "train", "--cfg-options", *settings,
                   "train_cfg.max_epochs=2")
    assert out.returncode == 0, log[-4000:]
    assert "resumed epoch: 1" in log and (tmp_path / "train" / "epoch_2.pth").exists()
    # the zoo config sets no seed: the resumed run samples with the one it was trained with
    assert "lakedet: resumed with the seed the run was trained with" in log
    # a user's own script: Config + Runner.from_cfg, nothing of lakedet but custom_imports
    script = tmp_path / "own.py"
    script.write_text(
        "import argparse\nimport sys\nfrom mmengine.config import Config, DictAction\nfrom mmengine.runner import Runner\n"
        "parser = argparse.ArgumentParser()\nparser.add_argument('config')\nparser.add_argument('work_dir')\n"
        "parser.add_argument('--cfg-options', nargs='+', action=DictAction)\nargs = parser.parse_args()\n"
        "cfg = Config.fromfile(args.config)\ncfg.merge_from_dict(args.cfg_options)\ncfg.work_dir = args.work_dir\n"
        "Runner.from_cfg(cfg).train()\n")
    out = subprocess.run([sys.executable, str(script), config, str(tmp_path / "own"), "--cfg-options", *settings],
                         capture_output=True, text=True)
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    assert "coco/bbox_mAP:" in out.stdout + out.stderr
