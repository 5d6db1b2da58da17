"""Label-issue benchmark: lakedet's label-issue ranking against cleanlab 2.9's ``object_detection.rank``.

One command (``python benchmarks/label_issues.py``; needs ``pip install -r benchmarks/requirements-label-issues.txt -c constraints.txt``)
prints a table and writes ``benchmarks/results/label_issues.json``.

1. Synthetic shapes (the demo's renderer: 128 px, seed 1) on ``main``; a copy of the labels with
   known errors on the branch ``noisy``: 5 % of the boxes dropped, 5 % given another class, 5 %
   shifted by 30-50 % of their width and height, 3 % spurious boxes added on background.
2. Out-of-sample predictions, 2 folds: the demo RetinaNet-R18 is trained on the noisy labels of
   the even rows and predicts the odd ones, and the other way round (``lakedet predict --query``,
   one prediction branch per fold). The models are kept small for 2 CPU cores: ``--epochs``
   (default 10) instead of the demo's 12; training dominates the run time.
3. ``lakedet issues`` scores the noisy labels from both prediction branches; cleanlab's
   ``compute_overlooked_box_scores`` / ``compute_swap_box_scores`` / ``compute_badloc_box_scores``
   score the same predictions and labels. Per injected kind: precision@k (k = number injected) and
   AUROC of each ranking. cleanlab has no spurious-box score: its lowest per-box label score
   (min of swap and bad-location) stands in.

Steps 1-2 are cached in ``--work`` (a marker records the settings), so reruns only score.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

KINDS = ("missing", "swap", "localisation", "spurious")


def inject_errors(rows, seed: int = 7, drop=0.05, swap=0.05, shift=0.05, spurious=0.03, size: int = 128):
    """Noisy copies of ``rows``' labels and what was injected.

    Returns:
        (noisy rows as (boxes LTWH, labels) per row, injected: dict kind -> list of (row, box index
        in the noisy row) for swap / localisation / spurious, and (row, x1y1x2y2 box) for missing).
    """
    from lakedet.evaluation.matching import box_iou
    from lakedet.schema.boxes import BoxMode, convert_boxes

    rng = np.random.default_rng(seed)
    boxes = [(r, i) for r, row in enumerate(rows) for i in range(len(row.labels))]
    order = rng.permutation(len(boxes))
    n_drop, n_swap, n_shift = (int(round(p * len(boxes))) for p in (drop, swap, shift))
    chosen = {"drop": {boxes[k] for k in order[:n_drop]},
              "swap": {boxes[k] for k in order[n_drop:n_drop + n_swap]},
              "shift": {boxes[k] for k in order[n_drop + n_swap:n_drop + n_swap + n_shift]}}
    injected = {kind: [] for kind in KINDS}
    noisy = []
    for r, row in enumerate(rows):
        out_boxes, out_labels = [], []
        for i, (box, label) in enumerate(zip(row.boxes, row.labels)):
            if (r, i) in chosen["drop"]:
                injected["missing"].append((r, convert_boxes([box], BoxMode.LTWH, BoxMode.LTRB)[0]))
                continue
            box, label = box.copy(), int(label)
            if (r, i) in chosen["swap"]:
                label = int((label + rng.integers(1, 3)) % 3)
                injected["swap"].append((r, len(out_labels)))
            if (r, i) in chosen["shift"]:
                fraction = rng.uniform(0.3, 0.5, 2) * rng.choice([-1, 1], 2)
                box[:2] = np.clip(box[:2] + fraction * box[2:], 0, size - box[2:])
                injected["localisation"].append((r, len(out_labels)))
            out_boxes.append(box)
            out_labels.append(label)
        noisy.append([out_boxes, out_labels])
    n_spurious = int(round(spurious * len(boxes)))
    while n_spurious:
        r = int(rng.integers(len(rows)))
        side = float(rng.integers(24, 61))
        x, y = rng.uniform(0, size - side, 2)
        ltrb = np.asarray([[x, y, x + side, y + side]])
        existing = convert_boxes(np.asarray(rows[r].boxes).reshape(-1, 4), BoxMode.LTWH, BoxMode.LTRB)
        if len(existing) and box_iou(ltrb, existing).max() > 0:
            continue  # on background only
        noisy[r][0].append(np.asarray([x, y, side, side], np.float32))
        noisy[r][1].append(int(rng.integers(3)))
        injected["spurious"].append((r, len(noisy[r][1]) - 1))
        n_spurious -= 1
    return [(np.asarray(b, np.float32).reshape(-1, 4), np.asarray(lab, np.uint32)) for b, lab in noisy], injected


def fold_query(fold: int, folds: int = 2, keep: bool = True) -> str:
    """The TQL query of a fold's rows (``keep``) or of the other rows."""
    return f"SELECT * WHERE ROW_NUMBER() % {folds} {'==' if keep else '!='} {fold}"


