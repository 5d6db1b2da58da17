"""The keys a ``DeepLakeDetDataset`` sample carries to lakedet's loading transforms, declared once.

``prepare_data`` puts the row's stored data under these keys of the sample dict;
``LoadImageFromDeepLake`` and ``LoadDeepLakeAnnotations`` take them out again, so nothing of them
reaches MMDetection's other transforms.
"""

from __future__ import annotations

__all__ = ["SampleKey", "ROWS_KEY"]


class SampleKey:
    """Names of the sample entries the dataset hands to its loading transforms."""

    #: the row's stored image bytes (a compressed Image column, or a Bytes column)
    IMAGE_BYTES = "img_bytes"
    #: the row's stored image array (an uncompressed column, RGB(A) or grayscale)
    IMAGE_ARRAY = "img_array"
    #: the column the image came from (named in errors)
    IMAGE_COLUMN = "deeplake_img_column"
    #: the column the masks came from (named in errors)
    MASK_COLUMN = "deeplake_mask_column"
    #: the row's binary masks, H x W x N, of the kept instances
    BINARY_MASKS = "deeplake_binary_masks"
    #: the instances' boxes are fractions of the image size (scaled once the image is decoded)
    FRACTIONAL_BOXES = "deeplake_fractional_boxes"
    #: the instances' polygons are fractions of the image size (scaled once the image is decoded)
    FRACTIONAL_POLYGONS = "deeplake_fractional_polygons"


#: The ``metainfo`` key (value True) marking a Deep Lake dataset: its evaluated samples carry their
#: rows' ground truth, which the metrics (``lakedet.evaluation``) use instead of an annotation file.
ROWS_KEY = "deeplake_source"
