"""Config translation: the seed's MMDetection 2.x-style config -> an MMDetection 3 config.

Users arrive with configs written like Deep Lake's MMDetection integration document: a ``data``
section (``train``/``val``/``test`` with ``deeplake_*`` keys and 2.x pipelines), ``evaluation``,
``optimizer``, ``lr_config``, ``runner`` ... ``translate_config`` rewrites them into
``train_dataloader`` / ``val_evaluator`` / ``optim_wrapper`` / ``param_scheduler`` ... following
MMDetection's 2.x -> 3.x migration guide, and logs one summary of what it changed.
Anything it cannot translate is a ``ConfigError`` naming it. ``docs/config-translation.md``
has the table.
"""

from __future__ import annotations

import copy
import logging
import warnings
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import ConfigError, did_you_mean
from .keys import (DATALOADER_KEYS, METRIC_FORMATS, SPLIT_KEYS, TOP_LEVEL_KEYS, check_keys, check_top_level,
                   loader_type, metrics_format)
from .walk import DATASET_TYPE, bare_type, leaf_datasets

__all__ = ["is_2x_config", "translate_config", "merge_options", "TRANSLATED_KEYS", "translate_pipeline"]

logger = logging.getLogger("lakedet")

_WRAPPERS = ("RepeatDataset", "ClassBalancedDataset", "ConcatDataset", "MultiImageMixDataset")
#: 2.x keys of a split besides ``deeplake_*`` that are understood (the rest is an error).
_SPLIT_OTHER_KEYS = ("type", "pipeline", "classes", "test_mode", "filter_empty_gt", "times",
                     "oversample_thr", "dataset", "datasets", "skip_bad_images", "samples_per_gpu",
                     "workers_per_gpu")
_PACK_META_TEST = ("img_id", "img_path", "ori_shape", "img_shape", "scale_factor")
#: Top-level 2.x keys with no MMDetection 3 meaning that are dropped (logged).
_DROPPED = ("workflow", "dist_params", "gpu_ids", "opencv_num_threads", "mp_start_method", "device")
#: Top-level 2.x keys lakedet cannot translate.
_UNTRANSLATABLE = ("momentum_config", "fp16")
#: Keys of ``data`` besides the splits: loader settings shared by the splits.
_DATA_LOADER_KEYS = ("samples_per_gpu", "workers_per_gpu", "persistent_workers")
#: ``data.train_dataloader`` / ``val_dataloader`` / ``test_dataloader`` keys (MMDetection 2.x's
#: per-split overrides of ``build_dataloader``'s arguments) -> what they become.
_SPLIT_LOADER_KEYS = ("samples_per_gpu", "workers_per_gpu", "shuffle", "persistent_workers", "drop_last",
                      "pin_memory", "seed", "class_aware_sampler")
#: ``build_dataloader`` arguments of 2.x that mmengine decides itself (dropped, logged).
_SPLIT_LOADER_DROPPED = ("dist", "num_gpus", "runner_type", "prefetch_num")
#: Transforms that mix several images: MMDetection 3 runs them in a ``MultiImageMixDataset``.
_MIXING = ("Mosaic", "MixUp", "CopyPaste")


#: Top-level keys a 2.x-style config is written in, which ``translate_config`` consumes.
TRANSLATED_KEYS = ("data", "evaluation", "optimizer", "optimizer_config", "runner", "total_epochs", "lr_config",
                   "checkpoint_config", "log_config", "resume_from", "seed") + TOP_LEVEL_KEYS + _DROPPED


def merge_options(cfg, options: Mapping | None):
    """Apply ``--cfg-options`` to a config of either style; return the MMDetection 3 config.

    On a 2.x-style config, options on the keys it is written in (``data.*``, ``runner.*``,
    ``evaluation.*`` ... see ``TRANSLATED_KEYS``) are applied before the translation; the others
    (``train_dataloader.*``, ``model.*``, ``train_cfg.*`` ...) after it, so they are not
    overwritten by what ``data`` translates to.
    """
    options = dict(options or {})
    if not is_2x_config(cfg):
        cfg.merge_from_dict(options)
        return cfg
    before = {k: v for k, v in options.items() if k.split(".")[0] in TRANSLATED_KEYS}
    cfg.merge_from_dict(before)
    cfg = translate_config(cfg)
    cfg.merge_from_dict({k: v for k, v in options.items() if k not in before})
    return cfg


def is_2x_config(cfg: Mapping) -> bool:
    """True when the config has the seed's ``data=dict(train=..., ...)`` section."""
    data = cfg.get("data")
    return isinstance(data, Mapping) and any(k in data for k in ("train", "val", "test"))


class _Changes:
    def __init__(self):
        self.rows: list[tuple[str, str]] = []
        self.normalize: tuple | None = None  # (values, where) of the first Normalize translated
        self.replaced_loaders: list[str] = []  # file loaders that lakedet's row loaders stand in for

    def add(self, old: str, new: str) -> None:
        self.rows.append((old, new))

    def log(self) -> None:
        if self.rows:
            width = max(len(old) for old, _ in self.rows)
            lines = "\n".join(f"  {old.ljust(width)} -> {new}" for old, new in self.rows)
            logger.info("lakedet translated the 2.x-style config to MMDetection 3:\n%s", lines)


