"""benchmarks/gpu.py: its configs are a user's (zoo base, our data, secrets by reference), its summary
pairs each case with files of the same repeat, and its CPU smoke runs every model on every data path."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).parent.parent / "benchmarks"
sys.path.insert(0, str(BENCH))

import gpu  # noqa: E402

DATA = dict(ann="/d/annotations.json", images="/d/images/", lake="/d/lake", s3="s3://lakedet/coco")


def test_configs_inherit_the_zoo_and_name_the_secret_by_reference():
    files = gpu.config_text("faster-rcnn", "files", DATA, batch=2, workers=16, iters=100, amp=True)
    assert files.startswith("_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'")
    assert "type='CocoDataset'" in files and "custom_imports" not in files
    assert "AmpOptimWrapper" in files and "max_iters=100" in files and "num_workers=16" in files
    s3 = gpu.config_text("rtmdet-s", "s3", DATA, batch=32, workers=16, iters=40, amp=False)
    assert s3.startswith("_base_ = 'mmdet::rtmdet/rtmdet_s_8xb32-300e_coco.py'")
    assert "custom_imports = dict(imports=['lakedet']" in s3 and "deeplake_path='s3://lakedet/coco'" in s3
    assert f"creds='env:{gpu.CREDS_VARIABLE}'" in s3 and "AmpOptimWrapper" not in s3
    assert "bbox_head=dict(num_classes=3)" in s3 and "init_cfg=None" in s3


def test_summary_pairs_each_case_with_files_of_the_same_repeat():
    def run(case, repeat, its):
        return dict(model="m", case=case, repeat=repeat, it_per_s=its, img_per_s=its * 2, data_share=0.01,
                    gpu_busy=None, first_batch_s=1.0)

    rows = gpu.summarise([run("files", 0, 10.0), run("local", 0, 9.0), run("files", 1, 5.0), run("local", 1, 5.0),
                          dict(model="m", case="s3", repeat=0, error="boom")])
    local = next(r for r in rows if r["case"] == "local")
    assert local["vs_files_spread"] == [0.9, 1.0] and local["vs_files"] == 0.95
    assert local["it_per_s_spread"] == [5.0, 9.0] and local["repeats"] == 2
    assert [r["case"] for r in rows] == ["files", "local"]  # a failed case has no row, the run keeps its error


@pytest.mark.slow
@pytest.mark.timeout(1500)  # six training processes: about 2 min on 2 idle cores, 5 on busy ones
def test_cpu_smoke_trains_each_model_from_files_local_and_s3(tmp_path):
    out = tmp_path / "gpu.json"
    run = subprocess.run([sys.executable, str(BENCH / "gpu.py"), "--smoke", "--workers", "1", "--data",
                          str(tmp_path / "data"), "--out", str(out)], capture_output=True, text=True, timeout=1500)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    result = json.loads(out.read_text())
    assert [(r["model"], r["case"]) for r in result["runs"]] == [
        (m, c) for m in gpu.MODELS for c in gpu.CASES]
    for r in result["runs"]:
        assert r["iterations"] == 1 and r["warmup"] == 1 and r["it_per_s"] > 0, r
        assert 0 <= r["data_share"] < 1 and r["device"] == "cpu" and r["gpu_busy"] is None
        assert r["workers_cpu_ms_per_img"] >= 0 and r["main_cpu_ms_per_img"] > 0 and r["process_s"] > 0, r
    assert {(r["model"], r["case"]) for r in result["summary"] if r["case"] != "files" and r["vs_files"]} == {
        (m, c) for m in gpu.MODELS for c in ("local", "s3")}
    assert "vs files" in run.stdout and "rtmdet-s" in run.stdout
