"""Loading mmengine checkpoints under torch >= 2.6 (``weights_only=True`` by default).

mmengine 0.10.7 saves its message hub (``HistoryBuffer``, numpy scalars and arrays) in every
checkpoint, which torch's safe unpickler rejects. Instead of switching the check off, lakedet adds
exactly those types to torch's allow-list, and registers the hook that stores user ``meta``.
"""

from __future__ import annotations

__all__ = ["allow_mmengine_checkpoints", "CheckpointMetaHook"]

_done = False


def allow_mmengine_checkpoints() -> None:
    """Allow the types mmengine writes into checkpoints (idempotent)."""
    global _done
    if _done:
        return
    import numpy as np
    import torch
    from mmengine.logging import HistoryBuffer

    allowed = [HistoryBuffer, np.ndarray, np.dtype, np.core.multiarray._reconstruct,
               np.core.multiarray.scalar]
    allowed += [type(np.dtype(t)) for t in ("float64", "float32", "float16", "int64", "int32",
                                              "int16", "int8", "uint8", "bool")]
    torch.serialization.add_safe_globals(allowed)
    _done = True


def _register_hook():
    from mmengine.hooks import Hook
    from mmengine.registry import HOOKS

    @HOOKS.register_module(force=True)
    class CheckpointMetaHook(Hook):
        """Store ``meta`` (the seed's ``train_detector(meta=...)``) in every checkpoint."""

        def __init__(self, meta: dict):
            self.meta = dict(meta)

        def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
            checkpoint.setdefault("meta", {}).update(self.meta)

    return CheckpointMetaHook


CheckpointMetaHook = _register_hook()
