"""Models: check that each Model this node holds has its file here, and tell the GM when that changes.

The GM routes a Model to the nodes of the workers that use it, so this LC holds exactly the
Models its workers will load. For each one whose ``spec.url`` is a local path (or ``file://``)
the LC reports ``{available, reason, message, generation}`` upstream (the shape
:func:`gm.controllers.model.apply_node_report` files under ``status.nodeReports[<node>]``):
``available: false, reason: FileMissing`` while the file (or directory) is absent, ``available:
true`` once it is there. Remote URLs (``s3://``, ``http(s)://``) are fetched by the worker's
storage initializer, not by this LC, and are not reported. A report is queued only when the
answer changes (kept in ``meta``, so a restart does not repeat it) or the Model's generation does.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lc.periodic import PeriodicWorker
from lc.store import Store
from sedna.controlplane import kinds
from sedna.controlplane.edgehub import ObjectKey, key_of

LOG = logging.getLogger(__name__)


def local_path(url: str) -> Path | None:
    """The local path ``url`` names, or None for a remote URL."""
    if url.startswith("file://"):
        return Path(url.removeprefix("file://"))
    if "://" in url:
        return None
    return Path(url)


def check(url: str) -> dict[str, Any] | None:
    """The node report for a Model at ``url`` (without its generation), or None when it is not local."""
    path = local_path(url)
    if path is None:
        return None
    if not url:
        return {"available": False, "reason": "NoURL", "message": "spec.url is empty"}
    if not path.exists():
        return {"available": False, "reason": "FileMissing", "message": f"{path}: no such file or directory"}
    if not os.access(path, os.R_OK):
        return {"available": False, "reason": "FileUnreadable", "message": f"{path}: not readable by the LC"}
    return {"available": True, "reason": "Available", "message": f"{path} is present"}


class ModelManager(PeriodicWorker):
    """Checks every Model's file every ``period`` seconds (or when poked) and reports changes."""

    kind = kinds.MODEL.key

    def __init__(self, store: Store, notify: Callable[[], None], period: float) -> None:
        super().__init__("lc-models", period)
        self._store = store
        self._notify = notify

    def check(self) -> int:
        """Check every Model once; return how many reports were queued."""
        sent = sum(self._check_one(obj) for obj in self._store.list_objects(self.kind))
        if sent:
            self._notify()
        return sent

    def _check_one(self, obj: dict[str, Any]) -> int:
        key = key_of(obj)
        report = check(str((obj.get("spec") or {}).get("url") or ""))
        if report is None:
            return 0
        generation = int((obj.get("metadata") or {}).get("generation") or 1)
        state = f"{report['reason']}:{generation}:{report['message']}"
        meta_key = f"model/{key}"
        if self._store.get_meta(meta_key) == state:
            return 0
        with self._store.transaction() as db:
            self._store.enqueue(ObjectKey(self.kind, key.namespace, key.name), {**report, "generation": generation},
                                db)
            self._store.set_meta(meta_key, state, db)
        log = LOG.info if report["available"] else LOG.warning
        log("model %s/%s: %s", key.namespace, key.name, report["message"])
        return 1
