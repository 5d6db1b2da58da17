"""Opening a Deep Lake dataset read-only: path, credentials, commit, saved view, query.

This is the only module that calls ``deeplake.open*``. A ``SourceSpec`` says what to open;
``open_source`` returns a read-only dataset or view. Training and evaluation never write to it.
Datasets Deep Lake 3 wrote are read in place (``lakedet.source.deeplake3``), never modified.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError, SourceError, SourceTimeout

__all__ = ["SourceSpec", "Origin", "OpenedDataset", "open_source", "open_source_with_origin", "origin_of", "is_deeplake_dataset",
           "dataset_format", "source_history",
           "is_remote", "check_credentials", "explain_open_failure", "OPEN_TIMEOUT_S"]

_TOKEN_SCHEMES = ("hub://", "al://")
_CLOUD_SCHEMES = ("s3://", "gs://", "gcs://", "az://", "azure://")
#: Seconds a remote open may take before lakedet gives up (Deep Lake itself can wait minutes).
OPEN_TIMEOUT_S = float(os.environ.get("LAKEDET_OPEN_TIMEOUT", "25"))  # the error comes within 30 s


@dataclass(frozen=True)
class SourceSpec:
    """What to open. Empty strings count as "not set" (the seed's example uses them)."""

    path: str
    token: str | None = field(default=None, repr=False)  # secrets never show in a repr or a log
    creds: Mapping[str, Any] | None = field(default=None, hash=False, repr=False)
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

    def refuse_view_and_query(self) -> None:
        """A Deep Lake 4 source takes a saved view or a query, not both (a Deep Lake 3 source
        runs the query over the view, as ``deeplake_query`` on top of a v3 view meant)."""
        if self.view and self.query:
            raise ConfigError("deeplake_view_id and deeplake_query are both set; give one: a saved "
                              f"view ({self.view!r}) or a TQL query ({self.query!r}) (only on a Deep Lake 3 "
                              "dataset does the query run over the view)")

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
    """True for an opened Deep Lake dataset or view (any of its classes, ``RowRangeView`` included)."""
    return (type(obj).__module__.startswith("deeplake") and hasattr(obj, "__len__")
            and (hasattr(obj, "schema") or type(obj).__name__ == "RowRangeView"))


class OpenedDataset:
    """A Deep Lake dataset or view the caller opened (``ds_train=...``), carried inside a config.

    mmengine deep-copies dataloader configs before building them, and several Deep Lake classes
    (``RowRangeView`` from ``ds[a:b]`` or ``ds[[rows]]``, ...) can be neither copied nor pickled.
    A copy of this handle is the handle itself: every copy reads the same opened, read-only object
    (DataLoader workers started by ``fork`` inherit it). Pickling it (``spawn`` workers) pickles the
    object, which Deep Lake allows for some classes only; the error then says what to do instead.
    """

    def __init__(self, dataset: Any):
        if isinstance(dataset, OpenedDataset):
            dataset = dataset.dataset
        if not is_deeplake_dataset(dataset):
            raise ConfigError(f"expected an opened Deep Lake dataset or view (deeplake.open_read_only(...), "
                              f"ds.query(...), ds[a:b]), got {type(dataset).__name__}")
        self.dataset = dataset

    def __deepcopy__(self, memo):
        return self

    def __copy__(self):
        return self

    def __reduce__(self):
        import pickle

        try:
            pickle.dumps(self.dataset)
        except Exception as exc:
            raise TypeError(f"an opened Deep Lake {type(self.dataset).__name__} cannot be sent to another "
                            f"process ({exc}); start DataLoader workers with 'fork' (mmengine's default, "
                            "env_cfg.mp_cfg.mp_start_method) or give deeplake_path with deeplake_query "
                            "instead of the object") from None
        return OpenedDataset, (self.dataset,)

    def __repr__(self) -> str:
        return f"<opened {type(self.dataset).__name__} of {len(self.dataset)} rows>"


@dataclass(frozen=True)
class Origin:
    """Where opened rows come from: the branch and commit they were read at (None if unknown),
    the dataset's format (``deeplake4``, or ``deeplake3`` for data Deep Lake 3 wrote, read in
    place) and, for v3 data, whether ``commit`` is a branch's HEAD (uncommitted changes included)."""

    branch: str | None
    commit: str | None
    format: str = "deeplake4"
    head: bool = False


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
    """Branch and commit of an opened dataset (views do not know theirs: None); a view the caller
    queried from a Deep Lake 3 dataset (``deeplake.query('SELECT * FROM "<v3 path>@<ref>"')``) is
    recognised from its query and gets format ``deeplake3`` (and the ref as its commit)."""
    branch = getattr(getattr(ds, "current_branch", None), "name", None)
    if type(ds).__name__ == "DatasetView" and type(ds).__module__.startswith("deeplake"):
        found = _deeplake3_source_of(ds)
        if found is not None:
            return Origin(None, found[1], "deeplake3", found[1] is None)
    return Origin(branch, getattr(ds, "version", None))


def _deeplake3_source_of(view):
    """``(path, ref or None)`` of the Deep Lake 3 dataset a query view reads, else None."""
    import json

    from .deeplake3 import is_deeplake3_folder

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


def open_source_with_origin(spec: SourceSpec):
    """``open_source`` plus the ``Origin`` of the rows (for lineage records).

    A dataset Deep Lake 3 wrote is read in place through Deep Lake 4's query path
    (``lakedet.source.deeplake3``): detected from its files for a local folder, and for remote storage
    when Deep Lake 4 finds no dataset of its own there.
    """
    import deeplake

    from . import deeplake3

    folder = deeplake3.local_path(spec.path)
    if folder is not None and deeplake3.is_deeplake3_folder(os.path.dirname(os.path.dirname(folder.rstrip("/")))):
        deeplake3.check_path(spec.path)  # a v3 commit's or view's internal folder: say what to give instead
    if deeplake3.is_deeplake3_folder(spec.path):
        return _open_deeplake3(spec)
    if not is_remote(spec.path):
        spec.refuse_view_and_query()
    try:
        ds = _open_path(deeplake, spec)
    except SourceTimeout:
        raise
    except SourceError as exc:
        # Deep Lake 4 finds no v4 log there: maybe Deep Lake 3 data (only then: an unreachable or
        # refusing server must not wait twice)
        cause = exc.__cause__
        missing = type(cause).__name__ == "LogNotexistsError" or "does not exist" in str(cause or "")
        if is_remote(spec.path) and missing and deeplake3.probe_remote(spec):
            return _open_deeplake3(spec)
        raise
    spec.refuse_view_and_query()
    if spec.commit:
        ds = _checkout(ds, spec)
    origin = origin_of(ds)
    if spec.view:
        tag = _find_view(ds, spec)
        origin = Origin(origin.branch, str(tag.version))  # the commit the view was saved at
        ds = _open_view(tag, spec)
    elif spec.query:
        ds = _run_query(ds, spec)
    return ds, origin


def _open_deeplake3(spec: SourceSpec):
    """A Deep Lake 3 dataset: the ref or saved view resolved from its own metadata, then queried."""
    from . import deeplake3

    info = deeplake3.read_info(spec)
    selection = deeplake3.select(spec, info, spec.commit, spec.view)
    view = deeplake3.open_selection(spec, selection)
    return view, Origin(selection.branch, selection.commit, deeplake3.V3_FORMAT, selection.head)


def source_history(spec: SourceSpec) -> list[tuple[str, str, str]]:
    """The dataset's commits, oldest first: ``(id, time, message)`` (a Deep Lake 3 dataset's
    from its ``version_control_info.json``, every branch's)."""
    from . import deeplake3

    if dataset_format(spec) == deeplake3.V3_FORMAT:
        import datetime

        info = deeplake3.read_info(spec)
        done = sorted((c for c in info.commits.items() if c[1].get("commit_time") is not None),
                      key=lambda c: c[1]["commit_time"])
        return [(cid, str(datetime.datetime.fromtimestamp(c["commit_time"], datetime.timezone.utc)),
                 f"{c.get('commit_message') or ''} (branch {c.get('branch')})") for cid, c in done]
    base = open_source(SourceSpec(spec.path, token=spec.token, creds=spec.creds))
    return [(v.id, str(v.timestamp), v.message or "") for v in base.history]


def dataset_format(spec: SourceSpec) -> str:
    """``"deeplake3"`` for a dataset Deep Lake 3 wrote, else ``"deeplake4"`` (remote data: probed)."""
    from . import deeplake3

    if deeplake3.is_deeplake3_folder(spec.path) or (is_remote(spec.path) and deeplake3.probe_remote(spec)):
        return deeplake3.V3_FORMAT
    return deeplake3.V4_FORMAT


def _open_view(tag, spec: SourceSpec):
    return _bounded(spec, tag.open, tag.open_async, f"opening saved view deeplake_view_id={spec.view!r}")


def _run_query(ds, spec: SourceSpec):
    try:
        return _bounded(spec, lambda: ds.query(spec.query), lambda: ds.query_async(spec.query),
                        f"running deeplake_query={spec.query!r}")
    except SourceTimeout:
        raise
    except Exception as exc:  # deeplake raises RuntimeError for TQL errors
        raise SourceError(f"deeplake_query {spec.query!r} on {spec.path!r} failed: {exc}") from exc


def _bounded(spec: SourceSpec, call, call_async, what: str):
    """``call()`` for local data; for remote data ``call_async()`` waited for at most
    ``OPEN_TIMEOUT_S`` (``lakedet.source.deadline``), a ``SourceTimeout`` naming ``what`` and the URL after."""
    if not is_remote(spec.path):
        return call()
    from .deadline import wait

    return wait(call_async(), f"{what} on deeplake_path={spec.path!r}{_endpoint_note(spec)}", OPEN_TIMEOUT_S,
                error=SourceTimeout, setting="LAKEDET_OPEN_TIMEOUT")


def is_remote(path: str) -> bool:
    return path.startswith(_TOKEN_SCHEMES + _CLOUD_SCHEMES)


def check_credentials(spec: SourceSpec, environ: Mapping[str, str] = os.environ) -> None:
    """Nothing is refused before opening: credentials come from the cloud SDK's own chain.

    Deep Lake's storage clients look for credentials as the clouds' SDKs do when
    ``deeplake_credentials['creds']`` does not give them (measured for S3 against a server that
    checks keys: ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, ``AWS_SHARED_CREDENTIALS_FILE``,
    ``AWS_PROFILE`` or ``creds['profile_name']``, ``AWS_ENDPOINT_URL`` all work; ``hub://`` takes
    ``ACTIVELOOP_TOKEN`` or ``deeplake login``). A hand-written pre-check cannot know every source
    (instance roles, SSO profiles, GCP metadata, Azure managed identity), so none refuses here;
    when the server refuses, ``explain_open_failure`` says which settings were consulted.
    Kept for callers of the old API: it only validates the type of ``creds``.

    Raises:
        ConfigError: ``creds`` is given but is not a mapping.
    """
    if spec.creds is not None and not isinstance(spec.creds, Mapping):
        raise ConfigError(f"deeplake_credentials['creds'] must be a dict of settings (aws_access_key_id, "
                          f"endpoint_url, ...), got {type(spec.creds).__name__}")


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
    global remote_io_started
    remote_io_started = True
    return _open_with_timeout(deeplake.open_read_only_async(spec.path, **kwargs), spec)


#: This process has opened remote Deep Lake data: its native I/O threads may be busy, and a later
#: fork of it can wait on them (``lakedet.engine.runner`` then starts DataLoader workers with forkserver).
remote_io_started = False


def _open_with_timeout(future, spec: SourceSpec, timeout: float | None = None):
    """Wait for a Deep Lake ``Future`` from ``open_read_only_async``; cancel it after ``timeout`` s."""
    import time

    timeout = OPEN_TIMEOUT_S if timeout is None else timeout
    deadline = time.monotonic() + timeout
    while not future.is_completed():
        if time.monotonic() >= deadline:
            future.cancel()
            raise SourceTimeout(f"opening deeplake_path={spec.path!r} did not finish within {timeout:.0f} s "
                                f"(server unreachable or too slow{_endpoint_note(spec)}); check the URL, "
                                "endpoint_url, network and proxy settings, or raise LAKEDET_OPEN_TIMEOUT")
        time.sleep(0.02)
    try:
        return future.result()
    except Exception as exc:
        raise SourceError(explain_open_failure(spec, exc)) from exc


# What storage and the Deep Lake API answer when they refuse credentials or cannot be reached.
_AUTH_REFUSED = re.compile(
    r"unauthori[sz]ed|forbidden|access.?denied|signature.?does.?not.?match|invalid.?access.?key|"
    r"invalid.?(api.?)?token|expired.?token|token.{0,30}(invalid|expired|not valid)|authenticat|"
    r"status[=: ]+40[13]\b|\b40[13]\b.{0,12}(unauthori|forbidden|error)|"
    r"auth(entication|orization)?.?(error|failed|exception)", re.IGNORECASE)
_UNREACHABLE = re.compile(
    r"could not resolve|resolve host|failed to connect|could ?n[o']t connect|connection refused|"
    r"network (connection error|is unreachable)|no route to host|timeout was reached|timed out",
    re.IGNORECASE)
_MISSING = re.compile(r"does not exist|no ?such ?(bucket|key)|not found", re.IGNORECASE)
_S3_REASONS = {
    "InvalidAccessKeyId": "the server knows no access key id {key}",
    "SignatureDoesNotMatch": "aws_secret_access_key is not the secret of access key id {key}",
    "AccessDenied": "access key id {key} may not read this dataset",
    "ExpiredToken": "the session token of access key id {key} has expired",
}
_CLOUD_KEYS = {
    "s3://": "aws_access_key_id and aws_secret_access_key must be a pair this server accepts (plus "
             "aws_session_token for temporary keys), endpoint_url the server that holds the bucket",
    "gs://": "a Google service account with read access to the bucket",
    "gcs://": "a Google service account with read access to the bucket",
    "az://": "account_name with account_key or sas_token (or a connection string) of the storage account",
    "azure://": "account_name with account_key or sas_token (or a connection string) of the storage account",
}


_KEY_SETTINGS = ("aws_secret_access_key", "profile_name", "json_credentials", "account_key", "sas_token",
                 "connection_string")
_CHAINS = {
    "s3://": "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, AWS_PROFILE, AWS_SHARED_CREDENTIALS_FILE, ~/.aws/credentials "
             "and ~/.aws/config",
    "gs://": "GOOGLE_APPLICATION_CREDENTIALS and the gcloud application default credentials",
    "gcs://": "GOOGLE_APPLICATION_CREDENTIALS and the gcloud application default credentials",
    "az://": "AZURE_STORAGE_CONNECTION_STRING / AZURE_STORAGE_ACCOUNT_NAME and Azure's default credentials",
    "azure://": "AZURE_STORAGE_CONNECTION_STRING / AZURE_STORAGE_ACCOUNT_NAME and Azure's default credentials",
}


def explain_open_failure(spec: SourceSpec, exc: BaseException) -> str:
    """The message of the ``SourceError`` for a remote open that failed: path, cause and fix.

    Refused credentials, unreachable servers and missing datasets get their own wording (Deep
    Lake's messages name neither the dataset nor the setting to change); Deep Lake's own text
    follows in parentheses. Secrets never appear in it.
    """
    detail = " ".join(str(exc).split())
    detail = detail[:400] + (" ..." if len(detail) > 400 else "")
    path, token_path = spec.path, spec.path.startswith(_TOKEN_SCHEMES)
    if _AUTH_REFUSED.search(detail):
        if token_path:
            return (f"deeplake_path={path!r}: the Deep Lake API token was refused; set "
                    "deeplake_credentials['token'] (or ACTIVELOOP_TOKEN) to a valid token of an account "
                    f"that may read this dataset (Deep Lake: {detail})")
        key = (spec.creds or {}).get("aws_access_key_id")
        code = re.search(r"code=(\w+)", detail)
        reason = _S3_REASONS.get(code.group(1) if code and path.startswith("s3://") else "",
                                 "the server refused the credentials")
        if not key and not any(k in (spec.creds or {}) for k in _KEY_SETTINGS):
            reason += (" (none were given in deeplake_credentials['creds']: the ones found by the cloud SDK's own "
                       f"chain were used, {_CHAINS.get(path.split('://')[0] + '://', 'its environment and config files')})")
        keys = next((text for scheme, text in _CLOUD_KEYS.items() if path.startswith(scheme)), "")
        return (f"deeplake_path={path!r}: {reason.format(key=repr(key) if key else '(from the environment)')}"
                f"{_endpoint_note(spec)}; check deeplake_credentials['creds'] ({keys}) (Deep Lake: {detail})")
    if _UNREACHABLE.search(detail):
        if token_path:
            where = "the Deep Lake API (app.activeloop.ai)"
            fix = "the network connection and proxy settings (HTTPS_PROXY)"
        else:
            where = "the storage server" + _endpoint_note(spec)
            fix = ("the network connection, proxy settings (HTTPS_PROXY) and, for an S3-compatible server, "
                   "deeplake_credentials['creds']['endpoint_url']")
        return f"deeplake_path={path!r}: cannot reach {where}; check {fix} (Deep Lake: {detail})"
    if _MISSING.search(detail):
        names = "organization and dataset names" if token_path else "bucket and folder names"
        return (f"deeplake_path={path!r}: no Deep Lake dataset there{_endpoint_note(spec)}; check the {names} "
                f"(Deep Lake: {detail})")
    return f"cannot open Deep Lake dataset at deeplake_path={path!r}: {detail}"


def _endpoint_note(spec: SourceSpec) -> str:
    endpoint = (spec.creds or {}).get("endpoint_url")
    return f" at endpoint_url={endpoint!r}" if endpoint else ""


def _checkout(ds, spec: SourceSpec):
    try:
        version = ds.history[spec.commit]
    except Exception:
        recent = [f"{v.id} ({v.message or 'no message'})" for v in list(ds.history)[-10:]][::-1]
        raise SourceError(f"deeplake_commit_id={spec.commit!r}: no such commit in {spec.path!r}; "
                          f"recent commits: {', '.join(recent) or '(none)'}") from None
    return _bounded(spec, version.open, version.open_async, f"opening commit deeplake_commit_id={spec.commit!r}")


def _find_view(ds, spec: SourceSpec):
    names = list(ds.tags.names())
    if spec.view not in names:
        raise SourceError(f"deeplake_view_id={spec.view!r}: no saved view (tag) of that name in "
                          f"{spec.path!r}; saved views: {names or '(none)'}")
    return ds.tags[spec.view]
