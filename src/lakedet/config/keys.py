"""Every ``deeplake_*`` key lakedet reads, in one place, and the checks of their values.

The keys are the seed's public contract (Deep Lake's MMDetection integration document) plus
lakedet's own (``deeplake_cache``, ``deeplake_prefetch``, ``deeplake_dataset``):

* ``SOURCE_KEYS`` say which data to open (``lakedet.source.SourceSpec.from_keys`` reads them);
* ``DATASET_KEYS`` are the ``deeplake_*`` arguments of ``DeepLakeDetDataset``;
* ``SPLIT_KEYS`` are what a split of a 2.x-style config (``data.train`` ...) may hold;
* ``TOP_LEVEL_KEYS`` belong at the top of a config.

README's "Dataset keys" table lists them; ``tests/test_keys.py`` checks the two agree.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..errors import ConfigError, did_you_mean

__all__ = ["SOURCE_KEYS", "DATASET_KEYS", "SPLIT_KEYS", "TOP_LEVEL_KEYS", "ALL_KEYS", "DATALOADER_KEYS",
           "CREDENTIAL_KEYS", "LOADER_TYPES", "METRIC_FORMATS", "loader_type", "metrics_format", "check_keys",
           "check_top_level"]

#: Which data to open: a path with its credentials, then a commit, a saved view or a query.
SOURCE_KEYS = ("deeplake_path", "deeplake_credentials", "deeplake_commit_id", "deeplake_commit",
               "deeplake_view_id", "deeplake_query")
#: ``DeepLakeDetDataset``'s ``deeplake_*`` arguments.
DATASET_KEYS = SOURCE_KEYS + ("deeplake_tensors", "deeplake_dataset", "deeplake_dataloader_type", "deeplake_cache",
                              "deeplake_prefetch")
#: A split of a 2.x-style config (``data.train`` ...): the dataset's keys (an opened dataset object
#: comes as ``train_detector(ds_train=...)``, not in a config) and the split's loader settings.
SPLIT_KEYS = tuple(k for k in DATASET_KEYS if k != "deeplake_dataset") + ("deeplake_dataloader",)
#: The top level of a config.
TOP_LEVEL_KEYS = ("deeplake_dataloader_type", "deeplake_metrics_format")
ALL_KEYS = tuple(dict.fromkeys(DATASET_KEYS + SPLIT_KEYS + TOP_LEVEL_KEYS))
#: Keys of ``deeplake_dataloader`` (2.x-style splits).
DATALOADER_KEYS = ("shuffle", "batch_size", "num_workers", "persistent_workers", "order")
#: Keys of ``deeplake_credentials`` (the seed's ``username`` / ``password`` are refused: Deep Lake 4 has none).
CREDENTIAL_KEYS = ("token", "creds", "username", "password")
#: ``deeplake_dataloader_type`` values -> the loader they select.
LOADER_TYPES = {"c++": "cpp", "cpp": "cpp", "python": "python", "auto": "auto"}
#: ``deeplake_metrics_format`` values.
METRIC_FORMATS = ("COCO", "PascalVOC")


def loader_type(value) -> str:
    """``deeplake_dataloader_type`` -> ``"cpp"``, ``"python"`` or ``"auto"`` (unset means auto).

    Raises:
        ConfigError: an unknown loader type.
    """
    if value in (None, ""):
        return "auto"
    key = str(value).lower()
    if key not in LOADER_TYPES:
        raise ConfigError(f"deeplake_dataloader_type={value!r}: expected one of {list(LOADER_TYPES)}"
                          f"{did_you_mean(key, LOADER_TYPES)}")
    return LOADER_TYPES[key]


def metrics_format(value) -> str:
    """``deeplake_metrics_format`` -> ``"COCO"`` (also when unset) or ``"PascalVOC"``, any case.

    Raises:
        ConfigError: an unknown format.
    """
    if value in (None, ""):
        return "COCO"
    for name in METRIC_FORMATS:
        if str(value).lower() == name.lower():
            return name
    raise ConfigError(f"deeplake_metrics_format={value!r}: expected one of {list(METRIC_FORMATS)}"
                      f"{did_you_mean(str(value), METRIC_FORMATS)}")


def check_keys(keys: Iterable[str], allowed: tuple, where: str) -> None:
    """Every ``deeplake_*`` key of ``keys`` must be in ``allowed``.

    Raises:
        ConfigError: names the first unknown key, the closest known one, and where a known key
            that does not belong here does belong.
    """
    for key in keys:
        if not str(key).startswith("deeplake_") or key in allowed:
            continue
        if key in TOP_LEVEL_KEYS and allowed is not TOP_LEVEL_KEYS:
            home = " (it belongs at the top level of the config)"
        elif key in SPLIT_KEYS and allowed is TOP_LEVEL_KEYS:
            home = " (it belongs in a split, data.train / data.val, or is an argument of DeepLakeDetDataset)"
        elif key in ALL_KEYS:
            home = " (it belongs elsewhere)"
        else:
            home = ""
        raise ConfigError(f"{where}: unknown key {key!r}{did_you_mean(key, allowed)}{home}; "
                          f"keys here are {list(allowed)}")


def check_top_level(keys: Iterable[str]) -> None:
    """The top-level ``deeplake_*`` keys of a config (``check_keys`` with ``TOP_LEVEL_KEYS``)."""
    check_keys(keys, TOP_LEVEL_KEYS, "top level of the config")
