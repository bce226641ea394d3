"""Worker reports of lifelong-learning jobs: forwarded upstream, but only for jobs this node holds.

A worker reports to its own node's LC, and a node holds a job only when the GM routed it there
(the job's Dataset, stage and inference workers are on it). A report about a lifelong-learning
job this LC does not hold comes from a worker that belongs elsewhere (or from no real worker):
it is refused with a 400 naming ``ownerName``, and nothing is forwarded. A report of a kind no
lifelong worker sends is refused the same way, naming ``kind``.
"""

from __future__ import annotations

from collections.abc import Callable

from lc.store import Store
from sedna.controlplane import kinds
from sedna.controlplane.edgehub import ObjectKey
from sedna.controlplane.errors import BadReport
from sedna.controlplane.reports import WorkerReport

KINDS = ("train", "eval", "deploy", "inference")


class LifelongReports:
    """The LC's report handler for ``ownerKind=lifelonglearningjob``."""

    owner_kind = kinds.LIFELONG_LEARNING_JOB.key

    def __init__(self, store: Store, notify: Callable[[], None]) -> None:
        self._store, self._notify = store, notify

    def handle(self, report: WorkerReport) -> int:
        key = ObjectKey(self.owner_kind, report.namespace, report.owner_name)
        if self._store.get_object(key) is None:
            raise BadReport("ownerName", f"{self.owner_kind} {report.namespace}/{report.owner_name} is not held by "
                                         "this node: a worker reports to the LC of the node it runs on")
        if report.kind not in KINDS:
            raise BadReport("kind", f"{report.kind!r} is not a lifelong-learning report (expected one of "
                                    f"{', '.join(KINDS)})")
        seq = self._store.enqueue(key, dict(report.payload()))
        self._notify()
        return seq
