"""`lakedet compare`: per-class/per-size numbers against pycocotools, boxes that flip, the label diff,
the bootstrap, the TQL recipes of docs/compare.md, and the source branches left as they were."""

import json
import re
from pathlib import Path

import deeplake
import numpy as np
import pytest

from conftest import dataset_hash
from lakedet.evaluation.breakdown import bootstrap_deltas, breakdown, threshold_sweep
from lakedet.evaluation.changes import (ADDED, FOUND, KEPT_FP, LOST, MOVED, MOVED_RELABELLED, NEW, NEW_FP, NOT_FP,
                                        RELABELLED, SAME, UNCHANGED, diff_labels, fp_changes, gt_changes)
from lakedet.evaluation.matching import FN, TP, match_image
from lakedet.tools.error_analysis import evaluate_predictions, write_matches
from lakedet.tools.predict import RowPrediction, write_predictions
from lakedet.tools.synthetic import SHAPE_CLASSES, SyntheticRow, render_rows, write_dataset

pytestmark = pytest.mark.timeout(120)

DOC = Path(__file__).parent.parent / "docs" / "compare.md"
CIRCLE, SQUARE, TRIANGLE = range(3)

# Ground truth per row: (x1y1x2y2, label)
GT = [[([10, 10, 30, 30], CIRCLE), ([35, 35, 60, 60], SQUARE)],
      [([5, 5, 45, 45], SQUARE), ([40, 5, 60, 25], TRIANGLE)],
      [([10, 10, 40, 40], CIRCLE)],
      [([20, 20, 50, 50], TRIANGLE)]]
# Side A and side B predictions per row: (x1y1x2y2, label, score). From A to B exactly: row 0's circle
# is lost, row 1's triangle is found, row 2's false positive square vanishes, row 3 gets a new false
# positive circle. AP50: circle 1.0 -> 0.505, triangle 0.505 -> 1.0, square 1.0 -> 1.0.
PRED_A = [[([10, 10, 30, 30], CIRCLE, 0.9), ([35, 35, 60, 60], SQUARE, 0.8)],
          [([5, 5, 45, 45], SQUARE, 0.9)],
          [([10, 10, 40, 40], CIRCLE, 0.7), ([45, 45, 60, 60], SQUARE, 0.6)],
          [([20, 20, 50, 50], TRIANGLE, 0.8)]]
PRED_B = [[([35, 35, 60, 60], SQUARE, 0.8)],
          [([5, 5, 45, 45], SQUARE, 0.9), ([40, 5, 60, 25], TRIANGLE, 0.7)],
          [([10, 10, 40, 40], CIRCLE, 0.7)],
          [([20, 20, 50, 50], TRIANGLE, 0.8), ([0, 0, 12, 12], CIRCLE, 0.5)]]
# The relabelled commit: row 0's square moved (IoU 0.47), row 1's triangle relabelled a circle, row 2's
# circle removed, row 3 a square added.
GT2 = [[([10, 10, 30, 30], CIRCLE), ([43, 43, 63, 63], SQUARE)],
       [([5, 5, 45, 45], SQUARE), ([40, 5, 60, 25], CIRCLE)],
       [],
       [([20, 20, 50, 50], TRIANGLE), ([0, 40, 20, 60], SQUARE)]]


def _xyxy(boxes):
    return np.asarray(boxes, np.float32).reshape(-1, 4)


def _results(gt, preds):
    return {row: RowPrediction(_xyxy([p[0] for p in ps]), np.asarray([p[1] for p in ps], np.int64),
                               np.asarray([p[2] for p in ps], np.float32), None, _xyxy([g[0] for g in gs]),
                               np.asarray([g[1] for g in gs], np.int64), np.zeros(len(gs), bool))
            for row, (gs, ps) in enumerate(zip(gt, preds))}


def _ltwh(boxes):
    boxes = _xyxy(boxes)
    return np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], 1)


def branch_hash(path, branch):
    return dataset_hash(path, branch=branch)


