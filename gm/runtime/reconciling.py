"""Run reconcilers: a work queue, N worker threads, error policy and metrics.

:class:`Controller` takes keys from its :class:`~gm.runtime.queueing.WorkQueue` (one
worker per key at a time, by the queue's design) and calls ``reconcile(key)``:

- an :class:`~gm.runtime.outcomes.Outcome` → the key's backoff is forgotten; requeued
  after ``requeue_after`` when set;
- :class:`~gm.runtime.outcomes.TemporaryError` → requeued after its ``delay`` (or the
  key's backoff), logged as a warning;
- :class:`~gm.runtime.outcomes.PermanentError` → logged as an error and counted; the
  key waits for the next event;
- any other exception → logged with its traceback and requeued with backoff.

Every log line of one reconcile carries a short reconcile id (``rid``). Errors are never
swallowed: each ends in a log line, a metric and either a retry or a recorded verdict.
:class:`Manager` wires informers (:mod:`gm.runtime.caching`) to controllers through
mappers (:mod:`gm.runtime.mapping`).
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from gm.cluster.interface import Cluster, Kind, Obj
from gm.runtime.caching import Informer
from gm.runtime.mapping import Mapper
from gm.runtime.outcomes import NamespacedName, Outcome, PermanentError, Reconciler, TemporaryError
from gm.runtime.queueing import Clock, ExponentialBackoff, ShutDown, WorkQueue

log = logging.getLogger(__name__)
_rids = itertools.count(1)


class ControllerMetrics:
    """Prometheus metrics shared by every controller of one manager."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.reconciles = Counter("sedna_gm_reconciles", "Reconciles by controller and result",
                                  ["controller", "result"], registry=registry)
        self.duration = Histogram("sedna_gm_reconcile_duration_seconds", "Reconcile duration",
                                  ["controller"], registry=registry)
        self.depth = Gauge("sedna_gm_queue_depth", "Keys ready in the work queue", ["controller"],
                           registry=registry)


