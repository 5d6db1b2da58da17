"""The storage layout of Deep Lake 3 data (``lakedet.source.deeplake3_chunks``) and the streaming
machinery it feeds (chunk-aware order, read-ahead, DDP shards) over v3 data on S3.

``tests/data/deeplake3_chunked`` was written by Deep Lake 3.9.52 (``make_deeplake3_chunked.py``):
56 tiny JPEGs over 10 storage chunks, three commits (the last rewrites rows of the first chunk, so
the chunks of one commit live in three folders), a saved view of half the rows, and uncommitted
rows on ``main``. ``deeplake3_chunked_expected.json`` holds what Deep Lake 3 itself reads: its
``chunk_id_encoder`` entries, where it finds each chunk, and each row's stored bytes (MD5).
"""

from __future__ import annotations

import collections
import hashlib
import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import upload_folder

pytestmark = [pytest.mark.timeout(300)]

DATA = Path(__file__).parent / "data"
FIXTURE = DATA / "deeplake3_chunked"
EXPECTED = json.loads((DATA / "deeplake3_chunked_expected.json").read_text())
COMMITS = EXPECTED["commits"]
CONTROL = json.loads((FIXTURE / "version_control_info.json").read_text())
HEAD_NODE = CONTROL["branches"]["main"]


def folder_hash(path: Path) -> dict:
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def chunked(tmp_path_factory):
    """A copy of the fixture; after the module, neither it nor the committed folder changed."""
    path = tmp_path_factory.mktemp("v3chunks") / "deeplake3_chunked"
    shutil.copytree(FIXTURE, path)
    before, original = folder_hash(path), folder_hash(FIXTURE)
    yield str(path)
    assert folder_hash(path) == before
    assert folder_hash(FIXTURE) == original


def dataset(path, **keys):
    from lakedet.data.dataset import DeepLakeDetDataset

    return DeepLakeDetDataset(deeplake_path=path, test_mode=True, pipeline=[], **keys)


SELECTIONS = [("default", {}), *[(c, {"deeplake_commit_id": c}) for c in COMMITS],
              ("view:half", {"deeplake_view_id": "half"})]


def expected_layout(name):
    entries = EXPECTED["selections"][name]["chunk_ids"]
    lasts = [last for _, last in entries]
    return [0] + [last + 1 for last in lasts], EXPECTED["selections"][name]["chunk_keys"]


@pytest.mark.parametrize("name,keys", SELECTIONS, ids=[s[0][:12] for s in SELECTIONS])
def test_layout_is_deeplake3s_chunk_index_and_rows_read_through_it_are_deeplake3s(chunked, name, keys):
    """The layout equals Deep Lake 3's ``chunk_id_encoder`` (bounds, and the file it reads each
    chunk from); reading every row through whole-chunk reads gives Deep Lake 3's stored bytes."""
    expected = EXPECTED["selections"][name]
    ds = dataset(chunked, **keys)
    layout = ds.reader.layout
    assert layout is not None
    bounds, keys_found = expected_layout(name)
    assert layout.bounds.tolist() == bounds
    assert list(layout.names) == keys_found  # incl. the rewritten first chunk in the third commit's folder
    if name.startswith("view:"):
        assert layout.rows.tolist() == expected["rows"] == EXPECTED["view_rows"]
    else:
        assert layout.rows is None and len(ds) == bounds[-1]
    assert layout.stable == tuple(not (name == "default" and f"versions/{HEAD_NODE}/" in k) for k in keys_found)
    n = len(ds)
    ds.reader.follow(np.arange(n), lookahead=n)  # read ahead through the whole dataset: whole chunks
    reads = ds.reader.start(range(n))
    md5 = [hashlib.md5(bytes(reads[row].result())).hexdigest() for row in range(n)]
    assert md5 == expected["image_md5"]
    touched = len(set(layout.chunk_of(np.arange(n)).tolist()))
    assert ds.reader.stats == dict(chunk_reads=touched, cache_hits=0, row_reads=0)
    assert [ds.get_data_info(i)["instances"][0]["bbox_label"] for i in range(n)] == expected["labels"]


@pytest.mark.parametrize("keys,source,kept", [
    ({"deeplake_query": "SELECT * WHERE labels == 1"}, "default", lambda row: row % 4 == 1),
    ({"deeplake_view_id": "half", "deeplake_query": "SELECT * WHERE labels == 2"}, "view:half", lambda row: row % 4 == 2),
], ids=["ref+query", "view+query"])
def test_a_query_over_v3_data_reads_the_chunks_of_its_source_rows(chunked, keys, source, kept):
    expected = EXPECTED["selections"][source]
    wanted = [k for k, row in enumerate(expected["rows"]) if kept(row)]
    ds = dataset(chunked, **keys)
    layout = ds.reader.layout
    assert layout.rows.tolist() == [expected["rows"][k] for k in wanted]  # the source rows the query kept
    n = len(ds)
    ds.reader.follow(np.arange(n), lookahead=n)
    reads = ds.reader.start(range(n))
    assert [hashlib.md5(bytes(reads[row].result())).hexdigest() for row in range(n)] == \
        [expected["image_md5"][k] for k in wanted]
    # every chunk the query touches holds >= 1/8 of its rows there (SELECTED_SHARE): read whole, once
    touched = len(set(layout.chunk_of(np.arange(n)).tolist()))
    assert ds.reader.stats == dict(chunk_reads=touched, cache_hits=0, row_reads=0)


