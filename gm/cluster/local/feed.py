"""ChangeFeed: one reader of a :class:`~.store.LocalStore`'s change log, fanning changes out to its watches.

Every ``watch`` on a store used to query the change log itself, and every write woke every
watch, so each write cost one query per watch under the store's lock (O(watches × writes)).
Now one daemon thread per store reads new log rows in batches — woken by the store's own
commits, and every ``poll_interval`` seconds for other processes' writes — and appends each
row to the queue of every subscription of that row's kind (and namespace). A subscription's
thread decodes the JSON itself, so the reader stays cheap.

Semantics the store's ``watch`` keeps: :meth:`ChangeFeed.subscribe` returns the feed's position
``P`` atomically with the subscription; the watch replays ``(its version, P]`` from the log and
then takes rows ``> P`` from its queue, so nothing is missed or repeated. A subscription whose
backlog exceeds ``limit`` rows (a consumer that stopped reading) or whose rows were compacted
before the reader saw them fails with :class:`~gm.cluster.interface.Expired`, as a Kubernetes watch gets
410 Gone: the watcher lists again.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable

from gm.cluster.interface import Expired
from sedna.common.log import get_logger

_LOG = get_logger(__name__)

Row = tuple[int, str, str, str, str]
"""``(rv, kind key, namespace, type, body)`` as stored in the ``changes`` table."""


class Subscription:
    """The rows of one kind (and namespace) after the feed's position at subscribe time."""

    def __init__(self, key: str, namespace: str | None, limit: int) -> None:
        self.key, self.namespace, self.limit = key, namespace, limit
        self.rows: deque[Row] = deque()
        self.error: Exception | None = None
        self.closed = False
        self._wake = threading.Event()

    def push(self, row: Row) -> bool:
        """Queue ``row``; False when the backlog overflowed (the subscription is then failed)."""
        if len(self.rows) >= self.limit:
            return False
        self.rows.append(row)
        self._wake.set()
        return True

    def fail(self, error: Exception | None) -> None:
        """End the subscription: with ``error`` raised to the watcher, or quietly (``None``: store closed)."""
        self.error, self.closed = error, True
        self._wake.set()

    def take(self, timeout: float) -> list[Row]:
        """Every queued row (waiting up to ``timeout`` seconds for the first); may be empty."""
        if not self.rows and not self.closed:
            self._wake.wait(timeout)
        self._wake.clear()
        out = []
        while self.rows:
            out.append(self.rows.popleft())
        return out


class ChangeFeed:
    """Reads a change log with ``read(after) -> (rows, compacted)`` and fans rows out to subscriptions.

    ``read`` is called with ``cond``'s lock held; ``wait`` of ``cond`` is where the reader sleeps
    until the next in-process commit (the store notifies it) or ``poll_interval`` passes. ``head()``
    (the log's newest version) is where the reader starts, on the first subscription. Lock order:
    the store's lock may be held when taking the feed's, never the other way round.
    """

    def __init__(self, read: Callable[[int], tuple[list[Row], int]], cond: threading.Condition,
                 head: Callable[[], int], poll_interval: float, limit: int, is_closed: Callable[[], bool]) -> None:
        self._read, self._cond, self._head = read, cond, head
        self.position = 0
        self.poll_interval, self.limit, self._is_closed = poll_interval, limit, is_closed
        self._lock = threading.Lock()
        self._subs: dict[str, list[Subscription]] = {}
        self._thread: threading.Thread | None = None

    def subscribe(self, key: str, namespace: str | None) -> tuple[Subscription, int]:
        """A new subscription and the position after which it receives rows."""
        sub = Subscription(key, namespace, self.limit)
        head = self._head() if self._thread is None else 0
        with self._lock:
            self._subs.setdefault(key, []).append(sub)
            if self._thread is None:
                self.position = head
                self._thread = threading.Thread(target=self._run, name="local-store-feed", daemon=True)
                self._thread.start()
            return sub, self.position

    def unsubscribe(self, sub: Subscription) -> None:
        """Stop delivering to ``sub`` (idempotent)."""
        with self._lock:
            subs = self._subs.get(sub.key)
            if subs is not None and sub in subs:
                subs.remove(sub)
                if not subs:
                    del self._subs[sub.key]

    def close(self) -> None:
        """End every subscription quietly (the store is closing)."""
        with self._lock:
            for subs in self._subs.values():
                for sub in subs:
                    sub.fail(None)
            self._subs.clear()

    def _run(self) -> None:
        while True:
            with self._cond:
                if self._is_closed():
                    break
                try:
                    rows, compacted = self._read(self.position)
                except Exception as exc:  # a broken database: every watcher hears of it and lists again
                    _LOG.warning("reading the change log failed: %s", exc)
                    rows, compacted = [], self.position
                    self._fail_all(Expired(f"reading the change log failed: {exc}"))
                    self._cond.wait(self.poll_interval)
                    continue
                if not rows and compacted <= self.position:
                    self._cond.wait(self.poll_interval)
                    continue
            if compacted > self.position:
                self._fail_all(Expired(f"the change feed fell behind compaction (at {self.position}, log starts "
                                       f"after {compacted}): list again"))
                with self._lock:
                    self.position = max(self.position, compacted)
            if rows:
                self._dispatch(rows)
        self.close()

    def _fail_all(self, error: Exception) -> None:
        with self._lock:
            for subs in self._subs.values():
                for sub in subs:
                    sub.fail(error)
            self._subs.clear()

    def _dispatch(self, rows: list[Row]) -> None:
        with self._lock:
            for row in rows:
                for sub in self._subs.get(row[1], ()):
                    if (sub.namespace is None or sub.namespace == row[2]) and not sub.push(row):
                        sub.fail(Expired(f"the watch fell {sub.limit} changes behind: list again"))
                self.position = row[0]
            for key in [k for k, subs in self._subs.items() if any(s.closed for s in subs)]:
                kept = [s for s in self._subs[key] if not s.closed]
                if kept:
                    self._subs[key] = kept
                else:
                    del self._subs[key]
