"""`lakedet errors`: match columns on a branch, the TQL recipes of docs/error-analysis.md, plots, `show --errors`, the command."""

import json
import re
import subprocess
import sys
from pathlib import Path

import cv2
import deeplake
import numpy as np
import pytest

from conftest import CONFIG_DIR, dataset_hash
from lakedet.tools.error_analysis import class_table, evaluate_predictions, report_json, write_matches
from lakedet.tools.evaluated import commit_record, open_ref
from lakedet.evaluation.matching import FN, FP, IGNORE, TP, match_image
from lakedet.evaluation.plots import PR_CURVES_SIZE, confusion_matrix_size, plot_confusion_matrix, plot_pr_curves
from lakedet.tools.predict import RowPrediction, write_predictions
from lakedet.tools.synthetic import SHAPE_CLASSES, SyntheticRow, render_rows, write_dataset

pytestmark = pytest.mark.timeout(300)

RECIPES = Path(__file__).parent.parent / "docs" / "error-analysis.md"
CIRCLE, SQUARE, TRIANGLE = range(3)


def lakedet(*args):
    return subprocess.run([sys.executable, "-m", "lakedet", *args], capture_output=True, text=True)


def lakedet_here(capsys, *args):
    """The command in this process (faster than a new one): ``(status, stdout, stderr)``."""
    from lakedet.cli import main

    capsys.readouterr()
    status = main([str(a) for a in args])
    out = capsys.readouterr()
    return status, out.out, out.err


def _xyxy(*boxes):
    return np.asarray(boxes, np.float32).reshape(-1, 4)


# Per row: ground truth (x1y1x2y2, label, crowd) and predictions (x1y1x2y2, label, score), chosen so
# each recipe of docs/error-analysis.md selects known rows.
CASE = [
    # 0: two hits and a confident false positive far from anything (a likely missing label)
    dict(gt=[([10, 10, 30, 30], SQUARE, 0), ([35, 35, 60, 60], CIRCLE, 0)],
         preds=[([10, 10, 30, 30], SQUARE, 0.95), ([35, 35, 60, 60], CIRCLE, 0.8), ([0, 40, 20, 60], TRIANGLE, 0.97)]),
    # 1: a hit, a duplicate of it, a stray box; a small triangle missed
    dict(gt=[([5, 5, 45, 45], SQUARE, 0), ([40, 5, 60, 25], TRIANGLE, 0)],
         preds=[([5, 5, 45, 45], SQUARE, 0.9), ([5, 5, 45, 45], SQUARE, 0.85), ([50, 50, 60, 60], CIRCLE, 0.25)]),
    # 2: a crowd region absorbs two boxes (ignored), a circle is found
    dict(gt=[([0, 0, 64, 64], SQUARE, 1), ([10, 10, 40, 40], CIRCLE, 0)],
         preds=[([10, 10, 40, 40], CIRCLE, 0.6), ([42, 42, 60, 60], SQUARE, 0.7), ([2, 40, 20, 60], SQUARE, 0.5)]),
    # 3: nothing to find, three false alarms
    dict(gt=[], preds=[([0, 0, 10, 10], CIRCLE, 0.4), ([20, 20, 30, 30], CIRCLE, 0.2),
                       ([40, 40, 50, 50], CIRCLE, 0.1)]),
    # 4: a large square missed
    dict(gt=[([20, 20, 60, 60], SQUARE, 0)], preds=[]),
    # 5: empty and nothing predicted
    dict(gt=[], preds=[]),
]


def _case_results():
    results = {}
    for row, case in enumerate(CASE):
        gt, preds = case["gt"], case["preds"]
        results[row] = RowPrediction(
            boxes=_xyxy(*[p[0] for p in preds]), labels=np.asarray([p[1] for p in preds], np.int64),
            scores=np.asarray([p[2] for p in preds], np.float32), masks=None,
            gt_boxes=_xyxy(*[g[0] for g in gt]), gt_labels=np.asarray([g[1] for g in gt], np.int64),
            gt_crowd=np.asarray([bool(g[2]) for g in gt], bool))
    return results