def translate_config(cfg, given: Collection[str] = ()):
    """Translate a seed-style (MMDetection 2.x) config into an MMDetection 3 config.

    Args:
        cfg: an mmengine ``Config`` (already merged with its ``_base_``).
        given: splits (``"train"``, ``"val"``) whose datasets the caller passes as opened objects
            (``train_detector(ds_train=..., ds_val=...)``): they need no ``deeplake_path``.

    Returns:
        A new ``Config``; keys of the MMDetection 3 base that the 2.x keys replace are overwritten.

    Raises:
        ConfigError: an unknown ``deeplake_*`` key, a bad value, or a 2.x key or transform
            that cannot be translated (the message names it).
    """
    from mmengine.config import Config

    src = cfg.to_dict() if hasattr(cfg, "to_dict") else copy.deepcopy(dict(cfg))
    out = {k: v for k, v in src.items() if k not in ("data", "evaluation")}
    changes = _Changes()
    _check_top_level(src)
    loader = loader_type(src.get("deeplake_dataloader_type"))
    chosen_format = metrics_format(src.get("deeplake_metrics_format"))
    model = out.setdefault("model", {})
    data = dict(src["data"])
    known = ["train", "val", "test", *_DATA_LOADER_KEYS, "train_dataloader", "val_dataloader", "test_dataloader"]
    unknown = set(data) - set(known)
    if unknown:
        key = min(unknown)
        raise ConfigError(f"data.{key}: unknown key{did_you_mean(key, known)}; data holds {', '.join(known)}")
    _warn_unused_file_keys(src)
    pathless: set[str] = set()
    for split in ("train", "val", "test"):
        if split not in data:
            continue
        if not _has_source(data[split]) and split not in given:
            if split == "train":
                raise ConfigError("data.train.deeplake_path is missing: give the Deep Lake dataset URL, or pass "
                                  "the opened dataset as train_detector(..., ds_train=...)")
            logger.warning(f"data.{split} has no deeplake_path and no dataset object was given for it: "
                           f"{'training runs without validation' if split == 'val' else 'no test split'} "
                           f"(set data.{split}.deeplake_path{', or pass ds_val=...' if split == 'val' else ''})")
            changes.add(f"data.{split} (no deeplake_path)", f"no {split}_dataloader")
            data.pop(split)
            pathless.add(split)
            continue
        translated = _translate_split(split, data[split], data, src.get(f"{split}_dataloader") or {},
                                      model, loader, changes)
        out[f"{split}_dataloader"] = translated
        changes.add(f"data.{split}", f"{split}_dataloader (DeepLakeDetDataset, batch_size={translated['batch_size']}, "
                                     f"num_workers={translated['num_workers']})")
    if "val" in data and "test" not in data and "test" not in pathless:
        out["test_dataloader"] = copy.deepcopy(out["val_dataloader"])
        changes.add("data.val", "test_dataloader (no data.test)")
    _translate_evaluation(src, out, chosen_format, changes)
    for split in ("val", "test"):
        if split not in data and not (split == "test" and "test_dataloader" in out and "val" in data):
            # no Deep Lake split: the MMDetection 3 base config's own (file-based) one must not be used
            removed = [key for key in (f"{split}_dataloader", f"{split}_evaluator", f"{split}_cfg")
                       if out.pop(key, None) is not None]
            if removed:
                changes.add(f"(no data.{split})", f"{split}_dataloader/{split}_evaluator of the base config removed")
            if split == "val":
                out.setdefault("train_cfg", {}).pop("val_interval", None)
    _translate_schedule(src, out, changes)
    if "seed" in src:  # tools/train.py of 2.x put --seed there; MMDetection 3 reads randomness.seed
        seed = out.pop("seed")
        if seed is not None:
            out["randomness"] = dict(out.get("randomness") or {}, seed=int(seed))
            changes.add("seed", f"randomness.seed={int(seed)}")
    for key in _DROPPED:
        if key in out:
            out.pop(key)
            changes.add(key, "(dropped: no MMDetection 3 meaning)")
    changes.log()
    if changes.replaced_loaders:  # the seed warned that it skipped them; lakedet says what replaces them
        warnings.warn(f"{', '.join(changes.replaced_loaders)}: images and annotations are read from the Deep Lake "
                      "row (deeplake_tensors), not from files: LoadImageFromFile is replaced by LoadImageFromDeepLake "
                      "and LoadAnnotations by LoadDeepLakeAnnotations (with_bbox / with_mask / poly2mask kept)",
                      UserWarning, stacklevel=2)
    return Config(out)


# --- top level --------------------------------------------------------------------------------

def _check_top_level(src: Mapping) -> None:
    check_top_level(src)
    for key in _UNTRANSLATABLE:
        if src.get(key):
            raise ConfigError(f"{key}: this MMDetection 2.x setting has no automatic translation; "
                              "write its MMDetection 3 form (see MMDetection's migration guide)")


# --- data -------------------------------------------------------------------------------------

