"""The source layer: which Deep Lake data to read, opened read-only (path, credentials, commit,
saved view, query), Deep Lake 4 and Deep Lake 3 datasets alike, every remote wait bounded."""

from .layout import ChunkLayout
from .open import (dataset_format, open_source, open_source_with_origin, origin_of, reopen_source, source_history,
                   storage_layout)
from .remote import OPEN_TIMEOUT_S, explain_open_failure
from .spec import OpenedDataset, Origin, SourceSpec, is_deeplake_dataset, is_remote, is_row_range_view

__all__ = ["SourceSpec", "Origin", "OpenedDataset", "open_source", "open_source_with_origin", "origin_of",
           "dataset_format", "source_history", "is_deeplake_dataset", "is_remote", "is_row_range_view", "OPEN_TIMEOUT_S",
           "explain_open_failure", "ChunkLayout", "storage_layout", "reopen_source"]
