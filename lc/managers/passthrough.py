"""Forward federated / incremental / lifelong learning worker reports upstream unchanged.

The payload keeps Sedna's upstream shape, ``{phase, status, output: {models, ownerInfo}}``,
plus the reporting worker; the GM's per-kind upstream handler decides what it means.
"""

from __future__ import annotations

from collections.abc import Callable

from lc.reports import WorkerReport
from lc.store import Store
from sedna.service.edgehub import ObjectKey

PASS_THROUGH_KINDS = ("federatedlearningjob", "incrementallearningjob", "lifelonglearningjob")


class PassThroughManager:
    def __init__(self, owner_kind: str, store: Store, notify: Callable[[], None]) -> None:
        self.owner_kind = owner_kind
        self._store = store
        self._notify = notify

    def handle(self, report: WorkerReport) -> int:
        payload = {
            "phase": report.kind,
            "status": report.status,
            "worker": report.worker,
            "output": {"models": report.results, "ownerInfo": report.owner_info},
        }
        seq = self._store.enqueue(ObjectKey(self.owner_kind, report.namespace, report.owner_name), payload)
        self._notify()
        return seq
