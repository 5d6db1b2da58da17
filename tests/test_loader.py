"""The two loaders (``c++`` and ``python``): identical samples, seeded shuffle, lazy start, hand-over."""

import io

import cv2
import numpy as np
import pytest
import torch
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

from lakedet import DeepLakeDetDataset
from lakedet.errors import DataError
from lakedet.data.handover import share_batch
from lakedet.source.deadline import read_timeout
from lakedet.tools.synthetic import make_shapes_dataset
from lakedet.data.decode import decode_image

pytestmark = pytest.mark.timeout(180)

RANDOM_PIPELINE = [
    dict(type="LoadImageFromFile"),
    dict(type="LoadAnnotations", with_bbox=True),
    dict(type="RandomResize", scale=(48, 48), ratio_range=(0.5, 1.5), keep_ratio=True),
    dict(type="RandomFlip", prob=0.5),
    dict(type="PhotoMetricDistortion"),
    dict(type="PackDetInputs"),
]
PLAIN_PIPELINE = [dict(type="LoadImageFromFile"), dict(type="LoadAnnotations", with_bbox=True),
                  dict(type="PackDetInputs")]


def loader(path, kind, workers, pipeline, seed=7, batch_size=4, shuffle=True, tensors=None):
    init_default_scope("mmdet")
    return Runner.build_dataloader(dict(
        batch_size=batch_size, num_workers=workers, persistent_workers=False,
        sampler=dict(type="DefaultSampler", shuffle=shuffle, seed=seed),
        collate_fn=dict(type="pseudo_collate"),
        dataset=dict(type="DeepLakeDetDataset", deeplake_path=path, deeplake_dataloader_type=kind,
                     pipeline=pipeline, deeplake_tensors=tensors)), seed=seed)


def epochs(dl, count=2):
    """Per epoch: a list of (img_id, pixels, boxes, labels) in the order delivered."""
    out = []
    for epoch in range(count):
        dl.sampler.set_epoch(epoch)
        samples = []
        for batch in dl:
            for inputs, sample in zip(batch["inputs"], batch["data_samples"]):
                samples.append((sample.img_id, inputs.clone(), sample.gt_instances.bboxes.tensor.clone(),
                                sample.gt_instances.labels.clone()))
        out.append(samples)
    return out


def assert_same(a, b):
    assert [s[0] for s in a] == [s[0] for s in b]
    for x, y in zip(a, b):
        assert torch.equal(x[1], y[1]) and torch.equal(x[2], y[2]) and torch.equal(x[3], y[3])


def test_python_and_cpp_loaders_deliver_identical_samples_for_the_same_seed(shapes):
    path, rows = shapes
    cpp = epochs(loader(path, "c++", 2, RANDOM_PIPELINE))
    python = epochs(loader(path, "python", 2, RANDOM_PIPELINE))
    for a, b in zip(cpp, python):
        assert_same(a, b)  # same rows, same order, same boxes and labels, same (augmented) pixels
    assert sorted(s[0] for s in cpp[0]) == list(range(len(rows)))  # every row once per epoch
    assert [s[0] for s in cpp[0]] != [s[0] for s in cpp[1]]  # reshuffled each epoch


def test_worker_hand_over_delivers_what_the_main_process_would_build(shapes):
    path, _ = shapes
    for batch in loader(path, "c++", 2, PLAIN_PIPELINE):  # one shared buffer per batch crossed over
        tensors = batch["inputs"] + [s.gt_instances.bboxes.tensor for s in batch["data_samples"]
                                     if len(s.gt_instances)]
        assert len({t.untyped_storage().data_ptr() for t in tensors}) == 1
    in_workers = epochs(loader(path, "c++", 2, PLAIN_PIPELINE), 1)[0]
    in_main = epochs(loader(path, "python", 0, PLAIN_PIPELINE), 1)[0]
    assert_same(in_workers, in_main)


def test_shuffle_is_seeded_and_reproducible(shapes):
    path, rows = shapes

    def order(seed, epoch):
        dl = loader(path, "c++", 0, PLAIN_PIPELINE[:1] + [dict(type="PackDetInputs")], seed=seed)
        dl.sampler.set_epoch(epoch)
        return [s.img_id for batch in dl for s in batch["data_samples"]]

    first = order(3, 0)
    assert first == order(3, 0) and sorted(first) == list(range(len(rows)))
    assert first != order(4, 0) and first != order(3, 1)


