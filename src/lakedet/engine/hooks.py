"""mmengine hooks lakedet adds to every run it builds.

* ``CheckpointCodecHook``: checkpoints torch can load with ``weights_only=True``, plus user ``meta``
  and the random states, so that ``--resume`` replays the same augmentations; secrets in the stored
  config text are blanked.
* ``ClassCountCheckHook``: the model's ``num_classes`` must match the dataset's class list.
* ``LineageHook``: ``lineage.json`` in the work dir: which data (URL, branch, commit, view or
  query, rows, columns) each split read, and the versions of lakedet, MMDetection and Deep Lake.
* ``SkipTrainedBatchesHook``: a resumed iteration-based run starts its sampler where the
  checkpoint stopped instead of reading and decoding the batches already trained.
"""

from __future__ import annotations

from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from .checkpoints import decode_buffers, get_rng_states, redact_secrets, set_rng_states
from ..errors import ConfigError

__all__ = ["CheckpointCodecHook", "ClassCountCheckHook", "LineageHook", "SkipTrainedBatchesHook",
           "deeplake_datasets", "head_num_classes", "split_lineage", "write_lineage"]


@HOOKS.register_module(force=True)
class CheckpointCodecHook(Hook):
    """Add ``meta`` and random states to every checkpoint; blank secrets (``deeplake_credentials``)
    in the config text stored in ``meta['cfg']``. The checkpoint is otherwise mmengine's own (it
    loads under ``weights_only=True`` through ``checkpoints.allow_mmengine_checkpoints``, which
    ``import lakedet`` applies, so MMDetection's tools resume it too); buffers that older lakedet
    versions stored as plain arrays are decoded when loaded.

    Every checkpoint also holds the Python, NumPy and torch random states at the moment it was
    saved (``checkpoint['rng_states']``). Resuming a single-process run restores them, so an
    epoch-based run continues with the random augmentations an uninterrupted run would have drawn
    (mmengine itself only re-seeds, which replays epoch 1's draws). Loading a checkpoint without
    resuming (``load_from``, ``lakedet eval``) leaves the random states alone, and so does a
    distributed run (each rank has its own states; only rank 0's are saved).

    Args:
        meta: stored under ``checkpoint['meta']`` (the seed's ``train_detector(meta=...)``).
    """

    priority = "VERY_LOW"

    def __init__(self, meta: dict | None = None):
        self.meta = dict(meta or {})

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint.setdefault("meta", {}).update(self.meta)
        if isinstance(checkpoint["meta"].get("cfg"), str):  # the run's config, credentials included
            checkpoint["meta"]["cfg"] = redact_secrets(checkpoint["meta"]["cfg"])
        checkpoint["rng_states"] = dict(get_rng_states(), world_size=runner.world_size)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        hub = checkpoint.get("message_hub")
        if isinstance(hub, dict) and "log_scalars" in hub:
            hub["log_scalars"] = decode_buffers(hub["log_scalars"])
        states = checkpoint.get("rng_states")
        if states and getattr(runner, "_resume", False) and runner.world_size == 1 == states.get("world_size"):
            # applied in before_train: mmengine may still re-seed after loading (Runner.resume)
            self._resume_states = states

    def before_train(self, runner) -> None:
        states, self._resume_states = getattr(self, "_resume_states", None), None
        if states:
            set_rng_states(states)

    # Validation inside training must not move the random streams training draws from: the
    # checkpoint is written before it, so a resumed run never replays it.
    def before_val(self, runner) -> None:
        self._before_val_states = get_rng_states()

    def after_val(self, runner) -> None:
        states, self._before_val_states = getattr(self, "_before_val_states", None), None
        if states:
            set_rng_states(states)


def head_num_classes(model) -> tuple[str, int] | None:
    """``(config key, num_classes)`` of a detector's box head, or None when it has none."""
    model = getattr(model, "module", model)
    for key, owner in (("model.bbox_head.num_classes", getattr(model, "bbox_head", None)),
                       ("model.roi_head.bbox_head.num_classes",
                        getattr(getattr(model, "roi_head", None), "bbox_head", None))):
        if owner is not None and isinstance(getattr(owner, "num_classes", None), int):
            return key, owner.num_classes
    return None


@HOOKS.register_module(force=True)
class ClassCountCheckHook(Hook):
    """Stop before training or testing when the head predicts a different number of classes.

    A Deep Lake dataset whose labels have no ``class_names`` (nor ``metainfo.classes``) only knows
    the labels its rows show: when the head predicts more classes, its classes are named after the
    head (``class_0 ..``) in every built split, before the metrics read them.
    """

    def before_run(self, runner) -> None:
        found = head_num_classes(runner.model)
        if not found:
            return
        for loop in (runner._train_loop, runner._val_loop, runner._test_loop):
            dataset = getattr(getattr(loop, "dataloader", None), "dataset", None)
            unnamed = [d for d in deeplake_datasets(dataset) if getattr(d, "class_names_generated", False)
                       and len(d.metainfo["classes"]) < found[1]]
            for inner in unnamed:
                inner.name_classes(found[1])
            if unnamed and hasattr(dataset, "_metainfo") and dataset not in unnamed:  # a wrapper's copy
                dataset._metainfo["classes"] = unnamed[0].metainfo["classes"]
            if unnamed and getattr(loop, "evaluator", None) is not None:
                loop.evaluator.dataset_meta = dataset.metainfo
            if unnamed:
                runner.logger.info(f"lakedet: the dataset has no class_names; its classes are named after "
                                   f"{found[0]}={found[1]}: class_0 .. class_{found[1] - 1}")

    def before_train(self, runner) -> None:
        self._check(runner, runner.train_dataloader.dataset)

    def before_test(self, runner) -> None:
        self._check(runner, runner.test_dataloader.dataset)

    def _check(self, runner, dataset) -> None:
        classes = dataset.metainfo.get("classes") or ()
        found = head_num_classes(runner.model)
        if found and classes and found[1] != len(classes):
            key, count = found
            raise ConfigError(f"{key}={count}, but the dataset has {len(classes)} classes "
                              f"{tuple(classes)}; set {key}={len(classes)} "
                              f"(e.g. --cfg-options {key}={len(classes)})")


