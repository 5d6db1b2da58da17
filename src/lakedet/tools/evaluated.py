"""Reading evaluations back: a ref (branch, or branch@commit) of a dataset, its ground truth, the
predictions ``lakedet predict`` / ``lakedet errors`` wrote on it (or a model's, on the fly), and
which rows of two refs are the same row.

What ``lakedet compare`` and ``lakedet issues`` share. Nothing here writes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import SchemaError, SourceError
from ..schema.boxes import BoxMode, convert_boxes
from .predict import RowPrediction

__all__ = ["Ref", "open_ref", "ground_truth", "predicted_rows", "last_message", "with_record", "commit_record",
           "stored_predictions", "model_predictions", "row_identity", "json_ready", "PRED_COLUMNS", "RECORD_MARK"]

PRED_COLUMNS = ("pred_boxes", "pred_labels", "pred_scores")
#: What separates a commit message's summary from its JSON record (``with_record``).
RECORD_MARK = "; record "


@dataclass
class Ref:
    """One version of a dataset opened read-only: ``branch`` at ``commit`` (its head unless
    ``at_head`` is False), and the ``DeepLakeDetDataset`` over its rows (no pipeline)."""

    path: str
    branch: str
    commit: str
    at_head: bool
    root: Any = field(repr=False)
    opened: Any = field(repr=False)
    dataset: Any = field(repr=False)

    @property
    def name(self) -> str:
        return self.branch if self.at_head else f"{self.branch}@{self.commit}"

    @property
    def columns(self) -> set[str]:
        return {c.name for c in self.opened.schema.columns}


def open_ref(path: str, ref: str, pipeline: list | None = None) -> Ref:
    """Open ``ref`` of ``path`` read-only: ``BRANCH`` (its latest commit) or ``BRANCH@COMMIT``
    (Deep Lake 4 numbers commits per branch, so a commit id is looked up in its branch).

    Raises:
        SourceError: no such branch or commit (the message lists what exists).
    """
    import deeplake

    from ..data.dataset import DeepLakeDetDataset

    try:
        root = deeplake.open_read_only(path)
    except Exception as exc:
        raise SourceError(f"cannot open {path!r}: {exc}") from exc
    branch, _, commit = ref.partition("@")
    names = list(root.branches.names())
    if branch not in names:
        raise SourceError(f"{ref!r}: no branch {branch!r} in {path!r}; branches: {names} (give BRANCH or BRANCH@COMMIT)")
    opened = root.branches[branch].open()
    head = str(opened.version)
    if commit and commit != head:
        ids = [v.id for v in opened.history]
        if commit not in ids:
            raise SourceError(f"{ref!r}: branch {branch!r} of {path!r} has no commit {commit!r}; its commits: "
                              f"{', '.join(reversed(ids[-10:]))}")
        opened = opened.history[commit].open()
    dataset = DeepLakeDetDataset(deeplake_dataset=opened, test_mode=True, pipeline=pipeline or [])
    return Ref(path, branch, commit or head, not commit or commit == head, root, opened, dataset)


def ground_truth(ref: Ref, rows) -> dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]]:
    """``row -> (boxes x1y1x2y2, labels, crowd, areas or None)`` as lakedet's dataset reads them."""
    out = {}
    for row in rows:
        instances = ref.dataset.get_data_info(row)["instances"]
        areas = [i.get("area") for i in instances]
        out[row] = (np.asarray([i["bbox"] for i in instances], np.float32).reshape(-1, 4),
                    np.asarray([i["bbox_label"] for i in instances], np.int64),
                    np.asarray([bool(i["ignore_flag"]) for i in instances], bool),
                    None if not areas or any(a is None for a in areas) else np.asarray(areas, np.float64))
    return out


def predicted_rows(ref: Ref) -> list[int]:
    """The rows a ``lakedet errors`` / ``predict`` branch predicted: those with ``eval_tp`` >= 0
    (errors), else those whose ``pred_scores`` were written (a row ``predict --query`` left out
    reads back as None; a row predicted with no box as an empty array)."""
    if "eval_tp" in ref.columns:
        return [int(r) for r in np.flatnonzero(np.asarray(ref.opened["eval_tp"][:], np.int64).reshape(-1) >= 0)]
    scores = ref.opened["pred_scores"]
    return [row for row in range(len(ref.opened)) if scores[row] is not None]


def last_message(ref: Ref) -> str:
    """The message of the ref's commit (what ``predict`` / ``errors`` record: config, checkpoint and
    its SHA-256, source commit, selection). Deep Lake 4.7.4's dataset metadata is shared by all
    branches, so per-branch records live in commit messages."""
    found = [v.message for v in ref.opened.history if v.id == ref.commit]
    return (found or [""])[-1] or ""


def with_record(summary: str, record: dict) -> str:
    """A commit message: ``summary``, then ``record`` as JSON (read back by ``commit_record``).

    Per-branch records go here, not into dataset metadata: Deep Lake 4.7.4 shares a dataset's
    metadata across all its branches, so a key written on a result branch would show on the
    user's source branch too."""
    return summary + RECORD_MARK + json.dumps(record, default=str)


def json_ready(value):
    """``value`` with NaN floats as None, tuples as lists (nested dicts and lists too), for ``json.dumps``."""
    if isinstance(value, float):
        return None if value != value else value
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    return value


