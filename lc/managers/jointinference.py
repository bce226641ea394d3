"""Joint inference: aggregate the edge workers' cumulative counters into one status report.

Each edge worker reports its own cumulative ``ownerInfo`` {inferenceNumber, hardExampleNumber,
uploadCloudRatio, cloudFailures, fallbacks, startTime, updateTime} every few seconds. The LC
keeps every worker's latest values (table ``counters``, so a restart loses nothing) and reports
their sum; ``uploadCloudRatio`` is the inference-weighted mean. The aggregate is an absolute
value, so applying a report twice or late cannot skew the GM's status; the GM still applies
each report once, in order. Counter update and outbox entry share one transaction.

A worker that restarts counts from 0 again. The LC notices (its ``startTime`` changed, or a
counter went down) and folds the values it last reported into that worker's ``base``, stored
with its counters; the worker's contribution is ``base + current``, so totals never go back.
(History: the first version stored only the latest counters, and a restart lowered the totals.)
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from lc.store import Store
from sedna.controlplane import kinds
from sedna.controlplane.counters import JointCounters
from sedna.controlplane.edgehub import ObjectKey
from sedna.controlplane.reports import WorkerPayload, WorkerReport

LOG = logging.getLogger(__name__)
Record = dict[str, Any]
"""What ``counters`` holds per worker: ``{"current": ownerInfo, "base": {ownerInfo counter: n, "uploaded": x}}``."""
_COUNTERS = {"inferences": "inferenceNumber", "hard_examples": "hardExampleNumber",
             "cloud_failures": "cloudFailures", "fallbacks": "fallbacks"}
"""The summable :class:`JointCounters` fields and their ``ownerInfo`` names (the base's keys)."""


def _zero_base() -> dict[str, Any]:
    return {**{key: 0 for key in _COUNTERS.values()}, "uploaded": 0.0}


def _split(record: Record) -> tuple[JointCounters, dict[str, Any]]:
    """``(current, base)`` of a stored record (a row written before bases existed is the latest counters)."""
    if "current" not in record:
        return JointCounters.from_owner_info(record), _zero_base()
    return JointCounters.from_owner_info(record["current"]), dict(record["base"])


def restarted(previous: JointCounters, current: JointCounters) -> bool:
    """True when ``current`` counts from a new start: another startTime, or any counter went down."""
    if previous.start_time and current.start_time and previous.start_time != current.start_time:
        return True
    return any(getattr(current, name) < getattr(previous, name) for name in _COUNTERS)


def advance(record: Record | None, current: JointCounters) -> tuple[Record, bool]:
    """The worker's next record after ``current`` arrived, and whether it had restarted."""
    if record is None:
        return {"current": current.owner_info(), "base": _zero_base()}, False
    previous, base = _split(record)
    reset = restarted(previous, current)
    if reset:
        for name, key in _COUNTERS.items():
            base[key] += getattr(previous, name)
        base["uploaded"] += previous.offload_ratio * previous.inferences
    return {"current": current.owner_info(), "base": base}, reset


def effective(record: Record) -> JointCounters:
    """A worker's counters since it first reported: ``base + current``."""
    current, base = _split(record)
    summed = {name: base[key] + getattr(current, name) for name, key in _COUNTERS.items()}
    uploaded = base["uploaded"] + current.offload_ratio * current.inferences
    inferences = summed["inferences"]
    return replace(current, **summed, offload_ratio=uploaded / inferences if inferences else current.offload_ratio)


class JointInferenceManager:
    owner_kind = kinds.JOINT_INFERENCE_SERVICE.key

    def __init__(self, store: Store, notify: Callable[[], None]) -> None:
        self._store = store
        self._notify = notify

    def handle(self, report: WorkerReport) -> int:
        counters = JointCounters.from_owner_info(report.owner_info)
        key = ObjectKey(self.owner_kind, report.namespace, report.owner_name)

        def total(rows: list[Record]) -> tuple[JointCounters, int]:
            return JointCounters.total([effective(r) for r in rows]), len(rows)

        with self._store.transaction() as db:
            record, reset = advance(self._store.get_counters(str(key), report.worker), counters)
            summed, workers = self._store.update_counters(str(key), report.worker, record, total)
            payload: WorkerPayload = {"phase": report.kind or "inference", "status": report.status,
                                      "output": {"ownerInfo": summed.owner_info()}, "workers": workers}
            seq = self._store.enqueue(key, dict(payload), db)
        if reset:
            LOG.info("worker %s of %s restarted (counters from 0 again); its earlier counts are kept",
                     report.worker, key)
        self._notify()
        return seq
