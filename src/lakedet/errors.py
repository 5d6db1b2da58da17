"""Exception types raised by lakedet.

Every message names the thing that is wrong (key, column, row, commit) and what would be right.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["LakedetError", "ConfigError", "SchemaError", "SourceError", "SourceTimeout", "ReadTimeout",
           "DataError", "RankError", "did_you_mean"]


class LakedetError(Exception):
    """Base class of every error lakedet raises on purpose."""


class ConfigError(LakedetError, ValueError):
    """A configuration key or value is wrong."""


class SourceError(LakedetError):
    """A Deep Lake dataset cannot be opened as asked (path, credentials, commit, view, query)."""


class SourceTimeout(SourceError):
    """A remote open did not finish in time; Deep Lake may still hold native threads on it."""


class ReadTimeout(SourceTimeout):
    """Reading a row did not finish in time (the storage went away mid-run); names the URL and the row."""


class SchemaError(LakedetError, ValueError):
    """The dataset's columns do not fit what lakedet needs (mapping, box format, classes)."""


class DataError(LakedetError):
    """One row of the dataset holds data that cannot be used (names the row and column)."""


class RankError(LakedetError, RuntimeError):
    """A rank that ``train_detector(..., distributed=True)`` spawned failed; the others were stopped.

    Attributes:
        rank: the rank that failed first.
        exit_code: its exit code (negative: the signal that killed it).
        error_type: the name of the exception it raised (None when it died without raising one).
    """

    def __init__(self, message: str, rank: int, exit_code: int, error_type: str | None = None):
        super().__init__(message)
        self.rank, self.exit_code, self.error_type = rank, exit_code, error_type


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """Return `` (did you mean 'x'?)`` for the closest candidate, or an empty string."""
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
