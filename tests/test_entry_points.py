"""Every entry point gets every protection (issue: one architecture, one path).

The same config, with a unique secret given by reference in ``deeplake_credentials``, runs
through ``lakedet train``, MMDetection's own ``tools/train.py`` and a plain
``Runner.from_cfg(cfg).train()``, each in its own process against the local S3 server; then its
checkpoint through ``tools/test.py`` and ``lakedet eval``. In every work dir and every log: no
secret (checkpoints included), ``lineage.json`` with the same dataset record, the sampler in the
chunk-aware order, lakedet's run hooks; the same seed gives the same losses. A secret written in
the config as a value: ``lakedet train`` hides it, MMDetection's tools refuse it before the first
checkpoint. The class-count check stops ``tools/train.py`` too.
"""

import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import mmdet
import pytest

from conftest import CONFIG_DIR

pytestmark = [pytest.mark.slow, pytest.mark.remote, pytest.mark.timeout(900)]

TOOLS = Path(mmdet.__file__).parent / ".mim" / "tools"
RUNNER_SCRIPT = """import sys
from mmengine.config import Config
from mmengine.runner import Runner
cfg = Config.fromfile(sys.argv[1])
cfg.work_dir = sys.argv[2]
Runner.from_cfg(cfg).train()
"""


@pytest.fixture(scope="module")
def on_s3(s3_server, shapes, shapes_val, tmp_path_factory):
    """The shapes datasets on the S3 server; a config reading them with ``creds='env:LAKEDET_ENTRY_CREDS'``;
    the environment holding a unique key id and secret (the test server accepts any)."""
    import deeplake

    root = f"s3://lakedet/entry-{uuid.uuid4().hex[:8]}"
    for name, (local, _) in (("train", shapes), ("val", shapes_val)):
        deeplake.copy(local, f"{root}/{name}", dst_creds=s3_server)
    secret, key_id = f"SECRET{uuid.uuid4().hex}", f"KEYID{uuid.uuid4().hex[:12]}"
    creds = dict(s3_server, aws_access_key_id=key_id, aws_secret_access_key=secret)
    folder = tmp_path_factory.mktemp("entry")
    by_reference = "deeplake_credentials=dict(creds='env:LAKEDET_ENTRY_CREDS')"
    config = folder / "s3_retinanet.py"
    config.write_text(config_text(root, by_reference))
    literal = folder / "s3_retinanet_literal.py"
    literal.write_text(config_text(root, f"deeplake_credentials=dict(creds={creds!r})"))
    env = dict(os.environ, LAKEDET_ENTRY_CREDS=json.dumps(creds))
    return dict(config=str(config), literal=str(literal), env=env, secrets=(secret, key_id), root=root)


def config_text(root: str, credentials: str) -> str:
    return (f"_base_ = {str(CONFIG_DIR / 'tiny_retinanet.py')!r}\n"
            f"train_dataloader = dict(num_workers=2, dataset=dict(deeplake_path={root + '/train'!r}, {credentials}))\n"
            f"val_dataloader = dict(dataset=dict(deeplake_path={root + '/val'!r}, {credentials}))\n"
            "test_dataloader = val_dataloader\n")


def run(args, env, cwd=None):
    out = subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, env=env, cwd=cwd,
                         timeout=400)
    return out.returncode, out.stdout + out.stderr


def files_holding(folder: Path, secrets) -> list[str]:
    """Every file under ``folder`` (checkpoints included, read as bytes) that holds one of ``secrets``."""
    return [str(f) for f in folder.rglob("*") if f.is_file()
            and any(s.encode() in f.read_bytes() for s in secrets)]


def losses(log: str) -> list[str]:
    return re.findall(r"Iter\(train\) \[\s*\d+/\d+\].*?  loss: ([0-9.]+)", log)


