"""Loader benchmark: MMDetection's native files vs lakedet's Deep Lake loaders vs the in-memory limit.

One command (``python benchmarks/loader.py``) prints tables and writes ``benchmarks/results/loader.json``.

The same N JPEG images (640x480, 1-10 boxes each) exist twice: as files + a COCO JSON, and as a Deep
Lake dataset holding the identical JPEG bytes (written by ``lakedet ingest coco``). Every loader runs
through the same mmengine DataLoader (batch 8, ``DefaultSampler(shuffle=True)``, ``pseudo_collate``):

* ``native``: MMDetection's ``CocoDataset`` reading the files;
* ``python``: ``DeepLakeDetDataset(deeplake_dataloader_type="python")``, one row at a time;
* ``cpp``: ``DeepLakeDetDataset(deeplake_dataloader_type="c++")``, batched native reads;
* ``limit``: the ``cpp`` loader with the JPEG bytes already in memory: everything but storage.

Throughput is the median over ``--epochs`` passes (persistent workers) of images / second.
Also measured: seconds to the first batch and peak RSS for 1k and 100k-row datasets (separate
processes), and the share of iteration time spent waiting for data in the demo's training (its own
epoch loop and hooks; mmengine's ``data_time / time``). ``--parts`` measures one part alone and keeps
the other parts' results already in the file.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
BATCH = 8
PIPELINES = {
    "minimal": [
        dict(type="LoadImageFromFile"),
        dict(type="LoadAnnotations", with_bbox=True),
        dict(type="PackDetInputs"),
    ],
    # the seed's train pipeline, in MMDetection 3 terms (Normalize/Pad live in the model's data_preprocessor)
    "seed": [
        dict(type="LoadImageFromFile"),
        dict(type="LoadAnnotations", with_bbox=True),
        dict(type="Resize", scale=(416, 416), keep_ratio=True),
        dict(type="RandomFlip", prob=0.5),
        dict(type="PhotoMetricDistortion"),
        dict(type="PackDetInputs"),
    ],
}
LOADERS = ("native", "python", "cpp", "limit")
PARTS = ("throughput", "startup", "demo")
CLASSES = ("box", "disc", "bar")


# --- data ---------------------------------------------------------------------------------------

def render_jpegs(n: int, width: int, height: int, seed: int, max_boxes: int = 10):
    """``n`` JPEGs (textured background, 1..max_boxes filled rectangles) with LTWH boxes and labels."""
    import cv2

    rng = np.random.default_rng(seed)
    for _ in range(n):
        coarse = rng.integers(30, 220, (6, 8, 3), dtype=np.uint8)
        img = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC).astype(np.int16)
        img = np.clip(img + rng.integers(-20, 21, img.shape, dtype=np.int16), 0, 255).astype(np.uint8)
        boxes, labels = [], []
        for _ in range(int(rng.integers(1, max_boxes + 1))):
            w = int(rng.integers(max(2, width // 16), max(3, width // 3)))
            h = int(rng.integers(max(2, height // 16), max(3, height // 3)))
            x, y = int(rng.integers(0, width - w)), int(rng.integers(0, height - h))
            cv2.rectangle(img, (x, y), (x + w - 1, y + h - 1), tuple(int(c) for c in rng.integers(0, 256, 3)), -1)
            boxes.append([x, y, w, h])
            labels.append(int(rng.integers(0, len(CLASSES))))
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 90])
        yield buf.tobytes(), boxes, labels


def make_data(root: Path, n: int, width: int = 640, height: int = 480, seed: int = 0) -> dict:
    """Files + COCO JSON and a Deep Lake copy of the same bytes under ``root``; reused when present."""
    from lakedet.tools.ingest import ingest_coco

    root.mkdir(parents=True, exist_ok=True)
    ann, images, lake = root / "annotations.json", root / "images", root / "lake"
    done = root / "complete"
    if not done.exists():
        images.mkdir(exist_ok=True)
        coco = dict(images=[], annotations=[], categories=[dict(id=i + 1, name=c) for i, c in enumerate(CLASSES)])
        for i, (data, boxes, labels) in enumerate(render_jpegs(n, width, height, seed)):
            name = f"{i:06d}.jpg"
            (images / name).write_bytes(data)
            coco["images"].append(dict(id=i + 1, file_name=name, width=width, height=height))
            for box, label in zip(boxes, labels):
                coco["annotations"].append(dict(id=len(coco["annotations"]) + 1, image_id=i + 1, bbox=box,
                                                area=box[2] * box[3], category_id=label + 1, iscrowd=0))
        ann.write_text(json.dumps(coco))
        ingest_coco(ann, images, str(lake), masks=None, overwrite=True)
        done.write_text("ok")
    return dict(ann=str(ann), images=str(images) + "/", lake=str(lake))


# --- loaders ------------------------------------------------------------------------------------

def dataset_cfg(loader: str, pipeline: list, data: dict) -> dict:
    if loader == "native":
        return dict(type="CocoDataset", ann_file=data["ann"], data_prefix=dict(img=data["images"]),
                    metainfo=dict(classes=CLASSES), filter_cfg=None, pipeline=pipeline)
    cfg = dict(type="DeepLakeDetDataset", deeplake_path=data["lake"], pipeline=pipeline,
               deeplake_dataloader_type="python" if loader == "python" else "c++")
    if loader == "limit":
        cfg["type"] = "InMemoryDetDataset"
    return cfg


def register_limit() -> None:
    """``InMemoryDetDataset``: lakedet's c++ loader reading the stored JPEG bytes from memory."""
    from mmdet.registry import DATASETS

    from lakedet.data.dataset import DeepLakeDetDataset

    if "InMemoryDetDataset" in DATASETS.module_dict:
        return

    class MemoryReader:
        def __init__(self, stored: list):
            self.stored = stored

        def read(self, row):
            return self.stored[row]

        def start(self, rows):
            return {row: Stored(self.stored[row]) for row in rows}

    class Stored:
        def __init__(self, value):
            self.value = value

        def result(self):
            return self.value

    @DATASETS.register_module()
    class InMemoryDetDataset(DeepLakeDetDataset):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.reader = MemoryReader(self.opened[self.tensor_map.img].get_bytes(list(range(len(self.opened)))))


