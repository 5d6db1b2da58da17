"""Which dataset rows each distributed rank reads: a pure sharding function and the sampler using it.

``shard_rows(num_rows, world_size, rank, epoch, seed)`` is the whole assignment: a permutation of
all rows seeded by ``(seed, epoch)``, padded by repeating its first rows until its length divides
by ``world_size`` (fewer than ``world_size`` extra rows), then every ``world_size``-th position from
``rank`` on. Shards are disjoint apart from the padding, cover every row, have equal lengths (so
every rank runs the same number of batches) and never hold a row twice. The interleaved layout is
the one mmengine's ``collect_results`` undoes: gathering the ranks' results position by position
and cutting at the dataset size drops exactly the padded rows, so distributed evaluation sees
every row once.

``chunk_shard_rows(block_ids, world_size, rank, epoch, seed, window, ...)`` is the chunk-aware
order for remote data: Deep Lake stores rows in chunks of about 8 MB and fetches a whole chunk
for any read of consecutive rows (one GET), while rows read one by one cost one ranged GET each.
So the order is a seeded permutation of *blocks* (the rows of one storage chunk), grouped into
windows of ``window`` consecutive blocks whose rows are shuffled together. The permuted sequence
is padded and split into one contiguous part per rank (equal lengths, padding < ``world_size``
rows, as MMDetection's ``DefaultSampler``), and each rank's part into one contiguous part per
DataLoader worker, arranged so that PyTorch's round-robin hand-out of batches gives every worker
exactly its part. A worker then reads each block it needs with one slice call, a few windows
ahead (``lakedet.data.reader``). Exactly-once epochs, disjoint shards and "same seed, same order" hold
as for ``shard_rows``; what is given up is a per-row permutation across the whole dataset.

``ShardedRowSampler`` is the mmengine data sampler (registered in ``DATA_SAMPLERS``) built on
them, with ``DefaultSampler``'s arguments plus ``order``. MMDetection's configs name
``DefaultSampler`` / ``InfiniteSampler``: in MMDetection's registry those names are lakedet's
stand-ins, which build a ``ShardedRowSampler`` over a dataset holding Deep Lake datasets and
mmengine's own sampler over any other, so every entry point (``lakedet train``, MMDetection's
``tools/train.py``, ``Runner.from_cfg``) samples Deep Lake splits the same way. DataLoader workers of
one rank split the rank's batches between them (PyTorch gives each batch to one worker), so no
two workers read the same row. The sampler also hands the dataset a ``ReadPlan``: the seed and,
through shared memory, the current epoch, so that DataLoader workers (persistent or not) know
which rows they will read next (for prefetching) and seed each sample's random stream.
"""

from __future__ import annotations

from collections.abc import Iterator, Sized

import numpy as np
from mmdet.registry import DATA_SAMPLERS as MMDET_DATA_SAMPLERS
from mmengine.dataset import DefaultSampler as MMEngineDefaultSampler
from mmengine.dataset import InfiniteSampler as MMEngineInfiniteSampler
from mmengine.registry import DATA_SAMPLERS
from torch.utils.data import Sampler

from ..errors import ConfigError
from .dataset import deeplake_datasets

__all__ = ["shard_rows", "shard_size", "chunk_shard_rows", "align_blocks", "split_blocks", "worker_parts", "ReadPlan",
           "ShardedRowSampler", "DefaultSampler", "InfiniteSampler", "ORDERS", "DEFAULT_WINDOW",
           "ALIGN_LOOKAHEAD"]

#: ``order`` values: ``"auto"`` picks ``"chunks"`` for remote datasets whose chunk layout is known,
#: ``"permutation"`` otherwise (see ``ShardedRowSampler``).
ORDERS = ("auto", "permutation", "chunks")
#: Blocks (storage chunks) whose rows are shuffled together.
DEFAULT_WINDOW = 4
#: Blocks ahead in the permutation among which the chunk-aware order picks the next one, so that
#: the cuts between ranks and workers fall on block boundaries where block sizes allow.
ALIGN_LOOKAHEAD = 16


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