class CountingReader:
    """Wraps the dataset's ImageReader and counts the rows whose image is requested."""

    def __init__(self, reader):
        self.reader, self.rows = reader, []

    def start(self, rows):
        rows = list(rows)
        self.rows += rows
        return self.reader.start(rows)

    def read(self, row):
        self.rows.append(row)
        return self.reader.read(row)

    def __getattr__(self, name):
        return getattr(self.reader, name)


def test_start_up_reads_annotations_column_wise_and_only_the_first_batch_images(tmp_path):
    path = str(tmp_path / "ds")
    make_shapes_dataset(path, 300, size=32, seed=1, min_side=6, max_side=12)
    dl = loader(path, "c++", 0, PLAIN_PIPELINE, batch_size=4)
    counting = CountingReader(dl.dataset.reader)
    dl.dataset.reader = counting
    first = next(iter(dl))
    assert len(first["inputs"]) == 4
    assert sorted(counting.rows) == sorted(s.img_id for s in first["data_samples"])


def test_share_batch_puts_every_tensor_of_a_batch_in_one_shared_buffer(shapes):
    ds = DeepLakeDetDataset(deeplake_path=shapes[0], pipeline=PLAIN_PIPELINE)
    samples = [ds[i] for i in range(3)]
    before = [(s["inputs"].clone(), s["data_samples"].gt_instances.bboxes.tensor.clone(),
               s["data_samples"].gt_instances.labels.clone()) for s in samples]
    share_batch(samples)
    tensors = []
    for s, (inputs, boxes, labels) in zip(samples, before):
        instances = s["data_samples"].gt_instances
        assert torch.equal(s["inputs"], inputs) and torch.equal(instances.bboxes.tensor, boxes)
        assert torch.equal(instances.labels, labels) and instances.labels.dtype == labels.dtype
        tensors += [s["inputs"], instances.bboxes.tensor, instances.labels]
    assert all(t.is_shared() for t in tensors)
    assert len({t.untyped_storage().data_ptr() for t in tensors}) == 1


def test_jpeg_decoding_matches_opencv_and_applies_exif_orientation():
    from PIL import Image

    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (30, 50, 3), dtype=np.uint8)
    plain = cv2.imencode(".jpg", img)[1].tobytes()
    np.testing.assert_array_equal(decode_image(plain, True), cv2.imdecode(np.frombuffer(plain, np.uint8),
                                                                           cv2.IMREAD_COLOR))
    pil = Image.fromarray(img[:, :, ::-1])
    exif = pil.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    buffer = io.BytesIO()
    pil.save(buffer, "JPEG", exif=exif.tobytes())
    rotated = decode_image(buffer.getvalue(), True)
    assert rotated.shape == (50, 30, 3)
    np.testing.assert_array_equal(rotated, cv2.imdecode(np.frombuffer(buffer.getvalue(), np.uint8),
                                                        cv2.IMREAD_COLOR))


def test_read_timeout_setting_is_checked(monkeypatch):
    monkeypatch.setenv("LAKEDET_READ_TIMEOUT", "soon")
    with pytest.raises(DataError, match="LAKEDET_READ_TIMEOUT='soon'"):
        read_timeout()
    monkeypatch.setenv("LAKEDET_READ_TIMEOUT", "2.5")
    assert read_timeout() == 2.5


def test_reads_are_bounded_wherever_storage_can_stall(shapes):
    import deeplake

    from lakedet.data.reader import ImageReader

    from lakedet import DeepLakeDetDataset

    ds = deeplake.open_read_only(shapes[0])
    # a local folder: one batched read; cloud storage and objects the caller opened: futures with a deadline
    assert not DeepLakeDetDataset(deeplake_path=shapes[0]).is_remote
    assert not DeepLakeDetDataset(deeplake_path=f"file://{shapes[0]}").is_remote
    assert DeepLakeDetDataset(deeplake_dataset=ds).is_remote
    local = ImageReader(ds, "images", True, shapes[0], remote=False)
    bounded = ImageReader(ds, "images", True, "s3://x", remote=True)
    rows = [5, 2, 9]
    expected = [ds["images"].get_bytes(r) for r in rows]
    assert [local.start(rows)[r].result() for r in rows] == expected == [bounded.start(rows)[r].result() for r in rows]
    with pytest.raises(DataError, match=r"row 999, column 'images'"):
        local.read(999)


