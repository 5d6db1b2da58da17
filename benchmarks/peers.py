"""Peers: lakedet against Lightning's ``litdata`` streaming the same images and boxes from S3.

One command (``python benchmarks/peers.py``) prints tables and writes ``benchmarks/results/peers.json``.

The same ``--n`` JPEGs (320x240, 1-10 boxes each; the loader benchmark's generator) are written
twice to a local S3 server (``moto``, started by ``remote.start_s3``): as a Deep Lake dataset
and as litdata chunks written by ``litdata.optimize`` with ``chunk_bytes`` equal to the Deep Lake
image column's stored bytes per storage chunk. Each run reads one of them through the project's
latency proxy (``remote.Proxy``) at 0, 20 or 50 ms RTT, in a fresh process, for two epochs:
batch 8, 2 persistent workers, shuffled, each peer's local cache in a new empty folder (Deep Lake:
``deeplake_cache``; litdata: ``cache_dir``, where it always keeps the chunks it streams). Every
sample goes through the same MMDetection steps: the JPEG decoded as ``LoadImageFromFile`` does
(lakedet's own loading step, which gives the same pixels; for litdata ``mmcv.imfrombytes``
inside ``LitdataDetection``), ``LoadAnnotations(with_bbox=True)``, ``PackDetInputs``.
Runs alternate between the peers (ABBA), ``--repeats`` pairs per RTT.

Reported per run: seconds from building the dataset to the first batch (imports excluded: both
runs import torch and MMDetection first), images/s of epoch 1 counting that time (streaming),
images/s of epoch 2 (from the cache), requests and kB through the proxy per image of the run,
the peak memory of the process tree (PSS summed over the training process, the workers and
lakedet's worker server, sampled every 0.1 s), and the S3 server's CPU per image.
Target (#26): lakedet >= 1.0x the fastest peer at every RTT, epoch 1 and epoch 2.

MosaicML ``streaming`` (MDS shards) is not measured: its wheel (0.13.0) requires transformers,
google-cloud-storage, the Azure and OCI SDKs, paramiko and matplotlib, too much to
bring into the project's environment for one more row. The peers are benchmark-only packages
(``benchmarks/requirements.txt``).

``--part startup`` measures what DataLoader workers over S3 cost to start in lakedet: the first
batch of the first loader in a fresh process with the worker server forked from the process
(lakedet's default), as a fresh interpreter (what happens when ``deeplake`` is imported before
the dataset is built, and what every run did before), and plain ``fork`` (not safe after
Deep Lake's remote I/O; the floor), at 20 ms RTT; writes ``benchmarks/results/worker-start.json``.
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

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import loader as bench  # noqa: E402  (image generator, table, results)
import remote  # noqa: E402  (start_s3, Proxy, cpu_seconds, descendants)

PEERS = ("lakedet", "litdata")
WORKERS = 2
EPOCHS = 2
WIDTH, HEIGHT = 320, 240
SERVERS = ("forked", "fresh", "fork")


# --- data ---------------------------------------------------------------------------------------

def make_samples(n: int, seed: int = 0) -> list[dict]:
    """``n`` samples: JPEG bytes, LTWH pixel boxes (float32), labels (int64), row index."""
    return [dict(image=data, boxes=np.asarray(boxes, np.float32).reshape(-1, 4), labels=np.asarray(labels, np.int64),
                 row=i) for i, (data, boxes, labels) in enumerate(bench.render_jpegs(n, WIDTH, HEIGHT, seed))]


def write_deeplake(url: str, samples: list[dict], creds: dict | None = None) -> int:
    """The samples as a Deep Lake dataset (Image jpeg, BoundingBox LTWH pixel, ClassLabel);
    returns the image column's stored bytes per storage chunk."""
    import deeplake
    from deeplake import types

    ds = deeplake.create(url, creds=creds) if creds else deeplake.create(url)
    ds.add_column("images", types.Image(dtype="uint8", sample_compression="jpeg"))
    ds.add_column("boxes", types.BoundingBox(dtype="float32", format="ltwh", bbox_type="pixel"))
    ds.add_column("labels", types.ClassLabel(types.Array("uint32", dimensions=1)))
    ds["boxes"].metadata["coords"] = {"mode": "LTWH", "type": "pixel"}
    ds["labels"].metadata["class_names"] = list(bench.CLASSES)
    ds.append(dict(images=[s["image"] for s in samples], boxes=[s["boxes"] for s in samples],
                   labels=[s["labels"].astype(np.uint32) for s in samples]))
    ds.commit("peers benchmark data")
    from lakedet.source.layout import chunk_layout

    layout = chunk_layout(ds, "images")
    stored = sum(len(s["image"]) for s in samples)
    return int(stored / max(1, len(layout))) if layout is not None else 8 << 20


