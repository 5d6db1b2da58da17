"""``benchmarks/peers.py``: its litdata adapter delivers the samples lakedet delivers for the same rows."""

from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import benchmark_module

pytestmark = pytest.mark.timeout(300)

peers = benchmark_module("peers")


@pytest.fixture(scope="module")
def both_copies(tmp_path_factory):
    """12 samples written as a local Deep Lake dataset and as litdata chunks (3 chunks)."""
    root = tmp_path_factory.mktemp("peers")
    samples = peers.make_samples(12, seed=5)
    peers.write_deeplake(str(root / "deeplake"), samples)
    chunk = sum(len(s["image"]) for s in samples) // 3
    peers.write_litdata(str(root / "litdata"), samples, chunk)
    return str(root / "deeplake"), str(root / "litdata"), samples, root


def test_the_litdata_adapter_delivers_lakedet_samples_for_the_same_rows(both_copies):
    from mmengine.registry import init_default_scope

    from lakedet.data.dataset import DeepLakeDetDataset

    lake, lit, samples, root = both_copies
    assert len(list(Path(lit).glob("chunk-*.bin"))) >= 2  # the adapter reads across chunks
    init_default_scope("mmdet")
    ours = DeepLakeDetDataset(deeplake_path=lake, pipeline=peers.bench.PIPELINES["minimal"])
    theirs = list(peers.litdata_dataset(lit, str(root / "cache"), shuffle=False))
    assert len(theirs) == len(ours) == len(samples)
    for row, (sample, mine) in enumerate(zip(theirs, (ours[i] for i in range(len(ours))))):
        assert sample["data_samples"].img_id == mine["data_samples"].img_id == row
        assert sample["inputs"].shape == (3, peers.HEIGHT, peers.WIDTH)
        assert torch.equal(sample["inputs"], mine["inputs"]), f"row {row}: decoded pixels differ"
        a, b = sample["data_samples"].gt_instances, mine["data_samples"].gt_instances
        assert torch.equal(a.labels, b.labels), f"row {row}: labels differ"
        assert torch.equal(a.bboxes.tensor, b.bboxes.tensor), f"row {row}: boxes differ"
        # and both are the written sample: LTWH -> x1y1x2y2, labels as written
        ltwh = samples[row]["boxes"]
        expected = np.concatenate([ltwh[:, :2], ltwh[:, :2] + ltwh[:, 2:]], axis=1)
        np.testing.assert_array_equal(a.bboxes.tensor.numpy(), expected)
        np.testing.assert_array_equal(a.labels.numpy(), samples[row]["labels"])