def _translate_split(split: str, spec, data: Mapping, base_loader: Mapping, model: dict,
                     loader_type: str, changes: _Changes) -> dict:
    """One split's dataloader. Settings, strongest first: the split's ``deeplake_dataloader``,
    ``data.<split>_dataloader`` (MMDetection 2.x's per-split override), ``data.samples_per_gpu`` /
    ``workers_per_gpu`` (for val/test: the split's own ``samples_per_gpu``, else 1, as in 2.x)."""
    where = f"data.{split}"
    dataset = _translate_dataset(spec, where, split != "train", model, loader_type, changes)
    options = _dataloader_options(spec, where)
    override = _split_loader_options(data.get(f"{split}_dataloader"), f"data.{split}_dataloader", changes)
    if split == "train":
        default_batch = data.get("samples_per_gpu", base_loader.get("batch_size", 2))
    else:  # MMDetection 2.x evaluated with one image per GPU unless told otherwise
        default_batch = _split_value(spec, "samples_per_gpu", 1)
    batch_size = options.get("batch_size", override.get("samples_per_gpu", default_batch))
    workers = options.get("num_workers", override.get(
        "workers_per_gpu", data.get("workers_per_gpu", base_loader.get("num_workers", 2))))
    shuffle = options.get("shuffle", override.get("shuffle", split == "train"))
    persistent = options.get("persistent_workers", override.get(
        "persistent_workers", data.get("persistent_workers", int(workers) > 0)))
    sampler = dict(type="DefaultSampler", shuffle=bool(shuffle))
    if options.get("order") is not None:  # ShardedRowSampler's, which lakedet puts in DefaultSampler's place
        sampler["order"] = str(options["order"])
    if override.get("seed") is not None:
        sampler["seed"] = int(override["seed"])
    if override.get("class_aware_sampler"):
        sampler = dict(type="ClassAwareSampler", **dict(override["class_aware_sampler"]))
    loader = dict(batch_size=int(batch_size), num_workers=int(workers),
                  persistent_workers=bool(persistent) and int(workers) > 0,
                  sampler=sampler, dataset=dataset)
    if split != "train":
        loader["drop_last"] = False
    for key in ("drop_last", "pin_memory"):
        if key in override:
            loader[key] = bool(override[key])
    return loader


def _split_loader_options(options, where: str, changes: _Changes) -> dict:
    """Check ``data.<split>_dataloader`` (2.x ``build_dataloader`` arguments)."""
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise ConfigError(f"{where} must be a dict like {{'samples_per_gpu': 2, 'shuffle': False}}, "
                          f"got {type(options).__name__}")
    known = _SPLIT_LOADER_KEYS + _SPLIT_LOADER_DROPPED
    for key, value in options.items():
        if key not in known:
            raise ConfigError(f"{where}: unknown key {key!r}{did_you_mean(key, known)}; "
                              f"MMDetection 2.x's dataloader keys are {list(known)}")
        if key in ("samples_per_gpu", "workers_per_gpu") and (not isinstance(value, int) or isinstance(value, bool)
                                                             or value < (1 if key == "samples_per_gpu" else 0)):
            raise ConfigError(f"{where}[{key!r}]={value!r}: expected an integer "
                              f">= {1 if key == 'samples_per_gpu' else 0}")
        if key == "class_aware_sampler" and value is not None and not isinstance(value, Mapping):
            raise ConfigError(f"{where}['class_aware_sampler'] must be a dict like {{'num_sample_class': 1}}")
    dropped = [k for k in options if k in _SPLIT_LOADER_DROPPED]
    if dropped:
        changes.add(f"{where}{dropped}", "(dropped: mmengine sets them from the launcher)")
    kept = {k: v for k, v in options.items() if k not in _SPLIT_LOADER_DROPPED}
    if kept:
        changes.add(where, f"{where.split('.')[-1]} settings {kept}")
    return kept


def _has_source(spec) -> bool:
    """Whether a split names its Deep Lake data (a path, or wrappers whose datasets all do)."""
    leaves = list(leaf_datasets(spec))
    return bool(leaves) and all(not isinstance(leaf, Mapping) or bool(leaf.get("deeplake_path")) for leaf in leaves)


def _warn_unused_file_keys(src: Mapping) -> None:
    """The seed's warning: file-dataset settings left in a config do nothing for Deep Lake splits."""
    unused = [f"{k}={src[k]!r}" for k in ("dataset_type", "data_root") if src.get(k) not in (None, "")]
    if unused:
        warnings.warn(f"{' and '.join(unused)} are not used: lakedet reads data.train / data.val / data.test "
                      "from Deep Lake (deeplake_path, or the ds_train / ds_val objects), not from files",
                      UserWarning, stacklevel=3)


def _split_value(spec, key, default):
    return spec.get(key, default) if isinstance(spec, Mapping) else default


