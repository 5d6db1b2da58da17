"""Remote storage: bounded opens and queries, and what a refused or failed open means.

Deep Lake can wait minutes on storage that does not answer. Every remote call goes through its
``*_async`` variant, waited for at most ``OPEN_TIMEOUT_S`` (``bounded``); a failed open is
explained with the path, the cause and the setting to change (``explain_open_failure``), never
with a secret.
"""

from __future__ import annotations

import os
import re

from ..errors import SourceError, SourceTimeout
from .deadline import wait

__all__ = ["OPEN_TIMEOUT_S", "bounded", "open_bounded", "explain_open_failure", "endpoint_note",
           "mark_remote_io", "remote_io_started"]

#: Seconds a remote open may take before lakedet gives up (Deep Lake itself can wait minutes).
OPEN_TIMEOUT_S = float(os.environ.get("LAKEDET_OPEN_TIMEOUT", "25"))  # the error comes within 30 s
_TOKEN_SCHEMES = ("hub://", "al://")
_remote_io = False


def mark_remote_io() -> None:
    """Record that this process has opened remote Deep Lake data (see ``remote_io_started``)."""
    global _remote_io
    _remote_io = True


def remote_io_started() -> bool:
    """This process has opened remote Deep Lake data: its native I/O threads may be busy, and a
    later fork of it can wait on them (DataLoader workers then start with forkserver)."""
    return _remote_io


def bounded(spec, call, call_async, what: str):
    """``call()`` for local data; for remote data ``call_async()`` waited for at most
    ``OPEN_TIMEOUT_S`` (``lakedet.source.deadline``), a ``SourceTimeout`` naming ``what`` and the URL after."""
    if not spec.remote:
        return call()
    return wait(call_async(), f"{what} on deeplake_path={spec.path!r}{endpoint_note(spec)}", OPEN_TIMEOUT_S,
                error=SourceTimeout, setting="LAKEDET_OPEN_TIMEOUT")


def open_bounded(future, spec, timeout: float | None = None):
    """Wait for a Deep Lake ``Future`` from ``open_read_only_async``; cancel it after ``timeout`` s.

    Raises:
        SourceTimeout: the open did not finish in time (names the URL and the setting).
        SourceError: the open failed (``explain_open_failure``).
    """
    import time

    timeout = OPEN_TIMEOUT_S if timeout is None else timeout
    deadline = time.monotonic() + timeout
    while not future.is_completed():
        if time.monotonic() >= deadline:
            future.cancel()
            raise SourceTimeout(f"opening deeplake_path={spec.path!r} did not finish within {timeout:.0f} s "
                                f"(server unreachable or too slow{endpoint_note(spec)}); check the URL, "
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


def explain_open_failure(spec, exc: BaseException) -> str:
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
                f"{endpoint_note(spec)}; check deeplake_credentials['creds'] ({keys}) (Deep Lake: {detail})")
    if _UNREACHABLE.search(detail):
        if token_path:
            where = "the Deep Lake API (app.activeloop.ai)"
            fix = "the network connection and proxy settings (HTTPS_PROXY)"
        else:
            where = "the storage server" + endpoint_note(spec)
            fix = ("the network connection, proxy settings (HTTPS_PROXY) and, for an S3-compatible server, "
                   "deeplake_credentials['creds']['endpoint_url']")
        return f"deeplake_path={path!r}: cannot reach {where}; check {fix} (Deep Lake: {detail})"
    if _MISSING.search(detail):
        names = "organization and dataset names" if token_path else "bucket and folder names"
        return (f"deeplake_path={path!r}: no Deep Lake dataset there{endpoint_note(spec)}; check the {names} "
                f"(Deep Lake: {detail})")
    return f"cannot open Deep Lake dataset at deeplake_path={path!r}: {detail}"


def endpoint_note(spec) -> str:
    endpoint = (spec.creds or {}).get("endpoint_url")
    return f" at endpoint_url={endpoint!r}" if endpoint else ""


