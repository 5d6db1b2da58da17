"""A stand-in for mmcv's compiled ops (``mmcv._ext``) where only an mmcv without them can be had.

For ``benchmarks/gpu.py`` on a GPU machine whose torch has no mmcv wheel and no time to build one
(see ``docs/gpu.md``). MMDetection imports ``mmcv.ops`` everywhere, and ``mmcv.ops`` asks
``mmcv._ext`` for every op's kernels at import; this module answers those questions, runs
``nms`` on torchvision's kernel (the only op the two benchmarked models call in training besides
RoIAlign, which the benchmark asks mmcv to take from torchvision with ``use_torchvision=True``),
and makes every other op raise, naming itself. Benchmark-only: lakedet never imports it.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
import types

__all__ = ["install"]


def _nms(boxes, scores, iou_threshold: float, offset: int = 0):
    import torchvision

    if offset:
        raise NotImplementedError("nms with offset=1 (the legacy +1 box convention) is not in torchvision")
    return torchvision.ops.nms(boxes.float(), scores.float(), float(iou_threshold))


def _missing(name: str):
    if name.startswith("__"):
        raise AttributeError(name)

    def op(*args, **kwargs):
        raise NotImplementedError(f"mmcv op {name!r} needs mmcv's compiled ops (mmcv._ext), which this "
                                  "environment does not have; benchmarks/mmcv_ops_shim.py provides only nms")

    op.__name__ = name
    return op


def install() -> bool:
    """Put the stand-in in place unless mmcv's real ops are installed; True when it was installed."""
    if "mmcv._ext" in sys.modules or importlib.util.find_spec("mmcv._ext") is not None:
        return False
    module = types.ModuleType("mmcv._ext")
    module.__spec__ = importlib.machinery.ModuleSpec("mmcv._ext", None)
    module.nms = _nms
    module.__getattr__ = _missing
    sys.modules["mmcv._ext"] = module
    return True
