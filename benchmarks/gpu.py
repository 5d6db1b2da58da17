"""Does lakedet keep a GPU busy? Zoo detectors trained from files, from local Deep Lake and from S3.

MMDetection's Faster R-CNN R50-FPN (1333x800, 2 images per GPU) and RTMDet-s (640, 32 per GPU),
their zoo configs as a user's config inherits them (``_base_ = 'mmdet::...'``), random init, AMP
on a GPU, trained for a fixed number of iterations from

  (a) ``files``: MMDetection's ``CocoDataset`` on JPEG files and a COCO JSON,
  (b) ``local``: lakedet's ``DeepLakeDetDataset`` on the same images ingested into a local Deep Lake dataset,
  (c) ``s3``: the same dataset on a local S3 server (moto) behind the latency proxy at 20 ms RTT,

with the CPU's cores as DataLoader workers. Each run is a fresh process; the cases alternate, the
whole set repeats. Per run: iterations/s and images/s over the iterations after the warm-up,
``data_time``'s share of an iteration (the wait for the next batch, as mmengine's ``data_time``),
the GPU's busy share (NVML utilisation sampled every 50 ms over the same iterations), the time
from ``runner.train()`` to the first batch (the model's set-up, the same in every case, and the
loader's start), the CPU the main process and the workers spent per image over the measured
iterations, where the process's time went (imports, building the runner, training) and the peak
GPU memory. Target: (b) and (c) within 3 % of (a)'s iterations/s,
data_time <= 5 % of an iteration.

    python benchmarks/gpu.py              # on a GPU machine: the table, benchmarks/results/gpu.json
    python benchmarks/gpu.py --smoke      # anywhere: each case for two iterations on the CPU

On a machine whose mmcv lacks its compiled ops (see docs/gpu.md), ``mmcv_ops_shim.py`` stands in
for them and the Faster R-CNN takes RoIAlign from torchvision (``use_torchvision=True``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

STARTED = time.perf_counter()  # this process's start, near enough: what a run spends before training is reported
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import loader as bench  # noqa: E402  (the loader benchmark's data and machine line)
import remote  # noqa: E402  (the S3 server, the latency proxy, CPU seconds of a process tree)

CASES = ("files", "local", "s3")
#: model -> its zoo config, images per GPU, warm-up and measured iterations, where num_classes goes
MODELS = {
    "faster-rcnn": dict(base="faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py", batch=2, warmup=20, iters=80,
                        head="roi_head=dict(bbox_head=dict(num_classes={k}){roi}), "),
    "rtmdet-s": dict(base="rtmdet/rtmdet_s_8xb32-300e_coco.py", batch=32, warmup=10, iters=30,
                     head="bbox_head=dict(num_classes={k}), "),
}
CREDS_VARIABLE = "LAKEDET_GPU_BENCH_S3"
#: --smoke's pipeline for both models, a plain one at 320x192 (the zoo's 1333x800 takes minutes per iteration on 2 cores)
SMOKE_PIPELINE = ("[dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True), "
                  "dict(type='Resize', scale=(320, 192), keep_ratio=True), dict(type='RandomFlip', prob=0.5), "
                  "dict(type='PackDetInputs')]")


def mmcv_stand_in() -> bool:
    """True when mmcv's ops are ``mmcv_ops_shim.py`` (RoIAlign must then come from torchvision)."""
    try:
        import mmcv._ext as ext
    except ImportError:
        return False
    return bool(getattr(ext, "STAND_IN", False))


def dataset_text(case: str, data: dict, smoke: bool = False) -> str:
    pipeline = f", pipeline={SMOKE_PIPELINE}" if smoke else ""
    if case == "files":
        return (f"dict(type='CocoDataset', data_root='', ann_file={data['ann']!r}, "
                f"data_prefix=dict(img={data['images']!r}), metainfo=dict(classes={bench.CLASSES!r}){pipeline})")
    path = data["lake"] if case == "local" else data["s3"]
    creds = f", deeplake_credentials=dict(creds='env:{CREDS_VARIABLE}')" if case == "s3" else ""
    return f"dict(type='DeepLakeDetDataset', deeplake_path={path!r}{creds}{pipeline})"


