"""Local disk vs S3 at cloud latency: the same Deep Lake data through the same loader.

One command (``python benchmarks/remote.py``) prints tables and writes
``benchmarks/results/remote.json``. The S3 side is a real S3 protocol server (``moto``) started
here on 127.0.0.1, reached through the project's latency proxy (``latency_proxy.py``: asyncio,
HTTP keep-alive to the client as S3 does, ``rtt/2`` added each way, one round trip per new
connection; optionally a bandwidth cap). The dataset is the loader benchmark's 640x480 JPEG set,
ingested by ``lakedet ingest``.

Each measurement runs in its own process, one at a time (local disk is measured again before each
group of remote runs, and each ratio is to that paired run): the ``c++`` loader, ``minimal`` pipeline, batch 8,
2 persistent workers, ``ShardedRowSampler`` with ``order="permutation"`` (a full per-row
permutation) or ``order="chunks"`` (the chunk-aware order), fitted as every run over Deep Lake
data fits it (``lakedet.engine.hooks.prepare_dataloader``: the batching, forkserver workers for
remote data). Reported per run: images/s (median of the
epochs after the first, which starts the workers), the ratio to local disk measured in the same
run, GETs and MB fetched per image (counted by the proxy), CPU ms per image of the S3 server and
of the proxy (they share the machine's cores with the loader), the peak RSS of a worker, and two
shuffle-quality figures of the order (see ``shuffle_quality``). Then: epoch 2 with the local cache
on, and the bytes two ranks fetch in one epoch against the dataset's stored bytes.

Targets (chunk-aware order): >= 0.9x local at 20 ms RTT, >= 0.8x at 50 ms; epoch 2 with the cache
>= 0.95x local; with 2 ranks, bytes fetched per epoch over all ranks <= 1.05x the dataset's bytes.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import loader as bench  # noqa: E402  (the loader benchmark's data, pipelines, table)

WORKERS = 2


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_s3(bucket: str = "lakedet"):
    """A moto S3 server on a free 127.0.0.1 port with ``bucket``; returns (process, creds)."""
    import boto3

    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    creds = dict(aws_access_key_id="bench", aws_secret_access_key="bench-secret",
                 endpoint_url=f"http://127.0.0.1:{port}", aws_region="us-east-1")
    client = boto3.client("s3", endpoint_url=creds["endpoint_url"], region_name="us-east-1",
                          aws_access_key_id="bench", aws_secret_access_key="bench-secret")
    deadline = time.monotonic() + 60
    while True:
        try:
            client.create_bucket(Bucket=bucket)
            return server, creds
        except Exception:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                raise RuntimeError("the moto S3 server did not start")
            time.sleep(0.1)


class Proxy:
    """``latency_proxy.py`` in its own process in front of ``endpoint``, with its counters."""

    def __init__(self, endpoint: str, rtt_ms: float, rate_mbit: float = 0.0, log: str | None = None):
        self.port = free_port()
        self.stats_file = os.path.join(tempfile.gettempdir(), f"lakedet-proxy-{self.port}.json")
        self.log = log  # a file each request is appended to (``latency_proxy.py --log``), or None
        target = endpoint.rsplit("//", 1)[1]
        self.process = subprocess.Popen(
            [sys.executable, str(HERE / "latency_proxy.py"), "--target", target, "--port", str(self.port),
             "--rtt-ms", str(rtt_ms), "--rate-mbit", str(rate_mbit), "--http", "--stats", self.stats_file,
             *(["--log", log] if log else [])],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.process.stdout.readline()  # "listening on ..."
        self.endpoint = f"http://127.0.0.1:{self.port}"

    def stats(self) -> dict:
        if os.path.exists(self.stats_file):
            os.remove(self.stats_file)
        os.kill(self.process.pid, signal.SIGUSR1)
        for _ in range(500):
            if os.path.exists(self.stats_file):
                try:
                    return dict(json.loads(Path(self.stats_file).read_text()), cpu=cpu_seconds(self.process.pid))
                except ValueError:
                    pass
            time.sleep(0.01)
        raise RuntimeError("the proxy did not report its counters")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def descendants(root: int) -> list[int]:
    """The processes below ``root``: its children, theirs, and so on (Linux ``/proc``)."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                parents[int(entry)] = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):  # gone meanwhile
                pass
    found, frontier = [], [root]
    while frontier:
        frontier = [pid for pid, parent in parents.items() if parent in frontier]
        found += frontier
    return found


