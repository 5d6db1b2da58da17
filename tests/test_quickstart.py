"""The README's "Your data in ten minutes", run as written on a tiny COCO folder: the shell blocks
exactly as the README has them (in bash, from the folder they name), the config files exactly as the
README has them plus one appended block of offline and speed settings (no download: the zoo
checkpoint is replaced by a local one of the same 80-class model; small images; one epoch)."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

README = Path(__file__).parent.parent / "README.md"
CATEGORIES = [dict(id=1, name="cat", supercategory="animal"), dict(id=3, name="dog", supercategory="animal")]

#: appended to the README's my_detector.py: offline and small, nothing else
APPENDIX = """
# --- appended by tests/test_quickstart.py: offline and small ---
load_from = {checkpoint!r}
model['backbone'] = dict(init_cfg=None)
train_cfg = dict(max_epochs=1, val_interval=1)
default_hooks = dict(checkpoint=dict(interval=1))
_small = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True),
          dict(type='Resize', scale=(128, 128), keep_ratio=True), dict(type='RandomFlip', prob=0.5),
          dict(type='PackDetInputs')]
_small_test = [dict(type='LoadImageFromFile'), dict(type='Resize', scale=(128, 128), keep_ratio=True),
               dict(type='LoadAnnotations', with_bbox=True),
               dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))]
train_dataloader.update(batch_size=2, num_workers=0, persistent_workers=False)
train_dataloader['dataset']['pipeline'] = _small
val_dataloader.update(batch_size=1, num_workers=0, persistent_workers=False)
val_dataloader['dataset']['pipeline'] = _small_test
"""


def readme_block(marker: str) -> str:
    """The fenced block right after ``<!-- quickstart: MARKER ...-->`` in the README."""
    text = README.read_text()
    found = re.search(rf"<!-- quickstart: {re.escape(marker)} [^>]*-->\n```\w+\n(.*?)```", text, re.S)
    assert found, f"README has no quickstart block {marker!r}"
    return found.group(1)


def write_split(root: Path, split: str, count: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    images, annotations = [], []
    (root / "data" / "coco" / split).mkdir(parents=True)
    for index in range(count):
        pixels = rng.integers(0, 60, (96, 96, 3), dtype=np.uint8)
        image_id = 100 + 7 * index
        for k in range(2):
            w, h = int(rng.integers(20, 40)), int(rng.integers(20, 40))
            x, y = int(rng.integers(0, 96 - w)), int(rng.integers(0, 96 - h))
            category = CATEGORIES[(index + k) % 2]
            pixels[y:y + h, x:x + w] = (220, 60, 60) if category["name"] == "cat" else (60, 220, 60)
            annotations.append(dict(id=1000 + len(annotations), image_id=image_id, category_id=category["id"],
                                    bbox=[x, y, w, h], area=float(w * h), iscrowd=0,
                                    segmentation=[[x, y, x + w, y, x + w, y + h, x, y + h]]))
        name = f"{image_id:012d}.jpg"
        cv2.imwrite(str(root / "data" / "coco" / split / name), pixels)
        images.append(dict(id=image_id, file_name=name, height=96, width=96))
    (root / "data" / "coco" / "annotations").mkdir(parents=True, exist_ok=True)
    (root / "data" / "coco" / "annotations" / f"instances_{split}.json").write_text(
        json.dumps(dict(images=images, annotations=annotations, categories=CATEGORIES)))


@pytest.fixture(scope="module")
def coco_folder(tmp_path_factory):
    """data/coco/{annotations,train,val} as the README's commands expect, and a local stand-in for the
    zoo checkpoint: the same Faster R-CNN with COCO's 80-class head, randomly initialised."""
    import torch
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from lakedet import build_detector

    root = tmp_path_factory.mktemp("quickstart")
    write_split(root, "train", 4, seed=1)
    write_split(root, "val", 2, seed=2)
    init_default_scope("mmdet")
    cfg = Config.fromfile(str(Path(__import__("mmdet").__file__).parent / ".mim" / "configs" / "faster_rcnn"
                              / "faster-rcnn_r50_fpn_1x_coco.py"))
    cfg.model.backbone.init_cfg = None
    model = build_detector(cfg.model)
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), root / "zoo_faster_rcnn_80_classes.pth")
    (root / "my_detector.py").write_text(
        readme_block("config") + APPENDIX.format(checkpoint=str(root / "zoo_faster_rcnn_80_classes.pth")))
    return root