def _dataloader_options(spec, where: str) -> dict:
    if not isinstance(spec, Mapping):
        return {}
    options = spec.get("deeplake_dataloader") or {}
    if not isinstance(options, Mapping):
        raise ConfigError(f"{where}.deeplake_dataloader must be a dict like "
                          "{'shuffle': True, 'batch_size': 4, 'num_workers': 2}")
    for key, value in options.items():
        if key not in DATALOADER_KEYS:
            raise ConfigError(f"{where}.deeplake_dataloader: unknown key {key!r}"
                              f"{did_you_mean(key, DATALOADER_KEYS)}; keys are {list(DATALOADER_KEYS)}")
        if key in ("batch_size", "num_workers") and (not isinstance(value, int) or isinstance(value, bool)
                                                    or value < (1 if key == "batch_size" else 0)):
            raise ConfigError(f"{where}.deeplake_dataloader[{key!r}]={value!r}: expected an integer "
                              f">= {1 if key == 'batch_size' else 0}")
    return dict(options)


def _translate_dataset(spec, where: str, test_mode: bool, model: dict, loader_type: str,
                       changes: _Changes, packs: bool = True) -> dict:
    if isinstance(spec, Sequence) and not isinstance(spec, (str, bytes)):  # 2.x: a list concatenates
        return dict(type="ConcatDataset", datasets=[
            _translate_dataset(s, f"{where}[{i}]", test_mode, model, loader_type, changes)
            for i, s in enumerate(spec)])
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{where} must be a dict, got {type(spec).__name__}")
    kind = bare_type(spec)
    if kind in _WRAPPERS:
        return _translate_wrapper(kind, spec, where, test_mode, model, loader_type, changes)
    check_keys(spec, SPLIT_KEYS, where)
    for key in spec:
        if not key.startswith("deeplake_") and key not in _SPLIT_OTHER_KEYS:
            raise ConfigError(f"{where}.{key}: this 2.x dataset key has no meaning for a Deep Lake "
                              f"dataset; set deeplake_path (and deeplake_tensors) instead")
    if not test_mode and any(isinstance(s, Mapping) and bare_type(s) in _MIXING for s in spec.get("pipeline") or []):
        return _mixing_wrapper(spec, where, model, loader_type, changes)
    dataset = dict(type=DATASET_TYPE, test_mode=test_mode, deeplake_dataloader_type=loader_type)
    for key in SPLIT_KEYS:
        if key != "deeplake_dataloader" and spec.get(key) not in (None, "", {}):
            dataset[key] = copy.deepcopy(spec[key])
    credentials = dataset.get("deeplake_credentials")
    if credentials is not None:
        dataset["deeplake_credentials"] = {k: v for k, v in credentials.items() if v not in (None, "")}
    if spec.get("classes"):  # selected by name (DeepLakeDetDataset); 2.x also took a file of names
        classes = spec["classes"]
        if isinstance(classes, str):
            if not Path(classes).is_file():
                raise ConfigError(f"{where}.classes = {classes!r}: no such file; give the class names as a list, "
                                  "or a file with one name per line")
            classes = [line.strip() for line in Path(classes).read_text().splitlines() if line.strip()]
        dataset["metainfo"] = dict(classes=tuple(classes))
    if spec.get("filter_empty_gt") and not test_mode:
        dataset["filter_cfg"] = dict(filter_empty_gt=True)
    if "skip_bad_images" in spec:
        dataset["skip_bad_images"] = bool(spec["skip_bad_images"])
    dataset["pipeline"] = translate_pipeline(spec.get("pipeline") or [], f"{where}.pipeline", model,
                                             changes, test_mode=test_mode, packs=packs)
    return dataset


def _mixing_wrapper(spec, where, model, loader_type, changes) -> dict:
    """A pipeline with Mosaic / MixUp / CopyPaste: those take other rows' samples
    (``mix_results``), which MMDetection 3 supplies from a ``MultiImageMixDataset``. The steps before
    the first mixing one load each image (inner dataset); the rest run on the mixed sample."""
    pipeline = list(spec.get("pipeline") or [])
    first = next(i for i, s in enumerate(pipeline) if isinstance(s, Mapping) and bare_type(s) in _MIXING)
    inner = dict(spec, pipeline=pipeline[:first])
    wrapper = dict(type="MultiImageMixDataset", dataset=inner, pipeline=pipeline[first:])
    changes.add(f"{where}.pipeline[{first}] ({bare_type(pipeline[first])})",
                f"MultiImageMixDataset(pipeline=steps {first}..) around the Deep Lake dataset (steps 0..{first - 1})")
    return _translate_wrapper("MultiImageMixDataset", wrapper, where, False, model, loader_type, changes)


def _translate_wrapper(kind, spec, where, test_mode, model, loader_type, changes) -> dict:
    wrapper = {k: copy.deepcopy(v) for k, v in spec.items() if k not in ("dataset", "datasets", "pipeline")}
    if kind == "ConcatDataset":
        inner = spec.get("datasets") or []
        wrapper["datasets"] = [_translate_dataset(s, f"{where}.datasets[{i}]", test_mode, model,
                                                  loader_type, changes) for i, s in enumerate(inner)]
    else:
        # a MultiImageMixDataset's inner samples are mixed before they are packed
        wrapper["dataset"] = _translate_dataset(spec.get("dataset"), f"{where}.dataset", test_mode, model,
                                                loader_type, changes, packs=kind != "MultiImageMixDataset")
    if kind == "MultiImageMixDataset":
        wrapper["pipeline"] = translate_pipeline(spec.get("pipeline") or [], f"{where}.pipeline", model,
                                                 changes, test_mode=test_mode, loads=False)
    return wrapper


