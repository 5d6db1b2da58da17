"""COCO-scale benchmark: lakedet vs MMDetection's ``CocoDataset`` on the same COCO-shaped annotations.

One command (``python benchmarks/scale.py``) prints tables and writes ``benchmarks/results/scale.json``.

The data (written once, cached under ``benchmarks/.data/scale-<rows>``): ``--rows`` small JPEGs
(160x120) whose annotations have COCO train2017's statistics (``COCO_CLASSES``: the 80 classes with
their ids, gaps included, and instance counts; ~7.3 instances per image; about 1 % crowd regions
with uncompressed RLE masks, the others polygons; COCO's ``area``), as files + a COCO JSON for
``CocoDataset`` and, ingested from that JSON by ``lakedet ingest coco`` (segmentations kept as
the file has them), as a Deep Lake dataset for ``DeepLakeDetDataset``.

Each loader runs as 2 ranks (two processes at once, ``ShardedRowSampler`` with ``world_size=2``
and each ``rank``, a per-row permutation for both) x 2 persistent DataLoader workers, batch 8, the
pipeline ``LoadImageFromFile`` / ``LoadAnnotations(with_bbox, with_mask)`` / ``PackDetInputs``,
2 epochs, no model. Per rank: seconds from building the dataset to its first batch; the memory of
the rank and of each worker (PSS and USS from ``/proc/<pid>/smaps_rollup``: PSS splits pages shared
after ``fork`` between the processes sharing them, USS counts only a process's own) at its peak
(sampled every 0.2 s), at the end of epoch 1 and of epoch 2, and the growth between those two; the
annotation memory per instance (the rank's USS after building the dataset, all annotations
parsed, minus before, over the dataset's instances). The loaders alternate (ABBA) over
``--repeats`` rounds; the median and the spread are printed.

Targets: start-up <= 0.25x ``CocoDataset``'s, annotation memory per rank <= 0.5x, growth from the end
of epoch 1 to the end of epoch 2 <= 2 % for every process.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import loader as bench  # noqa: E402  (machine line, results file, table)

#: COCO train2017's 80 categories: (id, name, instances in instances_train2017.json). Ids have gaps
#: (12, 26, 29, 30, 45, 66, 68, 69, 71, 83 are unused), as in COCO.
COCO_CLASSES = (
    (1, "person", 262465), (2, "bicycle", 7113), (3, "car", 43867), (4, "motorcycle", 8725),
    (5, "airplane", 5135), (6, "bus", 6069), (7, "train", 4571), (8, "truck", 9973), (9, "boat", 10759),
    (10, "traffic light", 12884), (11, "fire hydrant", 1865), (13, "stop sign", 1983),
    (14, "parking meter", 1285), (15, "bench", 9838), (16, "bird", 10806), (17, "cat", 4768),
    (18, "dog", 5508), (19, "horse", 6587), (20, "sheep", 9509), (21, "cow", 8147), (22, "elephant", 5513),
    (23, "bear", 1294), (24, "zebra", 5303), (25, "giraffe", 5131), (27, "backpack", 8720),
    (28, "umbrella", 11431), (31, "handbag", 12354), (32, "tie", 6496), (33, "suitcase", 6192),
    (34, "frisbee", 2682), (35, "skis", 6646), (36, "snowboard", 2685), (37, "sports ball", 6347),
    (38, "kite", 9076), (39, "baseball bat", 3276), (40, "baseball glove", 3747), (41, "skateboard", 5543),
    (42, "surfboard", 6126), (43, "tennis racket", 4812), (44, "bottle", 24342), (46, "wine glass", 7913),
    (47, "cup", 20650), (48, "fork", 5479), (49, "knife", 7770), (50, "spoon", 6165), (51, "bowl", 14358),
    (52, "banana", 9458), (53, "apple", 5851), (54, "sandwich", 4373), (55, "orange", 6399),
    (56, "broccoli", 7308), (57, "carrot", 7852), (58, "hot dog", 2918), (59, "pizza", 5821),
    (60, "donut", 7179), (61, "cake", 6353), (62, "chair", 38491), (63, "couch", 5779),
    (64, "potted plant", 8652), (65, "bed", 4192), (67, "dining table", 15714), (70, "toilet", 4157),
    (72, "tv", 5805), (73, "laptop", 4970), (74, "mouse", 2262), (75, "remote", 5703), (76, "keyboard", 2855),
    (77, "cell phone", 6434), (78, "microwave", 1673), (79, "oven", 3334), (80, "toaster", 225),
    (81, "sink", 5610), (82, "refrigerator", 2637), (84, "book", 24715), (85, "clock", 6334), (86, "vase", 6613),
    (87, "scissors", 1481), (88, "teddy bear", 4793), (89, "hair drier", 198), (90, "toothbrush", 1954),
)
#: COCO train2017: 118,287 images; instances per image and the share of crowd annotations.
COCO_TRAIN_IMAGES, INSTANCES_PER_IMAGE, CROWD_SHARE = 118_287, 7.3, 0.0105
WIDTH, HEIGHT, BATCH, WORKERS, RANKS = 160, 120, 8, 2, 2
PIPELINE = [dict(type="LoadImageFromFile"), dict(type="LoadAnnotations", with_bbox=True, with_mask=True),
            dict(type="PackDetInputs")]
LOADERS = ("lakedet", "CocoDataset")


# --- data ---------------------------------------------------------------------------------------

def class_shares() -> np.ndarray:
    """Each class's share of COCO train2017's instances, in ``COCO_CLASSES`` order."""
    counts = np.array([c[2] for c in COCO_CLASSES], dtype=np.float64)
    return counts / counts.sum()


def _polygon(rng, x: float, y: float, w: float, h: float) -> list[float]:
    """An irregular polygon (8-24 points) inscribed in the box, as COCO's flat [x1, y1, x2, y2, ...]."""
    k = int(rng.integers(8, 25))
    angles = np.sort(rng.uniform(0, 2 * np.pi, k))
    radius = rng.uniform(0.6, 1.0, k)
    xs = x + w / 2 + radius * np.cos(angles) * w / 2
    ys = y + h / 2 + radius * np.sin(angles) * h / 2
    return np.round(np.stack([xs, ys], 1).reshape(-1), 2).tolist()


