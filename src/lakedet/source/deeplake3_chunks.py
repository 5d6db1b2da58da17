"""The storage layout of a Deep Lake 3 dataset's column, read from the dataset's own chunk index.

Deep Lake 4 reads v3 data through its query path, whose views report no chunk layout; without
one, remote v3 rows are read one request each. The layout is on disk, in a simple format
(checked against Deep Lake 3.9.52's source and the data it writes, ``tests/data/make_deeplake3.py``):

* a column's storage key is ``dataset_meta.json["tensor_names"][column]`` (a renamed column keeps
  its old key); the first commit (``FIRST_COMMIT``) keeps its files at the root, every other
  commit node (an uncommitted branch HEAD too) under ``versions/<node>/``;
* ``<key>/chunks_index/unsharded`` (``serialize_chunkids``): ``u8 L``, L bytes of ASCII version,
  from version 2.7.6 on one byte itemsize (4 or 8; before it uint32), then N pairs of
  little-endian ``(chunk_id, last_index)``: row i is in the first entry whose ``last_index >= i``;
  a tiled row takes several consecutive entries with the same ``last_index``. Every node holds a
  full copy of its index. A chunk's file name is ``hex(chunk_id)`` without ``0x``;
* which node's folder holds a chunk: walk from the node up its parents
  (``version_control_info.json``); the first whose ``<key>/chunk_set`` (UTF-8, comma-separated
  ``name``, ``name:commit`` or ``name:commit:key``; may be empty) lists the name holds it (in
  ``commit``'s folder, under ``key``, when given); none: the first commit's root. An updated
  chunk keeps its name and moves to the node that rewrote it.

``read_layout`` makes the ``ChunkLayout`` Deep Lake 4 datasets get from these files, with one
round of concurrent, bounded reads (the node's ``dataset_meta.json``, its index and the
``chunk_set`` of every node up its history, which opening the dataset already read). A saved
view or a query over v3 data gets the layout of its source rows, read through the source at the
same version (``ChunkLayout.selecting``); a query's source rows come from a second run of it over
the rows numbered by Deep Lake 4 (``ROW_NUMBER()`` of the unfiltered ref is the source row). Anything lakedet does not know (an index version, a malformed file,
counts that disagree) gives no layout and ONE warning naming why: rows are then read one by one,
as before. Nothing here writes.
"""

from __future__ import annotations

import functools
import logging

import numpy as np

from ..errors import SourceTimeout
from .deeplake3 import FIRST_COMMIT, V3Info, open_rows, parse_json, read_files
from .layout import ChunkLayout
from .remote import bounded
from .tql import query_path, row_query

__all__ = ["ChunkIndexError", "parse_chunk_index", "parse_chunk_set", "chunk_name", "chunk_key", "index_key",
           "read_layout", "v3_layout", "KNOWN_INDEX_MAJORS", "ROW_COLUMN"]

logger = logging.getLogger("lakedet")

#: Major versions of Deep Lake whose chunk index lakedet reads (2.x and 3.x share the format).
KNOWN_INDEX_MAJORS = (2, 3)
#: The column Deep Lake 4 computes to tell a query's source rows (``v3_layout``).
ROW_COLUMN = "lakedet_source_row"
_warned: set = set()


class ChunkIndexError(ValueError):
    """A v3 chunk index (or its history) lakedet cannot read; the message says why."""


def _version(text: str) -> tuple:
    try:
        return tuple(int(part) for part in text.split("."))
    except ValueError:
        raise ChunkIndexError(f"its version {text!r} is not a Deep Lake version number") from None


