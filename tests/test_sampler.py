"""The row assignment of distributed ranks (``lakedet.data.sampler``), tested over a grid without processes."""

from itertools import chain, zip_longest

import numpy as np
import pytest

from lakedet.data.sampler import ShardedRowSampler, shard_rows, shard_size
from lakedet.errors import ConfigError

pytestmark = pytest.mark.timeout(60)

EPOCHS = (0, 1, 5)
SEEDS = (0, 1, 2**31 - 1)


def shards(num_rows, world_size, epoch, seed, **kwargs):
    return [shard_rows(num_rows, world_size, rank, epoch, seed, **kwargs) for rank in range(world_size)]


def gathered(parts, size):
    """What mmengine's ``collect_results_cpu`` makes of per-rank results: interleave, cut at ``size``."""
    return [x for x in chain.from_iterable(zip_longest(*[list(p) for p in parts])) if x is not None][:size]


@pytest.mark.parametrize("world_size", [1, 2, 3, 4, 8])
@pytest.mark.parametrize("num_rows", [0, 1, 2, 3, 5, 7, 8, 16, 31])
def test_shards_are_disjoint_complete_and_equal(num_rows, world_size):
    pad = (-num_rows) % world_size if num_rows else 0
    for epoch in EPOCHS:
        for seed in SEEDS:
            parts = shards(num_rows, world_size, epoch, seed)
            everything = np.concatenate(parts)
            assert {len(p) for p in parts} == {-(-num_rows // world_size)}  # equal: same number of batches
            assert all(len(set(p.tolist())) == len(p) for p in parts)  # no rank reads a row twice
            assert set(everything.tolist()) == set(range(num_rows))  # complete
            assert len(everything) == num_rows + pad and pad < world_size  # padding bounded
            values, counts = np.unique(everything, return_counts=True)
            assert (counts - 1).sum() == pad  # disjoint but for the padded extra reads
            if pad <= num_rows:
                assert counts.max(initial=1) <= 2 and (counts == 2).sum() == pad
            assert sorted(gathered(parts, num_rows)) == list(range(num_rows))  # gathering drops the padding


@pytest.mark.parametrize("world_size", [1, 2, 3, 8])
@pytest.mark.parametrize("num_rows", [1, 5, 8, 31])
def test_without_padding_shards_partition_the_rows(num_rows, world_size):
    parts = shards(num_rows, world_size, 2, 7, pad=False)
    assert sorted(np.concatenate(parts).tolist()) == list(range(num_rows))  # each row exactly once
    assert max(map(len, parts)) - min(map(len, parts)) <= 1
    assert [len(p) for p in parts] == [shard_size(num_rows, world_size, False, r) for r in range(world_size)]


def test_padding_repeats_the_first_rows_of_the_permutation():
    parts = shards(7, 3, epoch=1, seed=4)
    permutation = gathered(parts, 9)  # 7 rows + 2 padded
    assert permutation[7:] == permutation[:2]
    parts = shards(2, 4, epoch=0, seed=0)  # fewer rows than ranks: the permutation repeats
    assert [len(p) for p in parts] == [1, 1, 1, 1] and sorted(np.concatenate(parts).tolist()) == [0, 0, 1, 1]


def test_without_shuffle_rows_stay_in_order():
    assert [p.tolist() for p in shards(7, 2, 3, 9, shuffle=False)] == [[0, 2, 4, 6], [1, 3, 5, 0]]


@pytest.mark.parametrize("num_rows,world_size", [(8, 2), (31, 4), (100, 3)])
def test_assignment_changes_per_epoch_and_seed_and_is_reproducible(num_rows, world_size):
    for seed in SEEDS:
        by_epoch = [[p.tolist() for p in shards(num_rows, world_size, e, seed)] for e in range(4)]
        assert all(by_epoch[a] != by_epoch[b] for a in range(4) for b in range(a))  # a new order every epoch
        assert by_epoch[0] == [p.tolist() for p in shards(num_rows, world_size, 0, seed)]  # pure
        assert set(by_epoch[0][0]) != set(by_epoch[1][0])  # rank 0 reads other rows, not just another order
    assert shard_rows(num_rows, world_size, 0, 1, 0).tolist() != shard_rows(num_rows, world_size, 0, 1, 1).tolist()
    # seed and epoch are not summed (DefaultSampler's seed + epoch makes (0, 1) and (1, 0) equal)
    assert shard_rows(num_rows, world_size, 0, 1, 0).tolist() != shard_rows(num_rows, world_size, 0, 0, 1).tolist()


@pytest.mark.parametrize("kwargs,message", [
    (dict(rank=2), r"rank=2: must be in \[0, world_size=2\)"),
    (dict(rank=-1), r"rank=-1: must be in \[0, world_size=2\)"),
    (dict(world_size=0, rank=0), r"world_size=0: must be >= 1"),
    (dict(num_rows=-3), r"num_rows=-3: must be >= 0"),
    (dict(epoch=-1), r"epoch=-1: must be >= 0"),
    (dict(seed=-5), r"seed=-5: must be >= 0"),
    (dict(num_rows=4.0), r"num_rows=4.0: expected an int"),
    (dict(rank=True), r"rank=True: expected an int"),
])
def test_bad_arguments_are_named(kwargs, message):
    args = dict(num_rows=10, world_size=2, rank=0, epoch=0, seed=0) | kwargs
    with pytest.raises(ValueError, match=message):
        shard_rows(**args)


def test_sampler_yields_its_ranks_shard_and_follows_set_epoch():
    dataset = list(range(11))
    samplers = [ShardedRowSampler(dataset, shuffle=True, seed=3, world_size=2, rank=r) for r in range(2)]
    assert [len(s) for s in samplers] == [6, 6]
    assert [list(s) for s in samplers] == [shard_rows(11, 2, r, 0, 3).tolist() for r in range(2)]
    first = list(samplers[0])
    for sampler in samplers:
        sampler.set_epoch(1)
    assert list(samplers[0]) == shard_rows(11, 2, 0, 1, 3).tolist() != first
    unpadded = ShardedRowSampler(dataset, seed=3, round_up=False, world_size=2, rank=1)
    assert len(unpadded) == len(list(unpadded)) == 5
    with pytest.raises(ValueError, match=r"rank=2: must be in \[0, world_size=2\)"):
        ShardedRowSampler(dataset, world_size=2, rank=2)


def test_sampler_is_registered_and_reads_the_process_world():
    from mmdet.registry import DATA_SAMPLERS as MMDET_SAMPLERS
    from mmengine.registry import DATA_SAMPLERS, DefaultScope

    with DefaultScope.overwrite_default_scope("mmdet"):  # how the runner builds it
        sampler = MMDET_SAMPLERS.build(dict(type="ShardedRowSampler", shuffle=False), default_args=dict(dataset=[0] * 5))
    assert isinstance(sampler, ShardedRowSampler) and (sampler.rank, sampler.world_size) == (0, 1)
    assert list(sampler) == [0, 1, 2, 3, 4]
    seeded = DATA_SAMPLERS.build(dict(type="ShardedRowSampler", dataset=[0] * 5))  # seed=None: a drawn seed
    assert isinstance(seeded.seed, int) and sorted(seeded) == [0, 1, 2, 3, 4]


class _Rows:
    def __len__(self):
        return 13

    def __getitem__(self, index):
        import torch.utils.data

        return index, torch.utils.data.get_worker_info().id


def test_dataloader_workers_of_a_rank_never_read_a_row_twice():
    from torch.utils.data import DataLoader

    for rank in range(2):
        sampler = ShardedRowSampler(_Rows(), seed=5, world_size=2, rank=rank)
        sampler.set_epoch(2)
        loader = DataLoader(_Rows(), batch_size=2, sampler=sampler, num_workers=2, collate_fn=list)
        read = [item for batch in loader for item in batch]
        rows = [row for row, _ in read]
        assert rows == list(sampler)  # in the sampler's order, each once
        assert {worker for _, worker in read} == {0, 1}  # both workers took part
        by_worker = [{row for row, w in read if w == worker} for worker in (0, 1)]
        assert not by_worker[0] & by_worker[1]


def test_mmdetections_sampler_names_build_sharded_row_samplers_over_deeplake_datasets_only(shapes, shapes_val):
    """In MMDetection's scope, DefaultSampler / InfiniteSampler are lakedet's stand-ins: a
    ShardedRowSampler (same options) over Deep Lake datasets, even wrapped; mmengine's own otherwise."""
    from mmengine.dataset import DefaultSampler as MMEngineDefaultSampler
    from mmengine.dataset import InfiniteSampler as MMEngineInfiniteSampler
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner

    from lakedet.data.sampler import DefaultSampler, InfiniteSampler
    from lakedet.engine.hooks import prepare_dataloader

    init_default_scope("mmdet")
    deeplake = dict(type="DeepLakeDetDataset", deeplake_path=shapes[0])
    train = Runner.build_dataloader(dict(batch_size=3, num_workers=2, sampler=dict(type="DefaultSampler", shuffle=True,
                                                                                   seed=3), dataset=deeplake), seed=0)
    assert isinstance(train.sampler, ShardedRowSampler) and (train.sampler.seed, train.sampler.shuffle) == (3, True)
    # the batching goes along (what every run does first): the chunk-aware order gives each worker whole chunks
    prepare_dataloader(train)
    assert (train.sampler.plan.batch_size, train.sampler.plan.num_workers) == (3, 2)
    wrapped = Runner.build_dataloader(dict(batch_size=1, sampler=dict(type="DefaultSampler", shuffle=False), dataset=dict(
        type="ConcatDataset", datasets=[deeplake, dict(deeplake, deeplake_path=shapes_val[0])])), seed=0)
    assert isinstance(wrapped.sampler, ShardedRowSampler) and len(wrapped.sampler) == 32
    infinite = Runner.build_dataloader(dict(batch_size=2, sampler=dict(type="InfiniteSampler", shuffle=True),
                                            dataset=deeplake), seed=5)
    assert isinstance(infinite.sampler, ShardedRowSampler) and infinite.sampler.seed == 5  # epochs, restarted by mmengine
    plain = list(range(10))  # any other dataset: mmengine's own samplers, unchanged
    assert type(DefaultSampler(plain, shuffle=False, seed=1)) is DefaultSampler
    assert isinstance(DefaultSampler(plain, seed=1), MMEngineDefaultSampler) and list(DefaultSampler(plain, shuffle=False,
                                                                                                     seed=1)) == plain
    assert isinstance(InfiniteSampler(plain, seed=1), MMEngineInfiniteSampler)
    with pytest.raises(ConfigError, match=r"DefaultSampler: \['order'\] apply to Deep Lake datasets only"):
        DefaultSampler(plain, seed=1, order="chunks")


# --- the chunk-aware order --------------------------------------------------------------------

from lakedet.data.sampler import ReadPlan, chunk_shard_rows, worker_parts  # noqa: E402


def block_layout(sizes):
    """Block id per sample position for blocks of the given sizes, in storage order."""
    return np.repeat(np.arange(len(sizes)), sizes)


LAYOUTS = {"equal": [8] * 6, "ragged": [5, 9, 3, 8, 1, 7, 6], "one": [13], "many-small": [2] * 11}


def dataloader_order(rows, batch_size, num_workers):
    """Which worker PyTorch gives each position of ``rows`` (batch k -> worker k % num_workers)."""
    return [(k // batch_size) % max(1, num_workers) for k in range(len(rows))]


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("world_size", [1, 2, 3])
@pytest.mark.parametrize("num_workers,batch_size", [(0, 1), (2, 4), (3, 2)])
def test_chunk_order_is_exactly_once_disjoint_equal_and_padded_like_mmdetection(layout, world_size, num_workers,
                                                                                 batch_size):
    blocks = block_layout(LAYOUTS[layout])
    num_rows = len(blocks)
    for epoch in (0, 3):
        parts = [chunk_shard_rows(blocks, world_size, r, epoch, 11, window=2, batch_size=batch_size,
                                  num_workers=num_workers) for r in range(world_size)]
        assert {len(p) for p in parts} == {-(-num_rows // world_size)}  # equal: same number of batches
        assert all(len(set(p.tolist())) == len(p) for p in parts)  # never a row twice on one rank
        everything = np.concatenate(parts)
        assert set(everything.tolist()) == set(range(num_rows))  # every row, each epoch
        assert len(everything) - num_rows == (-num_rows) % world_size  # padding < world_size, as DefaultSampler
        unpadded = [chunk_shard_rows(blocks, world_size, r, epoch, 11, 2, pad=False, batch_size=batch_size,
                                     num_workers=num_workers) for r in range(world_size)]
        assert sorted(np.concatenate(unpadded).tolist()) == list(range(num_rows))


def test_chunk_order_reads_whole_blocks_in_windows_and_is_reproducible():
    blocks = block_layout(LAYOUTS["ragged"])
    order = chunk_shard_rows(blocks, 1, 0, epoch=2, seed=5, window=2)
    assert order.tolist() == chunk_shard_rows(blocks, 1, 0, epoch=2, seed=5, window=2).tolist()  # same seed, same order
    assert order.tolist() != chunk_shard_rows(blocks, 1, 0, epoch=3, seed=5, window=2).tolist()  # new every epoch
    assert order.tolist() != chunk_shard_rows(blocks, 1, 0, epoch=2, seed=6, window=2).tolist()
    # walk the windows: each one is all the rows of 2 whole blocks (the last one of 1), shuffled together
    seen, position, windows = set(), 0, 0
    while position < len(order):
        ids = []  # blocks of this window, in the order their rows first appear
        for row in order[position:].tolist():
            if int(blocks[row]) not in ids and len(ids) == 2:
                break
            ids.append(int(blocks[row])) if int(blocks[row]) not in ids else None
        size = sum(LAYOUTS["ragged"][i] for i in ids)
        assert sorted(order[position:position + size].tolist()) == np.flatnonzero(np.isin(blocks, ids)).tolist()
        assert not seen & set(ids)
        seen |= set(ids)
        position += size
        windows += 1
    assert seen == set(range(len(LAYOUTS["ragged"]))) and windows == 4
    # mixing within a window: not each block's rows in storage order
    assert order.tolist() != sorted(order.tolist()) and any(np.diff(order) < 0)


@pytest.mark.parametrize("world_size", [1, 2])
@pytest.mark.parametrize("num_workers,batch_size", [(2, 4), (3, 3)])
def test_each_dataloader_worker_reads_whole_blocks_sharing_at_most_one_with_a_neighbour(world_size, num_workers,
                                                                                        batch_size):
    blocks = block_layout([20] * 6 + [7])
    parts = [chunk_shard_rows(blocks, world_size, r, epoch=1, seed=3, window=2, batch_size=batch_size,
                              num_workers=num_workers) for r in range(world_size)]
    touched = []  # per rank and worker: the blocks its rows come from
    for part in parts:
        workers = dataloader_order(part, batch_size, num_workers)
        for worker in range(num_workers):
            touched.append(set(blocks[[row for row, w in zip(part.tolist(), workers) if w == worker]].tolist()))
    streams = world_size * num_workers
    # every block is read by one stream, except one block at each of the streams - 1 cuts
    # (and the padded rows, which repeat the first block)
    assert sum(map(len, touched)) <= len(set(blocks.tolist())) + streams - 1 + (world_size > 1)
    shared = [b for b in set(blocks.tolist()) if sum(b in t for t in touched) > 1]
    assert len(shared) <= streams - 1 + (world_size > 1)


def test_read_plan_worker_rows_are_what_dataloader_workers_receive():
    from torch.utils.data import DataLoader

    class Recorded(_Rows):
        def __len__(self):
            return 60

        def read_blocks(self):
            return block_layout([10] * 6)

        def attach_read_plan(self, plan):
            self.plan = plan

        def __getitem__(self, index):
            import torch.utils.data

            info = torch.utils.data.get_worker_info()
            return index, info.id, self.plan.epoch

    dataset = Recorded()
    sampler = ShardedRowSampler(dataset, seed=4, world_size=2, rank=1, order="chunks", window=2, batch_size=3,
                                num_workers=2)
    loader = DataLoader(dataset, batch_size=3, sampler=sampler, num_workers=2, collate_fn=list, persistent_workers=True)
    for epoch in (0, 1):
        sampler.set_epoch(epoch)
        read = [item for batch in loader for item in batch]
        assert [row for row, _, _ in read] == list(sampler)
        assert {seen for _, _, seen in read} == {epoch}  # persistent workers see the new epoch (shared memory)
        for worker in (0, 1):
            assert [row for row, w, _ in read if w == worker] == sampler.plan.worker_rows(epoch, worker, 60).tolist()
    assert sampler.order == "chunks"


def test_auto_order_is_chunks_for_remote_data_with_a_layout_only():
    class Data(list):
        def __init__(self, remote, blocks):
            super().__init__(range(12))
            self.is_remote, self._blocks = remote, blocks

        def read_blocks(self):
            return self._blocks

    blocks = block_layout([4, 4, 4])
    assert ShardedRowSampler(Data(True, blocks), seed=0).order == "chunks"
    assert ShardedRowSampler(Data(False, blocks), seed=0).order == "permutation"  # local: a full permutation
    assert ShardedRowSampler(Data(True, None), seed=0).order == "permutation"  # a view: layout unknown
    assert ShardedRowSampler(Data(False, blocks), seed=0, order="chunks").order == "chunks"  # asked for locally
    with pytest.raises(ValueError, match="order='chunks' needs"):
        ShardedRowSampler(list(range(5)), order="chunks")
    with pytest.raises(ValueError, match="order='blocks': expected one of"):
        ShardedRowSampler(list(range(5)), order="blocks")


def test_blocks_can_be_cut_smaller_than_chunks():
    from lakedet.data.sampler import split_blocks

    pieces = split_blocks(block_layout([5, 3]), 2)
    assert pieces.tolist() == [0, 0, 1, 1, 2, 3, 3, 4]
    blocks = block_layout([12, 12])

    class Data(list):
        is_remote = True

        def read_blocks(self):
            return blocks

    sampler = ShardedRowSampler(Data(range(24)), seed=1, order="chunks", window=1, block_rows=4)
    order = list(sampler)
    assert sorted(order) == list(range(24))
    # window=1: each run of 4 consecutive positions is one piece of 4 consecutive rows, shuffled
    assert all(sorted(order[i:i + 4]) == list(range(min(order[i:i + 4]), min(order[i:i + 4]) + 4))
               for i in range(0, 24, 4))


# --- 64 ranks x 8 workers over a COCO-sized layout, on paper ------------------------------------

from conftest import benchmark_module  # noqa: E402


@pytest.mark.timeout(120)
@pytest.mark.parametrize("epoch", [0, 1])
def test_64_ranks_by_8_workers_read_coco_sized_data_once_within_5_percent(epoch):
    scale = benchmark_module("scale")  # its COCO-sized chunk layout (no data written) and byte count
    layout, row_bytes = scale.coco_layout()
    rows = len(row_bytes)
    assert rows == 118_287 and 40 <= np.diff(layout.bounds).mean() <= 60  # rows of ~160 KB in ~8 MB chunks
    parts, ratio = scale.sharded_bytes(layout, row_bytes, world_size=64, num_workers=8, batch_size=2, epoch=epoch,
                                       seed=7)
    assert {len(p) for p in parts} == {-(-rows // 64)}  # equal: same number of batches
    assert all(len(np.unique(p)) == len(p) for p in parts)  # never a row twice on one rank
    everything = np.concatenate(parts)
    assert len(np.unique(everything)) == rows  # complete
    assert len(everything) - rows == (-rows) % 64  # disjoint but for the padding
    for part in parts[:4]:  # the workers' rows are what PyTorch hands them
        assert [w.tolist() for w in scale.worker_rows(part, 2, 8)] == [
            [r for r, w in zip(part.tolist(), dataloader_order(part, 2, 8)) if w == k] for k in range(8)]
    assert ratio <= 1.05, ratio  # the plain block permutation fetched 1.054x
