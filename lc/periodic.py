"""A background check that runs every period, or at once when poked.

The LC's managers (datasets, incremental-learning jobs) share this shape: one daemon
thread, ``poke()`` to run now, a failed check logged with its traceback and retried on
the next round (the loop never dies). Subclasses implement ``check`` and may override
``_pause`` to wake on more than a poke.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

LOG = logging.getLogger(__name__)


class PeriodicWorker:
    """Runs :meth:`check` every ``period`` seconds on a thread named ``name``, or when poked."""

    def __init__(self, name: str, period: float) -> None:
        self._name = name
        self._period = period
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def check(self) -> Any:
        """One pass; subclasses implement it."""
        raise NotImplementedError

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(5)

    def poke(self) -> None:
        """Check now."""
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                self.check()
            except Exception:  # the loop must survive; the traceback is logged
                LOG.exception("%s: check failed; retrying in %.1fs", self._name, self._period)
            self._pause()

    def _pause(self) -> None:
        """Until the period is over or a poke arrives."""
        self._wake.wait(self._period)