# --- pipelines --------------------------------------------------------------------------------

def translate_pipeline(pipeline: Sequence, where: str, model: dict, changes: _Changes | None = None,
                       test_mode: bool = False, loads: bool = True, packs: bool = True) -> list:
    """Translate a 2.x pipeline (list of transform dicts) into MMDetection 3 transforms.

    ``Normalize`` and ``Pad`` move into ``model['data_preprocessor']``; ``DefaultFormatBundle`` +
    ``Collect`` / ``ImageToTensor`` become ``PackDetInputs``; ``Resize(img_scale=...)`` becomes
    ``Resize`` / ``RandomResize`` / ``RandomChoiceResize`` with the same sampling;
    ``RandomFlip(flip_ratio)`` becomes ``RandomFlip(prob)``; ``MultiScaleFlipAug`` with one scale
    and no flip is unrolled. 3.x transforms pass through unchanged. ``loads``: a dataset's own
    pipeline (an image loader is put in front); ``packs``: ``PackDetInputs`` is added at the end
    when missing (not for the inner dataset of a ``MultiImageMixDataset``).
    """
    changes = changes or _Changes()
    out: list[dict] = []
    packed = False
    for i, step in enumerate(pipeline):
        if not isinstance(step, Mapping) or "type" not in step:
            raise ConfigError(f"{where}[{i}]: a transform must be a dict with a 'type', got {step!r}")
        step = copy.deepcopy(dict(step))
        kind = bare_type(step)
        here = f"{where}[{i}] ({kind})"
        if kind == "Normalize":
            _move_normalize(step, model, here, changes)
        elif kind == "Pad":
            _move_pad(step, model, here, changes)
        elif kind in ("DefaultFormatBundle", "ImageToTensor", "ToTensor", "Transpose"):
            continue
        elif kind == "Collect":
            extra = [k for k in step.get("meta_keys", ()) if k not in _PACK_META_TEST]
            pack = dict(type="PackDetInputs")
            if test_mode or extra:
                pack["meta_keys"] = tuple(dict.fromkeys(list(_PACK_META_TEST) + extra))
            out.append(pack)
            packed = True
            changes.add(here, "PackDetInputs")
        elif kind == "Resize":
            out.append(_translate_resize(step, here, changes))
        elif kind == "RandomFlip":
            out.append(_translate_flip(step, here, changes))
        elif kind == "MultiScaleFlipAug":
            inner = _translate_multiscale(step, here, model, changes)
            packed = packed or any(s["type"] == "PackDetInputs" for s in inner)
            out.extend(inner)
        else:
            out.append(_checked_3x_transform(step, here))
    replaced = [f"{where}[{i}] ({bare_type(s)})" for i, s in enumerate(pipeline)
                if bare_type(s) in ("LoadImageFromFile", "LoadAnnotations")]
    if replaced:
        changes.replaced_loaders.extend(replaced)
    if loads and not any(bare_type(s) in ("LoadImageFromFile", "LoadImageFromDeepLake") for s in out):
        out.insert(0, dict(type="LoadImageFromFile"))
        changes.add(f"{where}", "LoadImageFromFile added in front (lakedet reads the row)")
    if test_mode and loads and not any(bare_type(s) == "LoadAnnotations" for s in out):
        # ground truth for VOC-style metrics, loaded after resizing so it stays in original pixels
        position = next((k for k, s in enumerate(out) if s["type"] == "PackDetInputs"), len(out))
        out.insert(position, dict(type="LoadAnnotations", with_bbox=True))
    if loads and packs and not packed:
        out.append(dict(type="PackDetInputs", meta_keys=_PACK_META_TEST) if test_mode else dict(type="PackDetInputs"))
    return out


def _move_normalize(step, model, here, changes):
    values = (list(step.get("mean", [])), list(step.get("std", [])), bool(step.get("to_rgb", True)))
    if changes.normalize and changes.normalize[0] != values:
        raise ConfigError(f"{here}: Normalize{values} differs from {changes.normalize[1]}'s "
                          f"Normalize{changes.normalize[0]}; MMDetection 3 normalizes once, in "
                          "model.data_preprocessor, so every pipeline must use the same values")
    changes.normalize = changes.normalize or (values, here)
    pre = model.setdefault("data_preprocessor", dict(type="DetDataPreprocessor"))
    if "mean" in step:
        pre["mean"] = list(step["mean"])
    if "std" in step:
        pre["std"] = list(step["std"])
    pre["bgr_to_rgb"] = bool(step.get("to_rgb", True))
    changes.add(here, f"model.data_preprocessor (mean={pre.get('mean')}, std={pre.get('std')}, "
                      f"bgr_to_rgb={pre['bgr_to_rgb']})")


