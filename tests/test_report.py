"""`lakedet report`: the page in a real browser (headless Chromium driven by Playwright, from
``file://``): no console error nor failed request, the class table's counts, every gallery image
loaded, the confidence slider's precision and recall against Python's, a non-blank screenshot of
each section; and the report of a view holds only the view's rows."""

import os
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import dataset_hash
from lakedet.cli import main as lakedet_main
from lakedet.evaluation.breakdown import threshold_sweep
from lakedet.tools.report import histogram, load_evaluation, worst_rows
from lakedet.tools.synthetic import SHAPE_CLASSES, make_shapes_dataset, write_errors_branch

pytestmark = pytest.mark.timeout(120)

CHROMIUM = os.environ.get("LAKEDET_CHROMIUM", "/usr/bin/chromium")
ROWS = 12


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    """12 rows of shapes with masks (rows 5 and 11 empty), errors branches ``errs`` and ``errs2``
    (``predictions_from_truth`` sides 1 and 2: no model) and a saved view ``firsthalf`` of rows 0-5."""
    path = str(tmp_path_factory.mktemp("report") / "ds")
    ds, rows = make_shapes_dataset(path, ROWS, size=64, seed=3, min_side=12, max_side=30, empty_every=6,
                                   masks="binary")
    for side, name in ((1, "errs"), (2, "errs2")):
        write_errors_branch(ds, name, rows, side)
    ds.query("SELECT * WHERE ROW_NUMBER() < 6").tag("firsthalf")
    return path, rows


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: `make setup` installs Debian's chromium (or set LAKEDET_CHROMIUM)")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        yield chromium
        chromium.close()


