import subprocess
import sys

import numpy as np
import pytest

from lakedet.tools.inspection import inspect_source
from lakedet.source import SourceSpec
from lakedet.tools.synthetic import encode_jpeg, render_rows, write_dataset

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """Rows 1..6 each hold one planted problem; rows 0 and 7 are clean."""
    rows = render_rows(8, size=48, seed=4, max_objects=2, min_side=10, max_side=20)
    rows[1].boxes[0] = [40, 40, 30, 30]                   # outside the 48x48 image
    rows[2].boxes[0, 2] = 0                               # zero width
    rows[3].labels[0] = 9                                 # not one of 3 classes
    rows[4].boxes, rows[4].labels = np.zeros((0, 4), np.float32), np.zeros(0, np.uint32)  # no boxes
    rows[6].labels = np.append(rows[6].labels, np.uint32(0))  # one label too many
    path = str(tmp_path_factory.mktemp("planted") / "ds")
    ds = write_dataset(path, rows[:5])
    ds.append({"images": [b"\xff\xd8\xff\xe0 garbage" * 3], "boxes": [rows[5].boxes], "labels": [rows[5].labels]})
    ds.append({"images": [encode_jpeg(r.image) for r in rows[6:]], "boxes": [r.boxes for r in rows[6:]],
               "labels": [r.labels for r in rows[6:]]})
    ds.commit("planted problems")
    return path


EXPECTED = {1: "outside image", 2: "zero area", 3: "label outside class list", 4: "no boxes",
            5: "undecodable image", 6: "count mismatch"}


def test_every_planted_problem_is_found_and_names_its_row(planted):
    report = inspect_source(SourceSpec(planted))
    found = {(p.row, p.kind) for p in report.problems}
    for row, kind in EXPECTED.items():
        assert (row, kind) in found, (row, kind, found)
    assert not any(p.row in (0, 7) for p in report.problems)
    assert report.rows == 8 and report.tensors["img"] == "images"
    assert sum(report.class_counts.values()) > 0 and report.history[-1][2] == "planted problems"


def test_inspect_strict_fails_naming_rows_and_passes_on_clean_data(planted, shapes):
    out = subprocess.run([sys.executable, "-m", "lakedet", "inspect", planted, "--strict"], capture_output=True, text=True)
    assert out.returncode == 1, out.stderr[-2000:]
    for row, kind in EXPECTED.items():
        assert f"row {row}, column" in out.stdout and kind in out.stdout
    clean = subprocess.run([sys.executable, "-m", "lakedet", "inspect", shapes[0], "--strict",
                            "--query", "SELECT * WHERE ROW_NUMBER() < 5"], capture_output=True, text=True)
    assert clean.returncode == 0, clean.stdout[-2000:] + clean.stderr[-2000:]
    assert "(5 rows)" in clean.stdout and "no problems found" in clean.stdout and "circle" in clean.stdout
