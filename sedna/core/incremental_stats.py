"""Inference counters of an incremental-learning inference worker and their periodic LC report.

The same pattern as joint inference's :mod:`sedna.core.joint_inference.stats`: the hot path only
increments two integers under a lock, and a daemon thread sends the *cumulative* counters to
the Local Controller every ``period`` seconds when something changed (the counters or the
model being served). A report is idempotent -- the GM keeps the latest one, under
``status.edgeReports.inference``, and shows it as ``status.inference`` -- so one lost while the
LC restarts is repaired by the next. The report is Sedna's upstream shape: ``kind=inference``,
``status=running``, ``ownerInfo`` ``{inferenceNumber, hardExampleNumber, round,
modelUpdateTime, startTime, updateTime}``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

LOG = logging.getLogger(__name__)

ServedModel = Callable[[], tuple[int | None, str]]
"""``() -> (round, model update time)`` of the model being served (``(None, "")`` before a hot update)."""


def _stamp(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


@dataclass
class InferenceCounters:
    """Cumulative counters of one inference worker."""

    inferences: int = 0
    hard_examples: int = 0
    started_at: float = field(default_factory=time.time)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, hard: bool) -> None:
        with self._lock:
            self.inferences += 1
            self.hard_examples += int(hard)

    def snapshot(self) -> tuple[int, int]:
        """``(inferences, hard_examples)``, read together."""
        with self._lock:
            return self.inferences, self.hard_examples


class CounterReporter:
    """Sends ``owner_info()`` through ``send`` every ``period`` seconds when it changed.

    ``send(owner_info) -> bool`` is the worker's report function (False when the LC is down or
    refused; the same counters are then offered again next period).
    """

    def __init__(self, counters: InferenceCounters, send: Callable[[dict[str, Any]], bool], served: ServedModel,
                 period: float = 5.0) -> None:
        if period <= 0:
            raise ValueError(f"inference report period must be positive, got {period!r}")
        self._counters, self._send, self._served, self.period = counters, send, served, period
        self._last_sent: tuple[int, int, int | None, str] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def owner_info(self) -> dict[str, Any]:
        inferences, hard = self._counters.snapshot()
        round_, update_time = self._served()
        return {"inferenceNumber": inferences, "hardExampleNumber": hard, "round": round_,
                "modelUpdateTime": update_time, "startTime": _stamp(self._counters.started_at),
                "updateTime": _stamp(time.time())}

    def report_now(self) -> bool:
        """Send now if anything changed since the last successful report; True when nothing is owed."""
        with self._lock:
            info = self.owner_info()
            key = (info["inferenceNumber"], info["hardExampleNumber"], info["round"], info["modelUpdateTime"])
            if key == self._last_sent:
                return True
            if not self._send(info):
                return False
            self._last_sent = key
            return True

    def start(self) -> None:
        """Start the periodic thread (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="il-inference-reporter", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread and send what is still owed (nothing when it never started)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self.report_now()

    def _run(self) -> None:
        while True:  # first at once: the GM learns the worker serves, and the client is warm for a deploy
            try:
                self.report_now()
            except Exception:  # a report must never stop inference; the traceback is logged
                LOG.exception("inference counter report failed")
            if self._stop.wait(self.period):
                return


__all__ = ["CounterReporter", "InferenceCounters", "ServedModel"]
