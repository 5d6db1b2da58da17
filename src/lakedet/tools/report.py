"""``lakedet report``: one offline HTML page about a dataset, an evaluation of it and a comparison.

The report is a folder: ``index.html`` (tables, CSS bar charts, a little JavaScript for sorting
tables and for the confidence slider) and ``assets/`` (thumbnails as JPEG files, the PR curves and
the confusion matrix as PNG files). It opens from ``file://``: nothing is fetched from a network.

What each section reuses: ``inspection.inspect_source`` (the data's statistics), ``show.render_cells``
(the drawn thumbnails), ``evaluated`` + ``error_analysis`` (the evaluation a ``lakedet errors``
branch holds, recomputed from its stored predictions), ``evaluation.breakdown.threshold_counts``
(the counts the slider recomputes precision, recall and F1 from), ``compare`` (the deltas and the
label diff of ``lakedet compare``). Memory is bounded by the rows' boxes, not their images: the
galleries are capped (``SAMPLES``, ``GALLERY``) and each thumbnail is written as soon as it is drawn.
"""

from __future__ import annotations

import html
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError, SchemaError
from ..source import SourceSpec

__all__ = ["SAMPLES", "GALLERY", "THUMBNAIL", "SLIDER_STEPS", "ReportFiles", "write_report", "LoadedEvaluation", "load_evaluation",
           "worst_rows", "slider_counts", "histogram"]

#: Rows drawn in the data section's sample grid (evenly spaced over the selection).
SAMPLES = 24
#: Rows shown per gallery of the evaluation and comparison sections.
GALLERY = 12
#: Longest side of a thumbnail in pixels (smaller images are kept as they are).
THUMBNAIL = 320
#: The confidence slider's positions: thresholds 0, 1/SLIDER_STEPS, ..., 1.
SLIDER_STEPS = 100


@dataclass
class ReportFiles:
    """What ``write_report`` wrote: the page, the number of images in ``assets/``, the sections,
    the folder's size in bytes and the seconds it took."""

    index: Path
    images: int
    sections: list[str]
    size_bytes: int
    seconds: float


def histogram(values, edges) -> list[tuple[str, int]]:
    """``(label, count)`` per bin of ``edges`` (the last bin open-ended: ``>= edges[-1]``)."""
    values = np.asarray(values, float).reshape(-1)
    edges = [float(e) for e in edges]
    counts = np.histogram(values, bins=[*edges, np.inf])[0]
    labels = [f"{a:g}-{b:g}" for a, b in zip(edges, edges[1:])] + [f">= {edges[-1]:g}"]
    return list(zip(labels, (int(c) for c in counts)))


def worst_rows(counts: dict[int, tuple[int, int, int]], limit: int,
               issue_scores: dict[int, float] | None = None) -> dict[str, list[int]]:
    """The rows of each gallery, worst first, at most ``limit`` each.

    Args:
        counts: row -> (TP, FP, FN) of the evaluated rows.
        issue_scores: row -> its highest label-issue score (``lakedet issues``), when present.

    Returns:
        ``{"most false positives": rows, "most false negatives": rows, "lowest F1": rows}`` (rows
        with at least one such error / box), and ``"highest label-issue score"`` with ``issue_scores``.
    """
    from ..evaluation.matching import f1_score

    rows = sorted(counts)
    out = {"most false positives": sorted((r for r in rows if counts[r][1] > 0), key=lambda r: -counts[r][1]),
           "most false negatives": sorted((r for r in rows if counts[r][2] > 0), key=lambda r: -counts[r][2]),
           "lowest F1": sorted((r for r in rows if sum(counts[r]) > 0 and counts[r][0] < sum(counts[r])),
                               key=lambda r: (f1_score(*counts[r]), -sum(counts[r][1:])))}
    if issue_scores:
        out["highest label-issue score"] = sorted(issue_scores, key=lambda r: -issue_scores[r])
    return {name: found[:limit] for name, found in out.items()}


