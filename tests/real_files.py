"""COCO and Pascal VOC files written by hand from the formats' specifications, with the cases real
data has: category ids with gaps, crowd regions as uncompressed and compressed RLE, a multi-part
polygon, degenerate boxes, an image without annotations, fields beyond the basic ones.

COCO (https://cocodataset.org/#format-data): ``bbox`` is ``[x, y, width, height]``; ``segmentation``
is a list of polygons ``[x1, y1, x2, y2, ...]`` for ``iscrowd=0`` and RLE for ``iscrowd=1``: run
lengths of the column-major (Fortran-order) flattened mask, starting with a run of zeros, as a list
of ints (uncompressed) or as the COCO-compressed string. Pascal VOC: one XML per image under
``Annotations/`` with ``<size>`` and ``<object>``s (``name``, ``difficult``, ``bndbox`` with 1-based
pixel ``xmin ymin xmax ymax``), the split under ``ImageSets/Main/<split>.txt``.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

CATEGORIES = [dict(supercategory="person", id=1, name="person"), dict(supercategory="vehicle", id=3, name="car"),
              dict(supercategory="animal", id=18, name="dog"),
              dict(supercategory="furniture", id=67, name="dining table")]


def uncompressed_rle(mask: np.ndarray) -> dict:
    """COCO's uncompressed RLE of a bool mask: column-major run lengths, zeros first."""
    flat = np.asarray(mask, np.uint8).flatten(order="F")
    counts, current, run = [], 0, 0
    for value in flat:
        if value == current:
            run += 1
        else:
            counts.append(run)
            current, run = value, 1
    counts.append(run)
    return dict(counts=[int(c) for c in counts], size=[int(mask.shape[0]), int(mask.shape[1])])


def compressed_rle(mask: np.ndarray) -> dict:
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(np.asarray(mask, np.uint8)))
    return dict(size=[int(v) for v in rle["size"]], counts=rle["counts"].decode())


