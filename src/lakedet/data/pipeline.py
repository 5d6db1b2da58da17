"""A dataset's pipeline config, fitted to Deep Lake rows: MMDetection's file loaders become
lakedet's row loaders, so MMDetection zoo configs work as written."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..config.walk import bare_type

__all__ = ["place_loading_steps", "loads_masks", "IMAGE_LOADER", "ANNOTATION_LOADER"]

#: lakedet's loading transforms (``lakedet.data.transforms``), by their registered names
IMAGE_LOADER, ANNOTATION_LOADER = "LoadImageFromDeepLake", "LoadDeepLakeAnnotations"
_IMAGE_LOADERS = {"LoadImageFromFile", "LoadImageFromNDArray", IMAGE_LOADER}
_ANNOTATION_LOADERS = {"LoadAnnotations", ANNOTATION_LOADER}


def place_loading_steps(pipeline: Sequence, skip_bad_images: bool = False, top_level: bool = True,
                        keep_instances: bool = True) -> list:
    """Put lakedet's loading transforms in place of MMDetection's file loaders.

    ``LoadImageFromFile`` (any scope) becomes ``LoadImageFromDeepLake``; ``LoadAnnotations`` becomes
    ``LoadDeepLakeAnnotations`` with the same options; with ``keep_instances`` (evaluation),
    ``PackDetInputs`` also keeps ``instances`` (the row's original ground truth) so metrics need no
    annotation file, and ``image_id`` (the original image id, where the dataset has one). A pipeline with no image
    loader gets one in front.
    """
    from mmdet.datasets.transforms import PackDetInputs

    placed = []
    for step in pipeline:
        if not isinstance(step, Mapping):
            placed.append(step)  # an already built transform: leave it alone
            continue
        step = dict(step)
        kind = bare_type(step)
        if kind in _IMAGE_LOADERS:
            step = dict(type=IMAGE_LOADER, to_float32=step.get("to_float32", False),
                        color_type=step.get("color_type", "color"),
                        imdecode_backend=step.get("imdecode_backend", "cv2"),
                        skip_bad_images=step.get("skip_bad_images", skip_bad_images))
        elif kind in _ANNOTATION_LOADERS:
            step.pop("backend_args", None)
            step.pop("file_client_args", None)
            step["type"] = ANNOTATION_LOADER
        elif kind == "PackDetInputs" and keep_instances:
            meta_keys = tuple(step.get("meta_keys", PackDetInputs().meta_keys))
            step["meta_keys"] = meta_keys + tuple(k for k in ("instances", "image_id") if k not in meta_keys)
        for nested in ("transforms",):  # TestTimeAug / MultiScaleFlipAug
            if isinstance(step.get(nested), list):
                inner = step[nested]
                step[nested] = ([place_loading_steps(x, skip_bad_images, False, keep_instances) for x in inner]
                                if inner and isinstance(inner[0], list)
                                else place_loading_steps(inner, skip_bad_images, False, keep_instances))
        placed.append(step)
    kinds = [bare_type(s) for s in placed if isinstance(s, Mapping)]
    if top_level and pipeline and IMAGE_LOADER not in kinds:
        placed.insert(0, dict(type=IMAGE_LOADER, skip_bad_images=skip_bad_images))
    return placed


def loads_masks(pipeline: Sequence) -> bool:
    """Whether a placed pipeline loads instance masks (``LoadDeepLakeAnnotations(with_mask=True)``,
    also inside ``TestTimeAug`` / ``MultiScaleFlipAug``)."""
    for step in pipeline:
        if not isinstance(step, Mapping):
            continue
        if bare_type(step) == ANNOTATION_LOADER and step.get("with_mask", False):
            return True
        inner = step.get("transforms")
        if isinstance(inner, list) and any(loads_masks(x if isinstance(x, list) else [x]) for x in inner):
            return True
    return False
