"""Checkpoints that load under torch >= 2.6 (``weights_only=True``) without switching the check off.

mmengine 0.10.7 stores its message hub in every checkpoint: ``HistoryBuffer`` objects whose state
holds the functions ``HistoryBuffer.min/max/...``, pickled as ``getattr(HistoryBuffer, 'min')``.
Allowing ``getattr`` would let any checkpoint run code, so instead lakedet writes each buffer as
plain arrays and turns them back into buffers after loading (``hooks.CheckpointCodecHook``); the
few numpy types those arrays need are added to torch's allow-list.
"""

from __future__ import annotations

__all__ = ["allow_mmengine_checkpoints", "encode_buffers", "decode_buffers"]

_BUFFER_TAG = "__lakedet_history_buffer__"
_done = False


def allow_mmengine_checkpoints() -> None:
    """Add the numpy types lakedet checkpoints hold to torch's allow-list (idempotent)."""
    global _done
    if _done:
        return
    import numpy as np
    import torch

    allowed = [np.ndarray, np.dtype, np.core.multiarray._reconstruct,
               np.core.multiarray.scalar]
    allowed += [type(np.dtype(t)) for t in ("float64", "float32", "float16", "int64", "int32",
                                              "int16", "int8", "uint8", "bool")]
    torch.serialization.add_safe_globals(allowed)
    _done = True


def encode_buffers(log_scalars: dict) -> dict:
    """``{name: HistoryBuffer}`` -> ``{name: plain dict}`` (no functions inside)."""
    return {name: {_BUFFER_TAG: True, "log_history": buf._log_history, "count_history": buf._count_history,
                   "max_length": buf.max_length}
            for name, buf in log_scalars.items()}


def decode_buffers(log_scalars: dict) -> dict:
    """Inverse of ``encode_buffers``; values that are not encoded buffers pass through."""
    from mmengine.logging import HistoryBuffer

    decoded = {}
    for name, value in log_scalars.items():
        if isinstance(value, dict) and value.get(_BUFFER_TAG):
            buf = HistoryBuffer(max_length=value["max_length"])
            buf._log_history, buf._count_history = value["log_history"], value["count_history"]
            value = buf
        decoded[name] = value
    return decoded
