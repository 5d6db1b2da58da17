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
reads them. The random states a resume restores are stored as plain ints, lists and tensors.
Secrets in the config text a checkpoint carries (``deeplake_credentials``) are blanked
(``redact_secrets``).
"""

from __future__ import annotations

__all__ = ["allow_mmengine_checkpoints", "history_buffer_method", "decode_buffers",
           "get_rng_states", "set_rng_states", "redact_secrets", "redact_credentials", "PUBLIC_CREDENTIAL_KEYS"]

_BUFFER_TAG = "__lakedet_history_buffer__"
#: Credential keys whose values never leave the process (Deep Lake token, cloud secrets).
SECRET_KEYS = ("token", "aws_secret_access_key", "aws_session_token", "account_key", "sas_token",
               "connection_string", "password", "private_key", "client_secret")
#: The only settings under ``deeplake_credentials`` kept in saved configs, logs, checkpoints and
#: lineage: where the storage is, not who may read it. Everything else is redacted.
PUBLIC_CREDENTIAL_KEYS = ("endpoint_url", "aws_region", "region", "region_name")
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


def redact_credentials(node):
    """A copy of a config tree (dicts, lists) in which every value under a ``deeplake_credentials``
    key is ``'<redacted>'`` except ``PUBLIC_CREDENTIAL_KEYS`` (deny by default: a key lakedet does
    not know, e.g. a new cloud's secret, is redacted too), and every ``SECRET_KEYS`` value anywhere."""
    from collections.abc import Mapping

    def hide(value, inside: bool):
        if isinstance(value, Mapping):
            out = {}
            for key, item in value.items():
                if isinstance(item, (Mapping, list, tuple)):
                    out[key] = hide(item, inside or key == "deeplake_credentials")
                elif item is None or (inside and key in PUBLIC_CREDENTIAL_KEYS):
                    out[key] = item
                elif inside or key in SECRET_KEYS or key == "deeplake_credentials":
                    out[key] = "<redacted>"
                else:
                    out[key] = item
            return out
        if isinstance(value, (list, tuple)):
            return type(value)(hide(item, inside) for item in value)
        return "<redacted>" if inside and value is not None else value

    return hide(node, False)


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
    """Buffers that earlier lakedet versions wrote as plain dicts (``{_BUFFER_TAG: True,
    "log_history": ..., "count_history": ..., "max_length": ...}``) -> ``HistoryBuffer``; other
    values pass through."""
    from mmengine.logging import HistoryBuffer

    decoded = {}
    for name, value in log_scalars.items():
        if isinstance(value, dict) and value.get(_BUFFER_TAG):
            buf = HistoryBuffer(max_length=value["max_length"])
            buf._log_history, buf._count_history = value["log_history"], value["count_history"]
            value = buf
        decoded[name] = value
    return decoded


def get_rng_states() -> dict:
    """The Python, NumPy and torch (CPU, and CUDA when present) random states, as types that
    ``torch.load(weights_only=True)`` accepts."""
    import random

    import numpy as np
    import torch

    kind, key, pos, has_gauss, gauss = np.random.get_state()
    states = {"python": random.getstate(),
              "numpy": {"kind": kind, "key": torch.from_numpy(key.astype(np.int64)), "pos": int(pos),
                        "has_gauss": int(has_gauss), "gauss": float(gauss)},
              "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict) -> None:
    """Restore what ``get_rng_states`` returned (keys it lacks are left as they are)."""
    import random

    import numpy as np
    import torch

    if "python" in states:
        version, internal, gauss = states["python"]
        random.setstate((version, tuple(internal), gauss))
    if "numpy" in states:
        n = states["numpy"]
        np.random.set_state((n["kind"], n["key"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    if "torch" in states:
        torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available() and len(states["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(states["cuda"])


def redact_secrets(config_text: str) -> str:
    """``config_text`` (a config's ``pretty_text``) with the value of every ``SECRET_KEYS`` key
    replaced by ``'<redacted>'``, in both ``key='value'`` and ``'key': 'value'`` forms."""
    import re

    keys = "|".join(SECRET_KEYS)
    pattern = re.compile(r"""(\b(?:%s)\s*=\s*|['"](?:%s)['"]\s*:\s*)(['"])(?:\\.|(?!\2).)*\2""" % (keys, keys))
    return pattern.sub(lambda m: f"{m.group(1)}'<redacted>'", config_text)
