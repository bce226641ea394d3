"""Feed the hub's :class:`~gm.hub.routing.Router` from the Cluster, independently of controllers.

:meth:`Watcher.sync` lists every Sedna kind synchronously, so the routing table is complete
before the hub accepts its first hello (a half-loaded table would tell LCs to delete objects).
:meth:`Watcher.start` then runs one thread per kind that watches from the listed
resourceVersion; when a watch fails (``Expired`` after compaction, a dropped connection) it
lists again and turns the difference into events, then watches on. Every event goes through
``apply(event_type, obj)``, which the hub serialises with the router.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from gm.cluster.interface import SEDNA_KINDS, Cluster, Kind, Obj

from .routing import rv_of

LOG = logging.getLogger(__name__)
Apply = Callable[[str, Obj], None]


def _max_rv(items: list[Obj]) -> str:
    numbers = [int(rv) for rv in map(rv_of, items) if rv.isdigit()]
    return str(max(numbers)) if numbers else ""


class Watcher:
    def __init__(self, cluster: Cluster, apply: Apply, forget: Callable[[Kind, set[str]], None],
                 kinds: tuple[Kind, ...] = SEDNA_KINDS) -> None:
        self._cluster = cluster
        self._apply = apply
        self._forget = forget
        self._kinds = kinds
        self._versions: dict[str, str] = {}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def _list(self, kind: Kind) -> tuple[list[Obj], str]:
        list_with_version = getattr(self._cluster, "list_with_version", None)
        if callable(list_with_version):
            items, rv = list_with_version(kind)
            return list(items), str(rv)
        items = self._cluster.list(kind)
        return items, _max_rv(items)

    def _relist(self, kind: Kind) -> None:
        items, rv = self._list(kind)
        for obj in items:
            self._apply("ADDED", obj)
        self._forget(kind, {(o.get("metadata") or {}).get("namespace", "") + "/" +
                            (o.get("metadata") or {}).get("name", "") for o in items})
        self._versions[kind.kind] = rv

    def sync(self) -> None:
        """List every kind once (blocking)."""
        for kind in self._kinds:
            self._relist(kind)

    def start(self) -> None:
        for kind in self._kinds:
            thread = threading.Thread(target=self._loop, args=(kind,), name=f"hub-watch-{kind.plural}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(5)

    def _loop(self, kind: Kind) -> None:
        while not self._stop.is_set():
            try:
                for event in self._cluster.watch(kind, resource_version=self._versions.get(kind.kind) or None,
                                                 stop=self._stop):
                    self._apply(event.type, event.object)
                    rv = rv_of(event.object)
                    if rv.isdigit() and int(rv) > int(self._versions.get(kind.kind) or 0):
                        self._versions[kind.kind] = rv
                return
            except Exception as exc:  # any watch failure: list again and resume (never a silent stop)
                if self._stop.is_set():
                    return
                LOG.warning("watch of %s failed (%s: %s); listing again", kind.plural, type(exc).__name__, exc)
                self._stop.wait(1.0)
                try:
                    self._relist(kind)
                except Exception as relist_exc:
                    LOG.error("listing %s failed: %s; retrying", kind.plural, relist_exc)
