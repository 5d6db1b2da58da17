"""A stand-in ``mmcv._ext`` for a GPU machine where only mmcv without its compiled ops can be had.

For ``benchmarks/gpu.py`` (see ``docs/gpu.md``): the GPU machine's torch has no mmcv wheel and no
time to build one, so an mmcv-lite is installed there and this file is copied into it as
``mmcv/_ext.py``. MMDetection imports ``mmcv.ops`` everywhere and ``mmcv.ops`` asks ``mmcv._ext``
for every op's kernels at import; this module answers, runs ``nms`` (what the RPN calls in
training) on torchvision's kernel, and makes every other op raise, naming itself. RoIAlign is
taken from torchvision by mmcv itself (``use_torchvision=True``, which ``gpu.py`` sets where this
stand-in is in place). Benchmark-only: lakedet never imports it.
"""

from __future__ import annotations

#: what ``gpu.py`` looks for to know the stand-in is in place
STAND_IN = True


def nms(boxes, scores, iou_threshold: float, offset: int = 0):
    import torchvision

    if offset:
        raise NotImplementedError("nms with offset=1 (the legacy +1 box convention) is not in torchvision")
    return torchvision.ops.nms(boxes.float(), scores.float(), float(iou_threshold))


def __getattr__(name: str):
    if name.startswith("__"):
        raise AttributeError(name)

    def op(*args, **kwargs):
        raise NotImplementedError(f"mmcv op {name!r} needs mmcv's compiled ops, which this environment does not "
                                  "have; benchmarks/mmcv_ops_shim.py stands in for nms only")

    op.__name__ = name
    return op
