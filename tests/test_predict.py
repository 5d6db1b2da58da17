import json
import subprocess
import sys

import deeplake
import numpy as np
import pytest

from conftest import CONFIG_DIR, dataset_hash
from lakedet.tools.synthetic import make_shapes_dataset

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def lakedet(*args):
    return subprocess.run([sys.executable, "-m", "lakedet", *args], capture_output=True, text=True)


def test_predict_writes_a_branch_and_leaves_the_source_untouched(shapes, tmp_path):
    paths = [f"train_dataloader.dataset.deeplake_path={shapes[0]}", f"val_dataloader.dataset.deeplake_path={shapes[0]}"]
    out = lakedet("train", str(CONFIG_DIR / "tiny_retinanet.py"), "--work-dir", str(tmp_path / "w"), "--cfg-options", *paths)
    assert out.returncode == 0, out.stderr[-2000:]
    target = str(tmp_path / "target")
    source, _ = make_shapes_dataset(target, 6, size=64, seed=30)
    before, source_commit = dataset_hash(target), source.version
    out = lakedet("predict", str(CONFIG_DIR / "tiny_retinanet.py"), str(tmp_path / "w" / "iter_2.pth"), target,
                  "--branch", "preds-v1", "--score-thr", "0", "--work-dir", str(tmp_path / "p"))
    assert out.returncode == 0, out.stderr[-2000:]
    lineage = json.loads((tmp_path / "p" / "lineage.json").read_text())["latest"]
    assert lineage["command"] == "predict" and lineage["splits"]["predict"][0]["commit"] == source_commit
    assert lineage["written"]["branch"] == "preds-v1" and lineage["written"]["rows"] == 6
    assert dataset_hash(target) == before  # the source branch is untouched
    ds = deeplake.open_read_only(target)
    assert sorted(ds.branches.names()) == ["main", "preds-v1"]
    branch = ds.branches["preds-v1"].open()
    assert {"pred_boxes", "pred_labels", "pred_scores"} <= {c.name for c in branch.schema.columns}
    for row in range(6):
        boxes, labels, scores = (np.asarray(branch[c][row]) for c in ("pred_boxes", "pred_labels", "pred_scores"))
        assert len(boxes) == len(labels) == len(scores) > 0  # score-thr 0 keeps the untrained model's boxes
    # docs/data-tools.md's query runs on the result: confident predictions of class 0 the ground truth lacks
    suspicious = branch.query("SELECT * WHERE ANY(pred_scores > 0.0 AND pred_labels == 0) AND ALL(labels != 0)")
    expected = [r for r in range(6) if 0 not in np.asarray(branch["labels"][r]).tolist()
                and 0 in np.asarray(branch["pred_labels"][r]).tolist()]
    assert len(suspicious) == len(expected)
    message = list(branch.history)[-1].message
    assert "tiny_retinanet.py" in message and "iter_2.pth sha256 " in message and source_commit in message
    again = lakedet("predict", str(CONFIG_DIR / "tiny_retinanet.py"), str(tmp_path / "w" / "iter_2.pth"), target,
                    "--branch", "preds-v1")
    assert again.returncode == 2 and "branch 'preds-v1' already exists" in again.stderr
    # only the rows of a query (or a saved view) get predictions
    writable = deeplake.open(target)  # keep it: a view does not keep its dataset alive
    writable.query("SELECT * WHERE ROW_NUMBER() >= 4").tag("last_two")
    for flag, value, expected in (("--query", "SELECT * WHERE ROW_NUMBER() < 2", [0, 1]), ("--view", "last_two", [4, 5])):
        out = lakedet("predict", str(CONFIG_DIR / "tiny_retinanet.py"), str(tmp_path / "w" / "iter_2.pth"), target,
                      "--branch", f"preds{flag}", "--score-thr", "0", flag, value)
        assert out.returncode == 0, out.stderr[-2000:]
        opened = deeplake.open_read_only(target)
        selected = opened.branches[f"preds{flag}"].open()
        predicted = [row for row in range(6) if selected["pred_scores"][row] is not None
                     and len(np.asarray(selected["pred_scores"][row])) > 0]
        assert predicted == expected, (flag, predicted)
        assert "rows of" in list(selected.history)[-1].message
    assert dataset_hash(target) == before


