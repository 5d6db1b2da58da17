"""Writes tests/data/deeplake3_shapes: a two-row detection dataset in Deep Lake 3's own format.

Run with Deep Lake 3 (it cannot share an environment with Deep Lake 4), from the repository root:
    python3.11 -m venv /tmp/dl3 && /tmp/dl3/bin/pip install "deeplake<4" "numpy<2" pillow
    /tmp/dl3/bin/python tests/data/make_deeplake3.py
(written with deeplake 3.9.52).
"""

import shutil
from pathlib import Path

import deeplake
import numpy as np

path = Path(__file__).parent / "deeplake3_shapes"
shutil.rmtree(path, ignore_errors=True)
ds = deeplake.empty(str(path))
with ds:
    ds.create_tensor("images", htype="image", sample_compression="jpeg")
    ds.create_tensor("boxes", htype="bbox", coords={"type": "pixel", "mode": "LTWH"})
    ds.create_tensor("labels", htype="class_label", class_names=["circle", "square", "triangle"])
    for i in range(2):
        ds.append({"images": np.full((32, 32, 3), 40 * (i + 1), np.uint8),
                   "boxes": np.array([[2, 2, 10, 10]], np.float32), "labels": np.array([i], np.uint32)})
ds.commit("two rows")
print(f"wrote {path} with deeplake {deeplake.__version__}")
