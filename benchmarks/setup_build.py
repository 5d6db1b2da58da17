"""How long a clean build of mmcv (with its CPU ops) takes on this machine.

One command (``python benchmarks/setup_build.py``) builds the mmcv wheel the setup builds on a first
run, without pip's cache, and writes ``benchmarks/results/setup.json``: wall time, the build's CPU
time (user + system of pip and its children, which a busy machine does not inflate) and the load
average before and after (the machine may be shared with other jobs: the load says so).
One build, not repeated: it takes minutes of every core it is given.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import loader as bench  # noqa: E402  (write_results, machine)

MMCV = "mmcv==2.1.0"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2, help="MAX_JOBS for the build (default 2)")
    parser.add_argument("--python", default=sys.executable, help="the environment's interpreter (torch installed)")
    parser.add_argument("--out", default=str(HERE / "results" / "setup.json"))
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="mmcvbuild-"))
    env = dict(os.environ, MMCV_WITH_OPS="1", FORCE_CUDA="0", MAX_JOBS=str(args.jobs))
    command = [args.python, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-cache-dir",
               MMCV, "-w", str(work)]
    load_before = os.getloadavg()
    before = os.times()
    started = time.perf_counter()
    done = subprocess.run(command, env=env, check=False)
    wall = time.perf_counter() - started
    after = os.times()
    load_after = os.getloadavg()
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    wheels = [p.name for p in work.glob("*.whl")]
    shutil.rmtree(work, ignore_errors=True)
    result = dict(
        machine=bench.machine(), command=" ".join(f"{k}={env[k]}" for k in ("MMCV_WITH_OPS", "FORCE_CUDA", "MAX_JOBS"))
        + " " + " ".join(command[:-2]), returncode=done.returncode, wheel=wheels,
        mmcv_build=dict(wall_s=round(wall, 1), wall_min=round(wall / 60, 1), cpu_s=round(cpu, 1),
                        cpu_min=round(cpu / 60, 1)),
        load_average_before=load_before, load_average_after=load_after,
        note="one clean build (no pip cache); on a machine shared with other jobs the wall time grows with the load, the CPU time does not",
    )
    print(f"mmcv build: {wall / 60:.1f} min wall, {cpu / 60:.1f} min CPU, rc {done.returncode}, "
          f"load {load_before} -> {load_after}")
    bench.write_results(args.out, result)
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