def shuffle_quality(order, blocks, batch_size: int) -> dict:
    """Two figures of how well an order mixes the rows:

    * ``neighbour_distance``: mean |row(i+1) - row(i)| over consecutive samples, divided by its
      expectation for a uniform random permutation (N/3): 1.0 for a full shuffle, ~0 in storage order;
    * ``chunks_per_batch``: distinct storage chunks a batch draws from (of ``batch_size`` at most).

    Both are of one rank's epoch; the data's labels are random here, so a label-mix figure would
    not tell the orders apart (class-ordered data is where block shuffles mix worst).
    """
    import numpy as np

    order = np.asarray(order)
    n = max(len(order), 2)
    distance = float(np.abs(np.diff(order)).mean() / (n / 3)) if len(order) > 1 else 0.0
    batches = [blocks[order[i:i + batch_size]] for i in range(0, len(order), batch_size)]
    return dict(neighbour_distance=round(distance, 3),
                chunks_per_batch=round(float(np.mean([len(set(b.tolist())) for b in batches])), 2))


def measure(path: str, creds: dict | None, order: str, epochs: int, cache: str | None, world_size: int,
            rank: int, prefetch: int = 1) -> dict:
    """Images/s per epoch of the c++ loader over ``path``, in this process, plus the order's quality."""
    import resource

    import lakedet  # noqa: F401
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner
    from mmengine.utils.dl_utils import set_multi_processing

    from lakedet.engine.hooks import prepare_dataloader

    init_default_scope("mmdet")
    set_multi_processing(mp_start_method="fork", opencv_num_threads=0)  # what mmengine's Runner does
    dataset = dict(type="DeepLakeDetDataset", deeplake_path=path, pipeline=bench.PIPELINES["minimal"])
    if creds:
        dataset["deeplake_credentials"] = dict(creds=creds)
    if cache:
        dataset["deeplake_cache"] = cache
    dataset["deeplake_prefetch"] = prefetch
    cfg = Config(dict(train_dataloader=dict(
        batch_size=bench.BATCH, num_workers=WORKERS, persistent_workers=True,
        sampler=dict(type="DefaultSampler", shuffle=True, seed=0, order=order, world_size=world_size, rank=rank),
        collate_fn=dict(type="pseudo_collate"), dataset=dataset)))
    loader = Runner.build_dataloader(cfg.train_dataloader.to_dict(), seed=0)
    prepare_dataloader(loader)  # ShardedRowSampler with the batching, forkserver workers for remote data
    rates = bench.epoch_rates(loader, epochs)
    sampler = loader.sampler
    sampler.set_epoch(1)
    quality = shuffle_quality(list(sampler), loader.dataset.read_blocks(), bench.BATCH)
    del loader
    worker_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return dict(rates=rates, order=sampler.order, quality=quality, worker_rss_mb=round(worker_rss, 1),
                rows=len(sampler))


