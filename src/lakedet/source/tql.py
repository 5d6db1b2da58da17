"""TQL queries, bounded in time on remote data: over a path (``query_path``, how Deep Lake 3
datasets are read), over an opened dataset (``run_query``), and the query selecting given rows
(``row_query``)."""

from __future__ import annotations

from ..errors import SourceError, SourceTimeout
from .remote import bounded

__all__ = ["query_path", "run_query", "row_query"]


def query_path(spec, text: str, what: str):
    """``deeplake.query(text)`` with the spec's credentials; for remote data bounded (``bounded``)."""
    import deeplake

    kwargs = {}
    if spec.creds is not None:
        kwargs["creds"] = dict(spec.creds)
    if spec.token is not None:
        kwargs["token"] = spec.token
    return bounded(spec, lambda: deeplake.query(text, **kwargs), lambda: deeplake.query_async(text, **kwargs), what)


def run_query(ds, spec):
    """``spec.query`` run over the opened ``ds``.

    Raises:
        SourceError: the query failed (Deep Lake's message follows).
        SourceTimeout: remote data did not answer in time.
    """
    try:
        return bounded(spec, lambda: ds.query(spec.query), lambda: ds.query_async(spec.query),
                       f"running deeplake_query={spec.query!r}")
    except SourceTimeout:
        raise
    except Exception as exc:  # deeplake raises RuntimeError for TQL errors
        raise SourceError(f"deeplake_query {spec.query!r} on {spec.path!r} failed: {exc}") from exc


def row_query(source: str | None, rows) -> str:
    """A TQL query selecting ``rows`` of ``source`` (None: no FROM, for ``ds.query``), in dataset
    order: one contiguous run as a range, otherwise ``contains(ARRAY[...], ROW_NUMBER())``
    (``ROW_NUMBER() IN (...)`` and ``BETWEEN`` fail in Deep Lake 4.7)."""
    rows = sorted(set(int(r) for r in rows))
    head = "SELECT *" if source is None else f'SELECT * FROM "{source}"'
    if not rows:
        return f"{head} LIMIT 0"
    if rows == list(range(rows[0], rows[-1] + 1)):
        if rows[0] == 0:
            return f"{head} LIMIT {len(rows)}"
        return f"{head} WHERE ROW_NUMBER() >= {rows[0]} AND ROW_NUMBER() <= {rows[-1]}"
    return f'{head} WHERE contains(ARRAY[{", ".join(map(str, rows))}], ROW_NUMBER())'