def slider_counts(breakdown) -> dict:
    """What the page's confidence slider recomputes from: the thresholds, and per class (and
    ``all``) the true and false positives scored >= each threshold and the ground-truth count."""
    from ..evaluation.breakdown import threshold_counts

    grid = np.round(np.linspace(0, 1, SLIDER_STEPS + 1), 4)
    counts = threshold_counts(breakdown, grid)
    return dict(thresholds=grid.tolist(),
                classes={name: dict(tp=[int(v) for v in tp], fp=[int(v) for v in fp], gts=int(gts))
                         for name, (tp, fp, gts) in counts.items()})


@dataclass
class LoadedEvaluation:
    """A ``lakedet errors`` branch read back: its ref, the evaluation recomputed from its stored
    predictions with the settings its commit recorded, and that record."""

    ref: object
    evaluation: object
    record: dict


def load_evaluation(path: str, branch: str) -> LoadedEvaluation:
    """Read the ``lakedet errors`` branch ``branch`` of ``path`` (nothing is written).

    Raises:
        SourceError: no such branch (the message lists the branches).
        SchemaError: the branch lacks the columns ``lakedet errors`` writes.
    """
    from .error_analysis import evaluate_predictions
    from .evaluated import commit_record, open_ref, stored_predictions

    ref = open_ref(path, branch)
    missing = [c for c in ("pred_boxes", "pred_scores", "pred_match", "eval_tp") if c not in ref.columns]
    if missing:
        raise SchemaError(f"--errors {branch!r}: branch {ref.name!r} of {path!r} has no column "
                          f"{', '.join(map(repr, missing))}; give a branch written by `lakedet errors` "
                          f"(branches: {list(ref.root.branches.names())})")
    record = commit_record(ref) or {}
    results = stored_predictions(ref, "--errors")
    evaluation = evaluate_predictions(results, list(ref.dataset.metainfo["classes"]), record.get("iou_thr", 0.5),
                                      record.get("max_dets", 100), classwise=record.get("classwise", True),
                                      selected=record.get("classes"))
    return LoadedEvaluation(ref, evaluation, record)


def _cell(value) -> str:
    if isinstance(value, float):
        return "-" if value != value else f"{value:.3f}"
    return html.escape(str(value))