def _litdata_item(samples: list[dict], index: int) -> dict:
    return samples[index]


def write_litdata(folder: str, samples: list[dict], chunk_bytes: int) -> None:
    """The samples as litdata chunks (``litdata.optimize``, one worker, in row order)."""
    import functools

    from litdata import optimize

    optimize(fn=functools.partial(_litdata_item, samples), inputs=list(range(len(samples))), output_dir=folder,
             chunk_bytes=chunk_bytes, num_workers=1, verbose=False, mode="overwrite", start_method="fork")


# --- the litdata adapter ------------------------------------------------------------------------

class MMDetSample:
    """A litdata item through MMDetection's steps: the JPEG decoded as ``LoadImageFromFile``
    does (``mmcv.imfrombytes``, BGR, cv2), LTWH boxes as ``CocoDataset`` turns them into
    instances, then ``LoadAnnotations(with_bbox=True)`` and ``PackDetInputs``."""

    def __init__(self):
        self._pipeline = None

    def __getstate__(self):
        return {"_pipeline": None}

    @property
    def pipeline(self):
        if self._pipeline is None:
            from mmengine.dataset import Compose
            from mmengine.registry import DefaultScope

            import mmdet.datasets  # noqa: F401  (registers the transforms)

            with DefaultScope.overwrite_default_scope("mmdet"):
                self._pipeline = Compose([dict(type="LoadAnnotations", with_bbox=True), dict(type="PackDetInputs")])
        return self._pipeline

    def __call__(self, item: dict) -> dict:
        import mmcv

        img = mmcv.imfrombytes(item["image"], flag="color", backend="cv2")
        row = int(item["row"])
        instances = [dict(bbox=[float(x), float(y), float(x + w), float(y + h)], bbox_label=int(label), ignore_flag=0)
                     for (x, y, w, h), label in zip(np.asarray(item["boxes"]).reshape(-1, 4), item["labels"])]
        return self.pipeline(dict(img=img, img_shape=img.shape[:2], ori_shape=img.shape[:2], img_id=row,
                                  img_path=f"litdata[{row}]", sample_idx=row, instances=instances))


def litdata_dataset(input_dir: str, cache_dir: str, storage_options: dict | None = None, shuffle: bool = True):
    """litdata's ``StreamingDataset`` over ``input_dir`` whose items are MMDetection samples."""
    from litdata import StreamingDataset

    return StreamingDataset(input_dir, cache_dir=cache_dir, storage_options=storage_options or {}, shuffle=shuffle,
                            seed=0, transform=MMDetSample())


def lakedet_loader(url: str, creds: dict | None, cache_dir: str | None, workers: int = WORKERS):
    """lakedet's DataLoader as a run builds it (``prepare_dataloader``)."""
    from mmengine.runner import Runner

    from lakedet.engine.hooks import prepare_dataloader

    dataset = dict(type="DeepLakeDetDataset", deeplake_path=url, pipeline=bench.PIPELINES["minimal"])
    if creds:
        dataset["deeplake_credentials"] = dict(creds=creds)
    if cache_dir:
        dataset["deeplake_cache"] = cache_dir
    loader = Runner.build_dataloader(dict(
        batch_size=bench.BATCH, num_workers=workers, persistent_workers=workers > 0,
        sampler=dict(type="DefaultSampler", shuffle=True, seed=0), collate_fn=dict(type="pseudo_collate"),
        dataset=dataset), seed=0)
    prepare_dataloader(loader)
    return loader


def litdata_loader(url: str, creds: dict | None, cache_dir: str, workers: int = WORKERS):
    from litdata import StreamingDataLoader
    from mmengine.dataset import pseudo_collate

    options = None
    if creds:
        options = dict(endpoint_url=creds["endpoint_url"], aws_access_key_id=creds["aws_access_key_id"],
                       aws_secret_access_key=creds["aws_secret_access_key"], region_name=creds["aws_region"])
    return StreamingDataLoader(litdata_dataset(url, cache_dir, options), batch_size=bench.BATCH, num_workers=workers,
                               persistent_workers=workers > 0, collate_fn=pseudo_collate)


