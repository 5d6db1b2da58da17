"""Checkpoints that load under torch >= 2.6 (``weights_only=True``) without switching the check off.

mmengine 0.10.7 stores its message hub in every checkpoint: ``HistoryBuffer`` objects whose state
holds the functions ``HistoryBuffer.min/max/...``, pickled as ``builtins.getattr(HistoryBuffer,
'min')``, plus numpy arrays and scalars in ``meta``. Allowing ``getattr`` itself would let any
checkpoint reach any attribute, so ``allow_mmengine_checkpoints`` puts a narrow stand-in under that
name in torch's allow-list: it answers ``getattr(HistoryBuffer, <a statistics method>)`` and
refuses everything else; ``HistoryBuffer`` and the numpy types (under their numpy 1 and numpy 2
names) are allowed as well. So checkpoints written by plain mmengine / MMDetection and the model
zoo's released files load for ``load_from``, ``--resume``, ``tools/test.py`` and ``lakedet eval``.
Checkpoints of earlier lakedet versions stored each buffer as plain arrays; ``decode_buffers`` still
reads them. The random states a resume restores are stored as plain ints, lists and tensors
(``lakedet.data.seeding.get_rng_states``).
"""

from __future__ import annotations

__all__ = ["allow_mmengine_checkpoints", "history_buffer_method", "decode_buffers", "BUFFER_TAG"]

#: How earlier lakedet versions marked a ``HistoryBuffer`` stored as a plain dict.
BUFFER_TAG = "__lakedet_history_buffer__"
_done = False


def history_buffer_method(owner, name: str):
    """What ``builtins.getattr`` means inside a checkpoint: only ``HistoryBuffer``'s statistics."""
    from pickle import UnpicklingError

    from mmengine.logging import HistoryBuffer

    builtin = ("mean", "current", "min", "max")  # HistoryBuffer's own; others come from register_statistics
    if owner is HistoryBuffer and isinstance(name, str) and (name in builtin or name in HistoryBuffer._statistics_methods):
        return getattr(HistoryBuffer, name)
    raise UnpicklingError(f"checkpoint asks for getattr({getattr(owner, '__name__', owner)!r}, {name!r}); "
                          "with weights_only=True only mmengine's HistoryBuffer statistics are allowed")


def allow_mmengine_checkpoints() -> None:
    """Add what mmengine checkpoints hold to torch's ``weights_only`` allow-list (idempotent)."""
    global _done
    if _done:
        return
    import numpy as np
    import torch
    from mmengine.logging import HistoryBuffer

    multiarray = np.core.multiarray
    allowed = [np.ndarray, np.dtype, multiarray._reconstruct, multiarray.scalar, HistoryBuffer,
               (history_buffer_method, "builtins.getattr"),
               # files written with numpy 2 name numpy's internals numpy._core
               (multiarray._reconstruct, "numpy._core.multiarray._reconstruct"),
               (multiarray.scalar, "numpy._core.multiarray.scalar")]
    allowed += [type(np.dtype(t)) for t in ("float64", "float32", "float16", "int64", "int32",
                                              "int16", "int8", "uint64", "uint32", "uint16", "uint8", "bool")]
    torch.serialization.add_safe_globals(allowed)
    _done = True


def decode_buffers(log_scalars: dict) -> dict:
    """Buffers that earlier lakedet versions wrote as plain dicts (``{BUFFER_TAG: True,
    "log_history": ..., "count_history": ..., "max_length": ...}``) -> ``HistoryBuffer``; other
    values pass through."""
    from mmengine.logging import HistoryBuffer

    decoded = {}
    for name, value in log_scalars.items():
        if isinstance(value, dict) and value.get(BUFFER_TAG):
            buf = HistoryBuffer(max_length=value["max_length"])
            buf._log_history, buf._count_history = value["log_history"], value["count_history"]
            value = buf
        decoded[name] = value
    return decoded
