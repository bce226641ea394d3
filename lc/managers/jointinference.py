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

from collections.abc import Callable
from typing import Any

from lc.errors import BadReport
from lc.reports import WorkerReport
from lc.store import Store
from sedna.common.log import get_logger
from sedna.service.edgehub import ObjectKey

LOG = get_logger(__name__)
_COUNTERS = ("inferenceNumber", "hardExampleNumber", "cloudFailures", "fallbacks")
_REQUIRED = ("inferenceNumber", "hardExampleNumber")
Record = dict[str, Any]
"""What ``counters`` holds per worker: ``{"current": counters, "base": {counter: n, "uploaded": x}}``."""


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


def _zero_base() -> dict[str, Any]:
    return {**{name: 0 for name in _COUNTERS}, "uploaded": 0.0}


def restarted(previous: dict[str, Any], current: dict[str, Any]) -> bool:
    """True when ``current`` counts from a new start: another startTime, or any counter went down."""
    if previous.get("startTime") and current["startTime"] and previous["startTime"] != current["startTime"]:
        return True
    return any(current[name] < previous.get(name, 0) for name in _COUNTERS)


def advance(record: Record | None, current: dict[str, Any]) -> tuple[Record, bool]:
    """The worker's next record after ``current`` arrived, and whether it had restarted."""
    if record is None:
        return {"current": current, "base": _zero_base()}, False
    if "current" not in record:  # a row written before bases existed: it is the latest counters
        record = {"current": record, "base": _zero_base()}
    previous, base = record["current"], dict(record["base"])
    reset = restarted(previous, current)
    if reset:
        for name in _COUNTERS:
            base[name] += previous.get(name, 0)
        base["uploaded"] += previous.get("uploadCloudRatio", 0.0) * previous.get("inferenceNumber", 0)
    return {"current": current, "base": base}, reset


def effective(record: Record) -> dict[str, Any]:
    """A worker's counters since it first reported: ``base + current``."""
    if "current" not in record:
        record = {"current": record, "base": _zero_base()}
    current, base = record["current"], record["base"]
    out: dict[str, Any] = {name: base[name] + current[name] for name in _COUNTERS}
    uploaded = base["uploaded"] + current["uploadCloudRatio"] * current["inferenceNumber"]
    count = out["inferenceNumber"]
    out["uploadCloudRatio"] = uploaded / count if count else current["uploadCloudRatio"]
    out["startTime"], out["updateTime"] = current["startTime"], current["updateTime"]
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
            record, reset = advance(self._store.get_counters(str(key), report.worker), counters)
            total, workers = self._store.update_counters(
                str(key), report.worker, record, lambda rows: (aggregate([effective(r) for r in rows]), len(rows)))
            payload = {"phase": report.kind or "inference", "status": report.status,
                       "output": {"ownerInfo": total}, "workers": workers}
            seq = self._store.enqueue(key, payload, db)
        if reset:
            LOG.info("worker %s of %s restarted (counters from 0 again); its earlier counts are kept",
                     report.worker, key)
        self._notify()
        return seq
