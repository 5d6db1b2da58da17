"""Deep Lake 3 (v3-format) datasets, read in place through Deep Lake 4's query path.

Deep Lake 4 cannot open a v3 dataset (``deeplake.open*`` raise ``LogNotexistsError``), but its
query engine reads one: ``deeplake.query('SELECT * FROM "<path>@<ref>"')`` returns a read-only
``DatasetView`` with the v3 columns, their ``coords`` / ``class_names`` metadata and the stored
image bytes. This module gives the seed's keys their v3 meaning on top of that:

* ``deeplake_commit_id``: a v3 commit id or branch name (``<path>@<ref>``); without it, the HEAD
  of ``main`` *including uncommitted changes*, which is what ``deeplake.load`` gave in v3;
* ``deeplake_view_id``: a v3 saved view, ``<path>/.queries/<id>/``: its ``VDS_INDEX`` column lists
  the source rows, its entry in ``queries.json`` (and its ``dataset_info.json``) the version they
  were saved at (``source-dataset-version``); the rows are read at that version;
* ``deeplake_query``: a TQL query run over either.

Refs and view ids are checked against the dataset's own ``version_control_info.json`` and
``queries.json`` before any query names them, so an unknown one is a ``SourceError`` that lists
what exists, and no query ever names ``<path>/versions/<id>`` (Deep Lake 4 can hang forever
there). Nothing here writes: a v3 folder is never modified (``deeplake.create`` or
``deeplake.convert(p, p)`` on it would write ``_deeplake_log/`` into it and hide the v3 data).
Every read of remote storage (metadata files, queries) is bounded in time (``lakedet.source.deadline``).

A v3 ``DatasetView`` must stay referenced while any of its columns is used: a ``ColumnView`` that
outlives its view crashes the interpreter (Deep Lake 4.7.4). Code here binds every view to a name
before taking a column. Pickled, a v3 view carries only its query string (DataLoader workers
started by spawn re-run it).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError, SourceError, SourceTimeout, did_you_mean
from .deadline import wait
from .remote import OPEN_TIMEOUT_S, bounded
from .spec import Origin, SourceSpec, is_remote
from .tql import query_path, row_query, run_query

__all__ = ["V3_FORMAT", "V4_FORMAT", "FIRST_COMMIT", "V3Info", "V3Selection", "is_deeplake3_folder", "local_path", "refuse_writing_into",
           "read_info", "read_json", "read_files", "parse_json", "probe_remote", "probe_info", "select", "open_selection", "open_deeplake3", "history_deeplake3",
           "deeplake3_source_of", "check_path", "HEAD", "open_rows", "reopen"]

logger = logging.getLogger("lakedet")

V3_FORMAT, V4_FORMAT = "deeplake3", "deeplake4"
#: ``--ref HEAD`` / ``deeplake_commit_id="HEAD"``: the HEAD of ``main``, uncommitted changes included.
HEAD = "HEAD"
#: Deep Lake 3's id of every dataset's first commit (its files are at the dataset's root).
FIRST_COMMIT = "firstdbf9474d461a19e9333c2fd19b46115348f"
#: A commit id, branch or view id that can be put inside a quoted FROM source (no quotes, no '/', no '@').
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")
_logged: set[str] = set()
#: (path, token, source) -> the ref's rows this process opened last (``open_rows``).
_opened: dict = {}


def local_path(path: str) -> str | None:
    """The folder of a local dataset URL (plain path or ``file://``), else None."""
    if path.startswith("file://"):
        return path[len("file://"):]
    return None if "://" in path else path


def is_deeplake3_folder(path: str) -> bool:
    """A local folder written by Deep Lake 3: ``dataset_meta.json`` and no Deep Lake 4 log."""
    folder = local_path(path)
    return (folder is not None and os.path.isfile(os.path.join(folder, "dataset_meta.json"))
            and not os.path.exists(os.path.join(folder, "_deeplake_log")))


def refuse_writing_into(path: str, command: str, what: str = "DEST", creds=None, token=None) -> None:
    """Stop a command that would write into a Deep Lake 3 dataset (``deeplake.create`` there writes
    ``_deeplake_log/`` and hides the v3 data from Deep Lake 4; other files would change the folder).

    Raises:
        SourceError: ``path`` holds a Deep Lake 3 dataset.
    """
    v3 = is_deeplake3_folder(path) or (is_remote(path) and probe_remote(SourceSpec(path, token=token, creds=creds)))
    if v3:
        raise SourceError(f"lakedet {command}: {what}={path!r} holds a Deep Lake 3 dataset, which lakedet never "
                          "writes into; choose another path (`lakedet convert` makes a Deep Lake 4 copy of it)")


@dataclass(frozen=True)
class V3Info:
    """What a v3 dataset's own metadata files say: commits (``version_control_info.json``:
    id -> branch, parent, message, time; an uncommitted head node has no time), branch heads and
    saved views (``queries.json``)."""

    path: str
    commits: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    branches: Mapping[str, str] = field(default_factory=dict)
    views: tuple | None = ()  # None: queries.json was not read
    readable: bool = True  # False: the files could not be read (remote storage reached by queries only)

    def is_committed(self, node: str) -> bool:
        return self.commits.get(node, {}).get("commit_time") is not None

    def latest_commit(self, branch: str) -> str:
        """The newest committed node of ``branch`` (its head when the head itself is committed)."""
        node = self.branches[branch]
        while node and not self.is_committed(node):
            node = self.commits.get(node, {}).get("parent")
        return node or self.branches[branch]

    def view(self, view_id: str) -> Mapping[str, Any] | None:
        return next((v for v in self.views or () if v.get("id") == view_id), None)

    def view_ids(self) -> list[str]:
        return [str(v.get("id")) for v in self.views or ()]

    def history(self, node: str | None) -> tuple:
        """``node`` and its ancestors, newest first (``version_control_info.json``'s parents)."""
        chain: list = []
        while node and node not in chain:
            chain.append(node)
            node = (self.commits.get(node) or {}).get("parent")
        return tuple(chain)

    def recent_commits(self, limit: int = 10) -> list[str]:
        done = sorted((c for c in self.commits.items() if c[1].get("commit_time") is not None),
                      key=lambda c: c[1]["commit_time"], reverse=True)
        return [f"{cid} ({info.get('commit_message') or 'no message'}, branch {info.get('branch')})"
                for cid, info in done[:limit]]

    def available(self) -> str:
        """Branches, recent commits and saved views, for error messages."""
        views = "" if self.views is None else f"; saved views: {self.view_ids() or '(none)'}"
        return (f"branches: {sorted(self.branches) or '(none)'}; commits: {', '.join(self.recent_commits()) or '(none)'}"
                f"{views}")


@dataclass(frozen=True)
class V3Selection:
    """The rows a v3 source selects: ``source`` (``<path>`` or ``<path>@<node>``, the FROM of the
    query), ``rows`` (a saved view's source rows, in the view's order) and what it was read at."""

    source: str
    branch: str | None
    commit: str | None  # the v3 node read (a commit id, or a branch's head node)
    head: bool  # the node is a branch's HEAD: uncommitted changes are included
    rows: tuple | None = None
    view: str | None = None
    history: tuple = ()  # ``commit`` and its ancestors, newest first (where its chunks may be stored)


def _reader(spec):
    from deeplake._deeplake.storage import Reader

    kwargs = {}
    if spec.creds is not None:
        kwargs["creds"] = dict(spec.creds)
    if spec.token is not None:
        kwargs["token"] = spec.token
    return Reader(spec.path, **kwargs)


def read_files(spec, keys, reader=None) -> dict:
    """Files of the dataset at ``spec.path``, read concurrently: ``{key: bytes or None (absent)}``;
    remote reads bounded together (``OPEN_TIMEOUT_S`` for all of them).

    Raises:
        SourceError: a file cannot be read.
        SourceTimeout: remote storage did not answer in time.
    """
    import time

    reader = reader or _reader(spec)
    keys = list(dict.fromkeys(keys))
    deadline = time.monotonic() + OPEN_TIMEOUT_S
    started = {}
    for key in keys if spec.remote else ():
        try:
            started[key] = reader.get_async(key)
        except Exception as exc:  # raised again below, where the key is named
            started[key] = exc
    found = {}
    for key in keys:
        try:
            if isinstance(started.get(key), Exception):
                raise started[key]
            if spec.remote:
                data = wait(started[key], f"reading {key} of deeplake_path={spec.path!r}", OPEN_TIMEOUT_S, deadline,
                            error=SourceTimeout, setting="LAKEDET_OPEN_TIMEOUT")
            else:
                data = reader.get(key)
            found[key] = bytes(data)
        except KeyError:
            found[key] = None
        except SourceTimeout:
            raise
        except Exception as exc:
            text = str(exc).lower()
            if "not found" in text or "nosuchkey" in text:
                found[key] = None
                continue
            if "invalidrange" in text or "status=416" in text:
                # Deep Lake reads from byte 0 on: storage refuses that range of an EMPTY object
                # (Deep Lake 3 writes empty chunk_set files); a missing one would be a 404
                found[key] = b""
                continue
            raise SourceError(f"deeplake_path={spec.path!r}: cannot read the Deep Lake 3 file {key!r}: {exc}") from exc
    return found


def read_json(spec, key: str, reader=None):
    """A JSON file of the dataset at ``spec.path`` (None when absent); remote reads bounded
    (``OPEN_TIMEOUT_S``).

    Raises:
        SourceError: the file cannot be read or is not JSON.
        SourceTimeout: remote storage did not answer in time.
    """
    return parse_json(spec, key, read_files(spec, [key], reader)[key])


def parse_json(spec, key: str, data: bytes | None, error: type = SourceError):
    """The JSON in ``data``, the bytes of the file ``key`` (None: absent, None).

    Raises:
        ``error`` (default SourceError): the bytes are not JSON; the message names the file.
    """
    if data is None:
        return None
    try:
        return json.loads(data.decode("utf-8"))
    except ValueError as exc:
        raise error(f"deeplake_path={spec.path!r}: the Deep Lake 3 file {key!r} is not valid JSON ({exc})") from exc


def probe_remote(spec) -> bool:
    """True when remote ``spec.path`` holds a Deep Lake 3 dataset: its ``dataset_meta.json`` is
    there or, where the storage cannot be listed by path (a ``hub://`` dataset whose storage the
    token does not reveal), Deep Lake 4's query path reads it. Bounded in time either way."""
    try:
        return read_json(spec, "dataset_meta.json") is not None
    except SourceTimeout:
        return False
    except Exception:
        if not spec.path.startswith(("hub://", "al://")):
            return False
    try:
        query_path(spec, f'SELECT * FROM "{spec.path}" LIMIT 0', "probing for a Deep Lake 3 dataset")
        return True
    except Exception:
        return False


def read_info(spec, views: bool = True, probe: bool = False) -> V3Info | None:
    """The commits, branches and (with ``views``) saved views of the v3 dataset at ``spec.path``,
    its metadata files read together. With ``probe``, ``dataset_meta.json`` is read with them and
    None returned when it is absent (no Deep Lake 3 dataset there): one round of requests both
    detects a remote v3 dataset and reads what opening it needs."""
    remote = spec.remote
    try:
        names = ["version_control_info.json", "queries.json"] if views else ["version_control_info.json"]
        files = read_files(spec, ["dataset_meta.json", *names] if probe else names)
        if probe and files["dataset_meta.json"] is None:
            return None
        found = {name: parse_json(spec, name, files[name]) for name in names}
        control = found["version_control_info.json"] or {}
        listed = found.get("queries.json") or []
    except SourceTimeout:
        raise
    except Exception as exc:
        if not remote or probe:
            raise
        # storage Deep Lake 4 reads through its query path only (hub:// with a token): refs cannot be
        # checked first (Deep Lake's own error then says what is wrong), saved views cannot be resolved
        logger.warning("%s: the Deep Lake 3 metadata files cannot be read (%s); commit ids and branches are "
                       "passed to Deep Lake unchecked, saved views cannot be resolved", spec.path, exc)
        return V3Info(spec.path, readable=False)
    return V3Info(spec.path, dict(control.get("commits") or {}), dict(control.get("branches") or {}),
                  tuple(v for v in listed if isinstance(v, Mapping)) if views else None)


def check_path(path: str) -> None:
    """Refuse a path a v3 query cannot name, or a v3 dataset's internal folder (with what to give instead)."""
    if '"' in path:
        raise ConfigError(f"deeplake_path={path!r}: a Deep Lake 3 dataset is read through a TQL query, "
                          "which cannot name a path containing '\"'; rename or copy the dataset")
    parts = path.rstrip("/").split("/")
    if len(parts) >= 3 and parts[-2] in ("versions", ".queries"):
        root = "/".join(parts[:-2])
        if parts[-2] == "versions":  # Deep Lake 4 can hang forever on a query of this folder
            raise SourceError(f"deeplake_path={path!r} is the internal folder of a Deep Lake 3 commit; give the "
                              f"dataset and the commit: deeplake_path={root!r}, deeplake_commit_id={parts[-1]!r}")
        raise SourceError(f"deeplake_path={path!r} is the folder of a Deep Lake 3 saved view; give the dataset and "
                          f"the view: deeplake_path={root!r}, deeplake_view_id={parts[-1]!r}")


def select(spec, info: V3Info, ref: str | None = None, view: str | None = None) -> V3Selection:
    """Resolve a ref (commit id, branch, ``HEAD``; None: ``main``'s HEAD) or a saved view to rows.

    Raises:
        SourceError: unknown commit, branch or view (the message lists what exists), or a view
            Deep Lake 4 cannot read as saved.
    """
    check_path(spec.path)
    if view is not None:
        return _select_view(spec, info, view, ref)
    if ref is None or ref == HEAD:
        branch = "main" if "main" in info.branches or not info.branches else sorted(info.branches)[0]
        return V3Selection(spec.path, branch, info.branches.get(branch), True)
    if not info.readable and _SAFE_NAME.match(ref):
        return V3Selection(f"{spec.path}@{ref}", None, ref, False)
    if not _SAFE_NAME.match(ref) or (ref not in info.branches and ref not in info.commits):
        if info.views is None:  # the error lists the saved views too (queries.json, read only now)
            info = dataclasses.replace(info, views=tuple(v for v in read_json(spec, "queries.json") or ()
                                                         if isinstance(v, Mapping)))
        raise SourceError(f"deeplake_commit_id={ref!r}: no such commit or branch in the Deep Lake 3 dataset "
                          f"{spec.path!r}; {info.available()}")
    if ref in info.branches:
        return V3Selection(f"{spec.path}@{ref}", ref, info.branches[ref], True)
    node = info.commits[ref]
    return V3Selection(f"{spec.path}@{ref}", node.get("branch"), ref, not info.is_committed(ref))


def _select_view(spec, info: V3Info, view_id: str, ref: str | None) -> V3Selection:
    entry = info.view(view_id)
    if not info.readable:
        raise SourceError(f"deeplake_view_id={view_id!r}: the saved views of the Deep Lake 3 dataset {spec.path!r} "
                          "cannot be listed (its queries.json cannot be read with these credentials); convert it "
                          "with `lakedet convert` (its views become tags) or select the rows with deeplake_query")
    if entry is None or not _SAFE_NAME.match(view_id):
        raise SourceError(f"deeplake_view_id={view_id!r}: no saved view of that id in the Deep Lake 3 dataset "
                          f"{spec.path!r} (its queries.json); saved views: {info.view_ids() or '(none)'}"
                          f"{did_you_mean(view_id, info.view_ids())}")
    if not entry.get("virtual-datasource", True):
        raise SourceError(f"deeplake_view_id={view_id!r} of {spec.path!r} is an optimized (copied) Deep Lake 3 view; "
                          "lakedet reads virtual views (rows of the dataset). Convert the dataset "
                          "(`lakedet convert`) and select the rows with deeplake_query, or save the view unoptimized")
    if entry.get("sub-sample-index"):
        raise SourceError(f"deeplake_view_id={view_id!r} of {spec.path!r} selects parts of samples "
                          f"(sub-sample-index {entry['sub-sample-index']}); lakedet reads views of whole rows")
    version = str(entry.get("source-dataset-version") or FIRST_COMMIT)
    if not _SAFE_NAME.match(version) or (info.commits and version not in info.commits):
        raise SourceError(f"deeplake_view_id={view_id!r}: the view was saved at version {version!r}, which the "
                          f"Deep Lake 3 dataset {spec.path!r} does not hold; {info.available()}")
    if ref is not None and ref != version:
        logger.warning("deeplake_view_id=%r: a Deep Lake 3 view is read at the version it was saved at (%s), as "
                       "Deep Lake 3's load_view did; deeplake_commit_id=%r is not used", view_id, version, ref)
    rows = _view_rows(spec, view_id, entry)
    return V3Selection(f"{spec.path}@{version}", info.commits.get(version, {}).get("branch"), version,
                       not info.is_committed(version), tuple(rows), view_id)


def _view_rows(spec, view_id: str, entry: Mapping) -> list[int]:
    """The source rows of a saved view: its ``VDS_INDEX`` column (``.queries/<id>/``)."""
    import numpy as np

    try:
        vds = query_path(spec, f'SELECT * FROM "{spec.path}/.queries/{view_id}"',
                     f"reading saved view deeplake_view_id={view_id!r}")
        column = vds["VDS_INDEX"]
        values = column[:]
        rows = np.asarray(values).reshape(-1).astype(np.int64).tolist()
        del values, column, vds  # the column before its view
    except SourceTimeout:
        raise
    except Exception as exc:
        index = entry.get("source-dataset-index")
        if isinstance(index, list) and len(index) == 1 and isinstance(index[0], list):
            logger.warning("deeplake_view_id=%r: its VDS_INDEX cannot be read (%s); using the row index "
                           "queries.json recorded for it", view_id, exc)
            return [int(r) for r in index[0]]  # the index queries.json recorded
        raise SourceError(f"deeplake_view_id={view_id!r}: cannot read the rows of the saved view "
                          f"({spec.path}/.queries/{view_id}/VDS_INDEX): {exc}") from exc
    if not entry.get("first-index-subscriptable", True):
        rows = rows[:1]
    return rows


def open_selection(spec, selection: V3Selection):
    """The read-only ``DatasetView`` of a selection, ``spec.query`` applied on top."""
    if selection.rows is not None:
        rows = list(selection.rows)
        if rows != sorted(set(rows)):
            logger.warning("deeplake_view_id=%r lists its rows out of dataset order or repeats some: lakedet reads "
                           "its %d distinct rows in dataset order", selection.view, len(set(rows)))
    what = (f"opening saved view deeplake_view_id={selection.view!r}" if selection.view
            else f"opening Deep Lake 3 {'commit ' + selection.commit if selection.commit else 'dataset'}")
    try:
        # the ref's rows first, the view's rows selected from them: Deep Lake 4 reads the v3
        # metadata once, and chunk reads of the view's layout slice the same object (``open_rows``)
        view = source = query_path(spec, f'SELECT * FROM "{selection.source}"', what)
        _opened[(spec.path, spec.token, selection.source)] = source
        if selection.rows is not None:
            text = row_query(None, rows)
            view = bounded(spec, lambda: source.query(text), lambda: source.query_async(text), what)
    except SourceTimeout:
        raise
    except Exception as exc:
        raise SourceError(f"cannot read the Deep Lake 3 dataset {spec.path!r} ({selection.source}): {exc}") from exc
    if spec.query:
        view = run_query(view, spec)
    if spec.path not in _logged:
        _logged.add(spec.path)
        logger.info("%s is a Deep Lake 3 dataset: read in place, read-only, through Deep Lake 4's query path "
                    "(%s%s)", spec.path, selection.source,
                    ", uncommitted changes included" if selection.head else "")
    return view


def open_rows(spec, source: str):
    """The rows of ``source`` (``<path>[@<ref>]``, a selection's ``source``): the ones this process
    opened last (``open_selection``), else opened now. What chunk reads of a saved view's or a
    query's layout slice (``ChunkLayout.reopen``: DataLoader workers open it once each)."""
    key = (spec.path, spec.token, source)
    if key not in _opened:
        _opened[key] = query_path(spec, f'SELECT * FROM "{source}"', f"opening {source} for chunk reads")
    return _opened[key]


def reopen(spec, origin: Origin):
    """The rows ``open_deeplake3`` opened (``origin`` from it), opened again in another process (a
    DataLoader worker) from the selection it resolved: no metadata is read again."""
    return open_selection(spec, origin.selection)


def probe_info(spec) -> V3Info | None:
    """The ``V3Info`` of remote ``spec.path`` when it holds a Deep Lake 3 dataset, else None: its
    marker and metadata files read in one round (``read_info(probe=True)``); where the storage
    cannot be read by path (``hub://`` with a token), Deep Lake 4's query path is asked instead
    (``probe_remote``) and the info is unreadable. Bounded in time; a timeout means None."""
    try:
        return read_info(spec, views=spec.view is not None, probe=True)
    except SourceTimeout:
        return None
    except Exception:
        return read_info(spec, views=spec.view is not None) if probe_remote(spec) else None


def open_deeplake3(spec: SourceSpec, info: V3Info | None = None):
    """``(view, Origin)`` of a Deep Lake 3 dataset: the ref or saved view resolved from its own
    metadata (``info``, when already read), then queried."""
    info = info if info is not None else read_info(spec, views=spec.view is not None)
    selection = select(spec, info, spec.commit, spec.view)
    selection = dataclasses.replace(selection, history=info.history(selection.commit))
    view = open_selection(spec, selection)
    return view, Origin(selection.branch, selection.commit, V3_FORMAT, selection.head, selection)


def history_deeplake3(spec: SourceSpec) -> list[tuple[str, str, str]]:
    """The commits of every branch, oldest first: ``(id, time, message (branch))``, from
    ``version_control_info.json``."""
    import datetime

    info = read_info(spec)
    done = sorted((c for c in info.commits.items() if c[1].get("commit_time") is not None),
                  key=lambda c: c[1]["commit_time"])
    return [(cid, str(datetime.datetime.fromtimestamp(c["commit_time"], datetime.timezone.utc)),
             f"{c.get('commit_message') or ''} (branch {c.get('branch')})") for cid, c in done]


def deeplake3_source_of(view):
    """``(path, ref or None)`` of the local Deep Lake 3 dataset a query view reads (a caller's
    ``deeplake.query('SELECT * FROM "<v3 path>@<ref>"')``), else None."""
    try:
        chain = json.loads(view.__getstate__()[0])  # what pickling a DatasetView keeps: its queries
        text = next(step["query_string"] for step in chain if "query_string" in step)
    except Exception:
        return None
    match = re.search(r'FROM\s+"([^"]+)"', text, re.IGNORECASE)
    if not match:
        return None
    path, _, ref = match.group(1).partition("@")
    return (path, ref or None) if is_deeplake3_folder(path) else None