def parse_chunk_index(data: bytes) -> tuple[str, np.ndarray]:
    """``(version, entries)`` of a v3 ``chunks_index/unsharded`` file: an ``(N, 2)`` int64 array
    of ``(chunk_id, last_index)``.

    Raises:
        ChunkIndexError: an unknown version, or bytes that are not such an index.
    """
    data = bytes(data)
    if not data:
        raise ChunkIndexError("the chunk index file is empty")
    length = data[0]
    try:
        version = data[1:1 + length].decode("ascii")
    except UnicodeDecodeError:
        raise ChunkIndexError("its version is not ASCII") from None
    numbers = _version(version)
    if numbers[0] not in KNOWN_INDEX_MAJORS:
        raise ChunkIndexError(f"it was written by Deep Lake {version}, whose chunk index format lakedet does not "
                              f"know (it reads those of Deep Lake {' and '.join(f'{m}.x' for m in KNOWN_INDEX_MAJORS)})")
    offset = 1 + length
    itemsize = 4
    if numbers >= (2, 7, 6):
        if len(data) <= offset:
            raise ChunkIndexError("it ends before its item size")
        itemsize = data[offset]
        offset += 1
        if itemsize not in (4, 8):
            raise ChunkIndexError(f"its item size is {itemsize} bytes (Deep Lake writes 4 or 8)")
    body = data[offset:]
    if len(body) % (2 * itemsize):
        raise ChunkIndexError(f"its {len(body)} bytes of entries are not pairs of {itemsize}-byte integers")
    entries = np.frombuffer(body, dtype=f"<u{itemsize}").reshape(-1, 2).astype(np.uint64)
    if len(entries) and np.any(np.diff(entries[:, 1].astype(np.int64)) < 0):
        raise ChunkIndexError("its rows do not ascend")
    return version, entries.view(np.int64) if itemsize == 8 else entries.astype(np.int64)


def parse_chunk_set(data: bytes | None) -> dict:
    """``{chunk name: (commit or None, key or None)}`` of a v3 ``chunk_set`` file (None or empty: none)."""
    found = {}
    for entry in (bytes(data or b"").decode("utf-8")).split(","):
        entry = entry.strip()
        if entry:
            name, commit, key = (entry.split(":") + [None, None])[:3]
            found[name] = (commit or None, key or None)
    return found


def chunk_name(chunk_id: int) -> str:
    """A chunk's file name: ``hex(chunk_id)`` without ``0x`` (lowercase, not zero-padded)."""
    return format(int(chunk_id) & 0xFFFFFFFFFFFFFFFF, "x")


def _folder(node: str) -> str:
    return "" if node == FIRST_COMMIT else f"versions/{node}/"


def chunk_key(key: str, name: str, node: str) -> str:
    """Where a chunk's file is, relative to the dataset: ``[versions/<node>/]<key>/chunks/<name>``."""
    return f"{_folder(node)}{key}/chunks/{name}"


def index_key(key: str, node: str) -> str:
    return f"{_folder(node)}{key}/chunks_index/unsharded"


def _history_files(key: str, node: str, history) -> list[str]:
    """The files a layout is read from: the node's index, and the ``chunk_set`` of every node of
    its history but the first commit (which has none)."""
    return [index_key(key, node)] + [f"{_folder(n)}{key}/chunk_set" for n in history if n != FIRST_COMMIT]


def read_layout(spec, node: str, column: str, head: bool = False, history=()) -> ChunkLayout:
    """The ``ChunkLayout`` of ``column`` at the v3 commit node ``node`` (chunk names are their
    storage keys; with ``head``, chunks of the node's own folder are marked not ``stable``).

    ``history``: ``node`` and its ancestors, newest first, when known (``V3Selection.history``);
    otherwise read from ``version_control_info.json``. The files are read in one round of
    concurrent reads (a second one only for a renamed column, whose storage key differs).

    Raises:
        ChunkIndexError: the index or the history cannot be read as Deep Lake 3 writes them.
        SourceError / SourceTimeout: storage failed or did not answer in time.
    """
    meta_key = f"{_folder(node)}dataset_meta.json"
    history = tuple(history)
    control = [] if history else ["version_control_info.json"]
    files = read_files(spec, [meta_key, *control, *_history_files(column, node, history)])
    if not history:
        control = parse_json(spec, "version_control_info.json", files["version_control_info.json"], ChunkIndexError)
        commits = dict((control or {}).get("commits") or {})
        if node != FIRST_COMMIT and node not in commits:
            raise ChunkIndexError(f"commit {node} is not in version_control_info.json")
        history = V3Info(spec.path, commits).history(node)
    key = ((parse_json(spec, meta_key, files[meta_key], ChunkIndexError) or {}).get("tensor_names") or {}).get(column)
    if key is None:
        raise ChunkIndexError(f"column {column!r} is not in the tensor_names of {meta_key}")
    needed = _history_files(key, node, history)
    missing = [name for name in needed if name not in files]
    if missing:  # a renamed column: its files are under its old key
        files.update(read_files(spec, missing))
    if files[index_key(key, node)] is None:
        raise ChunkIndexError(f"there is no {index_key(key, node)}")
    _, entries = parse_chunk_index(files[index_key(key, node)])
    chunk_sets = [(n, parse_chunk_set(files[f"{_folder(n)}{key}/chunk_set"])) for n in history if n != FIRST_COMMIT]

    def where(name: str) -> tuple[str, str]:
        for holder, listed in chunk_sets:
            if name in listed:
                commit, other = listed[name]
                return chunk_key(other or key, name, commit or holder), commit or holder
        return chunk_key(key, name, FIRST_COMMIT), FIRST_COMMIT

    bounds, names, stable = [0], [], []
    lasts, starts = np.unique(entries[:, 1], return_index=True)
    for last, begin, end in zip(lasts.tolist(), starts.tolist(), [*starts[1:].tolist(), len(entries)]):
        # a tiled row spans several consecutive entries with the same last_index: one block
        located = [where(chunk_name(c)) for c in entries[begin:end, 0].tolist()]
        bounds.append(int(last) + 1)
        names.append("+".join(k for k, _ in located))
        stable.append(not (head and any(holder == node for _, holder in located)))
    return ChunkLayout(np.asarray(bounds, np.int64), tuple(names), stable=tuple(stable))


