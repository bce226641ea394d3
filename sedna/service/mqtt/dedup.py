"""Remembering (device, correlation id) pairs, to answer each request exactly once.

QoS 1 means "at least once": after a lost PUBACK the broker delivers a request again.
The gateway answers **exactly once per (device id, correlation id)** within
``ttl`` seconds: the first delivery is served, every later one, whether it arrives
while the first is still in flight or after its answer went out, is dropped and
counted as a duplicate (the answer itself was published with QoS 1 on the
persistent session, so the device receives it). A request answered ``busy`` is
forgotten, so the device may retry it with the same id. The cache is bounded: the
oldest pairs are forgotten first, and pairs older than ``ttl`` are ignored.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable


class SeenCache:
    """A bounded, thread-safe set of keys that forgets them after ``ttl`` seconds."""

    def __init__(self, ttl: float, max_size: int, clock: Callable[[], float] = time.monotonic) -> None:
        if ttl <= 0 or max_size < 1:
            raise ValueError(f"SeenCache needs ttl > 0 and max_size >= 1, got ttl={ttl!r} max_size={max_size!r}")
        self._ttl = ttl
        self._max = max_size
        self._clock = clock
        self._seen: OrderedDict[Hashable, float] = OrderedDict()
        self._lock = threading.Lock()

    def first(self, key: Hashable) -> bool:
        """Record ``key``; True the first time it is seen within ``ttl``, False for a repeat."""
        now = self._clock()
        with self._lock:
            self._expire(now)
            if key in self._seen:
                return False
            self._seen[key] = now
            while len(self._seen) > self._max:
                self._seen.popitem(last=False)
            return True

    def forget(self, key: Hashable) -> None:
        """Drop ``key`` so its next arrival counts as new (used for requests refused as busy)."""
        with self._lock:
            self._seen.pop(key, None)

    def __len__(self) -> int:
        with self._lock:
            self._expire(self._clock())
            return len(self._seen)

    def _expire(self, now: float) -> None:
        limit = now - self._ttl
        while self._seen:
            key, stamp = next(iter(self._seen.items()))
            if stamp > limit:
                break
            del self._seen[key]
