"""Streaming from S3 (a real moto server, reached through the latency proxy that counts requests):
the chunk-aware order reads each storage chunk with one request, DataLoader workers start with
forkserver and read whole chunks, the local cache serves later reads, samples equal local ones."""

import cv2
import numpy as np
import pytest


pytestmark = [pytest.mark.remote, pytest.mark.timeout(300)]

ROWS = 200  # noise JPEGs of ~120 kB: about 3 storage chunks of ~8 MB
IMAGE_BYTES = 0  # the images' stored bytes (set by the fixture)
PIPELINE = [dict(type="LoadImageFromFile"), dict(type="LoadAnnotations", with_bbox=True),
            dict(type="RandomFlip", prob=0.5), dict(type="PackDetInputs")]


def write_noise_dataset(url: str, creds=None, rows: int = ROWS) -> None:
    import deeplake

    rng = np.random.default_rng(0)
    ds = deeplake.create(url, creds=creds) if creds else deeplake.create(url)
    ds.add_column("images", deeplake.types.Image(dtype="uint8", sample_compression="jpeg"))
    ds.add_column("boxes", deeplake.types.BoundingBox(dtype="float32", format="ltwh", bbox_type="pixel"))
    ds.add_column("labels", deeplake.types.ClassLabel(deeplake.types.Array("uint32", dimensions=1)))
    ds["boxes"].metadata["coords"] = {"mode": "LTWH", "type": "pixel"}
    ds["labels"].metadata["class_names"] = ["a", "b"]
    for start in range(0, rows, 30):
        count = min(30, rows - start)
        images = [cv2.imencode(".jpg", rng.integers(0, 256, (240, 320, 3), dtype=np.uint8),
                               [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes() for _ in range(count)]
        ds.append({"images": images, "boxes": [np.array([[10, 10, 40, 30]], np.float32)] * count,
                   "labels": [np.array([i % 2], np.uint32) for i in range(count)]})
    ds.commit("noise")


@pytest.fixture(scope="module")
def noise_on_s3(s3_server, tmp_path_factory):
    """``(url, creds, local_path)``: the same noise dataset on S3 and on disk."""
    import deeplake

    local = str(tmp_path_factory.mktemp("noise") / "ds")
    write_noise_dataset(local)
    global IMAGE_BYTES
    written = deeplake.open_read_only(local)
    IMAGE_BYTES = sum(map(len, written["images"].get_bytes(slice(0, ROWS))))
    url = "s3://lakedet/noise"
    deeplake.copy(local, url, dst_creds=s3_server)
    return url, s3_server, local


def build_loader(path, creds=None, workers=0, order="auto", cache=None, seed=3, batch_size=6):
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner

    from lakedet.engine.hooks import prepare_dataloader

    init_default_scope("mmdet")
    dataset = dict(type="DeepLakeDetDataset", deeplake_path=path, pipeline=PIPELINE)
    if creds:
        dataset["deeplake_credentials"] = dict(creds=creds)
    if cache:
        dataset["deeplake_cache"] = cache
    cfg = Config(dict(train_dataloader=dict(
        batch_size=batch_size, num_workers=workers, persistent_workers=workers > 0, collate_fn=dict(type="pseudo_collate"),
        sampler=dict(type="DefaultSampler", shuffle=True, seed=seed, order=order), dataset=dataset)))
    loader = Runner.build_dataloader(cfg.train_dataloader.to_dict(), seed=seed)
    prepare_dataloader(loader)  # what every run over Deep Lake data does first (DeepLakeRunHook)
    return loader


def epoch(loader, number):
    """``{img_id: (pixels, flipped)}`` of one epoch, and the order of the ids."""
    loader.sampler.set_epoch(number)
    samples, order = {}, []
    for batch in loader:
        for inputs, sample in zip(batch["inputs"], batch["data_samples"]):
            samples[sample.img_id] = (inputs.clone(), bool(sample.flip))
            order.append(sample.img_id)
    return samples, order


def test_chunk_order_over_s3_fetches_each_chunk_once_per_epoch_and_delivers_the_local_samples(noise_on_s3, proxy):
    url, creds, local = noise_on_s3
    loader = build_loader(url, dict(creds, endpoint_url=proxy.endpoint))
    dataset = loader.dataset
    assert loader.sampler.order == "chunks"  # remote data with a known layout: the chunk-aware order
    chunks = len(dataset.reader.layout)
    assert chunks >= 3
    local_samples, local_order = epoch(build_loader(local, order="permutation"), 0)
    for number in (0, 1):
        before = proxy.stats["gets"]
        samples, order = epoch(loader, number)
        gets = proxy.stats["gets"] - before
        assert sorted(order) == list(range(ROWS))  # every row once
        assert order == list(loader.sampler)  # in the sampler's order
        assert gets <= chunks + 2, gets  # one request per chunk (not one per row: 270)
        for row, (pixels, flipped) in samples.items():  # the same image, flipped as seeded per sample
            expected, local_flip = local_samples[row]
            assert torch_equal(pixels, expected if flipped == local_flip else expected.flip(-1)), row
    assert dataset.reader.stats["row_reads"] == 0
    assert order != local_order  # another order than the full permutation


def torch_equal(a, b) -> bool:
    import torch

    return bool(torch.equal(a, b))


def test_workers_over_s3_start_with_forkserver_and_read_whole_chunks(noise_on_s3, proxy):
    url, creds, _ = noise_on_s3
    loader = build_loader(url, dict(creds, endpoint_url=proxy.endpoint), workers=2)
    assert loader.multiprocessing_context.get_start_method() == "forkserver"
    chunks = len(loader.dataset.reader.layout)
    before = dict(proxy.stats)
    _, order = epoch(loader, 0)
    after = proxy.stats
    assert sorted(order) == list(range(ROWS)) and order == list(loader.sampler)
    # each worker reopens the dataset (a few metadata GETs) and reads its own chunks; the one chunk
    # two workers share is read whole by one and row by row (its minority) by the other
    image_gets = after["gets"] - before["gets"]
    assert image_gets < chunks + 2 * 12 + ROWS // chunks // 2 + 2, image_gets
    assert after["bytes_down"] - before["bytes_down"] < 1.6 * IMAGE_BYTES


def test_local_cache_serves_the_chunks_to_a_later_reader(noise_on_s3, proxy, tmp_path):
    from lakedet.data.cache import BlockCache

    url, creds, _ = noise_on_s3
    via_proxy = dict(creds, endpoint_url=proxy.endpoint)
    cache = str(tmp_path / "cache")
    first = build_loader(url, via_proxy, cache=cache)
    samples, _ = epoch(first, 0)
    first.dataset.reader.flush()  # the cache is written in the background
    chunks = len(first.dataset.reader.layout)
    assert first.dataset.reader.stats == dict(chunk_reads=chunks, cache_hits=0, row_reads=0)
    assert BlockCache(cache, 10**9).size() >= IMAGE_BYTES
    before = proxy.stats["gets"]
    second = build_loader(url, via_proxy, cache=cache)  # another reader (a later run, another worker)
    again, _ = epoch(second, 0)
    assert second.dataset.reader.stats == dict(chunk_reads=0, cache_hits=chunks, row_reads=0)
    assert proxy.stats["gets"] - before <= 12  # opening the dataset only; no image from the network
    assert all(torch_equal(again[row][0], samples[row][0]) for row in samples)  # same seed: same samples
