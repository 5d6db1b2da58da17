"""lakedet: train MMDetection 3 detectors while streaming Deep Lake datasets.

Importing ``lakedet`` registers ``DeepLakeDetDataset``, its loading transforms and
``DeepLakeCocoMetric`` in MMDetection's registries, so a config can reach them with
``custom_imports = dict(imports=['lakedet'])``.
"""

from .dataset import DeepLakeDetDataset
from .errors import ConfigError, DataError, LakedetError, SchemaError, SourceError
from .evaluation import DeepLakeCocoMetric
from .schema import BoxFormat, BoxMode, TensorMap
from .source import SourceSpec, open_source
from .train import build_detector, train_detector
from .transforms import LoadDeepLakeAnnotations, LoadImageFromDeepLake

__version__ = "0.1.0"

__all__ = [
    "BoxFormat", "BoxMode", "ConfigError", "DataError", "DeepLakeCocoMetric", "DeepLakeDetDataset",
    "LakedetError", "LoadDeepLakeAnnotations", "LoadImageFromDeepLake", "SchemaError", "SourceError",
    "SourceSpec", "TensorMap", "build_detector", "open_source", "train_detector",
]