def test_predict_with_a_segmentation_model_writes_masks(tmp_path):
    train = str(tmp_path / "train")
    make_shapes_dataset(train, 4, size=64, seed=40, masks="binary")
    paths = [f"train_dataloader.dataset.deeplake_path={train}", f"val_dataloader.dataset.deeplake_path={train}"]
    out = lakedet("train", str(CONFIG_DIR / "tiny_mask_rcnn.py"), "--work-dir", str(tmp_path / "w"), "--cfg-options", *paths)
    assert out.returncode == 0, out.stderr[-2000:]
    out = lakedet("predict", str(CONFIG_DIR / "tiny_mask_rcnn.py"), str(tmp_path / "w" / "iter_2.pth"), train,
                  "--branch", "masks", "--score-thr", "0", "--work-dir", str(tmp_path / "p"))
    assert out.returncode == 0, out.stderr[-2000:]
    opened = deeplake.open_read_only(train)
    branch = opened.branches["masks"].open()
    masks, boxes = np.asarray(branch["pred_masks"][0]), np.asarray(branch["pred_boxes"][0])
    assert masks.shape[:2] == (64, 64) and masks.shape[2] == len(boxes) > 0


def _branch_columns(path, branch):
    opened = deeplake.open_read_only(path)
    data = opened.branches[branch].open()
    return [[np.asarray(data[c][row]) for c in ("pred_boxes", "pred_labels", "pred_scores")] for row in range(len(data))]


def test_predict_runs_a_dataloader_with_workers_writes_in_bounded_batches_and_takes_tta(tmp_path, monkeypatch):
    import torch

    from lakedet.tools import predict as predict_module
    from lakedet.errors import ConfigError
    from lakedet.tools.predict import predict_to_branch

    target = str(tmp_path / "target")
    make_shapes_dataset(target, 7, size=64, seed=31)
    checkpoint = tmp_path / "weights.pth"
    from mmengine.config import Config

    from lakedet import build_detector

    torch.manual_seed(0)
    torch.save({"state_dict": build_detector(Config.fromfile(str(CONFIG_DIR / "tiny_retinanet.py")).model).state_dict()},
               checkpoint)
    written = []
    real = predict_module.write_prediction_rows
    monkeypatch.setattr(predict_module, "WRITE_ROWS", 3)
    monkeypatch.setattr(predict_module, "write_prediction_rows", lambda t, rows: (written.append(sorted(rows)), real(t, rows)))
    config = str(CONFIG_DIR / "tiny_retinanet.py")
    common = dict(score_thr=0.0, batch_size=2, device="cpu")
    report = predict_to_branch(config, str(checkpoint), target, "workers", num_workers=2, **common)
    assert report.rows == 7 and written == [[0, 1, 2], [3, 4, 5], [6]]  # never more than WRITE_ROWS held
    predict_to_branch(config, str(checkpoint), target, "inline", num_workers=0, **common)
    for with_workers, inline in zip(_branch_columns(target, "workers"), _branch_columns(target, "inline")):
        for a, b in zip(with_workers, inline):
            np.testing.assert_array_equal(a, b)
    # test-time augmentation: the config's tta_model over its tta_pipeline, as tools/test.py --tta
    tta = tmp_path / "tta.py"
    tta.write_text(f"_base_ = {config!r}\n"
                   "tta_model = dict(type='DetTTAModel', tta_cfg=dict(nms=dict(type='nms', iou_threshold=0.5), max_per_img=10))\n"
                   "tta_pipeline = [dict(type='LoadImageFromFile'), dict(type='TestTimeAug', transforms=[\n"
                   "    [dict(type='Resize', scale=(64, 64), keep_ratio=True)],\n"
                   "    [dict(type='RandomFlip', prob=1.), dict(type='RandomFlip', prob=0.)],\n"
                   "    [dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',\n"
                   "                                          'scale_factor', 'flip', 'flip_direction'))]])]\n")
    report = predict_to_branch(str(tta), str(checkpoint), target, "tta", num_workers=0, tta=True, **common)
    assert report.rows == 7 and report.boxes > 0
    with pytest.raises(ConfigError, match="--tta needs tta_model and tta_pipeline"):
        predict_to_branch(config, str(checkpoint), target, "no-tta", tta=True,
                          cfg_options={"tta_model": None, "tta_pipeline": None}, **common)
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="--device cuda: this machine has no CUDA GPU"):
            predict_to_branch(config, str(checkpoint), target, "gpu", device="cuda")
    assert sorted(deeplake.open_read_only(target).branches.names()) == ["inline", "main", "tta", "workers"]