def _jpeg(path: Path, height: int, width: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    img = cv2.resize(rng.integers(0, 255, (4, 4, 3), dtype=np.uint8), (width, height), interpolation=cv2.INTER_CUBIC)
    cv2.imwrite(str(path), img, [cv2.IMWRITE_JPEG_QUALITY, 90])


def _box_of(polygons) -> list[float]:
    xs = [v for p in polygons for v in p[0::2]]
    ys = [v for p in polygons for v in p[1::2]]
    return [min(xs), min(ys), round(max(xs) - min(xs), 2), round(max(ys) - min(ys), 2)]


def _polygon_area(polygons, height, width) -> float:
    from pycocotools import mask as mask_utils

    return float(mask_utils.area(mask_utils.merge(mask_utils.frPyObjects(polygons, height, width))))


def write_coco(root: Path, degenerate: bool = True) -> dict:
    """Images under ``root/images``, the instances file at ``root/instances.json``; returns the dict.

    Image 397133 (64x48): a person (coordinates on .x3 / .x7 values, which float32 would round
    differently when rasterised), a 3-part dining table, an uncompressed-RLE crowd of persons.
    Image 37777 (48x40): a car, a dog, a compressed-RLE crowd of cars, a dog box 0.5 px wide and
    (``degenerate``) a zero-width car box and a zero-area dog polygon. Image 252219 (64x48): no
    annotations. Image 87038 (30x24, smaller than ``min_size=32``): one dog. Ids have gaps and the
    images are not in id order, as in real COCO files.
    """
    (root / "images").mkdir(parents=True, exist_ok=True)
    images = [dict(license=4, file_name="000000397133.jpg", coco_url="http://images.cocodataset.org/x.jpg",
                   height=48, width=64, date_captured="2013-11-14 17:02:52", flickr_url="", id=397133),
              dict(license=1, file_name="000000037777.jpg", height=40, width=48, id=37777),
              dict(license=2, file_name="sub/000000252219.jpg", height=48, width=64, id=252219),
              dict(license=1, file_name="000000087038.jpg", height=24, width=30, id=87038)]
    for seed, image in enumerate(images):
        (root / "images" / image["file_name"]).parent.mkdir(parents=True, exist_ok=True)
        _jpeg(root / "images" / image["file_name"], image["height"], image["width"], seed)
    anns = []

    def add(image_id, category_id, segmentation, iscrowd=0, bbox=None, area=None, **extra):
        height, width = next((i["height"], i["width"]) for i in images if i["id"] == image_id)
        if bbox is None:
            bbox = _box_of(segmentation)
        if area is None:
            area = _polygon_area(segmentation, height, width) if isinstance(segmentation, list) else float(
                np.sum(_decode(segmentation, height, width)))
        anns.append(dict(segmentation=segmentation, area=area, iscrowd=iscrowd, image_id=image_id, bbox=bbox,
                         category_id=category_id, id=900100 + 7 * len(anns), **extra))

    add(397133, 1, [[10.3, 5.7, 30.3, 6.1, 28.7, 30.9, 12.1, 29.3]])
    add(397133, 67, [[35.5, 30.5, 60.3, 30.5, 60.3, 34.7, 35.5, 34.7], [36.1, 34.7, 38.3, 34.7, 38.3, 46.9, 36.1, 46.9],
                     [57.3, 34.7, 59.7, 34.7, 59.7, 46.9, 57.3, 46.9]])
    crowd = np.zeros((48, 64), bool)
    crowd[2:20, 40:62] = True
    crowd[5:9, 44:50] = False
    add(397133, 1, uncompressed_rle(crowd), iscrowd=1, bbox=[40.0, 2.0, 22.0, 18.0])
    add(37777, 3, [[2.5, 3.5, 20.5, 3.5, 20.5, 15.5, 2.5, 15.5]], attributes={"occluded": True})
    add(37777, 18, [[25.1, 20.9, 44.9, 22.3, 40.7, 38.1, 27.3, 36.5]])
    cars = np.zeros((40, 48), bool)
    cars[25:39, 1:20] = True
    add(37777, 3, compressed_rle(cars), iscrowd=1, bbox=[1.0, 25.0, 19.0, 14.0])
    add(37777, 18, [[30.0, 5.0, 30.5, 5.0, 30.5, 9.0, 30.0, 9.0]], bbox=[30.0, 5.0, 0.5, 4.0])
    if degenerate:
        add(37777, 3, [[10.0, 20.0, 10.0, 20.0, 10.0, 28.0, 10.0, 28.0]], bbox=[10.0, 20.0, 0.0, 8.0])
        add(37777, 18, [[5.0, 30.0, 9.0, 30.0, 13.0, 30.0]], bbox=[5.0, 30.0, 8.0, 1.0], area=0.0)
    add(87038, 18, [[3.0, 3.0, 20.0, 3.0, 20.0, 18.0, 3.0, 18.0]])
    coco = dict(info=dict(description="hand-written COCO sample", version="1.0", year=2017),
                licenses=[dict(url="http://creativecommons.org/licenses/by/2.0/", id=4, name="Attribution")],
                images=images, annotations=anns, categories=CATEGORIES)
    (root / "instances.json").write_text(json.dumps(coco))
    return coco


def _decode(segmentation, height, width) -> np.ndarray:
    from pycocotools import mask as mask_utils

    if isinstance(segmentation["counts"], list):
        return mask_utils.decode(mask_utils.frPyObjects(segmentation, height, width))
    return mask_utils.decode(dict(segmentation, counts=segmentation["counts"].encode()))


VOC_OBJECTS = {  # stem -> (width, height, [(name, difficult, xmin, ymin, xmax, ymax)])
    "000005": (64, 48, [("chair", 0, "12", "5", "40", "30"), ("dog", 1, "3.7", "8.2", "20.9", "44")]),
    "000007": (48, 40, [("car", 0, "1", "1", "48", "40"), ("cat", 0, "20", "20", "25", "24")]),
    "000009": (30, 24, [("dog", 0, "5", "5", "25", "20")]),
    "000012": (64, 48, [("person", 0, "30", "10", "45", "40")]),
}


def write_voc(root: Path, split: str = "trainval") -> Path:
    """A VOC2007-style folder under ``root``; returns it. Object classes: chair, dog, car, cat, person;
    one difficult dog, float coordinates, a 5x4 cat (under ``bbox_min_size``), a 30x24 image."""
    voc = root / "VOC2007"
    for sub in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (voc / sub).mkdir(parents=True, exist_ok=True)
    for seed, (stem, (width, height, objects)) in enumerate(VOC_OBJECTS.items()):
        _jpeg(voc / "JPEGImages" / f"{stem}.jpg", height, width, 10 + seed)
        xml = "".join(
            f"<object><name>{name}</name><pose>Unspecified</pose><truncated>0</truncated>"
            f"<difficult>{difficult}</difficult><bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin><xmax>{x2}</xmax>"
            f"<ymax>{y2}</ymax></bndbox></object>" for name, difficult, x1, y1, x2, y2 in objects)
        (voc / "Annotations" / f"{stem}.xml").write_text(
            f"<annotation><folder>VOC2007</folder><filename>{stem}.jpg</filename><size><width>{width}</width>"
            f"<height>{height}</height><depth>3</depth></size><segmented>0</segmented>{xml}</annotation>")
    (voc / "ImageSets" / "Main" / f"{split}.txt").write_text("\n".join(VOC_OBJECTS) + "\n")
    return voc