def _table(headers, rows, table_id: str | None = None, sortable: bool = False) -> str:
    attrs = (f' id="{table_id}"' if table_id else "") + (' class="sortable"' if sortable else "")
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    head = f"<thead><tr>{head}</tr></thead>" if any(headers) else ""
    body = "".join("<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f'<div class="wide"><table{attrs}>{head}<tbody>{body}</tbody></table></div>'


def _bars(pairs, table_id: str | None = None, what: str = "count") -> str:
    """A bar chart as a table: label, count, a bar as wide as its share of the largest count."""
    top = max([c for _, c in pairs] + [1])
    attrs = f' id="{table_id}"' if table_id else ""
    body = "".join(f'<tr><td>{html.escape(str(label))}</td><td class="n">{count}</td><td class="barcell">'
                   f'<div class="bar" style="width:{100 * count / top:.1f}%"></div></td></tr>' for label, count in pairs)
    return (f'<table{attrs} class="bars"><thead><tr><th></th><th>{html.escape(what)}</th><th></th></tr></thead>'
            f"<tbody>{body}</tbody></table>")


def _code(text: str) -> str:
    return f"<pre><code>{html.escape(text)}</code></pre>"


class _Assets:
    """Writes thumbnails into ``assets/`` one at a time and counts them."""

    def __init__(self, out: Path, progress=None):
        self.folder = out / "assets"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.images = 0
        self.progress = progress

    def thumbnails(self, cells, prefix: str, total: int) -> dict[int, str]:
        """Write each ``(row, RGB image)`` of ``cells`` as ``assets/<prefix>_<row>.jpg``; row -> relative path."""
        import cv2

        written = {}
        for done, (row, image) in enumerate(cells, 1):
            scale = THUMBNAIL / max(image.shape[:2])
            if scale < 1:
                image = cv2.resize(image, (round(image.shape[1] * scale), round(image.shape[0] * scale)),
                                   interpolation=cv2.INTER_AREA)
            name = f"{prefix}_{row:07d}.jpg"
            cv2.imwrite(str(self.folder / name), np.ascontiguousarray(image[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 85])
            written[row] = f"assets/{name}"
            self.images += 1
            if self.progress is not None:
                self.progress(done, total)
        return written


def _gallery(items, gallery_id: str) -> str:
    """``items``: (image path or list of (label, path), caption)."""
    figures = []
    for images, caption in items:
        images = images if isinstance(images, list) else [("", images)]
        pictures = "".join(f'<div class="pic">{f"<span>{html.escape(label)}</span>" if label else ""}'
                           f'<img src="{html.escape(src)}" alt="{html.escape(caption)}"></div>' for label, src in images)
        figures.append(f"<figure>{pictures}<figcaption>{html.escape(caption)}</figcaption></figure>")
    return f'<div class="gallery" id="{gallery_id}">{"".join(figures)}</div>'


def _data_section(spec: SourceSpec, assets: _Assets, samples: int, progress) -> tuple[str, object]:
    from .inspection import inspect_source
    from .show import render_cells

    report = inspect_source(spec, progress=progress)
    per_image = report.boxes_per_image
    sides = report.box_sides
    area = np.sqrt(sides[:, 0].clip(0) * sides[:, 1].clip(0)) if len(sides) else np.zeros(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        aspect = sides[:, 0] / sides[:, 1] if len(sides) else np.zeros(0)
    aspect = aspect[np.isfinite(aspect)]
    instances = int(per_image.sum()) if len(per_image) else 0
    empty = int(np.count_nonzero(per_image == 0)) if len(per_image) else 0
    summary = [("rows", report.rows), ("instances", instances), ("classes", len(report.classes)),
               ("empty images (no box)", empty), ("crowd / ignore regions", report.crowd),
               ("box format", f"{report.box_format.mode.value} {'fractional' if report.box_format.fractional else 'pixel'}"),
               ("problems found", len(report.problems))]
    sizes = [("small (< 32²)", int(np.count_nonzero(area < 32))),
             ("medium (32²-96²)", int(np.count_nonzero((area >= 32) & (area < 96)))),
             ("large (>= 96²)", int(np.count_nonzero(area >= 96)))]
    top = int(per_image.max()) if len(per_image) else 0
    per_image_bins = [(str(k), int(np.count_nonzero(per_image == k))) for k in range(min(top, 20) + 1)]
    if top > 20:
        per_image_bins.append(("> 20", int(np.count_nonzero(per_image > 20))))
    rows = sorted({int(r) for r in np.linspace(0, report.rows - 1, min(samples, report.rows)).round()})
    drawn = assets.thumbnails(render_cells(spec, rows, masks=True), "sample", len(rows)) if rows else {}
    lineage = [("selection", report.description), ("commit",
                                                    spec.commit or (report.history[-1][0] if report.history else "-"))]
    parts = [
        '<section id="data"><h2>1. The data</h2>',
        _table(["", ""], summary, "data-summary"),
        "<h3>Lineage</h3>", _table(["", ""], lineage, "lineage"),
        _table(["commit", "time", "message"], report.history[::-1][:10], "history") if report.history else "",
        "<h3>Classes</h3>",
        _bars([(name, int(report.class_counts.get(name, 0))) for name in report.classes], "classes", "instances"),
        "<h3>Instances per image</h3>", _bars(per_image_bins, "per-image", "images"),
        "<h3>Box sizes (COCO)</h3>", _bars(sizes, "coco-sizes", "boxes"),
        "<h4>sqrt(box area) in pixels</h4>", _bars(histogram(area, [0, 8, 16, 32, 64, 96, 128, 256, 512]),
                                                   "box-sizes", "boxes"),
        "<h4>Aspect ratio (width / height)</h4>",
        _bars(histogram(aspect, [0, 0.25, 0.5, 0.75, 1, 1.33, 2, 4]), "aspect-ratios", "boxes"),
        f"<h3>Sample rows ({len(rows)} of {report.rows}, evenly spaced; at most {samples})</h3>",
        _gallery([(drawn[r], f"row {r}") for r in rows], "samples"),
        "</section>"]
    return "\n".join(parts), report


def _evaluation_section(spec: SourceSpec, branch: str, assets: _Assets, gallery: int, score_thr: float) -> str:
    from ..evaluation.matching import confusion_labels
    from ..evaluation.plots import plot_confusion_matrix, plot_pr_curves
    from ..source.tql import row_query
    from .error_analysis import class_table, size_table
    from .show import render_cells

    loaded = load_evaluation(spec.path, branch)
    ev = loaded.evaluation
    plot_pr_curves(ev.curves, ev.names, str(assets.folder / "pr_curves.png"), ev.iou_thr)
    plot_confusion_matrix(ev.confusion, ev.classes, str(assets.folder / "confusion_matrix.png"), ev.iou_thr,
                          ev.confusion_thr)
    assets.images += 2
    labels = confusion_labels(ev.classes)
    confusion = _table(["ground truth \\ prediction", *labels],
                       [(label, *row) for label, row in zip(labels, ev.confusion.tolist())], "confusion")
    counts = {row: (m.tp, m.fp, m.fn) for row, m in ev.matches.items()}
    issue_scores = None
    if "issue_score" in loaded.ref.columns:
        column = loaded.ref.opened["issue_score"]
        issue_scores = {row: float(np.max(np.asarray(column[row], float))) for row in counts
                        if np.asarray(column[row]).size}
    galleries = worst_rows(counts, gallery, issue_scores)
    unique = sorted({r for rows in galleries.values() for r in rows})
    source = SourceSpec(spec.path, creds=spec.creds)
    drawn = assets.thumbnails(render_cells(source, unique, score_thr, errors=True, branch=branch), "errors",
                              len(unique)) if unique else {}
    headline = ev.metrics["all"]["all"]
    tp, fp, fn = ev.totals
    summary = [("branch", f"{loaded.ref.name} (commit {loaded.ref.commit})"), ("rows evaluated", len(ev.matches)),
               ("IoU threshold", ev.iou_thr), ("mAP@[.5:.95]", headline["AP"]), ("AP50", headline["AP50"]),
               ("AR@[.5:.95]", headline["AR"]), ("TP / FP / FN", f"{tp} / {fp} / {fn}")]
    if loaded.record:
        summary += [(k, loaded.record[k]) for k in ("config", "checkpoint", "source_commit", "view", "query")
                    if loaded.record.get(k)]
    # JSON inside <script> is not HTML-decoded: escape what could end the element instead
    slider = json.dumps(slider_counts(ev.breakdown)).replace("<", "\\u003c").replace(">", "\\u003e").replace(
        "&", "\\u0026")
    parts = ['<section id="evaluation"><h2>2. The evaluation</h2>', _table(["", ""], summary, "eval-summary"),
             "<h3>Per COCO size</h3>", _table(*size_table(ev), "eval-sizes"),
             "<h3>Per class (click a header to sort)</h3>", _table(*class_table(ev), "per-class", sortable=True),
             f"<h3>Confidence threshold</h3><p>Predictions scored at or above <b id=\"confidence-value\"></b> "
             f"(matched at IoU >= {ev.iou_thr:g}):</p>"
             f'<input type="range" id="confidence" min="0" max="{SLIDER_STEPS}" step="1" value="{SLIDER_STEPS // 2}">'
             + _table(["class", "gts", "tp", "fp", "precision", "recall", "F1"],
                      [(name, "", "", "", "", "", "") for name in [*ev.names, "all"]], "slider-table")
             + f'<script type="application/json" id="slider-data">{slider}</script>',
             '<h3>Precision-recall curves</h3><img class="plot" src="assets/pr_curves.png" alt="PR curves">',
             "<h3>Confusion matrix</h3><p>Last row: predictions matching no box (false positives); last column: "
             f"boxes no prediction matched (missed); class-agnostic matching, score >= {ev.confusion_thr:g}.</p>",
             confusion, '<img class="plot" src="assets/confusion_matrix.png" alt="confusion matrix">',
             f"<h3>Worst rows (at most {gallery} per gallery; TP green, FP red, FN blue, predictions scored >= "
             f"{score_thr:g})</h3>"]
    for k, (name, rows) in enumerate(galleries.items()):
        command = (f"lakedet show {spec.path} --branch {branch} --errors --score-thr {score_thr:g} "
                   f"--rows {','.join(map(str, rows))} --out worst.png") if rows else "-"
        parts += [f'<h4>{html.escape(name)} ({len(rows)} rows)</h4><div class="recipe">TQL on branch '
                  f'{html.escape(branch)}: {_code(row_query(None, rows) if rows else "-")}draw them: {_code(command)}</div>',
                  _gallery([(drawn[r], f"row {r}: TP {counts[r][0]} FP {counts[r][1]} FN {counts[r][2]}"
                             + (f", issue {issue_scores[r]:.2f}" if issue_scores and r in issue_scores else ""))
                            for r in rows], f"gallery-{k}")]
    parts.append("</section>")
    return "\n".join(parts)


def _comparison_section(spec: SourceSpec, a: str, b: str, assets: _Assets, gallery: int, score_thr: float) -> str:
    from .compare import compare, diff_table, load_side, summary_table
    from .show import render_cells

    comparison = compare(load_side(spec.path, a, "A"), load_side(spec.path, b, "B"), bootstrap=0)
    changed = {}  # row of B -> (boxes lost + false positives new on B, boxes found + false positives vanished)
    for row_b, entry in comparison.per_row.items():
        lost, found, new_fp, vanished = entry["counts"][:4]
        changed[row_b] = (lost + new_fp, found + vanished)
    regressed = sorted((r for r in changed if changed[r][0] > changed[r][1]),
                       key=lambda r: changed[r][1] - changed[r][0])[:gallery]
    improved = sorted((r for r in changed if changed[r][1] > changed[r][0]),
                      key=lambda r: changed[r][0] - changed[r][1])[:gallery]
    to_a = {row_b: row_a for row_a, row_b in comparison.pairs}
    shown = sorted(set(regressed) | set(improved))
    source = SourceSpec(spec.path, creds=spec.creds)
    branch_a, branch_b = comparison.a.ref.branch, comparison.b.ref.branch
    before = assets.thumbnails(render_cells(source, [to_a[r] for r in shown], score_thr, errors=True,
                                            branch=branch_a), "before", len(shown)) if shown else {}
    after = assets.thumbnails(render_cells(source, shown, score_thr, errors=True, branch=branch_b), "after",
                              len(shown)) if shown else {}
    parts = ['<section id="comparison"><h2>3. The comparison</h2>',
             f"<p>A = {html.escape(comparison.a.ref.name)}, B = {html.escape(comparison.b.ref.name)}, "
             f"{len(comparison.pairs)} rows compared.</p>",
             "<h3>Per class (B - A)</h3>", _table(*summary_table(comparison), "deltas", sortable=True),
             "<h3>Label diff (A's commit to B's)</h3>", _table(*diff_table(comparison), "label-diff")]
    for k, (name, rows) in enumerate((("regressed", regressed), ("improved", improved))):
        parts += [f"<h4>{name} rows ({len(rows)}, at most {gallery}; before = A, after = B)</h4>",
                  _gallery([([("before", before[to_a[r]]), ("after", after[r])],
                             f"row {r}: lost/new FP {changed[r][0]}, found/vanished FP {changed[r][1]}")
                            for r in rows], f"compare-{k}")]
    parts.append("</section>")
    return "\n".join(parts)


_STYLE = """
body{font-family:sans-serif;margin:1.5em;color:#222;max-width:1400px}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 8px;text-align:left}
th{background:#eee}table.sortable th{cursor:pointer}td.n{text-align:right}
td.barcell{width:320px}.bar{background:#4a7fc1;height:12px}
.gallery{display:flex;flex-wrap:wrap;gap:8px}figure{margin:0;border:1px solid #ddd;padding:4px;background:#fafafa}
figure .pic{display:inline-block;margin-right:4px}figure .pic span{display:block;font-size:small}
figcaption{font-size:small}.gallery img{min-height:128px;max-height:320px}.wide{overflow-x:auto}img.plot{max-width:800px;display:block}
pre{background:#f4f4f4;padding:4px;white-space:pre-wrap;margin:2px 0}.recipe{font-size:small}
section{margin-bottom:2em;border-top:2px solid #4a7fc1}
"""

# Sorting tables by a clicked header, and the confidence slider (precision, recall and F1 per class
# from the true / false positive counts at each threshold). Nothing else runs in the page.
_SCRIPT = """
for (const table of document.querySelectorAll('table.sortable')) {
  table.querySelectorAll('th').forEach((th, col) => th.addEventListener('click', () => {
    const body = table.tBodies[0], rows = Array.from(body.rows), up = th.dataset.order !== 'asc';
    const key = r => { const t = r.cells[col].textContent, v = parseFloat(t); return isNaN(v) ? t : v; };
    rows.sort((x, y) => { const a = key(x), b = key(y); return (a < b ? -1 : a > b ? 1 : 0) * (up ? 1 : -1); });
    th.dataset.order = up ? 'asc' : 'desc'; rows.forEach(r => body.appendChild(r));
  }));
}
const sliderData = document.getElementById('slider-data');
if (sliderData) {
  const data = JSON.parse(sliderData.textContent), slider = document.getElementById('confidence');
  const fmt = v => isNaN(v) ? '-' : v.toFixed(3);
  const update = () => {
    const k = Number(slider.value);
    document.getElementById('confidence-value').textContent = data.thresholds[k].toFixed(2);
    for (const row of document.getElementById('slider-table').tBodies[0].rows) {
      const c = data.classes[row.cells[0].textContent], tp = c.tp[k], fp = c.fp[k], gts = c.gts;
      const precision = tp + fp > 0 ? tp / (tp + fp) : NaN, recall = gts > 0 ? tp / gts : NaN;
      const f1 = tp > 0 ? 2 * tp / (2 * tp + fp + (gts - tp)) : 0;
      [gts, tp, fp].forEach((v, i) => { row.cells[i + 1].textContent = v; });
      row.cells[4].textContent = fmt(precision); row.cells[5].textContent = fmt(recall);
      row.cells[6].textContent = fmt(f1);
    }
  };
  slider.addEventListener('input', update); update();
}
"""


def _folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def write_report(spec: SourceSpec, out: str, errors: str | None = None, compare: tuple[str, str] | None = None,
                 samples: int = SAMPLES, gallery: int = GALLERY, score_thr: float = 0.3,
                 progress=None) -> ReportFiles:
    """Write ``out/index.html`` and ``out/assets/`` about the selection ``spec`` and, when given,
    the ``lakedet errors`` branch ``errors`` and the comparison of refs ``compare = (A, B)``.

    Args:
        samples: rows in the data section's sample grid; gallery: rows per gallery.
        score_thr: predictions drawn in the galleries (the slider covers every score).
        progress: called with (done, total) while rows are read and thumbnails drawn.

    Raises:
        ConfigError: a bad cap or threshold, or ``out`` is a file or a non-empty folder without an ``index.html``.
        SourceError / SchemaError: as the sections' readers (unknown branch, missing columns ...).
    """
    if samples < 0 or gallery < 0:
        raise ConfigError(f"--samples {samples} / --gallery {gallery}: the caps must be >= 0")
    if not 0 <= score_thr <= 1:
        raise ConfigError(f"--score-thr {score_thr}: must be within [0, 1]")
    folder = Path(out)
    if folder.is_file() or (folder.is_dir() and any(folder.iterdir()) and not (folder / "index.html").exists()):
        raise ConfigError(f"-o {out!r}: not an empty folder nor an earlier report (no index.html); give a new folder")
    start = time.monotonic()
    folder.mkdir(parents=True, exist_ok=True)
    assets = _Assets(folder, progress)
    data, report = _data_section(spec, assets, samples, progress)
    sections, html_parts = ["data"], [data]
    if errors:
        html_parts.append(_evaluation_section(spec, errors, assets, gallery, score_thr))
        sections.append("evaluation")
    if compare:
        html_parts.append(_comparison_section(spec, *compare, assets, gallery, score_thr))
        sections.append("comparison")
    title = f"lakedet report: {report.description}"
    page = (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
            + "\n".join(html_parts) + f"<script>{_SCRIPT}</script></body></html>")
    index = folder / "index.html"
    index.write_text(page, encoding="utf-8")
    return ReportFiles(index, assets.images, sections, _folder_size(folder), time.monotonic() - start)