def _groups(block_ids: np.ndarray) -> list[np.ndarray]:
    """Sample positions of each block, blocks in order of their first sample, positions ascending."""
    order = np.argsort(block_ids, kind="stable")
    _, starts = np.unique(block_ids[order], return_index=True)
    groups = np.split(order.astype(np.int64), starts[1:]) if len(order) else []
    return sorted(groups, key=lambda g: g[0])


def chunk_shard_rows(block_ids, world_size: int, rank: int, epoch: int = 0, seed: int = 0,
                     window: int = DEFAULT_WINDOW, pad: bool = True, batch_size: int = 1,
                     num_workers: int = 0) -> np.ndarray:
    """The sample positions ``rank`` reads in ``epoch`` in the chunk-aware order, in reading order.

    1. The blocks (samples of one storage chunk) are permuted, seeded by ``(seed, epoch)``,
       reordered locally so that the cuts of steps 2 and 3 fall on block boundaries where block
       sizes allow (``align_blocks``), and their samples concatenated, in storage order within
       a block.
    2. That sequence is padded by repeating its first ``(-len) % world_size`` samples and cut into
       ``world_size`` equal contiguous parts, one per rank (MMDetection's padding semantics).
    3. A rank's part is cut into one contiguous piece per DataLoader worker, sized by the batches
       PyTorch hands that worker; so at most one block is shared by two neighbouring pieces.
    4. Within each piece, the samples of every ``window`` consecutive blocks are shuffled together
       (seeded by ``(seed, epoch, rank, worker)``), and the batches are interleaved in the order
       PyTorch hands them out.

    Args:
        block_ids: for each sample position of the dataset, the id of the block (storage chunk)
            holding its row.
        world_size / rank / epoch / seed / pad: as for ``shard_rows`` (without ``pad`` the parts
            differ by at most one sample and nothing is read twice).
        window: blocks whose samples are shuffled together (>= 1); more mixes better and holds
            more data in memory (a window is what a worker keeps while reading it).
        batch_size / num_workers: the DataLoader's; without them (``num_workers <= 1``) the rank's
            part is one piece.

    Returns:
        An int64 array of sample positions: over all ranks each position once, plus the padding;
        every rank gets ``ceil(len / world_size)`` positions (with ``pad``) and never one twice.
    """
    block_ids = np.asarray(block_ids, dtype=np.int64).reshape(-1)
    world_size = _check_int("world_size", world_size, 1)
    rank = _check_int("rank", rank, 0, world_size, "world_size")
    epoch = _check_int("epoch", epoch, 0)
    seed = _check_int("seed", seed, 0)
    window = _check_int("window", window, 1)
    batch_size = _check_int("batch_size", batch_size, 1)
    num_workers = _check_int("num_workers", num_workers, 0)
    num_rows = len(block_ids)
    groups = _groups(block_ids)
    permuted = [groups[i] for i in np.random.default_rng([seed, epoch, 1]).permutation(len(groups))]
    cuts = _cut_points(num_rows, world_size, pad, batch_size, max(1, num_workers))
    permuted = [permuted[i] for i in align_blocks([len(g) for g in permuted], cuts)]
    rows = np.concatenate(permuted) if permuted else np.zeros(0, np.int64)
    labels = np.repeat(np.arange(len(permuted)), [len(g) for g in permuted])  # block of each position
    if pad and num_rows:
        size = shard_size(num_rows, world_size)
        rows, labels = np.resize(rows, world_size * size), np.resize(labels, world_size * size)
        bounds = (rank * size, (rank + 1) * size)
    else:
        cuts = np.linspace(0, num_rows, world_size + 1).round().astype(np.int64)
        bounds = (cuts[rank], cuts[rank + 1])
    rows, labels = rows[bounds[0]:bounds[1]], labels[bounds[0]:bounds[1]]
    workers = max(1, num_workers)
    pieces = [_shuffle_windows(piece, piece_labels, window, np.random.default_rng([seed, epoch, 2, rank, worker]))
              for worker, (piece, piece_labels) in enumerate(zip(worker_parts(len(rows), batch_size, workers, rows),
                                                                 worker_parts(len(rows), batch_size, workers, labels)))]
    if workers == 1:
        return pieces[0].astype(np.int64)
    return np.concatenate([np.zeros(0, np.int64), *_interleave(pieces, batch_size, workers, len(rows))])


