"""PNG plots of an error analysis (matplotlib figures drawn off-screen): per-class PR curves, the confusion
matrix and the score-threshold sweep. Figure sizes are fixed so the files have a known size in pixels."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["PR_CURVES_SIZE", "confusion_matrix_size", "plot_pr_curves", "plot_confusion_matrix", "SWEEP_PANEL",
           "threshold_sweep_size", "plot_threshold_sweep"]

_DPI = 100
#: (width, height) of ``pr_curves.png`` in pixels.
PR_CURVES_SIZE = (800, 600)
#: (width, height) of one class's panel of ``threshold_sweep.png``, 3 panels a row.
SWEEP_PANEL = (320, 260)


def confusion_matrix_size(num_classes: int) -> tuple[int, int]:
    """(width, height) of ``confusion_matrix.png`` in pixels: square, 600 px or 60 px per row."""
    side = max(600, 200 + 60 * (num_classes + 1))
    return side, side


def _figure(size: tuple[int, int]):
    from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global state

    return Figure(figsize=(size[0] / _DPI, size[1] / _DPI), dpi=_DPI)


def plot_pr_curves(curves: Sequence, classes: Sequence[str], path: str, iou_thr: float) -> str:
    """One line per class: COCO's interpolated precision at the 101 recall points, AP in the legend."""
    from .matching import RECALL_POINTS

    fig = _figure(PR_CURVES_SIZE)
    ax = fig.add_subplot()
    for name, curve in zip(classes, curves):
        if curve.gts:
            ax.plot(RECALL_POINTS, curve.precision, label=f"{name} (AP {curve.ap:.3f})")
    aps = [c.ap for c in curves if c.gts]
    ax.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="recall", ylabel="precision",
           title=f"precision-recall per class, IoU >= {iou_thr:g}"
                 + (f", mAP {np.mean(aps):.3f}" if aps else ", no ground truth"))
    ax.grid(alpha=0.3)
    if aps:
        ax.legend(loc="lower left", fontsize="small")
    fig.savefig(path, dpi=_DPI)
    return path


def plot_confusion_matrix(counts: np.ndarray, classes: Sequence[str], path: str, iou_thr: float,
                          score_thr: float) -> str:
    """Ground truth (rows) against predictions (columns), ``missing`` last (a prediction matching no
    box: last row; a box no prediction matched: last column); cells coloured by the share of their
    ground-truth row and labelled with the count."""
    from .matching import confusion_labels

    labels = confusion_labels(classes)
    fig = _figure(confusion_matrix_size(len(classes)))
    ax = fig.add_subplot()
    totals = counts.sum(1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros(counts.shape, float), where=totals > 0)
    image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the ground-truth row")
    ticks = np.arange(len(labels))
    ax.set_xticks(ticks, labels, rotation=45, ha="right")
    ax.set_yticks(ticks, labels)
    ax.set(xlabel="prediction", ylabel="ground truth",
           title=f"confusion matrix (class-agnostic match, IoU >= {iou_thr:g}, score >= {score_thr:g})")
    if len(labels) <= 30:
        for (i, j), value in np.ndenumerate(counts):
            ax.text(j, i, str(value), ha="center", va="center", fontsize="small",
                    color="white" if shares[i, j] > 0.5 else "black")
    fig.tight_layout()
    fig.savefig(path, dpi=_DPI)
    return path


def threshold_sweep_size(panels: int) -> tuple[int, int]:
    """(width, height) of ``threshold_sweep.png`` in pixels for ``panels`` classes (3 a row)."""
    columns = min(3, max(panels, 1))
    return SWEEP_PANEL[0] * columns, SWEEP_PANEL[1] * -(-max(panels, 1) // 3)


def plot_threshold_sweep(sweep: dict, path: str, iou_thr: float) -> str:
    """One panel per class of ``breakdown.threshold_sweep``'s result (``all`` last): precision,
    recall and F1 against the score threshold, the best-F1 threshold marked."""
    names = list(sweep)
    size = threshold_sweep_size(len(names))
    fig = _figure(size)
    columns = min(3, len(names))
    for k, name in enumerate(names):
        ax = fig.add_subplot(-(-len(names) // 3), columns, k + 1)
        entry = sweep[name]
        for metric in ("precision", "recall", "f1"):
            values = np.asarray([np.nan if v is None else v for v in entry[metric]], float)
            ax.plot(entry["thresholds"], values, label=metric)
        best = entry["best_threshold"]
        if best is not None:
            ax.axvline(best, color="grey", linestyle="--", linewidth=1)
        ax.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="score threshold",
               title=f"{name}: best F1 {entry['best_f1']:.2f} at {best:g}" if best is not None
               else f"{name}: no ground truth")
        ax.title.set_fontsize("small")
        ax.grid(alpha=0.3)
        if k == 0:
            ax.legend(loc="lower left", fontsize="x-small")
    fig.suptitle(f"precision, recall and F1 by score threshold, IoU >= {iou_thr:g}", fontsize="medium")
    fig.tight_layout()
    fig.savefig(path, dpi=_DPI)
    return path
