"""Deep Lake 3 data on S3 vs on local disk, read in place by lakedet (issue #22).

One command prints tables and writes ``benchmarks/results/v3-remote.json``::

    python benchmarks/v3_remote.py --dl3-python /tmp/dl3/bin/python

The data: ``--n`` 640x480 JPEGs (the loader benchmark's images, ``loader.render_jpegs``) written by
Deep Lake 3 itself (``--dl3-python``: a Python with ``deeplake<4``) in three commits: 70 % of the
rows, the rest appended, then the images of the first 10 rows rewritten (re-encoded), so the
latest commit reads chunks from three commit folders; then a saved view ``half`` (every second
row) at that commit. A Deep Lake 4 copy of the latest commit is made with ``lakedet convert``.
The v3 folder is uploaded, file for file, to a local S3 server (``moto``) reached through the
project's latency proxy (``latency_proxy.py``, HTTP keep-alive, ``rtt/2`` each way).

Every measurement runs in its own process (the ``c++`` loader, ``minimal`` pipeline, batch 8, 2
workers, ``DefaultSampler(shuffle=True)`` fitted as every run fits it, so remote v3 data gets the
chunk-aware order by default): images/s of the epochs after the first (which starts the workers),
the time from building the dataset to the first batch, and, on S3, the requests before the first
batch (counted and logged by the proxy) and GETs per image over the run.

* **local vs S3** at each ``--rtts``: for the whole ref and the saved view, ``--repeats`` pairs of
  (local, S3) runs, alternating which goes first; the ratio of the medians is reported with the
  ratio of every pair (the spread). Targets: >= 0.9x at 20 ms, >= 0.8x at 50 ms; GETs per image
  <= 0.1 (whole ref) and <= 0.3 (view); first batch from S3 <= 2x local's at 20 ms.
* **cache**: the whole ref on S3 at the largest RTT with ``deeplake_cache``: epochs 2+ (served by
  the cache) against local (target >= 0.95x).
* **v3 in place vs v4 copy** on local disk: ``--v4-repeats`` alternating runs per case, median and
  spread (target: median ratio >= 0.95 in every case).

The machine's load average is recorded before and after: on a shared machine ratios measured in
the same run count, not absolute rates.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import loader as bench  # noqa: E402
from remote import Proxy, cpu_seconds, start_s3  # noqa: E402

WORKERS = 2
REWRITTEN = 10  # rows of the first chunk whose images the third commit rewrites

#: Run by the Deep Lake 3 Python: three commits and a saved view (see the module docstring).
WRITE_V3 = r'''
import io, json, sys, tempfile, numpy as np, deeplake
from PIL import Image
path, spec = sys.argv[1], json.load(open(sys.argv[2]))
files, boxes, labels, rewritten = spec["files"], spec["boxes"], spec["labels"], spec["rewritten"]
n = len(files); first = int(n * 0.7)
ds = deeplake.empty(path, overwrite=True, verbose=False)
def row(i):
    return {"images": deeplake.read(files[i]), "boxes": np.array(boxes[i], np.float32).reshape(-1, 4),
            "labels": np.array(labels[i], np.uint32)}
with ds:
    ds.create_tensor("images", htype="image", sample_compression="jpeg")
    ds.create_tensor("boxes", htype="bbox", coords={"type": "pixel", "mode": "LTWH"})
    ds.create_tensor("labels", htype="class_label", class_names=["box", "disc", "bar"])
    for i in range(first):
        ds.append(row(i))
ds.commit("%d rows" % first)
with ds:
    for i in range(first, n):
        ds.append(row(i))
ds.commit("%d rows appended" % (n - first))
tmp = tempfile.mkdtemp()
with ds:
    for i in range(rewritten):
        out = "%s/%d.jpg" % (tmp, i)
        Image.open(files[i]).save(out, quality=80)
        ds.images[i] = deeplake.read(out)
ds.commit("images of rows 0-%d re-encoded" % (rewritten - 1))
ds[list(range(0, n, 2))].save_view(id="half", message="every second row", verbose=False)
print(deeplake.__version__)
'''


def make_data(root: Path, n: int, dl3_python: str) -> dict:
    """The v3 dataset (written by Deep Lake 3) and its v4 copy; reused when present."""
    v3, v4, done = root / f"v3-{n}", root / f"v4-{n}", root / f"complete-{n}"
    if not done.exists():
        if not Path(dl3_python).exists():
            raise SystemExit(f"--dl3-python {dl3_python}: no such Python; make one with `python3.11 -m venv /tmp/dl3 "
                             "&& /tmp/dl3/bin/pip install \"deeplake<4\" \"numpy<2\" pillow`")
        files = bench.make_data(root / f"files-{n}", n)
        coco = json.loads(Path(files["ann"]).read_text())
        boxes = {i["id"]: [] for i in coco["images"]}
        labels = {i["id"]: [] for i in coco["images"]}
        for a in coco["annotations"]:
            boxes[a["image_id"]].append(a["bbox"])
            labels[a["image_id"]].append(a["category_id"] - 1)
        spec = dict(files=[files["images"] + i["file_name"] for i in coco["images"]],
                    boxes=[boxes[i["id"]] for i in coco["images"]], labels=[labels[i["id"]] for i in coco["images"]],
                    rewritten=REWRITTEN)
        spec_file = root / "v3-spec.json"
        spec_file.write_text(json.dumps(spec))
        shutil.rmtree(v3, ignore_errors=True)
        shutil.rmtree(v4, ignore_errors=True)
        out = subprocess.run([dl3_python, "-W", "ignore", "-c", WRITE_V3, str(v3), str(spec_file)],
                             capture_output=True, text=True)
        if out.returncode:
            raise RuntimeError(f"writing the v3 dataset failed:\n{out.stderr[-3000:]}")
        from lakedet.tools.convert import convert_deeplake3

        convert_deeplake3(str(v3), str(v4), progress=None)
        done.write_text(out.stdout.strip().splitlines()[-1])
    return dict(v3=str(v3), v4=str(v4), dl3_version=done.read_text().strip())


def upload(folder: str, url: str, creds: dict) -> int:
    """The v3 folder's files, as they are, under ``url``; returns the bytes uploaded."""
    import boto3

    bucket, _, prefix = url[len("s3://"):].partition("/")
    client = boto3.client("s3", endpoint_url=creds["endpoint_url"], region_name=creds["aws_region"],
                          aws_access_key_id=creds["aws_access_key_id"],
                          aws_secret_access_key=creds["aws_secret_access_key"])
    total = 0
    for path in Path(folder).rglob("*"):
        if path.is_file() and not path.name.endswith(".lock"):
            client.upload_file(str(path), bucket, f"{prefix}/{path.relative_to(folder)}")
            total += path.stat().st_size
    return total