def config_text(model: str, case: str, data: dict, batch: int, workers: int, iters: int, amp: bool,
                smoke: bool = False) -> str:
    """A user's config: the zoo model with its class count, our data, a fixed number of iterations."""
    spec = MODELS[model]
    roi = ", bbox_roi_extractor=dict(roi_layer=dict(use_torchvision=True))" if mmcv_stand_in() else ""
    head = spec["head"].format(k=len(bench.CLASSES), roi=roi)
    lines = [
        f"_base_ = 'mmdet::{spec['base']}'",
        "custom_imports = dict(imports=['lakedet'], allow_failed_imports=False)" if case != "files" else "",
        f"model = dict({head}backbone=dict(init_cfg=None))",  # random init: nothing is downloaded
        f"train_dataloader = dict(batch_size={batch}, num_workers={workers}, persistent_workers=True, "
        f"dataset={dataset_text(case, data, smoke)})",
        f"train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters={iters}, val_interval={iters + 1})",
        "val_cfg = None", "val_dataloader = None", "val_evaluator = None",
        "test_cfg = None", "test_dataloader = None", "test_evaluator = None",
        "param_scheduler = []",
        "log_processor = dict(by_epoch=False)",
        "default_hooks = dict(logger=dict(interval=1000), "
        "checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=100000, save_last=False))",
        "optim_wrapper = dict(type='AmpOptimWrapper', loss_scale='dynamic')" if amp else "",
    ]
    return "\n".join(line for line in lines if line) + "\n"


def cpu_seconds(root: int) -> tuple[float, float]:
    """CPU seconds used so far by process ``root`` and by all its descendants (the loader's workers,
    a worker server and its children); a process gone meanwhile counts nothing."""
    def used(pid: int) -> float:
        try:
            return remote.cpu_seconds(pid)
        except OSError:
            return 0.0

    return used(root), sum(used(pid) for pid in remote.descendants(root))