def deeplake_datasets(dataset) -> list:
    """Every ``DeepLakeDetDataset`` inside a (possibly wrapped) dataset."""
    if dataset is None:
        return []
    if hasattr(dataset, "lineage") and hasattr(dataset, "tensor_map"):
        return [dataset]
    found = []
    for inner in list(getattr(dataset, "datasets", []) or []) + [getattr(dataset, "dataset", None)]:
        found += deeplake_datasets(inner)
    return found


def split_lineage(dataset) -> list[dict]:
    """Lineage of every ``DeepLakeDetDataset`` inside a (possibly wrapped) dataset."""
    return [d.lineage() for d in deeplake_datasets(dataset)]


@HOOKS.register_module(force=True)
class LineageHook(Hook):
    """Write ``lineage.json`` in the work dir when training or testing starts (merging splits)."""

    priority = "VERY_HIGH"

    def before_train(self, runner) -> None:
        splits = {"train": runner.train_dataloader.dataset}
        if runner.val_loop is not None and not isinstance(runner.val_loop, dict):
            splits["val"] = runner.val_loop.dataloader.dataset
        self._write(runner, "train", splits)

    def before_test(self, runner) -> None:
        self._write(runner, "eval", {"test": runner.test_dataloader.dataset})

    @staticmethod
    def _write(runner, command: str, splits: dict) -> None:
        if runner.rank != 0:
            return
        write_lineage(runner.work_dir, command, {name: split_lineage(d) for name, d in splits.items()},
                      checkpoint=runner.cfg.get("load_from"), timestamp=runner.timestamp)


def write_lineage(work_dir: str, command: str, splits: dict, checkpoint: str | None = None,
                  timestamp: str | None = None, **extra) -> str:
    """Append a run to ``work_dir/lineage.json`` (``latest`` is the newest run); return its path."""
    import json
    import os
    import time

    import deeplake
    import mmdet
    import mmengine

    from .. import __version__

    os.makedirs(work_dir, exist_ok=True)
    path = os.path.join(work_dir, "lineage.json")
    record = {}
    if os.path.exists(path):
        with open(path) as f:
            record = json.load(f)
    record.setdefault("runs", []).append(dict(
        command=command, timestamp=timestamp or time.strftime("%Y%m%d_%H%M%S"), checkpoint=checkpoint,
        splits=splits, versions=dict(lakedet=__version__, mmdet=mmdet.__version__, mmengine=mmengine.__version__,
                                     deeplake=deeplake.__version__), **extra))
    record["latest"] = record["runs"][-1]
    with open(path, "w") as f:
        json.dump(record, f, indent=2, default=str)
    return path


class _Skipped:
    """An iterator that answers the first ``count`` calls with None (mmengine's IterBasedTrainLoop
    discards them) and then delegates to ``inner``."""

    def __init__(self, inner, count: int):
        self.inner, self.count = inner, count

    def __iter__(self):
        return self

    def __next__(self):
        if self.count > 0:
            self.count -= 1
            return None
        return next(self.inner)


@HOOKS.register_module(force=True)
class SkipTrainedBatchesHook(Hook):
    """Resume an ``IterBasedTrainLoop`` without reading the batches already trained.

    mmengine advances a resumed loop's data iterator ``iter`` times, reading and decoding every
    batch it skips. With a ``ShardedRowSampler`` (which lakedet puts in place of
    ``DefaultSampler`` / ``InfiniteSampler`` for Deep Lake training splits) the position is known:
    ``iter // len(loader)`` epochs done and ``iter % len(loader)`` batches into the next one. The
    sampler starts there (``set_epoch`` + ``skip``), and the loop's skipping answers from nothing.
    Since each sample's random draws are seeded per sample, the batches after the resume are those
    of the uninterrupted run.
    """

    priority = "LOW"  # after DistSamplerSeedHook (NORMAL), whose set_epoch would undo ours

    def before_train_epoch(self, runner) -> None:
        # (IterBasedTrainLoop calls this once, before it skips the trained batches)
        from mmengine.runner import IterBasedTrainLoop
        from mmengine.runner.loops import _InfiniteDataloaderIterator

        from ..data.sampler import ShardedRowSampler

        loop = runner.train_loop
        done = getattr(loop, "_iter", 0)
        sampler = getattr(getattr(loop, "dataloader", None), "sampler", None)
        if not isinstance(loop, IterBasedTrainLoop) or done <= 0 or not isinstance(sampler, ShardedRowSampler):
            return
        per_epoch = len(loop.dataloader)
        epochs, batches = divmod(done, per_epoch)
        sampler.set_epoch(epochs)
        sampler.skip = batches * loop.dataloader.batch_size
        iterator = _InfiniteDataloaderIterator(loop.dataloader)
        iterator._epoch = epochs
        loop.dataloader_iterator = _Skipped(iterator, done)
        runner.logger.info(f"lakedet: resuming at iteration {done} = epoch {epochs} of the sampler + {batches} "
                           f"batches; the {done} batches already trained are not read again")
