"""The hooks every run over Deep Lake data gets, whichever entry point builds the runner.

mmengine's ``Runner`` adds ``RuntimeInfoHook`` to every run. In MMDetection's registry (the
scope of every MMDetection config, ``default_scope='mmdet'``) that name is lakedet's stand-in:
mmengine's hook plus one step, ``install_run_hooks``: when the run starts and any of its
dataloaders holds a ``DeepLakeDetDataset``, the hooks below are registered (those the config
does not list already). So ``lakedet train``, MMDetection's ``tools/train.py`` /
``tools/test.py`` and a plain ``Runner.from_cfg(cfg)`` run the same way:

* ``DeepLakeRunHook``: the config's top-level ``deeplake_*`` keys checked and applied; evaluated
  Deep Lake splits run in test mode; a segm metric over a dataset whose mask column is
  undecided asks to choose; each ``ShardedRowSampler`` is cut for its DataLoader's batches and
  workers (the chunk-aware order gives each worker whole chunks); DataLoader workers over remote
  data start with ``forkserver`` (``lakedet.data.workers``); a resumed run samples with the seed
  it was trained with;
* ``ClassCountCheckHook``: the model's ``num_classes`` must match the dataset's class list;
* ``LineageHook``: ``lineage.json`` in the work dir (``lakedet.engine.lineage``);
* ``CheckpointCodecHook``: the random states (and ``train_detector``'s ``meta``) in every
  checkpoint, so that ``--resume`` replays the same augmentations;
* ``SkipTrainedBatchesHook``: a resumed iteration-based run starts its sampler where the
  checkpoint stopped instead of reading and decoding the batches already trained.
"""

from __future__ import annotations

from mmdet.registry import HOOKS as MMDET_HOOKS
from mmengine.hooks import Hook
from mmengine.hooks import RuntimeInfoHook as MMEngineRuntimeInfoHook
from mmengine.registry import HOOKS

from ..config.keys import METRIC_FORMATS, check_top_level, metrics_format
from ..config.walk import bare_type
from ..data.dataset import deeplake_datasets
from ..data.sampler import ShardedRowSampler
from ..data.seeding import get_rng_states, set_rng_states
from ..data.workers import worker_context
from ..errors import ConfigError
from ..source.remote import remote_io_started
from .checkpoints import decode_buffers
from .lineage import split_lineage, write_lineage

__all__ = ["DeepLakeRunHook", "CheckpointCodecHook", "ClassCountCheckHook", "LineageHook", "SkipTrainedBatchesHook",
           "RuntimeInfoHook", "RUN_HOOKS", "install_run_hooks", "built_loops", "prepare_dataloader", "check_run_config", "head_num_classes",
           "check_class_count"]


def built_loops(runner):
    """``(split, loop)`` of the runner's loops that are built (their dataloaders exist)."""
    from mmengine.runner import BaseLoop

    # (mmengine keeps a loop's config until the loop is needed; its public properties would build it)
    for split, loop in (("train", runner._train_loop), ("val", runner._val_loop), ("test", runner._test_loop)):
        if isinstance(loop, BaseLoop):
            yield split, loop


def prepare_dataloader(loader, split: str = "train", loader_type=None, metric: str | None = None) -> list[str]:
    """Fit a built DataLoader over Deep Lake datasets for its run (what ``DeepLakeRunHook`` does
    to each of a run's dataloaders before the run starts); return notes for the log.

    Args:
        loader: the DataLoader (mmengine's ``Runner.build_dataloader`` builds them).
        split: ``"train"``; for ``"val"`` / ``"test"`` the datasets run in test mode.
        loader_type: the config's top-level ``deeplake_dataloader_type`` (datasets that set
            their own keep it).
        metric: ``"segm"`` when a segm metric evaluates the split: each dataset needs a mask
            column (several that fit, none chosen: an error naming them).

    Raises:
        SchemaError: a segm metric over a dataset without a decided mask column.
    """
    datasets = deeplake_datasets(loader.dataset)
    notes = []
    changed = False
    for dataset in datasets:
        if loader_type not in (None, ""):
            dataset.set_loader_type(loader_type)
        if split != "train":
            changed = dataset.evaluated() or changed
        if metric == "segm":
            dataset.needs_masks_for(f"{split}_evaluator's segm metric")
    if not datasets:
        return notes
    if changed:
        _count_again(loader.dataset)
    sampler, batch_size = _loader_sampler(loader)
    if isinstance(sampler, ShardedRowSampler):
        sampler.fit_loader(batch_size, loader.num_workers)
        notes.append(f"{split}_dataloader samples with ShardedRowSampler (order {sampler.order!r}, shuffle "
                     f"{sampler.shuffle}, batches of {batch_size} over {loader.num_workers} workers)")
    remote = any(d.source is not None and d.source.remote for d in datasets)
    if loader.num_workers and loader.multiprocessing_context is None and (remote or remote_io_started()):
        # a fork after Deep Lake's remote I/O can wait on its native threads without end
        loader.multiprocessing_context = worker_context()
        notes.append(f"{split}_dataloader's workers start with forkserver (remote Deep Lake data: a fork after "
                     "Deep Lake's remote I/O can hang)")
    return notes


