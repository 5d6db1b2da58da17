import json
import pickle
import subprocess
import sys

import pytest

from conftest import CONFIG_DIR

pytestmark = pytest.mark.timeout(600)


def run(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "lakedet", *args], capture_output=True, text=True, **kwargs)


@pytest.mark.timeout(60)
def test_help_lists_commands():
    out = run("--help")
    assert out.returncode == 0
    for command in ("demo", "train", "eval"):
        assert command in out.stdout


@pytest.mark.slow
def test_demo_builds_data_trains_and_prints_the_bbox_table_the_same_on_every_run(tmp_path):
    """The demo is seeded (model init, sampler, per-sample augmentation in 2 DataLoader workers):
    a second run on the same machine logs the same losses and prints the same tables."""
    import re

    outputs = []
    for name in ("first", "second"):
        out = run("demo", "--epochs", "1", "--train-size", "16", "--val-size", "8", "--num-workers", "2",
                  "--data-dir", str(tmp_path / "data"), "--work-dir", str(tmp_path / name),
                  "--cfg-options", "model.test_cfg.score_thr=0")  # untrained: keep every box
        assert out.returncode == 0, out.stderr[-3000:]
        assert "bbox_mAP_50" in out.stdout and "wall time" in out.stdout and "COCO bbox, per class" in out.stdout
        assert list((tmp_path / name).glob("epoch_1.pth"))
        losses = re.findall(r"Epoch\(train\).*?(grad_norm: \S+\s+loss: .*)", out.stdout + out.stderr)
        assert losses, (out.stdout + out.stderr)[-2000:]
        tables = out.stdout[out.stdout.index("COCO bbox, per class"):out.stdout.index("wall time")]
        outputs.append((losses, tables))
    assert [p.name.startswith("shapes-v1-train") for p in (tmp_path / "data").iterdir()].count(True) == 1
    assert outputs[0] == outputs[1]


@pytest.mark.slow
def test_train_then_eval_a_checkpoint(shapes, shapes_val, tmp_path):
    paths = [f"train_dataloader.dataset.deeplake_path={shapes[0]}",
             f"val_dataloader.dataset.deeplake_path={shapes_val[0]}",
             f"test_dataloader.dataset.deeplake_path={shapes_val[0]}"]
    out = run("train", str(CONFIG_DIR / "tiny_retinanet.py"), "--work-dir", str(tmp_path), "--cfg-options", *paths)
    assert out.returncode == 0, out.stderr[-3000:]
    ckpt = tmp_path / "iter_2.pth"
    assert ckpt.exists()
    out = run("eval", str(CONFIG_DIR / "tiny_retinanet.py"), str(ckpt), "--work-dir", str(tmp_path / "eval"),
              "--out", str(tmp_path / "preds.pkl"), "--cfg-options", *paths)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "COCO bbox, per class" in out.stdout and "| triangle" in out.stdout and "AP_s" in out.stdout
    assert "coco/bbox_mAP" in out.stdout
    lineage = json.loads((tmp_path / "eval" / "lineage.json").read_text())["latest"]
    assert lineage["command"] == "eval" and lineage["checkpoint"] == str(ckpt)
    assert lineage["splits"]["test"][0]["url"] == shapes_val[0] and lineage["splits"]["test"][0]["rows"] == 8
    written = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert 0 <= written["metrics"]["coco/bbox_mAP"] <= 1
    predictions = pickle.loads((tmp_path / "preds.pkl").read_bytes())
    assert len(predictions) == 8 and {p["img_id"] for p in predictions} == set(range(8))
    # on a query of the dataset, as training takes it
    out = run("eval", str(CONFIG_DIR / "tiny_retinanet.py"), str(ckpt), "--work-dir", str(tmp_path / "eval_q"),
              "--out", str(tmp_path / "preds_q.pkl"), "--query", "SELECT * WHERE ROW_NUMBER() < 3",
              "--cfg-options", *paths)
    assert out.returncode == 0, out.stderr[-3000:]
    assert len(pickle.loads((tmp_path / "preds_q.pkl").read_bytes())) == 3
    # resume from the latest checkpoint in the work dir and go on to iteration 4
    out = run("train", str(CONFIG_DIR / "tiny_retinanet.py"), "--work-dir", str(tmp_path), "--resume",
              "--cfg-options", *paths, "train_cfg.max_iters=4")
    assert out.returncode == 0, out.stderr[-3000:]
    assert "resumed epoch: 0, iter: 2" in out.stdout + out.stderr
    assert (tmp_path / "iter_4.pth").exists()


