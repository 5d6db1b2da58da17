"""Read a COCO instances file without holding it in memory: one streaming scan, then random access.

``scan_coco`` reads the file once, in 1 MB blocks, and keeps only a compact index: the small
top-level values (``info``, ``licenses``, ``categories``), and for every image and annotation the
byte range of its JSON text plus the numbers needed to check it and to group annotations by image
(numpy arrays: about 70 bytes per annotation, against several hundred for the parsed objects).
Annotations are scanned key by key, so the index also holds their numbers (``bbox``, ``area``,
``iscrowd``, ids) and the byte range of each ``segmentation`` value: writing a row then needs no
JSON parsing for its annotations, and a segmentation is stored as the very text the file has
(``segmentation_text``). The top-level keys may come in any order (real COCO files put
``categories`` last). Strings are parsed from the original bytes (UTF-8), never from the scan's
latin-1 view (which only finds where each value ends).
"""

from __future__ import annotations

import json
import re
from array import array
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DataError

__all__ = ["CocoFile", "scan_coco", "ANN_KEYS", "BLOCK"]

#: Bytes read from the file at a time by the scan.
BLOCK = 1 << 20
_WS = re.compile(r"[ \t\n\r]*")
_AFTER_VALUE = frozenset(" \t\n\r,]}:")
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

    def next_item(self, close: str, where: str = "") -> bool:
        """Step over the ``,`` after an item; True when ``close`` ends the container instead."""
        following = self.peek()
        self.pos += 1
        if following == close:
            return True
        if following != ",":
            self._fail(f"expected ',' or {close!r}{where}")
        return False

    def value(self):
        """Decode the value at the cursor: ``(value, start byte, end byte)``."""
        self.peek()
        while True:
            try:
                value, end = _DECODER.raw_decode(self.buf, self.pos)
                # a number cut by the block's end ("4." of "4.25") decodes too: what follows a
                # complete value is whitespace or , ] } :
                if self.eof or (end < len(self.buf) and self.buf[end] in _AFTER_VALUE):
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
    ann_area: np.ndarray = None  # (A,) float64 (NaN where the file has none)
    ann_crowd: np.ndarray = None  # (A,) bool
    ann_seg_spans: np.ndarray = None  # (A, 2) int64 byte range of the segmentation value (0, 0: none)
    ann_extra: np.ndarray = None  # (A,) bool: the annotation has fields beyond the standard ones
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
        return [json.loads(text) for text in self.texts(spans)]

    def texts(self, spans) -> list[bytes]:
        """The raw bytes of each byte range (one open file while reading, kept between calls)."""
        if getattr(self, "_file", None) is None:
            self._file = open(self.path, "rb")
        out = []
        for start, stop in spans:
            self._file.seek(int(start))
            out.append(self._file.read(int(stop - start)))
        return out

    def close(self) -> None:
        if getattr(self, "_file", None) is not None:
            self._file.close()
            self._file = None

    def segmentation_text(self, index: int) -> str:
        """Annotation ``index``'s segmentation as JSON text: the file's own text, or (when it has
        whitespace) the same value written compactly; ``null`` when it has none."""
        start, stop = self.ann_seg_spans[index]
        if stop == start:
            return "null"
        text = self.texts([(start, stop)])[0].decode("utf-8")
        return _compact(text)


_SPACE = re.compile(r"[ \t\n\r]")


def _compact(text: str) -> str:
    return json.dumps(json.loads(text), separators=(",", ":")) if _SPACE.search(text) else text


def _number(value, default=np.nan) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else default


