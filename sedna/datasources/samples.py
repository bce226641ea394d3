"""Local copies of a remote dataset's sample files, for programs that read them as files.

A Dataset whose index is an ``s3://`` or ``http(s)://`` URL lists its samples relative to the
index's folder (SEDNA-REFERENCE §1.1); the workers get that URL as ``ORIGINAL_DATASET_URL``.
:meth:`SampleCache.local` resolves an index entry against it
(:func:`sedna.datasources.resolve_path`) and returns a local file: the entry itself when local,
else a copy fetched once into the cache folder (``<root>/<hash of the URL>/<file name>``) with
:mod:`sedna.common.downloads` (S3 settings from the worker's env). Files are only copied, never
unpickled. ``..`` in an entry never climbs above the dataset's bucket or host (the key is
normalised from its root).
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path

from sedna.common.errors import DataSourceError
from sedna.datasources import resolve_path

REMOTE = ("s3://", "http://", "https://")


class SampleCache:
    """Fetches remote sample files once; ``root`` None: a private temporary folder removed by :meth:`close`."""

    def __init__(self, root: str | Path | None = None, environ: Mapping[str, str] | None = None) -> None:
        self._owned = root is None
        self.root = Path(tempfile.mkdtemp(prefix="sedna-samples-") if root is None else root)
        self._environ = environ
        self._lock = threading.Lock()

    def local(self, entry: str, index_url: str) -> str:
        """A local file holding the sample ``entry`` of the index at ``index_url``."""
        url = resolve_path(entry, index_url)
        if not url.startswith(REMOTE):
            return url
        target = self.root / hashlib.sha256(url.encode()).hexdigest()[:16] / (url.rsplit("/", 1)[-1] or "sample")
        with self._lock:
            if not target.exists():
                from sedna.common.downloads import fetch

                try:
                    fetch(url, target, environ=self._environ)
                except (OSError, ValueError) as exc:
                    raise DataSourceError(f"cannot fetch sample {entry!r} of {index_url!r}: {exc}") from None
        return str(target)

    def close(self) -> None:
        """Remove the cache folder when this object created it."""
        if self._owned:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> SampleCache:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


__all__ = ["SampleCache"]
