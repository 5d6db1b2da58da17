"""lakedet: train MMDetection 3 detectors while streaming Deep Lake datasets.

Importing ``lakedet`` registers ``DeepLakeDetDataset``, its loading transforms and
``DeepLakeCocoMetric`` in MMDetection's registries (and ``ShardedRowSampler`` in mmengine's), so a config can reach them with
``custom_imports = dict(imports=['lakedet'])``.
"""

import logging as _logging

from .dataset import DeepLakeDetDataset
from .errors import ConfigError, DataError, LakedetError, SchemaError, SourceError
from .evaluation import DeepLakeCocoMetric
from .sampler import ShardedRowSampler, shard_rows
from .schema import BoxFormat, BoxMode, TensorMap
from .source import SourceSpec, open_source
from .train import build_detector, train_detector
from .transforms import LoadDeepLakeAnnotations, LoadImageFromDeepLake
from . import wrappers as _wrappers  # noqa: F401  (registers the batched dataset wrappers)

__version__ = "0.1.0"

_logger = _logging.getLogger("lakedet")
if not _logger.handlers:  # show lakedet's notes next to mmengine's log unless the user set up logging
    _handler = _logging.StreamHandler()
    _handler.setFormatter(_logging.Formatter("%(asctime)s - lakedet - %(levelname)s - %(message)s",
                                             "%m/%d %H:%M:%S"))
    _logger.addHandler(_handler)
    _logger.setLevel(_logging.INFO)

__all__ = [
    "BoxFormat", "BoxMode", "ConfigError", "DataError", "DeepLakeCocoMetric", "DeepLakeDetDataset",
    "LakedetError", "LoadDeepLakeAnnotations", "LoadImageFromDeepLake", "SchemaError", "SourceError",
    "ShardedRowSampler", "SourceSpec", "TensorMap", "build_detector", "open_source", "shard_rows",
    "train_detector",
]
