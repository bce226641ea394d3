"""Datasets: count each local index file every period and report the count when it changes.

Samples are what :mod:`sedna.datasources.index` reads (the parser the IL split and the SDK use
too, so the count, the split and a worker's data agree): TXT, one per non-blank, non-``#`` line;
CSV, records minus the header (quoted newlines do not inflate the count); a last record still being
written is counted once it settles. Format ``dir`` (Sedna's, for a directory of samples): every
non-hidden regular file under the directory, recursively (hidden entries and symlinked
directories are skipped). A remote index (``s3://``, ``http(s)://``) is copied into the LC's cache
first (:mod:`lc.managers.remote`) and counted there. A missing, unfetchable or unreadable file or
an unknown format is reported upstream once as ``{"problem": ...}`` (naming the URL and the reason)
and checked again next period, never a crash. The last reported count
and problem are kept in ``meta`` so a restart does not report an unchanged count again.
Counting happens on a daemon thread (:meth:`DatasetManager.start`); :meth:`check` runs one pass.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lc.managers import remote
from lc.periodic import PeriodicWorker
from lc.store import Store
from sedna.controlplane import kinds
from sedna.controlplane.edgehub import ObjectKey, key_of
from sedna.controlplane.reports import DatasetPayload
from sedna.datasources.index import FORMATS, SETTLE_SECONDS, IndexFileError, read_index

LOG = logging.getLogger(__name__)


class IndexProblem(Exception):
    """The index file cannot be counted; the message is what the GM will show."""


DIR_FORMAT = "dir"
MAX_DIR_ENTRIES = 10_000_000
"""A ``dir`` dataset with more entries than this is reported as a problem rather than walked forever."""


def count_samples(path: Path, fmt: str) -> int:
    """Number of samples in a TXT or CSV index file, or in a directory (``dir``)."""
    fmt = (fmt or path.suffix.lstrip(".")).lower()
    if fmt == DIR_FORMAT:
        return count_directory(path)
    if fmt not in FORMATS:
        raise IndexProblem(f"spec.format {fmt!r} is not supported (use txt, csv or dir)")
    try:
        return len(read_index(path, fmt, settle_seconds=SETTLE_SECONDS))
    except IndexFileError as exc:
        raise IndexProblem(str(exc)) from None


def count_directory(root: Path) -> int:
    """The non-hidden regular files under ``root``, recursively (symlinked directories are not followed)."""
    if not root.is_dir():
        what = "does not exist" if not root.exists() else "is not a directory"
        raise IndexProblem(f"spec.url {str(root)!r} {what} (spec.format dir names a directory of samples)")
    count, seen, pending = 0, 0, [root]
    while pending:
        folder = pending.pop()
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    seen += 1
                    if seen > MAX_DIR_ENTRIES:
                        raise IndexProblem(f"spec.url {str(root)!r} holds more than {MAX_DIR_ENTRIES} entries; "
                                           "use a txt or csv index for a dataset this large")
                    if entry.name.startswith("."):
                        continue
                    if entry.is_dir(follow_symlinks=False):
                        pending.append(Path(entry.path))
                    elif entry.is_file():
                        count += 1
        except PermissionError as exc:
            raise IndexProblem(f"spec.url {str(root)!r}: cannot read {exc.filename!r} (permission denied)") from None
        except FileNotFoundError:
            continue  # removed while counting; the next period counts again
    return count


class DatasetManager(PeriodicWorker):
    """Counts every dataset's index every ``period`` seconds (or when poked) and reports changes."""

    kind = kinds.DATASET.key

    def __init__(self, store: Store, notify: Callable[[], None], period: float,
                 cache_dir: Path | None = None) -> None:
        super().__init__("lc-datasets", period)
        self._store = store
        self._notify = notify
        self._cache = cache_dir if cache_dir is not None else remote.cache_dir_of(store.path, "datasets")

    def check(self) -> int:
        """Count every dataset once; return how many reports were queued."""
        sent = 0
        for obj in self._store.list_objects(kinds.DATASET.key):
            sent += self._check_one(obj)
        if sent:
            self._notify()
        return sent

    def _check_one(self, obj: dict[str, Any]) -> int:
        key = key_of(obj)
        spec = obj.get("spec") or {}
        url, fmt = str(spec.get("url") or ""), str(spec.get("format") or "")
        try:
            if not url:
                raise IndexProblem("spec.url is empty")
            if remote.is_remote(url):
                if (fmt or "").lower() == DIR_FORMAT:
                    raise IndexProblem(f"spec.url {url!r}: format dir needs a local directory; "
                                       "index a remote dataset with a txt or csv file")
                local = remote.fetch_index(url, self._cache)
                try:
                    count = count_samples(local, fmt)
                except IndexProblem as exc:
                    raise IndexProblem(f"spec.url {url!r} (copied to {str(local)!r}): {exc}") from None
            elif "://" in url and not url.startswith("file://"):
                raise IndexProblem(f"spec.url {url!r}: unsupported scheme (use a path, file://, s3:// or http(s)://)")
            else:
                count = count_samples(Path(url.removeprefix("file://")), fmt)
        except remote.RemoteError as exc:
            problem = f"spec.url: {exc}"
            return self._report_once(key, "problem", problem, {"problem": problem})
        except IndexProblem as exc:
            return self._report_once(key, "problem", str(exc), {"problem": str(exc)})
        return self._report_once(key, "count", str(count), {"numberOfSamples": count})

    def _report_once(self, key: ObjectKey, what: str, value: str, payload: DatasetPayload) -> int:
        meta_key = f"dataset/{key}"
        state = f"{what}:{value}"
        if self._store.get_meta(meta_key) == state:
            return 0
        with self._store.transaction() as db:
            self._store.enqueue(ObjectKey(kinds.DATASET.key, key.namespace, key.name), dict(payload), db)
            self._store.set_meta(meta_key, state, db)
        if what == "problem":
            LOG.warning("dataset %s/%s: %s", key.namespace, key.name, value)
        return 1
