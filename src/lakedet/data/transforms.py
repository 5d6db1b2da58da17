"""The first pipeline steps: turn a Deep Lake row into what MMDetection's transforms expect.

``DeepLakeDetDataset`` reads a row's stored bytes and annotations; these transforms decode and
convert them, so every other MMDetection transform runs unchanged:

* ``LoadImageFromDeepLake`` decodes the image to BGR ``uint8`` HxWx3 (grayscale and RGBA converted)
  and sets ``img_shape`` / ``ori_shape``; it also turns fractional boxes and polygons into pixels,
  since the image size is known only once the image is decoded.
* ``LoadDeepLakeAnnotations`` is MMDetection's ``LoadAnnotations`` (same options: ``with_bbox``,
  ``with_label``, ``with_mask``, ``poly2mask``, ``box_type``) that also takes binary masks.
"""

from __future__ import annotations

import logging

import numpy as np
from mmcv.transforms import BaseTransform
from mmdet.datasets.transforms import LoadAnnotations
from mmdet.registry import TRANSFORMS
from mmdet.structures.mask import BitmapMasks

from ..errors import DataError
from .decode import decode_image
from .keys import SampleKey

__all__ = ["LoadImageFromDeepLake", "LoadDeepLakeAnnotations"]

logger = logging.getLogger("lakedet")


@TRANSFORMS.register_module()
class LoadImageFromDeepLake(BaseTransform):
    """Decode the row's image (``SampleKey.IMAGE_BYTES`` or ``SampleKey.IMAGE_ARRAY`` of the sample).

    Args:
        to_float32: return a float32 image, as ``LoadImageFromFile`` does.
        color_type / imdecode_backend: as ``LoadImageFromFile`` (``'color'`` / ``'cv2'`` by default:
            BGR, decoded by libjpeg-turbo with OpenCV's pixels; other values decode stored bytes
            through ``mmcv.imfrombytes`` exactly as ``LoadImageFromFile`` does, e.g.
            ``color_type='grayscale'`` gives H x W images, ``'unchanged'`` keeps alpha channels).
        skip_bad_images: when an image cannot be decoded, log a warning naming the row and
            return None (MMDetection then draws another training sample) instead of raising.
    """

    def __init__(self, to_float32: bool = False, color_type: str = "color", imdecode_backend: str = "cv2",
                 skip_bad_images: bool = False):
        self.to_float32 = to_float32
        self.color_type, self.imdecode_backend = color_type, imdecode_backend
        self.skip_bad_images = skip_bad_images
        self.skipped = 0

    def transform(self, results: dict) -> dict | None:
        if SampleKey.IMAGE_BYTES in results and (self.color_type, self.imdecode_backend) != ("color", "cv2"):
            import mmcv

            try:
                img = mmcv.imfrombytes(results.pop(SampleKey.IMAGE_BYTES), flag=self.color_type,
                                       backend=self.imdecode_backend)
            except Exception:
                img = None
        elif SampleKey.IMAGE_BYTES in results:
            img = decode_image(results.pop(SampleKey.IMAGE_BYTES), compressed=True)
        elif SampleKey.IMAGE_ARRAY in results:
            img = decode_image(results.pop(SampleKey.IMAGE_ARRAY), compressed=False)
            if img is not None and self.color_type == "grayscale":
                import cv2

                img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
        else:
            raise DataError("LoadImageFromDeepLake needs a sample from DeepLakeDetDataset "
                            f"(no {SampleKey.IMAGE_BYTES!r} in the results)")
        if img is None:
            where = f"row {results.get('img_id')}, column {results.get(SampleKey.IMAGE_COLUMN)!r}"
            if not self.skip_bad_images:
                raise DataError(f"{where}: the image cannot be decoded (corrupt or unsupported "
                                "bytes); fix or drop the row, or set skip_bad_images=True on the "
                                "dataset to skip such rows with a warning")
            self.skipped += 1
            logger.warning("skipping %s: the image cannot be decoded (%d skipped so far in this "
                           "process)", where, self.skipped)
            return None
        if self.to_float32:
            img = img.astype(np.float32)
        height, width = img.shape[:2]
        results["img"] = img
        results["img_shape"] = (height, width)
        results["ori_shape"] = (height, width)
        if results.pop(SampleKey.FRACTIONAL_BOXES, False):
            scale = [width, height, width, height]
            for instance in results.get("instances", []):
                instance["bbox"] = [float(v * s) for v, s in zip(instance["bbox"], scale)]
        if results.pop(SampleKey.FRACTIONAL_POLYGONS, False):
            for instance in results.get("instances", []):
                instance["mask"] = [[float(v * (width if i % 2 == 0 else height)) for i, v in enumerate(poly)]
                                    for poly in instance.get("mask", [])]
        return results

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(to_float32={self.to_float32}, color_type={self.color_type!r}, "
                f"imdecode_backend={self.imdecode_backend!r}, skip_bad_images={self.skip_bad_images})")


@TRANSFORMS.register_module()
class LoadDeepLakeAnnotations(LoadAnnotations):
    """MMDetection's ``LoadAnnotations`` over a Deep Lake row, binary masks included."""

    def _load_masks(self, results: dict) -> None:
        binary = results.get(SampleKey.BINARY_MASKS)
        if binary is None:
            return super()._load_masks(results)
        height, width = results["ori_shape"]
        masks = np.ascontiguousarray(np.moveaxis(np.asarray(binary, dtype=np.uint8).reshape(
            binary.shape[0], binary.shape[1], -1), -1, 0))
        if masks.shape[1:] != (height, width):
            raise DataError(f"row {results.get('img_id')}, column {results.get(SampleKey.MASK_COLUMN)!r}: "
                            f"mask size {masks.shape[1:]} differs from the image size {(height, width)}")
        results["gt_masks"] = BitmapMasks(masks, height, width)

    def transform(self, results: dict) -> dict:
        results = super().transform(results)
        results.pop(SampleKey.BINARY_MASKS, None)
        return results