def _move_pad(step, model, here, changes):
    pre = model.setdefault("data_preprocessor", dict(type="DetDataPreprocessor"))
    unknown = sorted(set(step) - {"type", "size_divisor", "size", "pad_val"})
    if unknown:
        raise ConfigError(f"{here}: Pad({', '.join(unknown)}=...) has no translation; Pad takes size_divisor "
                          "and pad_val here (they move into model.data_preprocessor)")
    pad_val = step.get("pad_val")
    if pad_val is not None:  # a number, or 2.x's dict(img=..., masks=..., seg=...)
        values = dict(pad_val) if isinstance(pad_val, Mapping) else dict(img=pad_val)
        for old, new in (("img", "pad_value"), ("masks", "mask_pad_value"), ("seg", "seg_pad_value")):
            if old in values:
                value = values.pop(old)
                pre[new] = value if isinstance(value, (int, float)) else list(value)
        if values:
            raise ConfigError(f"{here}: Pad(pad_val={pad_val!r}): unknown keys {sorted(values)}; "
                              "pad_val is a number or dict(img=..., masks=..., seg=...)")
        changes.add(f"{here}.pad_val", f"model.data_preprocessor pad values "
                                       f"{ {k: pre[k] for k in ('pad_value', 'mask_pad_value', 'seg_pad_value') if k in pre} }")
    if step.get("size_divisor"):
        pre["pad_size_divisor"] = int(step["size_divisor"])
        changes.add(here, f"model.data_preprocessor.pad_size_divisor={pre['pad_size_divisor']}")
    elif step.get("size"):
        raise ConfigError(f"{here}: Pad(size=...) has no data_preprocessor equivalent; use the "
                          "MMDetection 3 transform Pad(size=...) after PackDetInputs' inputs are built, "
                          "or Pad(size_divisor=...)")
    elif pad_val is None:
        changes.add(here, "(dropped: padding is done by model.data_preprocessor)")


def _scales(value) -> list[tuple[int, int]]:
    if value is None:
        return []
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(isinstance(v, (int, float)) for v in value):
        return [tuple(int(v) for v in value)]
    return [tuple(int(v) for v in s) for s in value]


def _translate_resize(step, here, changes) -> dict:
    if "scale" in step and "img_scale" not in step:
        return _checked_3x_transform(step, here)  # already 3.x
    scales = _scales(step.get("img_scale"))
    keep_ratio = bool(step.get("keep_ratio", True))
    mode = step.get("multiscale_mode", "range")
    if step.get("ratio_range") is not None:
        if len(scales) != 1:
            raise ConfigError(f"{here}: ratio_range needs exactly one img_scale, got {scales}")
        new = dict(type="RandomResize", scale=scales[0], ratio_range=tuple(step["ratio_range"]),
                   keep_ratio=keep_ratio)
    elif len(scales) == 0:
        new = dict(type="Resize", scale=None, keep_ratio=keep_ratio)  # filled by MultiScaleFlipAug
    elif len(scales) == 1:
        new = dict(type="Resize", scale=scales[0], keep_ratio=keep_ratio)
    elif mode == "range":
        if len(scales) != 2:
            raise ConfigError(f"{here}: multiscale_mode='range' needs exactly two img_scale values, got {scales}")
        new = dict(type="RandomResize", scale=scales, keep_ratio=keep_ratio)
    elif mode == "value":
        new = dict(type="RandomChoiceResize", scales=scales, keep_ratio=keep_ratio)
    else:
        raise ConfigError(f"{here}: unknown multiscale_mode={mode!r}; expected 'range' or 'value'")
    for key in ("bbox_clip_border", "backend", "interpolation"):
        if key in step:
            new[key] = step[key]
    if new.get("scale", 0) is not None:  # a scale-less Resize is completed by MultiScaleFlipAug
        changes.add(here, f"{new['type']}({', '.join(f'{k}={v}' for k, v in new.items() if k != 'type')})")
    return new


def _translate_flip(step, here, changes) -> dict:
    if "flip_ratio" not in step:
        return _checked_3x_transform(step, here)
    new = dict(type="RandomFlip", prob=step["flip_ratio"] if step["flip_ratio"] is not None else 0.0)
    if "direction" in step:
        new["direction"] = step["direction"]
    changes.add(here, f"RandomFlip(prob={new['prob']})")
    return new


def _translate_multiscale(step, here, model, changes) -> list:
    if step.get("img_scale") is None:
        raise ConfigError(f"{here}: only MultiScaleFlipAug(img_scale=...) translates (scale_factor does not); "
                          "write the MMDetection 3 Resize(scale_factor=...) yourself")
    scales = _scales(step.get("img_scale"))
    flip = bool(step.get("flip", False))
    if len(scales) != 1 or flip:
        raise ConfigError(f"{here}: MultiScaleFlipAug with several scales or flip=True is test-time "
                          "augmentation; in MMDetection 3 write TestTimeAug in the pipeline and a "
                          "tta_model (see MMDetection's TTA docs). One scale and flip=False translate.")
    inner = translate_pipeline(step.get("transforms") or [], f"{here}.transforms", model, changes,
                               test_mode=True, loads=False)
    result = []
    for t in inner:
        if t["type"] == "Resize" and t.get("scale") is None:
            t = dict(t, scale=scales[0])
        if t["type"] == "RandomFlip" and not t.get("prob"):
            continue  # flip=False: a RandomFlip inside does nothing
        result.append(t)
    if not any(t["type"] == "Resize" for t in result):
        result.insert(0, dict(type="Resize", scale=scales[0], keep_ratio=True))
    changes.add(here, f"unrolled: {[t['type'] for t in result]} at scale {scales[0]}")
    return result


