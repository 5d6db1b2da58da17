import subprocess
import sys

import cv2
import deeplake
import numpy as np
import pytest

from lakedet.tools.synthetic import encode_jpeg, make_shapes_dataset

pytestmark = pytest.mark.timeout(120)


def test_show_writes_a_grid_with_boxes_drawn_where_the_boxes_are(tmp_path):
    path = str(tmp_path / "ds")
    _, rows = make_shapes_dataset(path, 8, size=64, seed=8, max_objects=1, min_side=30, max_side=40)
    out = subprocess.run([sys.executable, "-m", "lakedet", "show", path, "--rows", "0:6", "--out",
                          str(tmp_path / "grid.png"), "--columns", "3"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    grid = cv2.imread(str(tmp_path / "grid.png"))
    assert grid.shape == (2 * 64, 3 * 64, 3)
    for i in range(6):
        cell = grid[(i // 3) * 64:(i // 3 + 1) * 64, (i % 3) * 64:(i % 3 + 1) * 64].astype(int)
        original = cv2.imdecode(np.frombuffer(encode_jpeg(rows[i].image), np.uint8), cv2.IMREAD_COLOR).astype(int)
        x, y, w, h = (int(round(v)) for v in rows[i].boxes[0])
        edge = np.abs(cell[y + h // 2, max(x - 1, 0):x + 2] - original[y + h // 2, max(x - 1, 0):x + 2]).sum()
        inside = np.abs(cell[y + h // 2, x + w // 2] - original[y + h // 2, x + w // 2]).sum()
        assert edge > 60, (i, edge)  # the left edge of the box is drawn over the image
        assert inside < 60, (i, inside)  # the middle of the box is the image itself


def test_show_draws_predictions_beside_ground_truth(tmp_path):
    path = str(tmp_path / "ds")
    ds, rows = make_shapes_dataset(path, 2, size=64, seed=9, max_objects=1)
    ds.add_column("pred_boxes", deeplake.types.BoundingBox())
    ds.add_column("pred_labels", deeplake.types.ClassLabel(deeplake.types.Array("uint32", dimensions=1)))
    ds.add_column("pred_scores", deeplake.types.Array("float32", dimensions=1))
    for i, r in enumerate(rows):
        ds["pred_boxes"][i], ds["pred_labels"][i] = r.boxes, r.labels
        ds["pred_scores"][i] = np.ones(len(r.boxes), np.float32)
    ds.commit("predictions")
    out = subprocess.run([sys.executable, "-m", "lakedet", "show", path, "--rows", "0,1", "--out",
                          str(tmp_path / "grid.png")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert cv2.imread(str(tmp_path / "grid.png")).shape == (64, 2 * 128, 3)  # each cell: GT | predictions
    bad = subprocess.run([sys.executable, "-m", "lakedet", "show", path, "--rows", "5", "--out", str(tmp_path / "x.png")],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "rows must be within 0..1" in bad.stderr
