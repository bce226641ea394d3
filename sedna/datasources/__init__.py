"""Dataset indexes and the data sources Sedna programs parse them with.

:mod:`sedna.datasources.index` is the one index parser (the LC counts and splits with
it; it imports nothing heavy). :class:`TxtDataParse` and :class:`CSVDataParse` build
on it with Sedna's semantics (:mod:`sedna.datasources.parsers`); they load on first
use so that importing the index parser stays cheap.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sedna.datasources.index import IndexFile, IndexFileError, Record, index_format, parse_index, read_index

if TYPE_CHECKING:
    from sedna.datasources.parsers import BaseDataSource, CSVDataParse, TxtDataParse

__all__ = ["BaseDataSource", "CSVDataParse", "IndexFile", "IndexFileError", "Record", "TxtDataParse",
           "index_format", "parse_index", "read_index", "resolve_path"]

_PARSERS = ("BaseDataSource", "CSVDataParse", "TxtDataParse")


def resolve_path(entry: str, index_file: str | Path) -> str:
    """``entry`` made absolute against the directory of ``index_file`` (absolute entries and URLs kept).

    ``index_file`` may be a URL (``s3://bucket/ds/index.txt``, ``http://host/ds/index.txt``): the
    result is then a URL in the same folder (``s3://bucket/ds/<entry>``) that
    :class:`~sedna.datasources.samples.SampleCache` fetches.
    """
    if "://" in entry:
        return entry
    index = str(index_file)
    if index.startswith(("s3://", "http://", "https://")):
        import posixpath

        scheme, _, rest = index.partition("://")
        host, _, key = rest.partition("/")
        folder = posixpath.dirname("/" + key)
        return f"{scheme}://{host}{posixpath.normpath(posixpath.join(folder, entry))}"
    path = Path(entry)
    if path.is_absolute():
        return str(path)
    return str(Path(index_file).resolve().parent / path)


def __getattr__(name: str) -> Any:
    if name in _PARSERS:
        from sedna.datasources import parsers

        return getattr(parsers, name)
    raise AttributeError(f"module 'sedna.datasources' has no attribute {name!r}")