def _errors_branch(ds, name, results):
    branch = ds.branch(name).open()
    write_predictions(branch, results, SHAPE_CLASSES)
    write_matches(branch, results, evaluate_predictions(results, SHAPE_CLASSES))
    branch.commit(f"errors {name}")


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    """The dataset (commit 1: GT, with a ``row_id``), errors branches ``a`` and ``b`` of it, then
    commit 2 on main (GT2) and its errors branch ``b2`` (side B's predictions)."""
    path = str(tmp_path_factory.mktemp("compare") / "ds")
    images = render_rows(len(GT), size=64, seed=5, max_objects=1)
    rows = [SyntheticRow(image=i.image, boxes=_ltwh([g[0] for g in gs]), labels=np.asarray([g[1] for g in gs], np.uint32))
            for i, gs in zip(images, GT)]
    ds = write_dataset(path, rows)
    ds.add_column("row_id", deeplake.types.Int64())
    ds["row_id"][0:len(rows)] = np.arange(len(rows), dtype=np.int64)
    ds.commit("row ids")
    _errors_branch(ds, "a", _results(GT, PRED_A))
    _errors_branch(ds, "b", _results(GT, PRED_B))
    ds["boxes"][0:len(GT2)] = [_ltwh([g[0] for g in gs]) for gs in GT2]
    ds["labels"][0:len(GT2)] = [np.asarray([g[1] for g in gs], np.uint32) for gs in GT2]
    ds.commit("relabelled")
    _errors_branch(ds, "b2", _results(GT2, PRED_B))
    del ds
    return path


def _pycocotools(results, iou_type="bbox"):
    from lakedet.evaluation.metrics import coco_evaluate, coco_from_dict, coco_ground_truth

    gts = [dict(img_id=row, width=64, height=64, anns=[dict(bbox=b.tolist(), bbox_label=int(lab))
                                                       for b, lab in zip(r.gt_boxes, r.gt_labels)])
           for row, r in results.items()]
    dets = [dict(image_id=row, category_id=int(lab), score=float(s), bbox=[b[0], b[1], b[2] - b[0], b[3] - b[1]])
            for row, r in results.items() for b, lab, s in zip(r.boxes.tolist(), r.labels, r.scores)]
    return coco_evaluate(coco_from_dict(coco_ground_truth(gts, SHAPE_CLASSES)), dets, iou_type, max_dets=(1, 10, 100))


@pytest.mark.parametrize("preds", [PRED_A, PRED_B], ids=["A", "B"])
def test_breakdown_equals_pycocotools_per_class_and_size(preds):
    results = _results(GT, preds)
    ours = breakdown(results, SHAPE_CLASSES).metrics()
    theirs = _pycocotools(results)
    for row in theirs.per_class:
        name = row["name"]
        for metric, size, key in (("AP", "all", "AP"), ("AP50", "all", "AP50"), ("AP", "small", "AP_s"),
                                  ("AP", "medium", "AP_m")):
            expected, got = row[key], ours[name][size][metric]
            assert (np.isnan(expected) and np.isnan(got)) or got == pytest.approx(expected, abs=1e-12), (name, key)
    assert ours["all"]["all"]["AP"] == pytest.approx(theirs.stats[0], abs=1e-12)  # mAP
    assert ours["all"]["small"]["AP"] == pytest.approx(theirs.stats[3], abs=1e-12)
    assert ours["all"]["all"]["AR"] == pytest.approx(theirs.stats[8], abs=1e-12)  # AR@100