def _polygon_area(flat: list[float]) -> float:
    xs, ys = np.asarray(flat[0::2]), np.asarray(flat[1::2])
    return float(abs(np.dot(xs, np.roll(ys, -1)) - np.dot(ys, np.roll(xs, -1))) / 2)


def _crowd_rle(rng, x: int, y: int, w: int, h: int) -> tuple[dict, float]:
    """A crowd region as COCO writes it: uncompressed RLE (column-major run lengths) and its area."""
    mask = np.zeros((HEIGHT, WIDTH), dtype=np.uint8)
    mask[y:y + h, x:x + w] = rng.random((h, w)) < 0.8
    flat = mask.reshape(-1, order="F")
    runs = np.diff(np.r_[0, np.flatnonzero(np.diff(flat)) + 1, len(flat)]).tolist()
    counts = runs if flat[0] == 0 else [0, *runs]  # COCO's runs start with zeros
    assert sum(counts) == HEIGHT * WIDTH
    return dict(counts=counts, size=[HEIGHT, WIDTH]), float(mask.sum())


def coco_annotations(rows: int, seed: int = 0) -> dict:
    """A COCO JSON dict of ``rows`` images with COCO train2017's annotation statistics (module docstring)."""
    rng = np.random.default_rng(seed)
    shares = class_shares()
    # instances per image: 1 + a negative binomial with COCO's mean (its spread: many images with
    # a few objects, a long tail of crowded ones)
    counts = 1 + rng.negative_binomial(1.2, 1.2 / (1.2 + INSTANCES_PER_IMAGE - 1), rows)
    labels = rng.choice(len(COCO_CLASSES), size=int(counts.sum()), p=shares)
    images, annotations = [], []
    for i in range(rows):
        images.append(dict(id=i + 1, file_name=f"{i:07d}.jpg", width=WIDTH, height=HEIGHT))
    k = 0
    for i, count in enumerate(counts.tolist()):
        for _ in range(count):
            # box sizes log-uniform from 4 px to the whole image, as COCO's small / medium / large spread
            w = int(np.clip(np.exp(rng.uniform(np.log(4), np.log(WIDTH))), 4, WIDTH))
            h = int(np.clip(w * np.exp(rng.normal(0, 0.4)), 4, HEIGHT))
            x, y = int(rng.integers(0, WIDTH - w + 1)), int(rng.integers(0, HEIGHT - h + 1))
            crowd = bool(rng.random() < CROWD_SHARE)
            if crowd:
                segmentation, area = _crowd_rle(rng, x, y, w, h)
            else:
                segmentation = [_polygon(rng, x, y, w, h)]
                area = _polygon_area(segmentation[0])
            annotations.append(dict(id=k + 1, image_id=i + 1, category_id=COCO_CLASSES[labels[k]][0],
                                    bbox=[x, y, w, h], area=round(area, 2), iscrowd=int(crowd),
                                    segmentation=segmentation))
            k += 1
    categories = [dict(id=c[0], name=c[1], supercategory="") for c in COCO_CLASSES]
    return dict(images=images, annotations=annotations, categories=categories)


