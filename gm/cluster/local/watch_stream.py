"""The HTTP watch of the local API, served as the Kubernetes API serves it.

``GET <collection>?watch=1&resourceVersion=RV`` answers ``200`` with one JSON object per line,
``{"type": "ADDED"|"MODIFIED"|"DELETED"|"BOOKMARK"|"ERROR", "object": {...}}``, for as long as the
client stays (or ``timeoutSeconds``). Without a resourceVersion (or ``"0"``) every existing object
comes first as ADDED. A resourceVersion whose changes were compacted gets ``410 Gone`` (a
Kubernetes ``Status`` with reason ``Expired``) when that is known before the stream starts, else an
``ERROR`` event carrying that Status; either way the client lists again. With
``allowWatchBookmarks=true`` a quiet stream carries a ``BOOKMARK`` (only
``metadata.resourceVersion``) every :data:`BOOKMARK_SECONDS`.

The store's watch blocks, so each stream runs it in a daemon thread that hands events to the
event loop; the stream ends when the client goes, when :attr:`WatchStreams.closing` is set (the
server stops) or when the client falls :data:`MAX_BACKLOG` events behind (an ``ERROR`` 410, as a
Kubernetes watch that cannot keep up). Neighbours: :mod:`.api` routes here; :mod:`.store` watches.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from gm.cluster.interface import Cluster, ClusterError, Expired, Kind, Obj, WatchEvent

BOOKMARK_SECONDS = 10.0
MAX_BACKLOG = 10_000
FIRST_OUTCOME_SECONDS = 0.2
"""How long the handler waits for the first event or error before it sends the 200 headers (a
compacted version fails in the store's catch-up at once, so it becomes an HTTP 410)."""
_CHECK_SECONDS = 0.5
_DONE = object()

Status = Callable[[int, str, str], Obj]


def is_watch(value: str | None) -> bool:
    """Whether a ``watch`` query value asks for a watch (``1``, ``true``)."""
    return (value or "").lower() in ("1", "true", "yes")


class WatchStreams:
    """Serves watch requests over one store; ``closing`` ends every open stream."""

    def __init__(self, store: Cluster, status: Status) -> None:
        self.store, self.status = store, status
        self.closing = threading.Event()

    async def respond(self, request: Request, kind: Kind, namespace: str | None, labels: dict[str, str] | None,
                      resource_version: str | None, timeout_seconds: int | None, bookmarks: bool) -> Response:
        """The streaming response of one watch request (or a Status error before it starts)."""
        if resource_version not in (None, "", "0") and not str(resource_version).isdigit():
            body = self.status(400, "BadRequest", f"resourceVersion: expected an integer string, got "
                                                  f"{resource_version!r}")
            return JSONResponse(body, status_code=400)
        if timeout_seconds is not None and timeout_seconds < 0:
            return JSONResponse(self.status(400, "BadRequest", "timeoutSeconds: expected a number >= 0"),
                                status_code=400)
        feed = _ThreadFeed(asyncio.get_running_loop())
        stop = threading.Event()
        start_rv = [resource_version or ""]
        thread = threading.Thread(target=self._pump, args=(kind, namespace, labels, resource_version, stop, feed,
                                                           start_rv),
                                  name=f"api-watch-{kind.plural}", daemon=True)
        thread.start()
        first = await feed.get(FIRST_OUTCOME_SECONDS)
        if isinstance(first, Exception):
            stop.set()
            code, reason = (410, "Expired") if isinstance(first, Expired) else \
                (400, "BadRequest") if isinstance(first, ValueError) else (500, "InternalError")
            return JSONResponse(self.status(code, reason, str(first)), status_code=code)
        deadline = time.monotonic() + timeout_seconds if timeout_seconds else None
        lines = self._lines(request, feed, first, stop, deadline, bookmarks, kind, start_rv)
        return StreamingResponse(lines, media_type="application/json",
                                 headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"})

    def _pump(self, kind: Kind, namespace: str | None, labels: dict[str, str] | None, rv: str | None,
              stop: threading.Event, feed: _ThreadFeed, start_rv: list[str]) -> None:
        try:
            if rv in (None, "", "0"):
                items, rv = _listing(self.store, kind, namespace, labels)
                start_rv[0] = rv
                for obj in items:
                    if stop.is_set() or not feed.put(WatchEvent("ADDED", obj)):
                        return
            for event in self.store.watch(kind, namespace, rv or None, stop):
                if labels and not _matches(event.object, labels):
                    continue
                if not feed.put(event):
                    feed.put(Expired(f"the watch fell {MAX_BACKLOG} events behind: list again"), force=True)
                    return
        except (ClusterError, ValueError) as exc:
            feed.put(exc, force=True)
        finally:
            feed.put(_DONE, force=True)

    async def _lines(self, request: Request, feed: _ThreadFeed, first: Any, stop: threading.Event,
                     deadline: float | None, bookmarks: bool, kind: Kind, start_rv: list[str]) -> AsyncIterator[bytes]:
        last_rv, last_sent, item = start_rv[0], time.monotonic(), first
        try:
            while True:
                if item is _DONE:
                    return
                if isinstance(item, WatchEvent):
                    last_rv = str(item.object.get("metadata", {}).get("resourceVersion") or last_rv)
                    yield _line(item.type, item.object)
                    last_sent = time.monotonic()
                elif isinstance(item, Exception):
                    code, reason = (410, "Expired") if isinstance(item, Expired) else (500, "InternalError")
                    yield _line("ERROR", self.status(code, reason, str(item)))
                    return
                now = time.monotonic()
                if self.closing.is_set() or (deadline is not None and now >= deadline):
                    return
                if bookmarks and now - last_sent >= BOOKMARK_SECONDS and last_rv:
                    yield _line("BOOKMARK", {"apiVersion": kind.api_version, "kind": kind.kind,
                                             "metadata": {"resourceVersion": last_rv}})
                    last_sent = now
                item = await feed.get(_CHECK_SECONDS)
                if item is None and await request.is_disconnected():
                    return
        finally:
            stop.set()


class _ThreadFeed:
    """Items from a watch thread to the event loop, bounded by :data:`MAX_BACKLOG`."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop, self._queue = loop, asyncio.Queue[Any]()
        self._pending = 0
        self._lock = threading.Lock()

    def put(self, item: Any, force: bool = False) -> bool:
        with self._lock:
            if self._pending >= MAX_BACKLOG and not force:
                return False
            self._pending += 1
        with contextlib.suppress(RuntimeError):  # the loop is closed: the server has gone
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)
        return True

    async def get(self, timeout: float) -> Any:
        """The next item, or None after ``timeout`` seconds."""
        try:
            item = await asyncio.wait_for(self._queue.get(), timeout)
        except asyncio.TimeoutError:
            return None
        with self._lock:
            self._pending -= 1
        return item


def _listing(store: Cluster, kind: Kind, namespace: str | None,
             labels: dict[str, str] | None) -> tuple[list[Obj], str]:
    lister = getattr(store, "list_with_version", None)
    if lister is not None:
        items, rv = lister(kind, namespace, labels)
        return items, str(rv)
    return store.list(kind, namespace, labels), ""


def _matches(obj: Obj, labels: dict[str, str]) -> bool:
    have = (obj.get("metadata") or {}).get("labels") or {}
    return all(have.get(k) == v for k, v in labels.items())


def _line(type_: str, obj: Obj) -> bytes:
    return json.dumps({"type": type_, "object": obj}, separators=(",", ":")).encode() + b"\n"