def test_the_constructed_case_changes_exactly_as_built():
    a, b = (breakdown(_results(GT, p), SHAPE_CLASSES) for p in (PRED_A, PRED_B))
    ma, mb = a.metrics(), b.metrics()
    assert ma["circle"]["all"]["AP50"] == pytest.approx(1.0) and mb["circle"]["all"]["AP50"] == pytest.approx(51 / 101)
    assert ma["triangle"]["all"]["AP50"] == pytest.approx(51 / 101) and mb["triangle"]["all"]["AP50"] == pytest.approx(1.0)
    assert ma["square"]["all"]["AP50"] == mb["square"]["all"]["AP50"] == pytest.approx(1.0)
    assert (ma["all"]["all"]["tp"], ma["all"]["all"]["fp"], ma["all"]["all"]["fn"]) == (5, 1, 1)
    assert (mb["all"]["all"]["tp"], mb["all"]["all"]["fp"], mb["all"]["all"]["fn"]) == (5, 1, 1)
    changes = [gt_changes(a.matches[r].gt_match, b.matches[r].gt_match).tolist() for r in range(4)]
    assert changes == [[LOST, UNCHANGED], [UNCHANGED, FOUND], [UNCHANGED], [UNCHANGED]]
    ra, rb = _results(GT, PRED_A), _results(GT, PRED_B)
    fps = [fp_changes(ra[r].boxes, ra[r].labels, a.matches[r].pred_match, rb[r].boxes, rb[r].labels,
                      b.matches[r].pred_match) for r in range(4)]
    assert [f[0].tolist() for f in fps] == [[NOT_FP], [NOT_FP, NOT_FP], [NOT_FP], [NOT_FP, NEW_FP]]
    assert [f[1].tolist() for f in fps] == [[], [], [1], []]  # row 2's square false positive vanished


def test_a_false_positive_at_the_same_place_is_kept():
    codes, vanished = fp_changes(_xyxy([[0, 0, 10, 10]]), [CIRCLE], [2 - 1], _xyxy([[1, 0, 11, 10], [30, 30, 40, 40]]),
                                 [CIRCLE, SQUARE], [1, 1])
    assert codes.tolist() == [KEPT_FP, NEW_FP] and vanished.tolist() == []


def test_the_bootstrap_flags_real_differences_and_not_noise():
    rng = np.random.default_rng(0)
    gt = [[(list(rng.uniform(0, 20, 2)) + [40, 40], int(rng.integers(3)))] for _ in range(30)]
    perfect = [[(g[0][0], g[0][1], 0.9)] for g in gt]
    nothing = [[] for _ in gt]
    a, b = breakdown(_results(gt, nothing), SHAPE_CLASSES), breakdown(_results(gt, perfect), SHAPE_CLASSES)
    intervals = bootstrap_deltas(a, b, samples=20)
    lo, hi = intervals["all"]["all"]["recall"]
    assert lo > 0.9 and hi <= 1.0  # recall 0 -> 1 on every resample
    same = bootstrap_deltas(b, breakdown(_results(gt, perfect), SHAPE_CLASSES), samples=20)
    assert same["all"]["all"]["AP50"] == (0.0, 0.0)
    # per 4 images A finds images 0 and 1, B 1, 2 and 3: recall +0.25, within the noise of 4 images, not of 96
    many = [[(list(rng.uniform(0, 20, 2)) + [40, 40], int(rng.integers(3)))] for _ in range(96)]
    found = [[(g[0][0], g[0][1], 0.9)] for g in many]
    side_a = [p if k % 4 in (0, 1) else [] for k, p in enumerate(found)]
    side_b = [p if k % 4 in (1, 2, 3) else [] for k, p in enumerate(found)]
    for n, significant in ((4, False), (96, True)):
        pair = [breakdown(_results(many[:n], side[:n]), SHAPE_CLASSES) for side in (side_a, side_b)]
        lo, hi = bootstrap_deltas(*pair, samples=40)["all"]["all"]["recall"]
        assert (lo > 0) == significant and lo < 0.25 < hi, (n, lo, hi)
    with pytest.raises(ValueError, match="different rows"):
        bootstrap_deltas(a, breakdown(_results(gt[:3], perfect[:3]), SHAPE_CLASSES))


