"""Managers: one per resource kind the LC looks after (Sedna §3.3).

A manager that takes worker reports implements :class:`ReportHandler`; the worker API picks it
by the report's ``ownerKind``. :func:`build` wires the default set: ``dataset`` (index counting,
its own loop), ``model`` (kept for the learning managers), ``jointinferenceservice`` (counter
aggregation) and a pass-through for ``federatedlearningjob``, ``incrementallearningjob`` and
``lifelonglearningjob`` reports.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from lc.reports import WorkerReport
from lc.store import Store


class ReportHandler(Protocol):
    owner_kind: str

    def handle(self, report: WorkerReport) -> int:
        """Check the report, derive the status report and put it in the outbox; return its seq."""
        ...


def build(store: Store, notify: Callable[[], None]) -> dict[str, ReportHandler]:
    """The report handlers by ``ownerKind``."""
    from lc.managers.jointinference import JointInferenceManager
    from lc.managers.passthrough import PASS_THROUGH_KINDS, PassThroughManager

    handlers: dict[str, ReportHandler] = {"jointinferenceservice": JointInferenceManager(store, notify)}
    for kind in PASS_THROUGH_KINDS:
        handlers[kind] = PassThroughManager(kind, store, notify)
    return handlers
