"""Shared fixtures: tiny synthetic Deep Lake datasets built in temporary folders."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from lakedet.tools.synthetic import make_shapes_dataset

CONFIG_DIR = Path(__file__).parent / "configs"


def start_s3_server():
    """Start a real S3 protocol server (moto) on a free 127.0.0.1 port, with a bucket ``lakedet``.

    Returns ``(process, creds)``: ``creds`` is the dict Deep Lake takes (``endpoint_url`` included).
    """
    import socket
    import subprocess
    import sys
    import time

    import boto3

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    creds = dict(aws_access_key_id="lakedet", aws_secret_access_key="lakedet-secret",
                 endpoint_url=f"http://127.0.0.1:{port}", aws_region="us-east-1")
    client = boto3.client("s3", endpoint_url=creds["endpoint_url"], region_name="us-east-1",
                          aws_access_key_id=creds["aws_access_key_id"],
                          aws_secret_access_key=creds["aws_secret_access_key"])
    deadline = time.monotonic() + 30
    while True:
        try:
            client.create_bucket(Bucket="lakedet")
            return server, creds
        except Exception:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                raise RuntimeError("the moto S3 server did not start")
            time.sleep(0.1)


def upload_folder(creds: dict, folder: Path, prefix: str):
    """Every file under ``folder``, as it is, to ``s3://lakedet/<prefix>/`` on the server of
    ``creds``. Returns ``(url, objects)``: ``objects()`` lists the keys there with their ETags
    (to show that nothing was written)."""
    import boto3

    client = boto3.client("s3", endpoint_url=creds["endpoint_url"], region_name="us-east-1",
                          aws_access_key_id=creds["aws_access_key_id"], aws_secret_access_key=creds["aws_secret_access_key"])
    for path in Path(folder).rglob("*"):
        if path.is_file():
            client.upload_file(str(path), "lakedet", f"{prefix}/{path.relative_to(folder)}")

    def objects():
        listed = client.list_objects_v2(Bucket="lakedet", Prefix=f"{prefix}/")["Contents"]
        return {o["Key"]: o["ETag"] for o in listed}

    return f"s3://lakedet/{prefix}", objects


def benchmark_module(name: str):
    """``benchmarks/<name>.py``, imported (the benchmarks are scripts, not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        name, Path(__file__).resolve().parent.parent / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


#: ``benchmarks/latency_proxy.py``'s proxy on an event loop in a thread of this process (the tests
#: and the benchmarks share it)
ThreadedProxy = benchmark_module("latency_proxy").ThreadedProxy


@pytest.fixture(scope="session")
def s3_server():
    """A moto S3 server for the whole session (``start_s3_server``); yields its creds, stops it at the end."""
    server, creds = start_s3_server()
    yield creds
    server.terminate()
    server.wait(timeout=10)


@pytest.fixture
def proxy(s3_server):
    """A ``ThreadedProxy`` (no added latency) in front of the session's S3 server, counting requests."""
    running = ThreadedProxy(s3_server["endpoint_url"])
    yield running
    running.stop()


@pytest.fixture(scope="session")
def shapes(tmp_path_factory):
    """24 JPEG rows of 64x64 shapes (every 6th row has no boxes): ``(path, rows)``."""
    path = str(tmp_path_factory.mktemp("shapes") / "ds")
    _, rows = make_shapes_dataset(path, 24, size=64, seed=3, min_side=12, max_side=30, empty_every=6)
    return path, rows


@pytest.fixture(scope="session")
def shapes_val(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("shapes_val") / "ds")
    _, rows = make_shapes_dataset(path, 8, size=64, seed=4, min_side=12, max_side=30, empty_every=4)
    return path, rows


@pytest.fixture(scope="session")
def untrained_checkpoints(tmp_path_factory):
    """Two checkpoints of the tiny RetinaNet (``configs/tiny_retinanet.py``), freshly initialised
    with seeds 0 and 1 (no training): two different models that predict boxes at ``--score-thr 0``."""
    import torch
    from mmengine.config import Config

    from lakedet import build_detector

    folder = tmp_path_factory.mktemp("ckpt")
    paths = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        model = build_detector(Config.fromfile(str(CONFIG_DIR / "tiny_retinanet.py")).model)
        paths.append(str(folder / f"untrained{seed}.pth"))
        torch.save({"state_dict": model.state_dict(), "meta": {}}, paths[-1])
    return paths


def metadata_of(ds) -> str:
    """The dataset's metadata and every column's, as sorted JSON (Deep Lake 4.7.4 shares the
    dataset's metadata across branches: a key written on one branch shows on all)."""
    import json

    def read(metadata):
        return {key: metadata[key] for key in metadata.keys()}

    return json.dumps(dict(dataset=read(ds.metadata), columns={c.name: read(ds[c.name].metadata)
                                                               for c in ds.schema.columns}),
                      sort_keys=True, default=repr)


def dataset_hash(path: str, creds: dict | None = None, branch: str | None = None) -> str:
    """A hash of every column of every row, of the metadata (``metadata_of``) and of the version of
    the current branch, or of ``branch``, to prove nothing was written."""
    import deeplake

    ds = deeplake.open_read_only(path, creds=creds) if creds else deeplake.open_read_only(path)
    root, ds = ds, (ds.branches[branch].open() if branch else ds)
    digest = hashlib.sha256(str(ds.version).encode())
    digest.update(metadata_of(ds).encode())
    for column in ds.schema.columns:
        for row in range(len(ds)):
            value = ds[column.name].get_bytes(row) if column.dtype.kind.name == "Image" else ds[column.name][row]
            digest.update(value if isinstance(value, bytes) else np.ascontiguousarray(value).tobytes())
    return digest.hexdigest()


def pytest_collection_modifyitems(session, config, items):
    """Run the tests that use S3 in this process last.

    Deep Lake replaces ``os.fork`` with a version that first joins its native I/O threads; while
    any of them waits on storage, the fork waits too (``test_fork_safety.py`` reproduces it).
    lakedet's own DataLoaders start their workers with forkserver once the process has opened
    remote data (``lakedet.engine.runner._worker_start_method``), but several tests here build plain
    PyTorch DataLoaders, which fork: they run before any in-process S3 use. (Seen before the
    forkserver change: a hang, then a crash, in that preparation after ``test_remote.py``.)
    """
    items.sort(key=lambda item: item.get_closest_marker("remote") is not None)