def test_the_same_config_runs_the_same_through_every_entry_point(on_s3, tmp_path):
    config, env, secrets = on_s3["config"], on_s3["env"], on_s3["secrets"]
    script = tmp_path / "own_runner.py"
    script.write_text(RUNNER_SCRIPT)
    runs = {"lakedet train": ["-m", "lakedet", "train", config, "--work-dir"],
            "tools/train.py": [TOOLS / "train.py", config, "--work-dir"],
            "Runner.from_cfg": [script, config]}
    records, logged = {}, {}
    for name, args in runs.items():
        work = tmp_path / name.replace("/", "_").replace(" ", "_").replace(".", "_")
        code, log = run(args + [work], env)
        assert code == 0, f"{name}: {log[-4000:]}"
        assert not files_holding(work, secrets), name
        assert not any(s in log for s in secrets), name
        assert "hooks added: DeepLakeRunHook, ClassCountCheckHook, LineageHook, CheckpointCodecHook, " \
               "SkipTrainedBatchesHook" in log, f"{name}: {log[-3000:]}"
        assert "train_dataloader samples with ShardedRowSampler (order 'chunks'" in log, name
        assert "train_dataloader's workers start with forkserver" in log, name
        assert "<redacted>" not in log  # nothing to hide: the config holds a reference
        lineage = json.loads((work / "lineage.json").read_text())["latest"]
        records[name] = lineage["splits"]
        logged[name] = losses(log)
        import torch

        from lakedet.engine.checkpoints import allow_mmengine_checkpoints

        allow_mmengine_checkpoints()
        checkpoint = torch.load(work / "iter_2.pth", map_location="cpu", weights_only=True)
        assert "rng_states" in checkpoint  # what --resume replays the augmentations from
    first = records["lakedet train"]
    assert first["train"][0]["url"] == on_s3["root"] + "/train" and first["train"][0]["rows"] == 24
    assert first["val"][0]["rows"] == 8 and first["train"][0]["commit"]
    assert records["tools/train.py"] == first == records["Runner.from_cfg"]
    assert len(logged["lakedet train"]) == 2 and logged["tools/train.py"] == logged["lakedet train"] \
        == logged["Runner.from_cfg"]

    checkpoint = tmp_path / "lakedet_train" / "iter_2.pth"
    tested = {}
    for name, args in (("tools/test.py", [TOOLS / "test.py", config, checkpoint, "--work-dir"]),
                       ("lakedet eval", ["-m", "lakedet", "eval", config, checkpoint, "--work-dir"])):
        work = tmp_path / name.replace("/", "_").replace(" ", "_").replace(".", "_")
        code, log = run(args + [work], env)
        assert code == 0, f"{name}: {log[-4000:]}"
        assert not files_holding(work, secrets) and not any(s in log for s in secrets), name
        lineage = json.loads((work / "lineage.json").read_text())["latest"]
        assert lineage["command"] == "eval" and lineage["checkpoint"] == str(checkpoint)
        tested[name] = (lineage["splits"], re.findall(r"coco/bbox_mAP: ([0-9.]+)", log))
    assert tested["tools/test.py"] == tested["lakedet eval"] and tested["lakedet eval"][1]
    assert tested["lakedet eval"][0]["test"] == first["val"]


def test_a_secret_written_in_the_config_is_hidden_or_refused(on_s3, tmp_path):
    literal, env, secrets = on_s3["literal"], on_s3["env"], on_s3["secrets"]
    code, log = run(["-m", "lakedet", "train", literal, "--work-dir", tmp_path / "lakedet"], env)
    assert code == 0, log[-4000:]
    assert not files_holding(tmp_path / "lakedet", secrets) and not any(s in log for s in secrets)
    assert "secret(s) written as values under deeplake_credentials are hidden" in log
    assert "aws_secret_access_key='<redacted>'" in (tmp_path / "lakedet" / "s3_retinanet_literal.py").read_text()
    # MMDetection's tool has copied the config before lakedet runs: it is refused before any checkpoint
    code, log = run([TOOLS / "train.py", literal, "--work-dir", tmp_path / "tool"], env)
    assert code != 0
    assert "deeplake_credentials[creds['aws_access_key_id']] is written in the config as a value" in log
    assert "'env:NAME'" in log and "delete those files" in log
    assert not list((tmp_path / "tool").rglob("*.pth"))
    # what the error says is there, is: mmengine copied the config (so the search above can find a secret)
    assert files_holding(tmp_path / "tool", secrets)


def test_the_class_count_check_stops_mmdetections_tools_too(on_s3, tmp_path):
    code, log = run([TOOLS / "train.py", on_s3["config"], "--work-dir", tmp_path / "w", "--cfg-options",
                     "model.bbox_head.num_classes=5"], on_s3["env"])
    assert code != 0
    assert "model.bbox_head.num_classes=5, but the dataset has 3 classes" in log
    assert "--cfg-options model.bbox_head.num_classes=3" in log