def test_threshold_sweep_gives_the_best_f1_threshold_per_class():
    sweep = threshold_sweep(breakdown(_results(GT, PRED_B), SHAPE_CLASSES), thresholds=[0.4, 0.6, 0.75, 0.85])
    # circle: TP 0.7, FP 0.5 of 2 boxes: best at 0.6 (P 1, R 0.5, F1 2/3)
    assert sweep["circle"]["f1"] == pytest.approx([0.5, 2 / 3, 0.0, 0.0])
    assert sweep["circle"]["best_threshold"] == 0.6 and sweep["circle"]["best_f1"] == pytest.approx(2 / 3)
    assert sweep["all"]["recall"] == pytest.approx([5 / 6, 5 / 6, 3 / 6, 1 / 6])


def test_class_agnostic_matching_counts_a_swap_as_a_hit():
    swapped = [[([10, 10, 30, 30], SQUARE, 0.9)]]
    gt = [[([10, 10, 30, 30], CIRCLE)]]
    assert breakdown(_results(gt, swapped), SHAPE_CLASSES).metrics()["all"]["all"]["tp"] == 0
    agnostic = breakdown(_results(gt, swapped), SHAPE_CLASSES, classwise=False).metrics()
    assert list(agnostic) == ["any class", "all"] and agnostic["all"]["all"]["tp"] == 1


def test_the_label_diff_finds_exactly_the_changed_boxes():
    found = [diff_labels(_xyxy([g[0] for g in a]), [g[1] for g in a], _xyxy([g[0] for g in b]), [g[1] for g in b])
             for a, b in zip(GT, GT2)]
    assert [d.state.tolist() for d in found] == [[SAME, MOVED], [SAME, RELABELLED], [], [SAME, ADDED]]
    assert [d.removed.tolist() for d in found] == [[], [], [0], []]
    assert [d.partner.tolist() for d in found] == [[0, 1], [0, 1], [], [0, -1]]
    both = diff_labels(_xyxy([[0, 0, 20, 20]]), [CIRCLE], _xyxy([[8, 0, 28, 20]]), [SQUARE])
    assert both.state.tolist() == [MOVED_RELABELLED]
    assert diff_labels(_xyxy([[0, 0, 20, 20]]), [CIRCLE], _xyxy([[18, 0, 38, 20]]), [CIRCLE]).state.tolist() == [ADDED]
    with pytest.raises(ValueError, match="pair_iou"):
        diff_labels(_xyxy([]), [], _xyxy([]), [], moved_iou=0.1, pair_iou=0.5)
    # a box added by the diff is "new" in the per-box changes, whatever its match
    assert gt_changes([TP], [FN, TP], partner=[0, -1]).tolist() == [LOST, NEW]


def lakedet_here(capsys, *args):
    from lakedet.cli import main

    capsys.readouterr()
    status = main([str(a) for a in args])
    out = capsys.readouterr()
    return status, out.out, out.err