def _checked_3x_transform(step: dict, here: str) -> dict:
    from mmdet.registry import TRANSFORMS
    from mmdet.utils import register_all_modules

    register_all_modules(init_default_scope=False)
    kind = str(step["type"])
    if TRANSFORMS.get(kind) is None:
        names = list(TRANSFORMS.module_dict)
        raise ConfigError(f"{here}: no transform {kind!r} in MMDetection 3{did_you_mean(kind.split('.')[-1], names)}; "
                          "it cannot be translated")
    return step


# --- evaluation and schedule --------------------------------------------------------------------

def _translate_evaluation(src, out, chosen_format: str, changes) -> None:
    evaluation = src.get("evaluation")
    if evaluation is None and "deeplake_metrics_format" not in src:
        return
    evaluation = dict(evaluation or {})
    metric = evaluation.pop("metric", None)
    interval = evaluation.pop("interval", None)
    if chosen_format == "COCO":
        metrics = [metric] if isinstance(metric, str) else list(metric or ["bbox"])
        bad = [m for m in metrics if m not in ("bbox", "segm", "proposal", "proposal_fast")]
        if bad:
            raise ConfigError(f"evaluation.metric={metric!r}: COCO metrics are 'bbox' and 'segm' "
                              f"(got {bad[0]!r}{did_you_mean(str(bad[0]), ['bbox', 'segm'])})")
        evaluator = dict(type="DeepLakeCocoMetric", metric=metrics if len(metrics) > 1 else metrics[0])
        for key in ("classwise", "iou_thrs", "proposal_nums"):
            if key in evaluation:
                evaluator[key] = evaluation.pop(key)
    else:
        metrics = [metric] if isinstance(metric, str) else list(metric or ["mAP"])
        bad = [m for m in metrics if m not in ("mAP", "recall", "bbox")]
        if bad:
            raise ConfigError(f"evaluation.metric={metric!r}: Pascal VOC metrics are 'mAP' and 'recall'")
        voc = list(dict.fromkeys("recall" if m == "recall" else "mAP" for m in metrics))
        options = dict(eval_mode=evaluation.pop("eval_mode", "11points"))
        if "iou_thr" in evaluation:  # 2.x VOCDataset.evaluate(iou_thr=0.5 or a list)
            if "iou_thrs" in evaluation:
                raise ConfigError("evaluation.iou_thr and evaluation.iou_thrs are both set; give one")
            evaluation["iou_thrs"] = evaluation.pop("iou_thr")
        for key in ("iou_thrs", "scale_ranges", "proposal_nums"):
            if key in evaluation:
                options[key] = evaluation.pop(key)
        evaluators = [dict(type="DeepLakeVOCMetric", metric=m, **options) for m in voc]
        evaluator = evaluators if len(evaluators) > 1 else evaluators[0]
    for key in ("save_best", "rule"):
        if key in evaluation:
            hooks = out.setdefault("default_hooks", {})
            hooks.setdefault("checkpoint", dict(type="CheckpointHook"))[key] = evaluation.pop(key)
    for key in list(evaluation):
        raise ConfigError(f"evaluation.{key}: no MMDetection 3 translation; evaluation takes metric, "
                          "interval, classwise, iou_thrs (iou_thr), eval_mode, save_best, rule")
    out["val_evaluator"] = evaluator
    out["test_evaluator"] = copy.deepcopy(evaluator)
    changes.add("evaluation.metric / deeplake_metrics_format", f"val_evaluator = {evaluator}")
    if interval is not None:
        out.setdefault("train_cfg", {})["val_interval"] = int(interval)
        changes.add("evaluation.interval", f"train_cfg.val_interval={int(interval)}")


