"""A circuit breaker that stops the edge from waiting on a dead cloud.

Closed: calls go through; ``failure_threshold`` consecutive failures open it.
Open: calls are refused at once (the edge answers alone) until ``reset_timeout``
has passed, then one probe is let through (half-open). A successful probe closes
the circuit; a failed one opens it again with the timeout doubled, up to
``max_reset_timeout``. The clock is injectable for tests.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from enum import Enum


class CircuitState(str, Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


class CircuitBreaker:
    """Thread-safe breaker: ``allow()`` before a call, then ``record_success()`` or ``record_failure()``."""

    def __init__(self, failure_threshold: int = 3, reset_timeout: float = 2.0, max_reset_timeout: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.failure_threshold = failure_threshold
        self.base_reset_timeout = reset_timeout
        self.max_reset_timeout = max_reset_timeout
        self._clock = clock
        self._lock = threading.Lock()
        self._state = CircuitState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._reset_timeout = reset_timeout
        self._probe_in_flight = False

    @property
    def state(self) -> CircuitState:
        with self._lock:
            return self._current_state()

    def _current_state(self) -> CircuitState:
        if self._state is CircuitState.OPEN and self._clock() - self._opened_at >= self._reset_timeout:
            return CircuitState.HALF_OPEN
        return self._state

    def allow(self) -> bool:
        """Whether a call may go to the cloud now (in half-open: one probe at a time)."""
        with self._lock:
            state = self._current_state()
            if state is CircuitState.CLOSED:
                return True
            if state is CircuitState.HALF_OPEN and not self._probe_in_flight:
                self._probe_in_flight = True
                return True
            return False

    def record_success(self) -> None:
        with self._lock:
            self._state = CircuitState.CLOSED
            self._failures = 0
            self._reset_timeout = self.base_reset_timeout
            self._probe_in_flight = False

    def record_failure(self) -> None:
        with self._lock:
            if self._probe_in_flight or self._current_state() is CircuitState.HALF_OPEN:
                self._reset_timeout = min(self._reset_timeout * 2, self.max_reset_timeout)
                self._open()
                return
            self._failures += 1
            if self._failures >= self.failure_threshold:
                self._open()

    def _open(self) -> None:
        self._state = CircuitState.OPEN
        self._opened_at = self._clock()
        self._probe_in_flight = False
        self._failures = 0