def _query_rows(spec, selection) -> np.ndarray | None:
    """The source rows ``spec.query`` selects, from a column Deep Lake 4 computes (``ROW_NUMBER()``
    of the unfiltered source is the source row); None when the query does not keep that column."""
    what = "reading which rows deeplake_query selects"
    view = query_path(spec, f'SELECT *, ROW_NUMBER() AS {ROW_COLUMN} FROM "{selection.source}"', what)
    for text in ([row_query(None, selection.rows)] if selection.rows is not None else []) + [spec.query]:
        view = bounded(spec, lambda: view.query(text), lambda: view.query_async(text), what)
    if ROW_COLUMN not in {c.name for c in view.schema.columns}:
        return None
    column = view[ROW_COLUMN]
    rows = np.asarray(column[:]).reshape(-1).astype(np.int64)
    del column, view  # the column before its view
    return rows


def v3_layout(spec, origin, column: str, num_rows: int) -> ChunkLayout | None:
    """The layout of ``column`` of the opened v3 rows (``origin`` from ``open_deeplake3``;
    ``num_rows`` rows), or None with one warning naming why it cannot be known."""
    selection = origin.selection
    if selection is None or not selection.commit:
        return _unknown(spec, column, "the commit node that was read is unknown (the dataset's version_control_info.json "
                                      "cannot be read with these credentials)")
    try:
        layout = read_layout(spec, selection.commit, column, selection.head, selection.history)
        rows = None
        if spec.query:
            rows = _query_rows(spec, selection)
            if rows is None:
                return _unknown(spec, column, f"deeplake_query={spec.query!r} does not keep the column lakedet adds "
                                              "to tell its source rows (select * to keep it)")
        elif selection.rows is not None:
            rows = np.asarray(sorted(set(selection.rows)), np.int64)
    except ChunkIndexError as exc:
        return _unknown(spec, column, str(exc))
    except SourceTimeout:
        raise
    except Exception as exc:  # storage, or a query Deep Lake 4 refuses: rows are still readable one by one
        return _unknown(spec, column, f"{type(exc).__name__}: {exc}")
    if rows is None:
        if int(layout.bounds[-1]) != num_rows:
            return _unknown(spec, column, f"its chunk index lists {int(layout.bounds[-1])} rows, Deep Lake 4 reads "
                                          f"{num_rows}")
        return layout
    if len(rows) != num_rows or (len(rows) and (rows[-1] >= layout.bounds[-1] or np.any(np.diff(rows) <= 0))):
        return _unknown(spec, column, f"the {num_rows} selected rows do not map to distinct, ascending rows of the "
                                      f"{int(layout.bounds[-1])} its chunk index lists")
    return layout.selecting(rows, functools.partial(open_rows, spec, selection.source))


def _unknown(spec, column: str, why: str) -> None:
    key = (spec.path, column, why)
    if key not in _warned:
        _warned.add(key)
        logger.warning("%s: the storage layout of the Deep Lake 3 column %r is unknown (%s); its rows are read one "
                       "request each, in a full permutation", spec.path, column, why)
    return None