class Controller:
    """A reconciler behind a rate-limited queue, run by ``workers`` threads."""

    def __init__(self, name: str, reconciler: Reconciler, workers: int = 2, clock: Clock | None = None,
                 backoff: ExponentialBackoff[NamespacedName] | None = None, metrics: ControllerMetrics | None = None,
                 slow_seconds: float = 10.0) -> None:
        self.name = name
        self.reconciler = reconciler
        self.queue: WorkQueue[NamespacedName] = WorkQueue(clock, backoff)
        self.workers = workers
        self.metrics = metrics
        self.slow_seconds = slow_seconds
        self.reconcile_count = 0
        self._count_lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def enqueue(self, key: NamespacedName) -> None:
        """Ask for ``key`` to be reconciled."""
        self.queue.add(key)

    def start(self) -> None:
        """Start the worker threads."""
        for i in range(self.workers):
            thread = threading.Thread(target=self._work, name=f"{self.name}-worker-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 10.0) -> None:
        """Shut the queue down and wait for in-flight reconciles to finish."""
        self.queue.shutdown()
        for thread in self._threads:
            thread.join(timeout)

    def _work(self) -> None:
        while True:
            try:
                key = self.queue.get(timeout=1.0)
            except ShutDown:
                return
            if key is None:
                continue
            try:
                self.process(key)
            finally:
                self.queue.done(key)

    def process(self, key: NamespacedName) -> Outcome | None:
        """Reconcile ``key`` once and apply the error policy; return the outcome (None on error).

        Workers call this for keys they took from the queue; tests may call it directly.
        """
        rid = f"{self.name[:3]}-{next(_rids):06d}"
        started = time.monotonic()
        result = "error"
        try:
            outcome = self.reconciler.reconcile(key)
        except TemporaryError as exc:
            result = "requeue"
            delay = self.queue.add_rate_limited(key) if exc.delay is None else exc.delay
            if exc.delay is not None:
                self.queue.add_after(key, exc.delay)
            log.warning("[%s] %s %s: temporary error, retry in %.1fs: %s", rid, self.name, key, delay, exc)
            return None
        except PermanentError as exc:
            result = "permanent_error"
            self.queue.forget(key)
            log.error("[%s] %s %s: permanent error, not retried until it changes: %s", rid, self.name, key, exc)
            return None
        except Exception:
            delay = self.queue.add_rate_limited(key)
            log.exception("[%s] %s %s: reconcile failed (retry %d in %.1fs)", rid, self.name, key,
                          self.queue.retries(key), delay)
            return None
        else:
            result = "requeue" if outcome.requeue_after is not None else "done"
            self.queue.forget(key)
            if outcome.requeue_after is not None:
                self.queue.add_after(key, outcome.requeue_after)
            log.debug("[%s] %s %s: %s", rid, self.name, key, outcome)
            return outcome
        finally:
            elapsed = time.monotonic() - started
            with self._count_lock:
                self.reconcile_count += 1
            if elapsed > self.slow_seconds:
                log.warning("[%s] %s %s: reconcile took %.1fs", rid, self.name, key, elapsed)
            if self.metrics is not None:
                self.metrics.reconciles.labels(self.name, result).inc()
                self.metrics.duration.labels(self.name).observe(elapsed)
                self.metrics.depth.labels(self.name).set(len(self.queue))


class Manager:
    """Owns one informer per kind and the controllers fed by them."""

    def __init__(self, cluster: Cluster, resync_period: float = 300.0, namespace: str | None = None,
                 registry: CollectorRegistry | None = None) -> None:
        self.cluster = cluster
        self.resync_period = resync_period
        self.namespace = namespace
        self.registry = registry or CollectorRegistry()
        self.metrics = ControllerMetrics(self.registry)
        self.informers: dict[str, Informer] = {}
        self.controllers: list[Controller] = []
        self._started = False

    def informer(self, kind: Kind) -> Informer:
        """The (shared) informer of ``kind``, created on first use."""
        informer = self.informers.get(kind.plural)
        if informer is None:
            informer = Informer(self.cluster, kind, self.namespace, self.resync_period)
            self.informers[kind.plural] = informer
        return informer

    def add_controller(self, name: str, reconciler: Reconciler, workers: int = 2,
                       clock: Clock | None = None) -> Controller:
        """Create and register a controller."""
        controller = Controller(name, reconciler, workers, clock, metrics=self.metrics)
        self.controllers.append(controller)
        return controller

    def watch(self, kind: Kind, controller: Controller, mapper: Mapper,
              predicate: Callable[[Obj, Obj], bool] | None = None) -> None:
        """Enqueue ``mapper(obj)`` keys into ``controller`` for every change of ``kind``.

        ``predicate(old, new)``, when given, filters ``MODIFIED`` events: False drops the event
        (e.g. a status-only write the reconciler does not read). Other events always pass.
        """

        def handler(event_type: str, obj: Obj, old: Obj | None) -> None:
            if predicate is None or old is None or event_type != "MODIFIED" or predicate(old, obj):
                for key in mapper(obj):
                    controller.enqueue(key)

        self.informer(kind).add_handler(handler)

    def start(self, sync_timeout: float = 60.0) -> None:
        """Start informers, wait for their first list, then start the controllers."""
        for informer in self.informers.values():
            informer.start()
        deadline = time.monotonic() + sync_timeout
        for informer in self.informers.values():
            if not informer.synced.wait(max(0.0, deadline - time.monotonic())):
                raise TimeoutError(f"the {informer.kind.plural} cache did not sync within {sync_timeout}s")
        for controller in self.controllers:
            controller.start()
        self._started = True

    def stop(self) -> None:
        """Stop controllers (finishing in-flight reconciles), then informers."""
        for controller in self.controllers:
            controller.stop()
        for informer in self.informers.values():
            informer.stop()
