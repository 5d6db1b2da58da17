"""DataLoader workers over remote data start even when this process has Deep Lake remote reads
stuck on storage that stopped answering: the hazard reproduced, and lakedet's way around it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.remote, pytest.mark.slow, pytest.mark.timeout(300)]

SCRIPT = str(Path(__file__).parent / "fork_after_stuck_io.py")


@pytest.fixture(scope="module")
def small_on_s3(s3_server):
    url = "s3://lakedet/fork-safety"
    # written by another process: no Deep Lake I/O thread of this one talks to the server
    subprocess.run([sys.executable, "-c", "import sys, json; from lakedet.tools.synthetic import make_shapes_dataset; "
                    "make_shapes_dataset(sys.argv[1], 12, size=64, seed=1, min_side=12, max_side=30, "
                    "creds=json.loads(sys.argv[2]))", url, json.dumps(s3_server)], check=True, timeout=120)
    return url, s3_server


def run(mode, url, creds, watchdog):
    out = subprocess.run([sys.executable, SCRIPT, mode, url, json.dumps(creds)], capture_output=True, text=True,
                         timeout=watchdog + 60, env=dict(os.environ, WATCHDOG_S=str(watchdog)))
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_plain_fork_after_stuck_remote_reads_hangs(small_on_s3):
    """The hazard (Deep Lake 4.7.4): ``deeplake`` replaces ``os.fork`` with a version that first
    joins its native I/O threads, and those wait on the storage that stopped answering."""
    result = run("fork", *small_on_s3, watchdog=15)
    assert not result["finished"], f"the fork returned ({result}): Deep Lake no longer waits on its I/O threads"


def test_lakedet_dataloader_workers_start_and_read_despite_stuck_remote_reads(small_on_s3):
    result = run("loader", *small_on_s3, watchdog=120)
    assert result["finished"], result
    assert result["context"] == "forkserver"
    assert result["rows"] == list(range(12))  # the workers reopened the dataset and read every row
    # deeplake was imported (and stuck) before the dataset was built: the server is a fresh interpreter
    assert result["server_forked"] is False


UNGUARDED = '''# the seed's style: a script that does its work at the top level, with no __main__ guard
import sys, json
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from lakedet.engine.hooks import prepare_dataloader
print("the script runs", flush=True)
init_default_scope("mmdet")
cfg = Config(dict(train_dataloader=dict(
    batch_size=4, num_workers=2, persistent_workers=False, collate_fn=dict(type="pseudo_collate"),
    sampler=dict(type="DefaultSampler", shuffle=True, seed=0),
    dataset=dict(type="DeepLakeDetDataset", deeplake_path=sys.argv[1],
                 deeplake_credentials=dict(creds=json.loads(sys.argv[2])),
                 pipeline=[dict(type="LoadImageFromFile"), dict(type="PackDetInputs")]))))
loader = Runner.build_dataloader(cfg.train_dataloader.to_dict(), seed=0)
prepare_dataloader(loader)
print("rows", sorted(s.img_id for b in loader for s in b["data_samples"]), flush=True)
from lakedet.data.workers import worker_server_forked
print("server forked:", worker_server_forked(), flush=True)
'''


def test_forkserver_workers_do_not_run_an_unguarded_script_again(small_on_s3, tmp_path):
    """... and with Deep Lake not imported before the dataset, their server is a fork of the
    script's process (made before any Deep Lake I/O), which does not run the script either."""
    url, creds = small_on_s3
    script = tmp_path / "train_like_the_seed.py"
    script.write_text(UNGUARDED)
    out = subprocess.run([sys.executable, str(script), url, json.dumps(creds)], capture_output=True, text=True,
                         timeout=240)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.count("the script runs") == 1  # not once more per worker
    assert f"rows {list(range(12))}" in out.stdout
    assert "server forked: True" in out.stdout


def test_workers_forked_right_after_opencv_and_torch_work_read_every_epoch(tmp_path):
    """Workers forked from a parent that has just used OpenCV's thread pool and torch: re-configuring
    OpenCV's pool in such a worker could wait forever for threads that exist only in the parent
    (found by ``benchmarks/gpu.py`` running two trainings in one process); lakedet's workers leave
    OpenCV's thread count as the parent set it. Six epochs, the parent's OpenCV at 2 and 0 threads."""
    script = str(Path(__file__).parent / "fork_after_opencv.py")
    out = subprocess.run([sys.executable, script, str(tmp_path / "shapes"), "6"], capture_output=True, text=True,
                         timeout=180)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "read every epoch" in out.stdout