def prepare(work: Path, images: int, epochs: int, seed: int = 1) -> dict:
    """Steps 1-2 (cached): the dataset, the noisy branch, two fold models and their prediction branches."""
    from mmengine.config import Config

    from lakedet.engine.runner import build_runner
    from lakedet.tools.demo import DEMO_CONFIG
    from lakedet.tools.predict import predict_to_branch
    from lakedet.tools.synthetic import render_rows, write_dataset

    marker = dict(images=images, epochs=epochs, seed=seed, version=1)
    done = work / "prepared.json"
    if done.exists() and json.loads(done.read_text()).get("marker") == marker:
        return json.loads(done.read_text())
    import shutil

    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    path = str(work / "shapes")
    rows = render_rows(images, size=128, seed=seed)
    ds = write_dataset(path, rows, message="clean labels")
    noisy, injected = inject_errors(rows)
    branch = ds.branch("noisy").open()
    branch["boxes"][0:len(rows)] = [b for b, _ in noisy]
    branch["labels"][0:len(rows)] = [lab for _, lab in noisy]
    branch.commit("injected label errors (benchmarks/label_issues.py)")
    noisy_commit = str(branch.version)
    del branch, ds
    import deeplake

    timings = {}
    for fold in range(2):
        cfg = Config.fromfile(str(DEMO_CONFIG))
        # the noisy branch's rows of the other fold (lakedet opens commits of the current branch only)
        root = deeplake.open_read_only(path)
        train_rows = root.branches["noisy"].open().query(fold_query(fold, keep=False))
        cfg.val_dataloader.dataset.deeplake_path = path
        cfg.test_dataloader = cfg.val_dataloader
        cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
        cfg.train_cfg = dict(type="EpochBasedTrainLoop", max_epochs=epochs, val_interval=epochs + 1)
        cfg.param_scheduler[1].end = epochs
        cfg.default_hooks.checkpoint.interval = epochs
        cfg.work_dir = str(work / f"fold{fold}")
        started = time.monotonic()
        build_runner(cfg, ds_train=train_rows).train()
        timings[f"train_fold{fold}_s"] = time.monotonic() - started
        started = time.monotonic()
        config = str(work / f"fold{fold}" / "config.py")
        cfg.dump(config)
        predict_to_branch(config, str(work / f"fold{fold}" / f"epoch_{epochs}.pth"), path, f"pred-fold{fold}",
                          query=fold_query(fold), score_thr=0.05, num_workers=0)
        timings[f"predict_fold{fold}_s"] = time.monotonic() - started
    prepared = dict(marker=marker, path=path, noisy_commit=noisy_commit, timings=timings,
                    injected={k: [(int(r), np.asarray(v).tolist()) for r, v in items] for k, items in injected.items()})
    done.write_text(json.dumps(prepared, indent=2))
    return prepared


def prediction_branches(prepared: dict) -> list[str]:
    """The fold prediction branches, (re)made with this lakedet's ``predict`` when their last commit
    is not one of ``lakedet predict`` (its message is the lineage: which rows each fold predicted)."""
    import deeplake

    from lakedet.tools.evaluated import last_message, open_ref
    from lakedet.tools.predict import predict_to_branch

    path, epochs = prepared["path"], prepared["marker"]["epochs"]
    names = []
    for fold in range(2):
        name = f"pred-fold{fold}"
        root = deeplake.open(path)
        if name in list(root.branches.names()):
            if last_message(open_ref(path, name)).startswith("lakedet predict:"):
                names.append(name)
                continue
            root.branches[name].delete()
        del root
        work = Path(path).parent / f"fold{fold}"
        predict_to_branch(str(work / "config.py"), str(work / f"epoch_{epochs}.pth"), path, name,
                          query=fold_query(fold), score_thr=0.05, num_workers=0)
        names.append(name)
    return names


def ranking_quality(scores: np.ndarray, positive: np.ndarray) -> tuple[float, float]:
    """(precision@k with k = number of positives, AUROC) of ``scores`` (higher = more suspicious)."""
    from sklearn.metrics import roc_auc_score

    k = int(positive.sum())
    if k == 0 or k == len(positive):
        return float("nan"), float("nan")
    order = np.argsort(-scores, kind="stable")
    return float(positive[order[:k]].mean()), float(roc_auc_score(positive, scores))


