"""``BlockCache``: an opt-in local disk cache for the storage chunks lakedet reads whole from remote data.

With the chunk-aware order (``lakedet.data.sampler``), each DataLoader worker reads a storage chunk
(~8 MB of rows) with one slice call. With a cache folder set (``deeplake_cache=...`` on the
dataset, or ``LAKEDET_CACHE_DIR``), what such a read returned is also written there, so later
epochs read the chunk from local disk instead of the network.

* **Keys** name the dataset URL, its commit, the column, Deep Lake's data file and the rows: a
  chunk's stored bytes never change under its file name, and another commit is another key.
* **Bounded:** after each write, the least recently used entries (by modification time, which a
  hit refreshes) are deleted until the folder holds at most ``max_bytes`` (default 20 GB,
  ``LAKEDET_CACHE_GB``).
* **Safe with several workers and ranks on one machine:** an entry is written to a temporary file
  and renamed into place (readers see a whole entry or none); eviction runs under a file lock;
  an entry deleted while another process reads it stays readable to that reader (POSIX), and a
  damaged or truncated entry counts as a miss and is removed.

Nothing of the user's dataset is written: the cache holds copies only.
"""

from __future__ import annotations

import hashlib
import os
import struct
import tempfile
from collections.abc import Mapping, Sequence

from ..errors import ConfigError

__all__ = ["BlockCache", "open_cache", "DEFAULT_MAX_GB"]

DEFAULT_MAX_GB = 20.0
_MAGIC = b"LKDC1\n"


class BlockCache:
    """A folder of cached chunk reads (lists of ``bytes``), at most ``max_bytes`` in all."""

    def __init__(self, path: str, max_bytes: int):
        self.path = os.path.abspath(os.path.expanduser(path))
        self.max_bytes = int(max_bytes)
        os.makedirs(self.path, exist_ok=True)
        self.hits = self.misses = self.writes = 0

    def _file(self, key: str) -> str:
        return os.path.join(self.path, hashlib.sha256(key.encode()).hexdigest() + ".blk")

    def has(self, key: str) -> bool:
        """Whether an entry for ``key`` exists now (it may still be evicted before ``get``)."""
        return os.path.exists(self._file(key))

    def get(self, key: str) -> list[bytes] | None:
        """The values stored under ``key``, or None (a miss)."""
        path = self._file(key)
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            self.misses += 1
            return None
        values = _decode(data)
        if values is None:  # damaged: forget it
            _remove(path)
            self.misses += 1
            return None
        try:
            os.utime(path)  # recently used
        except OSError:
            pass
        self.hits += 1
        return values

    def put(self, key: str, values: Sequence[bytes]) -> None:
        """Store ``values`` under ``key`` (atomically), then keep the folder within ``max_bytes``."""
        data = _encode(values)
        if len(data) > self.max_bytes:
            return
        fd, tmp = tempfile.mkstemp(dir=self.path, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, self._file(key))
        except OSError:
            _remove(tmp)
            return
        self.writes += 1
        self.evict()

    def size(self) -> int:
        """Bytes the cache's entries hold now."""
        return sum(size for _, _, size in self._entries())

    def evict(self) -> None:
        """Delete least recently used entries until at most ``max_bytes`` remain."""
        import fcntl

        with open(os.path.join(self.path, ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            entries = sorted(self._entries())
            total = sum(size for _, _, size in entries)
            for _, path, size in entries:
                if total <= self.max_bytes:
                    break
                _remove(path)
                total -= size

    def _entries(self):
        import time

        for entry in os.scandir(self.path):
            if entry.name.startswith(".tmp-"):  # a write killed half way (an hour ago): never renamed
                try:
                    if entry.stat().st_mtime < time.time() - 3600:
                        _remove(entry.path)
                except OSError:
                    pass
            elif entry.name.endswith(".blk"):
                try:
                    stat = entry.stat()
                except OSError:
                    continue
                yield stat.st_mtime, entry.path, stat.st_size


def _encode(values: Sequence[bytes]) -> bytes:
    sizes = [len(v) for v in values]
    return b"".join([_MAGIC, struct.pack(f"<Q{len(sizes)}Q", len(sizes), *sizes), *map(bytes, values)])


def _decode(data: bytes) -> list[bytes] | None:
    head = len(_MAGIC)
    if not data.startswith(_MAGIC) or len(data) < head + 8:
        return None
    (count,) = struct.unpack_from("<Q", data, head)
    start = head + 8 + 8 * count
    if start > len(data):
        return None
    sizes = struct.unpack_from(f"<{count}Q", data, head + 8)
    if start + sum(sizes) != len(data):
        return None
    values, offset = [], start
    for size in sizes:
        values.append(data[offset:offset + size])
        offset += size
    return values


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass


def open_cache(spec: str | Mapping | None) -> BlockCache | None:
    """The cache ``deeplake_cache`` asks for: a folder, ``{"path": ..., "max_gb": ...}``, or None
    (then ``LAKEDET_CACHE_DIR`` / ``LAKEDET_CACHE_GB``; unset: no cache).

    Raises:
        ConfigError: ``deeplake_cache`` is neither, or ``max_gb`` is not a positive number.
    """
    if spec is None or spec == "":
        path = os.environ.get("LAKEDET_CACHE_DIR")
        if not path:
            return None
        spec = {"path": path, "max_gb": os.environ.get("LAKEDET_CACHE_GB", DEFAULT_MAX_GB)}
    if isinstance(spec, str):
        spec = {"path": spec}
    if not isinstance(spec, Mapping) or not spec.get("path") or set(spec) - {"path", "max_gb"}:
        raise ConfigError(f"deeplake_cache={spec!r}: expected a folder path or dict(path='/local/cache', "
                          f"max_gb={DEFAULT_MAX_GB:g})")
    try:
        max_gb = float(spec.get("max_gb", DEFAULT_MAX_GB))
    except (TypeError, ValueError):
        max_gb = -1
    if not max_gb > 0:
        raise ConfigError(f"deeplake_cache max_gb={spec.get('max_gb')!r}: expected a positive number of GB")
    return BlockCache(str(spec["path"]), int(max_gb * 1e9))
