"""Upstream: turn LC status reports into resource status, once per ``(node, seq)``, in order.

:class:`HandlerRegistry` maps a lowercase kind to a handler ``(cluster, report) -> None``. Built in:

- ``dataset``: ``{"numberOfSamples": N}`` -> ``status.numberOfSamples`` + ``updateTime``;
  ``{"problem": "..."}`` -> condition ``IndexReadable=False`` with the message, plus a Warning event.
- ``jointinferenceservice``: the node's aggregated edge counters (``output.ownerInfo``) ->
  ``status.inference`` {count, hardExamples, offloadRatio, cloudFailures, fallbacks, updateTime}
  and Sedna's ``status.metrics`` [{key, value}] (inferenceNumber, hardExampleNumber, uploadCloudRatio).

FL / IL / LL controllers register their own handlers on the hub handle's ``handlers``; until one
is registered their reports are acknowledged and dropped with an INFO log (``result="unhandled"``).
A handler raises :class:`MalformedReport` for bad payloads; that, or a missing target object,
rejects the report with a reason (logged, sent back to the LC) and the stream goes on.
:class:`Upstream` applies reports through the registry and :mod:`.sequences`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from gm.cluster.interface import DATASET, JOINT_INFERENCE_SERVICE, Cluster, NotFound
from gm.errors import MalformedReport
from sedna.common.log import get_logger
from sedna.service.edgehub import Report, ReportAck

from .sequences import SequenceBook

LOG = get_logger(__name__)
Handler = Callable[[Cluster, Report], None]
PASS_THROUGH_KINDS = ("federatedlearningjob", "incrementallearningjob", "lifelonglearningjob")


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _int(payload: dict[str, Any], path: str, where: str = "") -> int:
    value: Any = payload
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise MalformedReport(f"{where}{path}: expected a non-negative integer, got {value!r}")
    return value


def handle_dataset(cluster: Cluster, report: Report) -> None:
    key, payload = report.key, report.payload
    if "problem" in payload:
        message = str(payload["problem"])
        obj = cluster.patch_status(DATASET, key.namespace, key.name, {"conditions": [
            {"type": "IndexReadable", "status": "False", "reason": "IndexFileUnreadable", "message": message,
             "lastTransitionTime": now()}]})
        cluster.emit_event(obj, "IndexFileUnreadable", message, "Warning")
        return
    count = _int(payload, "numberOfSamples")
    cluster.patch_status(DATASET, key.namespace, key.name, {
        "numberOfSamples": count, "updateTime": now(),
        "conditions": [{"type": "IndexReadable", "status": "True", "reason": "Counted",
                        "message": f"{count} samples", "lastTransitionTime": now()}]})


def handle_joint_inference(cluster: Cluster, report: Report) -> None:
    info = (report.payload.get("output") or {}).get("ownerInfo")
    if not isinstance(info, dict):
        raise MalformedReport("output.ownerInfo: expected an object of edge counters")
    where = "output.ownerInfo."
    count, hard = _int(info, "inferenceNumber", where), _int(info, "hardExampleNumber", where)
    failures = _int(info, "cloudFailures", where) if "cloudFailures" in info else 0
    fallbacks = _int(info, "fallbacks", where) if "fallbacks" in info else 0
    ratio = info.get("uploadCloudRatio", hard / count if count else 0.0)
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 <= ratio <= 1:
        raise MalformedReport(f"output.ownerInfo.uploadCloudRatio: expected a number in [0, 1], got {ratio!r}")
    stamp = info.get("updateTime") if isinstance(info.get("updateTime"), str) and info.get("updateTime") else now()
    cluster.patch_status(JOINT_INFERENCE_SERVICE, report.key.namespace, report.key.name, {
        "inference": {"count": count, "hardExamples": hard, "offloadRatio": float(ratio),
                      "cloudFailures": failures, "fallbacks": fallbacks, "updateTime": stamp},
        "metrics": [{"key": "inferenceNumber", "value": str(count)},
                    {"key": "hardExampleNumber", "value": str(hard)},
                    {"key": "uploadCloudRatio", "value": str(float(ratio))}],
    })


class HandlerRegistry:
    """Upstream handlers by lowercase kind; thread-safe."""

    def __init__(self, handlers: dict[str, Handler] | None = None) -> None:
        self._handlers = dict(handlers or {})
        self._lock = threading.Lock()

    @classmethod
    def default(cls) -> HandlerRegistry:
        return cls({"dataset": handle_dataset, "jointinferenceservice": handle_joint_inference})

    def register(self, kind: str, handler: Handler) -> None:
        """Handle reports for ``kind`` (lowercase kind name, e.g. ``federatedlearningjob``)."""
        with self._lock:
            self._handlers[kind.lower()] = handler

    def get(self, kind: str) -> Handler | None:
        with self._lock:
            return self._handlers.get(kind)

    def knows(self, kind: str) -> bool:
        return self.get(kind) is not None or kind in PASS_THROUGH_KINDS


class Upstream:
    """Applies one node's reports in order, once each; returns the ack to send back."""

    def __init__(self, cluster: Cluster, handlers: HandlerRegistry, book: SequenceBook,
                 count: Callable[[str, str], None] = lambda kind, result: None) -> None:
        self.cluster = cluster
        self.handlers = handlers
        self.book = book
        self._count = count

    def apply(self, node: str, report: Report) -> ReportAck:
        """Apply ``report``; a cluster error other than NotFound propagates (the stream is dropped)."""
        kind = report.key.kind
        if report.seq <= self.book.mark(node):
            self._count(kind, "duplicate")
            return ReportAck(report.seq, accepted=True, duplicate=True)
        handler = self.handlers.get(kind)
        reason = ""
        try:
            if handler is not None:
                handler(self.cluster, report)
            elif kind in PASS_THROUGH_KINDS:
                LOG.info("node %s: no upstream handler registered for %s yet; report %d for %s dropped",
                         node, kind, report.seq, report.key)
            else:
                raise KeyError(kind)
        except KeyError:
            reason = f"kind: {kind!r} takes no status reports (known: {', '.join(self._known())})"
        except MalformedReport as exc:
            reason = f"{report.key}: {exc}"
        except NotFound as exc:
            reason = f"{report.key}: {exc}"
        self.book.advance(node, report.seq)
        if reason:
            LOG.warning("node %s: rejected report %d: %s", node, report.seq, reason)
            self._count(kind, "rejected")
            return ReportAck(report.seq, accepted=False, reason=reason)
        self._count(kind, "applied" if handler is not None else "unhandled")
        return ReportAck(report.seq)

    def _known(self) -> list[str]:
        return sorted({"dataset", "jointinferenceservice", *PASS_THROUGH_KINDS})