def _translate_schedule(src, out, changes) -> None:
    if "optimizer" in src:
        optimizer = dict(src["optimizer"])
        wrapper = dict(type="OptimWrapper", optimizer=optimizer)
        paramwise = optimizer.pop("paramwise_cfg", None)
        if paramwise:
            wrapper["paramwise_cfg"] = paramwise
        grad_clip = (src.get("optimizer_config") or {}).get("grad_clip")
        if grad_clip:
            wrapper["clip_grad"] = dict(grad_clip)
        out["optim_wrapper"] = wrapper
        out.pop("optimizer", None)
        changes.add("optimizer (+ optimizer_config.grad_clip)", f"optim_wrapper = {wrapper}")
    if "optimizer_config" in src:
        config = dict(src["optimizer_config"] or {})
        config.pop("grad_clip", None)
        config.pop("type", None)
        if config:
            raise ConfigError(f"optimizer_config: {sorted(config)} cannot be translated; only grad_clip can")
        out.pop("optimizer_config", None)
    runner = src.get("runner") or {}
    max_epochs = runner.get("max_epochs", src.get("total_epochs"))
    if runner.get("type", "EpochBasedRunner") == "IterBasedRunner" or "max_iters" in runner:
        train_cfg = dict(out.get("train_cfg") or {})
        train_cfg.update(type="IterBasedTrainLoop", max_iters=int(runner["max_iters"]))
        train_cfg.pop("max_epochs", None)
        out["train_cfg"] = train_cfg
        hooks = out.setdefault("default_hooks", {})
        hooks["checkpoint"] = dict(hooks.get("checkpoint") or dict(type="CheckpointHook"), by_epoch=False)
        out["log_processor"] = dict(out.get("log_processor") or {}, by_epoch=False)
        changes.add("runner", f"train_cfg = {train_cfg}")
    elif max_epochs is not None:
        train_cfg = dict(out.get("train_cfg") or {})
        train_cfg.update(type="EpochBasedTrainLoop", max_epochs=int(max_epochs))
        out["train_cfg"] = train_cfg
        changes.add("runner / total_epochs", f"train_cfg.max_epochs={int(max_epochs)}")
    out.pop("runner", None)
    out.pop("total_epochs", None)
    if "lr_config" in src:
        out["param_scheduler"] = _translate_lr_config(dict(src["lr_config"]), out.get("train_cfg") or {})
        out.pop("lr_config", None)
        changes.add("lr_config", f"param_scheduler = {out['param_scheduler']}")
    if "checkpoint_config" in src:
        checkpoint = dict(src["checkpoint_config"] or {})
        hooks = out.setdefault("default_hooks", {})
        hooks["checkpoint"] = dict(hooks.get("checkpoint") or {}, type="CheckpointHook", **checkpoint)
        out.pop("checkpoint_config", None)
        changes.add("checkpoint_config", f"default_hooks.checkpoint = {hooks['checkpoint']}")
    if "log_config" in src:
        log = dict(src["log_config"] or {})
        extra = [h.get("type") for h in log.get("hooks", []) if h.get("type") != "TextLoggerHook"]
        if extra:
            raise ConfigError(f"log_config.hooks: {extra} have no automatic translation; write MMDetection 3 "
                              "vis_backends (e.g. TensorboardVisBackend) in visualizer instead")
        hooks = out.setdefault("default_hooks", {})
        hooks["logger"] = dict(type="LoggerHook", interval=int(log.get("interval", 50)))
        out.pop("log_config", None)
        changes.add("log_config", f"default_hooks.logger.interval={hooks['logger']['interval']}")
    if src.get("resume_from"):
        out["resume"], out["load_from"] = True, src["resume_from"]
        out.pop("resume_from", None)
        changes.add("resume_from", "resume=True, load_from")


def _translate_lr_config(lr: dict, train_cfg: Mapping) -> list:
    by_epoch = bool(lr.pop("by_epoch", True))
    schedulers = []
    warmup = lr.pop("warmup", None)
    warmup_iters = int(lr.pop("warmup_iters", 0) or 0)
    warmup_ratio = float(lr.pop("warmup_ratio", 0.1))
    if lr.pop("warmup_by_epoch", False):
        raise ConfigError("lr_config.warmup_by_epoch=True: give warmup_iters in iterations instead")
    if warmup:
        if warmup not in ("linear", "constant"):
            raise ConfigError(f"lr_config.warmup={warmup!r}: only 'linear' and 'constant' translate")
        kind = "LinearLR" if warmup == "linear" else "ConstantLR"
        key = "start_factor" if kind == "LinearLR" else "factor"
        schedulers.append({"type": kind, key: warmup_ratio, "by_epoch": False, "begin": 0, "end": warmup_iters})
    policy = str(lr.pop("policy", "step")).lower()
    end = train_cfg.get("max_epochs" if by_epoch else "max_iters")
    # 2.x by_epoch=False under an epoch runner: updated every iteration of an epoch-long schedule
    per_iter_of_epochs = not by_epoch and end is None and train_cfg.get("max_epochs") is not None
    if policy == "step":
        steps = lr.pop("step", [])
        steps = [steps] if isinstance(steps, int) else list(steps)
        scheduler = dict(type="MultiStepLR", by_epoch=by_epoch, begin=0, end=end, milestones=steps,
                         gamma=lr.pop("gamma", 0.1))
        if end is None:  # milestones in iterations, the number of iterations unknown: to the end
            scheduler.pop("end")
        schedulers.append(scheduler)
    elif policy == "cosineannealing":
        min_lr = lr.pop("min_lr", None)
        ratio = lr.pop("min_lr_ratio", None)
        if per_iter_of_epochs:
            end = train_cfg["max_epochs"]
            scheduler = dict(type="CosineAnnealingLR", by_epoch=True, convert_to_iter_based=True, begin=0, end=end,
                             T_max=end)
        elif end is None:
            raise ConfigError("lr_config.policy='CosineAnnealing' needs the length of training: set runner.max_epochs "
                              "or runner.max_iters")
        else:
            scheduler = dict(type="CosineAnnealingLR", by_epoch=by_epoch, begin=0, end=end, T_max=end)
        scheduler["eta_min" if min_lr is not None else "eta_min_ratio"] = min_lr if min_lr is not None else (ratio or 0.0)
        schedulers.append(scheduler)
    elif policy == "fixed":
        pass
    else:
        raise ConfigError(f"lr_config.policy={policy!r}: only 'step', 'CosineAnnealing' and 'fixed' translate")
    if lr:
        raise ConfigError(f"lr_config: {sorted(lr)} cannot be translated")
    return schedulers
