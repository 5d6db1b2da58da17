"""``lakedet issues``: which labels are likely wrong, scored from out-of-sample predictions, on a new branch.

The predictions come from one or more ``lakedet predict`` / ``lakedet errors`` branches, each
covering its own rows (the K folds of a cross-validation: the model of fold k, trained on the other
folds, predicts fold k); the labels from another ref (``--labels``, default the current branch).
Each label is scored by ``lakedet.evaluation.label_issues.score_image``; the new branch (made from
the labels ref, one commit) gets:

* per ground-truth box: ``issue_kind`` (ClassLabel ``ISSUE_NAMES``) and ``issue_score``;
* per prediction (copied as ``pred_boxes`` / ``pred_labels`` / ``pred_scores``): ``pred_missing``,
  the score of "a box is missing here";
* per row: ``issue_row_score`` (NaN where no prediction branch covers the row) and
  ``issue_source``, the index of the prediction branch that predicted the row in the list the
  commit message ends with (``predictions by issue_source: [...]``: branch, commit, rows and that
  branch's own commit message, which names the config, checkpoint, its SHA-256 and the selection),
  -1 where none did: the lineage of every row's predictions. (Deep Lake 4.7.4's dataset metadata
  is shared by every branch, so nothing is recorded there.)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import SourceError
from ..evaluation.label_issues import ISSUE_NAMES, score_image
from .evaluated import last_message, open_ref, row_identity, stored_predictions

__all__ = ["IssuesReport", "score_rows", "issues_to_branch", "top_boxes"]


def score_rows(results: dict) -> dict:
    """``row -> ImageIssues`` for ``RowPrediction``-like results."""
    return {row: score_image(r.boxes, r.labels, r.scores, r.gt_boxes, r.gt_labels, r.gt_crowd)
            for row, r in results.items()}


@dataclass
class IssuesReport:
    path: str
    branch: str
    commit: str
    rows: int
    scores: dict  # row -> ImageIssues
    results: dict  # row -> RowPrediction (the labels ref's ground truth)
    classes: list[str]
    files: dict[str, str]


def top_boxes(scores: dict, results: dict, classes, k: int = 20) -> tuple[list[str], list[tuple]]:
    """The ``k`` highest-scored labels and missing-label predictions: a table's headers and rows."""
    found = []
    for row, issues in scores.items():
        r = results[row]
        for box, (kind, score) in enumerate(zip(issues.box_kind, issues.box_score)):
            if kind:
                found.append((float(score), row, f"box {box}", classes[r.gt_labels[box]], ISSUE_NAMES[kind]))
        for pred, score in enumerate(issues.missing):
            found.append((float(score), row, f"prediction {pred}", classes[r.labels[pred]], "missing"))
    found.sort(key=lambda item: -item[0])
    return ["row", "which", "class", "kind", "score"], [(row, which, name, kind, score)
                                                        for score, row, which, name, kind in found[:k]]


