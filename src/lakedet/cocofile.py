"""Read a COCO instances file without holding it in memory: one streaming scan, then random access.

``scan_coco`` reads the file once, in 1 MB blocks, and keeps only a compact index: the small
top-level values (``info``, ``licenses``, ``categories``), and for every image and annotation the
byte range of its JSON text plus the numbers needed to check it and to group annotations by image
(numpy arrays: about 70 bytes per annotation, against several hundred for the parsed objects).
``CocoFile.image`` / ``CocoFile.annotations`` then parse one image's entries from those byte
ranges when its row is written. The top-level keys may come in any order (real COCO files put
``categories`` last). Strings are parsed from the original bytes (UTF-8), never from the scan's
latin-1 view (which only finds where each value ends).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import DataError

__all__ = ["CocoFile", "scan_coco", "segmentation_rle", "BLOCK"]

#: Bytes read from the file at a time by the scan.
BLOCK = 1 << 20
_WS = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


class _Scanner:
    """Decodes JSON values one at a time from a file, keeping a bounded buffer (latin-1 = bytes)."""

    def __init__(self, path: Path):
        self.path, self.file = path, open(path, "rb")
        self.buf, self.base, self.pos, self.eof = "", 0, 0, False

    def close(self) -> None:
        self.file.close()

    def _fill(self) -> bool:
        chunk = self.file.read(BLOCK)
        if not chunk:
            self.eof = True
            return False
        self.base += self.pos
        self.buf = self.buf[self.pos:] + chunk.decode("latin-1")
        self.pos = 0
        return True

    def offset(self) -> int:
        return self.base + self.pos

    def peek(self) -> str:
        """The next non-whitespace character ('' at the end of the file)."""
        while True:
            self.pos = _WS.match(self.buf, self.pos).end()
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self._fill():
                return ""

    def expect(self, char: str) -> None:
        if self.peek() != char:
            self._fail(f"expected {char!r}")
        self.pos += 1

    def value(self):
        """Decode the value at the cursor: ``(value, start byte, end byte)``."""
        self.peek()
        while True:
            try:
                value, end = _DECODER.raw_decode(self.buf, self.pos)
                if end < len(self.buf) or self.eof:  # a number could go on in the next block
                    start, self.pos = self.offset(), end
                    return value, start, self.offset()
            except json.JSONDecodeError as exc:
                if self.eof:
                    self._fail(exc.msg)
            if not self._fill():
                continue

    def _fail(self, what: str):
        raise DataError(f"{str(self.path)!r} is not valid COCO JSON: {what} at byte {self.offset()}")


@dataclass
class CocoFile:
    """The index ``scan_coco`` builds. Arrays run over images / annotations in file order."""

    path: Path
    info: dict | None = None
    licenses: list | None = None
    categories: list = field(default_factory=list)  # as in the file (order kept)
    other_keys: dict = field(default_factory=dict)  # other top-level keys, kept for export
    image_ids: np.ndarray = None  # (I,) int64
    image_spans: np.ndarray = None  # (I, 2) int64 byte ranges
    image_sizes: np.ndarray = None  # (I, 2) int64 height, width (0 = not given)
    image_names: list = field(default_factory=list)  # (I,) file_name (None where missing)
    ann_image_ids: np.ndarray = None  # (A,) int64
    ann_ids: np.ndarray = None  # (A,) int64
    ann_category_ids: np.ndarray = None  # (A,) int64
    ann_boxes: np.ndarray = None  # (A, 4) float64 LTWH (NaN where missing / malformed)
    ann_spans: np.ndarray = None  # (A, 2) int64
    ann_parts: np.ndarray = None  # (A,) int64 polygons in the segmentation; -1 RLE, 0 none
    ann_problems: dict = field(default_factory=dict)  # annotation index -> what is wrong with it

    @property
    def category_ids(self) -> list[int]:
        return [c.get("id") for c in self.categories]

    def read(self, span) -> dict:
        """Parse one entry from its byte range (UTF-8)."""
        with open(self.path, "rb") as f:
            f.seek(int(span[0]))
            return json.loads(f.read(int(span[1] - span[0])))

    def read_many(self, spans) -> list[dict]:
        with open(self.path, "rb") as f:
            out = []
            for start, stop in spans:
                f.seek(int(start))
                out.append(json.loads(f.read(int(stop - start))))
            return out


def _number(value, default=np.nan) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else default


def _segmentation_problem(seg) -> str | None:
    """What is wrong with a COCO ``segmentation`` value, or None (absent / empty is allowed)."""
    if seg is None or seg == []:
        return None
    if isinstance(seg, list):
        for part in seg:
            if not isinstance(part, list) or not all(isinstance(v, (int, float)) for v in part):
                return "segmentation must be a list of polygons (lists of numbers) or an RLE dict"
        return None
    if isinstance(seg, dict):
        size, counts = seg.get("size"), seg.get("counts")
        if not (isinstance(size, list) and len(size) == 2 and isinstance(counts, (list, str))):
            return "an RLE segmentation needs 'size' [height, width] and 'counts' (a list or a string)"
        return None
    return f"segmentation must be a list of polygons or an RLE dict, got {type(seg).__name__}"


def scan_coco(path: str | Path) -> CocoFile:
    """Scan a COCO JSON file once and index it (see the module docstring).

    Raises:
        DataError: the file is not a JSON object, or ``images`` / ``annotations`` is not a list.
    """
    path = Path(path)
    coco = CocoFile(path)
    images = dict(ids=[], spans=[], sizes=[], names=coco.image_names)
    anns = dict(image_ids=[], ids=[], cats=[], boxes=[], spans=[], parts=[])
    scanner = _Scanner(path)
    try:
        scanner.expect("{")
        if scanner.peek() == "}":
            scanner.pos += 1
        else:
            while True:
                key, _, _ = scanner.value()
                scanner.expect(":")
                if key in ("images", "annotations"):
                    _scan_array(scanner, key, images if key == "images" else anns, coco)
                else:
                    _, start, stop = scanner.value()
                    value = coco.read((start, stop))
                    if key == "info":
                        coco.info = value
                    elif key == "licenses":
                        coco.licenses = value
                    elif key == "categories":
                        if not isinstance(value, list):
                            scanner._fail("'categories' must be a list")
                        coco.categories = value
                    else:
                        coco.other_keys[key] = value
                following = scanner.peek()
                scanner.pos += 1
                if following == "}":
                    break
                if following != ",":
                    scanner._fail("expected ',' or '}'")
    finally:
        scanner.close()
    coco.image_ids = np.asarray(images["ids"], np.int64)
    coco.image_spans = np.asarray(images["spans"], np.int64).reshape(-1, 2)
    coco.image_sizes = np.asarray(images["sizes"], np.int64).reshape(-1, 2)
    coco.ann_image_ids = np.asarray(anns["image_ids"], np.int64)
    coco.ann_ids = np.asarray(anns["ids"], np.int64)
    coco.ann_category_ids = np.asarray(anns["cats"], np.int64)
    coco.ann_boxes = np.asarray(anns["boxes"], np.float64).reshape(-1, 4)
    coco.ann_spans = np.asarray(anns["spans"], np.int64).reshape(-1, 2)
    coco.ann_parts = np.asarray(anns["parts"], np.int64)
    return coco


def _scan_array(scanner: _Scanner, key: str, into: dict, coco: CocoFile) -> None:
    scanner.expect("[")
    if scanner.peek() == "]":
        scanner.pos += 1
        return
    while True:
        entry, start, stop = scanner.value()
        if not isinstance(entry, dict):
            scanner._fail(f"each entry of '{key}' must be an object")
        if key == "images":
            into["ids"].append(int(_number(entry.get("id"), -1)))
            into["spans"].append((start, stop))
            into["sizes"].append((int(_number(entry.get("height"), 0)), int(_number(entry.get("width"), 0))))
            name = entry.get("file_name")
            into["names"].append(name.encode("latin-1").decode("utf-8") if isinstance(name, str) else None)
        else:
            index = len(into["ids"])
            into["image_ids"].append(int(_number(entry.get("image_id"), -1)))
            into["ids"].append(int(_number(entry.get("id"), -1)))
            into["cats"].append(int(_number(entry.get("category_id"), -1)))
            box = entry.get("bbox")
            ok = isinstance(box, list) and len(box) == 4
            into["boxes"].append([_number(v) for v in box] if ok else [np.nan] * 4)
            into["spans"].append((start, stop))
            seg = entry.get("segmentation")
            into["parts"].append(len(seg) if isinstance(seg, list) else -1 if isinstance(seg, dict) else 0)
            problem = _segmentation_problem(seg)
            if not ok:
                problem = f"bbox must be [x, y, width, height], got {box!r}"
            if problem:
                coco.ann_problems[index] = problem
        following = scanner.peek()
        scanner.pos += 1
        if following == "]":
            return
        if following != ",":
            scanner._fail(f"expected ',' or ']' in '{key}'")


def segmentation_rle(segmentation, height: int, width: int) -> dict:
    """A COCO segmentation (polygons, uncompressed or compressed RLE) as one compressed RLE, the way
    pycocotools' ``annToRLE`` and MMDetection's ``LoadAnnotations`` turn it into a mask."""
    from pycocotools import mask as mask_utils

    if isinstance(segmentation, list):  # polygons: one object may have several parts
        return mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
    if isinstance(segmentation.get("counts"), list):  # uncompressed RLE
        return mask_utils.frPyObjects(segmentation, height, width)
    counts = segmentation["counts"]
    return dict(segmentation, counts=counts.encode() if isinstance(counts, str) else counts)