def make_data(root: Path, rows: int, seed: int = 0) -> dict:
    """Files + COCO JSON and the Deep Lake copy under ``root``; reused when complete."""
    import cv2

    from lakedet.tools.ingest import ingest_coco

    ann, images, lake, done = root / "annotations.json", root / "images", root / "lake", root / "complete"
    if not done.exists():
        root.mkdir(parents=True, exist_ok=True)
        images.mkdir(exist_ok=True)
        rng = np.random.default_rng(seed)
        textures = []
        for _ in range(64):  # 64 distinct images, reused: the benchmark is about annotations
            coarse = rng.integers(30, 220, (6, 8, 3), dtype=np.uint8)
            img = cv2.resize(coarse, (WIDTH, HEIGHT), interpolation=cv2.INTER_CUBIC)
            textures.append(cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes())
        coco = coco_annotations(rows, seed)
        for i, image in enumerate(coco["images"]):
            (images / image["file_name"]).write_bytes(textures[i % len(textures)])
        ann.write_text(json.dumps(coco))
        ingest_coco(ann, images, str(lake), masks="coco", overwrite=True)
        done.write_text(json.dumps(dict(instances=len(coco["annotations"]))))
    return dict(ann=str(ann), images=str(images) + "/", lake=str(lake),
                instances=json.loads(done.read_text())["instances"])


# --- 64 ranks x 8 workers, on paper -------------------------------------------------------------

