"""Follow one kind in the store forever: list, then watch, and list again when the watch expires.

The runtime, the Deployment controller and the Service proxy all need "tell me about every
object of this kind, now and as it changes" and must survive a compacted change log
(:class:`~gm.cluster.interface.Expired`). :func:`follow` gives them that as two callbacks: ``on_sync`` with the
full list (at start and after every re-list; callers drop what is missing from it) and
``on_event`` for each later change.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from gm.cluster.interface import ClusterError, Expired, Kind, Obj, WatchEvent
from gm.cluster.local.store import LocalStore
from sedna.common.log import get_logger

_LOG = get_logger(__name__)


def follow(store: LocalStore, kind: Kind, stop: threading.Event, on_sync: Callable[[list[Obj]], None],
           on_event: Callable[[WatchEvent], None], retry_delay: float = 1.0) -> None:
    """Call ``on_sync(all objects)`` then ``on_event(event)`` per change, until ``stop`` is set."""
    rv: str | None = None
    while not stop.is_set():
        try:
            if rv is None:
                items, rv = store.list_with_version(kind)
                on_sync(items)
            for event in store.changes(kind, None, int(rv), stop):  # rv "0" (an empty store) lists nothing again
                on_event(event)
                rv = event.object["metadata"]["resourceVersion"]
        except Expired:
            _LOG.info("watch of %s expired; listing again", kind.plural)
            rv = None
        except ClusterError as exc:
            if not stop.is_set():
                _LOG.warning("watch of %s failed (%s); retrying in %g s", kind.plural, exc, retry_delay)
                stop.wait(retry_delay)


def start_follower(store: LocalStore, kind: Kind, stop: threading.Event, on_sync: Callable[[list[Obj]], None],
                   on_event: Callable[[WatchEvent], None], name: str) -> threading.Thread:
    """Run :func:`follow` in a daemon thread named ``name``."""
    thread = threading.Thread(target=follow, args=(store, kind, stop, on_sync, on_event), name=name, daemon=True)
    thread.start()
    return thread