def build_loader(loader: str, pipeline: str, data: dict, workers: int, seed: int = 0):
    from mmengine.runner import Runner

    cfg = dict(batch_size=BATCH, num_workers=workers, persistent_workers=workers > 0,
               sampler=dict(type="DefaultSampler", shuffle=True, seed=seed),
               collate_fn=dict(type="pseudo_collate"),
               dataset=dataset_cfg(loader, PIPELINES[pipeline], data))
    return Runner.build_dataloader(cfg, seed=seed)


def epoch_rates(loader, epochs: int) -> list[float]:
    """Images/s of each of ``epochs`` full passes."""
    rates = []
    for epoch in range(epochs):
        loader.sampler.set_epoch(epoch)
        count, started = 0, time.perf_counter()
        for batch in loader:
            count += len(batch["inputs"])
        rates.append(count / (time.perf_counter() - started))
    return rates


def throughput(loader, epochs: int) -> float:
    """Median images/s over ``epochs`` full passes."""
    return statistics.median(epoch_rates(loader, epochs))


def measure(pipeline: str, name: str, workers: int, data_root: Path, n: int, epochs: int) -> float:
    """One loader's throughput, in this (fresh) process."""
    import lakedet  # noqa: F401  (registers DeepLakeDetDataset and the transforms)
    from mmengine.registry import init_default_scope
    from mmengine.utils.dl_utils import set_multi_processing

    init_default_scope("mmdet")
    set_multi_processing(mp_start_method="fork", opencv_num_threads=0)  # what mmengine's Runner does
    register_limit()
    return throughput(build_loader(name, pipeline, make_data(data_root, n), workers), epochs)