def coco_layout(rows: int = COCO_TRAIN_IMAGES, chunk_bytes: float = 8e6, seed: int = 0):
    """The chunk layout Deep Lake gives COCO train2017's JPEGs (about 160 KB each, lognormal
    spread; chunks of ~8 MB) and each row's bytes; no data is written."""
    from lakedet.source.layout import ChunkLayout

    row_bytes = np.random.default_rng(seed).lognormal(np.log(150e3), 0.45, rows)
    chunk = ((np.cumsum(row_bytes) - row_bytes) // chunk_bytes).astype(np.int64)
    bounds = np.r_[0, np.flatnonzero(np.diff(chunk)) + 1, rows]
    return ChunkLayout(bounds, tuple(f"chunk{i}" for i in range(len(bounds) - 1))), row_bytes


def fetched_bytes(layout, row_bytes: np.ndarray, rows: np.ndarray) -> float:
    """Bytes a DataLoader worker reading ``rows`` fetches: the chunks it reads whole
    (``lakedet.data.reader.chunks_read_whole``) and its other rows one by one."""
    from lakedet.data.reader import chunks_read_whole

    whole = chunks_read_whole(layout, rows)
    chunk_bytes = np.add.reduceat(row_bytes, layout.bounds[:-1])
    return float(chunk_bytes[whole].sum() + row_bytes[rows[~whole[layout.chunk_of(rows)]]].sum())


def worker_rows(part: np.ndarray, batch_size: int, num_workers: int) -> list[np.ndarray]:
    """The rows of a rank's order each DataLoader worker reads (batch k goes to worker k % num_workers)."""
    batch_of = np.arange(len(part)) // batch_size
    return [part[batch_of % num_workers == w] for w in range(num_workers)]


def sharded_bytes(layout, row_bytes, world_size: int = 64, num_workers: int = 8, batch_size: int = 2,
                  epoch: int = 0, seed: int = 0) -> tuple[list[np.ndarray], float]:
    """Every rank's chunk-aware order over ``layout`` and the bytes all their workers fetch in
    ``epoch``, over the dataset's stored bytes."""
    from lakedet.data.sampler import chunk_shard_rows

    blocks = layout.chunk_of(np.arange(len(row_bytes)))
    parts = [chunk_shard_rows(blocks, world_size, rank, epoch, seed, batch_size=batch_size, num_workers=num_workers)
             for rank in range(world_size)]
    fetched = sum(fetched_bytes(layout, row_bytes, rows) for part in parts
                  for rows in worker_rows(part, batch_size, num_workers))
    return parts, fetched / float(row_bytes.sum())


# --- memory -------------------------------------------------------------------------------------

def memory(pid: int) -> dict:
    """RSS, PSS and USS of process ``pid`` in MB (Linux ``/proc/<pid>/smaps_rollup``)."""
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, _, value = line.partition(":")
        if value.strip().endswith("kB"):
            fields[name] = int(value.split()[0])
    uss = fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0)
    return dict(rss=fields["Rss"] / 1024, pss=fields["Pss"] / 1024, uss=uss / 1024)


def children(pid: int) -> list[int]:
    """The direct child processes of ``pid``."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return found


class MemoryProbe:
    """Samples the memory of a process and of its child processes every ``interval`` s in a
    thread; ``peak`` holds each process's highest PSS and USS (MB) so far, by pid."""

    def __init__(self, pid: int | None = None, interval: float = 0.2):
        self.pid, self.interval = pid or os.getpid(), interval
        self.peak: dict[int, dict] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> dict[int, dict]:
        """Memory of the process and its children now, by pid (processes gone meanwhile left out)."""
        now = {}
        for pid in [self.pid, *children(self.pid)]:
            try:
                now[pid] = memory(pid)
            except (OSError, KeyError):
                continue
            peak = self.peak.setdefault(pid, dict(pss=0.0, uss=0.0))
            peak["pss"], peak["uss"] = max(peak["pss"], now[pid]["pss"]), max(peak["uss"], now[pid]["uss"])
        return now

    def _run(self):
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


# --- one rank -----------------------------------------------------------------------------------

def dataset_cfg(loader: str, data: dict) -> dict:
    if loader == "CocoDataset":
        return dict(type="CocoDataset", ann_file=data["ann"], data_prefix=dict(img=data["images"]),
                    metainfo=dict(classes=tuple(c[1] for c in COCO_CLASSES)), filter_cfg=None, pipeline=PIPELINE)
    return dict(type="DeepLakeDetDataset", deeplake_path=data["lake"], pipeline=PIPELINE)


