"""`lakedet issues`: injected label errors get the top score of their kind; the branch, its lineage,
the recipes of docs/label-issues.md, `show --issues`, and the source branches left as they were."""

import re
from pathlib import Path

import cv2
import deeplake
import numpy as np
import pytest

from test_compare import branch_hash, lakedet_here
from lakedet.evaluation.label_issues import LOCALISATION, MISSING, NONE, SPURIOUS, SWAP, score_image
from lakedet.tools.error_analysis import evaluate_predictions, write_matches
from lakedet.tools.evaluated import with_record
from lakedet.tools.predict import RowPrediction, write_predictions
from lakedet.tools.synthetic import SHAPE_CLASSES, SyntheticRow, render_rows, write_dataset

pytestmark = pytest.mark.timeout(120)

DOC = Path(__file__).parent.parent / "docs" / "label-issues.md"
CIRCLE, SQUARE, TRIANGLE = range(3)

# The true boxes per row (x1y1x2y2, label); the noisy labels differ by exactly one injected error in
# rows 1-4: row 1's triangle dropped, row 2's square labelled a circle, row 3's circle shifted by
# 40 % of its size, row 4 a spurious square on background.
TRUE = [[([4, 4, 24, 24], CIRCLE), ([34, 30, 60, 56], SQUARE)],
        [([6, 6, 30, 30], SQUARE), ([36, 10, 60, 34], TRIANGLE)],
        [([10, 10, 40, 40], SQUARE), ([44, 44, 62, 62], TRIANGLE)],
        [([8, 30, 38, 60], CIRCLE), ([40, 4, 60, 24], SQUARE)],
        [([30, 30, 60, 60], TRIANGLE)],
        [([5, 5, 35, 35], CIRCLE), ([40, 40, 60, 60], CIRCLE)]]
NOISY = [TRUE[0],
         [TRUE[1][0]],
         [([10, 10, 40, 40], CIRCLE), TRUE[2][1]],
         [([20, 18, 50, 48], CIRCLE), TRUE[3][1]],
         [TRUE[4][0], ([2, 2, 22, 22], SQUARE)],
         TRUE[5]]
INJECTED = {MISSING: (1, [36, 10, 60, 34]), SWAP: (2, 0), LOCALISATION: (3, 0), SPURIOUS: (4, 1)}


def _xyxy(boxes):
    return np.asarray(boxes, np.float32).reshape(-1, 4)


def _perfect(rows=range(len(TRUE))):
    """Perfect predictions (the true boxes, score 0.95) against the noisy labels."""
    return {r: RowPrediction(_xyxy([b for b, _ in TRUE[r]]), np.asarray([lab for _, lab in TRUE[r]], np.int64),
                             np.full(len(TRUE[r]), 0.95, np.float32), None, _xyxy([b for b, _ in NOISY[r]]),
                             np.asarray([lab for _, lab in NOISY[r]], np.int64), np.zeros(len(NOISY[r]), bool))
            for r in rows}


def test_each_injected_error_gets_the_top_score_of_its_kind():
    scored = {r: score_image(p.boxes, p.labels, p.scores, p.gt_boxes, p.gt_labels) for r, p in _perfect().items()}
    for kind in (SPURIOUS, SWAP, LOCALISATION):
        row, box = INJECTED[kind]
        column = kind - SPURIOUS
        best = max((float(s.box_scores[b, column]), r, b) for r, s in scored.items() for b in range(len(s.box_kind)))
        assert best[1:] == (row, box), (kind, best)
        assert scored[row].box_kind[box] == kind
        others = [float(s.box_scores[b, column]) for r, s in scored.items() for b in range(len(s.box_kind))
                  if (r, b) != (row, box)]
        assert max(others) < best[0]
    row, box = INJECTED[MISSING]
    best = max((float(m), r, p) for r, s in scored.items() for p, m in enumerate(s.missing))
    assert best[1] == row and _perfect()[row].boxes[best[2]].tolist() == box
    injected = {INJECTED[k] for k in (SPURIOUS, SWAP, LOCALISATION)}
    rest = [float(s.box_score[b]) for r, s in scored.items() for b in range(len(s.box_kind)) if (r, b) not in injected]
    assert max(rest) == pytest.approx(0.05, abs=1e-6)  # a correct box: only 1 - 0.95 (the prediction's doubt)
    assert min(float(scored[r].box_score[b]) for r, b in injected) > 0.3
    assert [round(scored[r].score, 2) for r in range(len(TRUE))] == [0.05, 0.95, 0.95, 0.74, 1.0, 0.05]


def test_crowd_regions_are_no_label_issue():
    s = score_image(_xyxy([[10, 10, 20, 20]]), [CIRCLE], [0.9], _xyxy([[0, 0, 64, 64]]), [CIRCLE], [True])
    assert s.box_kind.tolist() == [NONE] and s.missing.tolist() == pytest.approx([0.0])


