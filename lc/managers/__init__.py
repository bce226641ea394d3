"""Managers: one per resource kind the LC looks after (Sedna §3.3).

A manager that takes worker reports implements :class:`ReportHandler`; the worker API picks it
by the report's ``ownerKind``. :func:`build` wires the default set: the joint-inference counter
aggregation, lifelong learning's (:mod:`lc.lifelong.reports`: only jobs this node holds) and a
pass-through for the other learning jobs' reports (every kind of :data:`~sedna.controlplane.kinds.JOBS`).
Datasets have their own loop (:class:`~lc.managers.dataset.DatasetManager`); Models need no
manager (the learning loops read them from the store).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from lc.store import Store
from sedna.controlplane import kinds
from sedna.controlplane.reports import WorkerReport


class ReportHandler(Protocol):
    @property
    def owner_kind(self) -> str: ...

    def handle(self, report: WorkerReport) -> int:
        """Check the report, derive the status report and put it in the outbox; return its seq."""
        ...


def build(store: Store, notify: Callable[[], None]) -> dict[str, ReportHandler]:
    """The report handlers by ``ownerKind``."""
    from lc.lifelong.reports import LifelongReports
    from lc.managers.jointinference import JointInferenceManager
    from lc.managers.passthrough import PassThroughManager

    handlers: dict[str, ReportHandler] = {kind.key: PassThroughManager(kind.key, store, notify) for kind in kinds.JOBS}
    handlers[kinds.JOINT_INFERENCE_SERVICE.key] = JointInferenceManager(store, notify)
    handlers[kinds.LIFELONG_LEARNING_JOB.key] = LifelongReports(store, notify)
    return handlers
