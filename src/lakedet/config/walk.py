"""The one walker over the dataset configs of a run: through wrappers to the datasets they hold.

A dataloader's ``dataset`` may be a dataset dict, a wrapper holding one (``dataset=``:
``RepeatDataset``, ``ClassBalancedDataset``, ``MultiImageMixDataset``) or several (``datasets=``:
``ConcatDataset``), or, in a 2.x-style ``data`` section, a list (a concatenation).
``leaf_datasets`` yields the datasets at the bottom, ``deeplake_dataset_configs`` those of type
``DeepLakeDetDataset`` (any scope), ``run_dataset_configs`` those of a run's dataloaders.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

__all__ = ["DATASET_TYPE", "SPLITS", "bare_type", "leaf_datasets", "deeplake_dataset_configs", "run_dataset_configs"]

#: The registered name of lakedet's dataset.
DATASET_TYPE = "DeepLakeDetDataset"
#: The splits of a run, as ``<split>_dataloader`` keys name them.
SPLITS = ("train", "val", "test")


def bare_type(step) -> str:
    """A registry ``type`` without its scope: ``'mmdet.Resize'`` -> ``'Resize'`` ('' for a non-dict)."""
    return str(step.get("type", "")).split(".")[-1] if isinstance(step, Mapping) else ""


def _children(node: Mapping) -> list:
    inner = node.get("datasets")
    if isinstance(inner, Sequence) and not isinstance(inner, (str, bytes)):
        return list(inner)
    return [node["dataset"]] if isinstance(node.get("dataset"), (Mapping, list, tuple)) else []


def leaf_datasets(node) -> Iterator:
    """The dataset configs at the bottom of ``node`` (a dataset config, a wrapper or a list of them)."""
    if isinstance(node, Sequence) and not isinstance(node, (str, bytes)):
        for item in node:
            yield from leaf_datasets(item)
        return
    if not isinstance(node, Mapping):
        if node is not None:
            yield node  # not a dict: whoever reads it names the problem
        return
    children = _children(node)
    if children:
        for child in children:
            yield from leaf_datasets(child)
    else:
        yield node


def deeplake_dataset_configs(node) -> list:
    """Every ``DeepLakeDetDataset`` dict inside ``node`` (the dicts themselves: edits apply in place)."""
    return [leaf for leaf in leaf_datasets(node) if bare_type(leaf) == DATASET_TYPE]


def run_dataset_configs(cfg, splits: Sequence[str] = SPLITS) -> list[tuple[str, dict]]:
    """``(split, dataset dict)`` for every ``DeepLakeDetDataset`` of the run's ``<split>_dataloader``s."""
    found = []
    for split in splits:
        loader = cfg.get(f"{split}_dataloader")
        if isinstance(loader, Mapping):
            found += [(split, dataset) for dataset in deeplake_dataset_configs(loader.get("dataset"))]
    return found
