"""Forward federated / incremental / lifelong learning worker reports upstream unchanged.

The payload keeps Sedna's upstream shape (:class:`~sedna.controlplane.reports.WorkerPayload`:
``{phase, status, worker, output: {models, ownerInfo}}``); the GM's per-kind upstream handler
decides what it means.
"""

from __future__ import annotations

from collections.abc import Callable

from lc.store import Store
from sedna.controlplane.edgehub import ObjectKey
from sedna.controlplane.reports import WorkerReport


class PassThroughManager:
    def __init__(self, owner_kind: str, store: Store, notify: Callable[[], None]) -> None:
        self.owner_kind = owner_kind
        self._store = store
        self._notify = notify

    def handle(self, report: WorkerReport) -> int:
        key = ObjectKey(self.owner_kind, report.namespace, report.owner_name)
        seq = self._store.enqueue(key, dict(report.payload()))
        self._notify()
        return seq
