"""Running request handlers: inline on the network thread while cheap, else on worker threads.

The gateway's handler (decode is already done; it runs inference and publishes the
answer) is called by :meth:`Dispatcher.submit` from paho's network thread. Handing
every request to a thread pool costs more than the shallow edge models themselves
(a future, a semaphore, a thread wake-up and a GIL hand-off per message, measured at
~40 % of the gateway's CPU in ``bench.mqtt``), so the dispatcher runs a handler
**inline** while the recent mean handling time (an exponentially weighted average of
every run, each run counted as at most twice ``inline_max_s`` so that one
preemption of a loaded machine does not flip the mode) is below ``inline_max_s``.
Otherwise the request goes to ``workers`` threads fed by one ``SimpleQueue``; a
worker keeps draining the queue without sleeping while there is work. A slow
handler (an offload to a far cloud, a cold model) pushes the average up within a
few runs and the next requests go to the workers, so the network loop is not held
up for long; when runs get cheap again, inline handling resumes.
``inline_max_s = 0`` never runs inline. At most ``max_in_flight`` requests are
accepted (queued or running); :meth:`submit` refuses more, and the gateway answers
those ``busy``. :meth:`stop` lets queued requests finish, then joins the workers.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)
Job = Callable[..., None]
_SMOOTHING = 0.1
"""Weight of the newest run in the average handling time."""


class Dispatcher:
    """Run jobs inline or on ``workers`` threads, with at most ``max_in_flight`` accepted at once."""

    def __init__(self, workers: int, max_in_flight: int, inline_max_s: float, name: str = "mqtt-infer") -> None:
        if workers < 1 or max_in_flight < 1:
            raise ValueError(f"Dispatcher needs workers >= 1 and max_in_flight >= 1, "
                             f"got workers={workers!r} max_in_flight={max_in_flight!r}")
        self.workers = workers
        self.max_in_flight = max_in_flight
        self.inline_max_s = inline_max_s
        self.name = name
        self.mean_s = 0.0
        """Exponentially weighted mean handling time of recent jobs (seconds)."""
        self.inline_runs = 0
        self.pooled_runs = 0
        self._queue: queue.SimpleQueue[tuple[Job, tuple[Any, ...]] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._in_flight = 0
        self._cap_s = 2 * inline_max_s if inline_max_s > 0 else float("inf")
        self._threads: list[threading.Thread] = []
        self._open = False

    @property
    def in_flight(self) -> int:
        """Jobs accepted and not finished (queued, running on a worker or inline)."""
        return self._in_flight

    def start(self) -> None:
        """Start the worker threads; :meth:`submit` accepts jobs from now on."""
        if self._threads:
            raise RuntimeError("Dispatcher.start() called twice")
        self._open = True
        for i in range(self.workers):
            thread = threading.Thread(target=self._work, name=f"{self.name}-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def submit(self, job: Job, *args: Any) -> bool:
        """Run ``job(*args)`` inline or on a worker; False (not run) when stopped or ``max_in_flight`` is reached."""
        with self._lock:
            if not self._open or self._in_flight >= self.max_in_flight:
                return False
            self._in_flight += 1
            inline = self.mean_s < self.inline_max_s
        if inline:
            self.inline_runs += 1
            self._run(job, args)
        else:
            self.pooled_runs += 1
            self._queue.put((job, args))
        return True

    def stop(self, timeout: float = 10.0) -> None:
        """Refuse new jobs, let accepted ones finish, join the workers (waiting up to ``timeout`` each)."""
        with self._lock:
            self._open = False
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout)
        self._threads = []

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            self._run(*item)

    def _run(self, job: Job, args: tuple[Any, ...]) -> None:
        started = time.perf_counter()
        try:
            job(*args)
        except Exception:  # a job handles its own errors; this is a bug in it, logged and not fatal to the worker
            log.exception("MQTT request handler %r failed", job)
        finally:
            took = min(time.perf_counter() - started, self._cap_s)
            with self._lock:
                self._in_flight -= 1
                self.mean_s += _SMOOTHING * (took - self.mean_s)
