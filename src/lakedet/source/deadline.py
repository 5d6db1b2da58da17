"""Bounded waits on Deep Lake's asynchronous calls: a remote read or open never waits without end.

Deep Lake can wait minutes on storage that has gone away (it retries for ~42 s and more). Every
remote call lakedet makes goes through its ``*_async`` variant (``open_read_only_async``,
``Version.open_async``, ``Tag.open_async``, ``query_async``, ``get_async``, ``get_bytes_async``)
and is waited for here: ``wait(future, what, timeout)`` polls the ``Future`` and, past the
deadline, cancels it and raises ``ReadTimeout`` (or the given error type) with a message naming
``what`` (the URL and the column/row, view or commit) and the setting that raises the bound.

Deep Lake 3 reads (``deeplake.query_async`` on v3 datasets) are waited for the same way.
"""

from __future__ import annotations

import os
import time

from ..errors import DataError, ReadTimeout

__all__ = ["wait", "read_timeout", "DEFAULT_READ_TIMEOUT"]

#: Seconds one remote read may take, retries included (``LAKEDET_READ_TIMEOUT``).
DEFAULT_READ_TIMEOUT = 20.0


def read_timeout() -> float:
    """``LAKEDET_READ_TIMEOUT`` in seconds (default 20)."""
    value = os.environ.get("LAKEDET_READ_TIMEOUT", "")
    try:
        timeout = float(value) if value else DEFAULT_READ_TIMEOUT
    except ValueError:
        raise DataError(f"LAKEDET_READ_TIMEOUT={value!r}: expected a number of seconds, e.g. 20") from None
    if timeout <= 0:
        raise DataError(f"LAKEDET_READ_TIMEOUT={value!r}: expected a positive number of seconds")
    return timeout


def wait(future, what: str, timeout: float | None = None, deadline: float | None = None,
         error: type = ReadTimeout, setting: str = "LAKEDET_READ_TIMEOUT"):
    """The result of a Deep Lake ``Future``, waited for at most ``timeout`` s (or until the
    monotonic ``deadline``).

    Raises:
        ReadTimeout (or ``error``): the future did not complete in time; it is cancelled and the
            message says ``what`` did not finish within the bound, and which setting raises it.
        Whatever the call itself raised, unchanged.
    """
    if deadline is None:
        timeout = read_timeout() if timeout is None else timeout
        deadline = time.monotonic() + timeout
    else:
        timeout = max(0.0, deadline - time.monotonic()) if timeout is None else timeout
    delay = 0.0001
    while not future.is_completed():
        if time.monotonic() > deadline:
            try:
                future.cancel()
            except Exception:
                pass
            raise error(f"{what}: the read did not finish within {timeout:g} s ({setting}); is the storage "
                        "reachable? Training stops here rather than wait without end")
        time.sleep(delay)
        delay = min(delay * 2, 0.01)
    return future.result()