def test_compare_command_writes_the_changes_and_leaves_the_sources(case, tmp_path, capsys):
    before = {name: branch_hash(case, name) for name in ("main", "a", "b", "b2")}
    status, out, err = lakedet_here(capsys, "compare", case, "a", "b", "--branch", "cmp", "--work-dir", tmp_path,
                                    "--bootstrap", "20")
    assert status == 0, err
    assert "| circle " in out and "AP50 Δ" in out and "labels differ" not in out
    report = json.loads((tmp_path / "compare.json").read_text())
    circle = report["metrics"]["circle"]["all"]["AP50"]
    assert circle["a"] == pytest.approx(1.0) and circle["b"] == pytest.approx(51 / 101)
    assert report["box_changes"]["cmp_lost"] == 1 and report["box_changes"]["cmp_found"] == 1
    assert report["box_changes"]["cmp_new_fp"] == 1 and report["box_changes"]["cmp_vanished_fp"] == 1
    assert report["a"]["ref"] == "a" and report["b"]["kind"] == "stored"
    root = deeplake.open_read_only(case)
    cmp = root.branches["cmp"].open()
    assert [np.asarray(cmp["gt_change"][r]).tolist() for r in range(4)] == [[LOST, UNCHANGED], [UNCHANGED, FOUND],
                                                                              [UNCHANGED], [UNCHANGED]]
    assert np.asarray(cmp["pred_change"][3]).tolist() == [NOT_FP, NEW_FP]
    assert np.asarray(cmp["vanished_fp_boxes"][2]).tolist() == [[45, 45, 15, 15]]
    assert np.asarray(cmp["cmp_lost"][:]).tolist() == [1, 0, 0, 0]
    assert "lakedet compare" in list(cmp.history)[-1].message
    assert '"rows_compared": 4' in list(cmp.history)[-1].message
    assert {name: branch_hash(case, name) for name in before} == before

    # the documented recipes select the rows they say
    block = re.search(r"```sql\n(.*?)```", DOC.read_text(), re.S).group(1)
    lines = [line.strip() for line in block.splitlines() if line.strip()]
    recipes = {comment[3:]: query for comment, query in zip(lines[::2], lines[1::2])}

    def ids(name):
        return [int(v) for v in np.asarray(cmp.query(recipes[name])["row_id"][:]).reshape(-1)]

    assert ids("rows where the new model lost a circle") == [0]
    assert ids("rows where the new model found a box the old one missed") == [1]
    assert ids("rows with a new confident false positive") == [3]
    assert ids("rows where a false positive of the old model vanished") == [2]
    assert ids("rows whose labels changed between the commits") == []

    # bad input names what is wrong
    status, _, err = lakedet_here(capsys, "compare", case, "a", "nope", "--work-dir", tmp_path)
    assert status == 2 and "no branch 'nope'" in err and "'b2'" in err
    status, _, err = lakedet_here(capsys, "compare", case, "a", "main", "--work-dir", tmp_path)
    assert status == 2 and "no column 'pred_boxes'" in err and "B = 'main'" in err
    status, _, err = lakedet_here(capsys, "compare", case, "a", "b", "--branch", "cmp", "--work-dir", tmp_path)
    assert status == 2 and "branch 'cmp' already exists" in err
    status, _, err = lakedet_here(capsys, "compare", case, "a", "b@0000000009x00000000", "--work-dir", tmp_path)
    assert status == 2 and "has no commit '0000000009x00000000'" in err


def test_compare_across_commits_diffs_the_labels(case, tmp_path, capsys):
    status, out, err = lakedet_here(capsys, "compare", case, "b", "b2", "--branch", "relabel", "--work-dir", tmp_path,
                                    "--bootstrap", "0")
    assert status == 0, err
    assert "labels differ between A and B" in out
    report = json.loads((tmp_path / "compare.json").read_text())
    diff = report["label_diff"]
    assert diff["square"] == dict(added=1, removed=0, moved=1, relabelled_from=0, relabelled_to=0)
    assert diff["circle"] == dict(added=0, removed=1, moved=0, relabelled_from=0, relabelled_to=1)
    assert diff["triangle"] == dict(added=0, removed=0, moved=0, relabelled_from=1, relabelled_to=0)
    assert report["metrics"]["circle"]["all"]["gts"]["delta"] == 0  # one removed, one relabelled to it
    assert report["metrics"]["square"]["all"]["gts"]["delta"] == 1
    root = deeplake.open_read_only(case)
    rel = root.branches["relabel"].open()
    assert [np.asarray(rel["gt_diff"][r]).tolist() for r in range(4)] == [[SAME, MOVED], [SAME, RELABELLED], [],
                                                                          [SAME, ADDED]]
    assert np.asarray(rel["removed_boxes"][2]).tolist() == [[10, 10, 30, 30]]
    assert np.asarray(rel["diff_relabelled"][:]).tolist() == [0, 1, 0, 0]
    # the moved square is no longer found: its change is "lost" with the same model
    assert np.asarray(rel["gt_change"][0]).tolist() == [UNCHANGED, LOST]
    assert np.asarray(rel["gt_change"][3]).tolist() == [UNCHANGED, NEW]


