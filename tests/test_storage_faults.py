"""Storage that goes away in the middle of training: a bounded, clear failure, no partial checkpoint."""

import json
import os
import subprocess
import sys
import time

import pytest

from conftest import CONFIG_DIR, start_s3_server

pytestmark = [pytest.mark.remote, pytest.mark.slow, pytest.mark.timeout(240)]


def test_s3_server_stopped_mid_epoch_fails_clearly_within_30_s(tmp_path):
    server, creds = start_s3_server()
    try:
        url = "s3://lakedet/stops"
        # written by another process: Deep Lake joins its I/O threads before every fork, and one
        # left talking to the server this test kills would hang later DataLoader starts here
        subprocess.run([sys.executable, "-c", "import sys, json; from lakedet.tools.synthetic import make_shapes_dataset; "
                        "make_shapes_dataset(sys.argv[1], 24, size=256, seed=5, min_side=12, max_side=30, "
                        "creds=json.loads(sys.argv[2]))", url, json.dumps(creds)], check=True, timeout=120)
        work, mark = tmp_path / "work", tmp_path / "stopped"
        config = tmp_path / "s3_config.py"
        config.write_text(
            f"_base_ = {str(CONFIG_DIR / 'tiny_retinanet_storage_stops.py')!r}\n"
            f"train_dataloader = dict(dataset=dict(deeplake_path={url!r}, "
            f"deeplake_credentials=dict(creds={creds!r})))\n"
            "val_dataloader = val_cfg = val_evaluator = None\n"
            "test_dataloader = test_cfg = test_evaluator = None\n")
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(CONFIG_DIR), os.environ.get("PYTHONPATH")])),
                   LAKEDET_STOP_PID=str(server.pid),
                   LAKEDET_STOP_MARK=str(mark))
        env.pop("LAKEDET_READ_TIMEOUT", None)  # the default bound is what is tested
        out = subprocess.run(
            [sys.executable, "-m", "lakedet", "train", str(config), "--work-dir", str(work)],
            capture_output=True, text=True, timeout=200, env=env)
        ended = time.time()
    finally:
        server.kill()
        server.wait()
    log = out.stdout + out.stderr
    assert mark.exists(), log[-3000:]  # the server was stopped by the hook, in the middle of epoch 2
    assert ended - float(mark.read_text()) < 30, log[-3000:]
    assert out.returncode != 0
    # a message naming the URL and the row, not a dump (multiprocessing's resource tracker may
    # still note the semaphores of the workers the CLI killed, after it)
    last = next((line for line in reversed(out.stderr.strip().splitlines()) if line.startswith("lakedet ")), "")
    assert last.startswith("lakedet train: ReadTimeout: row "), log[-3000:]
    assert "'s3://lakedet/stops'" in last and "LAKEDET_READ_TIMEOUT" in last
    # the first epoch's checkpoint is complete and is what "latest" points at; nothing of epoch 2
    assert (work / "last_checkpoint").read_text().strip().endswith("epoch_1.pth")
    assert not (work / "epoch_2.pth").exists()
    import torch

    from lakedet.engine.checkpoints import allow_mmengine_checkpoints

    allow_mmengine_checkpoints()
    assert "state_dict" in torch.load(work / "epoch_1.pth", map_location="cpu")
