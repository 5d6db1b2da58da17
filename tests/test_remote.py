"""Datasets on S3 (a real moto server on 127.0.0.1) and on disk: train, evaluate, never write to them;
wrong S3 keys are refused with a clear error."""

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import deeplake
import pytest

from conftest import CONFIG_DIR, dataset_hash

pytestmark = pytest.mark.timeout(300)


def upload(local_path: str, url: str, creds: dict | None) -> str:
    """Copy a dataset (history and column metadata included) to ``url``; return ``url``."""
    deeplake.copy(local_path, url, dst_creds=creds)
    return url


def open_read_only(url: str, creds: dict | None):
    return deeplake.open_read_only(url, creds=creds) if creds else deeplake.open_read_only(url)


def stored_objects(url: str, creds: dict | None) -> dict[str, tuple]:
    """Every object (S3) or file (local) under ``url`` with its ETag and size or its SHA-256:
    what a write would change or add."""
    if not url.startswith("s3://"):
        return {str(f.relative_to(url)): hashlib.sha256(f.read_bytes()).hexdigest()
                for f in sorted(Path(url).rglob("*")) if f.is_file()}
    import boto3

    bucket, _, prefix = url[len("s3://"):].partition("/")
    client = boto3.client("s3", endpoint_url=creds["endpoint_url"], region_name=creds["aws_region"],
                          aws_access_key_id=creds["aws_access_key_id"],
                          aws_secret_access_key=creds["aws_secret_access_key"])
    found = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/"):
        found.update({o["Key"]: (o["ETag"], o["Size"]) for o in page.get("Contents", [])})
    return found


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.remote)])
def storage(request, tmp_path):
    """``(root, creds)``: where the test's datasets go, a local folder or a bucket on ``s3_server``."""
    if request.param == "local":
        return str(tmp_path / "datasets"), None
    return "s3://lakedet/never-written", request.getfixturevalue("s3_server")


@pytest.mark.slow
def test_train_and_evaluate_never_write_to_the_source(storage, shapes, shapes_val, tmp_path):
    """Train 2 iterations, validate, then ``lakedet eval``: metrics exist, the datasets are untouched."""
    from mmengine.config import Config

    from lakedet import build_detector, train_detector
    from lakedet.cli import main
    from lakedet.engine.runner import last_metrics

    root, creds = storage
    train_url = upload(shapes[0], f"{root}/train", creds)
    val_url = upload(shapes_val[0], f"{root}/val", creds)
    before = {url: (dataset_hash(url, creds), stored_objects(url, creds)) for url in (train_url, val_url)}
    assert all(objects for _, objects in before.values())
    credentials = f"deeplake_credentials=dict(creds={dict(creds)!r})" if creds else "deeplake_credentials=None"
    config = tmp_path / "config.py"
    config.write_text(
        f"_base_ = {str(CONFIG_DIR / 'tiny_retinanet.py')!r}\n"
        f"train_dataloader = dict(dataset=dict(deeplake_path={train_url!r}, {credentials}))\n"
        f"val_dataloader = dict(dataset=dict(deeplake_path={val_url!r}, {credentials}))\n"
        f"test_dataloader = dict(dataset=dict(deeplake_path={val_url!r}, {credentials}))\n")
    cfg = Config.fromfile(str(config))
    cfg.work_dir = str(tmp_path / "work")

    runner = train_detector(build_detector(cfg.model), cfg, validate=True)
    assert runner.iter == 2
    assert 0 <= last_metrics(runner)["coco/bbox_mAP"] <= 1
    lineage = json.loads((tmp_path / "work" / "lineage.json").read_text())["latest"]["splits"]
    assert lineage["train"][0]["url"] == train_url and lineage["train"][0]["rows"] == len(shapes[1])
    assert lineage["train"][0]["commit"] == open_read_only(train_url, creds).version

    if creds:  # the checkpoint keeps the config, but not the secret in it
        import torch

        from lakedet.engine.checkpoints import allow_mmengine_checkpoints

        allow_mmengine_checkpoints()
        meta = torch.load(tmp_path / "work" / "iter_2.pth", map_location="cpu", weights_only=True)["meta"]
        assert creds["aws_secret_access_key"] not in str(meta) and "aws_secret_access_key='<redacted>'" in meta["cfg"]
        for written in (tmp_path / "work").rglob("*"):  # nor do the config copy and the logs
            if written.is_file() and written.suffix != ".pth":
                assert creds["aws_secret_access_key"] not in written.read_text(errors="ignore"), written

    assert main(["eval", str(config), str(tmp_path / "work" / "iter_2.pth"), "--work-dir", str(tmp_path / "eval")]) == 0
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())["metrics"]
    for key in ("coco/bbox_mAP", "coco/bbox_mAP_50"):
        assert 0 <= metrics[key] <= 1, metrics
    # neither training nor evaluation wrote a byte: same rows, same version, same stored objects
    assert {url: (dataset_hash(url, creds), stored_objects(url, creds)) for url in before} == before


