"""lakedet: train MMDetection 3 detectors while streaming Deep Lake datasets.

Importing ``lakedet`` registers ``DeepLakeDetDataset``, its loading transforms, the metrics, hooks
and samplers in MMDetection's and mmengine's registries (and allow-lists mmengine's checkpoint
contents for ``torch.load(weights_only=True)``), so a config reaches them with
``custom_imports = dict(imports=['lakedet'])`` and MMDetection's own ``tools/train.py`` runs it.

One process is the exception: the ``lakedet`` command itself (``lakedet ...`` or
``python -m lakedet ...``) registers only when a command needs it (``lakedet.register_all``), so
that ``lakedet --help`` and argument errors answer at once instead of after importing
MMDetection. Public names (``lakedet.train_detector`` ...) are imported on first use.
"""

import logging as _logging
import os as _os
import sys as _sys

from .version import __version__

#: public name -> the module that defines it
_PUBLIC = {
    "BoxFormat": "schema", "BoxMode": "schema", "TensorMap": "schema",
    "ConfigError": "errors", "DataError": "errors", "LakedetError": "errors", "SchemaError": "errors",
    "SourceError": "errors", "RankError": "errors",
    "DeepLakeDetDataset": "data.dataset", "DeepLakeCocoMetric": "evaluation.metrics",
    "ShardedRowSampler": "data.sampler", "shard_rows": "data.sampler",
    "SourceSpec": "source", "open_source": "source",
    "build_detector": "engine.runner", "train_detector": "engine.runner", "convert_deeplake3": "tools.convert",
    "LoadDeepLakeAnnotations": "data.transforms", "LoadImageFromDeepLake": "data.transforms",
}

__all__ = sorted(_PUBLIC) + ["register_all"]


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'lakedet' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{_PUBLIC[name]}", __name__), name)
    globals()[name] = value
    return value


def register_all() -> None:
    """Register every lakedet component in MMDetection's and mmengine's registries and allow-list
    what mmengine's checkpoints hold for ``weights_only`` loading (idempotent).

    Raises:
        ImportError: the environment lacks what lakedet needs (``lakedet.environment``: the
            Python version, the stack's ranges, mmcv's compiled ops), every problem named.
    """
    from .environment import check_environment

    check_environment()
    from .data import dataset, sampler, transforms, wrappers  # noqa: F401  (they register)
    from .engine import hooks, runner  # noqa: F401
    from .engine.checkpoints import allow_mmengine_checkpoints
    from .evaluation import metrics  # noqa: F401

    allow_mmengine_checkpoints()


def _started_as_command() -> bool:
    """True when this process is the ``lakedet`` command (console script or ``python -m lakedet``)."""
    argv = list(getattr(_sys, "orig_argv", None) or _sys.argv)
    if _sys.argv and _os.path.basename(_sys.argv[0]) == "lakedet":
        return True
    return any(flag == "-m" and module == "lakedet" for flag, module in zip(argv, argv[1:]))


_logger = _logging.getLogger("lakedet")
if not _logger.handlers:  # show lakedet's notes next to mmengine's log unless the user set up logging
    _handler = _logging.StreamHandler()
    _handler.setFormatter(_logging.Formatter("%(asctime)s - lakedet - %(levelname)s - %(message)s",
                                             "%m/%d %H:%M:%S"))
    _logger.addHandler(_handler)
    _logger.setLevel(_logging.INFO)

if not _started_as_command():
    register_all()
