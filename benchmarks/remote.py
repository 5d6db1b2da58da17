"""Local disk vs S3: the same Deep Lake data through the same loader.

One command (``python benchmarks/remote.py``) prints a table and writes
``benchmarks/results/remote.json``. The S3 side is a real S3 protocol server (``moto``) started
here on 127.0.0.1; the dataset is the loader benchmark's 640x480 JPEG set, ingested to it by
``lakedet ingest``. Each measurement runs in its own process: the ``c++`` loader (and ``python``),
``minimal`` pipeline, batch 8, 2 workers, median images/s over ``--epochs`` passes. Target:
S3 >= 0.8x local.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import loader as bench  # noqa: E402  (the loader benchmark's data, pipelines and timing)


def start_s3(bucket: str = "lakedet"):
    """A moto S3 server on a free 127.0.0.1 port with ``bucket``; returns (process, creds)."""
    import boto3

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    creds = dict(aws_access_key_id="bench", aws_secret_access_key="bench-secret",
                 endpoint_url=f"http://127.0.0.1:{port}", aws_region="us-east-1")
    client = boto3.client("s3", endpoint_url=creds["endpoint_url"], region_name="us-east-1",
                          aws_access_key_id="bench", aws_secret_access_key="bench-secret")
    deadline = time.monotonic() + 30
    while True:
        try:
            client.create_bucket(Bucket=bucket)
            return server, creds
        except Exception:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                raise RuntimeError("the moto S3 server did not start")
            time.sleep(0.1)


def measure(path: str, creds: dict | None, kind: str, workers: int, epochs: int) -> float:
    """Images/s of one loader over ``path``, in this process."""
    import lakedet  # noqa: F401
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner
    from mmengine.utils.dl_utils import set_multi_processing

    init_default_scope("mmdet")
    set_multi_processing(mp_start_method="fork", opencv_num_threads=0)
    dataset = dict(type="DeepLakeDetDataset", deeplake_path=path, deeplake_dataloader_type=kind,
                   pipeline=bench.PIPELINES["minimal"])
    if creds:
        dataset["deeplake_credentials"] = dict(creds=creds)
    loader = Runner.build_dataloader(dict(
        batch_size=bench.BATCH, num_workers=workers, persistent_workers=workers > 0,
        sampler=dict(type="DefaultSampler", shuffle=True, seed=0), collate_fn=dict(type="pseudo_collate"),
        dataset=dataset), seed=0)
    return bench.throughput(loader, epochs)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (Linux)."""
    import os

    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure_in_subprocess(path, creds, kind, workers, epochs) -> float:
    out = subprocess.run([sys.executable, __file__, "--measure", json.dumps([path, creds, kind, workers, epochs])],
                         capture_output=True, text=True, check=False)
    if out.returncode:
        raise RuntimeError(f"measuring {kind} on {path} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])["img_per_s"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--data", default=str(HERE / ".data"))
    parser.add_argument("--out", default=str(HERE / "results" / "remote.json"))
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        print(json.dumps(dict(img_per_s=measure(*json.loads(args.measure)))))
        return 0

    from lakedet.ingest import ingest_coco

    print(f"machine: {bench.machine()}")
    data = bench.make_data(Path(args.data) / f"coco-{args.n}", args.n)
    server, creds = start_s3()
    try:
        url = f"s3://lakedet/coco-{args.n}"
        started = time.perf_counter()
        ingest_coco(data["ann"], data["images"], url, masks=None, creds=creds)
        print(f"ingested {args.n} images to {url} on {creds['endpoint_url']} in {time.perf_counter() - started:.1f} s")
        rows = []
        for kind in ("cpp", "python"):
            local = measure_in_subprocess(data["lake"], None, kind, args.workers, args.epochs)
            served = cpu_seconds(server.pid)
            remote = measure_in_subprocess(url, creds, kind, args.workers, args.epochs)
            # the S3 server shares this machine's cores: what it spends per image is not the loader's
            server_ms = (cpu_seconds(server.pid) - served) / (args.n * args.epochs) * 1000
            rows.append(dict(loader=kind, workers=args.workers, local_img_per_s=round(local, 1),
                             s3_img_per_s=round(remote, 1), s3_vs_local=round(remote / local, 3),
                             server_cpu_ms_per_img=round(server_ms, 2)))
            print(f"  {kind}: local {local:.1f} img/s, S3 {remote:.1f} img/s "
                  f"(the S3 server used {server_ms:.2f} ms CPU per image)", flush=True)
    finally:
        server.kill()
        server.wait()
    result = dict(machine=bench.machine(), images=args.n, batch_size=bench.BATCH, pipeline="minimal",
                  s3_server="moto (local, 127.0.0.1)", rows=rows,
                  s3_vs_local_cpp_w2=next(r["s3_vs_local"] for r in rows if r["loader"] == "cpp"))
    print()
    print(bench.table(["loader", "workers", "local img/s", "S3 img/s", "S3 / local", "server CPU ms/img"],
                      [(r["loader"], r["workers"], r["local_img_per_s"], r["s3_img_per_s"], r["s3_vs_local"],
                        r["server_cpu_ms_per_img"]) for r in rows]))
    met = "yes" if result["s3_vs_local_cpp_w2"] >= 0.8 else "NO"
    print(f"\ntarget S3 >= 0.8x local (c++ loader): {result['s3_vs_local_cpp_w2']} ({met})")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
