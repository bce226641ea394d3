"""Counters of the device gateway, as a ``stats()`` dict and as Prometheus metrics.

The gateway counts every request, every error by its short code (``bad_dtype``,
``busy``, ``infer_failed``...), duplicates, hard examples and the latency from
arrival to the published answer. :class:`GatewayMetrics` keeps plain counters for
``stats()`` and, when a ``prometheus_client`` registry is passed in, mirrors them
there (``sedna_mqtt_*``); nothing is registered globally.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from typing import Any

import numpy as np

_LATENCY_WINDOW = 4096


class GatewayMetrics:
    """Thread-safe counters for one gateway; ``registry`` is an optional ``prometheus_client.CollectorRegistry``."""

    def __init__(self, namespace: str, service: str, registry: Any | None = None) -> None:
        self._lock = threading.Lock()
        self.requests = 0
        self.answered = 0
        self.duplicates = 0
        self.ignored = 0
        self.hard_examples = 0
        self.errors: Counter[str] = Counter()
        self._latencies: deque[float] = deque(maxlen=_LATENCY_WINDOW)
        self._latency_count = 0
        self._latency_sum = 0.0
        self._prom: dict[str, Any] | None = None
        if registry is not None:
            self._prom = _prometheus(registry, namespace, service)

    def request(self) -> None:
        with self._lock:
            self.requests += 1
        if self._prom:
            self._prom["requests"].inc()

    def duplicate(self) -> None:
        with self._lock:
            self.duplicates += 1
        if self._prom:
            self._prom["duplicates"].inc()

    def ignore(self) -> None:
        """A KubeEdge update without the input properties (not a request)."""
        with self._lock:
            self.ignored += 1

    def error(self, code: str) -> None:
        with self._lock:
            self.errors[code] += 1
        if self._prom:
            self._prom["errors"].labels(**self._prom["labels"], reason=code).inc()

    def answer(self, latency_s: float, hard_example: bool) -> None:
        with self._lock:
            self.answered += 1
            self.hard_examples += int(hard_example)
            self._latencies.append(latency_s * 1000.0)
            self._latency_count += 1
            self._latency_sum += latency_s
        if self._prom:
            self._prom["latency"].observe(latency_s)
            if hard_example:
                self._prom["hard_examples"].inc()

    def stats(self) -> dict[str, Any]:
        """A snapshot: counts, errors by code, and latency (ms) over the last answers."""
        with self._lock:
            window = np.asarray(self._latencies, dtype=np.float64)
            latency = {"count": self._latency_count,
                       "mean_ms": 1000.0 * self._latency_sum / self._latency_count if self._latency_count else 0.0,
                       "p50_ms": float(np.percentile(window, 50)) if window.size else 0.0,
                       "p99_ms": float(np.percentile(window, 99)) if window.size else 0.0}
            return {"requests": self.requests, "answered": self.answered, "duplicates": self.duplicates,
                    "ignored": self.ignored, "hard_examples": self.hard_examples, "errors": dict(self.errors),
                    "errors_total": sum(self.errors.values()), "latency": latency}


def _prometheus(registry: Any, namespace: str, service: str) -> dict[str, Any]:
    from prometheus_client import Counter as PCounter
    from prometheus_client import Histogram

    labels = {"namespace": namespace, "service": service}
    names = list(labels)
    requests = PCounter("sedna_mqtt_requests", "Device requests received", names, registry=registry)
    duplicates = PCounter("sedna_mqtt_duplicates", "QoS 1 re-deliveries dropped", names, registry=registry)
    hard = PCounter("sedna_mqtt_hard_examples", "Requests found to be hard examples", names, registry=registry)
    errors = PCounter("sedna_mqtt_errors", "Requests answered with an error, by reason", [*names, "reason"],
                      registry=registry)
    latency = Histogram("sedna_mqtt_latency_seconds", "Arrival to published answer", names, registry=registry,
                        buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0))
    return {"requests": requests.labels(**labels), "duplicates": duplicates.labels(**labels),
            "hard_examples": hard.labels(**labels), "errors": errors, "labels": labels,
            "latency": latency.labels(**labels)}