def rank_run(loader: str, data: dict, rank: int, epochs: int) -> dict:
    """One rank's run, in this process: start-up, memory, and memory per epoch (module docstring)."""
    import lakedet  # noqa: F401  (registers DeepLakeDetDataset and the samplers)
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner
    from mmengine.utils.dl_utils import set_multi_processing

    from lakedet.engine.hooks import prepare_dataloader

    init_default_scope("mmdet")
    set_multi_processing(mp_start_method="fork", opencv_num_threads=0)  # what mmengine's Runner does
    with MemoryProbe() as probe:
        before = memory(os.getpid())
        started = time.perf_counter()
        loader_obj = Runner.build_dataloader(dict(
            batch_size=BATCH, num_workers=WORKERS, persistent_workers=True,
            sampler=dict(type="ShardedRowSampler", shuffle=True, seed=0, world_size=RANKS, rank=rank,
                         order="permutation"),
            collate_fn=dict(type="pseudo_collate"), dataset=dataset_cfg(loader, data)), seed=0)
        dataset = loader_obj.dataset
        dataset.full_init()
        built = memory(os.getpid())
        prepare_dataloader(loader_obj)  # what every run does over Deep Lake data; nothing for CocoDataset
        ends, first_batch = [], None
        for epoch in range(epochs):
            loader_obj.sampler.set_epoch(epoch)
            for batch in loader_obj:
                if first_batch is None:
                    first_batch = time.perf_counter() - started
            ends.append({str(pid): m for pid, m in probe.sample().items()})
        peak = {str(pid): m for pid, m in probe.peak.items()}
    main = str(os.getpid())
    processes = {}
    for pid in ends[-1]:
        role = "rank" if pid == main else "worker"
        first, last = ends[0].get(pid), ends[-1][pid]
        growth = None if first is None else dict(pss=last["pss"] / first["pss"] - 1, uss=last["uss"] / first["uss"] - 1)
        processes[pid] = dict(role=role, peak=peak.get(pid), end_epoch1=first, end_epoch2=last, growth=growth)
    annotation_mb = built["uss"] - before["uss"]
    return dict(loader=loader, rank=rank, rows=len(dataset), instances=data['instances'], first_batch_s=first_batch,
                annotation_mb=annotation_mb, annotation_bytes_per_instance=annotation_mb * 2**20 / data['instances'],
                processes=processes)