def commit_record(ref: Ref) -> dict | None:
    """The JSON record ``with_record`` put in the message of the ref's commit, or None."""
    message = last_message(ref)
    _, mark, record = message.rpartition(RECORD_MARK)
    if not mark:
        return None
    try:
        return json.loads(record)
    except ValueError:
        return None


def stored_predictions(ref: Ref, what: str = "A") -> dict[int, RowPrediction]:
    """The predictions stored on ``ref`` (``lakedet predict`` / ``errors`` columns) with the ground
    truth of the same rows; a ``lakedet errors`` branch's rows outside its selection (``eval_tp``
    -1) are left out.

    Raises:
        SchemaError: ``ref`` has no ``pred_*`` columns.
    """
    missing = [c for c in PRED_COLUMNS if c not in ref.columns]
    if missing:
        raise SchemaError(f"{what} = {ref.name!r} of {ref.path!r} has no column {', '.join(map(repr, missing))}: "
                          "give a branch written by `lakedet errors` or `lakedet predict`, or a model to evaluate "
                          "on the fly")
    rows = predicted_rows(ref)
    boxes, labels, scores = (ref.opened[c] for c in PRED_COLUMNS)
    gt = ground_truth(ref, rows)
    return {row: RowPrediction(convert_boxes(np.asarray(boxes[row], np.float32).reshape(-1, 4), BoxMode.LTWH,
                                             BoxMode.LTRB, np.float32),
                               np.asarray(labels[row], np.int64).reshape(-1),
                               np.asarray(scores[row], np.float32).reshape(-1), None, *gt[row])
            for row in rows}


def model_predictions(ref: Ref, config: str, checkpoint: str, score_thr: float = 0.05, batch_size: int = 4,
                      num_workers: int = 0, device: str | None = None, progress=None,
                      cfg_options: dict | None = None) -> tuple[dict[int, RowPrediction], dict]:
    """Run ``checkpoint`` over every row of ``ref`` (nothing written); return the predictions with
    the rows' ground truth, and a record of the model (config, checkpoint, its SHA-256)."""
    from ..data.dataset import DeepLakeDetDataset
    from .predict import DatasetRows, check_checkpoint, iter_predictions, load_config, prepare_model, sha256_of

    check_checkpoint(checkpoint)
    cfg, pipeline = load_config(config, cfg_options)
    dataset = DeepLakeDetDataset(deeplake_dataset=ref.opened, test_mode=True, pipeline=pipeline)
    model = prepare_model(cfg, checkpoint, device, False)
    results = dict(iter_predictions(model, DatasetRows(dataset), batch_size, score_thr, progress, num_workers))
    gt = ground_truth(ref, results)
    for row, r in results.items():
        r.gt_boxes, r.gt_labels, r.gt_crowd, r.gt_area = gt[row]
    return results, dict(config=str(config), checkpoint=str(checkpoint), checkpoint_sha256=sha256_of(checkpoint),
                         score_thr=score_thr)


def _image_digests(ref: Ref) -> list[str]:
    column = ref.dataset.tensor_map.img
    n = len(ref.opened)
    out = []
    for start in range(0, n, 256):  # whole chunks per slice (see FACTS: get_bytes(slice))
        out += [hashlib.sha256(bytes(b)).hexdigest() for b in ref.opened[column].get_bytes(slice(start, min(n, start + 256)))]
    return out


def row_identity(a: Ref, b: Ref, id_column: str | None = None) -> list[tuple[int, int]]:
    """Pairs ``(row of a, row of b)`` of the same row in both refs.

    With ``id_column``, rows with equal values in that column are the same row (rows of one ref
    whose id the other lacks are left out). Without it, row ``i`` is row ``i``, after a check:
    both refs have as many rows and each row's stored image is byte-identical.

    Raises:
        SchemaError: ``id_column`` is missing or holds a value twice.
        SourceError: without ``id_column``, the row counts or a row's image differ (the message names the row).
    """
    if id_column:
        ids = []
        for what, ref in (("A", a), ("B", b)):
            if id_column not in ref.columns:
                raise SchemaError(f"--id-column {id_column!r}: {what} = {ref.name!r} has no such column; columns: "
                                  f"{sorted(ref.columns)}")
            values = [v.item() if hasattr(v, "item") else v
                      for v in np.asarray(ref.opened[id_column][:]).reshape(len(ref.opened), -1)[:, 0]]
            seen: dict = {}
            for row, value in enumerate(values):
                if value in seen:
                    raise SchemaError(f"--id-column {id_column!r}: {what} = {ref.name!r} has id {value!r} in rows "
                                      f"{seen[value]} and {row}; row ids must be unique")
                seen[value] = row
            ids.append(seen)
        return sorted(((row, ids[1][value]) for value, row in ids[0].items() if value in ids[1]),
                      key=lambda pair: pair[1])
    if len(a.opened) != len(b.opened):
        raise SourceError(f"A = {a.name!r} has {len(a.opened)} rows, B = {b.name!r} {len(b.opened)}: rows were added "
                          "or removed, so row i is not row i; give --id-column with a column identifying each row")
    for row, (x, y) in enumerate(zip(_image_digests(a), _image_digests(b))):
        if x != y:
            raise SourceError(f"row {row}: its image differs between A = {a.name!r} and B = {b.name!r}, so rows are "
                              "not identified by their index; give --id-column with a column identifying each row")
    return [(row, row) for row in range(len(a.opened))]
