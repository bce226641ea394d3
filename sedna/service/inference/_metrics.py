"""Prometheus metrics of one inference server, in a registry of its own.

A per-server :class:`~prometheus_client.CollectorRegistry` (never the global one)
lets several servers live in one process, as tests and benchmarks do. Series:

- ``sedna_inference_requests_total{model,protocol}``: inference requests received
- ``sedna_inference_failures_total{model,protocol,reason}``: requests answered with an error
  (reason: ``invalid_input``, ``not_found``, ``model_error``, ``unauthenticated``, ``too_large``)
- ``sedna_inference_batch_size{model}``: samples per ``predict`` call (histogram)
- ``sedna_inference_queue_seconds{model}``: time a request waited for its batch to start
- ``sedna_inference_compute_seconds{model}``: time of each ``predict`` call

Replicas of one server (:mod:`.replicas`) run with ``PROMETHEUS_MULTIPROC_DIR`` set, which
makes prometheus_client keep every value in a file of that directory; :meth:`ServerMetrics.exposition`
then reports the sum over all replicas, whichever one is scraped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

UNKNOWN_MODEL = "_unknown_"
"""The ``model`` label of requests naming a model that is not served (keeps label sets bounded)."""


class ServerMetrics:
    """The metric families of one server and the helpers the front ends call."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("sedna_inference_requests", "Inference requests received",
                                ["model", "protocol"], registry=self.registry)
        self.failures = Counter("sedna_inference_failures", "Inference requests answered with an error",
                                ["model", "protocol", "reason"], registry=self.registry)
        self.batch_size = Histogram("sedna_inference_batch_size", "Samples per predict call", ["model"],
                                    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256), registry=self.registry)
        latency = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
        self.queue_seconds = Histogram("sedna_inference_queue_seconds", "Time a request waited in the batch queue",
                                       ["model"], buckets=latency, registry=self.registry)
        self.compute_seconds = Histogram("sedna_inference_compute_seconds", "Duration of each predict call",
                                         ["model"], buckets=latency, registry=self.registry)
        self._request_counters: dict[tuple[str, str], Any] = {}

    def observer(self, model: str) -> Callable[[int, list[float], float], None]:
        """A :data:`~._batching.BatchObserver` recording into this model's series."""
        batch_size = self.batch_size.labels(model)
        queue = self.queue_seconds.labels(model)
        compute = self.compute_seconds.labels(model)

        def observe(size: int, queued: list[float], seconds: float) -> None:
            batch_size.observe(size)
            for wait in queued:
                queue.observe(wait)
            compute.observe(seconds)

        return observe

    def request(self, model: str, protocol: str) -> None:
        """Count one inference request."""
        counter = self._request_counters.get((model, protocol))
        if counter is None:  # label sets are bounded (served models + UNKNOWN_MODEL, per protocol)
            counter = self._request_counters[(model, protocol)] = self.requests.labels(model, protocol)
        counter.inc()

    def failure(self, model: str, protocol: str, reason: str) -> None:
        """Count one failed inference request."""
        self.failures.labels(model, protocol, reason).inc()

    def exposition(self) -> tuple[bytes, str]:
        """The Prometheus text exposition and its content type."""
        import os

        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

        shared = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if not shared:
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        from prometheus_client.multiprocess import MultiProcessCollector

        merged = CollectorRegistry()
        MultiProcessCollector(merged, shared)
        return generate_latest(merged), CONTENT_TYPE_LATEST