def _shuffle_windows(rows: np.ndarray, labels: np.ndarray, window: int, rng) -> np.ndarray:
    """``rows`` with the rows of every ``window`` consecutive blocks (runs of equal ``labels``)
    shuffled together."""
    rows = rows.copy()
    starts = np.flatnonzero(np.r_[True, labels[1:] != labels[:-1]]) if len(labels) else np.zeros(0, np.int64)
    edges = np.r_[starts[::window], len(rows)]
    for begin, end in zip(edges[:-1], edges[1:]):
        rng.shuffle(rows[begin:end])
    return rows


def split_blocks(block_ids, block_rows: int) -> np.ndarray:
    """Block ids with every block cut into consecutive pieces of at most ``block_rows`` samples."""
    block_ids = np.asarray(block_ids, dtype=np.int64)
    pieces = np.zeros(len(block_ids), np.int64)
    for group in _groups(block_ids):
        pieces[group] = np.arange(len(group)) // block_rows
    _, ids = np.unique(np.stack([block_ids, pieces], axis=1), axis=0, return_inverse=True)
    return ids.reshape(-1).astype(np.int64)


def _worker_sizes(length: int, batch_size: int, workers: int) -> list[int]:
    """Rows PyTorch hands each of ``workers`` DataLoader workers out of ``length`` (batch ``k``
    goes to worker ``k % workers``; the last batch may be short)."""
    batches, short = divmod(length, batch_size)
    sizes = [(batches // workers + (w < batches % workers)) * batch_size for w in range(workers)]
    if short:
        sizes[batches % workers] += short
    return sizes


def worker_parts(length: int, batch_size: int, num_workers: int, rows: np.ndarray | None = None) -> list:
    """Split a rank's ``length`` rows into one contiguous part per DataLoader worker, sized by the
    batches PyTorch hands that worker (batch ``k`` goes to worker ``k % num_workers``; the last
    batch may be short). Returns the parts of ``rows`` (or of ``arange(length)``)."""
    rows = np.arange(length, dtype=np.int64) if rows is None else rows
    workers = max(1, num_workers)
    bounds = np.concatenate([[0], np.cumsum(_worker_sizes(length, batch_size, workers))]).astype(np.int64)
    return [rows[bounds[w]:bounds[w + 1]] for w in range(workers)]


def _cut_points(num_rows: int, world_size: int, pad: bool, batch_size: int, workers: int) -> list[int]:
    """Positions in ``(0, num_rows)`` of the concatenated block sequence where ``chunk_shard_rows``
    cuts it between ranks and between the DataLoader workers of a rank, ascending."""
    if pad and num_rows:
        size = shard_size(num_rows, world_size)
        rank_bounds = [rank * size for rank in range(world_size + 1)]
    else:
        rank_bounds = np.linspace(0, num_rows, world_size + 1).round().astype(np.int64).tolist()
    cuts, sizes = set(), {}
    for begin, end in zip(rank_bounds[:-1], rank_bounds[1:]):
        if end - begin not in sizes:
            sizes[end - begin] = np.cumsum(_worker_sizes(end - begin, batch_size, workers)).tolist()
        cuts.update(begin + c for c in [0, *sizes[end - begin]])
    return sorted(c for c in cuts if 0 < c < num_rows)


def _crossing_cost(room: int, size: int) -> int:
    """Rows of a block of ``size`` rows that land on the minority side of a cut ``room`` rows in
    (what the worker holding them reads row by row), or 0 when it fits exactly."""
    return 0 if size == room else min(room, size - room)


def align_blocks(sizes, cuts, lookahead: int = ALIGN_LOOKAHEAD) -> list[int]:
    """An order of blocks (given by their ``sizes`` in permuted order) in which the ``cuts``
    (ascending sample positions of the concatenated sequence) fall on block boundaries where the
    sizes allow, and otherwise near one.

    Greedy: the next block is the first of the permuted order, unless the next cut is at most two
    blocks away; then, among the first ``lookahead`` blocks left, the one whose placement leaves the
    fewest rows on the minority side of that cut (looking one block further). A block cut in two
    is read whole by the side holding at least half of it and row by row by the other
    (``lakedet.data.reader``), so those minority rows are what a cut costs in bytes fetched; the
    plain permutation pays about a quarter of a block per cut. Returns indices into ``sizes``.
    """
    sizes = [int(s) for s in sizes]
    queue, order, position, following = list(range(len(sizes))), [], 0, 0
    while queue:
        while following < len(cuts) and cuts[following] <= position:
            following += 1
        if following == len(cuts):
            order.extend(queue)
            break
        room, candidates = cuts[following] - position, [sizes[i] for i in queue[:lookahead]]
        pick = 0
        if room <= 2 * max(candidates):
            best = None
            for k, size in enumerate(candidates):
                if size < room:  # placed whole: the cost is the best next block's
                    rest = set(candidates[:k] + candidates[k + 1:]) or {room - size}
                    cost = min(min(_crossing_cost(room - size, other) if other >= room - size else room - size - other
                                   for other in rest), room - size)
                else:
                    cost = _crossing_cost(room, size)
                if best is None or cost < best:
                    best, pick = cost, k
                if cost == 0:
                    break
        order.append(queue.pop(pick))
        position += sizes[order[-1]]
    return order


def _interleave(parts: list, batch_size: int, num_workers: int, length: int):
    """The rank's reading order: batch ``k`` taken from the front of part ``k % num_workers``."""
    taken = [0] * num_workers
    for k, start in enumerate(range(0, length, batch_size)):
        worker, count = k % num_workers, min(batch_size, length - start)
        yield parts[worker][taken[worker]:taken[worker] + count]
        taken[worker] += count


class ReadPlan:
    """What a sampler tells its dataset: the order, the seed, and (in shared memory, so that
    DataLoader workers started before an epoch see it) the current epoch. A worker uses it to know
    the rows it will read next (``worker_rows``) and to seed each sample's random stream.

    Picklable for ``spawn``/``forkserver`` workers: the shared epoch goes with the dataset when a
    worker is started.
    """

    def __init__(self, seed: int, world_size: int, rank: int, order: str, window: int, batch_size: int,
                 num_workers: int, shuffle: bool, pad: bool, block_ids: np.ndarray | None):
        import multiprocessing

        self.seed, self.world_size, self.rank = int(seed), int(world_size), int(rank)
        self.order, self.window, self.shuffle, self.pad = order, int(window), bool(shuffle), bool(pad)
        self.batch_size, self.num_workers = int(batch_size), int(num_workers)
        self.block_ids = block_ids
        self._epoch = multiprocessing.get_context("spawn").RawValue("q", -1)
        self._cached: tuple | None = None

    @property
    def epoch(self) -> int:
        """The epoch the sampler last started (-1 before the first)."""
        return int(self._epoch.value)

    def start_epoch(self, epoch: int) -> None:
        self._epoch.value = int(epoch)

    def rank_rows(self, epoch: int, num_rows: int) -> np.ndarray:
        """Sample positions this rank reads in ``epoch``, in order (what the sampler yields)."""
        if self.order == "chunks" and self.shuffle:
            return chunk_shard_rows(self.block_ids, self.world_size, self.rank, epoch, self.seed, self.window,
                                    self.pad, self.batch_size, self.num_workers)
        return shard_rows(num_rows, self.world_size, self.rank, epoch, self.seed, shuffle=self.shuffle, pad=self.pad)

    def worker_rows(self, epoch: int, worker: int, num_rows: int) -> np.ndarray:
        """Sample positions DataLoader worker ``worker`` of this rank reads in ``epoch``, in order."""
        key = (epoch, worker, num_rows)
        if self._cached is None or self._cached[0] != key:
            rows = self.rank_rows(epoch, num_rows)
            if self.num_workers > 1:
                mine = [rows[start:start + self.batch_size]
                        for k, start in enumerate(range(0, len(rows), self.batch_size)) if k % self.num_workers == worker]
                rows = np.concatenate(mine) if mine else rows[:0]
            self._cached = (key, rows)
        return self._cached[1]

    def fit(self, batch_size: int | None = None, num_workers: int | None = None, seed: int | None = None) -> None:
        """Change the batching the order is cut for, or the seed (before an epoch starts)."""
        if batch_size is not None:
            self.batch_size = int(batch_size)
        if num_workers is not None:
            self.num_workers = int(num_workers)
        if seed is not None:
            self.seed = int(seed)
        self._cached = None

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_cached"] = None
        return state


@DATA_SAMPLERS.register_module()
class ShardedRowSampler(Sampler):
    """``DefaultSampler``'s replacement for Deep Lake splits: yields ``shard_rows(...)`` of this rank.

    Why not ``DefaultSampler`` itself (which MMDetection's own tools keep, and which works): it
    knows rows only. The chunk-aware order (one request per storage chunk instead of one per row,
    ``tests/test_streaming.py``), the ``ReadPlan`` that read-ahead and per-sample seeding follow,
    and resuming an iteration-based run without reading the trained batches again (``skip``,
    ``tests/test_resume.py``) need a sampler that knows the storage layout and the DataLoader's
    batches. Its ``"permutation"`` order has ``DefaultSampler``'s layout (padding, one
    interleaved shard per rank), with another seeded permutation.

    Args:
        dataset: the dataset; a ``DeepLakeDetDataset`` also gets this sampler's ``ReadPlan``.
        shuffle: a new order every epoch (``set_epoch``); otherwise rows in order.
        order: ``"permutation"``: a full per-row permutation (``shard_rows``); ``"chunks"``: the
            chunk-aware order (``chunk_shard_rows``), which reads each storage chunk once per epoch;
            ``"auto"`` (default): ``"chunks"`` for a remote dataset whose chunk layout is known
            (Deep Lake 4 reports it; for Deep Lake 3 data lakedet reads the dataset's chunk index,
            views and queries included), ``"permutation"`` otherwise. Local reads cost about the same in any order
            (measured), and a per-row permutation mixes best, so local data keeps it; remote rows
            read one by one cost one request each, which latency and the server's CPU bound.
        window: blocks (chunks) shuffled together in the ``"chunks"`` order.
        block_rows: cut blocks into pieces of at most this many rows (None: a block is a chunk):
            smaller blocks mix better and, read whole, still cost one request per chunk while
            Deep Lake keeps the chunk in memory (it keeps 10-20 chunks per process, measured).
        batch_size / num_workers: the DataLoader's (lakedet's run hooks set them from the
            DataLoader before the first epoch, ``fit_loader``), so that each worker reads whole
            chunks; without them the order is the same for any worker count.
        seed: shared by all ranks; None takes mmengine's ``sync_random_seed()`` (rank 0's, broadcast).
        round_up: pad so every rank gets the same number of rows (see ``shard_rows``'s ``pad``);
            False can leave one rank a batch short, which DDP training does not tolerate.
        world_size / rank: the distributed world; None reads it from ``torch.distributed``
            (``mmengine.dist.get_dist_info``). Given, they fake a world without processes.
    """

    def __init__(self, dataset: Sized, shuffle: bool = True, seed: int | None = None, round_up: bool = True,
                 world_size: int | None = None, rank: int | None = None, order: str = "auto",
                 window: int = DEFAULT_WINDOW, batch_size: int = 1, num_workers: int = 0,
                 block_rows: int | None = None) -> None:
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
        self.skip = 0  # samples the next __iter__ leaves out (a resumed iteration-based run)
        shard_rows(0, world_size, rank, 0, self.seed)  # validate the arguments now
        if order not in ORDERS:
            raise ValueError(f"order={order!r}: expected one of {ORDERS}")
        _check_int("window", window, 1)
        self.block_rows = None if block_rows is None else _check_int("block_rows", block_rows, 1)
        block_ids = self._block_ids() if order != "permutation" else None
        if order == "chunks" and block_ids is None:
            raise ValueError(f"order='chunks' needs a DeepLakeDetDataset over a dataset whose chunk layout is "
                             f"known; {type(dataset).__name__} has none: use order='permutation'")
        if order == "auto":
            remote = bool(getattr(dataset, "is_remote", False))
            order = "chunks" if remote and block_ids is not None and self.shuffle else "permutation"
        self.order = order
        self.plan = ReadPlan(self.seed, world_size, rank, order, window, batch_size, num_workers, self.shuffle,
                             self.round_up, block_ids)
        attach = getattr(dataset, "attach_read_plan", None)
        if callable(attach):
            attach(self.plan)

    def __iter__(self) -> Iterator[int]:
        self.plan.start_epoch(self.epoch)  # before any index of the epoch reaches a worker
        skip, self.skip = self.skip, 0
        return iter(self.plan.rank_rows(self.epoch, len(self.dataset))[skip:].tolist())

    def __len__(self) -> int:
        return shard_size(len(self.dataset), self.world_size, self.round_up, self.rank)

    def set_epoch(self, epoch: int) -> None:
        """Use ``epoch``'s permutation from the next iteration on (mmengine calls it every epoch)."""
        self.epoch = epoch

    def fit_loader(self, batch_size: int, num_workers: int) -> None:
        """Cut the order for the DataLoader that uses this sampler (its batch size and workers),
        so that each worker reads whole chunks; called before the first epoch (when the dataset
        serves other rows by then, e.g. switched to test mode, its blocks are read again)."""
        if self.plan.block_ids is not None and len(self.plan.block_ids) != len(self.dataset):
            self.plan.block_ids = self._block_ids()
        self.plan.fit(batch_size=batch_size, num_workers=num_workers)

    def _block_ids(self):
        """The dataset's storage block of each sample position (None when it does not know them)."""
        blocks = getattr(self.dataset, "read_blocks", None)
        block_ids = blocks() if callable(blocks) else None
        if self.block_rows is not None and block_ids is not None:
            block_ids = split_blocks(block_ids, self.block_rows)
        return block_ids

    def reseed(self, seed: int) -> None:
        """Use ``seed`` from the next epoch on (a resumed run takes the seed it was trained with)."""
        self.seed = int(seed)
        self.plan.fit(seed=seed)


@MMDET_DATA_SAMPLERS.register_module(name="DefaultSampler", force=True)
class DefaultSampler(MMEngineDefaultSampler):
    """mmengine's ``DefaultSampler`` (the name MMDetection's configs use); over a dataset that
    holds Deep Lake datasets, a ``ShardedRowSampler`` with the same arguments."""

    def __new__(cls, dataset, *args, **kwargs):
        if deeplake_datasets(dataset):
            return ShardedRowSampler(dataset, *args, **kwargs)
        return super().__new__(cls)

    def __init__(self, dataset, shuffle: bool = True, seed: int | None = None, round_up: bool = True, **options):
        if options:
            raise ConfigError(f"DefaultSampler: {sorted(options)} apply to Deep Lake datasets only "
                              f"(ShardedRowSampler); {type(dataset).__name__} holds none")
        super().__init__(dataset, shuffle=shuffle, seed=seed, round_up=round_up)


@MMDET_DATA_SAMPLERS.register_module(name="InfiniteSampler", force=True)
class InfiniteSampler(MMEngineInfiniteSampler):
    """mmengine's ``InfiniteSampler``; over a dataset that holds Deep Lake datasets, a
    ``ShardedRowSampler``: epochs of it, which mmengine's ``IterBasedTrainLoop`` restarts at each
    end (with ``set_epoch``), so the read plan, per-sample seeding and resuming without reading the
    trained batches apply to iteration-based training too."""

    def __new__(cls, dataset, *args, **kwargs):
        if deeplake_datasets(dataset):
            return ShardedRowSampler(dataset, *args, **kwargs)
        return super().__new__(cls)
