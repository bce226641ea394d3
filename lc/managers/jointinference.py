"""Joint inference: aggregate the edge workers' cumulative counters into one status report.

Each edge worker reports its own cumulative ``ownerInfo`` {inferenceNumber, hardExampleNumber,
uploadCloudRatio, cloudFailures, fallbacks, startTime, updateTime} every few seconds. The LC
keeps every worker's latest values (table ``counters``, so a restart loses nothing) and reports
their sum; ``uploadCloudRatio`` is the inference-weighted mean. The aggregate is an absolute
value, so applying a report twice or late cannot skew the GM's status; the GM still applies
each report once, in order. Counter update and outbox entry share one transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lc.errors import BadReport
from lc.reports import WorkerReport
from lc.store import Store
from sedna.service.edgehub import ObjectKey

_COUNTERS = ("inferenceNumber", "hardExampleNumber", "cloudFailures", "fallbacks")
_REQUIRED = ("inferenceNumber", "hardExampleNumber")


def _count(info: dict[str, Any], name: str) -> int:
    value = info.get(name, 0)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or value != int(value):
        raise BadReport(f"ownerInfo.{name}", f"must be a non-negative integer, got {value!r}")
    return int(value)


def counters_of(info: dict[str, Any]) -> dict[str, Any]:
    """Check one worker's ``ownerInfo`` and return its normalised counters."""
    for name in _REQUIRED:
        if name not in info:
            raise BadReport(f"ownerInfo.{name}", "is required in jointinferenceservice reports")
    out: dict[str, Any] = {name: _count(info, name) for name in _COUNTERS}
    ratio = info.get("uploadCloudRatio")
    if ratio is None:
        ratio = out["hardExampleNumber"] / out["inferenceNumber"] if out["inferenceNumber"] else 0.0
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 <= ratio <= 1:
        raise BadReport("ownerInfo.uploadCloudRatio", f"must be a number between 0 and 1, got {ratio!r}")
    out["uploadCloudRatio"] = float(ratio)
    for name in ("startTime", "updateTime"):
        value = info.get(name, "")
        if not isinstance(value, str):
            raise BadReport(f"ownerInfo.{name}", f"must be a timestamp string, got {value!r}")
        out[name] = value
    return out


def aggregate(workers: list[dict[str, Any]]) -> dict[str, Any]:
    """Sum the workers' counters; the ratio is weighted by each worker's inferences."""
    total: dict[str, Any] = {name: sum(w[name] for w in workers) for name in _COUNTERS}
    weight = total["inferenceNumber"]
    ratio = sum(w["uploadCloudRatio"] * w["inferenceNumber"] for w in workers) / weight if weight else 0.0
    total["uploadCloudRatio"] = round(ratio, 6)
    starts = [w["startTime"] for w in workers if w["startTime"]]
    total["startTime"] = min(starts) if starts else ""
    total["updateTime"] = max((w["updateTime"] for w in workers), default="")
    return total


class JointInferenceManager:
    owner_kind = "jointinferenceservice"

    def __init__(self, store: Store, notify: Callable[[], None]) -> None:
        self._store = store
        self._notify = notify

    def handle(self, report: WorkerReport) -> int:
        counters = counters_of(report.owner_info)
        key = ObjectKey(self.owner_kind, report.namespace, report.owner_name)
        with self._store.transaction() as db:
            total, workers = self._store.update_counters(str(key), report.worker, counters,
                                                         lambda rows: (aggregate(rows), len(rows)))
            payload = {"phase": report.kind or "inference", "status": report.status,
                       "output": {"ownerInfo": total}, "workers": workers}
            seq = self._store.enqueue(key, payload, db)
        self._notify()
        return seq

