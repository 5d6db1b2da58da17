"""What to open (``SourceSpec``), where opened rows come from (``Origin``), and a dataset the
caller opened itself, carried inside a config (``OpenedDataset``).

``SourceSpec.from_keys`` is the one place where the seed's ``deeplake_*`` source keys
(``lakedet.config.keys.SOURCE_KEYS``) become a ``SourceSpec``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError
from .credentials import resolve_credentials

__all__ = ["SourceSpec", "Origin", "OpenedDataset", "is_deeplake_dataset", "is_row_range_view", "is_remote"]

_TOKEN_SCHEMES = ("hub://", "al://")
_CLOUD_SCHEMES = ("s3://", "gs://", "gcs://", "az://", "azure://")


def is_remote(path: str) -> bool:
    """True for cloud storage and the Deep Lake API (``s3://``, ``gs://``, ``az://``, ``hub://`` ...)."""
    return isinstance(path, str) and path.startswith(_TOKEN_SCHEMES + _CLOUD_SCHEMES)


@dataclass(frozen=True)
class SourceSpec:
    """What to open. Empty strings count as "not set" (the seed's example uses them).

    ``token`` and ``creds`` are the resolved secrets: they never show in a ``repr`` or a log.
    """

    path: str
    token: str | None = field(default=None, repr=False)
    creds: Mapping[str, Any] | None = field(default=None, hash=False, repr=False)
    commit: str | None = None
    view: str | None = None
    query: str | None = None

    def __post_init__(self):
        for name in ("token", "commit", "view", "query"):
            if getattr(self, name) == "":
                object.__setattr__(self, name, None)
        if not self.creds:
            object.__setattr__(self, "creds", None)
        elif not isinstance(self.creds, Mapping):
            raise ConfigError(f"deeplake_credentials['creds'] must be a dict of settings (aws_access_key_id, "
                              f"endpoint_url, ...), got {type(self.creds).__name__}")
        if not isinstance(self.path, str) or not self.path:
            raise ConfigError(f"deeplake_path must be a non-empty string, got {self.path!r}")

    @classmethod
    def from_keys(cls, deeplake_path=None, deeplake_credentials=None, deeplake_commit_id=None,
                  deeplake_commit=None, deeplake_view_id=None, deeplake_query=None) -> "SourceSpec":
        """The spec the seed's source keys describe (credential references resolved).

        Raises:
            ConfigError: no path, two different commits, or bad credentials.
        """
        if deeplake_commit_id and deeplake_commit and deeplake_commit_id != deeplake_commit:
            raise ConfigError(f"deeplake_commit_id={deeplake_commit_id!r} and deeplake_commit={deeplake_commit!r} "
                              "disagree; give one")
        if not deeplake_path:
            raise ConfigError("deeplake_path is missing: give the Deep Lake dataset URL (or an opened dataset "
                              "as deeplake_dataset / ds_train / ds_val)")
        token, creds = resolve_credentials(deeplake_credentials)
        return cls(path=deeplake_path, token=token, creds=creds, commit=deeplake_commit_id or deeplake_commit,
                   view=deeplake_view_id, query=deeplake_query)

    @property
    def remote(self) -> bool:
        """The data is on cloud storage or behind the Deep Lake API (reads there are bounded in time)."""
        return is_remote(self.path)

    def refuse_view_and_query(self) -> None:
        """A Deep Lake 4 source takes a saved view or a query, not both (a Deep Lake 3 source
        runs the query over the view, as ``deeplake_query`` on top of a v3 view meant)."""
        if self.view and self.query:
            raise ConfigError("deeplake_view_id and deeplake_query are both set; give one: a saved "
                              f"view ({self.view!r}) or a TQL query ({self.query!r}) (only on a Deep Lake 3 "
                              "dataset does the query run over the view)")

    @property
    def description(self) -> str:
        """Human-readable name of the selection, e.g. ``/data/coco@abc123[view=v1]``."""
        text = self.path
        if self.commit:
            text += f"@{self.commit}"
        if self.view:
            text += f"[view={self.view}]"
        if self.query:
            text += f"[query={self.query}]"
        return text


@dataclass(frozen=True)
class Origin:
    """Where opened rows come from: the branch and commit they were read at (None if unknown),
    the dataset's format (``deeplake4``, or ``deeplake3`` for data Deep Lake 3 wrote, read in
    place) and, for v3 data, whether ``commit`` is a branch's HEAD (uncommitted changes included)
    and the selection that was read (``lakedet.source.deeplake3.V3Selection``: the ref or saved
    view and its source rows), from which the storage layout is read."""

    branch: str | None
    commit: str | None
    format: str = "deeplake4"
    head: bool = False
    selection: Any = field(default=None, compare=False, repr=False)


def is_deeplake_dataset(obj: Any) -> bool:
    """True for an opened Deep Lake dataset or view (any of its classes, ``RowRangeView`` included)."""
    return (type(obj).__module__.startswith("deeplake") and hasattr(obj, "__len__")
            and (hasattr(obj, "schema") or type(obj).__name__ == "RowRangeView"))


def is_row_range_view(obj) -> bool:
    """True for Deep Lake's ``RowRangeView`` (``ds[a:b]``, ``ds[[rows]]``): rows without a schema."""
    return type(obj).__name__ == "RowRangeView" and type(obj).__module__.startswith("deeplake")


class OpenedDataset:
    """A Deep Lake dataset or view the caller opened (``ds_train=...``), carried inside a config.

    mmengine deep-copies configs and dataloader configs before building them, and several Deep
    Lake classes (``RowRangeView`` from ``ds[a:b]`` or ``ds[[rows]]``, ...) can be neither copied
    nor pickled. A copy of this handle is the handle itself: every copy reads the same opened,
    read-only object (DataLoader workers started by ``fork`` inherit it). Pickling it (``spawn``
    workers) pickles the object, which Deep Lake allows for some classes only; the error then says
    what to do instead. Where a config is written out, the handle shows as a string that says
    what it was (``deeplake_dataset`` cannot be given in a config file).
    """

    def __init__(self, dataset: Any):
        if isinstance(dataset, OpenedDataset):
            dataset = dataset.dataset
        if not is_deeplake_dataset(dataset):
            raise ConfigError(f"expected an opened Deep Lake dataset or view (deeplake.open_read_only(...), "
                              f"ds.query(...), ds[a:b]), got {type(dataset).__name__}")
        self.dataset = dataset

    def __deepcopy__(self, memo):
        return self

    def __copy__(self):
        return self

    def __reduce__(self):
        import pickle

        try:
            pickle.dumps(self.dataset)
        except Exception as exc:
            raise TypeError(f"an opened Deep Lake {type(self.dataset).__name__} cannot be sent to another "
                            f"process ({exc}); start DataLoader workers with 'fork' (mmengine's default, "
                            "env_cfg.mp_cfg.mp_start_method) or give deeplake_path with deeplake_query "
                            "instead of the object") from None
        return OpenedDataset, (self.dataset,)

    @property
    def description(self) -> str:
        return f"an opened {type(self.dataset).__name__} of {len(self.dataset)} rows"

    def __repr__(self) -> str:  # how a written-out config shows it: a Python string literal
        return repr(f"<{self.description}>")