@pytest.fixture(scope="module")
def case_branch(tmp_path_factory):
    """The CASE rows as a dataset (with a ``row_id`` column) and a branch ``errors`` holding their
    predictions and matches, written by lakedet's own writers."""
    path = str(tmp_path_factory.mktemp("errors_case") / "ds")
    images = render_rows(len(CASE), size=64, seed=17, max_objects=1)
    rows = []
    for image, case in zip(images, CASE):
        boxes = _xyxy(*[g[0] for g in case["gt"]])
        ltwh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], 1)
        rows.append(SyntheticRow(image=image.image, boxes=ltwh,
                                 labels=np.asarray([g[1] for g in case["gt"]], np.uint32),
                                 iscrowd=np.asarray([bool(g[2]) for g in case["gt"]], bool)))
    ds = write_dataset(path, rows, crowd=True)
    ds.add_column("row_id", deeplake.types.Int64())
    ds["row_id"][0:len(rows)] = np.arange(len(rows), dtype=np.int64)
    ds.commit("row ids")
    before = dataset_hash(path)
    results = _case_results()
    evaluation = evaluate_predictions(results, SHAPE_CLASSES, iou_thr=0.5)
    branch = ds.branch("errors").open()
    write_predictions(branch, results, SHAPE_CLASSES)
    write_matches(branch, results, evaluation)
    branch.commit("errors of the constructed case")
    del branch, ds
    return path, before, evaluation


def _open_branch(path, name="errors"):
    root = deeplake.open_read_only(path)
    return root, root.branches[name].open()


def _readme_recipes():
    block = re.search(r"```sql\n(.*?)```", RECIPES.read_text(), re.S).group(1)
    lines = [line.strip() for line in block.splitlines() if line.strip()]
    return {comment[3:]: query for comment, query in zip(lines[::2], lines[1::2])}


def test_the_documented_recipes_return_the_expected_rows(case_branch):
    path, _, _ = case_branch
    root, branch = _open_branch(path)
    recipes = _readme_recipes()
    assert len(recipes) == 5, recipes

    def ids(query):
        return [int(v) for v in np.asarray(branch.query(query)["row_id"][:]).reshape(-1)]

    assert ids(recipes["rows with the most false positives"]) == [3, 1, 0]
    assert ids(recipes["false negatives of one class"]) == [4]  # the missed square; row 1 misses a triangle
    assert ids(recipes["confident false positives far from any box of their class: likely missing labels"]) == [0]
    assert ids(recipes["small objects missed"]) == [1]  # 20x20 triangle; row 4's 40x40 square is not small
    worst = ids(recipes["the worst rows first"])
    assert set(worst[:2]) == {3, 4} and worst[2:] == [1]  # F1 0, 0, then 0.4


def test_branch_columns_hold_the_matching_and_counts_add_up(case_branch):
    path, before, evaluation = case_branch
    root, branch = _open_branch(path)
    assert dataset_hash(path) == before  # the source branch is untouched
    codes = {row: (np.asarray(branch["pred_match"][row]).tolist(), np.asarray(branch["gt_match"][row]).tolist())
             for row in range(len(CASE))}
    assert codes[0] == ([TP, TP, FP], [TP, TP])
    assert codes[1] == ([TP, FP, FP], [TP, FN])
    assert codes[2] == ([TP, IGNORE, IGNORE], [IGNORE, TP])
    assert codes[3] == ([FP, FP, FP], [])
    assert codes[4] == ([], [FN])
    assert np.asarray(branch["pred_match_gt"][1]).tolist() == [0, -1, -1]
    assert np.asarray(branch["gt_match_pred"][1]).tolist() == [0, -1]
    assert np.asarray(branch["pred_iou"][1]).tolist() == pytest.approx([1.0, 1.0, 0.0])
    assert np.asarray(branch["gt_area"][1]).tolist() == pytest.approx([1600.0, 400.0])
    assert branch["pred_match"].metadata["class_names"] == ["tp", "fp", "fn", "ignore"]
    assert "lakedet_errors" not in list(branch.metadata.keys())  # Deep Lake shares it with every branch
    per_row = np.stack([np.asarray(branch[c][:], np.int64) for c in ("eval_tp", "eval_fp", "eval_fn")], 1)
    assert per_row.tolist() == [[2, 1, 0], [1, 2, 1], [1, 0, 0], [0, 3, 0], [0, 0, 1], [0, 0, 0]]
    for row in range(len(CASE)):  # each row's counts are its boxes' codes
        pred, gt = codes[row]
        assert per_row[row].tolist() == [pred.count(TP), pred.count(FP), gt.count(FN)]
    assert tuple(per_row.sum(0)) == evaluation.totals == (4, 6, 2)
    headers, table = class_table(evaluation)
    total = dict(zip(headers, table[-1]))
    assert (total["tp"], total["fp"], total["fn"], total["gts"]) == (4, 6, 2, 6)  # the crowd box is no ground truth
    assert sum(r[headers.index("tp")] for r in table[:-1]) == 4
    f1 = np.asarray(branch["eval_f1"][:], np.float64)
    assert f1.tolist() == pytest.approx([0.8, 0.4, 1.0, 0.0, 0.0, 1.0])