def measure_in_subprocess(pipeline: str, name: str, workers: int, data_root: Path, n: int, epochs: int) -> float:
    """``measure`` in a fresh process: loaders must not share a process (Deep Lake's native thread
    pool, once started, slows torch's multi-threaded copies in the same process)."""
    out = subprocess.run([sys.executable, __file__, "--measure", pipeline, name, str(workers), "--data",
                          str(data_root), "--n", str(n), "--epochs", str(epochs)],
                         capture_output=True, text=True, check=False)
    if out.returncode:
        raise RuntimeError(f"measuring {pipeline}/{name}/workers={workers} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])["img_per_s"]


# --- start-up -----------------------------------------------------------------------------------

def startup_probe(path: str) -> dict:
    """Run in a fresh process: seconds from opening to the first batch (c++ loader, 2 workers, the
    ``minimal`` pipeline), peak RSS."""
    import lakedet  # noqa: F401  (imports are not part of the start-up being measured)
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner

    init_default_scope("mmdet")
    started, cpu = time.perf_counter(), time.process_time()
    loader = Runner.build_dataloader(dict(
        batch_size=BATCH, num_workers=2, sampler=dict(type="DefaultSampler", shuffle=True, seed=0),
        collate_fn=dict(type="pseudo_collate"),
        dataset=dict(type="DeepLakeDetDataset", deeplake_path=path, deeplake_dataloader_type="c++",
                     pipeline=PIPELINES["minimal"])), seed=0)
    iterator = iter(loader)
    next(iterator)
    first, first_cpu = time.perf_counter() - started, time.process_time() - cpu
    del iterator  # the workers exit, so that their peak is counted below
    main = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    worker = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    # peak_rss_mb: the training process plus one worker (a worker's peak includes the pages it
    # shares with the training process, so this overstates the sum; it is the same for 1k and 100k)
    # first_batch_cpu_s: the training process's CPU time until then (open, annotations, workers
    # started), which a busy machine does not inflate; the workers' decoding is not in it
    return dict(first_batch_s=first, first_batch_cpu_s=first_cpu, main_rss_mb=main, worker_rss_mb=worker,
                peak_rss_mb=main + worker)


def make_tiny_lake(path: Path, n: int) -> str:
    """``n`` rows of 32x32 JPEGs with 1-10 boxes (written in chunks); reused when present."""
    import deeplake
    from deeplake import types

    done = path.with_suffix(".complete")
    if done.exists():
        return str(path)
    ds = deeplake.create(str(path))
    ds.add_column("images", types.Image(dtype="uint8", sample_compression="jpeg"))
    ds.add_column("boxes", types.BoundingBox(dtype="float32", format="ltwh", bbox_type="pixel"))
    ds.add_column("labels", types.ClassLabel(types.Array("uint32", dimensions=1)))
    ds["boxes"].metadata["coords"] = {"mode": "LTWH", "type": "pixel"}
    ds["labels"].metadata["class_names"] = list(CLASSES)
    samples = list(render_jpegs(64, 32, 32, seed=1))  # 64 distinct images, repeated
    for start in range(0, n, 5000):
        chunk = [samples[i % len(samples)] for i in range(start, min(n, start + 5000))]
        ds.append(dict(images=[c[0] for c in chunk],
                       boxes=[np.asarray(c[1], np.float32) for c in chunk],
                       labels=[np.asarray(c[2], np.uint32) for c in chunk]))
    ds.commit(f"{n} tiny rows for the start-up benchmark")
    done.write_text("ok")
    return str(path)


def startup(root: Path, repeats: int = 1) -> dict:
    """First batch and peak RSS of 1k and 100k rows: ``repeats`` fresh processes each, alternating
    1k / 100k (ABBA order from the second round), so that a drift of the machine's load hits both."""
    paths = {n: make_tiny_lake(root / f"tiny-{n}", n) for n in (1000, 100_000)}
    runs = {n: [] for n in paths}
    for round_ in range(repeats):
        for n in (paths if round_ % 2 == 0 else list(paths)[::-1]):
            probe = subprocess.run([sys.executable, __file__, "--startup-probe", paths[n]], capture_output=True,
                                   text=True, check=False)
            if probe.returncode:
                raise RuntimeError(f"start-up probe on {paths[n]} failed:\n{probe.stderr[-3000:]}")
            runs[n].append(json.loads(probe.stdout.strip().splitlines()[-1]))
            print(f"  {n:>6} rows: first batch {runs[n][-1]['first_batch_s']:.3f} s, "
                  f"peak RSS {runs[n][-1]['peak_rss_mb']:.0f} MB", flush=True)
    out = {}
    for n, probes in runs.items():
        firsts = [p["first_batch_s"] for p in probes]
        keys = [key for key in probes[0] if all(key in p for p in probes)]
        median = {key: statistics.median(p[key] for p in probes) for key in keys}
        out[n] = dict(median, first_batch_s_runs=[round(f, 3) for f in firsts],
                      first_batch_s_spread=[round(min(firsts), 3), round(max(firsts), 3)])
    return out


# --- the demo's data wait ------------------------------------------------------------------------

def demo_data_wait(root: Path, loader: str, epochs: int) -> dict:
    """The demo's own training (``EpochBasedTrainLoop``, its hooks, 2 workers) for ``epochs`` epochs
    with ``loader``; mmengine's ``data_time`` and ``time`` of every iteration.

    ``time`` (``IterTimerHook``) is the whole iteration, the wait included; ``data_time`` is the
    time from the end of the previous iteration to the batch being handed over (the wait for the
    DataLoader, plus whatever hooks run after ``IterTimerHook``). The share of the wait is
    ``sum(data_time) / sum(time)`` over the iterations of an epoch. The demo's loop matters:
    mmengine's ``IterBasedTrainLoop`` sleeps 2 s whenever its DataLoader restarts (``time.sleep(2)``
    in ``_InfiniteDataloaderIterator``), which counts as ``data_time``; the demo trains by epochs.
    """
    from mmengine.config import Config
    from mmengine.hooks import Hook

    from lakedet.tools.demo import DEMO_CONFIG, ensure_demo_datasets
    from lakedet.engine.runner import build_runner

    train_path, _ = ensure_demo_datasets(root / "demo")
    cfg = Config.fromfile(str(DEMO_CONFIG))
    if loader == "native":
        files = export_files(train_path, root / "demo-files")
        cfg.train_dataloader.dataset = dict(type="CocoDataset", ann_file=files["ann"],
                                            data_prefix=dict(img=files["images"]),
                                            metainfo=dict(classes=("circle", "square", "triangle")),
                                            filter_cfg=dict(filter_empty_gt=True),
                                            pipeline=cfg.train_pipeline)
    else:
        cfg.train_dataloader.dataset.deeplake_path = train_path
        cfg.train_dataloader.dataset.deeplake_dataloader_type = "python" if loader == "python" else "c++"
    # the demo's loop and hooks (the logger every 10 iterations included); no validation, no checkpoint
    cfg.train_cfg = dict(type="EpochBasedTrainLoop", max_epochs=epochs, val_interval=10 ** 9)
    cfg.default_hooks.checkpoint = dict(type="CheckpointHook", interval=10 ** 9)
    cfg.work_dir = str(root / f"demo-work-{loader}")
    cfg.log_level = "WARNING"
    iterations = []

    class DataWait(Hook):
        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            hub = runner.message_hub
            iterations.append((runner.epoch, batch_idx, hub.get_scalar("train/data_time").current(),
                               hub.get_scalar("train/time").current()))

    runner = build_runner(cfg, validate=False)
    runner.register_hook(DataWait(), priority="LOWEST")
    runner.train()
    out = dict(iterations=len(iterations), epochs={})
    for epoch in sorted({it[0] for it in iterations}):
        rows = [it for it in iterations if it[0] == epoch]
        data, total = [r[2] for r in rows], [r[3] for r in rows]
        # what the demo's log prints every 10 iterations: window means of the last 10 iterations
        windows = [statistics.mean(data[i - 10:i]) for i in range(10, len(data) + 1, 10)]
        out["epochs"][str(epoch + 1)] = dict(
            iterations=len(rows), wait_share=sum(data) / sum(total), data_time_s=sum(data), time_s=sum(total),
            first_iteration_data_time_s=data[0], median_data_time_s=statistics.median(data),
            median_time_s=statistics.median(total),
            wait_share_without_first_iteration=sum(data[1:]) / sum(total[1:]),
            logged_data_time_s=[min(windows), max(windows)] if windows else None)
    return out


def export_files(lake_path: str, root: Path) -> dict:
    """The demo's Deep Lake split as files + COCO JSON (the same JPEG bytes)."""
    import deeplake

    ann, images = root / "annotations.json", root / "images"
    if not ann.exists():
        images.mkdir(parents=True, exist_ok=True)
        ds = deeplake.open_read_only(lake_path)
        coco = dict(images=[], annotations=[],
                    categories=[dict(id=i + 1, name=c) for i, c in enumerate(("circle", "square", "triangle"))])
        for row in range(len(ds)):
            data = ds["images"].get_bytes(row)
            (images / f"{row:06d}.jpg").write_bytes(data)
            coco["images"].append(dict(id=row + 1, file_name=f"{row:06d}.jpg", width=128, height=128))
            for box, label in zip(np.asarray(ds["boxes"][row]).reshape(-1, 4), np.asarray(ds["labels"][row]).reshape(-1)):
                coco["annotations"].append(dict(id=len(coco["annotations"]) + 1, image_id=row + 1,
                                                bbox=[float(v) for v in box], area=float(box[2] * box[3]),
                                                category_id=int(label) + 1, iscrowd=0))
        ann.write_text(json.dumps(coco))
    return dict(ann=str(ann), images=str(images) + "/")


# --- report -------------------------------------------------------------------------------------

def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"


def now() -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())


