"""How Deep Lake 4.7.4 reads an Image column over S3: requests and bytes per kind of read.

One command (``python benchmarks/deeplake_reads.py``) prints the figures and writes
``benchmarks/results/deeplake_reads.json``; ``docs/streaming.md`` cites them. A ``moto`` S3 server
runs on 127.0.0.1; every probe runs in its own fresh process (nothing in Deep Lake's memory from
an earlier probe) with ``latency_proxy.py``'s proxy at 0 ms RTT on a thread in front of the server,
counting GETs and bytes from the client's side. Counts start after the dataset is opened.

The dataset: ``--n`` JPEG images (640x480 noise, about 100 kB each) appended as stored bytes to an
Image column, in chunks of about 8 MB (Deep Lake's choice). Probes:

- ``slice``: ``get_bytes(slice)`` over the rows of one chunk;
- ``rows``: ``get_bytes(list)`` of 32 consecutive rows, and of 32 random rows (fresh processes);
- ``memory``: read ``k`` chunks in order by slices, then re-read them in the same order; GETs of
  the re-read, for several ``k``, and of re-reading only the last chunk read and the first;
- ``disk cache``: ``DEEPLAKE_FS_CACHE_PATH`` / ``DEEPLAKE_FS_CACHE_SIZE_MB`` (undocumented): one
  process reads about 90 MB by slices, a second process reads the same (and a list of rows of
  it); then with a 40 MB cap, the folder's size after each chunk read, and a second process's
  sequential re-read.

The machine has 2 cores shared with other work; its load average is in the JSON.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import loader as bench  # noqa: E402  (machine(), write_results)
from latency_proxy import ThreadedProxy  # noqa: E402
from remote import start_s3  # noqa: E402  (a moto S3 server with the bucket lakedet)

COLUMN = "images"
URL = "s3://lakedet/reads"


def delta(after: dict, before: dict) -> dict:
    return dict(gets=after["gets"] - before["gets"], mb=round((after["bytes_down"] - before["bytes_down"]) / 1e6, 3))


def make_images(count: int, seed: int = 0) -> list[bytes]:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        base = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
        noisy = np.kron(base, np.ones((8, 8, 1), dtype=np.uint8)) + rng.integers(0, 24, (480, 640, 3), dtype=np.uint8)
        buf = io.BytesIO()
        Image.fromarray(noisy).save(buf, format="JPEG", quality=80)
        out.append(buf.getvalue())
    return out


def build(creds: dict, n: int) -> None:
    import deeplake

    images = make_images(64)
    ds = deeplake.create(URL, creds=creds)
    ds.add_column(COLUMN, deeplake.types.Image(sample_compression="jpg"))
    for start in range(0, n, 100):
        ds.append({COLUMN: [images[i % len(images)] for i in range(start, min(n, start + 100))]})
    ds.commit("images")


def probe(kind: str, creds: dict, arg: str) -> dict:
    """Runs in a fresh process: open through a counting proxy, then do one kind of read."""
    import numpy as np

    proxy = ThreadedProxy(creds["endpoint_url"])
    import deeplake

    from lakedet.source.layout import chunk_layout

    ds = deeplake.open_read_only(URL, creds=dict(creds, endpoint_url=proxy.endpoint))
    layout = chunk_layout(ds, COLUMN)
    bounds = [int(b) for b in layout.bounds]
    col = ds[COLUMN]
    base = proxy.stats
    out = dict(chunks=len(bounds) - 1, bounds=bounds, open=dict(gets=base["gets"], mb=round(base["bytes_down"] / 1e6, 3)))
    if kind == "layout":
        sizes = [len(col.get_bytes(i)) for i in range(0, len(ds), max(1, len(ds) // 200))]
        out["mean_image_kb"] = round(float(np.mean(sizes)) / 1e3, 1)
    elif kind == "slice":
        a, b = bounds[1], bounds[2]
        col.get_bytes(slice(a, b))
        out.update(delta(proxy.stats, base), rows=b - a)
    elif kind == "rows":
        rng = np.random.default_rng(1)
        if arg == "consecutive":
            rows = list(range(bounds[3] + 5, bounds[3] + 37))
        else:
            rows = [int(r) for r in rng.choice(len(ds), 32, replace=False)]
        sizes = col.get_bytes(rows)
        out.update(delta(proxy.stats, base), rows=len(rows), image_mb=round(sum(len(s) for s in sizes) / 1e6, 3))
    elif kind == "memory":
        k = int(arg)
        for i in range(k):
            col.get_bytes(slice(bounds[i], bounds[i + 1]))
        first = proxy.stats
        out["first_read"] = delta(first, base)
        col.get_bytes(slice(bounds[k - 1], bounds[k]))
        last = proxy.stats
        out["reread_last_chunk"] = delta(last, first)
        col.get_bytes(slice(bounds[0], bounds[1]))
        one = proxy.stats
        out["reread_first_chunk"] = delta(one, last)
        for i in range(k):
            col.get_bytes(slice(bounds[i], bounds[i + 1]))
        out["reread_all_in_order"] = delta(proxy.stats, one)
    elif kind == "disk":
        k, folder = int(arg.split(":")[0]), arg.split(":", 1)[1]
        sizes = []
        for i in range(k):
            col.get_bytes(slice(bounds[i], bounds[i + 1]))
            sizes.append(round(folder_mb(folder), 1))
        out["read"] = delta(proxy.stats, base)
        out["folder_mb_after_each_chunk"] = sizes
        out["data_mb"] = out["read"]["mb"]
    elif kind == "disk-rows":
        before = proxy.stats
        col.get_bytes(list(range(bounds[0] + 3, bounds[0] + 35)))
        out["rows_32"] = delta(proxy.stats, before)
    return out


def folder_mb(folder: str) -> float:
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(root, name))
            except OSError:
                pass
    return total / 1e6


def run_probe(kind: str, creds: dict, arg: str = "", env: dict | None = None) -> dict:
    command = [sys.executable, __file__, "--probe", kind, json.dumps(creds), arg]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env={**os.environ, **(env or {})})
    if done.returncode:
        raise RuntimeError(f"probe {kind} {arg} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2400, help="images (default 2400, about 25 chunks)")
    parser.add_argument("--out", default=str(HERE / "results" / "deeplake_reads.json"))
    parser.add_argument("--probe", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.probe:
        kind, creds, arg = args.probe
        print(json.dumps(probe(kind, json.loads(creds), arg)))
        return 0

    import deeplake

    load_before = os.getloadavg()
    started = time.perf_counter()
    server, creds = start_s3()
    try:
        build(creds, args.n)
        print(f"built {args.n} images in {time.perf_counter() - started:.1f} s", flush=True)
        layout = run_probe("layout", creds)
        bounds = layout["bounds"]
        result = dict(machine=bench.machine() + " (shared with other work)", deeplake=deeplake.__version__,
                      s3_server="moto (local, 127.0.0.1) behind latency_proxy.py at 0 ms RTT",
                      images=args.n, chunks=layout["chunks"], mean_image_kb=layout["mean_image_kb"])
        one_slice = run_probe("slice", creds)
        result["slice_one_chunk"] = dict(gets=one_slice["gets"], mb=one_slice["mb"], rows=one_slice["rows"])
        chunk_mb = one_slice["mb"]
        result["chunk_mb"] = chunk_mb
        print("slice", result["slice_one_chunk"], flush=True)
        rows = {}
        for which in ("consecutive", "random"):
            r = run_probe("rows", creds, which)
            rows[which] = dict(rows=r["rows"], gets=r["gets"], mb=r["mb"], image_mb=r["image_mb"],
                               kb_per_row=round(1000 * r["mb"] / r["rows"], 1),
                               gets_per_row=round(r["gets"] / r["rows"], 3))
            print("rows", which, rows[which], flush=True)
        result["row_lists_32"] = rows
        memory = {}
        for k in (5, 10, 12, 15, 20):
            if k + 1 > layout["chunks"]:
                break
            m = run_probe("memory", creds, str(k))
            memory[str(k)] = dict(chunks=k, read_mb=m["first_read"]["mb"], reread_last_chunk_gets=m["reread_last_chunk"]["gets"],
                                  reread_first_chunk_gets=m["reread_first_chunk"]["gets"],
                                  reread_all_in_order_gets=m["reread_all_in_order"]["gets"],
                                  reread_all_in_order_mb=m["reread_all_in_order"]["mb"])
            print("memory", k, memory[str(k)], flush=True)
        result["in_memory_reread"] = memory
        k = min(layout["chunks"], max(1, round(90 / chunk_mb)) if chunk_mb else 11)
        disk = {}
        with tempfile.TemporaryDirectory() as folder:
            env = dict(DEEPLAKE_FS_CACHE_PATH=folder, DEEPLAKE_FS_CACHE_SIZE_MB="10000")
            one = run_probe("disk", creds, f"{k}:{folder}", env)
            two = run_probe("disk", creds, f"{k}:{folder}", env)
            rows32 = run_probe("disk-rows", creds, "", env)
            disk["uncapped"] = dict(chunks=k, first_process=one["read"], second_process=two["read"],
                                    first_process_open=one["open"], second_process_open=two["open"],
                                    first_process_total_gets=one["open"]["gets"] + one["read"]["gets"],
                                    second_process_total_gets=two["open"]["gets"] + two["read"]["gets"],
                                    folder_mb=one["folder_mb_after_each_chunk"][-1],
                                    rows_32_after=rows32["rows_32"])
        print("disk", disk["uncapped"], flush=True)
        with tempfile.TemporaryDirectory() as folder:
            env = dict(DEEPLAKE_FS_CACHE_PATH=folder, DEEPLAKE_FS_CACHE_SIZE_MB="40")
            one = run_probe("disk", creds, f"{k}:{folder}", env)
            two = run_probe("disk", creds, f"{k}:{folder}", env)
            sizes = one["folder_mb_after_each_chunk"]
            disk["cap_40_mb"] = dict(chunks=k, cap_mb=40, first_process=one["read"], second_process=two["read"],
                                     first_process_open=one["open"], second_process_open=two["open"],
                                     folder_mb_after_each_chunk=sizes,
                                     folder_mb_min_once_over_cap=min((s for i, s in enumerate(sizes) if (i + 1) * chunk_mb > 40), default=None),
                                     folder_mb_max=max(sizes))
        print("disk cap 40 MB", disk["cap_40_mb"], flush=True)
        result["disk_cache"] = disk
    finally:
        server.terminate()
        server.wait(timeout=10)
    result["seconds"] = round(time.perf_counter() - started, 1)
    result["load_average_before"] = [round(x, 2) for x in load_before]
    result["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    bench.write_results(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