# --- one run, in a fresh process ---------------------------------------------------------------

class TreeMemory:
    """Peak PSS (MB) of this process and all its descendants, sampled every ``interval`` s."""

    def __init__(self, interval: float = 0.1):
        self.peak, self._stop = 0.0, threading.Event()
        self._thread = threading.Thread(target=self._run, args=(interval,), daemon=True)
        self._thread.start()

    def _run(self, interval: float) -> None:
        while not self._stop.wait(interval):
            total = 0
            for pid in [os.getpid(), *remote.descendants(os.getpid())]:
                try:
                    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                        if line.startswith("Pss:"):
                            total += int(line.split()[1])
                except OSError:
                    pass
            self.peak = max(self.peak, total / 1024)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return round(self.peak, 1)


def measure(peer: str, url: str, creds: dict | None, server: str = "forked") -> dict:
    """Seconds to the first batch, epoch 1 and 2 images/s, peak tree PSS of one peer, in this process."""
    import mmdet.datasets  # noqa: F401  (both peers run MMDetection's transforms)
    import torch  # noqa: F401
    from mmengine.registry import init_default_scope

    init_default_scope("mmdet")
    if peer == "lakedet":
        import lakedet  # noqa: F401
        from mmengine.utils.dl_utils import set_multi_processing

        set_multi_processing(mp_start_method="fork", opencv_num_threads=0)  # what mmengine's Runner does
        if server == "fresh":
            import deeplake  # noqa: F401  (imported before the dataset: the server is a fresh interpreter)
    else:
        import litdata  # noqa: F401
        from litdata.streaming import downloader

        # litdata fetches chunks with obstore, which refuses plain http (real S3 is https) and takes
        # no option for it: allowed here, so that litdata reads the local server its default way
        downloader._OBSTORE_CLIENT_OPTIONS["allow_http"] = True
    cache = tempfile.mkdtemp(prefix=f"peers-{peer}-cache-")  # empty: nothing cached from another run
    memory = TreeMemory()
    started = time.perf_counter()
    if peer == "lakedet":
        loader = lakedet_loader(url, creds, cache)
        if server == "fork":
            loader.multiprocessing_context = "fork"
    else:
        loader = litdata_loader(url, creds, cache)
    first, images, epochs = None, 0, []
    for epoch in range(EPOCHS):
        if hasattr(loader.sampler, "set_epoch"):
            loader.sampler.set_epoch(epoch)
        count, begun = 0, time.perf_counter()
        for batch in loader:
            if first is None:
                first = time.perf_counter() - started
            count += len(batch["inputs"])
        epochs.append(dict(images=count, seconds=time.perf_counter() - (started if epoch == 0 else begun)))
        images += count
    peak = memory.stop()
    forked = None
    if peer == "lakedet":
        from lakedet.data.workers import worker_server_forked

        forked = worker_server_forked()
    return dict(first_batch_s=round(first, 3), epoch1_img_s=round(epochs[0]["images"] / epochs[0]["seconds"], 1),
                epoch2_img_s=round(epochs[1]["images"] / epochs[1]["seconds"], 1), images=images,
                epoch_images=[e["images"] for e in epochs], peak_pss_mb=peak,
                server_forked=forked)


