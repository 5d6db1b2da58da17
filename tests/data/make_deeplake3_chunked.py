"""Writes ``deeplake3_chunked``: a Deep Lake 3 dataset whose images span several storage chunks,
and ``deeplake3_chunked_expected.json``: Deep Lake 3's own chunk index (``chunk_id_encoder``) and
chunk locations for every selection, plus the rows it reads back.

Run with Deep Lake 3 (it cannot share an environment with Deep Lake 4), from the repository root:
    python3.11 -m venv /tmp/dl3 && /tmp/dl3/bin/pip install "deeplake<4" "numpy<2" pillow
    /tmp/dl3/bin/python tests/data/make_deeplake3_chunked.py
(written with deeplake 3.9.52). The dataset (``max_chunk_size`` small, so 56 tiny JPEG rows fill
several chunks):

* commit 1: 36 rows; commit 2: 12 rows appended; commit 3: the images of rows 1 and 2 (in the
  first chunk) rewritten, so the latest commit's chunks live in three commit folders;
* a saved view ``half`` (every row with an even label, about half, at commit 3);
* 8 rows appended to ``main`` and left uncommitted (the v3 HEAD).

The expected file holds, for each selection (``default`` = the HEAD, each commit, the view): the
``(chunk_id, last_index)`` entries of ``images``' chunk id encoder, the storage key Deep Lake 3
reads each chunk from (``get_chunk_key_for_id``), the source rows, labels and the MD5 of each
row's stored JPEG bytes. ``tests/test_v3_chunks.py`` compares lakedet's reading with it.
"""

import hashlib
import json
import os
import shutil
from pathlib import Path

import deeplake
import numpy as np

HERE = Path(__file__).parent
NAME = "deeplake3_chunked"
W, H = 32, 24
MAX_CHUNK = 16000  # bytes; Deep Lake 3 fills chunks to about half of it
rng = np.random.default_rng(22)
SOURCE_ROWS = 1000


def pixels(row: int, version: int = 0) -> np.ndarray:
    """Noise (so JPEGs stay a few kB) with a band whose height and colour tell the row and version."""
    image = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    image[: 4 + row % 8, :, version % 3] = 255
    return image


def append(ds, start: int, count: int) -> None:
    for i in range(start, start + count):
        ds.append({"images": pixels(i), "boxes": np.array([[1 + i % 5, 2, 10, 8]], np.float32),
                   "labels": np.array([i % 4], np.uint32)})


def write(path: Path) -> dict:
    shutil.rmtree(path, ignore_errors=True)
    ds = deeplake.empty(str(path), verbose=False)
    with ds:
        ds.create_tensor("images", htype="image", sample_compression="jpeg", max_chunk_size=MAX_CHUNK)
        ds.create_tensor("boxes", htype="bbox", coords={"type": "pixel", "mode": "LTWH"})
        ds.create_tensor("labels", htype="class_label", class_names=["a", "b", "c", "d"])
        append(ds, 0, 36)
    first = ds.commit("36 rows")
    with ds:
        append(ds, 36, 12)
    second = ds.commit("12 rows appended")
    with ds:
        for row in (1, 2):
            ds.images[row] = pixels(row, version=1)
    third = ds.commit("rows 1 and 2 rewritten (first chunk)")
    half = [i for i in range(len(ds)) if i % 4 in (0, 2)]
    ds[half].save_view(id="half", message="rows with an even label", verbose=False)
    with ds:  # the uncommitted HEAD of main
        append(ds, 48, 8)
    ds.flush()
    return {"commits": [first, second, third], "view_rows": half}


def selection(view, engine_of) -> dict:
    """Deep Lake 3's chunk index of ``images`` where ``view`` reads it, and its rows."""
    engine = engine_of.images.chunk_engine
    encoded = np.asarray(engine.chunk_id_encoder._encoded)
    rows = (list(range(len(view))) if view.index.is_trivial()
            else [int(r) for r in view.index.values[0].indices(SOURCE_ROWS)])
    return {
        "chunk_ids": [[int(c), int(last)] for c, last in encoded.tolist()],
        "chunk_keys": [engine.get_chunk_key_for_id(int(c)) for c in encoded[:, 0].tolist()],
        "rows": rows,
        "labels": [int(view.labels[i].numpy().reshape(-1)[0]) for i in range(len(view))],
        "image_md5": [hashlib.md5(view.images[i].tobytes()).hexdigest() for i in range(len(view))],
    }


def main() -> None:
    os.chdir(HERE)
    path = Path(NAME)
    made = write(path)
    ds = deeplake.load(str(path), read_only=True, verbose=False)
    found = {"default": selection(ds, ds)}
    for commit in made["commits"]:
        ds.checkout(commit)
        found[commit] = selection(ds, ds)
    ds.checkout("main")
    view = ds.load_view("half")
    ds.checkout(made["commits"][2])  # the version the view was saved at: its chunks
    found["view:half"] = selection(view, ds)
    for lock in path.rglob("*.lock"):
        lock.unlink()
    expected = {"deeplake_version": deeplake.__version__, "commits": made["commits"], "view": "half",
                "view_rows": made["view_rows"], "max_chunk_size": MAX_CHUNK, "selections": found}
    Path(f"{NAME}_expected.json").write_text(json.dumps(expected, indent=1) + "\n")
    print(f"wrote {HERE / path} and {NAME}_expected.json with deeplake {deeplake.__version__}")


if __name__ == "__main__":
    main()
