"""Kill -9 during training, then ``--resume``: the run continues as if it had never stopped."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import CONFIG_DIR

pytestmark = pytest.mark.timeout(360)

ITERS_PER_EPOCH = 4  # tiny_resume.py: 8 rows (query), batch size 2


def train_command(config: str, train_path: str, work_dir: Path, *extra: str, options=()) -> list[str]:
    return [sys.executable, "-m", "lakedet", "train", str(CONFIG_DIR / config), "--work-dir", str(work_dir),
            *extra, "--cfg-options", f"train_dataloader.dataset.deeplake_path={train_path}",
            *([f"val_dataloader.dataset.deeplake_path={train_path}"] if "unseeded" in config else []), *options]


def logged_losses(work_dir: Path) -> list[dict[int, float]]:
    """``{step: loss}`` of every run in ``work_dir``, oldest run first (one log folder per run)."""
    runs = []
    for scalars in sorted(work_dir.glob("2*/vis_data/scalars.json")):
        lines = scalars.read_text().split("\n")[:-1]  # complete lines only: the run may be writing one
        records = [json.loads(line) for line in lines if line.strip()]
        runs.append({r["step"]: r["loss"] for r in records if "loss" in r})
    return runs


@pytest.fixture
def processes():
    """Start processes with ``processes(cmd, log_path, env)``; those still running at the end are killed."""
    started = []

    def start(cmd, log: Path, env):
        with open(log, "w") as out:
            started.append(subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT))
        return started[-1]

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


WORKERS = ["train_dataloader.num_workers=2", "train_dataloader.persistent_workers=True"]


@pytest.mark.slow
@pytest.mark.parametrize("config,workers", [("tiny_resume.py", []), ("tiny_resume_unseeded.py", []),
                                            ("tiny_resume.py", WORKERS)],
                         ids=["seeded", "unseeded-with-val", "seeded-2-workers"])
def test_killed_training_resumes_with_the_losses_of_an_uninterrupted_run(config, workers, shapes, tmp_path, processes):
    """With DataLoader workers too: each sample's random draws are seeded from (seed, epoch, rank,
    sample), so the workers a resumed run starts draw what the uninterrupted run's drew."""
    from lakedet.engine.checkpoints import allow_mmengine_checkpoints

    allow_mmengine_checkpoints()
    # one thread each: the two runs below share the machine, and results must not depend on it
    env = dict(os.environ, OMP_NUM_THREADS="1")
    seeded = config == "tiny_resume.py"
    if seeded:
        whole = processes(train_command(config, shapes[0], tmp_path / "whole", options=workers), tmp_path / "whole.log",
                          env)
    killed_dir = tmp_path / "killed"
    killed = processes(train_command(config, shapes[0], killed_dir, options=workers), tmp_path / "killed.log", env)

    # kill it in the middle of epoch 2: epoch 1's checkpoint is written, epoch 2 has logged losses
    deadline = time.monotonic() + 200
    while not (len(logged_losses(killed_dir)) == 1 and max(logged_losses(killed_dir)[0], default=0) >= 6):
        assert killed.poll() is None, (tmp_path / "killed.log").read_text()[-3000:]
        assert time.monotonic() < deadline, "no loss of epoch 2 logged within 200 s"
        time.sleep(0.01)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert not (killed_dir / "epoch_3.pth").exists(), "killed too late: training had finished"
    if not seeded:  # the uninterrupted run to compare with is one with the seed the killed run drew
        seed = torch.load(killed_dir / "epoch_1.pth", map_location="cpu", weights_only=True)["meta"]["seed"]
        whole = processes(train_command(config, shapes[0], tmp_path / "whole", options=[f"randomness.seed={seed}"]),
                          tmp_path / "whole.log", env)

    # last_checkpoint names a whole checkpoint (torch's safe loader reads it)
    latest = Path((killed_dir / "last_checkpoint").read_text().strip())
    resumed_epoch = torch.load(latest, map_location="cpu", weights_only=True)["meta"]["epoch"]
    assert latest.name == f"epoch_{resumed_epoch}.pth" and resumed_epoch in (1, 2)

    out = subprocess.run(train_command(config, shapes[0], killed_dir, "--resume", options=workers), env=env,
                         capture_output=True, text=True, timeout=200)
    assert out.returncode == 0, out.stderr[-3000:]
    assert whole.wait(timeout=200) == 0, (tmp_path / "whole.log").read_text()[-3000:]
    assert (killed_dir / "epoch_3.pth").exists()

    uninterrupted, = logged_losses(tmp_path / "whole")
    before_kill, after_resume = logged_losses(killed_dir)
    assert sorted(uninterrupted) == list(range(1, 3 * ITERS_PER_EPOCH + 1))
    # the resumed run starts after the checkpoint (not from scratch) and runs to the end
    assert sorted(after_resume) == list(range(resumed_epoch * ITERS_PER_EPOCH + 1, 3 * ITERS_PER_EPOCH + 1))
    for step, loss in after_resume.items():
        assert loss == pytest.approx(uninterrupted[step], abs=1e-6), (step, after_resume, uninterrupted)
    for step, loss in before_kill.items():
        assert loss == pytest.approx(uninterrupted[step], abs=1e-6), (step, before_kill, uninterrupted)


