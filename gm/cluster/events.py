"""Events about objects, aggregated as Kubernetes' event correlator does; one implementation for both backends.

Controllers are level-triggered, so they see the same fact again and again (every reconcile of
a crash-looping worker, every resync of an invalid spec). :class:`EventRecorder` folds a repeat of
the same ``(object uid, type, reason, message)`` within ``window`` seconds into the Event already
recorded: ``count`` grows and ``lastTimestamp`` moves, which ``kubectl describe`` shows as
"x5 over 3m". A repeat after the window starts the series again at count 1, as on Kubernetes a
new Event would replace the one its TTL removed. A different message is a different Event.

The Event is named ``<object name>.<16 hex digits of the hash of uid, type, reason, message>``,
so the series survives a GM restart without any cache, and two writers racing on it meet in
:class:`~gm.errors.AlreadyExists` / :class:`~gm.errors.Conflict` and retry. The backends call
:meth:`EventRecorder.record` from their ``emit_event`` (:mod:`gm.cluster.local.store`,
:mod:`gm.cluster.kube`), which stays best effort: an Event never fails a reconcile.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, Protocol

from gm.cluster.interface import EVENT, AlreadyExists, Conflict, NotFound, Obj

MAX_MESSAGE = 1024
"""Longer messages are cut (the API server's limit for an Event message)."""
DEFAULT_WINDOW = 600.0
"""Seconds within which a repeat counts into the same Event (the correlator's aggregation interval)."""


class _Store(Protocol):
    """The part of :class:`~gm.cluster.interface.Cluster` Events are written through."""

    def get(self, kind: Any, namespace: str, name: str) -> Obj: ...

    def create(self, obj: Obj) -> Obj: ...

    def update(self, obj: Obj) -> Obj: ...


def utc_now() -> datetime:
    """The current UTC time."""
    return datetime.now(timezone.utc)


def _stamp(when: datetime) -> str:
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(stamp: Any) -> datetime | None:
    """An RFC 3339 timestamp as an aware datetime (None when absent or malformed)."""
    if not isinstance(stamp, str) or not stamp:
        return None
    try:
        parsed = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=timezone.utc)


def event_name(involved: Obj, type_: str, reason: str, message: str) -> str:
    """The name of the Event series of ``(involved uid, type, reason, message)``."""
    meta = involved.get("metadata") or {}
    digest = hashlib.sha1(f"{meta.get('uid')}|{reason}|{message}|{type_}".encode(), usedforsecurity=False)
    return f"{meta.get('name') or 'unknown'}.{digest.hexdigest()[:16]}"


class EventRecorder:
    """Records Events through ``store``, counting repeats within ``window`` seconds into one Event.

    Parameters
    ----------
    store:
        The backend (``get`` / ``create`` / ``update`` of v1 Events).
    component:
        ``source.component`` and ``reportingComponent`` of every Event.
    window:
        Seconds within which the same Event is counted instead of started again.
    now:
        The clock (tests pass a fake one).
    """

    def __init__(self, store: _Store, component: str = "sedna-gm", window: float = DEFAULT_WINDOW,
                 now: Callable[[], datetime] = utc_now) -> None:
        self._store, self._kind = store, EVENT
        self.component, self.window, self._now = component, window, now
        self._lock = threading.Lock()

    def record(self, involved: Obj, reason: str, message: str, type_: str = "Normal") -> Obj:
        """Record one occurrence; return the Event as stored. Raises the backend's errors."""
        message = message if len(message) <= MAX_MESSAGE else message[:MAX_MESSAGE - 3] + "..."
        meta = involved.get("metadata") or {}
        namespace = meta.get("namespace") or "default"
        name = event_name(involved, type_, reason, message)
        with self._lock:
            for _ in range(5):
                when = self._now()
                try:
                    current = self._store.get(self._kind, namespace, name)
                except NotFound:
                    try:
                        return self._store.create(self._new(involved, name, namespace, reason, message, type_, when))
                    except AlreadyExists:  # another writer started the series first: count into it
                        continue
                try:
                    return self._store.update(self._repeat(current, when))
                except (Conflict, NotFound):  # another writer counted (or it expired) meanwhile: read again
                    continue
        raise Conflict(f"event {namespace}/{name} kept changing while it was being recorded")

    def _repeat(self, event: Obj, when: datetime) -> Obj:
        last = parse_time(event.get("lastTimestamp")) or parse_time(event.get("firstTimestamp"))
        if last is not None and (when - last).total_seconds() <= self.window:
            event["count"] = int(event.get("count") or 1) + 1
        else:
            event["count"] = 1
            event["firstTimestamp"] = _stamp(when)
        event["lastTimestamp"] = _stamp(when)
        return event

    def _new(self, involved: Obj, name: str, namespace: str, reason: str, message: str, type_: str,
             when: datetime) -> Obj:
        meta = involved.get("metadata") or {}
        stamp = _stamp(when)
        return {
            "apiVersion": "v1", "kind": "Event", "metadata": {"name": name, "namespace": namespace},
            "involvedObject": {"apiVersion": involved.get("apiVersion"), "kind": involved.get("kind"),
                               "name": meta.get("name"), "namespace": meta.get("namespace"),
                               "uid": meta.get("uid"), "resourceVersion": meta.get("resourceVersion")},
            "reason": reason, "message": message, "type": type_, "count": 1,
            "firstTimestamp": stamp, "lastTimestamp": stamp,
            "source": {"component": self.component}, "reportingComponent": self.component,
            "reportingInstance": self.component,
        }
