"""List/watch informer caches, one per kind, over the :class:`~gm.cluster.interface.Cluster`.

An :class:`Informer` lists a kind, then watches it from the highest resourceVersion it
saw; every change updates its cache first and then calls the registered handlers with
``(event_type, obj)``. A watch that fails or ends (an expired resourceVersion, a dropped
connection) is followed by a fresh list, whose differences are delivered as events too,
so nothing is missed. Every ``resync_period`` seconds the handlers get a ``SYNC`` for
every cached object: reconcilers are level-triggered, so this repairs anything a lost
event left behind.

Handlers must be cheap: they map objects to keys and add them to a queue
(:mod:`gm.runtime.reconciling`). Reconcilers read from :class:`Cache` objects.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from gm.cluster.interface import Cluster, Kind, Obj

_Objs = list[Obj]
_Events = list[tuple[str, Obj]]

log = logging.getLogger(__name__)

Handler = Callable[[str, Obj, "Obj | None"], None]
"""Called with ``ADDED`` / ``MODIFIED`` / ``DELETED`` / ``SYNC``, the object and, for
``MODIFIED``, the version the cache held before (None when unknown)."""


def _rv(obj: Obj) -> int:
    try:
        return int(obj.get("metadata", {}).get("resourceVersion") or 0)
    except (TypeError, ValueError):
        return 0


def _key(obj: Obj) -> tuple[str, str]:
    meta = obj.get("metadata", {})
    return meta.get("namespace") or "", meta.get("name") or ""


class Cache:
    """The objects of one kind, by ``(namespace, name)``, with an owner-uid index; thread-safe."""

    def __init__(self, kind: Kind) -> None:
        self.kind = kind
        self._lock = threading.RLock()
        self._objects: dict[tuple[str, str], Obj] = {}
        self._by_owner: dict[str, set[tuple[str, str]]] = {}
        self._indexers: dict[str, Callable[[Obj], str | None]] = {}
        self._indexes: dict[str, dict[str, set[tuple[str, str]]]] = {}

    def add_index(self, name: str, key: Callable[[Obj], str | None]) -> None:
        """Index objects by ``key(obj)`` (None: not indexed); query with :meth:`by_index`."""
        with self._lock:
            self._indexers[name] = key
            index: dict[str, set[tuple[str, str]]] = {}
            for okey, obj in self._objects.items():
                value = key(obj)
                if value is not None:
                    index.setdefault(value, set()).add(okey)
            self._indexes[name] = index

    def by_index(self, name: str, value: str) -> _Objs:
        """Objects whose index ``name`` key is ``value``."""
        with self._lock:
            return [self._objects[k] for k in self._indexes[name].get(value, ()) if k in self._objects]

    def get(self, namespace: str, name: str) -> Obj | None:
        """The cached object, or None. Treat it as read-only."""
        with self._lock:
            return self._objects.get((namespace, name))

    def list(self, namespace: str | None = None, labels: Mapping[str, str] | None = None) -> _Objs:
        """Cached objects in ``namespace`` (all when None) whose labels include ``labels``."""
        with self._lock:
            items = list(self._objects.values())
        return [o for o in items if (namespace is None or _key(o)[0] == namespace) and _has_labels(o, labels)]

    def owned_by(self, uid: str) -> _Objs:
        """Cached objects whose ownerReferences name ``uid``."""
        with self._lock:
            return [self._objects[k] for k in self._by_owner.get(uid, ()) if k in self._objects]

    def __len__(self) -> int:
        with self._lock:
            return len(self._objects)

    def put(self, obj: Obj) -> Obj | None:
        """Store ``obj``; return the previous version (None if new)."""
        key = _key(obj)
        with self._lock:
            old = self._objects.get(key)
            if old is not None:
                self._unindex(key, old)
            self._objects[key] = obj
            for uid in _owner_uids(obj):
                self._by_owner.setdefault(uid, set()).add(key)
            for name, indexer in self._indexers.items():
                value = indexer(obj)
                if value is not None:
                    self._indexes[name].setdefault(value, set()).add(key)
            return old

    def remove(self, obj: Obj) -> Obj | None:
        """Drop ``obj``'s key; return what was cached."""
        key = _key(obj)
        with self._lock:
            old = self._objects.pop(key, None)
            if old is not None:
                self._unindex(key, old)
            return old

    def replace(self, objs: Iterable[Obj]) -> _Events:
        """Replace everything with a fresh list; return the changes as events."""
        fresh = {_key(o): o for o in objs}
        events: _Events = []
        with self._lock:
            for key, gone in [*self._objects.items()]:
                if key not in fresh:
                    self.remove(gone)
                    events.append(("DELETED", gone))
            for obj in fresh.values():
                old = self.put(obj)
                if old is None:
                    events.append(("ADDED", obj))
                elif _rv(old) != _rv(obj):
                    events.append(("MODIFIED", obj))
        return events

    def _unindex(self, key: tuple[str, str], obj: Obj) -> None:
        for name, indexer in self._indexers.items():
            value = indexer(obj)
            keys = self._indexes[name].get(value) if value is not None else None
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._indexes[name][value]  # type: ignore[arg-type]
        for uid in _owner_uids(obj):
            keys = self._by_owner.get(uid)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_owner[uid]


