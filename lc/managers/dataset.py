"""Datasets: count each local index file every period and report the count when it changes.

TXT: one sample per non-empty line that is not a ``#`` comment. CSV: records minus the header
(the ``csv`` module, so quoted newlines do not inflate the count). A missing or unreadable file,
a remote URL (``s3://``, not handled by this LC yet) or an unknown format is reported upstream
once as ``{"problem": ...}`` and checked again next period, never a crash. The last reported count
and problem are kept in ``meta`` so a restart does not report an unchanged count again.
Counting happens on a daemon thread (:meth:`DatasetManager.start`); :meth:`check` runs one pass.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lc.periodic import PeriodicWorker
from lc.store import Store
from sedna.controlplane import kinds
from sedna.controlplane.edgehub import ObjectKey, key_of
from sedna.controlplane.reports import DatasetPayload

LOG = logging.getLogger(__name__)


class IndexProblem(Exception):
    """The index file cannot be counted; the message is what the GM will show."""


def count_samples(path: Path, fmt: str) -> int:
    """Number of samples in a TXT or CSV index file."""
    fmt = (fmt or path.suffix.lstrip(".")).lower()
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            if fmt == "txt":
                return sum(1 for line in handle if line.strip() and not line.lstrip().startswith("#"))
            if fmt == "csv":
                rows = sum(1 for row in csv.reader(handle) if any(cell.strip() for cell in row))
                return max(0, rows - 1)
    except FileNotFoundError:
        raise IndexProblem(f"index file {str(path)!r} does not exist") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise IndexProblem(f"index file {str(path)!r} cannot be read: {exc}") from None
    raise IndexProblem(f"spec.format {fmt!r} is not supported (use txt or csv)")


class DatasetManager(PeriodicWorker):
    """Counts every dataset's index every ``period`` seconds (or when poked) and reports changes."""

    def __init__(self, store: Store, notify: Callable[[], None], period: float) -> None:
        super().__init__("lc-datasets", period)
        self._store = store
        self._notify = notify

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
            if "://" in url and not url.startswith("file://"):
                raise IndexProblem(f"spec.url {url!r} is remote; this LC counts local index files only")
            count = count_samples(Path(url.removeprefix("file://")), fmt)
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
