"""Running request handlers on worker threads, never on paho's network thread.

paho calls ``on_message`` on the thread that also reads the socket, sends PUBACKs and
keep-alive pings. Anything slow or failing there hurts every device: a slow decode stalls
the keep-alive (the broker drops the gateway after 1.5x ``keepalive``), and an exception
kills the thread for good while the un-acked QoS 1 message is redelivered after every
restart. So the gateway's ``on_message`` only hands the raw message to
:meth:`Dispatcher.submit` and returns (paho then acks it, once): decoding, inference and
publishing the answer run on ``workers`` threads fed by one queue.

At most ``max_in_flight`` messages are accepted (queued or running); :meth:`submit` refuses
more, and the gateway answers those ``busy`` at once, so a flood costs the network thread
a counter check per message and memory stays bounded. A job that raises is logged and
counted (:attr:`Dispatcher.failures`) and its worker goes on. :meth:`stop` lets queued
jobs finish, then joins the workers.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)
Job = Callable[..., None]


class Dispatcher:
    """Run jobs on ``workers`` threads, with at most ``max_in_flight`` accepted at once."""

    def __init__(self, workers: int, max_in_flight: int, name: str = "mqtt-infer") -> None:
        if workers < 1 or max_in_flight < 1:
            raise ValueError(f"Dispatcher needs workers >= 1 and max_in_flight >= 1, "
                             f"got workers={workers!r} max_in_flight={max_in_flight!r}")
        self.workers = workers
        self.max_in_flight = max_in_flight
        self.name = name
        self.runs = 0
        """Jobs run to the end (including those that raised)."""
        self.failures = 0
        """Jobs that raised (a bug in the handler: it is meant to answer every error itself)."""
        self._queue: queue.SimpleQueue[tuple[Job, tuple[Any, ...]] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._in_flight = 0
        self._threads: list[threading.Thread] = []
        self._open = False

    @property
    def in_flight(self) -> int:
        """Jobs accepted and not finished (queued or running)."""
        return self._in_flight

    def alive(self) -> bool:
        """Whether every worker thread is running."""
        return bool(self._threads) and all(thread.is_alive() for thread in self._threads)

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
        """Queue ``job(*args)`` for a worker; False (not queued) when stopped or ``max_in_flight`` is reached."""
        with self._lock:
            if not self._open or self._in_flight >= self.max_in_flight:
                return False
            self._in_flight += 1
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
            job, args = item
            try:
                job(*args)
            except Exception:  # a handler answers its own errors; this is a bug in it, logged and counted
                self.failures += 1
                log.exception("MQTT request handler %r failed", job)
            finally:
                with self._lock:
                    self._in_flight -= 1
                    self.runs += 1