def _count_again(dataset) -> None:
    """Wrappers (Concat/Repeat/ClassBalanced) count their datasets' rows when they are first used:
    count again, inside out, after a Deep Lake dataset changed its rows (``evaluated``)."""
    for inner in list(getattr(dataset, "datasets", []) or []) + [getattr(dataset, "dataset", None)]:
        if inner is not None:
            _count_again(inner)
    if hasattr(dataset, "datasets") or hasattr(dataset, "dataset"):
        dataset._fully_initialized = False  # mmengine's wrappers' own lazy-init flag
        dataset.full_init()


def _loader_sampler(loader):
    """``(sampler, batch size)`` of a DataLoader (through a batch sampler such as the zoo's
    ``AspectRatioBatchSampler``)."""
    batches = getattr(loader, "batch_sampler", None)
    sampler = getattr(batches, "sampler", None) or getattr(loader, "sampler", None)
    return sampler, getattr(batches, "batch_size", None) or loader.batch_size or 1


@HOOKS.register_module(force=True)
class DeepLakeRunHook(Hook):
    """Fit the run's Deep Lake dataloaders (see the module docstring); runs first."""

    priority = "VERY_HIGH"

    def before_run(self, runner) -> None:
        cfg = runner.cfg
        check_run_config(cfg)
        for split, loop in built_loops(runner):
            evaluator = getattr(loop, "evaluator", None)
            evaluated = any("segm" in _metric_names(metric) for metric in getattr(evaluator, "metrics", ()))
            for note in prepare_dataloader(loop.dataloader, split, cfg.get("deeplake_dataloader_type"),
                                           "segm" if evaluated else None):
                runner.logger.info(f"lakedet: {note}")
        self._seed = runner.seed

    def before_train(self, runner) -> None:
        """A resumed run whose config sets no seed takes the seed it was trained with (mmengine
        re-seeds after it built the sampler): the sampler follows. (DataLoader workers keep the
        seed they were built with, which matters only to datasets that do not seed each sample,
        unlike ``DeepLakeDetDataset``: e.g. a file dataset concatenated with a Deep Lake one.)"""
        trained_with = runner.seed
        if trained_with == getattr(self, "_seed", trained_with):
            return
        sampler, _ = _loader_sampler(runner.train_dataloader)
        if isinstance(sampler, ShardedRowSampler) and sampler.seed == self._seed:
            sampler.reseed(trained_with)
            runner.logger.info(f"lakedet: resumed with the seed the run was trained with ({trained_with})")
        self._seed = trained_with


def check_run_config(cfg) -> None:
    """The top-level ``deeplake_*`` keys of an MMDetection 3 config: only ``TOP_LEVEL_KEYS``, and
    ``deeplake_metrics_format`` must agree with the evaluators (there, the evaluator chooses the metric).

    Raises:
        ConfigError: an unknown top-level key, or a format the evaluators contradict.
    """
    check_top_level(list(cfg.keys()))
    value = cfg.get("deeplake_metrics_format")
    if value in (None, ""):
        return
    wanted = metrics_format(value)
    for split in ("val", "test"):
        evaluator = cfg.get(f"{split}_evaluator")
        for metric in evaluator if isinstance(evaluator, list) else [evaluator] if evaluator else []:
            kind = bare_type(metric)
            family = "COCO" if "Coco" in kind else "PascalVOC" if "VOC" in kind else None
            if family is not None and family != wanted:
                other = "VOCMetric" if wanted == "PascalVOC" else "CocoMetric"
                raise ConfigError(f"deeplake_metrics_format={value!r}, but {split}_evaluator is {kind}: in an "
                                  f"MMDetection 3 config the evaluator chooses the metric ({list(METRIC_FORMATS)}); "
                                  f"set {split}_evaluator=dict(type={other!r}, ...) or drop deeplake_metrics_format")


def _metric_names(metric) -> list:
    names = getattr(metric, "metrics", None) or getattr(metric, "metric", None) or ()
    return [names] if isinstance(names, str) else list(names)