def test_plots_are_pngs_of_the_documented_size(case_branch, tmp_path):
    _, _, evaluation = case_branch
    pr = plot_pr_curves(evaluation.curves, SHAPE_CLASSES, str(tmp_path / "pr.png"), 0.5)
    cm = plot_confusion_matrix(evaluation.confusion, SHAPE_CLASSES, str(tmp_path / "cm.png"), 0.5, 0.3)
    assert PR_CURVES_SIZE == (800, 600) and confusion_matrix_size(3) == (600, 600)
    assert confusion_matrix_size(10) == (860, 860)
    assert cv2.imread(pr).shape == (600, 800, 3)
    assert cv2.imread(cm).shape == (600, 600, 3)
    assert cv2.imread(pr).std() > 10 and cv2.imread(cm).std() > 10  # something is drawn
    # the confusion matrix of the case: ground truth rows, predictions columns, background last
    assert evaluation.confusion.tolist() == [[2, 0, 0, 0],  # circles: both found
                                             [0, 2, 0, 1],  # squares: two found, one missed
                                             [0, 0, 0, 1],  # the triangle missed
                                             [1, 1, 1, 0]]  # on background: row 3's circle >= 0.3, a duplicate
    # square, the confident triangle; scores < 0.3 are not counted, crowd regions absorb boxes


def test_a_class_selection_counts_only_its_boxes_and_reports_only_it():
    from lakedet.errors import ConfigError

    results = _case_results()
    squares = evaluate_predictions(results, SHAPE_CLASSES, selected=["square"])
    per_row = [(squares.matches[r].tp, squares.matches[r].fp, squares.matches[r].fn) for r in range(len(CASE))]
    assert per_row == [(1, 0, 0), (1, 1, 0), (0, 0, 0), (0, 0, 0), (0, 0, 1), (0, 0, 0)]  # all classes: (2, 1, 0) ...
    # the other classes' boxes are ignored, and partners keep their positions in the row
    assert squares.matches[1].pred_match.tolist() == [TP, FP, IGNORE] and squares.matches[1].gt_match.tolist() == [TP, IGNORE]
    circles = evaluate_predictions(results, SHAPE_CLASSES, selected=["circle"])
    assert circles.matches[0].pred_gt.tolist() == [-1, 1, -1] and circles.matches[0].gt_pred.tolist() == [-1, 1]
    headers, table = class_table(squares)
    assert [row[0] for row in table] == ["square", "all"]
    full = dict(zip(headers, class_table(evaluate_predictions(results, SHAPE_CLASSES))[1][1]))
    assert dict(zip(headers, table[0])) == full  # the square row is the same as without a selection
    assert dict(zip(headers, table[1]))["tp"] == 2 and squares.totals == (2, 1, 1)
    assert squares.confusion.shape == (2, 2) and report_json(squares)["confusion_matrix"]["labels"] == ["square", "missing"]
    with pytest.raises(ConfigError, match=r"--classes square,dog: no class 'dog'; the dataset's classes: circle, square, "
                                          r"triangle"):
        evaluate_predictions(results, SHAPE_CLASSES, selected=["square", "dog"])