@pytest.mark.parametrize("stored", ["array", "bytes"])
def test_uncompressed_and_plain_bytes_image_columns_through_workers(stored, tmp_path):
    """Images stored as raw arrays (per-row futures) or as a plain Bytes column of encoded images."""
    import deeplake
    from deeplake import types

    from lakedet.tools.synthetic import encode_jpeg, render_rows

    rows = render_rows(6, size=32, seed=2, min_side=6, max_side=14)
    path = str(tmp_path / stored)
    ds = deeplake.create(path)
    ds.add_column("images", types.Array("uint8", dimensions=3) if stored == "array" else types.Bytes())
    ds.add_column("boxes", types.BoundingBox(dtype="float32", format="ltwh", bbox_type="pixel"))
    ds.add_column("labels", types.ClassLabel(types.Array("uint32", dimensions=1)))
    ds["boxes"].metadata["coords"] = {"mode": "LTWH", "type": "pixel"}
    ds.append({"images": [r.image if stored == "array" else encode_jpeg(r.image) for r in rows],
               "boxes": [r.boxes for r in rows], "labels": [r.labels for r in rows]})
    ds.commit()
    tensors = dict(img="images")
    in_workers = epochs(loader(path, "c++", 2, PLAIN_PIPELINE, batch_size=2, tensors=tensors), 1)[0]
    in_main = epochs(loader(path, "python", 0, PLAIN_PIPELINE, batch_size=2, tensors=tensors), 1)[0]
    assert_same(in_workers, in_main)
    if stored == "array":  # stored RGB, delivered BGR, exactly
        by_row = {s[0]: s[1] for s in in_workers}
        for i, r in enumerate(rows):
            assert torch.equal(by_row[i], torch.from_numpy(r.image[:, :, ::-1].copy()).permute(2, 0, 1))


def test_wrapped_deeplake_datasets_still_get_whole_batches(shapes, shapes_val):
    """Repeat/Concat/ClassBalanced wrappers around Deep Lake splits pass whole batches on (MMDetection's
    names build lakedet's batched wrappers)."""
    from mmengine.config import Config

    from lakedet.data.wrappers import BatchedClassBalancedDataset, BatchedConcatDataset, BatchedRepeatDataset

    inner = lambda path: dict(type="DeepLakeDetDataset", deeplake_path=path, pipeline=PLAIN_PIPELINE)  # noqa: E731
    cfg = Config(dict(train_dataloader=dict(
        batch_size=4, num_workers=2, persistent_workers=False, collate_fn=dict(type="pseudo_collate"),
        sampler=dict(type="DefaultSampler", shuffle=True, seed=3),
        dataset=dict(type="ConcatDataset", datasets=[
            dict(type="RepeatDataset", times=2, dataset=inner(shapes[0])),
            dict(type="ClassBalancedDataset", oversample_thr=0.5, dataset=inner(shapes_val[0]))]))))
    init_default_scope("mmdet")
    dl = Runner.build_dataloader(cfg.train_dataloader, seed=3)
    assert isinstance(dl.dataset, BatchedConcatDataset)
    assert [type(d) for d in dl.dataset.datasets] == [BatchedRepeatDataset, BatchedClassBalancedDataset]
    seen = []
    for batch in dl:  # each batch crossed from its worker in one shared buffer: Deep Lake's c++ path
        assert len({t.untyped_storage().data_ptr() for t in batch["inputs"]}) <= 2  # one per wrapped dataset
        seen += [s.img_path for s in batch["data_samples"]]
    assert len(seen) == len(dl.dataset) and seen.count(f"{shapes[0]}[0]") == 2  # repeated twice
    plain = [dl.dataset[i]["data_samples"].img_path for i in dl.sampler]
    assert sorted(seen) == sorted(plain)
