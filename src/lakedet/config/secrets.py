"""Secrets in configs: given by reference, never as values that mmengine would copy.

mmengine's ``Runner`` logs its config, writes it to the work dir and to ``vis_data/config.py``,
and stores its text in every checkpoint, before any dataset is built. A secret written in a
config as a value therefore lands in four files whichever entry point starts the run
(``lakedet train``, MMDetection's ``tools/train.py``, ``Runner.from_cfg``). So
``deeplake_credentials`` takes secrets by reference, resolved by the dataset when it opens the
data and kept in memory only (``lakedet.source.credentials``):

* ``'env:NAME'``: the value of an environment variable (for ``creds``: a JSON object of settings);
* ``'file:PATH'`` (or ``'@PATH'``, as ``--creds`` takes it): a file (for ``creds``: a JSON object
  or ``KEY=VALUE`` lines; for a single setting: its text, stripped);
* ``creds=dict(profile_name=...)``: a profile of the cloud's own configuration files.

Settings that say where the data is, not who may read it (``PUBLIC_CREDENTIAL_KEYS``), may be
written as values. ``lakedet train`` and ``train_detector`` wrap any other value they find in a
``Secret`` before the runner sees the config (``hide_secrets``): the run reads the value, every
copy of the config shows ``'<redacted>'``. ``DeepLakeDetDataset`` refuses a plain value in a
config (``literal_secrets``), where no lakedet entry point could hide it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import ConfigError

__all__ = ["Secret", "REDACTED", "PUBLIC_CREDENTIAL_KEYS", "SECRET_KEYS", "REFERENCE_PREFIXES", "is_reference",
           "literal_secrets", "refuse_written_secrets", "hide_secrets"]

REDACTED = "<redacted>"
#: Settings under ``deeplake_credentials['creds']`` that may be written as values: where the
#: storage is (and which profile of the cloud's own files to use), not who may read it.
PUBLIC_CREDENTIAL_KEYS = ("endpoint_url", "aws_region", "region", "region_name", "profile_name")
#: Keys whose values are secrets wherever they stand in a config (hidden there too, as a safety net).
SECRET_KEYS = ("token", "aws_secret_access_key", "aws_session_token", "account_key", "sas_token",
               "connection_string", "password", "private_key", "client_secret")
#: How a value refers to a secret kept outside the config.
REFERENCE_PREFIXES = ("env:", "file:", "@")


class Secret:
    """A credential value a config holds without showing it.

    Its ``repr`` (what mmengine writes when it dumps or logs a config) is ``'<redacted>'``;
    copies of a config share it; pickled (DataLoader workers started by spawn or forkserver,
    through a pipe) it carries its value.
    """

    __slots__ = ("value",)

    def __init__(self, value: str):
        self.value = value

    def __repr__(self) -> str:
        return repr(REDACTED)

    __str__ = __repr__

    def __deepcopy__(self, memo):
        return self

    def __copy__(self):
        return self

    def __reduce__(self):  # nothing that lakedet hands to another process carries a config
        raise TypeError("a Secret is not pickled: the config holding it stays in this process (datasets pass "
                        "their resolved credentials to their workers in memory)")

    def __eq__(self, other) -> bool:
        return isinstance(other, Secret) and other.value == self.value

    def __hash__(self) -> int:
        return hash((Secret, self.value))


def is_reference(value: Any) -> bool:
    """True for ``'env:NAME'``, ``'file:PATH'`` and ``'@PATH'``."""
    return isinstance(value, str) and value.startswith(REFERENCE_PREFIXES)


def _slots(node: Any, label: str = ""):
    """``(container, key, label)`` of every secret written as a value under ``node`` (a
    ``deeplake_credentials`` value): deny by default, every non-empty string that is not a
    reference, at any depth, except the ``PUBLIC_CREDENTIAL_KEYS`` settings."""
    items = node.items() if isinstance(node, Mapping) else enumerate(node) if isinstance(node, list) else ()
    for key, value in list(items):
        where = f"{label}[{key!r}]" if label else str(key)
        if isinstance(value, (Mapping, list)):
            yield from _slots(value, where)
        elif isinstance(value, str) and value and not is_reference(value) and key not in PUBLIC_CREDENTIAL_KEYS:
            yield node, key, where


def literal_secrets(credentials: Any) -> list[str]:
    """Where ``deeplake_credentials`` holds a secret written as a plain value (``'token'``,
    ``"creds['aws_secret_access_key']"`` ...)."""
    return [where for _, _, where in _slots(credentials)]


def refuse_written_secrets(credentials: Any) -> None:
    """Refuse ``deeplake_credentials`` holding a secret written as a value (``DeepLakeDetDataset``
    calls it for credentials that came through an mmengine config).

    Raises:
        ConfigError: names the first such key and how to give it by reference instead.
    """
    slots = list(_slots(credentials))
    if not slots:
        return
    container, key, where = slots[0]
    if container[key] == REDACTED:
        raise _redacted_error(where)
    raise ConfigError(f"deeplake_credentials[{where}] is written in the config as a value. MMDetection's tools and "
                      "mmengine's Runner copy a config into the work dir (the config dump, vis_data/config.py, the "
                      "log) and into every checkpoint before any dataset is built, so this secret is already in this "
                      "run's work dir: delete those files. Give secrets by reference instead: 'env:NAME' (for creds, a "
                      "JSON object in that environment variable), 'file:/path' (a JSON object or KEY=VALUE lines), or "
                      "creds=dict(profile_name=...); `lakedet train` and train_detector hide values they are given")


def _redacted_error(where: str) -> ConfigError:
    return ConfigError(f"deeplake_credentials[{where}] is {REDACTED!r}: this config was written out by a run, with its "
                       "secrets hidden; give them by reference, e.g. deeplake_credentials=dict(creds='env:MY_S3_CREDS') "
                       "(a JSON object in that environment variable) or 'file:/path/creds.json'")


def _hidden_in(node: Any) -> int:
    """Wrap the secrets of every ``deeplake_credentials`` (and every ``SECRET_KEYS`` value) in ``node``."""
    hidden = 0
    items = node.items() if isinstance(node, Mapping) else enumerate(node) if isinstance(node, list) else ()
    for key, value in list(items):
        if key == "deeplake_credentials" and isinstance(value, (Mapping, list)):
            for container, inner, where in list(_slots(value)):
                if container[inner] == REDACTED:
                    raise _redacted_error(where)
                container[inner] = Secret(container[inner])
                hidden += 1
        elif key in SECRET_KEYS and isinstance(value, str) and value and not is_reference(value) and value != REDACTED:
            node[key] = Secret(value)  # a safety net: a secret's usual name anywhere else
            hidden += 1
        elif isinstance(value, (Mapping, list)):
            hidden += _hidden_in(value)
    return hidden


def hide_secrets(cfg) -> int:
    """Wrap every secret written as a value under any ``deeplake_credentials`` of the config (and
    any value under a ``SECRET_KEYS`` key elsewhere) in a ``Secret``, in place; return how many.

    Raises:
        ConfigError: a value is ``'<redacted>'`` (a config a run wrote out, fed back).
    """
    top = {key: cfg[key] for key in cfg.keys()}  # an mmengine Config, or a dict
    hidden = _hidden_in(top)
    for key, value in top.items():
        if value is not cfg[key]:
            cfg[key] = value
    return hidden
