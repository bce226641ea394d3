"""Upstream: turn LC status reports into resource status, once per ``(node, seq)``, in order.

:class:`HandlerRegistry` maps a lowercase kind to a handler ``(cluster, report) -> None``. Built in:

- ``dataset``: ``{"numberOfSamples": N}`` -> ``status.numberOfSamples`` + ``updateTime``;
  ``{"problem": "..."}`` -> condition ``IndexReadable=False`` with the message, plus a Warning event.
- ``jointinferenceservice``: the node's aggregated edge counters (``output.ownerInfo``, a
  :class:`~sedna.controlplane.counters.JointCounters`) -> ``status.inference`` and Sedna's
  ``status.metrics``.

FL / IL / LL controllers register their own handlers on the hub handle's ``handlers``; until one
is registered their reports are acknowledged and dropped with an INFO log (``result="unhandled"``).

What :class:`Upstream` promises the LC's outbox (each report is applied once, in order, or
rejected with a reason; nothing is lost):

- a report for a kind that takes none, a payload a handler refuses (any
  :class:`~sedna.controlplane.errors.ContractError`, e.g. :class:`MalformedReport`) or a missing
  target object is *rejected*: the ack says ``accepted=False`` with the reason, the sequence
  advances, the LC drops it (it would fail the same way again) and the stream goes on;
- any other error raised while applying (the cluster failed, or a handler has a bug) is *not*
  acknowledged and does not advance the sequence: it propagates, the session drops the stream,
  and the LC resends the report, in order, after its reconnect backoff.

History: a ``KeyError`` raised inside a handler was taken for "this kind takes no status
reports", acknowledged as rejected and its sequence advanced, so a handler bug silently lost the
report under a wrong reason.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from gm.cluster.interface import DATASET, JOINT_INFERENCE_SERVICE, Cluster, NotFound
from gm.errors import MalformedReport
from sedna.controlplane import kinds
from sedna.controlplane.counters import JointCounters
from sedna.controlplane.edgehub import NodeName, Report, ReportAck
from sedna.controlplane.errors import ContractError

from .sequences import SequenceBook

LOG = logging.getLogger(__name__)
Handler = Callable[[Cluster, Report], None]
UNHANDLED_KINDS = frozenset(k.key for k in kinds.JOBS)
"""Kinds whose reports are acknowledged and dropped while no handler is registered for them."""


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
    counters = JointCounters.from_owner_info(info, where="output.ownerInfo")
    cluster.patch_status(JOINT_INFERENCE_SERVICE, report.key.namespace, report.key.name,
                         dict(counters.status(now())))


class HandlerRegistry:
    """Upstream handlers by lowercase kind; thread-safe."""

    def __init__(self, handlers: dict[str, Handler] | None = None) -> None:
        self._handlers = dict(handlers or {})
        self._lock = threading.Lock()

    @classmethod
    def default(cls) -> HandlerRegistry:
        return cls({kinds.DATASET.key: handle_dataset, kinds.JOINT_INFERENCE_SERVICE.key: handle_joint_inference})

    def register(self, kind: str, handler: Handler) -> None:
        """Handle reports for ``kind`` (lowercase kind name, e.g. ``federatedlearningjob``)."""
        with self._lock:
            self._handlers[kind.lower()] = handler

    def get(self, kind: str) -> Handler | None:
        with self._lock:
            return self._handlers.get(kind)

    def knows(self, kind: str) -> bool:
        return self.get(kind) is not None or kind in UNHANDLED_KINDS

    def known(self) -> list[str]:
        """Every kind that takes status reports."""
        with self._lock:
            return sorted({*self._handlers, *UNHANDLED_KINDS})


class Upstream:
    """Applies one node's reports in order, once each; returns the ack to send back."""

    def __init__(self, cluster: Cluster, handlers: HandlerRegistry, book: SequenceBook,
                 count: Callable[[str, str], None] = lambda kind, result: None) -> None:
        self.cluster = cluster
        self.handlers = handlers
        self.book = book
        self._count = count

    def apply(self, node: NodeName, report: Report) -> ReportAck:
        """Apply ``report``, or reject it with a reason; any other error propagates unacknowledged.

        See the module docstring for which is which: the caller drops the stream on an error, so
        the LC resends the report.
        """
        kind = report.key.kind
        if report.seq <= self.book.mark(node):
            self._count(kind, "duplicate")
            return ReportAck(report.seq, accepted=True, duplicate=True)
        handler = self.handlers.get(kind)
        reason = ""
        if handler is None and kind not in UNHANDLED_KINDS:
            reason = f"kind: {kind!r} takes no status reports (known: {', '.join(self.handlers.known())})"
        elif handler is None:
            LOG.info("node %s: no upstream handler registered for %s yet; report %d for %s dropped",
                     node, kind, report.seq, report.key)
        else:
            try:
                handler(self.cluster, report)
            except (ContractError, NotFound) as exc:
                reason = f"{report.key}: {exc}"
        self.book.advance(node, report.seq)
        if reason:
            LOG.warning("node %s: rejected report %d: %s", node, report.seq, reason)
            self._count(kind, "rejected")
            return ReportAck(report.seq, accepted=False, reason=reason)
        self._count(kind, "applied" if handler is not None else "unhandled")
        return ReportAck(report.seq)
