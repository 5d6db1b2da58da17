"""Where an image column's rows are stored: Deep Lake's storage chunks (``ChunkLayout``).

Deep Lake stores rows in chunks of about 8 MB; a read of consecutive rows fetches each chunk it
touches whole, while rows read one by one cost a request each. The sampler's chunk-aware order
and the reader's read-ahead follow this layout. Deep Lake 4 reports it (``chunk_layout``);
for data Deep Lake 3 wrote, ``lakedet.source.deeplake3_chunks`` reads it from the dataset's own
chunk index. Both give the same ``ChunkLayout``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

__all__ = ["ChunkLayout", "chunk_layout"]


@dataclass(frozen=True, eq=False)
class ChunkLayout:
    """Where an image column's rows are stored: chunk ``i`` holds the *source* rows
    ``bounds[i]:bounds[i + 1]`` in the data file ``names[i]`` (names identify the stored bytes;
    a cache key).

    ``rows`` maps the opened dataset's rows to source rows (ascending) when the opened rows are a
    selection of the source (a saved view, a query); None: they are the source's rows. ``reopen``
    opens the dataset whose rows ``bounds`` counts, for chunk reads (None: the opened dataset
    itself); it is picklable, so DataLoader workers open their own. ``stable[i]`` is False for a
    chunk whose bytes can still change under its name (a Deep Lake 3 branch's uncommitted HEAD):
    it is never cached.
    """

    bounds: np.ndarray
    names: tuple
    rows: np.ndarray | None = None
    reopen: Callable | None = field(default=None, repr=False)
    stable: tuple | None = None

    def chunk_of(self, rows) -> np.ndarray:
        """The chunk of each of the opened dataset's ``rows``."""
        rows = np.asarray(rows, dtype=np.int64)
        if self.rows is not None:
            rows = self.rows[rows]
        return np.searchsorted(self.bounds, rows, side="right") - 1

    def span(self, chunk: int) -> tuple[int, int]:
        """``(start, stop)``: the source rows of ``chunk`` (a slice of the dataset ``reopen`` gives)."""
        return int(self.bounds[chunk]), int(self.bounds[chunk + 1])

    def offset(self, row: int, chunk: int) -> int:
        """Where the opened dataset's ``row`` is in the values of a read of ``span(chunk)``."""
        source = int(self.rows[row]) if self.rows is not None else int(row)
        return source - int(self.bounds[chunk])

    def sizes(self) -> np.ndarray:
        """Rows of the opened dataset in each chunk."""
        if self.rows is None:
            return np.diff(self.bounds)
        return np.bincount(self.chunk_of(np.arange(len(self.rows))), minlength=len(self))

    def is_stable(self, chunk: int) -> bool:
        return self.stable is None or bool(self.stable[chunk])

    def selecting(self, rows, reopen: Callable | None) -> "ChunkLayout":
        """This layout for a selection of its rows (``rows``: source rows, ascending), read
        through ``reopen``."""
        rows = np.asarray(rows, dtype=np.int64)
        if len(rows) and (rows[0] < 0 or rows[-1] >= self.bounds[-1] or np.any(np.diff(rows) <= 0)):
            raise ValueError(f"the selected rows must be ascending source rows in [0, {int(self.bounds[-1])})")
        return ChunkLayout(self.bounds, self.names, rows, reopen, self.stable)

    def __len__(self) -> int:
        return len(self.bounds) - 1


def chunk_layout(ds, column: str) -> ChunkLayout | None:
    """The chunk layout of ``column`` as Deep Lake 4 reports it, or None when it does not.

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