def _owner_uids(obj: Obj) -> list[str]:
    return [ref.get("uid", "") for ref in obj.get("metadata", {}).get("ownerReferences") or [] if ref.get("uid")]


def _has_labels(obj: Obj, labels: Mapping[str, str] | None) -> bool:
    if not labels:
        return True
    have: Mapping[str, Any] = obj.get("metadata", {}).get("labels") or {}
    return all(have.get(k) == v for k, v in labels.items())


class Informer:
    """Keeps a :class:`Cache` of one kind in sync with the cluster on a background thread."""

    def __init__(self, cluster: Cluster, kind: Kind, namespace: str | None = None,
                 resync_period: float = 300.0, retry_delay: float = 1.0) -> None:
        self.cluster = cluster
        self.kind = kind
        self.namespace = namespace
        self.resync_period = resync_period
        self.retry_delay = retry_delay
        self.cache = Cache(kind)
        self.synced = threading.Event()
        self.relists = 0
        self._handlers: list[Handler] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def add_handler(self, handler: Handler) -> None:
        """Call ``handler`` for every change (register before :meth:`start`)."""
        self._handlers.append(handler)

    def start(self) -> None:
        """Start the list/watch and resync threads."""
        for target, label in ((self._run, "watch"), (self._resync_loop, "resync")):
            thread = threading.Thread(target=target, name=f"informer-{self.kind.plural}-{label}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop both threads (the watch notices within the backend's poll interval)."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)

    def _dispatch(self, event_type: str, obj: Obj, old: Obj | None = None) -> None:
        for handler in self._handlers:
            try:
                handler(event_type, obj, old)
            except Exception:  # a handler bug must not kill the watch; it is logged with its traceback
                log.exception("event handler for %s %s/%s failed", self.kind.kind, *_key(obj))

    def list_once(self) -> int:
        """List the kind, deliver the differences to the cache; return the highest resourceVersion."""
        list_with_version = getattr(self.cluster, "list_with_version", None)
        if list_with_version is not None:  # the backend knows the version the list was taken at
            objs, version = list_with_version(self.kind, self.namespace)
            rv = int(version or 0)
        else:  # watching from the newest object replays, at worst, a few changes we already have
            objs = self.cluster.list(self.kind, self.namespace)
            rv = max((_rv(o) for o in objs), default=0)
        for event_type, obj in self.cache.replace(objs):
            self._dispatch(event_type, obj)
        self.synced.set()
        return rv

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                rv = self.list_once()
                self.relists += 1
                start = str(rv) if rv else None
                for event in self.cluster.watch(self.kind, self.namespace, start, self._stop):
                    if self._stop.is_set():
                        return
                    self._apply(event.type, event.object)
                if not self._stop.is_set():
                    log.info("watch of %s ended; listing again", self.kind.plural)
            except Exception as exc:  # re-list after any watch failure: expiry, connection loss, ...
                log.warning("watch of %s failed (%s: %s); listing again in %.1fs",
                            self.kind.plural, type(exc).__name__, exc, self.retry_delay)
                self._stop.wait(self.retry_delay)

    def _apply(self, event_type: str, obj: Obj) -> None:
        old = None
        if event_type == "DELETED":
            self.cache.remove(obj)
        else:
            old = self.cache.put(obj)
            if old is not None and _rv(old) > _rv(obj):  # a replayed, older version: keep the newer one
                self.cache.put(old)
                return
            if old is not None and _rv(old) == _rv(obj) and event_type == "ADDED":
                return  # a synthetic ADDED for an object we already have
        self._dispatch(event_type, obj, old)

    def _resync_loop(self) -> None:
        while not self._stop.wait(self.resync_period):
            for obj in self.cache.list():
                self._dispatch("SYNC", obj)