def test_bad_config_is_reported_without_a_traceback(tmp_path):
    cfg = tmp_path / "old.py"
    cfg.write_text("model = dict(type='RetinaNet')\ndata = dict(train=dict(deeplake_path='x', deeplake_tensor={}))\n")
    out = run("train", str(cfg), "--work-dir", str(tmp_path / "w"))
    assert out.returncode == 2
    assert "ConfigError" in out.stderr and "did you mean 'deeplake_tensors'" in out.stderr
    assert "Traceback" not in out.stderr


def test_per_class_tables_for_coco_and_voc_metrics():
    from types import SimpleNamespace

    import numpy as np

    from lakedet.evaluation.tables import per_class_tables as _per_class_tables
    from lakedet.evaluation.metrics import CocoSummary

    coco = SimpleNamespace(last_tables={"bbox": CocoSummary("bbox", np.zeros(12), [
        dict(name="circle", AP=0.5, AP50=0.7, AP75=0.4, AP_s=0.1, AP_m=0.6, AP_l=float("nan"))])})
    voc = SimpleNamespace(last_tables={0.5: [dict(name="circle", AP=0.25, gts=4, dets=9)]})
    (title, headers, rows), = _per_class_tables(coco)
    assert title == "COCO bbox, per class" and headers[:3] == ["class", "AP", "AP50"]
    assert rows[0][:6] == ("circle", 0.5, 0.7, 0.4, 0.1, 0.6)
    (title, headers, rows), = _per_class_tables(voc)
    assert title == "Pascal VOC, IoU 0.5, per class" and rows == [("circle", 4, 9, 0.25)]
    assert list(_per_class_tables(SimpleNamespace())) == []


def test_amp_without_a_gpu_is_a_clear_error(tmp_path):
    import torch

    if torch.cuda.is_available():  # the CI machines have no GPU; on a GPU box --amp is simply accepted
        return
    out = run("train", str(CONFIG_DIR / "tiny_retinanet.py"), "--work-dir", str(tmp_path), "--amp")
    assert out.returncode == 2 and "--amp (mixed precision) needs a CUDA GPU" in out.stderr


def test_help_and_argument_errors_do_not_import_mmdetection():
    # the command registers lakedet's modules only when a command needs them (lakedet/__init__.py)
    for args in (["--help"], ["train"]):
        out = subprocess.run([sys.executable, "-X", "importtime", "-m", "lakedet", *args], capture_output=True, text=True)
        assert out.returncode in (0, 2)
        imported = {line.split("|")[-1].strip() for line in out.stderr.splitlines() if "|" in line}
        assert "lakedet.cli" in imported
        assert not {"mmdet", "mmengine", "torch", "deeplake"} & imported, sorted(imported)[:20]


def test_custom_imports_register_everything_in_a_fresh_process(tmp_path):
    config = tmp_path / "plugin.py"
    config.write_text("custom_imports = dict(imports=['lakedet'], allow_failed_imports=False)\n")
    script = ("import sys\nfrom mmengine.config import Config\nConfig.fromfile(sys.argv[1])\n"
              "from mmdet.registry import DATASETS, METRICS, TRANSFORMS\nfrom mmengine.registry import DATA_SAMPLERS, HOOKS\n"
              "print(DATASETS.get('DeepLakeDetDataset').__name__, TRANSFORMS.get('LoadImageFromDeepLake').__name__,\n"
              "      METRICS.get('DeepLakeCocoMetric').__name__, DATA_SAMPLERS.get('ShardedRowSampler').__name__,\n"
              "      HOOKS.get('LineageHook').__name__)\n")
    out = subprocess.run([sys.executable, "-c", script, str(config)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["DeepLakeDetDataset", "LoadImageFromDeepLake", "DeepLakeCocoMetric",
                                  "ShardedRowSampler", "LineageHook"]


@pytest.mark.slow
def test_eval_runs_a_test_only_config_on_a_plain_state_dict_checkpoint(shapes_val, tmp_path):
    import torch
    from mmengine.config import Config

    from lakedet import build_detector

    full = Config.fromfile(str(CONFIG_DIR / "tiny_retinanet.py"))
    full.test_dataloader.dataset.deeplake_path = shapes_val[0]
    test_only = Config(dict(model=full.model.to_dict(), test_dataloader=full.test_dataloader.to_dict(),
                            test_evaluator=full.test_evaluator.to_dict(), test_cfg=dict(type="TestLoop"),
                            default_scope="mmdet", custom_imports=dict(imports=["lakedet"])))
    config = tmp_path / "test_only.py"
    test_only.dump(str(config))
    assert "train_dataloader" not in config.read_text() and "optim_wrapper" not in config.read_text()
    checkpoint = tmp_path / "weights.pth"
    torch.save({"state_dict": build_detector(full.model).state_dict()}, checkpoint)  # no meta, no message hub
    out = run("eval", str(config), str(checkpoint), "--work-dir", str(tmp_path / "eval"))
    assert out.returncode == 0, out.stderr[-3000:]
    assert "coco/bbox_mAP" in out.stdout
