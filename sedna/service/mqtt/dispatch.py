"""Running request handlers on worker threads, never on paho's network thread.

paho calls ``on_message`` on the thread that also reads the socket, sends PUBACKs and
keep-alive pings. Anything slow or failing there hurts every device: a slow decode stalls
the keep-alive (the broker drops the gateway after 1.5x ``keepalive``), and an exception
kills the thread for good while the un-acked QoS 1 message is redelivered after every
restart. So the gateway's ``on_message`` only hands the raw message to
:meth:`Dispatcher.submit` and returns (paho then acks it, once): decoding, inference and
publishing the answer run on ``workers`` threads fed by one queue.

Jobs submitted with the same ``key`` (the gateway uses the request topic, i.e. the device) run
one at a time in the order submitted, so a device gets its answers in the order it asked, as
MQTT keeps a topic's messages in order; jobs of different keys run in parallel on any free
worker.

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
from collections import deque
from collections.abc import Callable, Hashable
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
        self._queue: queue.SimpleQueue[Hashable | None] = queue.SimpleQueue()
        """Keys with a job ready to run; a key is in it at most once, and not while its job runs."""
        self._pending: dict[Hashable, deque[tuple[Job, tuple[Any, ...]]]] = {}
        """Jobs per key not yet finished; a key is here while it is queued or running."""
        self._lock = threading.Lock()
        self._drained = threading.Condition(self._lock)
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

    def submit(self, job: Job, *args: Any, key: Hashable | None = None) -> bool:
        """Queue ``job(*args)`` for a worker, after the earlier jobs of ``key`` (None: no order kept);
        False (not queued) when stopped or ``max_in_flight`` is reached."""
        with self._lock:
            if not self._open or self._in_flight >= self.max_in_flight:
                return False
            self._in_flight += 1
            slot = object() if key is None else key
            jobs = self._pending.get(slot)
            if jobs is None:
                self._pending[slot] = deque([(job, args)])
                self._queue.put(slot)
            else:
                jobs.append((job, args))  # runs when the key's earlier job ends
        return True

    def stop(self, timeout: float = 10.0) -> None:
        """Refuse new jobs, let accepted ones finish (up to ``timeout``), then join the workers."""
        own = threading.current_thread() in self._threads  # stop() called from a job: that job is in flight
        with self._lock:
            self._open = False
            self._drained.wait_for(lambda: self._in_flight <= int(own), timeout)
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout)
        self._threads = []

    def _work(self) -> None:
        while True:
            slot = self._queue.get()
            if slot is None:
                return
            with self._lock:
                job, args = self._pending[slot][0]
            try:
                job(*args)
            except Exception:  # a handler answers its own errors; this is a bug in it, logged and counted
                self.failures += 1
                log.exception("MQTT request handler %r failed", job)
            finally:
                with self._lock:
                    self._in_flight -= 1
                    self.runs += 1
                    jobs = self._pending[slot]
                    jobs.popleft()
                    if jobs:
                        self._queue.put(slot)  # behind other keys' ready jobs: one device cannot starve the rest
                    else:
                        del self._pending[slot]
                    self._drained.notify_all()
