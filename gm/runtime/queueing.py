"""A rate-limited, de-duplicating work queue of keys (client-go's ``workqueue``).

Handlers in :mod:`gm.runtime.caching` only add keys; :mod:`gm.runtime.reconciling`
takes them off on worker threads. The queue guarantees:

- a key waiting in the queue is held once, however often it is added (de-duplication);
- a key being processed is never handed to a second worker: an add while it is
  processing marks it dirty, and :meth:`WorkQueue.done` puts it back;
- :meth:`WorkQueue.add_rate_limited` delays a key by its exponential backoff
  (``base * 2**failures``, capped at ``max_delay``); :meth:`WorkQueue.forget` resets it.

Time comes from an injectable :class:`Clock`, so backoff tests advance a
:class:`FakeClock` instead of sleeping.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import deque
from collections.abc import Hashable
from typing import Generic, Protocol, TypeVar

K = TypeVar("K", bound=Hashable)


class Clock(Protocol):
    """A monotonic clock in seconds."""

    def monotonic(self) -> float:
        """Seconds since an arbitrary fixed point."""
        ...


class SystemClock:
    """The real clock (:func:`time.monotonic`)."""

    def monotonic(self) -> float:
        return time.monotonic()


class FakeClock:
    """A clock that moves only when told to; for tests."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start

    def monotonic(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``."""
        self._now += seconds


class ExponentialBackoff(Generic[K]):
    """Per-key exponential backoff: ``base * 2**failures`` seconds, capped at ``max_delay``."""

    def __init__(self, base: float = 0.5, max_delay: float = 60.0) -> None:
        if base <= 0 or max_delay < base:
            raise ValueError(f"backoff needs 0 < base <= max_delay, got base={base!r} max_delay={max_delay!r}")
        self.base = base
        self.max_delay = max_delay
        self._failures: dict[K, int] = {}

    def when(self, key: K) -> float:
        """The delay for the next retry of ``key``; counts one more failure."""
        failures = self._failures.get(key, 0)
        self._failures[key] = failures + 1
        if failures >= 64:  # 2**64 * base overflows nothing in Python, but is pointless
            return self.max_delay
        return min(self.base * float(2 ** failures), self.max_delay)

    def retries(self, key: K) -> int:
        """How many failures ``key`` has had since it was last forgotten."""
        return self._failures.get(key, 0)

    def forget(self, key: K) -> None:
        """Reset ``key``'s backoff (after a success)."""
        self._failures.pop(key, None)


class ShutDown(Exception):
    """The queue was shut down; workers should exit."""


class WorkQueue(Generic[K]):
    """De-duplicating FIFO of keys with delayed adds and per-key backoff; thread-safe."""

    def __init__(self, clock: Clock | None = None, backoff: ExponentialBackoff[K] | None = None) -> None:
        self.clock: Clock = clock or SystemClock()
        self.backoff: ExponentialBackoff[K] = backoff or ExponentialBackoff()
        self._cond = threading.Condition()
        self._queue: deque[K] = deque()
        self._dirty: set[K] = set()
        self._processing: set[K] = set()
        self._waiting: list[tuple[float, int, K]] = []  # heap of (ready_at, seq, key)
        self._waiting_at: dict[K, float] = {}
        self._seq = itertools.count()
        self._shutdown = False

    # -- adding -------------------------------------------------------------------------
    def add(self, key: K) -> None:
        """Queue ``key`` now unless it is already queued (or mark it dirty while processing)."""
        with self._cond:
            self._add_locked(key)

    def _add_locked(self, key: K) -> None:
        if self._shutdown or key in self._dirty:
            return
        self._dirty.add(key)
        if key not in self._processing:
            self._queue.append(key)
            self._cond.notify()

    def add_after(self, key: K, delay: float) -> None:
        """Queue ``key`` after ``delay`` seconds; an earlier pending time for the key wins."""
        if delay <= 0:
            self.add(key)
            return
        with self._cond:
            if self._shutdown:
                return
            ready_at = self.clock.monotonic() + delay
            current = self._waiting_at.get(key)
            if current is not None and current <= ready_at:
                return
            self._waiting_at[key] = ready_at
            heapq.heappush(self._waiting, (ready_at, next(self._seq), key))
            self._cond.notify()

    def add_rate_limited(self, key: K) -> float:
        """Queue ``key`` after its backoff delay; return that delay."""
        with self._cond:
            delay = self.backoff.when(key)
        self.add_after(key, delay)
        return delay

    def forget(self, key: K) -> None:
        """Reset the backoff of ``key``."""
        with self._cond:
            self.backoff.forget(key)

    def retries(self, key: K) -> int:
        """Failures of ``key`` since it was last forgotten."""
        with self._cond:
            return self.backoff.retries(key)

    # -- taking -------------------------------------------------------------------------
    def _promote_ready_locked(self) -> float | None:
        """Move due delayed keys into the queue; return seconds until the next one (None: none)."""
        now = self.clock.monotonic()
        while self._waiting:
            ready_at, _, key = self._waiting[0]
            if self._waiting_at.get(key) != ready_at:  # superseded by an earlier add_after
                heapq.heappop(self._waiting)
                continue
            if ready_at > now:
                return ready_at - now
            heapq.heappop(self._waiting)
            del self._waiting_at[key]
            self._add_locked(key)
        return None

    def get(self, timeout: float | None = None) -> K | None:
        """Take the next key (marking it processing); None when ``timeout`` passes first.

        Raises :class:`ShutDown` once the queue is shut down. Call :meth:`done` when finished.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                if self._shutdown:
                    raise ShutDown("work queue is shut down")
                next_delay = self._promote_ready_locked()
                if self._queue:
                    key = self._queue.popleft()
                    self._processing.add(key)
                    self._dirty.discard(key)
                    return key
                wait = next_delay
                if deadline is not None:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return None
                    wait = remaining if wait is None else min(wait, remaining)
                # a fake clock does not move by itself: poll it now and then
                self._cond.wait(None if wait is None else min(wait, 0.5))

    def done(self, key: K) -> None:
        """Finish processing ``key``; re-queue it if it was added meanwhile."""
        with self._cond:
            self._processing.discard(key)
            if key in self._dirty:
                self._queue.append(key)
                self._cond.notify()

    def shutdown(self) -> None:
        """Wake every waiting worker with :class:`ShutDown`; later adds are ignored."""
        with self._cond:
            self._shutdown = True
            self._cond.notify_all()

    # -- introspection ------------------------------------------------------------------
    def __len__(self) -> int:
        """Keys ready to be taken now (not the delayed ones)."""
        with self._cond:
            self._promote_ready_locked()
            return len(self._queue)

    def delayed(self) -> dict[K, float]:
        """Delayed keys and the seconds until each is due."""
        with self._cond:
            now = self.clock.monotonic()
            return {key: at - now for key, at in self._waiting_at.items()}

    @property
    def is_shut_down(self) -> bool:
        return self._shutdown
