"""What the dashboard knows: an informer cache per kind, JI counters over time, and who to tell of a change.

:class:`Live` lists and watches every kind it shows through the :class:`~gm.cluster.interface.Cluster`
(the same informers the controllers use, :class:`gm.runtime.caching.Informer`, so it works on the
local and the kube backend alike) and keeps them in memory: pages render from these caches,
never from the cluster. Each change bumps :attr:`Live.seq` and is offered to every
:class:`Subscriber` (one per open browser page), whose ``interest`` function says which of its
page's regions the change touches; the subscriber marks them dirty and wakes its event loop once.
JointInferenceService status only holds the latest counters, so every change of
``status.inference`` is also kept as a :class:`Sample` (the last :data:`HISTORY_POINTS`), which
the JI page charts. Hub session state comes from a provider function the GM passes in
(:data:`NodeSessions`), not from the hub's internals.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from gm.cluster.interface import EVENT, JOINT_INFERENCE_SERVICE, NODE, POD, SEDNA_KINDS, Cluster, Kind, Obj
from gm.runtime.caching import Informer

WATCHED: tuple[Kind, ...] = (*SEDNA_KINDS, POD, EVENT, NODE)
HISTORY_POINTS = 720
NodeSessions = Callable[[], Mapping[str, Mapping[str, Any]]]
"""``node -> {connected, since, lastSeen, lastReport, reports, pending, inflight}`` (times: epoch seconds)."""
Interest = Callable[[str, Obj], set[str]]
"""``(kind plural, changed object) -> ids of the page regions it changes``."""


@dataclass(frozen=True)
class Sample:
    """A JointInferenceService's edge counters at one moment."""

    time: float
    count: int
    offload_ratio: float
    cloud_failures: int
    hard_examples: int


class Subscriber:
    """One open page: the regions changes have made stale since it last rendered them."""

    def __init__(self, interest: Interest, loop: asyncio.AbstractEventLoop) -> None:
        self.interest, self._loop = interest, loop
        self.wake = asyncio.Event()
        self._dirty: set[str] = set()
        self._lock = threading.Lock()
        self.seq = 0

    def offer(self, plural: str, obj: Obj, seq: int) -> None:
        """From a watch thread: mark what ``obj`` touches; wake the page's stream once per batch."""
        regions = self.interest(plural, obj)
        if not regions:
            return
        with self._lock:
            first = not self._dirty
            self._dirty |= regions
            self.seq = seq
        if first:
            try:
                self._loop.call_soon_threadsafe(self.wake.set)
            except RuntimeError:  # the loop has closed: the page is gone
                pass

    def mark(self, regions: set[str]) -> None:
        """From the event loop: mark ``regions`` stale and wake the stream."""
        with self._lock:
            self._dirty |= regions
        self.wake.set()

    def take(self) -> set[str]:
        """The stale regions (and forget them)."""
        with self._lock:
            dirty, self._dirty = self._dirty, set()
        self.wake.clear()
        return dirty


class Live:
    """Informer caches of :data:`WATCHED`, JI samples and the subscribers to tell."""

    def __init__(self, cluster: Cluster, kinds: tuple[Kind, ...] = WATCHED,
                 node_sessions: NodeSessions | None = None, clock: Callable[[], float] = time.time) -> None:
        self.kinds = {k.plural: k for k in kinds}
        self.informers = {k.plural: Informer(cluster, k, resync_period=86400.0) for k in kinds}
        self.node_sessions = node_sessions
        self.clock = clock
        self.seq = 0
        self._lock = threading.Lock()
        self._subscribers: set[Subscriber] = set()
        self._samples: dict[tuple[str, str], deque[Sample]] = {}
        if EVENT.plural in self.informers:
            self.informers[EVENT.plural].cache.add_index(
                "involved", lambda e: (e.get("involvedObject") or {}).get("uid") or None)
        for plural, informer in self.informers.items():
            informer.add_handler(lambda type_, obj, _old, plural=plural: self._changed(plural, type_, obj))

    def start(self, timeout: float = 30.0) -> None:
        """Start every informer and wait (up to ``timeout`` s) for their first lists."""
        for informer in self.informers.values():
            informer.start()
        deadline = time.monotonic() + timeout
        for informer in self.informers.values():
            informer.synced.wait(max(0.0, deadline - time.monotonic()))

    def stop(self) -> None:
        for informer in self.informers.values():
            informer.stop(timeout=2.0)

    # -- reads ---------------------------------------------------------------------------------------
    def objects(self, plural: str, namespace: str | None = None, labels: Mapping[str, str] | None = None) -> list[Obj]:
        """Cached objects of a kind, by namespace then name."""
        informer = self.informers.get(plural)
        if informer is None:
            return []
        items = informer.cache.list(namespace, labels)
        return sorted(items, key=lambda o: (o["metadata"].get("namespace") or "", o["metadata"].get("name") or ""))

    def get(self, plural: str, namespace: str, name: str) -> Obj | None:
        informer = self.informers.get(plural)
        return informer.cache.get(namespace, name) if informer else None

    def events_about(self, uid: str) -> list[Obj]:
        """Events whose involvedObject is ``uid``, oldest first."""
        informer = self.informers.get(EVENT.plural)
        if informer is None or not uid:
            return []
        return sorted(informer.cache.by_index("involved", uid), key=event_time)

    def samples(self, namespace: str, name: str) -> list[Sample]:
        with self._lock:
            return list(self._samples.get((namespace, name), ()))

    def sessions(self) -> dict[str, Mapping[str, Any]]:
        """The hub's view of every node, or {} without a hub."""
        if self.node_sessions is None:
            return {}
        return dict(self.node_sessions())

    # -- changes -------------------------------------------------------------------------------------
    def subscribe(self, subscriber: Subscriber) -> None:
        with self._lock:
            self._subscribers.add(subscriber)

    def unsubscribe(self, subscriber: Subscriber) -> None:
        with self._lock:
            self._subscribers.discard(subscriber)

    def _changed(self, plural: str, type_: str, obj: Obj) -> None:
        if type_ == "SYNC":
            return
        with self._lock:
            self.seq += 1
            seq = self.seq
            if plural == JOINT_INFERENCE_SERVICE.plural:
                self._sample(type_, obj)
            subscribers = list(self._subscribers)
        for subscriber in subscribers:
            subscriber.offer(plural, obj, seq)

    def _sample(self, type_: str, obj: Obj) -> None:
        meta = obj.get("metadata") or {}
        key = (meta.get("namespace") or "", meta.get("name") or "")
        if type_ == "DELETED":
            self._samples.pop(key, None)
            return
        info = (obj.get("status") or {}).get("inference")
        if not isinstance(info, dict):
            return
        sample = Sample(self.clock(), _int(info.get("count")), _float(info.get("offloadRatio")),
                        _int(info.get("cloudFailures")), _int(info.get("hardExamples")))
        series = self._samples.setdefault(key, deque(maxlen=HISTORY_POINTS))
        last = series[-1] if series else None
        if last is None or (last.count, last.offload_ratio, last.cloud_failures, last.hard_examples) != \
                (sample.count, sample.offload_ratio, sample.cloud_failures, sample.hard_examples):
            series.append(sample)


def event_time(event: Obj) -> str:
    return str(event.get("lastTimestamp") or event.get("eventTime") or
               (event.get("metadata") or {}).get("creationTimestamp") or "")


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _float(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0