@pytest.fixture(scope="session")
def s3_checking_keys(shapes_val):
    """A moto S3 server that checks credentials (unlike ``s3_server``), holding one dataset.

    Yields ``(url, creds)``: the creds of an IAM user allowed everything. It lives as long as the
    test session: Deep Lake joins its I/O threads before every fork, and a thread still talking
    to a stopped server would hang the next DataLoader worker start in this process.
    """
    import boto3

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # the first 3 requests (create the user, its policy and its key) go unchecked, all later ones are checked
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env=dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT="3"))
    endpoint = f"http://127.0.0.1:{port}"
    try:
        iam = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1",
                           aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap")
        deadline = time.monotonic() + 30
        while True:
            try:
                iam.create_user(UserName="lakedet")
                break
            except Exception:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("the moto S3 server did not start")
                time.sleep(0.1)
        iam.put_user_policy(UserName="lakedet", PolicyName="all", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
        key = iam.create_access_key(UserName="lakedet")["AccessKey"]
        creds = dict(aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"],
                     endpoint_url=endpoint, aws_region="us-east-1")
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=creds["aws_access_key_id"],
                     aws_secret_access_key=creds["aws_secret_access_key"]).create_bucket(Bucket="checked")
        yield upload(shapes_val[0], "s3://checked/ds", creds), creds
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.mark.remote
@pytest.mark.parametrize("wrong, expected", [
    ({"aws_secret_access_key": "not-the-secret"}, "aws_secret_access_key is not the secret of access key id"),
    ({"aws_access_key_id": "AKIANOBODY0000000000"}, "the server knows no access key id 'AKIANOBODY0000000000'"),
], ids=["wrong-secret", "unknown-key-id"])
def test_wrong_credentials_are_a_clear_error_naming_the_path(s3_checking_keys, wrong, expected):
    from lakedet.data.dataset import DeepLakeDetDataset
    from lakedet.errors import SourceError
    from lakedet.source import SourceSpec, open_source

    url, creds = s3_checking_keys
    assert len(open_source(SourceSpec(url, creds=creds))) == 8  # the right keys open it
    started = time.monotonic()
    with pytest.raises(SourceError) as err:
        DeepLakeDetDataset(deeplake_path=url, deeplake_credentials={"creds": dict(creds, **wrong)}, pipeline=[])
    message = str(err.value)
    assert f"deeplake_path={url!r}" in message and expected in message, message
    assert "deeplake_credentials['creds']" in message and creds["endpoint_url"] in message
    assert "not-the-secret" not in message and creds["aws_secret_access_key"] not in message
    assert time.monotonic() - started < 10


@pytest.mark.remote
def test_a_missing_dataset_on_s3_is_a_clear_error_naming_the_path(s3_server):
    from lakedet.errors import SourceError
    from lakedet.source import SourceSpec, open_source

    with pytest.raises(SourceError) as err:
        open_source(SourceSpec("s3://lakedet/no-such-dataset", creds=s3_server))
    assert str(err.value).startswith(f"deeplake_path='s3://lakedet/no-such-dataset': no Deep Lake dataset there at "
                                     f"endpoint_url={s3_server['endpoint_url']!r}; check the bucket and folder names")


@pytest.mark.remote
def test_credentials_come_from_the_aws_sdk_chain_when_the_config_gives_none(s3_checking_keys, tmp_path):
    """Only ``endpoint_url`` in the config: the keys come from AWS_SHARED_CREDENTIALS_FILE (a file
    outside ~/.aws, which a hand-written check would not know); with no keys anywhere, the server's
    refusal is explained as such."""
    url, creds = s3_checking_keys
    keys = tmp_path / "aws-credentials"
    keys.write_text(f"[lab]\naws_access_key_id = {creds['aws_access_key_id']}\n"
                    f"aws_secret_access_key = {creds['aws_secret_access_key']}\n")
    code = ("import sys, json\nfrom lakedet.source import SourceSpec, open_source\n"
            "try:\n    print('rows', len(open_source(SourceSpec(sys.argv[1], creds=json.loads(sys.argv[2])))))\n"
            "except Exception as exc:\n    print(type(exc).__name__, exc)\n")
    where = json.dumps(dict(endpoint_url=creds["endpoint_url"], aws_region="us-east-1"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["HOME"] = str(tmp_path)  # no ~/.aws
    found = subprocess.run([sys.executable, "-c", code, url, where], capture_output=True, text=True, timeout=120,
                           env=dict(env, AWS_SHARED_CREDENTIALS_FILE=str(keys), AWS_PROFILE="lab"))
    assert found.stdout.strip().splitlines()[-1] == "rows 8", found.stdout + found.stderr[-2000:]
    missing = subprocess.run([sys.executable, "-c", code, url, where], capture_output=True, text=True, timeout=120,
                             env=env)
    last = missing.stdout.strip().splitlines()[-1]
    assert last.startswith("SourceError") and url in last and "the cloud SDK's own chain" in last, last