def measure_in_subprocess(path, creds, order, epochs, cache=None, world_size=1, rank=0, prefetch=1) -> dict:
    out = subprocess.run([sys.executable, __file__, "--measure",
                          json.dumps([path, creds, order, epochs, cache, world_size, rank, prefetch])],
                         capture_output=True, text=True, check=False)
    if out.returncode:
        raise RuntimeError(f"measuring {order} on {path} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def steady(result: dict) -> float:
    """Images/s after the first epoch (which starts the workers): the median of the others."""
    return statistics.median(result["rates"][1:] or result["rates"])


def stored_bytes(url: str, creds: dict) -> int:
    """Bytes of the dataset's stored objects (all columns, metadata included)."""
    import boto3

    bucket, _, prefix = url[len("s3://"):].partition("/")
    client = boto3.client("s3", endpoint_url=creds["endpoint_url"], region_name=creds["aws_region"],
                          aws_access_key_id=creds["aws_access_key_id"],
                          aws_secret_access_key=creds["aws_secret_access_key"])
    total = 0
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/"):
        total += sum(o["Size"] for o in page.get("Contents", []))
    return total


def remote_run(label: str, server, proxy: Proxy, url: str, creds: dict, order: str, epochs: int, n: int,
               local_rate: float, **kwargs) -> dict:
    before, served = proxy.stats(), cpu_seconds(server.pid)
    result = measure_in_subprocess(url, dict(creds, endpoint_url=proxy.endpoint), order, epochs, **kwargs)
    after = proxy.stats()
    images = result["rows"] * epochs
    rate = steady(result)
    row = dict(run=label, order=result["order"], img_per_s=round(rate, 1), local_img_per_s=round(local_rate, 1),
               vs_local=round(rate / local_rate, 3),
               gets_per_img=round((after["gets"] - before["gets"]) / images, 3),
               mb_per_img=round((after["bytes_down"] - before["bytes_down"]) / images / 1e6, 4),
               server_cpu_ms_per_img=round((cpu_seconds(server.pid) - served) / images * 1000, 2),
               proxy_cpu_ms_per_img=round((after["cpu"] - before["cpu"]) / images * 1000, 2),
               worker_rss_mb=result["worker_rss_mb"], epochs=[round(r, 1) for r in result["rates"]],
               **result["quality"])
    print(f"  {label:28s} {row['order']:11s} {rate:7.1f} img/s ({row['vs_local']:.2f}x local), "
          f"{row['gets_per_img']:.3f} GET/img, {row['mb_per_img'] * 1000:.1f} kB/img, server "
          f"{row['server_cpu_ms_per_img']} ms/img, proxy {row['proxy_cpu_ms_per_img']} ms/img, epochs {row['epochs']}",
          flush=True)
    return row


def local_baseline(row: dict) -> tuple[float, bool]:
    """The local-disk rate a row's ratio is to: recorded (``local_img_per_s``), or, in results
    written before it was recorded, derived as ``img_per_s / vs_local`` (True: derived)."""
    if "local_img_per_s" in row:
        return row["local_img_per_s"], False
    return round(row["img_per_s"] / row["vs_local"], 1), True


def rows_table(rows: list[dict], markdown: bool = False) -> str:
    """The runs with the local baseline each ratio is to (``*``: derived from the rounded ratio)."""
    headers = ["run", "order", "img/s", "local img/s (paired)", "/ local", "GET/img", "kB/img", "server CPU ms/img",
               "proxy CPU ms/img", "worker RSS MB", "neighbour dist.", "chunks/batch"]
    lines = []
    for r in rows:
        base, derived = local_baseline(r)
        lines.append((r["run"], r["order"], r["img_per_s"], f"{base}{'*' if derived else ''}", r["vs_local"],
                      r.get("gets_per_img", ""), round(r["mb_per_img"] * 1000, 1) if "mb_per_img" in r else "",
                      r.get("server_cpu_ms_per_img", ""), r.get("proxy_cpu_ms_per_img", ""), r["worker_rss_mb"],
                      r["neighbour_distance"], r["chunks_per_batch"]))
    if not markdown:
        return bench.table(headers, lines)
    return "\n".join(["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers),
                      *("| " + " | ".join(str(v) for v in line) + " |" for line in lines)])


def print_table(path: str, out: str | None = None) -> int:
    """``--table``: the runs of a written result, as a Markdown table, with each ratio's baseline;
    ``out``: also write that table as JSON (the README cites it for the baselines)."""
    result = json.loads(Path(path).read_text())
    if out:
        table = [dict(run=r["run"], order=r["order"], img_per_s=r["img_per_s"], vs_local=r["vs_local"],
                      local_img_per_s=local_baseline(r)[0], local_derived=local_baseline(r)[1]) for r in result["rows"]]
        bench.write_results(out, dict(source=path, command=f"python benchmarks/remote.py --table {path} --table-out {out}",
                                      derived="local_img_per_s = img_per_s / vs_local where local_derived is true",
                                      rows=table))
    print(f"{path}: {result.get('machine', '')}; load average {result.get('load_average')}")
    print(rows_table(result["rows"], markdown=True))
    if any(local_baseline(r)[1] for r in result["rows"]):
        print("\n* not recorded in this file: img_per_s / vs_local (both rounded), the paired local run's rate")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    # 4000 images (~390 MB, ~49 chunks): more than Deep Lake keeps in memory per process (10-20
    # chunks, measured), so later epochs really fetch again instead of reading Deep Lake's memory
    parser.add_argument("--n", type=int, default=4000, help="images")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rtts", default="0,20,50", help="round trips to simulate, ms")
    parser.add_argument("--rate-mbit", type=float, default=400.0, help="the bandwidth-capped run (0: none)")
    parser.add_argument("--data", default=str(HERE / ".data"))
    parser.add_argument("--out", default=str(HERE / "results" / "remote.json"))
    parser.add_argument("--table", nargs="?", const=str(HERE / "results" / "remote.json"), metavar="JSON",
                        help="print the table of a written result (default: --out's) with each ratio's local "
                             "baseline, and measure nothing")
    parser.add_argument("--table-out", metavar="JSON", help="with --table: also write the table as JSON")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.table:
        return print_table(args.table, args.table_out)
    if args.measure:
        print(json.dumps(measure(*json.loads(args.measure))))
        return 0

    from lakedet.tools.ingest import ingest_coco

    print(f"machine: {bench.machine()}")
    data = bench.make_data(Path(args.data) / f"coco-{args.n}", args.n)
    server, creds = start_s3()
    proxies: dict = {}
    rows = []
    try:
        url = f"s3://lakedet/coco-{args.n}"
        started = time.perf_counter()
        ingest_coco(data["ann"], data["images"], url, masks=None, creds=creds)
        print(f"ingested {args.n} images to {url} in {time.perf_counter() - started:.1f} s "
              f"({stored_bytes(url, creds) / 1e6:.1f} MB stored)", flush=True)
        local = {order: measure_in_subprocess(data["lake"], None, order, args.epochs)
                 for order in ("permutation", "chunks")}
        local_rate = steady(local["permutation"])
        for order, result in local.items():
            rows.append(dict(run="local disk", order=order, img_per_s=round(steady(result), 1),
                             local_img_per_s=round(local_rate, 1), vs_local=round(steady(result) / local_rate, 3), worker_rss_mb=result["worker_rss_mb"],
                             epochs=[round(r, 1) for r in result["rates"]], **result["quality"]))
            print(f"  local disk                   {order:11s} {steady(result):7.1f} img/s", flush=True)
        def paired_local() -> float:
            """Local disk measured again right before a remote group: the machine's load drifts
            (shared cores), so each ratio compares measurements minutes, not tens of minutes, apart."""
            result = measure_in_subprocess(data["lake"], None, "permutation", args.epochs)
            print(f"  local disk (paired)          permutation {steady(result):7.1f} img/s", flush=True)
            return steady(result)

        for rtt in [float(x) for x in args.rtts.split(",")]:
            proxies[rtt] = proxy = Proxy(creds["endpoint_url"], rtt)
            base = paired_local()
            for order in ("permutation", "chunks"):
                rows.append(remote_run(f"S3, {rtt:g} ms RTT", server, proxy, url, creds, order, args.epochs, args.n,
                                       base))
        if args.rate_mbit:
            capped = proxies["capped"] = Proxy(creds["endpoint_url"], 20, args.rate_mbit)
            base = paired_local()
            for order in ("permutation", "chunks"):
                rows.append(remote_run(f"S3, 20 ms, {args.rate_mbit:g} Mbit/s", server, capped, url, creds, order,
                                       args.epochs, args.n, base))
        # epoch 1 fills the cache, the later epochs read it (the cache on local disk, like the dataset)
        with tempfile.TemporaryDirectory(dir=args.data) as cache:
            worst = proxies[max(k for k in proxies if k != "capped")]
            rows.append(remote_run("S3, max RTT, cache on", server, worst, url, creds, "chunks", args.epochs, args.n,
                                   paired_local(), cache=cache))

        # bytes over all ranks in one epoch, 2 ranks x 2 workers (one epoch: Deep Lake's in-memory
        # chunk cache would serve later ones). With read-ahead, the end of the epoch also reads the
        # next epoch's first window (one per worker), which training uses but one epoch alone does
        # not: measured both with it and without it (deeplake_prefetch=0, the epoch's own reads).
        dataset_bytes = stored_bytes(url, creds)
        ranks = {}
        if 0.0 not in proxies:  # --rtts without 0: the byte count needs no latency, only the proxy's count
            proxies[0.0] = Proxy(creds["endpoint_url"], 0.0)
        for order, prefetch in (("permutation", 1), ("chunks", 1), ("chunks", 0)):
            before = proxies[0.0].stats()
            for rank in (0, 1):
                measure_in_subprocess(url, dict(creds, endpoint_url=proxies[0.0].endpoint), order, 1,
                                      world_size=2, rank=rank, prefetch=prefetch)
            fetched = proxies[0.0].stats()["bytes_down"] - before["bytes_down"]
            name = order if prefetch else f"{order}, no read-ahead"
            ranks[name] = dict(fetched_mb=round(fetched / 1e6, 1), dataset_mb=round(dataset_bytes / 1e6, 1),
                               ratio=round(fetched / dataset_bytes, 3))
            print(f"  2 ranks x {WORKERS} workers, 1 epoch of {args.n} images, {name}: fetched "
                  f"{fetched / 1e6:.1f} MB of {dataset_bytes / 1e6:.1f} MB stored ({fetched / dataset_bytes:.3f}x)",
                  flush=True)
    finally:
        for proxy in proxies.values():
            proxy.stop()
        server.kill()
        server.wait()

    def ratio(run, order="chunks"):
        return next(r["vs_local"] for r in rows if r["run"] == run and r["order"] == order)

    targets = [("chunks, 20 ms RTT / local", ratio("S3, 20 ms RTT"), 0.9),
               ("chunks, 50 ms RTT / local", ratio("S3, 50 ms RTT"), 0.8),
               ("epoch 2+ with the cache / local", ratio("S3, max RTT, cache on"), 0.95)]
    result = dict(machine=bench.machine(), load_average=os.getloadavg(), images=args.n, batch_size=bench.BATCH, workers=WORKERS, pipeline="minimal",
                  s3_server="moto (local, 127.0.0.1) behind latency_proxy.py", rows=rows, two_ranks=ranks,
                  targets=[dict(measure=m, value=v, target=t, met=v >= t) for m, v, t in targets])
    print()
    print(rows_table(rows))
    print()
    print(bench.table(["2 ranks, 1 epoch", "fetched MB", "dataset MB", "ratio"],
                      [(o, v["fetched_mb"], v["dataset_mb"], v["ratio"]) for o, v in ranks.items()]))
    print()
    targets.append(("2 ranks, bytes of one epoch / dataset (chunks)", ranks["chunks, no read-ahead"]["ratio"], None))
    print(bench.table(["measure", "value", "target", "met"],
                      [(m, v, f">= {t}" if t else "<= 1.05", "yes" if (v >= t if t else v <= 1.05) else "NO")
                       for m, v, t in targets]))
    bench.write_results(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
