"""Wait for something to become true instead of sleeping for a guessed time.

Every test that waits for another thread or process polls through :func:`eventually`, so a
slow machine only makes a test slower, never wrong, and a timeout says what was awaited and
what was last seen.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def eventually(predicate: Callable[[], T], timeout: float = 10.0, interval: float = 0.05,
               message: str = "condition", ignoring: tuple[type[BaseException], ...] = ()) -> T:
    """Call ``predicate`` every ``interval`` seconds until it returns something truthy; return that.

    Exceptions of the types in ``ignoring`` count as "not yet" (an object that does not exist yet,
    say). After ``timeout`` seconds an ``AssertionError`` names ``message`` and the last value or
    exception seen; the predicate is always called at least once, and once more at the deadline.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        expired = time.monotonic() >= deadline
        try:
            value = predicate()
        except ignoring as exc:
            last = exc
        else:
            if value:
                return value
            last = value
        if expired:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {message} (last seen: {last!r})")
        time.sleep(max(0.0, min(interval, deadline - time.monotonic())))