@HOOKS.register_module(force=True)
class CheckpointCodecHook(Hook):
    """Add ``meta`` and the random states to every checkpoint. The checkpoint is otherwise
    mmengine's own (it loads under ``weights_only=True`` through
    ``checkpoints.allow_mmengine_checkpoints``, which ``import lakedet`` applies, so MMDetection's
    tools resume it too); buffers that older lakedet versions stored as plain arrays are decoded
    when loaded.

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


def check_class_count(model, dataset) -> None:
    """Raise unless the model's head predicts as many classes as ``dataset`` has.

    Raises:
        ConfigError: names the config key and the value to set.
    """
    classes = dataset.metainfo.get("classes") or ()
    found = head_num_classes(model)
    if found and classes and found[1] != len(classes):
        key, count = found
        raise ConfigError(f"{key}={count}, but the dataset has {len(classes)} classes "
                          f"{tuple(classes)}; set {key}={len(classes)} "
                          f"(e.g. --cfg-options {key}={len(classes)})")


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
        for _, loop in built_loops(runner):
            dataset = loop.dataloader.dataset
            unnamed = [d for d in deeplake_datasets(dataset) if d.class_names_generated
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
        check_class_count(runner.model, runner.train_dataloader.dataset)

    def before_test(self, runner) -> None:
        check_class_count(runner.model, runner.test_dataloader.dataset)


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
    batch it skips. With a ``ShardedRowSampler`` (what ``DefaultSampler`` / ``InfiniteSampler``
    build over Deep Lake datasets) the position is known: ``iter // len(loader)`` epochs done and
    ``iter % len(loader)`` batches into the next one. The sampler starts there (``set_epoch`` +
    ``skip``), and the loop's skipping answers from nothing. Since each sample's random draws are
    seeded per sample, the batches after the resume are those of the uninterrupted run.
    """

    priority = "LOW"  # after DistSamplerSeedHook (NORMAL), whose set_epoch would undo ours

    def before_train_epoch(self, runner) -> None:
        # (IterBasedTrainLoop calls this once, before it skips the trained batches)
        from mmengine.runner import IterBasedTrainLoop
        from mmengine.runner.loops import _InfiniteDataloaderIterator

        loop = runner.train_loop
        done = getattr(loop, "_iter", 0)
        if not isinstance(loop, IterBasedTrainLoop) or done <= 0:
            return
        sampler, batch_size = _loader_sampler(loop.dataloader)
        if not isinstance(sampler, ShardedRowSampler):
            return
        per_epoch = len(loop.dataloader)
        epochs, batches = divmod(done, per_epoch)
        sampler.set_epoch(epochs)
        sampler.skip = batches * batch_size
        iterator = _InfiniteDataloaderIterator(loop.dataloader)
        iterator._epoch = epochs
        loop.dataloader_iterator = _Skipped(iterator, done)
        runner.logger.info(f"lakedet: resuming at iteration {done} = epoch {epochs} of the sampler + {batches} "
                           f"batches; the {done} batches already trained are not read again")


#: The hooks a run over Deep Lake data gets (``install_run_hooks``).
RUN_HOOKS = (DeepLakeRunHook, ClassCountCheckHook, LineageHook, CheckpointCodecHook, SkipTrainedBatchesHook)


def install_run_hooks(runner) -> list:
    """Register ``RUN_HOOKS`` with ``runner`` when one of its built dataloaders holds a Deep Lake
    dataset, each unless the runner has one of its kind already; return those registered."""
    if not any(deeplake_datasets(loop.dataloader.dataset) for _, loop in built_loops(runner)):
        return []
    installed = []
    for kind in RUN_HOOKS:
        if not any(isinstance(hook, kind) for hook in runner.hooks):
            hook = kind()
            runner.register_hook(hook)
            installed.append(hook)
    return installed


@MMDET_HOOKS.register_module(name="RuntimeInfoHook", force=True)
class RuntimeInfoHook(MMEngineRuntimeInfoHook):
    """mmengine's ``RuntimeInfoHook`` (which every runner has, unless a config sets
    ``default_hooks.runtime_info=None``); before a run over Deep Lake data it also installs
    lakedet's run hooks (``install_run_hooks``)."""

    def before_run(self, runner) -> None:
        super().before_run(runner)
        installed = install_run_hooks(runner)
        if installed:
            runner.logger.info("lakedet: the run reads Deep Lake data; hooks added: "
                               + ", ".join(type(hook).__name__ for hook in installed))
        # mmengine's call_hook walks the hook list as it is: hooks placed after this one get their
        # before_run from it; one placed before it (this hook's priority lowered) gets it here
        position = runner.hooks.index(self)
        for hook in installed:
            if runner.hooks.index(hook) < position:
                hook.before_run(runner)