def test_the_report_has_sizes_mean_average_recall_and_the_best_threshold_per_class(tmp_path):
    from lakedet.evaluation.plots import plot_threshold_sweep, threshold_sweep_size
    from lakedet.tools.error_analysis import size_table, sweep_table

    evaluation = evaluate_predictions(_case_results(), SHAPE_CLASSES)
    headers, table = class_table(evaluation)
    assert headers[-3:] == ["AP@0.5", "AP@[.5:.95]", "AR@[.5:.95]"]
    square = dict(zip(headers, table[1]))
    assert square["AR@[.5:.95]"] == pytest.approx(2 / 3)  # 2 of 3 squares found at every IoU (exact boxes)
    sizes = {row[0]: dict(zip(size_table(evaluation)[0], row)) for row in size_table(evaluation)[1]}
    # small (< 32²): row 0's square and circle, row 1's triangle, row 2's circle; medium: the 40x40 squares
    assert [(sizes[s]["gts"], sizes[s]["tp"], sizes[s]["fn"]) for s in ("small", "medium", "large")] == \
        [(4, 3, 1), (2, 1, 1), (0, 0, 0)]
    best = {row[0]: row[1:] for row in sweep_table(evaluation)[1]}
    # circles: found at 0.8 and 0.6, false positives at 0.4 and below: F1 1 from 0.45 up to 0.6
    assert best["circle"] == ("0.45", 1.0, 1.0, 1.0)
    assert best["triangle"][3] == 0.0  # its one box is never found
    report = report_json(evaluation)
    assert report["confusion_matrix"]["labels"] == ["circle", "square", "triangle", "missing"]
    assert report["metrics"]["square"]["medium"]["recall"] == 0.5
    png = plot_threshold_sweep(evaluation.sweep, str(tmp_path / "sweep.png"), 0.5)
    assert threshold_sweep_size(4) == (960, 520) and cv2.imread(png).shape == (520, 960, 3)
    # class-agnostic: a square predicted on a circle is a hit
    swap = {0: RowPrediction(_xyxy([10, 10, 30, 30]), np.asarray([SQUARE]), np.asarray([0.9], np.float32), None,
                             _xyxy([10, 10, 30, 30]), np.asarray([CIRCLE]), np.zeros(1, bool))}
    assert evaluate_predictions(swap, SHAPE_CLASSES).totals == (0, 1, 1)
    agnostic = evaluate_predictions(swap, SHAPE_CLASSES, classwise=False)
    assert agnostic.totals == (1, 0, 0) and [row[0] for row in class_table(agnostic)[1]] == ["any class", "all"]


def test_show_errors_draws_tp_fp_fn_in_three_colours(case_branch, tmp_path, capsys):
    path, _, _ = case_branch
    status, _, err = lakedet_here(capsys, "show", path, "--branch", "errors", "--errors", "--rows", "0,1",
                                  "--columns", "2", "--out", tmp_path / "errors.png")
    assert status == 0, err
    grid = cv2.imread(str(tmp_path / "errors.png"))[:, :, ::-1].astype(int)  # RGB
    assert grid.shape == (64, 128, 3)

    def near(cell, x, y, colour):
        patch = grid[y - 1:y + 2, cell * 64 + x - 1:cell * 64 + x + 2].reshape(-1, 3)
        return (np.abs(patch - np.asarray(colour)).sum(1) < 90).any()

    from lakedet.tools.show import ERROR_COLOURS

    # bottom edges (the labels sit at the top-left corners)
    assert near(0, 20, 30, ERROR_COLOURS[TP])  # row 0: the found square, green
    assert near(0, 10, 60, ERROR_COLOURS[FP])  # row 0: the confident false positive, red
    assert not near(0, 10, 60, ERROR_COLOURS[TP]) and not near(0, 20, 30, ERROR_COLOURS[FP])
    assert near(1, 52, 25, ERROR_COLOURS[FN])  # row 1: the missed triangle, blue
    assert not near(1, 55, 60, ERROR_COLOURS[FP])  # row 1's stray circle scored 0.25 < --score-thr 0.3: hidden
    status, _, err = lakedet_here(capsys, "show", path, "--errors", "--rows", "0", "--out", tmp_path / "x.png")
    assert status == 2 and "run `lakedet errors` first" in err  # the source branch has no matches
    status, _, err = lakedet_here(capsys, "show", path, "--branch", "nope", "--rows", "0", "--out", tmp_path / "x.png")
    assert status == 2 and "no such branch" in err and "'errors'" in err


@pytest.fixture(scope="module")
def untrained_checkpoint(untrained_checkpoints):
    return untrained_checkpoints[0]


