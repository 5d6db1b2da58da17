"""Deep Lake's ``RowRangeView`` (``ds[a:b]``, ``ds[[r1, r2, ...]]``) behind the dataset API lakedet reads.

A ``RowRangeView`` has rows and nothing else: no schema, no column objects, no column metadata,
and it can be neither copied nor pickled. Its rows (``RowView``) read their own values and stored
bytes, and know their row in the dataset they were cut from (``row_id``). ``RowRange`` offers what
``DeepLakeDetDataset`` and ``ImageReader`` use (``schema``, ``len``, ``ds[column][rows]``,
``get_bytes``/``get_bytes_async``/``get_async``, column ``metadata``) on top of those rows.

Column types come from the view's own ``summary()``. Column metadata (the boxes' ``coords``, the
labels' ``class_names``) exists only on the dataset the rows were cut from: when that dataset is
known (``parent``: the split's ``deeplake_path`` next to ``ds_train``), its schema and metadata are
used; otherwise the defaults apply and a warning says how to keep the metadata.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
from dataclasses import dataclass

from ..errors import ConfigError

__all__ = ["RowRange"]

logger = logging.getLogger("lakedet")

#: ``summary()`` kind words -> Deep Lake type kind names (``TypeKind``), as ``ds.schema`` gives them.
_SUMMARY_KINDS = {"image": "Image", "bbox": "BoundingBox", "class_label": "ClassLabel", "polygon": "Polygon",
                  "binary_mask": "BinaryMask", "segment_mask": "SegmentMask", "text": "Text", "embedding": "Embedding",
                  "sequence": "Sequence", "struct": "Struct", "dict": "Dict", "link": "Link", "medical": "Medical",
                  "point": "Point", "video": "Video", "audio": "Audio", "mesh": "Mesh", "bytes": "Generic"}
_MAGIC = ((b"\xff\xd8\xff", "jpeg"), (b"\x89PNG", "png"), (b"RIFF", "webp"), (b"BM", "bmp"),
          (b"II*\x00", "tiff"), (b"MM\x00*", "tiff"), (b"GIF8", "gif"))


@dataclass(frozen=True)
class _Kind:
    name: str


@dataclass(frozen=True)
class _Type:
    kind: _Kind
    sample_compression: str | None = None


@dataclass(frozen=True)
class _Column:
    name: str
    dtype: _Type


class _Schema:
    def __init__(self, columns: list[_Column]):
        self.columns = columns
        self._by_name = {c.name: c for c in columns}

    def __getitem__(self, name: str) -> _Column:
        return self._by_name[name]


class RowRange:
    """The rows of a ``RowRangeView``, readable like a Deep Lake view.

    Args:
        view: the ``RowRangeView``.
        parent: the opened dataset the rows were cut from, or None when unknown. Its row count
            must be the one the view reports.

    Raises:
        ConfigError: ``parent`` has another number of rows than the dataset the view was cut from.
    """

    def __init__(self, view, parent=None):
        self._rows = list(view)
        self.row_ids = [int(r.row_id) for r in self._rows]
        text = _summary(view)
        found = re.match(r"\s*(\d+) rows of (\d+) size dataset", text)
        self.source_rows = int(found.group(2)) if found else None
        if parent is not None and self.source_rows is not None and len(parent) != self.source_rows:
            raise ConfigError(f"ds_train/ds_val is a row range of a dataset of {self.source_rows} rows, but "
                              f"deeplake_path holds {len(parent)} rows: give the path of the dataset it was "
                              "cut from, or leave deeplake_path out")
        self.parent = parent
        self.schema = parent.schema if parent is not None else self._schema_from(text)
        self._names = {c.name for c in self.schema.columns}
        if parent is None:
            logger.warning("the dataset object is a RowRangeView (ds[a:b] or ds[[rows]]), which does not carry "
                           "its dataset's column metadata: boxes are read as LTWH pixels and classes get "
                           "generated names unless the metadata says otherwise. To keep them, pass a view "
                           "(ds.query('SELECT * LIMIT n')) or also set the split's deeplake_path to the dataset")

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, column: str) -> "_RangeColumn":
        if column not in self._names:
            raise KeyError(f"no column {column!r}; columns: {sorted(self._names)}")
        return _RangeColumn(self, column)

    @property
    def metadata(self):
        raise AttributeError("a RowRangeView has no dataset metadata")

    def _schema_from(self, text: str) -> _Schema:
        columns = []
        for line in text.splitlines():
            entry = re.match(r"\s{2}(\S+)\s*:\s*(.*)$", line)
            if not entry:
                continue
            name, description = entry.group(1), entry.group(2)
            kind = re.match(r"kind=(\w+)", description)
            word = kind.group(1) if kind else description.split("(")[0].strip()
            kind_name = _SUMMARY_KINDS.get(word, "Generic")
            compression = self._sniff(name) if kind_name == "Image" else None
            columns.append(_Column(name, _Type(_Kind(kind_name), compression)))
        if not columns:
            raise ConfigError("cannot read the columns of the RowRangeView (its summary lists none); pass a "
                              "view instead (ds.query('SELECT * ...'))")
        return _Schema(columns)

    def _sniff(self, column: str) -> str | None:
        """The image format of the first row's stored bytes (None: raw arrays)."""
        if not self._rows:
            return None
        try:
            head = bytes(self._rows[0].get_bytes(column)[:8])
        except Exception:
            return None
        return next((name for magic, name in _MAGIC if head.startswith(magic)), None)


class _RangeColumn:
    """One column of a ``RowRange``: values and stored bytes by row of the range."""

    def __init__(self, rows: RowRange, name: str):
        self._range, self.name = rows, name

    @property
    def metadata(self):
        if self._range.parent is not None:
            return self._range.parent[self.name].metadata
        return {}

    def _row(self, row: int):
        return self._range._rows[row]

    def __getitem__(self, rows):
        if isinstance(rows, slice):
            return [r[self.name] for r in self._range._rows[rows]]
        return self._row(int(rows))[self.name]

    def get_bytes(self, rows):
        if isinstance(rows, (list, tuple)):
            return [self._row(r).get_bytes(self.name) for r in rows]
        return self._row(int(rows)).get_bytes(self.name)

    def get_bytes_async(self, row: int):
        return self._row(int(row)).get_bytes_async(self.name)

    def get_async(self, rows):
        if isinstance(rows, slice):  # a row range reads its rows one by one: already done here
            return _Done(self[rows])
        return self._row(int(rows)).get_async(self.name)


class _Done:
    """A finished read, with the part of Deep Lake's ``Future`` interface lakedet waits on."""

    def __init__(self, value):
        self._value = value

    def is_completed(self) -> bool:
        return True

    def result(self):
        return self._value

    def cancel(self) -> None:
        pass


def _summary(view) -> str:
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        view.summary()
    return buffer.getvalue()
