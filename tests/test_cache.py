"""``lakedet.data.cache.BlockCache``: entries round-trip, the folder stays within its bound (least
recently used out first), damaged entries are misses, several processes share one folder."""

import os
import subprocess
import sys

import pytest

from lakedet.data.cache import BlockCache, open_cache
from lakedet.errors import ConfigError

pytestmark = pytest.mark.timeout(120)


def test_entries_round_trip_and_missing_ones_are_misses(tmp_path):
    cache = BlockCache(str(tmp_path), 10**6)
    values = [b"", b"\xff\xd8 jpeg", bytes(range(256)) * 3]
    assert cache.get("k") is None and not cache.has("k")
    cache.put("k", values)
    assert cache.has("k") and cache.get("k") == values
    assert (cache.hits, cache.misses, cache.writes) == (1, 1, 1)


def test_the_folder_stays_within_its_bound_least_recently_used_first(tmp_path):
    cache = BlockCache(str(tmp_path), 3500)
    for name in "abc":
        cache.put(name, [name.encode() * 1000])
        os.utime(cache._file(name), (1000 + ord(name), 1000 + ord(name)))  # a, then b, then c
    cache.get("a")  # a hit makes "a" the most recently used
    cache.put("d", [b"d" * 1000])
    assert cache.size() <= 3500
    assert [cache.has(n) for n in "abcd"] == [True, False, True, True]  # "b" was the least recently used
    cache.put("huge", [b"x" * 5000])  # larger than the whole cache: not kept
    assert not cache.has("huge") and cache.size() <= 3500


def test_a_damaged_entry_is_a_miss_and_is_removed(tmp_path):
    cache = BlockCache(str(tmp_path), 10**6)
    cache.put("k", [b"abc", b"defg"])
    path = cache._file("k")
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) - 2)  # a write cut short
    assert cache.get("k") is None and not os.path.exists(path)


def test_several_processes_share_one_folder(tmp_path):
    import lakedet

    # lakedet.data.cache alone, without lakedet/__init__.py (which imports MMDetection: seconds per process)
    code = ("import sys, types\npackage = types.ModuleType('lakedet')\n"
            f"package.__path__ = [{os.path.dirname(lakedet.__file__)!r}]\nsys.modules['lakedet'] = package\n"
            "from lakedet.data.cache import BlockCache\n"
            "cache = BlockCache(sys.argv[1], 60_000)\n"
            "for i in range(200):\n"
            "    key = f'k{i % 25}'\n"
            "    got = cache.get(key)\n"
            "    assert got is None or got == [key.encode() * 500, b'end'], (key, got and len(got))\n"
            "    cache.put(key, [key.encode() * 500, b'end'])\n")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stderr=subprocess.PIPE, text=True)
             for _ in range(4)]
    for proc in procs:
        assert proc.wait(timeout=60) == 0, proc.stderr.read()[-2000:]
    cache = BlockCache(str(tmp_path), 60_000)
    assert 0 < cache.size() <= 60_000
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".tmp-")]  # every write renamed into place


def test_open_cache_reads_the_setting_and_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("LAKEDET_CACHE_DIR", raising=False)
    assert open_cache(None) is None
    assert open_cache(str(tmp_path)).max_bytes == 20 * 10**9
    assert open_cache(dict(path=str(tmp_path), max_gb=0.5)).max_bytes == 5 * 10**8
    monkeypatch.setenv("LAKEDET_CACHE_DIR", str(tmp_path / "env"))
    monkeypatch.setenv("LAKEDET_CACHE_GB", "2")
    assert open_cache(None).path == str(tmp_path / "env") and open_cache(None).max_bytes == 2 * 10**9
    with pytest.raises(ConfigError, match="deeplake_cache max_gb=-1: expected a positive number"):
        open_cache(dict(path=str(tmp_path), max_gb=-1))
    with pytest.raises(ConfigError, match="expected a folder path or dict"):
        open_cache(dict(folder=str(tmp_path)))