def _open(browser, index: Path):
    """The page loaded from file://, with the console errors and failed requests it produced."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems = []
    page.on("console", lambda msg: problems.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on("requestfailed", lambda req: problems.append(f"failed request: {req.url}"))
    page.on("request", lambda req: None if req.url.startswith(("file://", "data:")) else problems.append(
        f"network request: {req.url}"))
    page.goto(index.resolve().as_uri(), wait_until="load")
    return page, problems


def _screenshot(page, selector: str, path: Path) -> None:
    page.locator(selector).screenshot(path=str(path))
    image = cv2.imread(str(path))
    assert image is not None and len(np.unique(image.reshape(-1, 3), axis=0)) > 1, f"{path} is blank"


def _report(tmp_path, *args):
    out = tmp_path / "report"
    assert lakedet_main(["report", *map(str, args), "-o", str(out)]) == 0
    return out / "index.html"


def test_report_in_a_browser(case, browser, tmp_path):
    path, rows = case
    before = dataset_hash(path)
    index = _report(tmp_path, path, "--errors", "errs", "--compare", "errs", "errs2", "--gallery", "4")
    assert dataset_hash(path) == before  # nothing written to the user's dataset
    page, problems = _open(browser, index)

    counts = Counter(SHAPE_CLASSES[int(label)] for r in rows for label in r.labels)
    table = page.locator("#classes tbody tr")
    assert table.count() == len(SHAPE_CLASSES)
    shown = {table.nth(k).locator("td").nth(0).inner_text(): int(table.nth(k).locator("td").nth(1).inner_text())
             for k in range(table.count())}
    assert shown == {name: counts[name] for name in SHAPE_CLASSES}
    summary = dict(page.locator("#data-summary tbody tr").evaluate_all(
        "rows => rows.map(r => [r.cells[0].textContent, r.cells[1].textContent])"))
    assert summary["rows"] == str(ROWS) and summary["empty images (no box)"] == "2"

    images = page.locator(".gallery img")
    assert images.count() >= ROWS  # the samples and the galleries
    widths = images.evaluate_all("imgs => imgs.map(i => i.complete ? i.naturalWidth : 0)")
    assert all(w > 0 for w in widths), widths
    assert page.locator("#samples figcaption").first.inner_text() == "row 0"

    # the slider: precision and recall per class as Python computes them at that threshold
    evaluation = load_evaluation(path, "errs").evaluation
    for position in (50, 30, 60):
        page.locator("#confidence").evaluate(
            "(el, v) => { el.value = v; el.dispatchEvent(new Event('input')); }", position)
        expected = threshold_sweep(evaluation.breakdown, [position / 100])
        assert page.locator("#confidence-value").inner_text() == f"{position / 100:.2f}"
        cells = page.locator("#slider-table tbody tr").evaluate_all(
            "rows => rows.map(r => Array.from(r.cells).map(c => c.textContent))")
        assert [c[0] for c in cells] == [*SHAPE_CLASSES, "all"]
        for name, _, _, _, precision, recall, f1 in cells:
            for shown_value, key in ((precision, "precision"), (recall, "recall"), (f1, "f1")):
                value = expected[name][key][0]
                assert shown_value == ("-" if value != value else f"{value:.3f}"), (name, key, position)
    page.locator("#confidence").evaluate("(el) => { el.value = 90; el.dispatchEvent(new Event('input')); }")
    assert page.locator("#slider-table tbody tr").last.locator("td").nth(5).inner_text() != cells[-1][5]

    # the per-class table sorts, the confusion matrix has its 'missing' row and column
    page.locator("#per-class th", has_text="fp").click()
    fps = [float(v) for v in page.locator("#per-class tbody tr td:nth-child(5)").all_inner_texts()]
    assert fps == sorted(fps)
    assert page.locator("#confusion thead th").last.inner_text() == "missing"
    assert page.locator("#confusion tbody tr").last.locator("td").first.inner_text() == "missing"
    assert "lakedet show" in page.locator("#evaluation .recipe").first.inner_text()
    assert page.locator("#compare-0 figure").count() + page.locator("#compare-1 figure").count() > 0
    assert page.locator("#label-diff tbody tr").count() == len(SHAPE_CLASSES)

    for section in ("data", "evaluation", "comparison"):
        _screenshot(page, f"#{section}", tmp_path / f"{section}.png")
    assert problems == []


def test_report_of_a_view_holds_only_its_rows(case, browser, tmp_path):
    path, rows = case
    index = _report(tmp_path, path, "--view", "firsthalf")
    page, problems = _open(browser, index)
    counts = Counter(SHAPE_CLASSES[int(label)] for r in rows[:6] for label in r.labels)
    table = page.locator("#classes tbody tr")
    assert {table.nth(k).locator("td").nth(0).inner_text(): int(table.nth(k).locator("td").nth(1).inner_text())
            for k in range(table.count())} == {name: counts[name] for name in SHAPE_CLASSES}
    assert page.locator("#samples figure").count() == 6
    assert "firsthalf" in page.locator("#lineage").inner_text()
    _screenshot(page, "#data", tmp_path / "data.png")
    assert problems == []


def test_wrong_branch_or_folder_is_named(case, tmp_path, capsys):
    path, _ = case
    assert lakedet_main(["report", path, "--errors", "main", "-o", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "--errors 'main'" in err and "'pred_match'" in err and "lakedet errors" in err
    assert lakedet_main(["report", path, "--errors", "nosuch", "-o", str(tmp_path / "r2")]) == 2
    assert "no branch 'nosuch'" in capsys.readouterr().err
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    assert lakedet_main(["report", path, "-o", str(tmp_path / "busy")]) == 2
    assert "-o" in capsys.readouterr().err and (tmp_path / "busy" / "notes.txt").read_text() == "mine"


def test_worst_rows_and_histogram():
    counts = {0: (2, 0, 0), 1: (1, 3, 0), 2: (0, 1, 2), 3: (0, 0, 0), 4: (1, 0, 1)}
    found = worst_rows(counts, 2, {0: 0.1, 4: 0.9})
    assert found["most false positives"] == [1, 2]
    assert found["most false negatives"] == [2, 4]
    assert found["lowest F1"] == [2, 1]  # F1 0 with 3 errors, then 0.4
    assert found["highest label-issue score"] == [4, 0]
    assert "highest label-issue score" not in worst_rows(counts, 2)
    assert histogram([0, 1, 5, 100], [0, 2, 10]) == [("0-2", 2), ("2-10", 1), (">= 10", 1)]