def test_chunk_index_parsing_and_what_it_refuses():
    from lakedet.source.deeplake3_chunks import ChunkIndexError, chunk_name, parse_chunk_index, parse_chunk_set

    pairs = np.array([[0xABC, 4], [0x8D9D6C03CD942D0, 9]], "<u8")
    version, entries = parse_chunk_index(b"\x063.9.52\x08" + pairs.tobytes())
    assert version == "3.9.52" and entries.tolist() == pairs.astype(np.int64).tolist()
    assert [chunk_name(c) for c in entries[:, 0]] == ["abc", "8d9d6c03cd942d0"]
    # before 2.7.6: no item size byte, uint32 entries
    assert parse_chunk_index(b"\x052.7.0" + np.array([[7, 1], [8, 3]], "<u4").tobytes())[1].tolist() == [[7, 1], [8, 3]]
    with pytest.raises(ChunkIndexError, match="Deep Lake 9.0.0"):
        parse_chunk_index(b"\x059.0.0\x08" + pairs.tobytes())
    with pytest.raises(ChunkIndexError, match="item size is 3"):
        parse_chunk_index(b"\x063.9.52\x03" + pairs.tobytes())
    with pytest.raises(ChunkIndexError, match="not pairs"):
        parse_chunk_index(b"\x063.9.52\x08" + pairs.tobytes()[:-1])
    with pytest.raises(ChunkIndexError, match="do not ascend"):
        parse_chunk_index(b"\x063.9.52\x08" + pairs[::-1].tobytes())
    assert parse_chunk_set(b"") == {} and parse_chunk_set(None) == {}
    assert parse_chunk_set(b"a1,b2:c0ffee,c3:c0ffee:_old") == {"a1": (None, None), "b2": ("c0ffee", None),
                                                                "c3": ("c0ffee", "_old")}


def test_an_unknown_index_version_falls_back_to_row_reads_with_one_warning(tmp_path, caplog):
    path = tmp_path / "unknown-version"
    shutil.copytree(FIXTURE, path)
    index = path / "versions" / COMMITS[2] / "images" / "chunks_index" / "unsharded"
    data = index.read_bytes()
    assert data[1:7] == b"3.9.52"
    index.write_bytes(data[:1] + b"9.9.99" + data[7:])
    expected = EXPECTED["selections"][COMMITS[2]]
    with caplog.at_level(logging.WARNING, logger="lakedet"):
        first = dataset(str(path), deeplake_commit_id=COMMITS[2])
        again = dataset(str(path), deeplake_commit_id=COMMITS[2])
    warnings = [r.getMessage() for r in caplog.records if "storage layout" in r.getMessage()]
    assert len(warnings) == 1, warnings  # one warning, naming why
    assert "Deep Lake 9.9.99" in warnings[0] and "images" in warnings[0] and "one request each" in warnings[0]
    for ds in (first, again):
        assert ds.reader.layout is None and ds.read_blocks() is None
        assert [hashlib.md5(bytes(ds.raw_sample(i)["img_bytes"])).hexdigest()
                for i in range(len(ds))] == expected["image_md5"]


# --- over S3 ---------------------------------------------------------------------------------

PIPELINE = [dict(type="LoadImageFromFile"), dict(type="LoadAnnotations", with_bbox=True),
            dict(type="PackDetInputs")]


@pytest.fixture(scope="module")
def chunked_on_s3(s3_server):
    """The fixture's files uploaded to ``s3://lakedet/deeplake3-chunked`` as Deep Lake 3 wrote them."""
    url, objects = upload_folder(s3_server, FIXTURE, "deeplake3-chunked")
    return url, s3_server, objects


def build_loader(url, creds, keys, world_size=1, rank=0, batch_size=4, seed=5, workers=0):
    """A DataLoader as a run builds it; ``deeplake_prefetch=0`` so that an epoch reads nothing of
    the next one ahead (the requests counted are the epoch's own)."""
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner

    from lakedet.engine.hooks import prepare_dataloader

    init_default_scope("mmdet")
    dataset_cfg = dict(type="DeepLakeDetDataset", deeplake_path=url, deeplake_credentials=dict(creds=creds),
                       pipeline=PIPELINE, deeplake_prefetch=0, **keys)
    loader = Runner.build_dataloader(dict(batch_size=batch_size, num_workers=workers, persistent_workers=False,
                                          collate_fn=dict(type="pseudo_collate"),
                                          sampler=dict(type="DefaultSampler", shuffle=True, seed=seed,
                                                       world_size=world_size, rank=rank),
                                          dataset=dataset_cfg), seed=seed)
    prepare_dataloader(loader)
    return loader