def proxy_snapshot(pid: int, stats_file: str) -> dict:
    """The proxy's counters now (it writes them on SIGUSR1)."""
    if os.path.exists(stats_file):
        os.remove(stats_file)
    os.kill(pid, signal.SIGUSR1)
    for _ in range(500):
        try:
            return json.loads(Path(stats_file).read_text())
        except (OSError, ValueError):
            time.sleep(0.01)
    raise RuntimeError("the proxy did not report its counters")


def measure(path: str, creds: dict | None, view: str | None, epochs: int, cache: str | None,
            proxy: list | None) -> dict:
    """In this (fresh) process: time to the first batch (and the proxy's counters then, and the
    length of its log), images/s of each epoch, the order and the layout's chunks."""
    started = time.perf_counter()
    import lakedet  # noqa: F401
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner
    from mmengine.utils.dl_utils import set_multi_processing

    from lakedet.engine.hooks import prepare_dataloader

    init_default_scope("mmdet")
    set_multi_processing(mp_start_method="fork", opencv_num_threads=0)  # what mmengine's Runner does
    dataset = dict(type="DeepLakeDetDataset", deeplake_path=path, pipeline=bench.PIPELINES["minimal"],
                   deeplake_view_id=view)
    if creds:
        dataset["deeplake_credentials"] = dict(creds=creds)
    if cache:
        dataset["deeplake_cache"] = cache
    loader = Runner.build_dataloader(dict(batch_size=bench.BATCH, num_workers=WORKERS, persistent_workers=True,
                                          sampler=dict(type="DefaultSampler", shuffle=True, seed=0),
                                          collate_fn=dict(type="pseudo_collate"), dataset=dataset), seed=0)
    prepare_dataloader(loader)
    built = time.perf_counter() - started  # the dataset opened (metadata, layout, annotations)
    first = None
    rates = []
    for epoch in range(epochs):
        loader.sampler.set_epoch(epoch)
        count, begun = 0, time.perf_counter()
        for batch in loader:
            if first is None:
                first = dict(seconds=time.perf_counter() - started, built_s=built)
                if proxy:
                    first["stats"] = proxy_snapshot(proxy[0], proxy[1])
                    first["log_lines"] = len(Path(proxy[2]).read_text().splitlines()) if proxy[2] else None
            count += len(batch["inputs"])
        rates.append(count / (time.perf_counter() - begun))
    layout = loader.dataset.reader.layout
    return dict(rates=rates, rows=len(loader.dataset), order=loader.sampler.order, first_batch=first,
                chunks=len(layout) if layout is not None else None)


