"""Where an image column's rows are stored: Deep Lake's storage chunks (``ChunkLayout``).

Deep Lake stores rows in chunks of about 8 MB; a read of consecutive rows fetches each chunk it
touches whole, while rows read one by one cost a request each. The sampler's chunk-aware order
and the reader's read-ahead follow this layout.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ChunkLayout", "chunk_layout"]


@dataclass(frozen=True)
class ChunkLayout:
    """Where an image column's rows are stored: chunk ``i`` holds rows ``bounds[i]:bounds[i + 1]``
    in the data file ``names[i]`` (names identify the stored bytes; a cache key)."""

    bounds: np.ndarray
    names: tuple

    def chunk_of(self, rows) -> np.ndarray:
        return np.searchsorted(self.bounds, np.asarray(rows, dtype=np.int64), side="right") - 1

    def __len__(self) -> int:
        return len(self.bounds) - 1


def chunk_layout(ds, column: str) -> ChunkLayout | None:
    """The chunk layout of ``column`` as Deep Lake reports it, or None when it does not.

    Deep Lake 4.7 lists a dataset's data files per column (``ds._datafiles_report``: each insert
    file with its first and last row). It is not a documented API, so anything unexpected (a
    view, which has no such report; files that do not tile the rows) means "unknown", and lakedet
    then reads row by row in a full permutation, as without this layout.
    """
    try:
        files = ds._datafiles_report[column].insert_datafiles
        spans = sorted((int(f.offset_start), int(f.offset_end), str(f.filename)) for f in files)
    except Exception:
        return None
    if not spans or spans[0][0] != 0 or spans[-1][1] != len(ds):
        return None
    if any(a[1] != b[0] or a[1] <= a[0] for a, b in zip(spans, spans[1:])):
        return None
    bounds = np.array([s[0] for s in spans] + [spans[-1][1]], dtype=np.int64)
    return ChunkLayout(bounds, tuple(s[2] for s in spans))
