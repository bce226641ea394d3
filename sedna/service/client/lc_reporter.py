"""Sedna's ``LCReporter``: a thread that reports joint-inference counters to the Local Controller.

Same constructor and counters as Sedna's (``LCReporter(lc_server, message, period_interval=30)``,
:meth:`~LCReporter.update_for_edge_inference`, :meth:`~LCReporter.update_for_collaboration_inference`):
every period in which something was counted it sets ``message["ownerInfo"]`` to
``{startTime, updateTime, inferenceNumber, hardExampleNumber, uploadCloudRatio}`` and sends it with
:func:`~sedna.service.lc_client.sedna_send`. Unlike Sedna's, a refused report or a down LC never
ends the thread (Sedna's retry decorator raised after five attempts and the thread died, so every
later count was lost): the counters are cumulative and the next period sends them again.
:meth:`~LCReporter.stop` ends it (Sedna's ran until the process exited).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from sedna.service.lc_client import sedna_send

LOG = logging.getLogger(__name__)


def _now() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime())


class LCReporter(threading.Thread):
    """Reports ``message`` plus the counters every ``period_interval`` seconds in which they changed."""

    def __init__(self, lc_server: str, message: dict[str, Any], period_interval: float = 30) -> None:
        super().__init__(name="sedna-lc-reporter", daemon=True)
        self.lc_server = lc_server
        self.message = message
        self.period_interval = float(period_interval)
        self.inference_number = 0
        self.hard_example_number = 0
        self.period_increment = 0
        self.lock = threading.Lock()
        self.sent = 0
        """Reports the LC accepted."""
        self.refused = 0
        """Reports the LC refused or could not be reached for."""
        self._stop_event = threading.Event()
        self._start_time = _now()

    def update_for_edge_inference(self) -> None:
        """Count a sample answered on the edge."""
        with self.lock:
            self.inference_number += 1
            self.period_increment += 1

    def update_for_collaboration_inference(self) -> None:
        """Count a hard example (answered with the cloud's help)."""
        with self.lock:
            self.inference_number += 1
            self.hard_example_number += 1
            self.period_increment += 1

    def report_once(self) -> bool:
        """Send the counters if anything was counted since the last accepted report; True when nothing is owed."""
        with self.lock:
            if self.period_increment == 0:
                return True
            pending = self.period_increment
            info = {"startTime": self._start_time, "updateTime": _now(), "inferenceNumber": self.inference_number,
                    "hardExampleNumber": self.hard_example_number,
                    "uploadCloudRatio": self.hard_example_number / self.inference_number}
        message = {**self.message, "ownerInfo": info}
        try:
            answer = sedna_send(self.lc_server, str(message.get("name", "")), message)
        except Exception:  # nothing a report does may end the thread
            LOG.exception("reporting to the LC failed; the next period tries again")
            answer = None
        if answer is None:
            self.refused += 1
            return False
        self.message["ownerInfo"] = info
        self.sent += 1
        with self.lock:
            self.period_increment -= pending
        return True

    def run(self) -> None:
        while not self._stop_event.wait(self.period_interval):
            self.report_once()

    def stop(self, timeout: float = 5.0) -> None:
        """End the thread after a last report."""
        self._stop_event.set()
        if self.is_alive():
            self.join(timeout)
        self.report_once()


__all__ = ["LCReporter"]