def run(path, creds, view, epochs, cache=None, proxy: Proxy | None = None, server=None) -> dict:
    """``measure`` in a subprocess; over S3 also the proxy's counters over the run and the S3
    server's CPU time."""
    before = proxy.stats() if proxy else None
    log_start = len(Path(proxy.log).read_text().splitlines()) if proxy and proxy.log else 0
    served = cpu_seconds(server.pid) if server else None
    args = [path, creds, view, epochs, cache, [proxy.process.pid, proxy.stats_file, proxy.log] if proxy else None]
    out = subprocess.run([sys.executable, __file__, "--measure", json.dumps(args)], capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"measuring {path} view={view} failed:\n{out.stderr[-3000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["steady"] = statistics.median(result["rates"][1:] or result["rates"])
    if proxy:
        after = proxy.stats()
        images = result["rows"] * epochs
        first = result["first_batch"]
        result["gets_per_img"] = (after["gets"] - before["gets"]) / images
        result["mb_per_img"] = (after["bytes_down"] - before["bytes_down"]) / images / 1e6
        result["server_cpu_ms_per_img"] = (cpu_seconds(server.pid) - served) / images * 1000
        result["requests_before_first_batch"] = first["stats"]["requests"] - before["requests"]
        if proxy.log:
            lines = Path(proxy.log).read_text().splitlines()[log_start:first["log_lines"]]
            result["before_first_batch"] = classify(lines)
    return result


def classify(lines: list[str]) -> dict:
    """Requests before the first batch by what they are (from the proxy's log; paths relative to
    the bucket): statuses, the Deep Lake 4 open attempt (``_deeplake_log``), image chunks (whole
    GETs and ranged row reads), and the rest (metadata, index, annotation columns)."""
    found = dict(total=len(lines), status_404=0, status_416=0, deeplake4_open_attempt=0, image_chunk_gets=0,
                 image_row_gets=0, other=0)
    for line in lines:
        method, path, ranged, status = (line.split(" ") + ["", "", "", ""])[:4]
        found["status_404"] += status == "404"
        found["status_416"] += status == "416"
        if "_deeplake_log" in path:
            found["deeplake4_open_attempt"] += 1
        elif "/images/chunks/" in path:
            found["image_chunk_gets" if ranged in ("None", "bytes=0-") else "image_row_gets"] += 1
        else:
            found["other"] += 1
    return found


def spread(values) -> str:
    return f"{min(values):.2f}-{max(values):.2f}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1000, help="images (default 1000)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3, help="(local, S3) pairs per case")
    parser.add_argument("--v4-repeats", type=int, default=5, help="(v3, v4) local pairs per case (0: not measured)")
    parser.add_argument("--rtts", default="20,50", help="round trips to simulate, ms")
    parser.add_argument("--dl3-python", default=os.environ.get("LAKEDET_DL3_PYTHON", "/tmp/dl3/bin/python"))
    parser.add_argument("--data", default=str(HERE / ".data" / "v3-remote"))
    parser.add_argument("--out", default=str(HERE / "results" / "v3-remote.json"))
    parser.add_argument("--note", default="", help="recorded in the JSON (e.g. what else ran on the machine)")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        print(json.dumps(measure(*json.loads(args.measure))))
        return 0

    load_before = os.getloadavg()
    print(f"machine: {bench.machine()}; load average {load_before[0]:.2f}", flush=True)
    root = Path(args.data)
    root.mkdir(parents=True, exist_ok=True)
    data = make_data(root, args.n, args.dl3_python)
    views = (None, "half")
    server, creds = start_s3()
    proxies: dict = {}
    remote_rows, cache_row = [], None
    try:
        url = f"s3://lakedet/v3-{args.n}"
        stored = upload(data["v3"], url, creds)
        print(f"v3 dataset ({args.n} rows, Deep Lake {data['dl3_version']}): {stored / 1e6:.1f} MB uploaded to {url}",
              flush=True)
        for rtt in [float(x) for x in args.rtts.split(",")]:
            log = tempfile.NamedTemporaryFile(prefix=f"lakedet-v3-proxy-{rtt:g}-", suffix=".log", delete=False).name
            proxies[rtt] = proxy = Proxy(creds["endpoint_url"], rtt, log=log)
            via = dict(creds, endpoint_url=proxy.endpoint)
            for view in views:
                local, remote = [], []
                for repeat in range(args.repeats):  # alternate which runs first: the load drifts
                    for where in (("local", "s3") if repeat % 2 == 0 else ("s3", "local")):
                        if where == "local":
                            local.append(run(data["v3"], None, view, args.epochs))
                        else:
                            remote.append(run(url, via, view, args.epochs, proxy=proxy, server=server))
                local_rate = statistics.median(r["steady"] for r in local)
                remote_rate = statistics.median(r["steady"] for r in remote)
                pairs = [s["steady"] / l["steady"] for l, s in zip(local, remote)]
                local_first = statistics.median(r["first_batch"]["seconds"] for r in local)
                remote_first = statistics.median(r["first_batch"]["seconds"] for r in remote)
                row = dict(rtt_ms=rtt, selection=view or "all rows", rows=remote[0]["rows"], order=remote[0]["order"],
                           chunks=remote[0]["chunks"], local_img_per_s=round(local_rate, 1),
                           s3_img_per_s=round(remote_rate, 1), ratio=round(remote_rate / local_rate, 3),
                           pair_ratios=[round(p, 3) for p in pairs],
                           local_runs=[round(r["steady"], 1) for r in local],
                           s3_runs=[round(r["steady"], 1) for r in remote],
                           gets_per_img=round(statistics.median(r["gets_per_img"] for r in remote), 4),
                           mb_per_img=round(statistics.median(r["mb_per_img"] for r in remote), 4),
                           server_cpu_ms_per_img=round(statistics.median(r["server_cpu_ms_per_img"] for r in remote), 2),
                           local_first_batch_s=round(local_first, 2), s3_first_batch_s=round(remote_first, 2),
                           first_batch_ratio=round(remote_first / local_first, 2),
                           local_dataset_built_s=round(statistics.median(r["first_batch"]["built_s"] for r in local), 2),
                           s3_dataset_built_s=round(statistics.median(r["first_batch"]["built_s"] for r in remote), 2),
                           requests_before_first_batch=[r["requests_before_first_batch"] for r in remote],
                           before_first_batch=remote[0].get("before_first_batch"))
                remote_rows.append(row)
                print(f"  {rtt:g} ms, {row['selection']:8s}: local {local_rate:6.1f}, S3 {remote_rate:6.1f} img/s "
                      f"({row['ratio']:.2f}x, pairs {spread(pairs)}), {row['gets_per_img']:.3f} GET/img, first batch "
                      f"{local_first:.1f} s local / {remote_first:.1f} s S3, "
                      f"{row['requests_before_first_batch']} requests before it", flush=True)
        worst = max(proxies)
        with tempfile.TemporaryDirectory(dir=root) as cache:
            local = run(data["v3"], None, None, args.epochs)
            cached = run(url, dict(creds, endpoint_url=proxies[worst].endpoint), None, args.epochs, cache=cache,
                         proxy=proxies[worst], server=server)
            cache_row = dict(rtt_ms=worst, local_img_per_s=round(local["steady"], 1),
                             s3_cache_epochs_img_per_s=[round(r, 1) for r in cached["rates"]],
                             ratio=round(cached["steady"] / local["steady"], 3),
                             gets_per_img_all_epochs=round(cached["gets_per_img"], 4))
            print(f"  cache, {worst:g} ms: epochs {cache_row['s3_cache_epochs_img_per_s']} img/s vs local "
                  f"{local['steady']:.1f} ({cache_row['ratio']:.2f}x for epochs 2+)", flush=True)
    finally:
        for proxy in proxies.values():
            proxy.stop()
        server.kill()
        server.wait()

    v4_rows = []
    for view in views if args.v4_repeats else ():
        found = {"v3": [], "v4": []}
        for repeat in range(args.v4_repeats):
            for fmt in (("v4", "v3") if repeat % 2 == 0 else ("v3", "v4")):
                found[fmt].append(run(data[fmt], None, view, args.epochs)["steady"])
        ratios = [a / b for a, b in zip(found["v3"], found["v4"])]
        v4_rows.append(dict(selection=view or "all rows", v3_img_per_s=round(statistics.median(found["v3"]), 1),
                            v4_img_per_s=round(statistics.median(found["v4"]), 1),
                            median_ratio=round(statistics.median(found["v3"]) / statistics.median(found["v4"]), 3),
                            pair_ratios=[round(r, 3) for r in ratios],
                            v3_runs=[round(r, 1) for r in found["v3"]], v4_runs=[round(r, 1) for r in found["v4"]]))
        print(f"  local v3 in place vs v4 copy, {view or 'all rows'}: {v4_rows[-1]['median_ratio']:.2f}x "
              f"(pairs {spread(ratios)})", flush=True)

    load_after = os.getloadavg()

    def ratio_at(rtt, selection="all rows"):
        return next((r for r in remote_rows if r["rtt_ms"] == rtt and r["selection"] == selection), None)

    targets = []
    for rtt, target in ((20.0, 0.9), (50.0, 0.8)):
        for selection in ("all rows", "half"):
            row = ratio_at(rtt, selection)
            if row:
                targets.append((f"S3 {rtt:g} ms / local, {selection}", row["ratio"], f">= {target}", row["ratio"] >= target))
    for selection, limit in (("all rows", 0.1), ("half", 0.3)):
        gets = [r["gets_per_img"] for r in remote_rows if r["selection"] == selection]
        if gets:
            targets.append((f"GET/img, {selection} (worst RTT)", max(gets), f"<= {limit}", max(gets) <= limit))
    if ratio_at(20.0):
        row = ratio_at(20.0)
        targets.append(("first batch S3 20 ms / local", row["first_batch_ratio"], "<= 2", row["first_batch_ratio"] <= 2))
    if cache_row:
        targets.append(("cache epochs 2+ / local", cache_row["ratio"], ">= 0.95", cache_row["ratio"] >= 0.95))
    for row in v4_rows:
        targets.append((f"local v3 in place / v4 copy, {row['selection']}", row["median_ratio"], ">= 0.95",
                        row["median_ratio"] >= 0.95))
    result = dict(machine=bench.machine(), note=args.note, load_average_before=[round(x, 2) for x in load_before],
                  load_average_after=[round(x, 2) for x in load_after], images=args.n, image_size="640x480",
                  deeplake3_version=data["dl3_version"], batch_size=bench.BATCH, workers=WORKERS, pipeline="minimal",
                  epochs=args.epochs, repeats=args.repeats, v4_repeats=args.v4_repeats,
                  s3_server="moto (local, 127.0.0.1) behind latency_proxy.py", remote=remote_rows, cache=cache_row,
                  v3_vs_v4=v4_rows, targets=[dict(measure=m, value=v, target=t, met=ok) for m, v, t, ok in targets],
                  command="python benchmarks/v3_remote.py " + " ".join(a for a in (argv or sys.argv[1:])))
    print()
    print(bench.table(["RTT ms", "selection", "rows", "chunks", "order", "local img/s", "S3 img/s", "S3/local",
                       "pairs", "GET/img", "kB/img", "server ms/img", "opened local s", "opened S3 s", "1st batch local s",
                       "1st batch S3 s", "requests before"],
                      [(r["rtt_ms"], r["selection"], r["rows"], r["chunks"], r["order"], r["local_img_per_s"],
                        r["s3_img_per_s"], r["ratio"], spread(r["pair_ratios"]), r["gets_per_img"],
                        round(r["mb_per_img"] * 1000, 1), r["server_cpu_ms_per_img"], r.get("local_dataset_built_s"),
                        r.get("s3_dataset_built_s"), r["local_first_batch_s"],
                        r["s3_first_batch_s"], r["requests_before_first_batch"]) for r in remote_rows]))
    print()
    print(bench.table(["local", "v3 img/s", "v4 img/s", "v3/v4 median", "pairs"],
                      [(r["selection"], r["v3_img_per_s"], r["v4_img_per_s"], r["median_ratio"],
                        spread(r["pair_ratios"])) for r in v4_rows]))
    print()
    print(bench.table(["measure", "value", "target", "met"], [(m, v, t, "yes" if ok else "NO") for m, v, t, ok in targets]))
    print(f"\nload average {load_before[0]:.1f} -> {load_after[0]:.1f}")
    bench.write_results(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
