"""``lineage.json``: which data a run read, appended to its work dir.

Each run (``train``, ``eval``, ``predict``, ``errors``) records, per split, what every Deep Lake
dataset read (``DeepLakeDetDataset.lineage``: URL, format, branch, commit, view or query, rows,
column mapping, box format, classes), the checkpoint, and the versions of lakedet, MMDetection,
mmengine and Deep Lake. ``latest`` is the newest run. No credential is ever written.
"""

from __future__ import annotations

import json
import os
import time

from ..data.dataset import deeplake_datasets

__all__ = ["split_lineage", "write_lineage"]


def split_lineage(dataset) -> list[dict]:
    """Lineage of every ``DeepLakeDetDataset`` inside a (possibly wrapped) dataset."""
    return [d.lineage() for d in deeplake_datasets(dataset)]


def write_lineage(work_dir: str, command: str, splits: dict, checkpoint: str | None = None,
                  timestamp: str | None = None, **extra) -> str:
    """Append a run to ``work_dir/lineage.json`` (``latest`` is the newest run); return its path."""
    import deeplake
    import mmdet
    import mmengine

    from ..version import __version__

    os.makedirs(work_dir, exist_ok=True)
    path = os.path.join(work_dir, "lineage.json")
    record = {}
    if os.path.exists(path):
        with open(path) as f:
            record = json.load(f)
    record.setdefault("runs", []).append(dict(
        command=command, timestamp=timestamp or time.strftime("%Y%m%d_%H%M%S"), checkpoint=checkpoint,
        splits=splits, versions=dict(lakedet=__version__, mmdet=mmdet.__version__, mmengine=mmengine.__version__,
                                     deeplake=deeplake.__version__), **extra))
    record["latest"] = record["runs"][-1]
    with open(path, "w") as f:
        json.dump(record, f, indent=2, default=str)
    return path