def run_epoch(loader, number=0) -> list:
    loader.sampler.set_epoch(number)
    return [int(s.img_id) for batch in loader for s in batch["data_samples"]]


def chunk_gets(log, layout, whole: bool = True) -> collections.Counter:
    """GETs of each of the layout's chunk files in the proxy's log: whole-file reads (no range, or
    ``bytes=0-``), else ranged ones (a row read)."""
    found = collections.Counter()
    for method, path, ranged, _ in log:
        for name in layout.names:
            if method == "GET" and path.split("?")[0].endswith("/" + name):
                found[name] += (ranged in (None, "bytes=0-")) == whole
    return +found


@pytest.mark.remote
@pytest.mark.parametrize("name,keys", [("default", {}), ("view:half", {"deeplake_view_id": "half"})],
                         ids=["head", "view"])
def test_an_epoch_over_s3_reads_each_chunk_once_and_every_row_once(chunked_on_s3, proxy, name, keys):
    url, creds, objects = chunked_on_s3
    before = objects()
    loader = build_loader(url, dict(creds, endpoint_url=proxy.endpoint), keys)
    dataset = loader.dataset
    layout = dataset.reader.layout
    assert loader.sampler.order == "chunks"  # remote v3 with a known layout: the chunk-aware order
    log = proxy.record()
    order = run_epoch(loader)
    assert sorted(order) == list(range(len(dataset)))  # every row exactly once
    expected = EXPECTED["selections"][name]
    touched = sorted(set(layout.chunk_of(np.arange(len(dataset))).tolist()))
    gets = chunk_gets(log, layout)
    assert gets == {layout.names[c]: 1 for c in touched}, gets  # each chunk once, no other chunk
    assert not chunk_gets(log, layout, whole=False)  # and no row read
    assert dataset.reader.stats["row_reads"] == 0
    assert [dataset.get_data_info(i)["instances"][0]["bbox_label"] for i in range(len(dataset))] == expected["labels"]
    if name == "default":  # chunks of the uncommitted HEAD are never cached: their bytes can still change
        assert not all(layout.stable)
    assert objects() == before  # nothing written to the bucket


@pytest.mark.remote
def test_two_ddp_ranks_over_s3_read_disjoint_rows_and_each_chunk_about_once(chunked_on_s3, proxy):
    url, creds, _ = chunked_on_s3
    keys = {"deeplake_commit_id": COMMITS[2]}  # 48 rows: equal shards without padding
    via_proxy = dict(creds, endpoint_url=proxy.endpoint)
    loaders = [build_loader(url, via_proxy, keys, world_size=2, rank=rank) for rank in (0, 1)]
    layout = loaders[0].dataset.reader.layout
    log = proxy.record()
    orders = [run_epoch(loader) for loader in loaders]
    assert len(orders[0]) == len(orders[1]) == 24
    assert sorted(orders[0] + orders[1]) == list(range(48))  # disjoint, together every row once
    whole, ranged = chunk_gets(log, layout), chunk_gets(log, layout, whole=False)
    # the ranks' contiguous parts share at most one chunk: one rank reads it whole, the other its
    # minority of rows one by one; every other chunk is read whole once, by one rank
    assert set(whole) == set(layout.names) and max(whole.values()) == 1, whole
    rows_read = sum(loader.dataset.reader.stats["row_reads"] for loader in loaders)
    assert len(ranged) <= 1 and sum(ranged.values()) == rows_read <= 3, (ranged, rows_read)


@pytest.mark.remote
def test_workers_over_s3_start_with_forkserver_and_the_cache_serves_v3_chunks_later(chunked_on_s3, proxy, tmp_path):
    url, creds, _ = chunked_on_s3
    via_proxy = dict(creds, endpoint_url=proxy.endpoint)
    keys = {"deeplake_view_id": "half", "deeplake_cache": str(tmp_path / "cache")}
    first = build_loader(url, via_proxy, keys, workers=2)
    assert first.multiprocessing_context.get_start_method() == "forkserver"
    layout = first.dataset.reader.layout
    log = proxy.record()
    order = run_epoch(first)
    assert sorted(order) == list(range(24)) and order == list(first.sampler)
    touched = {layout.names[c] for c in set(layout.chunk_of(np.arange(24)).tolist())}
    whole = chunk_gets(log, layout)
    assert set(whole) == touched and max(whole.values()) == 1, whole  # workers split the chunks
    del log[:]
    second = build_loader(url, via_proxy, keys, workers=2)  # a later run: the chunks come from the cache
    assert sorted(run_epoch(second)) == list(range(24))
    assert not chunk_gets(log, layout) and not chunk_gets(log, layout, whole=False)
