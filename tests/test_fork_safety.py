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
    subprocess.run([sys.executable, "-c", "import sys, json; from lakedet.synthetic import make_shapes_dataset; "
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
