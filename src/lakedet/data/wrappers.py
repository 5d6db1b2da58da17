"""MMDetection's dataset wrappers, passing whole batches on to ``DeepLakeDetDataset``.

PyTorch's DataLoader asks a dataset for a batch at once when it has ``__getitems__``; mmengine's
``RepeatDataset``, ``ClassBalancedDataset`` and MMDetection's ``ConcatDataset`` do not have it,
so a Deep Lake dataset inside them would be read row by row. These subclasses add it: the
batch's indices are mapped to the wrapped datasets and each one gets its part in one call; over
datasets without ``__getitems__`` they read item by item, as the plain wrappers do. In
MMDetection's registry they stand in for the plain wrappers under their own names, so a config
that wraps a Deep Lake split (``RepeatDataset`` ...) gets them in every entry point; they are
also registered under their own names (``BatchedRepeatDataset`` ...).
"""

from __future__ import annotations

from collections.abc import Sequence

from mmdet.datasets import ConcatDataset
from mmdet.registry import DATASETS
from mmengine.dataset import ClassBalancedDataset, RepeatDataset

__all__ = ["BatchedConcatDataset", "BatchedRepeatDataset", "BatchedClassBalancedDataset"]


def _split_batch(indices: Sequence[int], locate) -> list:
    """Samples for ``indices``; ``locate(idx) -> (dataset, inner index)``; one call per dataset."""
    groups: dict[int, tuple] = {}
    for position, idx in enumerate(indices):
        dataset, inner = locate(idx)
        groups.setdefault(id(dataset), (dataset, []))[1].append((position, inner))
    samples: list = [None] * len(indices)
    for dataset, items in groups.values():
        inner = [i for _, i in items]
        got = dataset.__getitems__(inner) if hasattr(dataset, "__getitems__") else [dataset[i] for i in inner]
        for (position, _), sample in zip(items, got):
            samples[position] = sample
    return samples


@DATASETS.register_module()
class BatchedConcatDataset(ConcatDataset):
    """MMDetection's ``ConcatDataset`` with ``__getitems__``."""

    def __getitems__(self, indices: Sequence[int]) -> list:
        if not self._fully_initialized:
            self.full_init()

        def locate(idx):
            dataset_idx, sample_idx = self._get_ori_dataset_idx(idx)
            return self.datasets[dataset_idx], sample_idx

        return _split_batch(indices, locate)


@DATASETS.register_module()
class BatchedRepeatDataset(RepeatDataset):
    """mmengine's ``RepeatDataset`` with ``__getitems__``."""

    def __getitems__(self, indices: Sequence[int]) -> list:
        if not self._fully_initialized:
            self.full_init()
        return _split_batch(indices, lambda idx: (self.dataset, self._get_ori_dataset_idx(idx)))


@DATASETS.register_module()
class BatchedClassBalancedDataset(ClassBalancedDataset):
    """mmengine's ``ClassBalancedDataset`` with ``__getitems__``."""

    def __getitems__(self, indices: Sequence[int]) -> list:
        if not self._fully_initialized:
            self.full_init()
        return _split_batch(indices, lambda idx: (self.dataset, self._get_ori_dataset_idx(idx)))


# the stand-ins: MMDetection's configs name the plain wrappers
for _name, _wrapper in (("ConcatDataset", BatchedConcatDataset), ("RepeatDataset", BatchedRepeatDataset),
                        ("ClassBalancedDataset", BatchedClassBalancedDataset)):
    DATASETS.register_module(name=_name, module=_wrapper, force=True)