def test_rows_are_identified_by_an_id_column_or_checked(case, tmp_path):
    from lakedet.errors import SchemaError, SourceError
    from lakedet.tools.evaluated import open_ref, row_identity

    a, b = open_ref(case, "a"), open_ref(case, "b2")
    assert row_identity(a, b) == [(r, r) for r in range(4)]
    assert row_identity(a, b, "row_id") == [(r, r) for r in range(4)]
    with pytest.raises(SchemaError, match="--id-column 'nope': A = 'a' has no such column"):
        row_identity(a, b, "nope")
    other = str(tmp_path / "other")
    rows = render_rows(4, size=64, seed=99, max_objects=1)
    write_dataset(other, rows)
    root = deeplake.open(other)
    root.branch("x")
    del root
    with pytest.raises(SourceError, match="row 0: its image differs"):
        row_identity(a, open_ref(other, "x"))


def test_models_run_on_the_fly_compare_as_their_errors_branches(untrained_checkpoints, tmp_path, capsys):
    """``--model-a`` / ``--model-b`` (two models evaluated on the fly) give the numbers of comparing
    the two models' `lakedet errors` branches, and the source branch (metadata too) is unchanged."""
    from conftest import CONFIG_DIR

    path = str(tmp_path / "ds")
    write_dataset(path, render_rows(6, size=64, seed=31, min_side=14, max_side=30))
    config = str(CONFIG_DIR / "tiny_retinanet.py")
    for name, checkpoint in zip(("ea", "eb"), untrained_checkpoints):
        status, _, err = lakedet_here(capsys, "errors", config, checkpoint, path, "--branch", name, "--score-thr", "0",
                                      "--iou-thr", "0.1", "--num-workers", "0", "--work-dir", tmp_path / name)
        assert status == 0, err
    before = branch_hash(path, "main")
    common = ("--bootstrap", "0", "--iou-thr", "0.1")
    status, _, err = lakedet_here(capsys, "compare", path, "ea", "eb", *common, "--work-dir", tmp_path / "stored")
    assert status == 0, err
    status, out, err = lakedet_here(capsys, "compare", path, "main", "main", *common, "--model-a", config,
                                    untrained_checkpoints[0], "--model-b", config, untrained_checkpoints[1],
                                    "--score-thr", "0", "--num-workers", "0", "--branch", "fly",
                                    "--work-dir", tmp_path / "fly")
    assert status == 0, err
    assert "(on the fly)" in out
    stored, fly = (json.loads((tmp_path / k / "compare.json").read_text()) for k in ("stored", "fly"))
    assert fly["a"]["kind"] == fly["b"]["kind"] == "on the fly" and stored["a"]["kind"] == "stored"
    assert fly["b"]["checkpoint"] == untrained_checkpoints[1]
    assert stored["metrics"]["all"]["all"]["tp"]["a"] > 0  # the untrained models do find boxes at IoU 0.1
    assert stored["metrics"]["all"]["all"]["tp"]["a"] != stored["metrics"]["all"]["all"]["tp"]["b"]  # two models

    def numbers(report):
        return {(name, size, metric): tuple(v[k] for k in ("a", "b")) for name, sizes in report["metrics"].items()
                for size, metrics in sizes.items() for metric, v in metrics.items()}

    ours, theirs = numbers(fly), numbers(stored)
    assert ours.keys() == theirs.keys()
    for key, value in theirs.items():  # boxes stored as float32 LTWH: AP may differ in the last bits
        assert ours[key] == pytest.approx(value, abs=1e-6, nan_ok=True), key
    assert fly["box_changes"] == stored["box_changes"] and fly["threshold_sweep"] == stored["threshold_sweep"]
    # the comparison branch holds B's predictions and matches, as `lakedet errors` wrote them on eb
    root = deeplake.open_read_only(path)
    on_fly, errors_b = root.branches["fly"].open(), root.branches["eb"].open()
    for column in ("pred_labels", "pred_match", "eval_tp", "eval_fp", "eval_fn"):
        assert [np.asarray(on_fly[column][r]).tolist() for r in range(6)] == \
            [np.asarray(errors_b[column][r]).tolist() for r in range(6)], column
    assert branch_hash(path, "main") == before and not list(root.metadata.keys())
