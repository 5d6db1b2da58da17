"""``lakedet convert SRC DEST``: a Deep Lake 3 dataset as a new Deep Lake 4 dataset.

Reading v3 data needs no conversion (``lakedet.source.deeplake3`` reads it in place); converting is for
what Deep Lake 4 can only do on its own format, e.g. ``lakedet predict`` writing a branch.

The data of one v3 ref goes through ``deeplake.convert`` (rows, stored JPEG bytes, masks,
polygons, column metadata such as ``coords`` and ``class_names``). What ``deeplake.convert`` drops
is then added: each v3 saved view becomes a v4 saved view (a tag) of the same id over the same
rows, and the v3 source (path, commit, branch, whether uncommitted changes were included, the
views) goes into the dataset metadata ``deeplake3_source`` and the message of a final commit,
which adds the column ``deeplake3_row`` (each row's v3 row index; Deep Lake 4 makes no commit
for a metadata change alone). History,
other branches and optimized (copied) views are not converted.

The ref: ``None`` (default) is the latest commit of ``main``; a branch name is that branch's
latest commit; a commit id is that commit; ``HEAD`` is ``main``'s HEAD with its uncommitted
changes (never taken unless asked). A local DEST is written into a hidden sibling folder and
renamed into place when complete: an interrupted conversion leaves nothing readable at DEST (and
the sibling is removed). The v3 folder is only read.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from ..errors import ConfigError, SourceError

__all__ = ["ConvertReport", "convert_deeplake3", "resolve_ref", "METADATA_KEY", "ROW_COLUMN"]

logger = logging.getLogger("lakedet")

#: The dataset metadata key holding what was converted (a dict; see ``convert_deeplake3``).
METADATA_KEY = "deeplake3_source"
#: The column convert adds: each row's index in the converted v3 commit (and the change that
#: carries the commit message naming the source).
ROW_COLUMN = "deeplake3_row"


@dataclass
class ConvertReport:
    """What ``convert_deeplake3`` did."""

    source: str  # the v3 path
    dest: str
    commit: str  # the v3 node converted
    branch: str | None
    head: bool  # the node was a branch's HEAD (uncommitted changes included)
    rows: int
    views: dict[str, int] = field(default_factory=dict)  # view id -> rows, kept as tags
    skipped_views: dict[str, str] = field(default_factory=dict)  # view id -> why not kept
    seconds: float = 0.0
    convert_seconds: float = 0.0  # of which deeplake.convert


def resolve_ref(info, ref: str | None) -> tuple[str, str | None, bool]:
    """``(node, branch, head)`` of a ``--ref`` (see the module docstring).

    Raises:
        SourceError: no such commit or branch (the message lists what exists).
    """
    from ..source.deeplake3 import HEAD

    if ref == HEAD:
        return info.branches["main"], "main", True
    if ref is None or ref in info.branches:
        branch = ref or ("main" if "main" in info.branches else sorted(info.branches)[0])
        node = info.latest_commit(branch)
        return node, branch, not info.is_committed(node)
    if ref in info.commits:
        return ref, info.commits[ref].get("branch"), not info.is_committed(ref)
    raise SourceError(f"--ref {ref!r}: no such commit or branch in the Deep Lake 3 dataset {info.path!r}; "
                      f"{info.available()}; or HEAD for main's uncommitted changes")


def _exists(dest: str, creds, token) -> bool:
    from ..source.deeplake3 import local_path

    folder = local_path(dest)
    if folder is not None:
        return os.path.exists(folder)
    import deeplake

    kwargs = {k: v for k, v in (("creds", creds), ("token", token)) if v is not None}
    return bool(deeplake.exists(dest, **kwargs))


def convert_deeplake3(src: str, dest: str, ref: str | None = None, token: str | None = None,
                      creds: Mapping | None = None, dest_creds: Mapping | None = None,
                      progress: Callable[[str], None] | None = print) -> ConvertReport:
    """Convert one ref of the Deep Lake 3 dataset ``src`` into a new Deep Lake 4 dataset ``dest``.

    Args:
        src: the v3 dataset (local, ``file://``, ``s3://``, ``hub://`` ...).
        dest: where the v4 dataset goes; must not exist.
        ref: commit id, branch, ``HEAD`` or None (the latest commit of ``main``).
        token, creds: to read ``src`` (and, for ``hub://``, write ``dest``); ``dest_creds``: to write ``dest``.
        progress: called with a line of text for each step.

    Raises:
        SourceError: ``src`` is not a Deep Lake 3 dataset, ``dest`` exists, or the ref is unknown.
    """
    import deeplake

    from ..source import SourceSpec, dataset_format, deeplake3
    from ..source.tql import row_query

    say = progress or (lambda text: None)
    started = time.monotonic()
    spec = SourceSpec(src, token=token, creds=creds)
    if dataset_format(spec) != deeplake3.V3_FORMAT:
        raise SourceError(f"lakedet convert: SRC={src!r} is not a Deep Lake 3 dataset (no v3 dataset_meta.json "
                          "there, or it already is a Deep Lake 4 dataset, which needs no conversion)")
    src_folder, dest_folder = deeplake3.local_path(src), deeplake3.local_path(dest)
    if src_folder and dest_folder:
        a, b = os.path.realpath(src_folder), os.path.realpath(dest_folder)
        if b == a or b.startswith(a.rstrip(os.sep) + os.sep):
            raise ConfigError(f"lakedet convert: DEST={dest!r} is inside the Deep Lake 3 dataset {src!r}, which is "
                              "never written to; give a path outside it, e.g. " f"{src.rstrip('/')}-v4")
    if _exists(dest, dest_creds, token):
        raise SourceError(f"lakedet convert: DEST={dest!r} already exists; convert never overwrites: give a new "
                          "path, or delete it first")
    info = deeplake3.read_info(spec)
    node, branch, head = resolve_ref(info, ref)
    message = info.commits.get(node, {}).get("commit_message")
    source = f"{src}@{node}"
    work = dest
    if dest_folder is not None:
        parent, name = os.path.split(os.path.abspath(dest_folder))
        work = os.path.join(parent, f".{name}.converting-{os.getpid()}")
        shutil.rmtree(work, ignore_errors=True)
    say(f"lakedet convert: {src} at {'HEAD ' if head else ''}commit {node} (branch {branch}"
        f"{', uncommitted changes included' if head else ''}) -> {dest}")
    ds = None
    try:
        t0 = time.monotonic()
        with _aws_environment(creds if src.startswith("s3://") else None):
            # the source opened first with a bound (deeplake.convert's own open waits minutes on refused
            # credentials): a Deep Lake 3 path Deep Lake 4 cannot read fails here, within LAKEDET_OPEN_TIMEOUT
            rows_before = len(deeplake3.open_selection(spec, deeplake3.V3Selection(source, branch, node, head)))
            deeplake.convert(source, work, dst_creds=dict(dest_creds) if dest_creds else None, token=token)
        convert_seconds = time.monotonic() - t0
        kwargs = {k: v for k, v in (("creds", dict(dest_creds) if dest_creds else None), ("token", token))
                  if v is not None}
        ds = deeplake.open(work, **kwargs)
        rows = len(ds)
        if rows != rows_before:
            raise SourceError(f"lakedet convert: deeplake.convert wrote {rows} rows of {source}, which holds "
                              f"{rows_before}; nothing is kept at DEST")
        say(f"  data: {rows} rows in {convert_seconds:.1f} s ({rows / max(convert_seconds, 1e-9):.0f} rows/s, "
            "deeplake.convert)")
        views, skipped, plans = {}, {}, []
        for entry in info.views:
            view_id = str(entry.get("id"))
            try:
                selection = deeplake3.select(spec, info, view=view_id)
            except SourceError as exc:
                skipped[view_id] = str(exc)
                continue
            rows_of_view = sorted(set(selection.rows))
            if rows_of_view and rows_of_view[-1] >= rows:
                skipped[view_id] = (f"saved at commit {selection.commit}, its rows reach row {rows_of_view[-1]}; "
                                    f"the converted commit has {rows} rows")
                continue
            plans.append((view_id, selection, rows_of_view, entry))
        record = dict(path=src, ref=ref, commit=node, branch=branch, head=head, commit_message=message,
                      rows=rows, deeplake3_version=_v3_version(spec), converted_at=time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                                                   time.gmtime()),
                      views={view_id: dict(saved_at=sel.commit, rows=len(r), message=e.get("message"),
                                           same_commit=sel.commit == node) for view_id, sel, r, e in plans},
                      skipped_views=skipped)
        ds.metadata[METADATA_KEY] = {k: v for k, v in record.items() if v is not None}
        # a commit needs a change to the rows (metadata alone makes none): each row's v3 row index
        import numpy as np

        ds.add_column(ROW_COLUMN, deeplake.types.Int64())
        if rows:
            ds[ROW_COLUMN][0:rows] = np.arange(rows, dtype=np.int64)
        ds.commit(f"lakedet convert: Deep Lake 3 dataset {src} at commit {node} (branch {branch}"
                  f"{', uncommitted changes included' if head else ''}"
                  f"{f', message {message!r}' if message else ''})")
        for view_id, selection, rows_of_view, entry in plans:
            ds.query(row_query(None, rows_of_view)).tag(view_id, message=entry.get("message") or f"Deep Lake 3 saved view {view_id}")
            views[view_id] = len(rows_of_view)
            note = "" if selection.commit == node else (f" (saved at commit {selection.commit}: the values are "
                                                         f"those of commit {node})")
            say(f"  saved view {view_id!r}: {len(rows_of_view)} rows -> tag {view_id!r}{note}")
            if note:
                logger.warning("lakedet convert: view %r was saved at commit %s; its %d rows are tagged on the "
                               "converted commit %s, whose values they now show", view_id, selection.commit,
                               len(rows_of_view), node)
        for view_id, why in skipped.items():
            say(f"  saved view {view_id!r} not kept: {why}")
        del ds  # closed here (a Dataset collected later would commit again)
        ds = None
        if work != dest:
            if os.path.exists(dest_folder):
                raise SourceError(f"lakedet convert: DEST={dest!r} appeared while converting; the conversion is "
                                  f"left at {work!r}")
            os.rename(work, dest_folder)
    except BaseException:
        ds = None
        gc.collect()  # a Dataset object collected later would commit into the removed folder
        if work != dest:
            shutil.rmtree(work, ignore_errors=True)
        raise
    seconds = time.monotonic() - started
    say(f"  done in {seconds:.1f} s: {dest} ({rows} rows, {len(views)} saved views)")
    return ConvertReport(src, dest, node, branch, head, rows, views, skipped, seconds, convert_seconds)


#: ``creds`` keys -> the environment variables Deep Lake's S3 client reads.
_AWS_VARIABLES = {"aws_access_key_id": "AWS_ACCESS_KEY_ID", "aws_secret_access_key": "AWS_SECRET_ACCESS_KEY",
                  "aws_session_token": "AWS_SESSION_TOKEN", "endpoint_url": "AWS_ENDPOINT_URL",
                  "aws_region": "AWS_REGION"}


@contextlib.contextmanager
def _aws_environment(creds: Mapping | None):
    """``deeplake.convert`` takes no credentials for its source: for an ``s3://`` SRC the given
    ``creds`` are lent to Deep Lake's S3 client through the environment while it runs (measured:
    it reads ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` / ``AWS_ENDPOINT_URL``), then restored."""
    names = {_AWS_VARIABLES[k]: str(v) for k, v in (creds or {}).items() if k in _AWS_VARIABLES and v}
    saved = {name: os.environ.get(name) for name in names}
    os.environ.update(names)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _v3_version(spec) -> str | None:
    from ..source.deeplake3 import read_json

    return (read_json(spec, "dataset_meta.json") or {}).get("version")
