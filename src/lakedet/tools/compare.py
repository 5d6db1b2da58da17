"""``lakedet compare``: two evaluations of a dataset side by side, per class, per size and per box.

A side is a ref of the dataset (``BRANCH`` or ``BRANCH@COMMIT``) with predictions: those a
``lakedet errors`` / ``lakedet predict`` branch holds, or a model's (config + checkpoint) run on
the fly. Same or different model, same or different commit of the labels. Rows are the same row
when ``row_identity`` says so (an id column, or the row index with an image check); only rows
evaluated on both sides are compared.

Numbers: ``lakedet.evaluation.breakdown`` per class and COCO size for both sides, their deltas
and a paired bootstrap over images (``bootstrap_deltas``): a delta is *significant* when its 95 %
interval excludes 0. Per box, on a new branch made from B's ref (``COMPARE_COLUMNS``): the
ground-truth boxes found or lost (``lakedet.evaluation.changes``), false positives new on B and
those of A that vanished, and where the two sides' labels differ, the label diff (``diff_labels``).
The source refs are never written.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError, SourceError
from ..evaluation.breakdown import SIZES, Breakdown, bootstrap_deltas, breakdown, threshold_sweep
from ..evaluation.changes import (ADDED, CHANGE_NAMES, DIFF_NAMES, FOUND, LOST, MOVED, MOVED_RELABELLED, NEW_FP,
                                  RELABELLED, SAME, FP_CHANGE_NAMES, diff_labels, fp_changes, gt_changes)
from ..schema.boxes import BoxMode, convert_boxes
from .evaluated import (Ref, json_ready, last_message, model_predictions, open_ref, row_identity, stored_predictions,
                        with_record)

__all__ = ["Side", "Comparison", "compare", "compare_to_branch", "summary_table", "size_table", "diff_table",
           "ROW_COLUMNS"]

#: Per-row counts written on the comparison branch (-1 on rows not compared).
ROW_COLUMNS = ("cmp_lost", "cmp_found", "cmp_new_fp", "cmp_vanished_fp", "diff_added", "diff_removed", "diff_moved",
               "diff_relabelled")


@dataclass
class Side:
    """One evaluation: a ref, its predictions per row (with that ref's ground truth), and where
    the predictions came from."""

    ref: Ref
    results: dict
    source: dict


@dataclass
class Comparison:
    """Both sides over the paired rows (``pairs[k] = (row of A, row of B)``) and what differs."""

    a: Side
    b: Side
    pairs: list[tuple[int, int]]
    classes: list[str]
    metrics: tuple[dict, dict]  # Breakdown.metrics() of A and B
    intervals: dict | None  # bootstrap_deltas, or None when not asked
    breakdowns: tuple[Breakdown, Breakdown]
    per_row: dict[int, dict]  # row of B -> gt_change, gt_diff, pred_change, vanished, removed (+ counts)
    label_diff: dict[str, dict[str, int]]  # class -> added, removed, moved, relabelled_from, relabelled_to
    sweep: tuple[dict, dict]


def load_side(path: str, ref: str, what: str, model: tuple[str, str] | None = None, progress=None,
              **options) -> Side:
    """Open ``ref`` and take its stored predictions, or ``model``'s (config, checkpoint) on the fly."""
    opened = open_ref(path, ref)
    if model is None:
        results = stored_predictions(opened, what)
        source = dict(kind="stored", ref=opened.name, commit=opened.commit, message=last_message(opened))
    else:
        results, record = model_predictions(opened, *model, progress=progress, **options)
        source = dict(kind="on the fly", ref=opened.name, commit=opened.commit, **record)
    return Side(opened, results, source)


def compare(a: Side, b: Side, iou_thr: float = 0.5, max_dets: int = 100, classwise: bool = True,
            id_column: str | None = None, bootstrap: int = 200, seed: int = 0, moved_iou: float = 0.9,
            pair_iou: float = 0.1) -> Comparison:
    """Compare two sides (see the module docstring).

    Raises:
        SourceError: the rows cannot be paired, or no row was evaluated on both sides.
        ConfigError: the sides have different classes, or a threshold is out of range.
    """
    from .error_analysis import check_thresholds

    check_thresholds(iou_thr, max_dets)
    if not 0 < pair_iou <= moved_iou <= 1:
        raise ConfigError(f"--pair-iou {pair_iou} / --moved-iou {moved_iou}: need 0 < pair-iou <= moved-iou <= 1")
    classes = list(b.ref.dataset.metainfo["classes"])
    if list(a.ref.dataset.metainfo["classes"]) != classes:
        raise ConfigError(f"A = {a.ref.name!r} has classes {list(a.ref.dataset.metainfo['classes'])}, B = "
                          f"{b.ref.name!r} {classes}: both sides need the same classes")
    pairs = [(i, j) for i, j in row_identity(a.ref, b.ref, id_column) if i in a.results and j in b.results]
    if not pairs:
        raise SourceError(f"no row was evaluated on both A = {a.ref.name!r} and B = {b.ref.name!r}")
    ra = {k: a.results[i] for k, (i, _) in enumerate(pairs)}
    rb = {k: b.results[j] for k, (_, j) in enumerate(pairs)}
    ba, bb = (breakdown(r, classes, iou_thr, max_dets, classwise) for r in (ra, rb))
    intervals = bootstrap_deltas(ba, bb, bootstrap, seed) if bootstrap else None
    per_row, diff_counts = {}, {name: dict(added=0, removed=0, moved=0, relabelled_from=0, relabelled_to=0)
                                for name in classes}
    for k, (i, j) in enumerate(pairs):
        x, y = ra[k], rb[k]
        diff = diff_labels(x.gt_boxes, x.gt_labels, y.gt_boxes, y.gt_labels, moved_iou, pair_iou)
        partner = diff.partner
        for box in np.flatnonzero(diff.state == ADDED):
            diff_counts[classes[y.gt_labels[box]]]["added"] += 1
        for box in diff.removed:
            diff_counts[classes[x.gt_labels[box]]]["removed"] += 1
        for box in np.flatnonzero((diff.state == MOVED) | (diff.state == MOVED_RELABELLED)):
            diff_counts[classes[y.gt_labels[box]]]["moved"] += 1
        for box in np.flatnonzero((diff.state == RELABELLED) | (diff.state == MOVED_RELABELLED)):
            diff_counts[classes[x.gt_labels[partner[box]]]]["relabelled_from"] += 1
            diff_counts[classes[y.gt_labels[box]]]["relabelled_to"] += 1
        change = gt_changes(ba.matches[k].gt_match, bb.matches[k].gt_match, partner)
        pred_change, vanished = fp_changes(x.boxes, x.labels, ba.matches[k].pred_match, y.boxes, y.labels,
                                           bb.matches[k].pred_match, iou_thr)
        per_row[j] = dict(gt_change=change, gt_diff=diff.state, pred_change=pred_change,
                          vanished_boxes=x.boxes[vanished], vanished_labels=x.labels[vanished],
                          removed_boxes=x.gt_boxes[diff.removed], removed_labels=x.gt_labels[diff.removed],
                          counts=(int(np.count_nonzero(change == LOST)), int(np.count_nonzero(change == FOUND)),
                                  int(np.count_nonzero(pred_change == NEW_FP)), len(vanished), diff.count(ADDED),
                                  len(diff.removed), diff.count(MOVED) + diff.count(MOVED_RELABELLED),
                                  diff.count(RELABELLED) + diff.count(MOVED_RELABELLED)))
    return Comparison(a, b, pairs, classes, (ba.metrics(), bb.metrics()), intervals, (ba, bb), per_row, diff_counts,
                      (threshold_sweep(ba), threshold_sweep(bb)))


def _significant(comparison: Comparison, name: str, size: str, metric: str) -> bool | None:
    if comparison.intervals is None:
        return None
    lo, hi = comparison.intervals[name][size][metric]
    return bool(lo > 0 or hi < 0)


def _delta_cell(comparison: Comparison, name: str, size: str, metric: str) -> str:
    a, b = comparison.metrics[0][name][size][metric], comparison.metrics[1][name][size][metric]
    delta = b - a
    if delta != delta:
        return "-"
    text = f"{delta:+.3f}" if metric in ("AP", "AP50", "AR", "precision", "recall") else f"{delta:+.0f}"
    return text + (" *" if _significant(comparison, name, size, metric) else "")


_SHOWN = ("AP", "AP50", "AR", "recall", "precision", "tp", "fp", "fn")


def summary_table(comparison: Comparison, size: str = "all") -> tuple[list[str], list[tuple]]:
    """Per class (and ``all``) at one size: ground truth A/B, then A, B and delta of each number
    (``*``: the delta's 95 % bootstrap interval excludes 0)."""
    headers = ["class", "gts A", "gts B"] + [f"{m} {side}" for m in _SHOWN for side in ("A", "B", "Δ")]
    rows = []
    for name in [*comparison.classes, "all"]:
        a, b = comparison.metrics[0][name][size], comparison.metrics[1][name][size]
        row = [name, int(a["gts"]), int(b["gts"])]
        for metric in _SHOWN:
            row += [a[metric] if metric in ("AP", "AP50", "AR", "recall", "precision") else int(a[metric]),
                    b[metric] if metric in ("AP", "AP50", "AR", "recall", "precision") else int(b[metric]),
                    _delta_cell(comparison, name, size, metric)]
        rows.append(tuple(row))
    return headers, rows


def size_table(comparison: Comparison) -> tuple[list[str], list[tuple]]:
    """All classes together, per COCO size: AP, AP50, recall of A and B, and their deltas."""
    headers = ["size", "gts A", "gts B", "AP A", "AP B", "AP Δ", "AP50 A", "AP50 B", "AP50 Δ", "recall A",
               "recall B", "recall Δ"]
    rows = []
    for size in SIZES:
        a, b = comparison.metrics[0]["all"][size], comparison.metrics[1]["all"][size]
        rows.append((size, int(a["gts"]), int(b["gts"]), a["AP"], b["AP"], _delta_cell(comparison, "all", size, "AP"),
                     a["AP50"], b["AP50"], _delta_cell(comparison, "all", size, "AP50"), a["recall"], b["recall"],
                     _delta_cell(comparison, "all", size, "recall")))
    return headers, rows


def diff_table(comparison: Comparison) -> tuple[list[str], list[tuple]]:
    """The label diff per class (boxes added, removed, moved, relabelled from / to the class)
    beside the change of the class's ground truth and AP50."""
    headers = ["class", "added", "removed", "moved", "relabelled from", "relabelled to", "gts Δ", "AP50 Δ"]
    rows = []
    for name in comparison.classes:
        d = comparison.label_diff[name]
        rows.append((name, d["added"], d["removed"], d["moved"], d["relabelled_from"], d["relabelled_to"],
                     _delta_cell(comparison, name, "all", "gts"), _delta_cell(comparison, name, "all", "AP50")))
    return headers, rows


def comparison_json(comparison: Comparison) -> dict:
    """Everything the comparison found, JSON-ready (NaN as null)."""
    a, b = comparison.metrics
    numbers = {}
    for name in a:
        for size in a[name]:
            for metric in a[name][size]:
                entry = dict(a=a[name][size][metric], b=b[name][size][metric],
                             delta=b[name][size][metric] - a[name][size][metric])
                if comparison.intervals is not None:
                    entry["interval95"] = list(comparison.intervals[name][size][metric])
                    entry["significant"] = _significant(comparison, name, size, metric)
                numbers.setdefault(name, {}).setdefault(size, {})[metric] = entry
    totals = np.sum([r["counts"] for r in comparison.per_row.values()], 0).tolist()
    return json_ready(dict(a=comparison.a.source, b=comparison.b.source, rows_compared=len(comparison.pairs),
                       classes=comparison.classes, metrics=numbers, label_diff=comparison.label_diff,
                       box_changes=dict(zip(ROW_COLUMNS, totals)),
                       threshold_sweep=dict(a=comparison.sweep[0], b=comparison.sweep[1])))


def write_comparison(target, comparison: Comparison) -> None:
    """Add the comparison columns to ``target`` (a branch made from B's ref) and fill B's rows."""
    from deeplake import types

    from .predict import write_rows

    for name, names in (("gt_change", CHANGE_NAMES), ("gt_diff", DIFF_NAMES), ("pred_change", FP_CHANGE_NAMES),
                        ("vanished_fp_labels", comparison.classes), ("removed_labels", comparison.classes)):
        target.add_column(name, types.ClassLabel(types.Array("uint32" if name.endswith("labels") else "uint8",
                                                             dimensions=1)))
        target[name].metadata["class_names"] = list(names)
    for name in ("vanished_fp_boxes", "removed_boxes"):
        target.add_column(name, types.BoundingBox(dtype="float32", format="ltwh", bbox_type="pixel"))
        target[name].metadata["coords"] = {"mode": "LTWH", "type": "pixel"}
    for name in ROW_COLUMNS:
        target.add_column(name, types.Int32())
    per_row = comparison.per_row
    for name in ("gt_change", "gt_diff", "pred_change"):
        write_rows(target[name], {row: v[name] for row, v in per_row.items()})
    for name, boxes, labels in (("vanished_fp", "vanished_boxes", "vanished_labels"),
                                ("removed", "removed_boxes", "removed_labels")):
        write_rows(target[f"{name}_boxes"], {row: convert_boxes(v[boxes], BoxMode.LTRB, BoxMode.LTWH, np.float32)
                                            for row, v in per_row.items()})
        write_rows(target[f"{name}_labels"], {row: v[labels].astype(np.uint32) for row, v in per_row.items()})
    counts = np.full((len(target), len(ROW_COLUMNS)), -1, np.int32)
    for row, v in per_row.items():
        counts[row] = v["counts"]
    if len(target):
        for k, name in enumerate(ROW_COLUMNS):
            target[name][0:len(target)] = counts[:, k]


@dataclass
class CompareReport:
    comparison: Comparison
    branch: str | None
    commit: str | None
    files: dict[str, str]


def compare_to_branch(path: str, a: str, b: str, branch: str | None = None, model_a: tuple[str, str] | None = None,
                      model_b: tuple[str, str] | None = None, work_dir: str = "work_dirs/compare",
                      progress=None, predict_options: dict | None = None, **options) -> CompareReport:
    """Compare ref ``a`` with ref ``b`` of ``path`` (their stored predictions, or ``model_a`` /
    ``model_b`` run on the fly), write ``compare.json`` (and ``lineage.json``) in ``work_dir`` and,
    when ``branch`` is given, the per-box columns on that new branch made from ``b`` (one commit;
    with B's predictions and matches, as ``lakedet errors`` writes them, when B ran on the fly).

    Raises:
        SourceError: a ref is unknown, ``branch`` exists, ``b`` is not a branch head, rows cannot be paired.
        SchemaError: a ref without predictions and no model for it.
    """
    from ..engine.lineage import write_lineage

    sides = [load_side(path, ref, what, model, progress, **(predict_options or {}))
             for ref, what, model in ((a, "A", model_a), (b, "B", model_b))]
    if branch:  # refuse before the long work, not after it
        names = list(sides[1].ref.root.branches.names())
        if branch in names:
            raise SourceError(f"branch {branch!r} already exists in {path!r}; choose a new --branch (branches: {names})")
        if not sides[1].ref.at_head:
            raise SourceError(f"--branch: the comparison branch is made from B, and B = {sides[1].ref.name!r} is not "
                              f"the latest commit of {sides[1].ref.branch!r}; give B as a branch")
    from .error_analysis import matching_rule

    comparison = compare(*sides, **options)
    max_dets, classwise = options.get("max_dets", 100), options.get("classwise", True)
    record = dict(a=comparison.a.source, b=comparison.b.source, rows_compared=len(comparison.pairs),
                  iou_thr=options.get("iou_thr", 0.5), id_column=options.get("id_column"), max_dets=max_dets,
                  classwise=classwise, matching=matching_rule(max_dets, classwise),
                  moved_iou=options.get("moved_iou", 0.9), pair_iou=options.get("pair_iou", 0.1))
    commit = None
    if branch:
        commit = _write_branch(path, branch, comparison, record)
    out = Path(work_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = dict(compare=str(out / "compare.json"))
    Path(files["compare"]).write_text(json.dumps(dict(comparison_json(comparison), written=dict(branch=branch,
                                                                                                  commit=commit)),
                                                 indent=2, default=str))
    files["lineage"] = write_lineage(work_dir, "compare", {"a": [comparison.a.ref.dataset.lineage()],
                                                           "b": [comparison.b.ref.dataset.lineage()]},
                                     written=dict(branch=branch, commit=commit, rows=len(comparison.pairs)))
    return CompareReport(comparison, branch, commit, files)


def _write_branch(path: str, branch: str, comparison: Comparison, record: dict) -> str:
    from .error_analysis import evaluate_predictions, write_matches
    from .predict import discard_branch, open_writable, write_predictions

    writable = open_writable(path, "compare")
    target = writable.branches[comparison.b.ref.branch].open().branch(branch).open()
    try:
        b = comparison.b
        if b.source["kind"] == "on the fly":  # the branch gets B's predictions and matches too
            evaluation = evaluate_predictions(b.results, comparison.classes, record["iou_thr"], record["max_dets"],
                                              classwise=record["classwise"])
            write_predictions(target, b.results, comparison.classes)
            write_matches(target, b.results, evaluation)
        write_comparison(target, comparison)
        totals = dict(zip(ROW_COLUMNS, np.sum([r["counts"] for r in comparison.per_row.values()], 0).tolist()))
        target.commit(with_record(f"lakedet compare: A {comparison.a.ref.name}@{comparison.a.ref.commit} -> B "
                                  f"{b.ref.name}@{b.ref.commit}, {len(comparison.pairs)} rows: "
                                  + ", ".join(f"{k} {v}" for k, v in totals.items()), record))
    except BaseException:
        discard_branch(writable, branch)
        raise
    return str(target.version)
