"""The seed's ``build_detector`` / ``train_detector``, and the runner lakedet's entry points build.

Everything a run over Deep Lake data needs is carried by registered components: the dataset,
its loading transforms, the ``DefaultSampler`` / ``InfiniteSampler`` and wrapper stand-ins, the
metrics, and the run hooks mmengine's ``RuntimeInfoHook`` installs (``lakedet.engine.hooks``).
So MMDetection's ``tools/train.py`` / ``tools/test.py`` and a plain ``Runner.from_cfg(cfg)`` run a
config as ``lakedet train`` / ``lakedet eval`` do. What lakedet's own entry points add, all of it
here (``prepare_config``, ``DeepLakeRunner``):

1. the seed's 2.x-style configs (a ``data`` section) are translated to MMDetection 3
   (``lakedet.config.translate``; MMDetection's tools cannot read them);
2. secrets written as values under ``deeplake_credentials`` are hidden (``lakedet.config.secrets``):
   the run reads them, every copy of the config shows ``'<redacted>'`` (through MMDetection's
   tools such a config is refused: give secrets by reference there);
3. ``train_detector``'s arguments: the model object, opened datasets (``ds_train`` / ``ds_val``),
   column mappings, ``timestamp`` (names the log files), ``meta`` (in every checkpoint),
   ``validate``, ``distributed`` (from a plain process: ranks spawned here, ``nprocs``);
4. ``--launcher pytorch`` / ``slurm`` on CPU-only torch (gloo; ``lakedet.engine.launch``);
5. ``DeepLakeRunner`` (mmengine's ``Runner``): an unloadable pretrained checkpoint is an error
   that names the config key to set.
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
import logging
import os
from collections.abc import Mapping

from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from ..config.keys import SOURCE_KEYS
from ..config.secrets import hide_secrets
from ..config.translate import is_2x_config, translate_config
from ..config.walk import bare_type, deeplake_dataset_configs
from ..errors import ConfigError
from ..source import OpenedDataset, is_row_range_view
from .launch import (end_process_group, join_launcher_world, pack_for_ranks, prepare_cpu_distributed, spawn_ranks,
                     spawn_world, unpack_in_rank)

logger = logging.getLogger("lakedet")

__all__ = ["build_detector", "train_detector", "build_runner", "prepare_config", "DeepLakeRunner", "last_metrics",
           "pretrained_weights", "registries"]

#: What ``build_runner`` hands the runner it builds (a model object, a log timestamp).
_GIVEN: contextvars.ContextVar = contextvars.ContextVar("lakedet_runner_inputs", default=None)


def registries() -> None:
    """Register MMDetection's modules and make ``mmdet`` the default scope (lakedet's own are
    registered by ``import lakedet``, or by the ``lakedet`` command before it runs one)."""
    from mmdet.utils import register_all_modules

    register_all_modules(init_default_scope=True)


def build_detector(cfg_model: Mapping):
    """Build an MMDetection detector from the config's ``model`` section.

    Args:
        cfg_model: e.g. ``cfg.model`` of an MMDetection 3 config.

    Returns:
        The ``torch.nn.Module`` detector, weights initialised per ``init_cfg``.
    """
    registries()
    from mmdet.registry import MODELS

    return MODELS.build(copy.deepcopy(dict(cfg_model)))


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


@RUNNERS.register_module()
class DeepLakeRunner(Runner):
    """mmengine's ``Runner``, plus what only a caller in Python can give it: a model object and a
    log timestamp (``train_detector``'s; see ``build_runner``), and an error that names the config
    key when pretrained weights cannot be loaded (offline machines). A config selects it with
    ``runner_type='DeepLakeRunner'``; everything else a run over Deep Lake data needs comes from
    registered components, as with mmengine's own ``Runner``."""

    def __init__(self, *args, **kwargs):
        self._given_model, self._given_timestamp = _GIVEN.get() or (None, None)
        super().__init__(*args, **kwargs)

    def setup_env(self, env_cfg) -> None:
        super().setup_env(env_cfg)
        if self._given_timestamp:  # the seed's `timestamp` names the log directory and files
            self._timestamp = str(self._given_timestamp)

    def build_model(self, model):
        return self._given_model if self._given_model is not None else super().build_model(model)

    def _init_model_weights(self) -> None:
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


def _with_dataset(loader, ds, tensors) -> None:
    """Put an opened dataset (``ds_train`` / ``ds_val``) and a column mapping into a dataloader config."""
    if loader is None or (ds is None and tensors is None):
        return
    found = deeplake_dataset_configs(loader.get("dataset"))
    if len(found) != 1:
        raise ConfigError(f"ds_train/ds_val given, but the dataloader holds {len(found)} DeepLakeDetDataset "
                          f"configs (type={bare_type(loader.get('dataset'))!r}); it needs exactly one to take the object")
    target = found[0]
    if ds is not None:
        target["deeplake_dataset"] = OpenedDataset(ds)  # survives mmengine's deep copies
        # a RowRangeView (ds[a:b]) lacks its dataset's schema and metadata: a path, if given, supplies them
        kept = ("deeplake_path", "deeplake_credentials") if is_row_range_view(ds) else ()
        for key in SOURCE_KEYS:
            if key not in kept:
                target.pop(key, None)
    if tensors is not None:
        target["deeplake_tensors"] = dict(tensors)


def prepare_config(cfg, ds_train=None, ds_train_tensors=None, ds_val=None, ds_val_tensors=None,
                   validate: bool = True, meta: Mapping | None = None, training: bool = True,
                   launcher: str | None = None):
    """A copy of ``cfg`` as lakedet's entry points run it (steps 1-3 of the module docstring).

    ``training=False`` keeps what testing needs (``model``, ``test_dataloader``,
    ``test_evaluator``) and drops training. A config without ``default_scope`` gets MMDetection's
    (where lakedet's stand-ins are registered); one loaded from a YAML or JSON file is written out
    as a Python config (the form that shows hidden secrets as ``'<redacted>'``).

    Raises:
        ConfigError: the config lacks what the run needs, or cannot be translated.
    """
    from mmengine.config import Config

    cfg = copy.deepcopy(cfg) if isinstance(cfg, Config) else Config(copy.deepcopy(dict(cfg)))
    if cfg.filename and not str(cfg.filename).endswith(".py"):
        cfg = Config(cfg.to_dict())  # no file name: mmengine dumps it as <timestamp>.py
    if launcher is not None:
        cfg.launcher = launcher
    cfg.setdefault("default_scope", "mmdet")
    if is_2x_config(cfg):
        given = [split for split, ds in (("train", ds_train), ("val", ds_val)) if ds is not None]
        cfg = translate_config(cfg, given=given)
    needed = ("model", "train_dataloader", "train_cfg", "optim_wrapper") if training else \
        ("model", "test_dataloader", "test_evaluator")
    for key in needed:
        if not cfg.get(key):
            hint = " (a 2.x-style config: data.test, or data.val, with a deeplake_path)" if key.startswith("test") else ""
            raise ConfigError(f"config has no {key!r}{hint}: lakedet needs an MMDetection 3 config "
                              "(or the seed's 2.x-style config with a 'data' section)")
    if not training:
        for key in ("train_dataloader", "train_cfg", "optim_wrapper", "param_scheduler", "val_dataloader",
                    "val_cfg", "val_evaluator"):
            cfg[key] = None
    elif not validate or not cfg.get("val_dataloader"):
        for key in ("val_dataloader", "val_cfg", "val_evaluator"):
            cfg[key] = None
        cfg.train_cfg.pop("val_interval", None)
        cfg.train_cfg.pop("val_begin", None)
    if not cfg.get("test_evaluator"):
        for key in ("test_dataloader", "test_cfg", "test_evaluator"):
            cfg[key] = None
    _with_dataset(cfg.get("train_dataloader"), ds_train, ds_train_tensors)
    _with_dataset(cfg.get("val_dataloader"), ds_val, ds_val_tensors)
    hidden = hide_secrets(cfg)
    if hidden:
        logger.warning("lakedet: %d secret(s) written as values under deeplake_credentials are hidden from the "
                       "config this run writes out; MMDetection's tools refuse such a config: give secrets by "
                       "reference ('env:NAME', 'file:PATH')", hidden)
    if meta:
        reserved = sorted(set(meta) & {"epoch", "iter", "cfg", "seed", "experiment_name", "time",
                                       "mmengine_version", "dataset_meta", "mmengine"})
        if reserved:
            raise ConfigError(f"meta[{reserved[0]!r}]: mmengine stores its own {reserved} in checkpoints "
                              "(resume reads them); use other key names")
        cfg.custom_hooks = list(cfg.get("custom_hooks") or []) + [dict(type="CheckpointCodecHook", meta=dict(meta))]
    cfg.setdefault("work_dir", os.path.join("work_dirs", "lakedet"))
    return cfg


def build_runner(cfg, model=None, timestamp: str | None = None, **prepare):
    """The runner for ``prepare_config(cfg, **prepare)``: ``DeepLakeRunner.from_cfg``, or the
    runner the config names (``runner_type``), as MMDetection's ``tools/train.py`` builds it.

    Args:
        model: a built detector to train (``train_detector``'s); None builds ``cfg.model``.
        timestamp: names the log directory and files (None: the start time).
    """
    registries()
    translated = is_2x_config(cfg)
    cfg = prepare_config(cfg, **prepare)
    if model is not None and translated and "data_preprocessor" in cfg.model:
        _sync_data_preprocessor(model, cfg.model.data_preprocessor)
    prepare_cpu_distributed(cfg)
    with _given_to_runner(model, timestamp):
        if cfg.get("runner_type") and cfg.runner_type != "DeepLakeRunner":
            if model is not None or timestamp:
                raise ConfigError(f"runner_type={cfg.runner_type!r}: a model object or timestamp can only be "
                                  "given to lakedet's DeepLakeRunner (drop runner_type)")
            return RUNNERS.build(cfg)
        return DeepLakeRunner.from_cfg(cfg)


@contextlib.contextmanager
def _given_to_runner(model, timestamp):
    token = _GIVEN.set((model, timestamp) if model is not None or timestamp else None)
    try:
        yield
    finally:
        _GIVEN.reset(token)


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


def last_metrics(runner, split: str = "val") -> dict[str, float]:
    """The latest evaluation metrics the runner logged, e.g. ``{"coco/bbox_mAP": 0.61, ...}``."""
    prefix = f"{split}/"
    return {key[len(prefix):]: float(buffer.current())
            for key, buffer in runner.message_hub.log_scalars.items()
            if key.startswith(prefix) and "/" in key[len(prefix):]}


def train_detector(model, cfg, ds_train=None, ds_train_tensors=None, ds_val=None, ds_val_tensors=None,
                   distributed: bool = False, timestamp=None, meta=None, validate: bool = True, *,
                   nprocs: int | None = None):
    """Train ``model`` as ``cfg`` says, streaming its Deep Lake datasets.

    Args:
        model: the detector (from ``build_detector``); trained in place.
        cfg: an mmengine ``Config`` (MMDetection 3 style, or the seed's 2.x style).
        ds_train / ds_val: an opened Deep Lake dataset or view; overrides ``deeplake_path``.
        ds_train_tensors / ds_val_tensors: column mappings; override ``deeplake_tensors``.
        distributed: train with PyTorch DDP. Under a launcher every process is one rank of the
            launcher's world: ``torchrun`` (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
            ``MASTER_ADDR``, ``MASTER_PORT``), or ``srun -n N python train.py`` (Slurm's variables,
            read as ``--launcher slurm`` reads them). From a plain ``python train.py`` lakedet
            spawns the ranks on this machine, as the seed did: one per GPU of ``cfg.gpu_ids``
            (indices among the visible GPUs; default all of them, or the first ``nprocs``), rank
            ``i`` on ``gpu_ids[i]``; without CUDA, ``nprocs`` CPU ranks (gloo), a number the caller
            must state. One rank is spawned too (the same behaviour and return value as several).
            The script must start its work under ``if __name__ == '__main__':`` (each rank imports
            it again). A process group started here is torn down after training, one the caller
            started is left up.
        timestamp: names the log directory and log files.
        meta: stored in every checkpoint under ``meta``.
        validate: run validation every ``train_cfg.val_interval`` epochs.
        nprocs: how many ranks ``distributed=True`` spawns from a plain process (required on a
            machine without CUDA; on one with CUDA it must match ``cfg.gpu_ids`` when both are
            given). Ignored, with a warning, under a launcher.

    Returns:
        In this process: the mmengine ``Runner`` after training (``runner.message_hub`` holds the
        last metrics). With spawned ranks (their runners stay in their processes): rank 0's last
        validation metrics, e.g. ``{"coco/bbox_mAP": 0.61, ...}`` (empty without validation), and
        ``model`` holds rank 0's trained weights; checkpoints and logs are in ``cfg.work_dir``.

    Raises:
        ConfigError: a config lakedet cannot run; ``distributed=True`` on a machine without CUDA
            and without ``nprocs``; ``gpu_ids`` naming GPUs that are not there; an argument that
            cannot be sent to spawned ranks (e.g. a ``ds[a:b]`` slice: give ``deeplake_path``).
        RankError: a spawned rank failed (names the rank, its exception and traceback); the other
            ranks were stopped.
    """
    if nprocs is not None and not distributed:
        raise ConfigError(f"nprocs={nprocs!r} is the number of ranks distributed=True spawns; pass distributed=True")
    if distributed and not join_launcher_world():
        world, cuda_visible = spawn_world(cfg, nprocs)
        payload = pack_for_ranks(dict(model=model, cfg=cfg, ds_train=ds_train, ds_train_tensors=ds_train_tensors,
                                      ds_val=ds_val, ds_val_tensors=ds_val_tensors, timestamp=timestamp, meta=meta,
                                      validate=validate))
        result = spawn_ranks(_train_in_rank, payload, world, cuda_visible)
        if model is not None:
            _load_trained_weights(model, unpack_in_rank(result["weights"]))
        return result["metrics"]
    if distributed and nprocs is not None:
        logger.warning("lakedet: nprocs=%s ignored: the launcher's world is used (WORLD_SIZE=%s)", nprocs,
                       os.environ["WORLD_SIZE"])
    import torch.distributed as dist

    ours = distributed and not dist.is_initialized()  # the group lakedet starts, it also ends
    runner = build_runner(cfg, model=model, timestamp=timestamp, ds_train=ds_train, ds_train_tensors=ds_train_tensors,
                          ds_val=ds_val, ds_val_tensors=ds_val_tensors, validate=validate, meta=meta,
                          launcher="pytorch" if distributed else "none")
    runner.train()
    if ours:
        end_process_group()
    return runner


def _train_in_rank(payload: bytes) -> dict | None:
    """One rank that ``train_detector`` spawned (its environment is torchrun's): train; rank 0
    returns its last validation metrics and its trained weights."""
    given = unpack_in_rank(payload)
    cfg = given.pop("cfg")
    if cfg.get("custom_imports"):  # mmengine imports them when it reads a config file, as the caller's process did
        from mmengine.utils import import_modules_from_strings

        import_modules_from_strings(**cfg["custom_imports"])
    runner = train_detector(given.pop("model"), cfg, distributed=True, **given)
    if runner.rank != 0:
        return None
    from mmengine.model import is_model_wrapper

    trained = runner.model.module if is_model_wrapper(runner.model) else runner.model
    return dict(metrics=last_metrics(runner), weights=pack_for_ranks(trained.state_dict()))


def _load_trained_weights(model, state) -> None:
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        logger.warning("lakedet: the trained weights did not fit the model passed to train_detector (missing %s, "
                       "unexpected %s); the checkpoints in work_dir hold them", missing[:5], unexpected[:5])