def run(peer: str, url: str, creds: dict, proxy, server_process, server: str = "forked") -> dict:
    """``measure`` in a fresh process through ``proxy``, with the proxy's and the S3 server's counts."""
    before, served = proxy.stats(), remote.cpu_seconds(server_process.pid)
    out = subprocess.run([sys.executable, __file__, "--measure",
                          json.dumps([peer, url, dict(creds, endpoint_url=proxy.endpoint), server])],
                         capture_output=True, text=True, check=False)
    if out.returncode:
        raise RuntimeError(f"measuring {peer} on {url} failed:\n{out.stderr[-3000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    after = proxy.stats()
    n = result["epoch_images"][0]
    result.update(requests_per_img=round((after["requests"] - before["requests"]) / n, 3),
                  gets_per_img=round((after["gets"] - before["gets"]) / n, 3),
                  kb_per_img=round((after["bytes_down"] - before["bytes_down"]) / n / 1000, 1),
                  server_cpu_ms_per_img=round((remote.cpu_seconds(server_process.pid) - served) / result["images"] * 1000, 2))
    return result


# --- the benchmark ------------------------------------------------------------------------------

def spread(values: list[float]) -> str:
    return f"{min(values)}-{max(values)}" if len(values) > 1 else str(values[0])


def upload(folder: str, url: str, creds: dict) -> None:
    import boto3

    bucket, _, prefix = url[len("s3://"):].partition("/")
    client = boto3.client("s3", endpoint_url=creds["endpoint_url"], region_name=creds["aws_region"],
                          aws_access_key_id=creds["aws_access_key_id"],
                          aws_secret_access_key=creds["aws_secret_access_key"])
    for path in Path(folder).rglob("*"):
        if path.is_file():
            client.upload_file(str(path), bucket, f"{prefix}/{path.relative_to(folder)}")


def prepare(n: int, creds: dict) -> dict:
    """Both copies of the data on the S3 server; returns their URLs and the chunk size."""
    samples = make_samples(n)
    urls = dict(lakedet="s3://lakedet/peers/deeplake", litdata="s3://lakedet/peers/litdata")
    chunk_bytes = write_deeplake(urls["lakedet"], samples, creds)
    with tempfile.TemporaryDirectory(prefix="peers-litdata-") as folder:
        write_litdata(folder, samples, chunk_bytes)
        upload(folder, urls["litdata"], creds)
    return dict(urls=urls, chunk_bytes=chunk_bytes, jpeg_kb=round(sum(len(s["image"]) for s in samples) / n / 1000, 1))


def peers_part(args, server, creds) -> dict:
    data = prepare(args.n, creds)
    print(f"{args.n} images of {WIDTH}x{HEIGHT} ({data['jpeg_kb']} kB JPEG each), chunks of {data['chunk_bytes']} bytes",
          flush=True)
    runs = []
    for rtt in [float(r) for r in args.rtts.split(",")]:
        proxy = remote.Proxy(creds["endpoint_url"], rtt)
        try:
            for repeat in range(args.repeats):
                for peer in (PEERS if repeat % 2 == 0 else PEERS[::-1]):
                    result = dict(peer=peer, rtt_ms=rtt, repeat=repeat,
                                  **run(peer, data["urls"][peer], creds, proxy, server))
                    runs.append(result)
                    print(f"  {rtt:4.0f} ms {peer:8s} first batch {result['first_batch_s']:.2f} s, epoch 1 "
                          f"{result['epoch1_img_s']:6.1f} img/s, epoch 2 {result['epoch2_img_s']:6.1f} img/s, "
                          f"{result['requests_per_img']} req/img, {result['kb_per_img']} kB/img, "
                          f"peak {result['peak_pss_mb']} MB", flush=True)
        finally:
            proxy.stop()
    rows, targets = [], []
    for rtt in sorted({r["rtt_ms"] for r in runs}):
        by_peer = {p: [r for r in runs if r["rtt_ms"] == rtt and r["peer"] == p] for p in PEERS}
        for peer, mine in by_peer.items():
            rows.append(dict(rtt_ms=rtt, peer=peer, runs=len(mine), **{
                key: statistics.median(r[key] for r in mine) for key in
                ("first_batch_s", "epoch1_img_s", "epoch2_img_s", "requests_per_img", "gets_per_img", "kb_per_img",
                 "peak_pss_mb", "server_cpu_ms_per_img")},
                spread={key: spread([r[key] for r in mine]) for key in ("first_batch_s", "epoch1_img_s", "epoch2_img_s")}))
        for epoch in ("epoch1_img_s", "epoch2_img_s"):
            pairs = [a[epoch] / max(b[epoch] for b in [r for r in runs if r["rtt_ms"] == rtt and r["repeat"] ==
                                                           a["repeat"] and r["peer"] != "lakedet"])
                     for a in by_peer["lakedet"]]
            ratio = statistics.median(pairs)
            targets.append(dict(rtt_ms=rtt, epoch=1 if epoch == "epoch1_img_s" else 2, ratio=round(ratio, 3),
                                pair_ratios=[round(p, 3) for p in pairs], target=1.0, met=ratio >= 1.0,
                                met_in_every_pair=min(pairs) >= 1.0))
    print()
    print(bench.table(["RTT ms", "peer", "first batch s", "epoch 1 img/s (with 1st batch)", "epoch 2 img/s (cache)",
                       "req/img", "GET/img", "kB/img", "peak PSS MB", "S3 server CPU ms/img"],
                      [(r["rtt_ms"], r["peer"], f"{r['first_batch_s']} ({r['spread']['first_batch_s']})",
                        f"{r['epoch1_img_s']} ({r['spread']['epoch1_img_s']})",
                        f"{r['epoch2_img_s']} ({r['spread']['epoch2_img_s']})", r["requests_per_img"],
                        r["gets_per_img"], r["kb_per_img"], r["peak_pss_mb"], r["server_cpu_ms_per_img"]) for r in rows]))
    print()
    print(bench.table(["RTT ms", "epoch", "lakedet / fastest peer (median of pairs)", "pair ratios", "target", "met"],
                      [(t["rtt_ms"], t["epoch"], t["ratio"], spread(t["pair_ratios"]), ">= 1.0",
                        "yes" if t["met"] else "NO") for t in targets]))
    return dict(images=args.n, image_size=[WIDTH, HEIGHT], jpeg_kb=data["jpeg_kb"], chunk_bytes=data["chunk_bytes"],
                batch_size=bench.BATCH, workers=WORKERS, epochs=EPOCHS, repeats=args.repeats,
                peers={"litdata": _version("litdata")}, rows=rows, targets=targets, runs=runs)


def startup_part(args, server, creds) -> dict:
    data = dict(url="s3://lakedet/peers/startup")
    write_deeplake(data["url"], make_samples(args.n), creds)
    proxy = remote.Proxy(creds["endpoint_url"], 20.0)
    runs = []
    try:
        for repeat in range(args.repeats):
            for kind in (SERVERS if repeat % 2 == 0 else SERVERS[::-1]):
                result = dict(server=kind, repeat=repeat, **run("lakedet", data["url"], creds, proxy, server, kind))
                runs.append(result)
                print(f"  {kind:7s} first batch {result['first_batch_s']:.2f} s, epoch 1 {result['epoch1_img_s']} img/s",
                      flush=True)
    finally:
        proxy.stop()
    rows = [dict(server=kind, first_batch_s=statistics.median(r["first_batch_s"] for r in runs if r["server"] == kind),
                 spread=spread([r["first_batch_s"] for r in runs if r["server"] == kind]),
                 epoch1_img_s=statistics.median(r["epoch1_img_s"] for r in runs if r["server"] == kind))
            for kind in SERVERS]
    print()
    print(bench.table(["worker server", "first batch s (median)", "range", "epoch 1 img/s (with 1st batch)"],
                      [(r["server"], r["first_batch_s"], r["spread"], r["epoch1_img_s"]) for r in rows]))
    return dict(images=args.n, image_size=[WIDTH, HEIGHT], rtt_ms=20.0, batch_size=bench.BATCH, workers=WORKERS,
                repeats=args.repeats, rows=rows, runs=runs)


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=300, help="images")
    parser.add_argument("--rtts", default="0,20,50", help="round trips to simulate, ms")
    parser.add_argument("--repeats", type=int, default=3, help="runs per peer and RTT (alternating)")
    parser.add_argument("--part", choices=("peers", "startup"), default="peers")
    parser.add_argument("--out", help="default: benchmarks/results/peers.json (startup: worker-start.json)")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        print(json.dumps(measure(*json.loads(args.measure))))
        return 0
    server, creds = remote.start_s3()
    try:
        part = peers_part if args.part == "peers" else startup_part
        result = part(args, server, creds)
    finally:
        server.kill()
        server.wait()
    result.update(machine=bench.machine(), load_average=os.getloadavg(), when=bench.now(),
                  s3_server="moto (local, 127.0.0.1) behind latency_proxy.py",
                  note="a shared 2-core machine: other jobs ran beside it; read the ratios, not the absolute rates",
                  command="python benchmarks/peers.py " + " ".join(argv if argv is not None else sys.argv[1:]))
    default = "peers.json" if args.part == "peers" else "worker-start.json"
    bench.write_results(args.out or HERE / "results" / default, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
