"""Joint-inference counters, their Prometheus view, and the periodic LC report.

The hot path only increments plain integers under a lock; Prometheus reads them at
scrape time through :class:`StatsCollector`, so metrics cost nothing per sample.
Reports to the Local Controller carry cumulative counters (idempotent: the LC keeps
each worker's latest values), only when something changed. :meth:`JointStats.owner_info`
is the one place the counters become a report; its keys are the control plane's
``JointCounters`` ``ownerInfo`` keys (a test keeps them equal).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

LOG = logging.getLogger(__name__)
OWNER_KIND = "jointinferenceservice"
"""``ownerKind`` of joint-inference reports (the control plane's kind key)."""


@dataclass
class JointStats:
    """Cumulative counters of one JointInference."""

    inferences: int = 0
    hard_examples: int = 0
    cloud_answers: int = 0
    cloud_failures: int = 0
    fallbacks: int = 0
    uploaded_later: int = 0
    started_at: float = field(default_factory=time.time)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def count_edge(self, samples: int = 1) -> None:
        """Samples answered on the edge without mining them hard (the hot path: no kwargs)."""
        with self._lock:
            self.inferences += samples

    def add(self, **deltas: int) -> None:
        with self._lock:
            for name, delta in deltas.items():
                setattr(self, name, getattr(self, name) + delta)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            total, hard = self.inferences, self.hard_examples
            return {
                "inferences": total,
                "hard_examples": hard,
                "cloud_answers": self.cloud_answers,
                "cloud_failures": self.cloud_failures,
                "fallbacks": self.fallbacks,
                "uploaded_later": self.uploaded_later,
                "offload_ratio": hard / total if total else 0.0,
                "started_at": self.started_at,
            }

    def owner_info(self, snap: dict[str, Any] | None = None) -> dict[str, Any]:
        """The LC report's ``ownerInfo`` (Sedna's names plus this project's counters) of ``snap``.

        ``snap`` is a :meth:`snapshot` (taken now when omitted).
        """
        snap = self.snapshot() if snap is None else snap
        return {
            "inferenceNumber": snap["inferences"],
            "hardExampleNumber": snap["hard_examples"],
            "uploadCloudRatio": snap["offload_ratio"],
            "cloudFailures": snap["cloud_failures"],
            "fallbacks": snap["fallbacks"],
            "startTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(snap["started_at"])),
            "updateTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }


class StatsCollector:
    """A prometheus_client collector exposing :class:`JointStats` at scrape time."""

    def __init__(self, stats: JointStats, service: str) -> None:
        self._stats = stats
        self._service = service

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        snap = self._stats.snapshot()
        for key, help_text in (
            ("inferences", "Samples answered by joint inference"),
            ("hard_examples", "Samples judged hard by the mining algorithm"),
            ("cloud_answers", "Hard examples answered by the cloud inline"),
            ("cloud_failures", "Cloud calls that failed or missed their deadline"),
            ("fallbacks", "Hard examples answered by the edge because the cloud was unavailable"),
            ("uploaded_later", "Stored hard examples offloaded after the cloud came back"),
        ):
            family = CounterMetricFamily(f"sedna_joint_{key}", help_text, labels=["service"])
            family.add_metric([self._service], snap[key])
            yield family
        ratio = GaugeMetricFamily("sedna_joint_offload_ratio", "Hard examples / inferences", labels=["service"])
        ratio.add_metric([self._service], snap["offload_ratio"])
        yield ratio


class LCReporter:
    """Sends the counters to the Local Controller every ``period`` seconds when they changed."""

    def __init__(self, stats: JointStats, client: Any, owner_name: str, period: float = 5.0) -> None:
        self._stats = stats
        self._client = client
        self._owner_name = owner_name
        self._period = period
        self._stop = threading.Event()
        self._last_sent: tuple[int, int, int, int] | None = None
        self._thread = threading.Thread(target=self._run, name="lc-reporter", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self._period + 5)
        self.report_now()

    def report_now(self) -> bool:
        """Send now if anything changed since the last successful report."""
        from sedna.service.lc_client import LCReport

        snap = self._stats.snapshot()
        key = (snap["inferences"], snap["hard_examples"], snap["cloud_failures"], snap["fallbacks"])
        if key == self._last_sent:
            return True
        report = LCReport(owner_kind=OWNER_KIND, owner_name=self._owner_name, kind="inference", status="running",
                          owner_info=self._stats.owner_info(snap))
        if self._client.send(report):
            self._last_sent = key
            return True
        return False

    def _run(self) -> None:
        while not self._stop.wait(self._period):
            try:
                self.report_now()
            except Exception:  # a refused or failed report must never end the reporter
                LOG.exception("reporting to the LC failed; the next period tries again")