def test_errors_command_writes_one_commit_on_a_new_branch(untrained_checkpoint, tmp_path, capsys):
    import hashlib

    target = str(tmp_path / "target")
    rows = render_rows(6, size=64, seed=31, min_side=14, max_side=30)
    rows[2].iscrowd = np.asarray([True] + [False] * (len(rows[2].labels) - 1))
    source = write_dataset(target, rows, crowd=True)
    before, source_commit = dataset_hash(target), str(source.version)
    config = str(CONFIG_DIR / "tiny_retinanet.py")
    work = tmp_path / "w"
    out = lakedet("errors", config, untrained_checkpoint, target, "--branch", "errors-v1", "--score-thr", "0",
                  "--iou-thr", "0.1", "--work-dir", str(work))
    assert out.returncode == 0, out.stderr[-3000:]
    assert "AP@0.1" in out.stdout and "| all " in out.stdout and "errors-v1" in out.stdout
    assert "AR@[.5:.95]" in out.stdout and "| medium " in out.stdout and "best score thr" in out.stdout
    assert dataset_hash(target) == before
    root = deeplake.open_read_only(target)
    branch = root.branches["errors-v1"].open()
    history = list(branch.history)
    assert len(history) == 2 and history[0].message.startswith("Branch created")  # then one commit: all of it
    message = history[-1].message
    digest = hashlib.sha256(Path(untrained_checkpoint).read_bytes()).hexdigest()
    for part in ("tiny_retinanet.py", f"sha256 {digest}", source_commit, "IoU >= 0.1", "COCO", "greedy by score"):
        assert part in message, (part, message)
    record = commit_record(open_ref(target, "errors-v1"))  # the JSON the message ends with
    assert not list(root.metadata.keys())  # nothing in the dataset's metadata, which every branch shares
    assert record["checkpoint_sha256"] == digest and record["iou_thr"] == 0.1
    assert record["source_commit"] == source_commit
    # the branch's matches are COCO's matching of the branch's own predictions and ground truth
    tp = fp = fn = 0
    for row in range(6):
        boxes = np.asarray(branch["pred_boxes"][row], np.float32).reshape(-1, 4)
        gt = np.asarray(branch["boxes"][row], np.float32).reshape(-1, 4)
        match = match_image(np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], 1),
                            np.asarray(branch["pred_labels"][row]), np.asarray(branch["pred_scores"][row]),
                            np.concatenate([gt[:, :2], gt[:, :2] + gt[:, 2:]], 1), np.asarray(branch["labels"][row]),
                            np.asarray(branch["iscrowd"][row]), iou_thr=0.1)
        assert np.asarray(branch["pred_match"][row]).tolist() == match.pred_match.tolist()
        assert np.asarray(branch["gt_match"][row]).tolist() == match.gt_match.tolist()
        assert np.asarray(branch["pred_match_gt"][row]).tolist() == match.pred_gt.tolist()
        assert int(branch["eval_tp"][row]) == match.tp and int(branch["eval_fn"][row]) == match.fn
        tp, fp, fn = tp + match.tp, fp + match.fp, fn + match.fn
    assert np.asarray(branch["gt_match"][2])[0] == IGNORE  # the crowd box
    assert len(np.asarray(branch["pred_match"][0])) == 10  # max_per_img of the untrained model, score-thr 0
    report = json.loads((work / "errors.json").read_text())
    assert report["per_class"][-1]["tp"] == tp and report["per_class"][-1]["fp"] == fp and report["written"]["fn"] == fn
    assert cv2.imread(str(work / "pr_curves.png")).shape == (600, 800, 3)
    assert cv2.imread(str(work / "confusion_matrix.png")).shape == (600, 600, 3)
    assert cv2.imread(str(work / "threshold_sweep.png")).shape == (520, 960, 3)  # 3 classes and all
    assert report["confusion_matrix"]["labels"][-1] == "missing" and set(report["metrics"]["all"]) == {
        "all", "small", "medium", "large"} and report["threshold_sweep"]["all"]["best_threshold"] is not None
    lineage = json.loads((work / "lineage.json").read_text())["latest"]
    assert lineage["command"] == "errors" and lineage["splits"]["errors"][0]["commit"] == source_commit
    assert lineage["written"]["branch"] == "errors-v1" and lineage["written"]["iou_thr"] == 0.1

    # a view or a query: only the selected rows are evaluated, the others say so (-1, NaN)
    writable = deeplake.open(target)
    writable.query("SELECT * WHERE ROW_NUMBER() >= 4").tag("last_two")
    before = dataset_hash(target)
    for flag, value, chosen in (("--query", "SELECT * WHERE ROW_NUMBER() < 2", [0, 1]), ("--view", "last_two", [4, 5])):
        status, _, err = lakedet_here(capsys, "errors", config, untrained_checkpoint, target, "--branch",
                                      f"errors{flag}", "--score-thr", "0", flag, value, "--work-dir", tmp_path / flag)
        assert status == 0, err
        opened = deeplake.open_read_only(target)
        selected = opened.branches[f"errors{flag}"].open()
        counts = np.asarray(selected["eval_fp"][:]).tolist()
        assert [row for row in range(6) if counts[row] >= 0] == chosen, (flag, counts)
        assert all(np.isnan(float(selected["eval_f1"][row])) for row in range(6) if row not in chosen)
        assert "rows of" in list(selected.history)[-1].message
        status, _, err = lakedet_here(capsys, "show", target, "--branch", f"errors{flag}", "--errors", "--rows", "0:6",
                                      "--query", "SELECT * WHERE eval_fp >= 0", "--out", tmp_path / "shown.png")
        assert status == 0, err
        assert cv2.imread(str(tmp_path / "shown.png")).shape == (64, 2 * 64, 3)  # the two evaluated rows
    assert dataset_hash(target) == before

    # --classes: the branch's per-row counts are those of the class's boxes only
    status, out, err = lakedet_here(capsys, "errors", config, untrained_checkpoint, target, "--branch", "squares",
                                    "--score-thr", "0", "--iou-thr", "0.1", "--classes", "square",
                                    "--work-dir", tmp_path / "sq")
    assert status == 0, err
    opened = deeplake.open_read_only(target)  # kept: a branch does not keep its dataset open
    squares = opened.branches["squares"].open()
    for row in range(6):
        labels, pred_labels = np.asarray(squares["labels"][row]), np.asarray(squares["pred_labels"][row])
        pred_match, gt_match = np.asarray(squares["pred_match"][row]), np.asarray(squares["gt_match"][row])
        assert (pred_match[pred_labels != SQUARE] == IGNORE).all() and (gt_match[labels != SQUARE] == IGNORE).all()
        assert int(squares["eval_tp"][row]) == np.count_nonzero(pred_match == TP)
        assert int(squares["eval_fn"][row]) == np.count_nonzero((gt_match == FN) & (labels == SQUARE))
    assert [r["class"] for r in json.loads((tmp_path / "sq" / "errors.json").read_text())["per_class"]] == ["square",
                                                                                                           "all"]
    status, _, err = lakedet_here(capsys, "errors", config, untrained_checkpoint, target, "--branch", "dogs",
                                  "--classes", "square,dog")
    assert status == 2 and "no class 'dog'; the dataset's classes: circle, square, triangle" in err
    assert "dogs" not in list(deeplake.open_read_only(target).branches.names())

    # bad input: an existing branch, a broken checkpoint (the branch is removed again), a bad threshold
    status, _, err = lakedet_here(capsys, "errors", config, untrained_checkpoint, target, "--branch", "errors-v1")
    assert status == 2 and "branch 'errors-v1' already exists" in err
    status, _, err = lakedet_here(capsys, "errors", config, untrained_checkpoint, target, "--branch", "x",
                                  "--iou-thr", "1.5")
    assert status == 2 and "--iou-thr 1.5" in err
    broken = tmp_path / "broken.pth"
    broken.write_bytes(b"not a checkpoint")
    failed = lakedet("errors", config, str(broken), target, "--branch", "never")  # its own process: exits after
    assert failed.returncode == 2 and f"checkpoint {str(broken)!r} cannot be loaded" in failed.stderr
    assert "never" not in list(deeplake.open_read_only(target).branches.names())  # made, then removed
    assert dataset_hash(target) == before



def test_a_deeplake3_dataset_is_refused_with_the_conversion_to_do(tmp_path, capsys):
    import shutil

    source = tmp_path / "v3"
    shutil.copytree(Path(__file__).parent / "data" / "deeplake3_shapes", source)  # written by Deep Lake 3.9.52
    files = {p: p.read_bytes() for p in source.rglob("*") if p.is_file()}
    for command in ("errors", "predict"):  # refused first: before the checkpoint (none here) is looked at
        status, _, err = lakedet_here(capsys, command, CONFIG_DIR / "tiny_retinanet.py", tmp_path / "none.pth",
                                      source, "--branch", "b")
        assert status == 2 and "is a Deep Lake 3 dataset" in err, err
        assert f"run `lakedet {command}` on the copy: lakedet convert {source} {source}-v4" in err
    assert {p: p.read_bytes() for p in source.rglob("*") if p.is_file()} == files  # nothing written
