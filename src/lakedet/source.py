"""Opening a Deep Lake dataset read-only: path, credentials, commit, saved view, query.

This is the only module that calls ``deeplake.open*``. A ``SourceSpec`` says what to open;
``open_source`` returns a read-only dataset or view. Training and evaluation never write to it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError, SourceError, SourceTimeout

__all__ = ["SourceSpec", "Origin", "open_source", "open_source_with_origin", "origin_of", "is_deeplake_dataset", "is_remote", "check_credentials", "OPEN_TIMEOUT_S"]

_TOKEN_SCHEMES = ("hub://", "al://")
_CLOUD_SCHEMES = ("s3://", "gs://", "gcs://", "az://", "azure://")
#: Seconds a remote open may take before lakedet gives up (Deep Lake itself can wait minutes).
OPEN_TIMEOUT_S = float(os.environ.get("LAKEDET_OPEN_TIMEOUT", "30"))


@dataclass(frozen=True)
class SourceSpec:
    """What to open. Empty strings count as "not set" (the seed's example uses them)."""

    path: str
    token: str | None = None
    creds: Mapping[str, Any] | None = field(default=None, hash=False)
    commit: str | None = None
    view: str | None = None
    query: str | None = None

    def __post_init__(self):
        for name in ("token", "commit", "view", "query"):
            if getattr(self, name) == "":
                object.__setattr__(self, name, None)
        if not self.creds:
            object.__setattr__(self, "creds", None)
        if not isinstance(self.path, str) or not self.path:
            raise ConfigError(f"deeplake_path must be a non-empty string, got {self.path!r}")
        if self.view and self.query:
            raise ConfigError("deeplake_view_id and deeplake_query are both set; give one: a saved "
                              f"view ({self.view!r}) or a TQL query ({self.query!r})")

    @property
    def description(self) -> str:
        """Human-readable name of the selection, e.g. ``/data/coco@abc123[view=v1]``."""
        text = self.path
        if self.commit:
            text += f"@{self.commit}"
        if self.view:
            text += f"[view={self.view}]"
        if self.query:
            text += f"[query={self.query}]"
        return text


def is_deeplake_dataset(obj: Any) -> bool:
    """True for an opened Deep Lake dataset or view (any of its classes)."""
    return type(obj).__module__.startswith("deeplake") and hasattr(obj, "schema") and hasattr(obj, "__len__")


@dataclass(frozen=True)
class Origin:
    """Where opened rows come from: the branch and commit they were read at (None if unknown)."""

    branch: str | None
    commit: str | None


def open_source(spec: SourceSpec):
    """Open the dataset read-only and apply commit, then view or query.

    Returns:
        A Deep Lake ``ReadOnlyDataset`` or ``DatasetView``.

    Raises:
        SourceError: the path does not hold a dataset, the commit or view is unknown,
            or the query is invalid. The message lists what exists.
    """
    return open_source_with_origin(spec)[0]


def origin_of(ds) -> Origin:
    """Branch and commit of an opened dataset (views do not know theirs: None)."""
    branch = getattr(getattr(ds, "current_branch", None), "name", None)
    return Origin(branch, getattr(ds, "version", None))


def open_source_with_origin(spec: SourceSpec):
    """``open_source`` plus the ``Origin`` of the rows (for lineage records)."""
    import deeplake

    ds = _open_path(deeplake, spec)
    if spec.commit:
        ds = _checkout(ds, spec)
    origin = origin_of(ds)
    if spec.view:
        tag = _find_view(ds, spec)
        origin = Origin(origin.branch, str(tag.version))  # the commit the view was saved at
        ds = tag.open()
    elif spec.query:
        try:
            ds = ds.query(spec.query)
        except Exception as exc:  # deeplake raises RuntimeError for TQL errors
            raise SourceError(f"deeplake_query {spec.query!r} on {spec.path!r} failed: {exc}") from exc
    return ds, origin


def is_remote(path: str) -> bool:
    return path.startswith(_TOKEN_SCHEMES + _CLOUD_SCHEMES)


def check_credentials(spec: SourceSpec, environ: Mapping[str, str] = os.environ) -> None:
    """Fail before any network wait when a remote path has no usable credentials.

    Raises:
        SourceError: ``hub://``/``al://`` without a token (argument or ``ACTIVELOOP_TOKEN``), or a
            cloud path without ``creds`` and without the cloud's own environment/config.
    """
    path = spec.path
    if path.startswith(_TOKEN_SCHEMES):
        if not (spec.token or environ.get("ACTIVELOOP_TOKEN") or environ.get("DEEPLAKE_TOKEN")):
            raise SourceError(f"deeplake_path={path!r} needs a Deep Lake API token: set "
                              "deeplake_credentials['token'] or the ACTIVELOOP_TOKEN environment variable")
        return
    if spec.creds:
        return
    home = Path(environ.get("HOME", "~")).expanduser()
    if path.startswith("s3://"):
        found = (environ.get("AWS_ACCESS_KEY_ID") or environ.get("AWS_PROFILE")
                 or environ.get("AWS_WEB_IDENTITY_TOKEN_FILE") or environ.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
                 or (home / ".aws" / "credentials").exists())
        needed = "aws_access_key_id, aws_secret_access_key (and endpoint_url for non-AWS servers)"
    elif path.startswith(("gs://", "gcs://")):
        found = (environ.get("GOOGLE_APPLICATION_CREDENTIALS")
                 or (home / ".config" / "gcloud" / "application_default_credentials.json").exists())
        needed = "a Google service-account JSON (creds) or GOOGLE_APPLICATION_CREDENTIALS"
    elif path.startswith(("az://", "azure://")):
        found = environ.get("AZURE_STORAGE_CONNECTION_STRING") or environ.get("AZURE_STORAGE_ACCOUNT_NAME")
        needed = "account_name/account_key or a connection string"
    else:
        return
    if not found:
        raise SourceError(f"deeplake_path={path!r} has no credentials: set deeplake_credentials['creds'] "
                          f"({needed}) or the cloud's environment variables")


def _open_path(deeplake, spec: SourceSpec):
    kwargs = {}
    if spec.creds is not None:
        kwargs["creds"] = dict(spec.creds)
    if spec.token is not None:
        kwargs["token"] = spec.token
    if not is_remote(spec.path):
        try:
            return deeplake.open_read_only(spec.path, **kwargs)
        except Exception as exc:
            raise SourceError(f"cannot open Deep Lake dataset at deeplake_path={spec.path!r}: {exc}") from exc
    check_credentials(spec)
    return _open_with_timeout(deeplake.open_read_only_async(spec.path, **kwargs), spec.path)


def _open_with_timeout(future, path: str, timeout: float | None = None):
    """Wait for a Deep Lake ``Future`` from ``open_read_only_async``; cancel it after ``timeout`` s."""
    import time

    timeout = OPEN_TIMEOUT_S if timeout is None else timeout
    deadline = time.monotonic() + timeout
    while not future.is_completed():
        if time.monotonic() >= deadline:
            future.cancel()
            raise SourceTimeout(f"opening deeplake_path={path!r} did not finish within {timeout:.0f} s "
                              "(server unreachable or too slow); check the URL, endpoint_url and "
                              "network, or raise LAKEDET_OPEN_TIMEOUT")
        time.sleep(0.02)
    try:
        return future.result()
    except Exception as exc:
        raise SourceError(f"cannot open Deep Lake dataset at deeplake_path={path!r}: {exc}") from exc


def _checkout(ds, spec: SourceSpec):
    try:
        version = ds.history[spec.commit]
    except Exception:
        recent = [f"{v.id} ({v.message or 'no message'})" for v in list(ds.history)[-10:]][::-1]
        raise SourceError(f"deeplake_commit_id={spec.commit!r}: no such commit in {spec.path!r}; "
                          f"recent commits: {', '.join(recent) or '(none)'}") from None
    return version.open()


def _find_view(ds, spec: SourceSpec):
    names = list(ds.tags.names())
    if spec.view not in names:
        raise SourceError(f"deeplake_view_id={spec.view!r}: no saved view (tag) of that name in "
                          f"{spec.path!r}; saved views: {names or '(none)'}")
    return ds.tags[spec.view]