def _segmentation_problem(seg) -> str | None:
    """What is wrong with a COCO ``segmentation`` value, or None (absent / empty is allowed)."""
    if seg is None or seg == []:
        return None
    if isinstance(seg, list):
        for part in seg:
            try:  # numbers only: sum() is quick and raises for strings, nulls and nested lists
                numeric = isinstance(part, list) and isinstance(sum(part), (int, float))
            except TypeError:
                numeric = False
            if not numeric:
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
    # typed arrays while scanning (about 120 bytes per annotation; Python lists of numbers: ~800)
    images = dict(ids=array("q"), spans=array("q"), sizes=array("q"), names=coco.image_names)
    anns = dict(image_ids=array("q"), ids=array("q"), cats=array("q"), boxes=array("d"), spans=array("q"),
                parts=array("q"), area=array("d"), crowd=array("b"), seg_spans=array("q"), extra=array("b"))
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
                if scanner.next_item("}"):
                    break
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
    coco.ann_area = np.asarray(anns["area"], np.float64)
    coco.ann_crowd = np.asarray(anns["crowd"], bool)
    coco.ann_seg_spans = np.asarray(anns["seg_spans"], np.int64).reshape(-1, 2)
    coco.ann_extra = np.asarray(anns["extra"], bool)
    return coco


#: The fields of a COCO annotation lakedet stores in columns of their own.
ANN_KEYS = ("id", "image_id", "category_id", "bbox", "area", "iscrowd", "segmentation")


def _member_spans(text: str) -> dict:
    """Byte ranges (within ``text``, one JSON object) of each member's value."""
    spans, pos = {}, _WS.match(text, 1).end()
    while pos < len(text) and text[pos] != "}":
        name, pos = _DECODER.raw_decode(text, pos)
        pos = _WS.match(text, pos).end() + 1  # the ':'
        pos = _WS.match(text, pos).end()
        _, end = _DECODER.raw_decode(text, pos)
        spans[name] = (pos, end)
        pos = _WS.match(text, end).end()
        pos = _WS.match(text, pos + 1).end() if text[pos] == "," else pos
    return spans


def _segmentation_span(scanner: _Scanner, start: int, stop: int, polygons: bool) -> tuple[int, int]:
    """The byte range of the ``segmentation`` value of the object just decoded at [start, stop)."""
    text = scanner.buf[start - scanner.base:stop - scanner.base]
    key = '"segmentation"'
    first = text.find(key)
    if first >= 0 and text.find(key, first + 1) < 0:  # the key, and no string like it elsewhere
        pos = _WS.match(text, first + len(key)).end()
        if text[pos] == ":":
            pos = _WS.match(text, pos + 1).end()
            # polygons (lists of numbers): the first "]]" ends the value; no need to parse it again
            end = text.find("]]", pos) + 2 if polygons else 1
            if end < 2 or '"' in text[pos:end]:  # not found, or past this member: parse it
                _, end = _DECODER.raw_decode(text, pos)
            return start + pos, start + end
    a, b = _member_spans(text)["segmentation"]
    return start + a, start + b


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
            into["spans"].extend((start, stop))
            into["sizes"].extend((int(_number(entry.get("height"), 0)), int(_number(entry.get("width"), 0))))
            name = entry.get("file_name")
            into["names"].append(name.encode("latin-1").decode("utf-8") if isinstance(name, str) else None)
        else:
            index = len(into["ids"])
            into["image_ids"].append(int(_number(entry.get("image_id"), -1)))
            into["ids"].append(int(_number(entry.get("id"), -1)))
            into["cats"].append(int(_number(entry.get("category_id"), -1)))
            box = entry.get("bbox")
            ok = isinstance(box, list) and len(box) == 4
            into["boxes"].extend([_number(v) for v in box] if ok else [np.nan] * 4)
            into["spans"].extend((start, stop))
            seg = entry.get("segmentation")
            into["parts"].append(len(seg) if isinstance(seg, list) else -1 if isinstance(seg, dict) else 0)
            problem = _segmentation_problem(seg)
            into["area"].append(_number(entry.get("area")))
            into["crowd"].append(bool(entry.get("iscrowd", 0)))
            polygons = isinstance(seg, list) and bool(seg) and isinstance(seg[0], list) and not problem
            into["seg_spans"].extend(_segmentation_span(scanner, start, stop, polygons) if seg is not None else (0, 0))
            into["extra"].append(any(k not in ANN_KEYS for k in entry))
            if not ok:
                problem = f"bbox must be [x, y, width, height], got {box!r}"
            if problem:
                coco.ann_problems[index] = problem
        if scanner.next_item("]", f" in '{key}'"):
            return
