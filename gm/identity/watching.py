"""Watch one kind (in one namespace) for as long as the GM runs, whatever the watch does.

The identity's caches must never silently stop following the cluster (a missed delete would
leave a revoked node connected). :func:`watch_forever` watches from the last resourceVersion it
saw; when the watch fails (``Expired`` after compaction, a dropped connection) it lists again,
hands the full list to ``relisted`` (so deletes missed meanwhile are noticed) and watches on.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from gm.cluster.interface import Cluster, Kind, Obj

LOG = logging.getLogger(__name__)
Apply = Callable[[str, Obj], None]
Relisted = Callable[[list[Obj]], None]


def _rv(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


def watch_forever(cluster: Cluster, kind: Kind, namespace: str | None, apply: Apply, relisted: Relisted | None,
                  stop: threading.Event) -> None:
    """Call ``apply(event_type, obj)`` for every change of ``kind`` until ``stop`` is set."""
    version: str | None = None
    while not stop.is_set():
        try:
            for event in cluster.watch(kind, namespace, resource_version=version, stop=stop):
                apply(event.type, event.object)
                rv = _rv(event.object)
                if rv.isdigit() and (version is None or int(rv) > int(version)):
                    version = rv
            return
        except Exception as exc:  # any watch failure: list again and resume (never a silent stop)
            if stop.is_set():
                return
            LOG.warning("identity watch of %s failed (%s: %s); listing again", kind.plural, type(exc).__name__, exc)
            stop.wait(1.0)
            try:
                items = cluster.list(kind, namespace)
            except Exception as list_exc:
                LOG.error("listing %s failed: %s; retrying", kind.plural, list_exc)
                continue
            for obj in items:
                apply("MODIFIED", obj)
            if relisted is not None:
                relisted(items)
            numbers = [int(v) for v in map(_rv, items) if v.isdigit()]
            version = str(max(numbers)) if numbers else None