def run_ranks(loader: str, data: dict, epochs: int) -> list[dict]:
    """``RANKS`` processes at once, one per rank; their results."""
    procs = [subprocess.Popen([sys.executable, __file__, "--rank-run", json.dumps([loader, data, rank, epochs])],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for rank in range(RANKS)]
    results = []
    for rank, proc in enumerate(procs):
        out, err = proc.communicate()
        if proc.returncode:
            raise RuntimeError(f"{loader} rank {rank} failed:\n{err[-3000:]}")
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


# --- report -------------------------------------------------------------------------------------

def summarize(runs: list[list[dict]]) -> dict:
    """Median and spread over the rounds of one loader's figures (each round: the ranks' results)."""
    def spread(values):
        return dict(median=round(statistics.median(values), 4), min=round(min(values), 4), max=round(max(values), 4))

    figures = dict(
        first_batch_s=[max(r["first_batch_s"] for r in ranks) for ranks in runs],
        annotation_mb_per_rank=[statistics.mean(r["annotation_mb"] for r in ranks) for ranks in runs],
        annotation_bytes_per_instance=[statistics.mean(r["annotation_bytes_per_instance"] for r in ranks)
                                       for ranks in runs])
    for role in ("rank", "worker"):
        for when in ("peak", "end_epoch1", "end_epoch2"):
            figures[f"{role}_{when}_pss_mb"] = [max(p[when]["pss"] for r in ranks for p in r["processes"].values()
                                                    if p["role"] == role) for ranks in runs]
            figures[f"{role}_{when}_uss_mb"] = [max(p[when]["uss"] for r in ranks for p in r["processes"].values()
                                                    if p["role"] == role) for ranks in runs]
        figures[f"{role}_growth_pss_max"] = [max(p["growth"]["pss"] for r in ranks for p in r["processes"].values()
                                                 if p["role"] == role) for ranks in runs]
        figures[f"{role}_growth_uss_max"] = [max(p["growth"]["uss"] for r in ranks for p in r["processes"].values()
                                                 if p["role"] == role) for ranks in runs]
    return {name: spread(values) for name, values in figures.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=COCO_TRAIN_IMAGES, help=f"images (default {COCO_TRAIN_IMAGES})")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2, help="rounds, the loaders alternating (ABBA)")
    parser.add_argument("--data", default=str(HERE / ".data"), help="where the benchmark data is built and kept")
    parser.add_argument("--out", default=str(HERE / "results" / "scale.json"))
    parser.add_argument("--rank-run", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rank_run:
        loader, data, rank, epochs = json.loads(args.rank_run)
        print(json.dumps(rank_run(loader, data, rank, epochs)))
        return 0
    print(f"machine: {bench.machine()} (shared with other jobs while measured)")
    layout, row_bytes = coco_layout()
    sharding = dict(ranks=64, workers=8, batch_size=2, rows=COCO_TRAIN_IMAGES, chunks=len(layout),
                    bytes_ratio=[round(sharded_bytes(layout, row_bytes, epoch=e)[1], 4) for e in (0, 1)])
    print(f"64 ranks x 8 workers over a COCO-sized chunk layout ({len(layout)} chunks), on paper: bytes fetched per "
          f"epoch / stored bytes = {sharding['bytes_ratio']}", flush=True)
    started = time.perf_counter()
    print(f"building / reusing {args.rows} COCO-shaped rows under {args.data} ...", flush=True)
    data = make_data(Path(args.data) / f"scale-{args.rows}", args.rows)
    build_s = time.perf_counter() - started
    load_before = os.getloadavg()
    runs = {name: [] for name in LOADERS}
    for round_ in range(args.repeats):
        for name in (LOADERS if round_ % 2 == 0 else LOADERS[::-1]):
            runs[name].append(run_ranks(name, data, args.epochs))
            last = runs[name][-1]
            print(f"  {name:11s} first batch {max(r['first_batch_s'] for r in last):.2f} s, annotations "
                  f"{statistics.mean(r['annotation_mb'] for r in last):.1f} MB per rank", flush=True)
    summary = {name: summarize(r) for name, r in runs.items()}
    lake, coco = summary["lakedet"], summary["CocoDataset"]
    ratios = dict(
        startup_vs_cocodataset=round(lake["first_batch_s"]["median"] / coco["first_batch_s"]["median"], 3),
        annotation_memory_vs_cocodataset=round(lake["annotation_mb_per_rank"]["median"]
                                               / coco["annotation_mb_per_rank"]["median"], 3))
    growth = {name: max(s["rank_growth_pss_max"]["max"], s["worker_growth_pss_max"]["max"]) for name, s in summary.items()}
    result = dict(machine=bench.machine(), shared_machine=True, rows=args.rows,
                  instances=runs["lakedet"][0][0]["instances"], epochs=args.epochs, repeats=args.repeats,
                  ranks=RANKS, workers=WORKERS, batch_size=BATCH, image_size=[WIDTH, HEIGHT],
                  data_build_s=round(build_s, 1), sharding_64x8=sharding, summary=summary, ratios=ratios,
                  max_growth_epoch1_to_2_pss={k: round(v, 4) for k, v in growth.items()},
                  raw=runs, command=f"python benchmarks/scale.py --rows {args.rows} --repeats {args.repeats}",
                  when=bench.now(), load_average_before=load_before, load_average_after=os.getloadavg())
    names = [k for k in coco]
    print()
    print(bench.table(["figure (median [min, max])", *LOADERS],
                      [(k, *(f"{summary[n][k]['median']:.3g} [{summary[n][k]['min']:.3g}, {summary[n][k]['max']:.3g}]"
                             for n in LOADERS)) for k in names]))
    targets = [("startup_vs_cocodataset", ratios["startup_vs_cocodataset"], 0.25),
               ("annotation_memory_vs_cocodataset", ratios["annotation_memory_vs_cocodataset"], 0.5),
               ("lakedet max growth epoch 1->2 (PSS)", round(growth["lakedet"], 4), 0.02),
               ("64x8 bytes fetched / stored (max of 2 epochs)", max(sharding["bytes_ratio"]), 1.05)]
    print()
    print(bench.table(["measure", "value", "target", "met"],
                      [(k, v, f"<= {t}", "yes" if v <= t else "NO") for k, v, t in targets]))
    bench.write_results(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