def test_random_states_survive_a_weights_only_checkpoint(tmp_path):
    """What a checkpoint stores of the random states loads under weights_only and replays the draws."""
    import random

    import numpy as np

    from lakedet.data.seeding import get_rng_states, set_rng_states

    np.random.randn()  # leaves a cached Gaussian in NumPy's state: it must be saved too
    torch.save({"rng_states": get_rng_states()}, tmp_path / "c.pth")
    draws = random.random(), np.random.rand(3).tolist(), np.random.randn(), torch.rand(3).tolist()
    set_rng_states(torch.load(tmp_path / "c.pth", weights_only=True)["rng_states"])
    assert (random.random(), np.random.rand(3).tolist(), np.random.randn(), torch.rand(3).tolist()) == draws


@pytest.mark.slow
def test_iteration_based_resume_reads_no_trained_batch_and_replays_the_losses(shapes, tmp_path):
    """Resume at iteration 6 of 10 (4 batches per epoch: epoch 1, batch 2): the resumed run prepares
    only the 4 batches left (mmengine alone reads and decodes the 6 trained ones first) and logs
    the uninterrupted run's losses."""
    import shutil

    from mmengine.config import Config

    from lakedet import build_detector, train_detector

    def run(work_dir, resume_from=None):
        cfg = Config.fromfile(str(CONFIG_DIR / "tiny_retinanet.py"))
        cfg.train_dataloader.dataset.deeplake_path = shapes[0]
        cfg.train_dataloader.dataset.deeplake_query = "SELECT * WHERE ROW_NUMBER() < 8"
        cfg.train_dataloader.dataset.pipeline = [dict(type="LoadImageFromFile"),
                                                 dict(type="LoadAnnotations", with_bbox=True),
                                                 dict(type="RandomFlip", prob=0.5), dict(type="PackDetInputs")]
        cfg.train_cfg = dict(type="IterBasedTrainLoop", max_iters=10, val_interval=100)
        cfg.default_hooks.checkpoint = dict(type="CheckpointHook", interval=3, by_epoch=False)
        cfg.log_processor = dict(by_epoch=False, window_size=1)
        cfg.randomness = dict(seed=0, deterministic=True)
        cfg.work_dir = str(work_dir)
        # its own visualizer: mmengine keeps one per name in the process, and it writes the losses
        cfg.visualizer = dict(type="DetLocalVisualizer", vis_backends=[dict(type="LocalVisBackend")],
                              name=f"resume-{work_dir.name}")
        if resume_from:
            cfg.resume, cfg.load_from = True, str(resume_from)
        runner = train_detector(build_detector(cfg.model), cfg, validate=False)
        return runner.train_dataloader.dataset.samples_prepared, logged_losses(work_dir)[-1]

    prepared_whole, whole = run(tmp_path / "whole")
    assert prepared_whole == 20 and sorted(whole) == list(range(1, 11))
    (tmp_path / "resumed").mkdir()
    shutil.copy(tmp_path / "whole" / "iter_6.pth", tmp_path / "resumed" / "iter_6.pth")
    prepared, resumed = run(tmp_path / "resumed", tmp_path / "resumed" / "iter_6.pth")
    assert prepared == 8  # iterations 7-10 only: the 6 trained batches were not read again
    assert sorted(resumed) == [7, 8, 9, 10]
    for step, loss in resumed.items():
        assert loss == pytest.approx(whole[step], abs=1e-6), (step, resumed, whole)
