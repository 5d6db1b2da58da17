"""Opening a Deep Lake dataset read-only: the one entry of the source layer.

A ``SourceSpec`` says what to open; ``open_source`` returns a read-only dataset or view (and,
with ``open_source_with_origin``, where its rows come from). Datasets Deep Lake 4 wrote are
opened by ``lakedet.source.deeplake4``; datasets Deep Lake 3 wrote are read in place
(``lakedet.source.deeplake3``), never modified: detected from their files for a local folder,
and for remote storage when Deep Lake 4 finds no dataset of its own there. Training and
evaluation never write to what they open. This module is the only one that calls ``deeplake.open*``
for reading.
"""

from __future__ import annotations

import os

from ..errors import SourceError, SourceTimeout
from . import deeplake3
from .deeplake4 import history, open_deeplake4, open_path, origin_of_deeplake4
from .layout import ChunkLayout, chunk_layout
from .spec import Origin, SourceSpec

__all__ = ["open_source", "open_source_with_origin", "origin_of", "dataset_format", "source_history",
           "storage_layout", "reopen_source"]


def open_source(spec: SourceSpec):
    """Open the dataset read-only and apply commit, then view or query.

    Returns:
        A Deep Lake ``ReadOnlyDataset`` or ``DatasetView``.

    Raises:
        SourceError: the path does not hold a dataset, the commit or view is unknown,
            or the query is invalid. The message lists what exists.
        SourceTimeout: remote storage did not answer within ``LAKEDET_OPEN_TIMEOUT``.
    """
    return open_source_with_origin(spec)[0]


def open_source_with_origin(spec: SourceSpec):
    """``open_source`` plus the ``Origin`` of the rows (for lineage records)."""
    folder = deeplake3.local_path(spec.path)
    if folder is not None and deeplake3.is_deeplake3_folder(os.path.dirname(os.path.dirname(folder.rstrip("/")))):
        deeplake3.check_path(spec.path)  # a v3 commit's or view's internal folder: say what to give instead
    if deeplake3.is_deeplake3_folder(spec.path):
        return deeplake3.open_deeplake3(spec)
    if not spec.remote:
        spec.refuse_view_and_query()
    try:
        ds = open_path(spec)
    except SourceTimeout:
        raise
    except SourceError as exc:
        # Deep Lake 4 finds no v4 log there: maybe Deep Lake 3 data (only then: an unreachable or
        # refusing server must not wait twice)
        cause = exc.__cause__
        missing = type(cause).__name__ == "LogNotexistsError" or "does not exist" in str(cause or "")
        info = deeplake3.probe_info(spec) if spec.remote and missing else None
        if info is not None:
            return deeplake3.open_deeplake3(spec, info)
        raise
    return open_deeplake4(spec, ds)


def origin_of(ds) -> Origin:
    """Branch and commit of a dataset the caller opened (views do not know theirs: None); a view
    the caller queried from a Deep Lake 3 dataset (``deeplake.query('SELECT * FROM "<v3 path>@<ref>"')``)
    is recognised from its query and gets format ``deeplake3`` (and the ref as its commit)."""
    if type(ds).__name__ == "DatasetView" and type(ds).__module__.startswith("deeplake"):
        found = deeplake3.deeplake3_source_of(ds)
        if found is not None:
            return Origin(None, found[1], deeplake3.V3_FORMAT, found[1] is None)
    return origin_of_deeplake4(ds)


def dataset_format(spec: SourceSpec) -> str:
    """``"deeplake3"`` for a dataset Deep Lake 3 wrote, else ``"deeplake4"`` (remote data: probed)."""
    if deeplake3.is_deeplake3_folder(spec.path) or (spec.remote and deeplake3.probe_remote(spec)):
        return deeplake3.V3_FORMAT
    return deeplake3.V4_FORMAT


def source_history(spec: SourceSpec) -> list[tuple[str, str, str]]:
    """The dataset's commits, oldest first: ``(id, time, message)`` (a Deep Lake 3 dataset's
    from its ``version_control_info.json``, every branch's)."""
    if dataset_format(spec) == deeplake3.V3_FORMAT:
        return deeplake3.history_deeplake3(spec)
    return history(spec)


def storage_layout(spec: SourceSpec | None, ds, origin: Origin, column: str) -> ChunkLayout | None:
    """Where ``column``'s rows of the opened ``ds`` are stored (None: unknown): as Deep Lake 4
    reports it, or, for data Deep Lake 3 wrote that lakedet opened (``spec``), from the v3
    dataset's own chunk index (``lakedet.source.deeplake3_chunks``; views and queries included)."""
    if origin.format == deeplake3.V3_FORMAT and spec is not None:
        from .deeplake3_chunks import v3_layout

        return v3_layout(spec, origin, column, len(ds))
    return chunk_layout(ds, column)


def reopen_source(spec: SourceSpec, origin: Origin):
    """What ``open_source_with_origin(spec)`` opened (with ``origin``), opened again in another
    process (a DataLoader worker started by spawn or forkserver). Data Deep Lake 3 wrote is opened
    straight from the selection resolved the first time: no v4 open attempt, format probe or
    metadata read before the worker's first batch."""
    if origin.format == deeplake3.V3_FORMAT and origin.selection is not None:
        return deeplake3.reopen(spec, origin)
    return open_source_with_origin(spec)[0]
