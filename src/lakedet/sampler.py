"""Which dataset rows each distributed rank reads: a pure sharding function and the sampler using it.

``shard_rows(num_rows, world_size, rank, epoch, seed)`` is the whole assignment: a permutation of
all rows seeded by ``(seed, epoch)``, padded by repeating its first rows until its length divides
by ``world_size`` (fewer than ``world_size`` extra rows), then every ``world_size``-th position from
``rank`` on. Shards are disjoint apart from the padding, cover every row, have equal lengths (so
every rank runs the same number of batches) and never hold a row twice. The interleaved layout is
the one mmengine's ``collect_results`` undoes: gathering the ranks' results position by position
and cutting at the dataset size drops exactly the padded rows, so distributed evaluation sees
every row once.

``ShardedRowSampler`` is the mmengine data sampler (registered in ``DATA_SAMPLERS``) built on it,
with ``DefaultSampler``'s arguments; lakedet puts it in place of ``DefaultSampler`` for Deep Lake
splits (``lakedet.train.adapt_config``). DataLoader workers of one rank split the rank's batches
between them (PyTorch gives each batch to one worker), so no two workers read the same row.
"""

from __future__ import annotations

from collections.abc import Iterator, Sized

import numpy as np
from mmengine.registry import DATA_SAMPLERS
from torch.utils.data import Sampler

__all__ = ["shard_rows", "shard_size", "ShardedRowSampler"]


def _check_int(name: str, value, low: int, high: int | None = None, high_name: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name}={value!r}: expected an int")
    if value < low or (high is not None and value >= high):
        bound = f"in [{low}, {high_name}={high})" if high is not None else f">= {low}"
        raise ValueError(f"{name}={value}: must be {bound}")
    return int(value)


def shard_size(num_rows: int, world_size: int, pad: bool = True, rank: int = 0) -> int:
    """How many rows ``shard_rows`` gives ``rank`` (the same for every rank when ``pad``)."""
    if pad:
        return -(-num_rows // world_size)
    return len(range(rank, num_rows, world_size))


def shard_rows(num_rows: int, world_size: int, rank: int, epoch: int = 0, seed: int = 0,
               shuffle: bool = True, pad: bool = True) -> np.ndarray:
    """The row positions (dataset indices) ``rank`` reads in ``epoch``, in reading order.

    Args:
        num_rows: rows in the dataset (``len(dataset)``), >= 0.
        world_size: number of ranks, >= 1.
        rank: this rank, in ``[0, world_size)``.
        epoch: the epoch, >= 0; with ``shuffle`` every epoch has its own permutation.
        seed: the shared seed, >= 0; the same on every rank.
        shuffle: permute the rows (seeded by ``(seed, epoch)``); otherwise rows in order.
        pad: repeat the permutation's first ``(-num_rows) % world_size`` rows (at most
            ``world_size - 1``) so that every rank gets ``ceil(num_rows / world_size)`` rows; without
            it ranks get ``num_rows // world_size`` or one more, and nothing is read twice.

    Returns:
        An int64 array; the shards of all ranks are disjoint except for the padded rows, which
        are each read by a second rank (never twice by one rank), and together hold every row.

    Raises:
        ValueError: an argument out of range, named with its bound (e.g. ``rank=2: must be in
            [0, world_size=2)``).
    """
    num_rows = _check_int("num_rows", num_rows, 0)
    world_size = _check_int("world_size", world_size, 1)
    rank = _check_int("rank", rank, 0, world_size, "world_size")
    epoch = _check_int("epoch", epoch, 0)
    seed = _check_int("seed", seed, 0)
    if shuffle:
        order = np.random.default_rng([seed, epoch]).permutation(num_rows)
    else:
        order = np.arange(num_rows, dtype=np.int64)
    if pad and num_rows:
        order = np.resize(order, world_size * shard_size(num_rows, world_size))  # repeats from the start
    return order[rank::world_size].astype(np.int64)


@DATA_SAMPLERS.register_module()
class ShardedRowSampler(Sampler):
    """``DefaultSampler``'s replacement for Deep Lake splits: yields ``shard_rows(...)`` of this rank.

    Args:
        dataset: the dataset (only ``len(dataset)`` is used).
        shuffle: a new permutation every epoch (``set_epoch``); otherwise rows in order.
        seed: shared by all ranks; None takes mmengine's ``sync_random_seed()`` (rank 0's, broadcast).
        round_up: pad so every rank gets the same number of rows (see ``shard_rows``'s ``pad``);
            False can leave one rank a batch short, which DDP training does not tolerate.
        world_size / rank: the distributed world; None reads it from ``torch.distributed``
            (``mmengine.dist.get_dist_info``). Given, they fake a world without processes.
    """

    def __init__(self, dataset: Sized, shuffle: bool = True, seed: int | None = None, round_up: bool = True,
                 world_size: int | None = None, rank: int | None = None) -> None:
        from mmengine.dist import get_dist_info, sync_random_seed

        if world_size is None or rank is None:
            dist_rank, dist_world = get_dist_info()
            rank = dist_rank if rank is None else rank
            world_size = dist_world if world_size is None else world_size
        self.dataset = dataset
        self.shuffle = bool(shuffle)
        self.seed = sync_random_seed() if seed is None else seed
        self.round_up = bool(round_up)
        self.world_size, self.rank = world_size, rank
        self.epoch = 0
        shard_rows(0, world_size, rank, 0, self.seed)  # validate the arguments now

    def __iter__(self) -> Iterator[int]:
        rows = shard_rows(len(self.dataset), self.world_size, self.rank, self.epoch, self.seed,
                          shuffle=self.shuffle, pad=self.round_up)
        return iter(rows.tolist())

    def __len__(self) -> int:
        return shard_size(len(self.dataset), self.world_size, self.round_up, self.rank)

    def set_epoch(self, epoch: int) -> None:
        """Use ``epoch``'s permutation from the next iteration on (mmengine calls it every epoch)."""
        self.epoch = epoch