def issues_to_branch(path: str, predictions: list[str], branch: str, labels: str | None = None,
                     near_iou: float = 0.1, work_dir: str = "work_dirs/issues", top: int = 20) -> IssuesReport:
    """Score the labels of ``labels`` (default: the current branch) with the predictions of the
    ``predictions`` branches and commit the scores on the new ``branch`` (see the module docstring);
    write ``issues.json`` (the top ``top`` labels, counts per kind, the lineage of the predictions)
    and ``lineage.json`` in ``work_dir``.

    Raises:
        SourceError: a ref is unknown, ``branch`` exists, two prediction branches cover one row, or
            a prediction branch's rows are not the labels' rows.
        SchemaError: a prediction branch has no ``pred_*`` columns.
    """
    import deeplake

    from ..engine.lineage import write_lineage
    from .predict import discard_branch, open_writable, write_predictions, write_rows

    if not 0 < near_iou <= 1:
        from ..errors import ConfigError

        raise ConfigError(f"--near-iou {near_iou}: must be in (0, 1]")
    if not predictions:
        raise SourceError("--predictions: give at least one `lakedet predict` / `lakedet errors` branch")
    labels = labels or deeplake.open_read_only(path).current_branch.name
    target_ref = open_ref(path, labels)
    if not target_ref.at_head:
        raise SourceError(f"--labels {labels!r}: the issues branch is made from it, so it must be a branch's latest "
                          "commit")
    names = list(target_ref.root.branches.names())
    if branch in names:
        raise SourceError(f"branch {branch!r} already exists in {path!r}; choose a new --branch (branches: {names})")
    classes = list(target_ref.dataset.metainfo["classes"])
    results, source, origin, lineage = {}, {}, {}, []  # source: prediction branch row -> branch; origin: ours
    for index, name in enumerate(predictions):
        ref = open_ref(path, name)
        pairs = dict(row_identity(ref, target_ref))
        stored = stored_predictions(ref, f"--predictions {name!r}")
        lineage.append(dict(branch=ref.branch, commit=ref.commit, rows=len(stored), message=last_message(ref)))
        for row, prediction in stored.items():
            if row in source:
                raise SourceError(f"row {row} is predicted by both {predictions[source[row]]!r} and {name!r}: give "
                                  "prediction branches of disjoint rows (one per fold)")
            source[row] = index
            results[pairs[row]] = prediction
            origin[pairs[row]] = index
    from .evaluated import ground_truth

    truth = ground_truth(target_ref, results)
    for row, r in results.items():  # the labels to score are the labels ref's
        r.gt_boxes, r.gt_labels, r.gt_crowd, r.gt_area = truth[row]
    scores = score_rows(results)

    from deeplake import types

    writable = open_writable(path, "issues")
    target = writable.branches[target_ref.branch].open().branch(branch).open()
    try:
        write_predictions(target, results, classes)
        target.add_column("issue_kind", types.ClassLabel(types.Array("uint8", dimensions=1)))
        target["issue_kind"].metadata["class_names"] = list(ISSUE_NAMES)
        for name in ("issue_score", "pred_missing"):
            target.add_column(name, types.Array("float32", dimensions=1))
        target.add_column("issue_row_score", types.Float32())
        target.add_column("issue_source", types.Int32())
        write_rows(target["issue_kind"], {row: s.box_kind for row, s in scores.items()})
        write_rows(target["issue_score"], {row: s.box_score for row, s in scores.items()})
        write_rows(target["pred_missing"], {row: s.missing for row, s in scores.items()})
        row_score = np.full(len(target), np.nan, np.float32)
        row_source = np.full(len(target), -1, np.int32)
        for row, s in scores.items():
            row_score[row], row_source[row] = s.score, origin[row]
        if len(target):
            target["issue_row_score"][0:len(target)] = row_score
            target["issue_source"][0:len(target)] = row_source
        record = dict(predictions=lineage, labels=dict(branch=target_ref.branch, commit=target_ref.commit),
                      near_iou=near_iou, kinds=list(ISSUE_NAMES),
                      scoring="lakedet.evaluation.label_issues.score_image (docs/label-issues.md)")
        counts = {kind: int(sum(np.count_nonzero(s.box_kind == code) for s in scores.values()))
                  for code, kind in enumerate(ISSUE_NAMES) if code > 1}
        target.commit(f"lakedet issues: {len(scores)} rows of {target_ref.branch}@{target_ref.commit} scored with the "
                      f"predictions of {', '.join(f'{p}' for p in predictions)}; strongest kind per box: "
                      + ", ".join(f"{k} {v}" for k, v in counts.items())
                      + "; predictions by issue_source: " + json.dumps(lineage))
    except BaseException:
        discard_branch(writable, branch)
        raise
    commit = str(target.version)
    out = Path(work_dir)
    out.mkdir(parents=True, exist_ok=True)
    headers, table = top_boxes(scores, results, classes, top)
    files = dict(issues=str(out / "issues.json"))
    Path(files["issues"]).write_text(json.dumps(dict(record, written=dict(branch=branch, commit=commit,
                                                                          rows=len(scores)),
                                                     strongest_kind_counts=counts,
                                                     top=[dict(zip(headers, row)) for row in table]),
                                                indent=2, default=str))
    files["lineage"] = write_lineage(work_dir, "issues", {"labels": [target_ref.dataset.lineage()]},
                                     written=dict(branch=branch, commit=commit, rows=len(scores)))
    return IssuesReport(path, branch, commit, len(scores), scores, results, classes, files)