@pytest.fixture(scope="module")
def folds(tmp_path_factory):
    """The noisy labels on main, and two `lakedet errors`-style branches of perfect predictions, one
    per fold (even rows, odd rows)."""
    path = str(tmp_path_factory.mktemp("issues") / "ds")
    images = render_rows(len(TRUE), size=64, seed=3, max_objects=1)
    rows = []
    for image, labels in zip(images, NOISY):
        boxes = _xyxy([b for b, _ in labels])
        rows.append(SyntheticRow(image=image.image, boxes=np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], 1),
                                 labels=np.asarray([lab for _, lab in labels], np.uint32)))
    ds = write_dataset(path, rows)
    ds.add_column("row_id", deeplake.types.Int64())
    ds["row_id"][0:len(rows)] = np.arange(len(rows), dtype=np.int64)
    ds.commit("row ids")
    for fold in range(2):
        results = _perfect(range(fold, len(TRUE), 2))
        branch = ds.branch(f"fold{fold}").open()
        write_predictions(branch, results, SHAPE_CLASSES)
        write_matches(branch, results, evaluate_predictions(results, SHAPE_CLASSES))
        branch.commit(with_record(f"fold {fold}", dict(iou_thr=0.5, config=f"fold{fold}.py",
                                                       checkpoint=f"fold{fold}.pth", checkpoint_sha256="ab")))
    del ds
    return path


def test_issues_command_writes_scores_with_lineage(folds, tmp_path, capsys):
    before = {name: branch_hash(folds, name) for name in ("main", "fold0", "fold1")}
    status, out, err = lakedet_here(capsys, "issues", folds, "--predictions", "fold0", "fold1", "--branch", "issues",
                                    "--work-dir", tmp_path, "--top", "4")
    assert status == 0, err
    assert "| swap " in out and "| missing " in out and "scored 6 rows" in out
    root = deeplake.open_read_only(folds)
    issues = root.branches["issues"].open()
    kinds = [[k if s >= 0.3 else NONE for k, s in zip(np.asarray(issues["issue_kind"][r]).tolist(),
                                                      np.asarray(issues["issue_score"][r]).tolist())] for r in range(6)]
    assert kinds == [[NONE, NONE], [NONE], [SWAP, NONE], [LOCALISATION, NONE], [NONE, SPURIOUS], [NONE, NONE]]
    assert np.asarray(issues["issue_source"][:]).tolist() == [0, 1, 0, 1, 0, 1]
    import json

    lineage = json.loads(list(issues.history)[-1].message.split("predictions by issue_source: ", 1)[1])
    assert [p["branch"] for p in lineage] == ["fold0", "fold1"] and lineage[1]["message"].startswith("fold 1; record ")
    assert '"config": "fold1.py"' in lineage[1]["message"]  # the prediction branch's record, in the lineage
    assert lineage[0]["rows"] == 3 and lineage[1]["rows"] == 3
    assert np.asarray(issues["pred_missing"][1]).max() == pytest.approx(0.95)
    assert {name: branch_hash(folds, name) for name in before} == before

    block = re.search(r"```sql\n(.*?)```", DOC.read_text(), re.S).group(1)
    lines = [line.strip() for line in block.splitlines() if line.strip()]
    recipes = {comment[3:]: query for comment, query in zip(lines[::2], lines[1::2])}

    def ids(name):
        return sorted(int(v) for v in np.asarray(issues.query(recipes[name])["row_id"][:]).reshape(-1))

    assert ids("the 4 rows most likely to hold a wrong label") == [1, 2, 3, 4]
    assert ids("rows with a likely class swap") == [2]
    assert ids("rows with a likely missing label") == [1]
    assert ids("rows with a badly placed box") == [3]

    status, _, err = lakedet_here(capsys, "show", folds, "--branch", "issues", "--issues", "--rows", "1,2",
                                  "--columns", "2", "--out", tmp_path / "issues.png")
    assert status == 0, err
    grid = cv2.imread(str(tmp_path / "issues.png"))[:, :, ::-1].astype(int)
    from lakedet.tools.show import ISSUE_COLOURS

    def near(cell, x, y, colour):
        patch = grid[y - 1:y + 2, cell * 64 + x - 1:cell * 64 + x + 2].reshape(-1, 3)
        return (np.abs(patch - np.asarray(colour)).sum(1) < 90).any()

    assert near(0, 48, 34, ISSUE_COLOURS[MISSING])  # row 1: the dropped triangle's bottom edge
    assert near(1, 25, 40, ISSUE_COLOURS[SWAP])  # row 2: the swapped square's bottom edge
    status, _, err = lakedet_here(capsys, "show", folds, "--branch", "fold0", "--issues", "--rows", "0",
                                  "--out", tmp_path / "x.png")
    assert status == 2 and "run `lakedet issues` first" in err

    # bad input
    status, _, err = lakedet_here(capsys, "issues", folds, "--predictions", "fold0", "fold0", "--branch", "x",
                                  "--work-dir", tmp_path)
    assert status == 2 and "row 0 is predicted by both 'fold0' and 'fold0'" in err
    assert "x" not in list(deeplake.open_read_only(folds).branches.names())
    status, _, err = lakedet_here(capsys, "issues", folds, "--predictions", "main", "--branch", "y",
                                  "--work-dir", tmp_path)
    assert status == 2 and "--predictions 'main'" in err and "no column 'pred_boxes'" in err
    status, _, err = lakedet_here(capsys, "issues", folds, "--predictions", "fold0", "--branch", "issues",
                                  "--work-dir", tmp_path)
    assert status == 2 and "branch 'issues' already exists" in err
    assert {name: branch_hash(folds, name) for name in before} == before
