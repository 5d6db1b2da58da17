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

from .walk import run_dataset_configs

__all__ = ["Secret", "REDACTED", "PUBLIC_CREDENTIAL_KEYS", "REFERENCE_PREFIXES", "is_reference", "literal_secrets",
           "hide_secrets"]

REDACTED = "<redacted>"
#: Settings under ``deeplake_credentials['creds']`` that may be written as values: where the
#: storage is (and which profile of the cloud's own files to use), not who may read it.
PUBLIC_CREDENTIAL_KEYS = ("endpoint_url", "aws_region", "region", "region_name", "profile_name")
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

    def __reduce__(self):
        return Secret, (self.value,)

    def __eq__(self, other) -> bool:
        return isinstance(other, Secret) and other.value == self.value

    def __hash__(self) -> int:
        return hash((Secret, self.value))


def is_reference(value: Any) -> bool:
    """True for ``'env:NAME'``, ``'file:PATH'`` and ``'@PATH'``."""
    return isinstance(value, str) and value.startswith(REFERENCE_PREFIXES)


def _secret_value(key: str, value: Any) -> bool:
    return isinstance(value, str) and value != "" and not is_reference(value) and key not in PUBLIC_CREDENTIAL_KEYS


def literal_secrets(credentials: Any) -> list[str]:
    """The keys (``'token'``, ``"creds['aws_secret_access_key']"`` ...) under which
    ``deeplake_credentials`` holds a secret written as a plain value."""
    if not isinstance(credentials, Mapping):
        return []
    found = [key for key in ("token", "password") if _secret_value(key, credentials.get(key))]
    creds = credentials.get("creds")
    if isinstance(creds, str) and creds and not is_reference(creds):
        found.append("creds")
    elif isinstance(creds, Mapping):
        found += [f"creds[{key!r}]" for key, value in creds.items() if _secret_value(str(key), value)]
    return found


def _hide(credentials: dict) -> int:
    hidden = 0
    for key in ("token", "password"):
        if _secret_value(key, credentials.get(key)):
            credentials[key] = Secret(credentials[key])
            hidden += 1
    creds = credentials.get("creds")
    if isinstance(creds, str) and creds and not is_reference(creds):
        credentials["creds"] = Secret(creds)
        hidden += 1
    elif isinstance(creds, Mapping):
        for key, value in list(creds.items()):
            if _secret_value(str(key), value):
                creds[key] = Secret(value)
                hidden += 1
    return hidden


def hide_secrets(cfg) -> int:
    """Wrap every secret written as a value under the ``deeplake_credentials`` of the run's
    Deep Lake datasets in a ``Secret``, in place; return how many were wrapped."""
    return sum(_hide(dataset["deeplake_credentials"]) for _, dataset in run_dataset_configs(cfg)
               if isinstance(dataset.get("deeplake_credentials"), Mapping))
