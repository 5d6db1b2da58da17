"""Training entry points with the seed's signatures, on mmengine's ``Runner``.

``build_detector(cfg.model)`` builds an MMDetection model; ``train_detector(model, cfg, ...)``
trains it on Deep Lake data and validates with COCO metrics computed from the rows. Configs are
MMDetection 3 configs (``train_dataloader`` ...) whose datasets are ``DeepLakeDetDataset``.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from typing import Any

import logging

from ..config.translate import bare_type
from ..errors import ConfigError

logger = logging.getLogger("lakedet")

__all__ = ["build_detector", "train_detector", "build_runner", "adapt_config", "last_metrics",
           "pretrained_weights", "end_process_group", "slurm_to_torch_env"]


def _registries() -> None:
    from mmdet.utils import register_all_modules

    from .. import register_all

    register_all()
    register_all_modules(init_default_scope=True)


def build_detector(cfg_model: Mapping):
    """Build an MMDetection detector from the config's ``model`` section.

    Args:
        cfg_model: e.g. ``cfg.model`` of an MMDetection 3 config.

    Returns:
        The ``torch.nn.Module`` detector, weights initialised per ``init_cfg``.
    """
    _registries()
    from mmdet.registry import MODELS

    model = MODELS.build(copy.deepcopy(dict(cfg_model)))
    return model


def _is_deeplake_dataset_cfg(cfg: Any) -> bool:
    if not isinstance(cfg, Mapping):
        return False
    if bare_type(cfg) == "DeepLakeDetDataset":
        return True
    inner = cfg.get("dataset") or cfg.get("datasets")
    if isinstance(inner, (list, tuple)):
        return any(_is_deeplake_dataset_cfg(d) for d in inner)
    return _is_deeplake_dataset_cfg(inner)


def adapt_config(cfg) -> None:
    """Fit a config whose splits are Deep Lake datasets (in place).

    Nothing here is needed for a config to run: MMDetection's ``tools/train.py`` runs the same
    config through the registries alone (``CocoMetric`` / ``VOCMetric`` over Deep Lake rows are
    lakedet's stand-ins, ``AspectRatioBatchSampler`` reads sizes from ``get_data_info``). What
    ``lakedet train`` adds: a ``DefaultSampler`` / ``InfiniteSampler`` becomes
    ``ShardedRowSampler`` (same options, plus the chunk-aware order for remote data; see
    ``lakedet.data.sampler``), wrappers pass whole batches on (``lakedet.data.wrappers``), evaluated datasets
    run in test mode, and the seed's top-level keys are applied.
    """
    _top_level_deeplake_keys(cfg)
    for split in ("train", "val", "test"):
        _shard_rows_of(split, cfg.get(f"{split}_dataloader"))
        loader = cfg.get(f"{split}_dataloader")
        if loader:
            _batched_wrappers(split, loader.get("dataset"))
    for split in ("val", "test"):
        loader = cfg.get(f"{split}_dataloader")
        evaluator = cfg.get(f"{split}_evaluator")
        if not loader or not evaluator or not _is_deeplake_dataset_cfg(loader.get("dataset")):
            continue
        _evaluation_mode(split, loader.get("dataset"))


def _top_level_deeplake_keys(cfg) -> None:
    """The seed's top-level keys in an MMDetection 3 config: ``deeplake_dataloader_type`` is given to
    every Deep Lake dataset that does not set its own; ``deeplake_metrics_format`` must agree with
    the evaluators (there, they choose the metric); any other ``deeplake_*`` key is an error."""
    from ..config.translate import METRIC_FORMATS, SPLIT_KEYS, TOP_LEVEL_KEYS, loader_type
    from ..errors import did_you_mean

    for key in cfg:
        if str(key).startswith("deeplake_") and key not in TOP_LEVEL_KEYS:
            hint = " (it is an argument of DeepLakeDetDataset)" if key in SPLIT_KEYS else ""
            raise ConfigError(f"unknown top-level key {key!r}{did_you_mean(key, TOP_LEVEL_KEYS + SPLIT_KEYS)}{hint}; "
                              f"top-level deeplake keys are {list(TOP_LEVEL_KEYS)}")
    if cfg.get("deeplake_dataloader_type") not in (None, ""):
        kind = loader_type(cfg["deeplake_dataloader_type"])
        for split in ("train", "val", "test"):
            for dataset in _deeplake_dataset_cfgs((cfg.get(f"{split}_dataloader") or {}).get("dataset")):
                dataset.setdefault("deeplake_dataloader_type", kind)
    metrics_format = cfg.get("deeplake_metrics_format")
    if metrics_format in (None, ""):
        return
    wanted = next((name for name in METRIC_FORMATS if str(metrics_format).lower() == name.lower()), None)
    if wanted is None:
        raise ConfigError(f"deeplake_metrics_format={metrics_format!r}: expected one of {list(METRIC_FORMATS)}"
                          f"{did_you_mean(str(metrics_format), METRIC_FORMATS)}")
    for split in ("val", "test"):
        evaluator = cfg.get(f"{split}_evaluator")
        for metric in evaluator if isinstance(evaluator, list) else [evaluator] if evaluator else []:
            kind = bare_type(metric) if isinstance(metric, Mapping) else ""
            family = "COCO" if "Coco" in kind else "PascalVOC" if "VOC" in kind else None
            if family is not None and family != wanted:
                other = "VOCMetric" if wanted == "PascalVOC" else "CocoMetric"
                raise ConfigError(f"deeplake_metrics_format={metrics_format!r}, but {split}_evaluator is {kind}: in an "
                                  f"MMDetection 3 config the evaluator chooses the metric; set "
                                  f"{split}_evaluator=dict(type={other!r}, ...) or drop deeplake_metrics_format")


def _deeplake_dataset_cfgs(cfg) -> list:
    """Every ``DeepLakeDetDataset`` dict inside a (possibly wrapped) dataset config."""
    if not isinstance(cfg, Mapping):
        return []
    if bare_type(cfg) == "DeepLakeDetDataset":
        return [cfg]
    inner = cfg.get("datasets") if isinstance(cfg.get("datasets"), (list, tuple)) else [cfg.get("dataset")]
    return [found for child in inner for found in _deeplake_dataset_cfgs(child)]


def _batched_wrappers(split: str, dataset) -> None:
    """Wrappers (Concat/Repeat/ClassBalanced) around Deep Lake datasets pass whole batches on."""
    from ..data.wrappers import BATCHED_WRAPPERS

    if not isinstance(dataset, Mapping) or not _is_deeplake_dataset_cfg(dataset):
        return
    kind = bare_type(dataset)
    if kind in BATCHED_WRAPPERS:
        dataset["type"] = BATCHED_WRAPPERS[kind]
        logger.info(f"lakedet: {split}_dataloader's {kind} passes whole batches to Deep Lake ({dataset['type']})")
    inner = dataset.get("dataset") or dataset.get("datasets")
    for child in inner if isinstance(inner, (list, tuple)) else [inner]:
        _batched_wrappers(split, child)


def _evaluation_mode(split: str, dataset) -> None:
    """Evaluated Deep Lake datasets run with ``test_mode=True``: no ``filter_empty_gt``, and each
    sample carries its row's ground truth for the metric."""
    if not isinstance(dataset, Mapping):
        return
    if bare_type(dataset) == "DeepLakeDetDataset":
        if not dataset.get("test_mode", False):
            logger.info(f"lakedet: {split}_dataloader's DeepLakeDetDataset is evaluated: test_mode=True")
            dataset["test_mode"] = True
        return
    inner = dataset.get("dataset") or dataset.get("datasets")
    for child in inner if isinstance(inner, (list, tuple)) else [inner]:
        _evaluation_mode(split, child)


def _shard_rows_of(split: str, loader) -> None:
    """Swap a Deep Lake split's ``DefaultSampler`` (any scope) for ``ShardedRowSampler``."""
    if not loader or not _is_deeplake_dataset_cfg(loader.get("dataset")):
        return
    sampler = loader.get("sampler")
    if isinstance(sampler, Mapping) and bare_type(sampler) == "InfiniteSampler" and split == "train":
        # epochs of ShardedRowSampler, restarted by mmengine's IterBasedTrainLoop at each end: the
        # same read plan, per-sample seeding and resume without reading skipped batches
        logger.info("lakedet: train_dataloader's InfiniteSampler becomes ShardedRowSampler (mmengine's "
                    "IterBasedTrainLoop restarts it each epoch, with set_epoch)")
        sampler["type"] = "DefaultSampler"
    if isinstance(sampler, Mapping) and bare_type(sampler) == "DefaultSampler":
        sampler["type"] = "ShardedRowSampler"
        kept = {k: v for k, v in sampler.items() if k != "type"}
        logger.info(f"lakedet: {split}_dataloader samples with ShardedRowSampler instead of DefaultSampler "
                    f"(a seeded order per epoch, one disjoint shard per rank; options kept: {kept})")
    if isinstance(sampler, Mapping) and bare_type(sampler) == "ShardedRowSampler":
        # the chunk-aware order gives each DataLoader worker whole chunks: it needs the batching
        sampler.setdefault("batch_size", int(loader.get("batch_size", 1) or 1))
        sampler.setdefault("num_workers", int(loader.get("num_workers", 0) or 0))
    _worker_start_method(split, loader)


def _worker_start_method(split: str, loader) -> None:
    """DataLoader workers over remote Deep Lake data start with ``forkserver``, not ``fork``.

    Deep Lake replaces ``os.fork`` with a version that first joins its native I/O threads; after
    in-process remote reads that are stuck on unresponsive storage, a fork waits for them without
    end (reproduced in ``tests/test_fork_safety.py``). ``forkserver`` workers are forked from a
    clean server process that never did Deep Lake I/O; each reopens the dataset itself
    (``DeepLakeDetDataset.__getstate__``); the user's main script is not run again in them
    (``lakedet.data.workers``). Local data gets them too once this process has opened
    remote data. A ``multiprocessing_context`` the config sets is kept.
    """
    from ..source import open as source

    if not int(loader.get("num_workers", 0) or 0) or loader.get("multiprocessing_context"):
        return
    if not (_reads_remote_data(loader.get("dataset")) or
            (source.remote_io_started and _is_deeplake_dataset_cfg(loader.get("dataset")))):
        return
    from ..data.workers import worker_context

    loader["multiprocessing_context"] = worker_context()
    logger.info(f"lakedet: {split}_dataloader's workers start with forkserver (remote Deep Lake data: a fork "
                "after Deep Lake's remote I/O can hang)")


def _reads_remote_data(cfg) -> bool:
    from ..source.open import is_remote

    if not isinstance(cfg, Mapping):
        return False
    if bare_type(cfg) == "DeepLakeDetDataset":
        path = cfg.get("deeplake_path")  # (an opened object, ds_train, goes as the caller made it)
        return isinstance(path, str) and is_remote(path) and cfg.get("deeplake_dataset") is None
    inner = cfg.get("dataset") or cfg.get("datasets")
    return any(_reads_remote_data(d) for d in (inner if isinstance(inner, (list, tuple)) else [inner]))


def _with_dataset_override(loader_cfg, ds, tensors) -> dict | None:
    if loader_cfg is None:
        return None
    loader = copy.deepcopy(loader_cfg.to_dict() if hasattr(loader_cfg, "to_dict") else dict(loader_cfg))
    if ds is None and tensors is None:
        return loader
    target = loader["dataset"]
    while bare_type(target) != "DeepLakeDetDataset":
        if "dataset" not in target:
            raise ConfigError("ds_train/ds_val given, but the dataloader's dataset is not a "
                              f"DeepLakeDetDataset (type={target.get('type')!r})")
        target = target["dataset"]
    if ds is not None:
        from ..source.open import OpenedDataset

        target["deeplake_dataset"] = OpenedDataset(ds)  # survives mmengine's deep copies
        # a RowRangeView (ds[a:b]) lacks its dataset's schema and metadata: a path, if given, supplies them
        kept = ("deeplake_path", "deeplake_credentials") if type(ds).__name__ == "RowRangeView" else ()
        for key in ("deeplake_path", "deeplake_credentials", "deeplake_commit_id", "deeplake_commit",
                    "deeplake_view_id", "deeplake_query"):
            if key not in kept:
                target.pop(key, None)
    if tensors is not None:
        target["deeplake_tensors"] = dict(tensors)
    return loader


def require_launcher_env(what: str, how: str) -> None:
    """Raise a ConfigError unless torchrun's environment (RANK, WORLD_SIZE, ...) is set."""
    missing = [v for v in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT") if v not in os.environ]
    if missing:
        raise ConfigError(f"{what}, but the launcher environment is missing {missing}; start it with: {how}")


def slurm_to_torch_env() -> None:
    """Set torchrun's variables (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT) from srun's.

    As mmengine's slurm launcher does: ``SLURM_PROCID`` -> RANK, ``SLURM_NTASKS`` -> WORLD_SIZE,
    ``SLURM_LOCALID`` -> LOCAL_RANK (0 when unset), MASTER_PORT kept or 29500, MASTER_ADDR kept or
    the first host of ``SLURM_NODELIST`` (``scontrol show hostname``; a single plain host name is
    used as it is when ``scontrol`` is missing).

    Raises:
        ConfigError: a SLURM_* variable is missing, or the master host cannot be found.
    """
    import shutil
    import subprocess

    missing = [v for v in ("SLURM_PROCID", "SLURM_NTASKS", "SLURM_NODELIST") if v not in os.environ]
    if missing:
        raise ConfigError(f"--launcher slurm, but the environment is missing {missing}; start it with: "
                          "srun -n N python -m lakedet train CONFIG --launcher slurm")
    nodes = os.environ["SLURM_NODELIST"]
    if "MASTER_ADDR" not in os.environ:
        if shutil.which("scontrol"):
            hosts = subprocess.run(["scontrol", "show", "hostname", nodes], capture_output=True, text=True).stdout
            os.environ["MASTER_ADDR"] = hosts.split()[0] if hosts.split() else ""
        elif not any(c in nodes for c in "[],"):
            os.environ["MASTER_ADDR"] = nodes
        if not os.environ.get("MASTER_ADDR"):
            raise ConfigError(f"--launcher slurm: cannot tell the master host from SLURM_NODELIST={nodes!r} "
                              "(no scontrol here); set MASTER_ADDR to the first node's address")
    os.environ.setdefault("MASTER_PORT", "29500")
    os.environ["WORLD_SIZE"] = os.environ["SLURM_NTASKS"]
    os.environ["RANK"] = os.environ["SLURM_PROCID"]
    os.environ["LOCAL_RANK"] = os.environ.get("SLURM_LOCALID", "0")


def _prepare_cpu_distributed(cfg) -> None:
    """Let ``--launcher pytorch`` (torchrun) and ``--launcher slurm`` (srun) run on CPU-only torch.

    mmengine's launchers call ``torch.cuda.set_device`` and wrap the model with
    ``device_ids=[LOCAL_RANK]``; both fail without CUDA. lakedet starts the gloo process group
    itself from the launcher's environment (mmengine then skips its own start) and wraps with
    ``device_ids=None``.
    """
    import torch

    launcher = cfg.get("launcher", "none")
    if launcher not in ("pytorch", "slurm") or torch.cuda.is_available():
        return
    if launcher == "slurm":
        slurm_to_torch_env()
    require_launcher_env("--launcher pytorch", "torchrun --nproc_per_node N -m lakedet train CONFIG --launcher pytorch")
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend="gloo", init_method="env://")
    wrapper = dict(cfg.get("model_wrapper_cfg") or dict(type="MMDistributedDataParallel"))
    wrapper.setdefault("device_ids", None)
    wrapper.setdefault("broadcast_buffers", False)
    cfg.model_wrapper_cfg = wrapper


def end_process_group() -> None:
    """Tear down the process group, if one is up (gloo aborts at interpreter exit when it is left up)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def pretrained_weights(model_cfg, prefix: str = "model") -> list[tuple[str, str]]:
    """``(config key, checkpoint)`` of every ``init_cfg`` of type Pretrained (or ``pretrained=``)."""
    found = []
    if isinstance(model_cfg, Mapping):
        init = model_cfg.get("init_cfg")
        for i, item in enumerate(init if isinstance(init, list) else [init]):
            if isinstance(item, Mapping) and str(item.get("type", "")) == "Pretrained":
                key = f"{prefix}.init_cfg" + (f"[{i}]" if isinstance(init, list) else "")
                found.append((key, str(item.get("checkpoint"))))
        if isinstance(model_cfg.get("pretrained"), str):
            found.append((f"{prefix}.pretrained", model_cfg["pretrained"]))
        for name, value in model_cfg.items():
            if name != "init_cfg":
                found += pretrained_weights(value, f"{prefix}.{name}")
    return found


def _sync_data_preprocessor(model, preprocessor_cfg) -> None:
    """Rebuild a built model's data preprocessor when the translation moved Normalize/Pad into it."""
    from mmdet.registry import MODELS

    wanted = MODELS.build(copy.deepcopy(dict(preprocessor_cfg)))
    current = getattr(model, "data_preprocessor", None)
    same = (current is not None and type(current) is type(wanted)
            and all(getattr(current, k, None) == getattr(wanted, k, None) for k in ("pad_size_divisor", "_channel_conversion"))
            and all(_tensors_equal(getattr(current, k, None), getattr(wanted, k, None)) for k in ("mean", "std")))
    if not same:
        logger.info("lakedet: the model's data_preprocessor now follows the pipeline's Normalize/Pad")
        model.data_preprocessor = wanted


def _tensors_equal(a, b) -> bool:
    import torch

    if a is None or b is None:
        return a is b
    return bool(torch.equal(torch.as_tensor(a).flatten(), torch.as_tensor(b).flatten()))


def build_runner(cfg, model=None, ds_train=None, ds_train_tensors=None, ds_val=None,
                 ds_val_tensors=None, validate: bool = True, timestamp: str | None = None,
                 meta: Mapping | None = None, training: bool = True):
    """An mmengine ``Runner`` for ``cfg`` with lakedet's adaptations (see ``train_detector``).

    ``training=False`` builds a runner that only tests (``lakedet eval``): the config needs
    ``model``, ``test_dataloader`` and ``test_evaluator``, nothing of training.
    """
    _registries()
    from mmengine.config import Config
    from mmengine.runner import Runner

    cfg = copy.deepcopy(cfg) if isinstance(cfg, Config) else Config(copy.deepcopy(dict(cfg)))
    from ..config.translate import is_2x_config, translate_config

    if is_2x_config(cfg):
        given = [split for split, ds in (("train", ds_train), ("val", ds_val)) if ds is not None]
        cfg = translate_config(cfg, given=given)
        if model is not None and "data_preprocessor" in cfg.model:
            _sync_data_preprocessor(model, cfg.model.data_preprocessor)
    needed = ("model", "train_dataloader", "train_cfg", "optim_wrapper") if training else \
        ("model", "test_dataloader", "test_evaluator")
    for key in needed:
        if not cfg.get(key):
            hint = " (a 2.x-style config: data.test, or data.val, with a deeplake_path)" if key.startswith("test") else ""
            raise ConfigError(f"config has no {key!r}{hint}: lakedet needs an MMDetection 3 config "
                              "(or the seed's 2.x-style config with a 'data' section)")
    if not training:
        for key in ("train_dataloader", "train_cfg", "optim_wrapper", "param_scheduler", "val_dataloader"):
            cfg.pop(key, None)
    adapt_config(cfg)
    _prepare_cpu_distributed(cfg)
    cfg.setdefault("work_dir", os.path.join("work_dirs", "lakedet"))
    _seed_of_resumed_run(cfg)
    train_cfg = dict(cfg.train_cfg) if training else None
    if not validate and train_cfg is not None:
        train_cfg.pop("val_interval", None)
        train_cfg.pop("val_begin", None)
    custom_hooks = list(cfg.get("custom_hooks", []) or [])
    custom_hooks.append(dict(type="CheckpointCodecHook", meta=dict(meta or {})))
    custom_hooks.append(dict(type="ClassCountCheckHook"))
    custom_hooks.append(dict(type="LineageHook"))
    custom_hooks.append(dict(type="SkipTrainedBatchesHook"))

    class _Runner(Runner):
        def setup_env(self, env_cfg):
            super().setup_env(env_cfg)
            if timestamp:  # the seed's `timestamp` names the log directory and files
                self._timestamp = str(timestamp)

        def _init_model_weights(self):
            try:
                super()._init_model_weights()
            except Exception as exc:
                found = pretrained_weights(self.cfg.get("model", {}))
                if not found:
                    raise
                key, source = found[0]
                raise ConfigError(f"{key} asks for pretrained weights {source!r}, which cannot be "
                                  f"loaded ({type(exc).__name__}: {exc}); set {key}=None to train from "
                                  f"scratch (e.g. --cfg-options {key}=None) or point it at a local "
                                  "checkpoint file") from exc

    use_val = validate and cfg.get("val_dataloader") is not None
    return _Runner(
        model=model if model is not None else cfg["model"],
        work_dir=cfg["work_dir"],
        train_dataloader=_with_dataset_override(cfg.get("train_dataloader"), ds_train, ds_train_tensors),
        val_dataloader=_with_dataset_override(cfg.get("val_dataloader"), ds_val, ds_val_tensors) if use_val else None,
        test_dataloader=cfg.get("test_dataloader") if cfg.get("test_evaluator") else None,
        train_cfg=train_cfg,
        val_cfg=cfg.get("val_cfg") if use_val else None,
        test_cfg=cfg.get("test_cfg") if cfg.get("test_evaluator") else None,
        auto_scale_lr=cfg.get("auto_scale_lr"),
        optim_wrapper=cfg.get("optim_wrapper"),
        param_scheduler=cfg.get("param_scheduler"),
        val_evaluator=cfg.get("val_evaluator") if use_val else None,
        test_evaluator=cfg.get("test_evaluator"),
        default_hooks=cfg.get("default_hooks"),
        custom_hooks=custom_hooks,
        data_preprocessor=cfg.get("data_preprocessor"),
        load_from=cfg.get("load_from"),
        resume=cfg.get("resume", False),
        launcher=cfg.get("launcher", "none"),
        env_cfg=cfg.get("env_cfg", dict(dist_cfg=dict(backend="nccl"))),
        log_processor=cfg.get("log_processor"),
        log_level=cfg.get("log_level", "INFO"),
        visualizer=cfg.get("visualizer"),
        default_scope=cfg.get("default_scope", "mmdet"),
        randomness=cfg.get("randomness", dict(seed=None)),
        experiment_name=cfg.get("experiment_name"),
        cfg=_redacted(cfg),  # what the runner dumps to the work dir, logs and stores in checkpoints
    )


def _seed_of_resumed_run(cfg) -> None:
    """Resuming a run whose config sets no seed: use the seed the run drew (stored in its
    checkpoint), so the sampler and the DataLoader workers continue with the same data order and
    augmentations (mmengine re-seeds only after building them)."""
    if not cfg.get("resume") or (cfg.get("randomness") or {}).get("seed") is not None:
        return
    path = cfg.get("load_from")
    latest = os.path.join(cfg["work_dir"], "last_checkpoint")
    if not path and os.path.exists(latest):
        with open(latest) as handle:
            path = handle.read().strip()
    if not path or not os.path.exists(path):
        return  # nothing to resume: mmengine starts from scratch and says so
    import torch

    from .checkpoints import allow_mmengine_checkpoints

    allow_mmengine_checkpoints()
    seed = (torch.load(path, map_location="cpu", weights_only=True).get("meta") or {}).get("seed")
    if seed is not None:
        cfg.randomness = dict(cfg.get("randomness") or {}, seed=seed)
        logger.info(f"lakedet: resuming {path} with the seed it was trained with ({seed})")


def _redacted(cfg):
    """A copy of ``cfg`` without secrets (``checkpoints.redact_credentials``: everything under
    ``deeplake_credentials`` but the endpoint and region, and every ``SECRET_KEYS`` value): the
    datasets are built from the loader dicts given to the runner, so only the copy the runner
    writes out and logs loses the secrets."""
    from mmengine.config import Config

    from .checkpoints import redact_credentials

    redacted = Config(redact_credentials(cfg.to_dict()))  # no filename: the file itself holds the secrets
    return Config(redacted.to_dict(), cfg_text=redacted.pretty_text)


def last_metrics(runner, split: str = "val") -> dict[str, float]:
    """The latest evaluation metrics the runner logged, e.g. ``{"coco/bbox_mAP": 0.61, ...}``."""
    prefix = f"{split}/"
    return {key[len(prefix):]: float(buffer.current())
            for key, buffer in runner.message_hub.log_scalars.items()
            if key.startswith(prefix) and "/" in key[len(prefix):]}


def train_detector(model, cfg, ds_train=None, ds_train_tensors=None, ds_val=None, ds_val_tensors=None,
                   distributed: bool = False, timestamp=None, meta=None, validate: bool = True):
    """Train ``model`` as ``cfg`` says, streaming its Deep Lake datasets.

    Args:
        model: the detector (from ``build_detector``).
        cfg: an mmengine ``Config`` (MMDetection 3 style, or the seed's 2.x style).
        ds_train / ds_val: an opened Deep Lake dataset or view; overrides ``deeplake_path``.
        ds_train_tensors / ds_val_tensors: column mappings; override ``deeplake_tensors``.
        distributed: train with the launcher's environment (``torchrun`` sets it); a process group
            started here is torn down after training, one the caller started is left up.
        timestamp: names the log directory and log files.
        meta: stored in every checkpoint under ``meta``.
        validate: run validation every ``train_cfg.val_interval`` epochs.

    Returns:
        The mmengine ``Runner`` after training (``runner.message_hub`` holds the last metrics).

    Raises:
        ConfigError: ``distributed=True`` without a launcher environment, or a config lakedet
            cannot run.
    """
    from mmengine.config import Config

    cfg = copy.deepcopy(cfg) if isinstance(cfg, Config) else Config(copy.deepcopy(dict(cfg)))
    reserved = sorted(set(meta or {}) & {"epoch", "iter", "cfg", "seed", "experiment_name", "time",
                                         "mmengine_version", "dataset_meta", "mmengine"})
    if reserved:
        raise ConfigError(f"meta[{reserved[0]!r}]: mmengine stores its own {reserved} in checkpoints "
                          "(resume reads them); use other key names")
    if distributed:
        require_launcher_env("distributed=True", "torchrun --nproc_per_node N script.py (or use distributed=False)")
        cfg.launcher = "pytorch"
    else:
        cfg.launcher = "none"
    import torch.distributed as dist

    ours = distributed and not dist.is_initialized()  # the group lakedet starts, it also ends
    runner = build_runner(cfg, model=model, ds_train=ds_train, ds_train_tensors=ds_train_tensors,
                          ds_val=ds_val, ds_val_tensors=ds_val_tensors, validate=validate,
                          timestamp=timestamp, meta=meta)
    runner.train()
    if ours:
        end_process_group()
    return runner
