"""``deeplake_credentials`` (and ``--creds``) resolved into the token and settings Deep Lake takes.

Values may be references (``lakedet.config.secrets``): ``'env:NAME'``, ``'file:PATH'`` or
``'@PATH'``, for the whole ``creds`` dict (a JSON object, or ``KEY=VALUE`` lines in a file) or for
one setting, and ``Secret`` values that ``lakedet train`` wrapped. What they resolve to is kept in
memory only (``SourceSpec``, whose ``repr`` hides it).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence

from ..config.keys import CREDENTIAL_KEYS
from ..config.secrets import Secret, is_reference
from ..errors import ConfigError, did_you_mean

__all__ = ["resolve_credentials", "resolve_value", "parse_creds"]


def _read_file(path: str, where: str) -> str:
    try:
        with open(os.path.expanduser(path)) as handle:
            return handle.read()
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read the file {path!r} ({exc.strerror})") from None


def _reference_text(value: str, where: str) -> str:
    if value.startswith("env:"):
        name = value[len("env:"):]
        if name not in os.environ:
            raise ConfigError(f"{where}: the environment variable {name!r} is not set (give its name after 'env:')")
        return os.environ[name]
    return _read_file(value[len("file:"):] if value.startswith("file:") else value[1:], where)


def resolve_value(value, where: str):
    """One setting: a ``Secret``'s value, the text a reference names (stripped), or ``value`` itself."""
    if isinstance(value, Secret):
        return value.value
    if is_reference(value):
        return _reference_text(value, where).strip()
    return value


def _settings(text: str, where: str) -> dict:
    """A JSON object, or ``KEY=VALUE`` lines (``#`` comments, blank lines skipped)."""
    if text.lstrip().startswith("{"):
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise ConfigError(f"{where}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a JSON object of settings")
        return {str(k): v for k, v in value.items()}
    found = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if "=" not in line:  # (the line itself is not shown: it may be a secret)
            raise ConfigError(f"{where}: line {number} is not KEY=VALUE")
        key, value = line.split("=", 1)
        found[key.strip()] = value.strip()
    return found


def _resolve_creds(creds, where: str) -> dict | None:
    if creds in (None, "", {}):
        return None
    if isinstance(creds, Secret):
        creds = creds.value
    if isinstance(creds, str):
        if not is_reference(creds):
            return _settings(creds, where)  # a JSON object written out (as lakedet train hid it)
        return _settings(_reference_text(creds, where), f"{where} ({creds})")
    if not isinstance(creds, Mapping):
        raise ConfigError(f"{where} must be a dict of settings (aws_access_key_id, endpoint_url, ...) or a "
                          f"reference ('env:NAME', 'file:PATH'), got {type(creds).__name__}")
    return {str(k): resolve_value(v, f"{where}[{k!r}]") for k, v in creds.items() if v not in (None, "")}


def resolve_credentials(credentials, where: str = "deeplake_credentials") -> tuple[str | None, dict | None]:
    """``(token, creds)`` from ``deeplake_credentials``, references resolved.

    Raises:
        ConfigError: an unknown key, ``username`` / ``password`` (Deep Lake 4 takes a token), a
            reference to an unset variable or unreadable file, or settings that are not a dict.
    """
    if credentials in (None, ""):
        return None, None
    if not isinstance(credentials, Mapping):
        raise ConfigError(f"{where} must be a dict like {{'token': ..., 'creds': {{...}}}}, "
                          f"got {type(credentials).__name__}")
    for key in ("username", "password"):
        if credentials.get(key):
            raise ConfigError(f"{where}[{key!r}] is not supported by Deep Lake 4; use {where}['token'] "
                              "(an API token) instead")
    unknown = sorted(set(credentials) - set(CREDENTIAL_KEYS))
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}{did_you_mean(unknown[0], ['token', 'creds'])}; "
                          "keys are 'token' and 'creds'")
    token = resolve_value(credentials.get("token"), f"{where}['token']")
    return token or None, _resolve_creds(credentials.get("creds"), f"{where}['creds']")


def parse_creds(items: Sequence[str]) -> dict:
    """``--creds`` items as one dict: ``KEY=VALUE``, ``@FILE`` / ``file:FILE`` (a JSON object, or
    ``KEY=VALUE`` lines) or ``env:NAME`` (a JSON object in that variable); later items win.

    Raises:
        ConfigError: an item of none of these forms, a missing file or variable, bad JSON.
    """
    creds: dict = {}
    for number, item in enumerate(items, 1):
        if is_reference(item):
            where = f"--creds {item}"
            creds.update(_settings(_reference_text(item, where), where))
        elif "=" in item:
            creds.update(_settings(item, f"--creds {item.split('=')[0]!r}"))
        else:  # (the item itself is not shown: it may be a secret)
            raise ConfigError(f"--creds item {number}: expected KEY=VALUE, @FILE or env:NAME")
    return creds
