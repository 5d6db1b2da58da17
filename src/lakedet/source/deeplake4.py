"""Deep Lake 4 datasets: opened read-only at a commit, then a saved view or a query."""

from __future__ import annotations

from ..errors import SourceError
from .remote import bounded, mark_remote_io, open_bounded
from .spec import Origin, SourceSpec
from .tql import run_query

__all__ = ["open_deeplake4", "open_path", "origin_of_deeplake4", "history"]


def open_path(spec: SourceSpec):
    """The dataset at ``spec.path``, read-only (remote opens bounded in time).

    Raises:
        SourceError: nothing there, refused credentials, unreachable storage (``explain_open_failure``).
        SourceTimeout: remote storage did not answer in time.
    """
    import deeplake

    kwargs = {}
    if spec.creds is not None:
        kwargs["creds"] = dict(spec.creds)
    if spec.token is not None:
        kwargs["token"] = spec.token
    if not spec.remote:
        try:
            return deeplake.open_read_only(spec.path, **kwargs)
        except Exception as exc:
            raise SourceError(f"cannot open Deep Lake dataset at deeplake_path={spec.path!r}: {exc}") from exc
    mark_remote_io()
    return open_bounded(deeplake.open_read_only_async(spec.path, **kwargs), spec)


def origin_of_deeplake4(ds) -> Origin:
    """Branch and commit of an opened Deep Lake 4 dataset (views do not know theirs: None)."""
    return Origin(getattr(getattr(ds, "current_branch", None), "name", None), getattr(ds, "version", None))


def open_deeplake4(spec: SourceSpec, ds=None):
    """``(dataset or view, Origin)``: ``spec.path`` (or the already opened ``ds``) at
    ``spec.commit``, then ``spec.view`` or ``spec.query``.

    Raises:
        SourceError: unknown commit or view (the message lists what exists), a failed query, or
            both a view and a query.
    """
    ds = open_path(spec) if ds is None else ds
    spec.refuse_view_and_query()
    if spec.commit:
        ds = _checkout(ds, spec)
    origin = origin_of_deeplake4(ds)
    if spec.view:
        tag = _find_view(ds, spec)
        origin = Origin(origin.branch, str(tag.version))  # the commit the view was saved at
        ds = bounded(spec, tag.open, tag.open_async, f"opening saved view deeplake_view_id={spec.view!r}")
    elif spec.query:
        ds = run_query(ds, spec)
    return ds, origin


def history(spec: SourceSpec) -> list[tuple[str, str, str]]:
    """The dataset's commits, oldest first: ``(id, time, message)``."""
    base = open_path(SourceSpec(spec.path, token=spec.token, creds=spec.creds))
    return [(v.id, str(v.timestamp), v.message or "") for v in base.history]


def _checkout(ds, spec: SourceSpec):
    try:
        version = ds.history[spec.commit]
    except Exception:
        recent = [f"{v.id} ({v.message or 'no message'})" for v in list(ds.history)[-10:]][::-1]
        raise SourceError(f"deeplake_commit_id={spec.commit!r}: no such commit in {spec.path!r}; "
                          f"recent commits: {', '.join(recent) or '(none)'}") from None
    return bounded(spec, version.open, version.open_async, f"opening commit deeplake_commit_id={spec.commit!r}")


def _find_view(ds, spec: SourceSpec):
    names = list(ds.tags.names())
    if spec.view not in names:
        raise SourceError(f"deeplake_view_id={spec.view!r}: no saved view (tag) of that name in "
                          f"{spec.path!r}; saved views: {names or '(none)'}")
    return ds.tags[spec.view]