def write_results(path, result: dict) -> None:
    """Write a benchmark's result as indented JSON (folders created) and say where."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwritten: {out}")


def table(headers, rows) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows)]
    line = lambda r: "| " + " | ".join(str(v).ljust(w) for v, w in zip(r, widths)) + " |"  # noqa: E731
    return "\n".join([line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1000, help="images (default 1000)")
    parser.add_argument("--epochs", type=int, default=3, help="passes per measurement; the median counts")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--loaders", nargs="+", default=list(LOADERS), choices=LOADERS)
    parser.add_argument("--pipelines", nargs="+", default=list(PIPELINES), choices=list(PIPELINES))
    parser.add_argument("--data", default=str(HERE / ".data"), help="where the benchmark data is built and kept")
    parser.add_argument("--out", default=str(HERE / "results" / "loader.json"))
    parser.add_argument("--parts", nargs="+", default=list(PARTS), choices=PARTS,
                        help="what to measure (default: all); the other parts' results already in --out are kept")
    parser.add_argument("--skip-startup", action="store_true", help="the same as leaving 'startup' out of --parts")
    parser.add_argument("--startup-repeats", type=int, default=5, help="fresh processes per dataset size")
    parser.add_argument("--demo-epochs", type=int, default=2, help="epochs of the demo's training per run (0: skip)")
    parser.add_argument("--demo-repeats", type=int, default=2, help="runs per loader, the loaders alternating")
    parser.add_argument("--startup-probe", help=argparse.SUPPRESS)
    parser.add_argument("--demo-probe", nargs=2, metavar=("LOADER", "EPOCHS"), help=argparse.SUPPRESS)
    parser.add_argument("--measure", nargs=3, metavar=("PIPELINE", "LOADER", "WORKERS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.startup_probe:
        print(json.dumps(startup_probe(args.startup_probe)))
        return 0
    if args.demo_probe:
        print(json.dumps(demo_data_wait(Path(args.data), args.demo_probe[0], int(args.demo_probe[1]))))
        return 0
    if args.measure:
        pipeline, name, workers = args.measure
        print(json.dumps(dict(img_per_s=measure(pipeline, name, int(workers), Path(args.data), args.n, args.epochs))))
        return 0
    parts = [p for p in args.parts if not (p == "startup" and args.skip_startup)
             and not (p == "demo" and not args.demo_epochs)]

    root = Path(args.data)
    print(f"machine: {machine()}")
    # a part measured alone replaces its own keys in --out and keeps the others' (one file, one source)
    out = Path(args.out)
    result = json.loads(out.read_text()) if out.exists() and set(parts) != set(PARTS) else {}
    result["machine"] = machine()
    runs = result.setdefault("measured", {})
    rows = result.get("rows", [])
    if "throughput" in parts:
        load_before = os.getloadavg()
        print(f"building / reusing {args.n} JPEG images (640x480) under {root} ...", flush=True)
        make_data(root / f"coco-{args.n}", args.n)
        rows = []
        for pipeline in args.pipelines:
            for workers in args.workers:
                for name in args.loaders:
                    rate = measure_in_subprocess(pipeline, name, workers, root / f"coco-{args.n}", args.n, args.epochs)
                    rows.append(dict(pipeline=pipeline, loader=name, workers=workers, img_per_s=round(rate, 1)))
                    print(f"  {pipeline:8s} {name:7s} workers={workers}: {rate:7.1f} img/s", flush=True)
        result.update(images=args.n, batch_size=BATCH, rows=rows)

        def rate(pipeline, loader, workers=2):
            found = [r["img_per_s"] for r in rows if (r["pipeline"], r["loader"], r["workers"]) == (pipeline, loader, workers)]
            return found[0] if found else None

        for pipeline in PIPELINES:
            for other in ("native", "limit"):
                a, b = rate(pipeline, "cpp"), rate(pipeline, other)
                if a and b:
                    result[f"{pipeline}_cpp_vs_{other}_w2"] = round(a / b, 3)
        runs["throughput"] = dict(command=f"python benchmarks/loader.py --parts throughput", when=now(),
                                  load_average_before=load_before, load_average_after=os.getloadavg())
    if "startup" in parts:
        load_before = os.getloadavg()
        print(f"start-up on 1k and 100k rows, {args.startup_repeats} fresh processes each ...", flush=True)
        probes = startup(root, args.startup_repeats)
        result["startup"] = {str(k): v for k, v in probes.items()}
        result["first_batch_s_100k"] = round(probes[100_000]["first_batch_s"], 3)
        result["first_batch_s_1k"] = round(probes[1000]["first_batch_s"], 3)
        if "first_batch_cpu_s" in probes[100_000]:
            result["first_batch_cpu_s_100k"] = round(probes[100_000]["first_batch_cpu_s"], 3)
        result["rss_ratio_100k_vs_1k"] = round(probes[100_000]["peak_rss_mb"] / probes[1000]["peak_rss_mb"], 3)
        runs["startup"] = dict(command=f"python benchmarks/loader.py --parts startup --startup-repeats "
                                       f"{args.startup_repeats}", when=now(), repeats=args.startup_repeats,
                               statistic="median of the fresh processes",
                               load_average_before=load_before, load_average_after=os.getloadavg())
    if "demo" in parts:
        load_before = os.getloadavg()
        result.pop("demo_data_wait", None)  # the 60-iteration IterBasedTrainLoop measure it replaces
        print(f"the demo's training, {args.demo_epochs} epochs per run, {args.demo_repeats} runs per loader ...",
              flush=True)
        loaders = ("native", "python", "cpp")
        demo = {name: [] for name in loaders}
        for round_ in range(args.demo_repeats):
            for name in (loaders if round_ % 2 == 0 else loaders[::-1]):
                probe = subprocess.run([sys.executable, __file__, "--demo-probe", name, str(args.demo_epochs),
                                        "--data", str(root)], capture_output=True, text=True, check=False)
                if probe.returncode:
                    raise RuntimeError(f"the demo training run with {name} failed:\n{probe.stderr[-3000:]}")
                demo[name].append(json.loads(probe.stdout.strip().splitlines()[-1]))
                last = demo[name][-1]["epochs"][str(args.demo_epochs)]
                print(f"  {name:6s} epoch {args.demo_epochs}: data_time / time = {last['wait_share']:.4f} "
                      f"(median iteration {last['median_time_s']:.3f} s, median data_time "
                      f"{last['median_data_time_s']:.4f} s; epoch 1: {demo[name][-1]['epochs']['1']['wait_share']:.4f})",
                      flush=True)
        steady = str(args.demo_epochs)
        summary = {}
        for name, probes in demo.items():
            shares = [p["epochs"][steady]["wait_share"] for p in probes]
            firsts = [p["epochs"]["1"]["wait_share"] for p in probes]
            summary[name] = dict(
                wait_share=round(statistics.median(shares), 4), wait_share_runs=[round(x, 4) for x in shares],
                epoch1_wait_share_runs=[round(x, 4) for x in firsts],
                median_time_s=round(statistics.median(p["epochs"][steady]["median_time_s"] for p in probes), 3),
                median_data_time_s=round(statistics.median(p["epochs"][steady]["median_data_time_s"] for p in probes), 4),
                logged_data_time_s=[round(min(p["epochs"][steady]["logged_data_time_s"][0] for p in probes), 4),
                                    round(max(p["epochs"][steady]["logged_data_time_s"][1] for p in probes), 4)])
        result["demo_wait"] = dict(
            definition="sum(data_time) / sum(time) over the iterations of the last epoch, mmengine's IterTimerHook "
                       "values (time includes data_time), the demo's EpochBasedTrainLoop and hooks; median of the runs",
            epochs_per_run=args.demo_epochs, runs_per_loader=args.demo_repeats, loaders=summary, raw=demo)
        runs["demo"] = dict(command=f"python benchmarks/loader.py --parts demo --demo-epochs {args.demo_epochs} "
                                    f"--demo-repeats {args.demo_repeats}", when=now(),
                            load_average_before=load_before, load_average_after=os.getloadavg())

    print()
    print(table(["pipeline", "loader", "workers", "img/s"],
                [(r["pipeline"], r["loader"], r["workers"], r["img_per_s"]) for r in rows]))
    targets = [("minimal_cpp_vs_native_w2", ">=", 1.3), ("minimal_cpp_vs_limit_w2", ">=", 0.85),
               ("seed_cpp_vs_native_w2", ">=", 1.05), ("seed_cpp_vs_limit_w2", ">=", 0.9),
               ("first_batch_s_100k", "<=", 3), ("rss_ratio_100k_vs_1k", "<=", 1.2)]
    print()
    print(table(["measure", "value", "target", "met"],
                [(k, result.get(k, "-"), f"{op} {t}",
                  "-" if k not in result else ("yes" if (result[k] >= t if op == ">=" else result[k] <= t) else "NO"))
                 for k, op, t in targets]))
    write_results(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