def score_both(prepared: dict, branches: list[str], repeats: int = 3) -> dict:
    """lakedet's and cleanlab's scores of the noisy labels with the same out-of-sample predictions."""
    import deeplake
    from cleanlab.object_detection import rank

    from lakedet.evaluation.matching import box_iou
    from lakedet.tools.label_issues import issues_to_branch, score_rows

    path = prepared["path"]
    root = deeplake.open(path)
    if "issues" in list(root.branches.names()):
        root.branches["issues"].delete()
    del root
    report = issues_to_branch(path, branches, "issues", labels="noisy", work_dir=str(Path(path).parent / "issues"))
    results, ours = report.results, report.scores
    rows = sorted(results)
    labels = [dict(bboxes=results[r].gt_boxes.astype(np.float64), labels=results[r].gt_labels.astype(int))
              for r in rows]
    # cleanlab's predictions: per image, per class (x1, y1, x2, y2, score); scores come back in that order
    order = [np.concatenate([np.flatnonzero(results[r].labels == c) for c in range(3)]) for r in rows]
    predictions = [[np.concatenate([results[r].boxes[results[r].labels == c],
                                    results[r].scores[results[r].labels == c, None]], 1).astype(np.float64)
                    for c in range(3)] for r in rows]
    timings = dict(lakedet=[], cleanlab=[])
    for _ in range(repeats):
        started = time.perf_counter()
        score_rows(results)
        timings["lakedet"].append(time.perf_counter() - started)
        started = time.perf_counter()
        theirs = dict(missing=rank.compute_overlooked_box_scores(labels=labels, predictions=predictions),
                      swap=rank.compute_swap_box_scores(labels=labels, predictions=predictions),
                      localisation=rank.compute_badloc_box_scores(labels=labels, predictions=predictions))
        timings["cleanlab"].append(time.perf_counter() - started)
    injected = prepared["injected"]
    out = {}
    # labels: one entry per ground-truth box of the noisy labels
    gt_index = [(r, b) for r in rows for b in range(len(results[r].gt_labels))]
    for kind, column in (("swap", 1), ("localisation", 2), ("spurious", 0)):
        positive = np.asarray([(r, b) in {tuple(x) for x in injected[kind]} for r, b in gt_index])
        lakedet = np.asarray([ours[r].box_scores[b, column] for r, b in gt_index], float)
        if kind == "spurious":  # cleanlab has no spurious-box score: its lowest per-box label score
            per_image = [np.fmin(s, l) for s, l in zip(theirs["swap"], theirs["localisation"])]
        else:
            per_image = theirs[kind]
        cleanlab = 1 - np.nan_to_num(np.concatenate(per_image).astype(float), nan=1.0)
        out[kind] = dict(k=int(positive.sum()), candidates=len(positive), lakedet=ranking_quality(lakedet, positive),
                         cleanlab=ranking_quality(cleanlab, positive))
    # missing: one entry per prediction; positive when it covers a dropped box (IoU >= 0.5)
    dropped: dict = {}
    for r, box in injected["missing"]:
        dropped.setdefault(r, []).append(box)
    positive, lakedet, cleanlab = [], [], []
    for k, r in enumerate(rows):
        boxes = results[r].boxes[order[k]]
        hits = (box_iou(boxes, np.asarray(dropped[r], np.float64)).max(1) >= 0.5 if r in dropped and len(boxes)
                else np.zeros(len(boxes), bool))
        positive += hits.tolist()
        lakedet += ours[r].missing[order[k]].tolist()
        cleanlab += (1 - np.nan_to_num(np.asarray(theirs["missing"][k], float), nan=1.0)).tolist()
    positive = np.asarray(positive)
    out["missing"] = dict(k=int(positive.sum()), injected=len(injected["missing"]), candidates=len(positive),
                          lakedet=ranking_quality(np.asarray(lakedet), positive),
                          cleanlab=ranking_quality(np.asarray(cleanlab), positive))
    return dict(kinds=out, timings=timings, rows=len(rows))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--work", default="/tmp/lakedet-label-issues")
    parser.add_argument("--prepare-only", action="store_true", help="steps 1-2 only")
    args = parser.parse_args()
    prepared = prepare(Path(args.work), args.images, args.epochs)
    print(json.dumps(prepared["timings"]))
    if args.prepare_only:
        return 0
    result = score_both(prepared, prediction_branches(prepared))
    table = []
    met = True
    for kind in KINDS:
        r = result["kinds"][kind]
        ours, theirs = r["lakedet"], r["cleanlab"]
        met &= ours[0] >= theirs[0] and ours[1] >= theirs[1]
        table.append((kind, r["k"], r["candidates"], ours[0], theirs[0], ours[1], theirs[1]))
    headers = ("kind", "k", "candidates", "P@k lakedet", "P@k cleanlab", "AUROC lakedet", "AUROC cleanlab")
    print(" | ".join(headers))
    for row in table:
        print(" | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row))
    t = result["timings"]
    spread = {k: (float(np.median(v)), float(min(v)), float(max(v))) for k, v in t.items()}
    print("scoring time, median (min-max) of %d runs: " % len(t["lakedet"])
          + ", ".join(f"{k} {m:.3f} s ({lo:.3f}-{hi:.3f})" for k, (m, lo, hi) in spread.items())
          + f"; ratio cleanlab/lakedet {spread['cleanlab'][0] / spread['lakedet'][0]:.1f}")
    print(f"target (lakedet >= cleanlab in P@k and AUROC on every kind): {'met' if met else 'NOT met'}")
    out = HERE / "results" / "label_issues.json"
    out.write_text(json.dumps(dict(machine=dict(python=platform.python_version(), processor=platform.processor()),
                                   args=vars(args), prepare_timings=prepared["timings"],
                                   injected={k: len(v) for k, v in prepared["injected"].items()},
                                   rows=result["rows"], table=[dict(zip(headers, row)) for row in table],
                                   scoring_seconds=t, target_met=bool(met)), indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
