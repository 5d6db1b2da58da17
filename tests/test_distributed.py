"""Training with PyTorch DDP through torchrun on CPU (gloo): two processes."""

import subprocess
import sys

import pytest

from conftest import CONFIG_DIR

pytestmark = [pytest.mark.distributed, pytest.mark.slow, pytest.mark.timeout(300)]


def test_torchrun_two_cpu_processes_train_and_evaluate(shapes, shapes_val, tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "lakedet", "train", str(CONFIG_DIR / "tiny_retinanet.py"), "--launcher", "pytorch",
         "--work-dir", str(tmp_path), "--cfg-options", f"train_dataloader.dataset.deeplake_path={shapes[0]}",
         f"val_dataloader.dataset.deeplake_path={shapes_val[0]}"],
        capture_output=True, text=True, timeout=280)
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-3000:]
    assert "Distributed launcher: pytorch" in log and "Distributed training: True" in log and "GPU number: 2" in log
    assert "coco/bbox_mAP:" in log and (tmp_path / "iter_2.pth").exists()


def test_launcher_pytorch_without_torchrun_is_a_clear_error(shapes, tmp_path):
    import os

    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    out = subprocess.run([sys.executable, "-m", "lakedet", "train", str(CONFIG_DIR / "tiny_retinanet.py"),
                          "--launcher", "pytorch", "--work-dir", str(tmp_path)], capture_output=True, text=True, env=env)
    assert out.returncode == 2 and "torchrun --nproc_per_node" in out.stderr