def bash(block: str, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=cwd, env=env, capture_output=True, text=True)


def command_env(**extra) -> dict:
    env = dict(os.environ, **extra)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # lakedet, python
    return env


def test_your_data_in_ten_minutes_runs_as_written(coco_folder, monkeypatch):
    root = coco_folder
    config = readme_block("config")
    assert "num_classes=2" in config and "load_from = 'https://download.openmmlab.com/" in config
    out = bash(readme_block("local"), root, command_env())
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-5000:]
    assert "ingested 4 images, 8 instances, 2 classes" in log and "ingested 2 images, 4 instances, 2 classes" in log
    assert re.search(r"\| labels +\| ClassLabel +\| gt_labels", out.stdout), out.stdout[:3000]
    # fine-tuning: the zoo model's weights were loaded, its 80-class head left out with a warning
    assert "Load checkpoint from" in log and "size mismatch for roi_head.bbox_head.fc_cls.weight" in log
    work = root / "work_dirs" / "my_detector"
    assert (work / "epoch_1.pth").exists() and (work / "last_checkpoint").read_text().strip().endswith("epoch_1.pth")
    assert (work / "my_detector.py").exists() and list(work.glob("*/vis_data/scalars.json"))
    lineage = json.loads((work / "lineage.json").read_text())
    assert lineage["splits"]["train"]["rows"] == 4 if "splits" in lineage else "data/lake/train" in json.dumps(lineage)
    metrics = json.loads((work / "metrics.json").read_text())
    assert "coco/bbox_mAP" in metrics["metrics"]
    assert (root / "work_dirs" / "my_detector_tools" / "epoch_1.pth").exists()  # tools/train.py

    # inference on a folder of images, as the README's OpenMMLab habits say (class names from the checkpoint)
    from mmdet.apis import DetInferencer

    monkeypatch.chdir(root)  # the config's relative paths, as for the commands above
    inferencer = DetInferencer(model=str(root / "my_detector.py"), weights=str(work / "epoch_1.pth"), device="cpu")
    assert tuple(inferencer.model.dataset_meta["classes"]) == ("cat", "dog")
    results = inferencer(str(root / "data" / "coco" / "val"), out_dir=str(root / "preds"), no_save_pred=False)
    assert len(results["predictions"]) == 2 and len(list((root / "preds" / "vis").glob("*.jpg"))) == 2


@pytest.mark.remote
def test_your_data_from_s3_runs_as_written(coco_folder, s3_server):
    import boto3

    root = coco_folder
    boto3.client("s3", endpoint_url=s3_server["endpoint_url"], region_name="us-east-1",
                 aws_access_key_id=s3_server["aws_access_key_id"],
                 aws_secret_access_key=s3_server["aws_secret_access_key"]).create_bucket(Bucket="my-bucket")
    (root / "my_s3_detector.py").write_text(readme_block("s3 config"))
    out = bash(readme_block("s3"), root, command_env(LAB_S3=json.dumps(s3_server)))
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-5000:]
    assert "into s3://my-bucket/lake/train" in log and "Epoch(train) [1][2/2]" in log and "coco/bbox_mAP:" in log
    work = root / "work_dirs" / "my_s3_detector"
    for path in work.rglob("*"):
        if path.is_file():
            assert s3_server["aws_secret_access_key"].encode() not in path.read_bytes(), path