class GPUBusy:
    """The GPU's utilisation (NVML, else ``nvidia-smi``), sampled every 50 ms between start and stop."""

    def __init__(self, device: int = 0):
        self.samples: list[float] = []
        self.read = None
        try:
            import pynvml

            pynvml.nvmlInit()
            handle = pynvml.nvmlDeviceGetHandleByIndex(device)
            self.read = lambda: float(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu)
            self.source = "nvml"
        except Exception:  # no NVML: nvidia-smi where it exists, else nothing to sample
            self.source = None
            if subprocess.run(["which", "nvidia-smi"], capture_output=True).returncode == 0:
                self.source = "nvidia-smi"
                self.read = lambda: float(subprocess.run(
                    ["nvidia-smi", f"--id={device}", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"],
                    capture_output=True, text=True).stdout.split()[0])
        self._stop = threading.Event()
        self._thread = None

    def start(self) -> None:
        if self.read is None:
            return

        def sample():
            while not self._stop.wait(0.05):
                self.samples.append(self.read())

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()

    def stop(self) -> float | None:
        """The mean busy share over the samples (None where the GPU cannot be read)."""
        self._stop.set()
        if self._thread:
            self._thread.join()
        return round(statistics.fmean(self.samples) / 100, 4) if self.samples else None


def run_one(config: str, warmup: int, work_dir: str) -> dict:
    """Train ``config`` in this process; the timings of the iterations after ``warmup``."""
    import torch
    from mmengine.config import Config
    from mmengine.hooks import Hook
    from mmengine.runner import Runner

    cuda = torch.cuda.is_available()
    busy = GPUBusy()

    class Timing(Hook):
        priority = "VERY_LOW"

        def __init__(self):
            self.called = self.last = self.first_batch = None  # called: when runner.train() was
            self.time, self.data_time = [], []
            self.cpu = []  # (main, workers) CPU seconds when the measured iterations begin and end
            self.peak = 0  # mmengine's log processor resets torch's peak statistic: keep our own

        def before_train(self, runner):  # the DataLoader's workers have been started by now
            self.last = time.perf_counter()

        def before_train_iter(self, runner, batch_idx, data_batch=None):
            now = time.perf_counter()  # the batch has arrived: the wait since the last step
            if self.first_batch is None:
                self.first_batch = now - self.called
            self.data_time.append(now - self.last)

        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            if cuda:
                torch.cuda.synchronize()
                self.peak = max(self.peak, torch.cuda.max_memory_allocated())
            now = time.perf_counter()
            self.time.append(now - self.last)
            self.last = now
            if len(self.time) == warmup:
                busy.start()
                self.cpu.append(cpu_seconds(os.getpid()))
            if len(self.time) == runner.max_iters:
                self.cpu.append(cpu_seconds(os.getpid()))

    imported = time.perf_counter()
    cfg = Config.fromfile(config)
    cfg.work_dir = work_dir
    runner = Runner.from_cfg(cfg)
    built = time.perf_counter()
    timing = Timing()
    runner.register_hook(timing)
    timing.called = time.perf_counter()
    runner.train()
    gpu_busy = busy.stop()
    ended = time.perf_counter()
    times, waits = timing.time[warmup:], timing.data_time[warmup:]
    batch = cfg.train_dataloader.batch_size
    (main0, workers0), (main1, workers1) = timing.cpu
    measured_images = batch * len(times)
    return dict(
        iterations=len(times), warmup=warmup, batch=batch,
        it_per_s=round(len(times) / sum(times), 3), img_per_s=round(batch * len(times) / sum(times), 2),
        data_share=round(sum(waits) / sum(times), 4), gpu_busy=gpu_busy, gpu_busy_source=busy.source,
        first_batch_s=round(timing.first_batch, 2),
        main_cpu_ms_per_img=round(1000 * (main1 - main0) / measured_images, 2),
        workers_cpu_ms_per_img=round(1000 * (workers1 - workers0) / measured_images, 2),
        phases_s=dict(imports=round(imported - STARTED, 1), runner_built=round(built - imported, 1),
                      train=round(ended - built, 1)),
        iteration_s=dict(median=round(statistics.median(times), 4), max=round(max(times), 4)),
        gpu_memory_gb=round(timing.peak / 2**30, 2) if cuda else None,
        device=torch.cuda.get_device_name() if cuda else "cpu", amp=cfg.optim_wrapper.get("type") == "AmpOptimWrapper")


def run_in_subprocess(config: str, warmup: int, work_dir: str, timeout: float) -> dict:
    started = time.perf_counter()
    out = subprocess.run([sys.executable, __file__, "--run", config, "--warmup", str(warmup), "--work-dir", work_dir],
                         capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"{config} failed:\n{out.stderr[-3000:]}")
    return {**json.loads(out.stdout.strip().splitlines()[-1]), "process_s": round(time.perf_counter() - started, 1)}


def summarise(runs: list[dict]) -> list[dict]:
    """Per model and case: the median over repeats, the spread, and the ratio to files in the same repeat."""
    rows = []
    for model in dict.fromkeys(r["model"] for r in runs):
        for case in CASES:
            mine = [r for r in runs if r["model"] == model and r["case"] == case and "it_per_s" in r]
            if not mine:
                continue
            ratios = []
            for r in mine:
                base = [b for b in runs if b["model"] == model and b["case"] == "files" and b["repeat"] == r["repeat"]
                        and "it_per_s" in b]
                if base:
                    ratios.append(r["it_per_s"] / base[0]["it_per_s"])
            its = [r["it_per_s"] for r in mine]
            busy = [r["gpu_busy"] for r in mine if r["gpu_busy"] is not None]
            rows.append(dict(
                model=model, case=case, repeats=len(mine),
                it_per_s=round(statistics.median(its), 3), it_per_s_spread=[min(its), max(its)],
                img_per_s=round(statistics.median(r["img_per_s"] for r in mine), 1),
                vs_files=round(statistics.median(ratios), 3) if ratios else None,
                vs_files_spread=[round(min(ratios), 3), round(max(ratios), 3)] if ratios else None,
                data_share=round(statistics.median(r["data_share"] for r in mine), 4),
                gpu_busy=round(statistics.median(busy), 3) if busy else None,
                first_batch_s=round(statistics.median(r["first_batch_s"] for r in mine), 2)))
    return rows


def table(rows: list[dict]) -> str:
    head = (f"{'model':12s} {'data':6s} {'it/s':>7s} {'spread':>15s} {'img/s':>7s} {'vs files':>9s} "
            f"{'data_time':>9s} {'GPU busy':>8s} {'1st batch':>9s}")
    lines = [head, "-" * len(head)]
    for r in rows:
        spread = f"{r['it_per_s_spread'][0]:.2f}-{r['it_per_s_spread'][1]:.2f}"
        vs = f"{r['vs_files']:.3f}" if r["vs_files"] is not None else "-"
        busy = f"{100 * r['gpu_busy']:.1f}%" if r["gpu_busy"] is not None else "n/a"
        lines.append(f"{r['model']:12s} {r['case']:6s} {r['it_per_s']:7.2f} {spread:>15s} {r['img_per_s']:7.1f} "
                     f"{vs:>9s} {100 * r['data_share']:8.2f}% {busy:>8s} {r['first_batch_s']:8.1f}s")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true",
                        help="each case for two iterations, one 320x192 image per batch (on the CPU)")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--rtt-ms", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=os.cpu_count(), help="DataLoader workers (default: the cores)")
    parser.add_argument("--images", type=int, default=None, help="default: enough for every run's iterations")
    parser.add_argument("--data", default=None, help="where the data is written (default: a temporary folder)")
    parser.add_argument("--timeout", type=float, default=240.0, help="seconds one run may take")
    parser.add_argument("--out", default=None, help="default: benchmarks/results/gpu.json (gpu-smoke.json)")
    parser.add_argument("--run", help=argparse.SUPPRESS)
    parser.add_argument("--warmup", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--work-dir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.run:
        print(json.dumps(run_one(args.run, args.warmup, args.work_dir)))
        return 0

    import torch

    models = args.models.split(",")
    cases = args.cases.split(",")
    for name in models:
        if name not in MODELS:
            parser.error(f"--models: {name!r} is not one of {', '.join(MODELS)}")
    for name in cases:
        if name not in CASES:
            parser.error(f"--cases: {name!r} is not one of {', '.join(CASES)}")
    cuda = torch.cuda.is_available()
    plan = {m: dict(MODELS[m]) for m in models}
    if args.smoke:
        for spec in plan.values():
            spec.update(batch=1, warmup=1, iters=1)
        args.repeats = 1
    images = args.images or max(spec["batch"] * (spec["warmup"] + spec["iters"]) for spec in plan.values())
    out = Path(args.out or HERE / "results" / ("gpu-smoke.json" if args.smoke else "gpu.json"))
    machine = bench.machine() + (f", {torch.cuda.get_device_name()}" if cuda else ", no GPU")
    print(f"machine: {machine}; torch {torch.__version__}; mmcv ops: "
          f"{'stand-in (torchvision nms, RoIAlign)' if mmcv_stand_in() else 'compiled'}", flush=True)

    root = Path(args.data or tempfile.mkdtemp(prefix="lakedet-gpu-"))
    started = time.perf_counter()
    data = bench.make_data(root / f"coco-{images}", images)
    server = proxy = None
    runs: list[dict] = []
    try:
        if "s3" in cases:
            from lakedet.tools.ingest import ingest_coco

            server, creds = remote.start_s3()
            data["s3"] = f"s3://lakedet/coco-{images}"
            ingest_coco(data["ann"], data["images"], data["s3"], masks=None, creds=creds)
            proxy = remote.Proxy(creds["endpoint_url"], args.rtt_ms)
            os.environ[CREDS_VARIABLE] = json.dumps({**creds, "endpoint_url": proxy.endpoint})
        print(f"data: {images} images of 640x480 in {time.perf_counter() - started:.0f} s", flush=True)
        for repeat in range(args.repeats):
            for model, spec in plan.items():
                order = cases[repeat % len(cases):] + cases[:repeat % len(cases)]  # alternate who goes first
                for case in order:
                    work = root / "work" / f"{model}-{case}-{repeat}"
                    work.mkdir(parents=True, exist_ok=True)
                    config = work / f"{model}_{case}.py"
                    config.write_text(config_text(model, case, data, spec["batch"], args.workers,
                                                  spec["warmup"] + spec["iters"], amp=cuda, smoke=args.smoke))
                    record = dict(model=model, case=case, repeat=repeat)
                    try:
                        record.update(run_in_subprocess(str(config), spec["warmup"], str(work), args.timeout))
                    except Exception as error:  # one broken case does not hide the others' figures
                        record["error"] = str(error)[-3000:]
                    runs.append(record)
                    shown = (f"{record['it_per_s']:.2f} it/s, data {100 * record['data_share']:.1f}%, "
                             f"GPU busy {record['gpu_busy']}, first batch {record['first_batch_s']} s"
                             if "it_per_s" in record else "FAILED: " + record["error"][-600:])
                    print(f"[{repeat}] {model:12s} {case:6s} {shown}", flush=True)
                    write(out, machine, args, runs)
    finally:
        if proxy:
            proxy.stop()
        if server:
            server.kill()
    rows = write(out, machine, args, runs)
    print(table(rows))
    print(f"wrote {out}")
    return 0 if all("it_per_s" in r for r in runs) else 1


def write(out: Path, machine: str, args, runs: list[dict]) -> list[dict]:
    rows = summarise(runs)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(dict(
        command="python benchmarks/gpu.py" + (" --smoke" if args.smoke else ""), machine=machine,
        when=bench.now(), rtt_ms=args.rtt_ms, workers=args.workers, repeats=args.repeats,
        target="local and s3 it/s >= 0.97x files; data_time <= 5% of an iteration",
        summary=rows, runs=runs), indent=1))
    return rows


if __name__ == "__main__":
    sys.exit(main())
