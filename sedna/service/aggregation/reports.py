"""Federated-learning reports to the Local Controller, sent in the background.

Trainers (``sedna.core.federated_learning``) and the aggregation worker report with ownerKind
``federatedlearningjob`` and ownerName ``JOB_NAME`` (Sedna left both unset, so its reports were
dropped). :class:`ReportSender` keeps only the latest pending report and sends it from a
thread, so a slow or absent LC never delays a round. :func:`round_reporter` turns the server's
round history into the aggregator's ``ownerInfo``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from sedna.common.config import WorkerConfig
from sedna.service.lc_client import LCClient, LCReport

OWNER_KIND = "federatedlearningjob"


def now() -> str:
    """The time format of Sedna's ``startTime``/``updateTime`` (UTC)."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())


class ReportSender:
    """Best-effort LC reports on a background thread; only the latest pending report is kept."""

    def __init__(self, config: WorkerConfig) -> None:
        self._client = LCClient(config, timeout=2.0)
        self._cond = threading.Condition()
        self._pending: LCReport | None = None
        self._busy = False
        self._thread: threading.Thread | None = None
        self._closed = False

    def send(self, report: LCReport, wait: bool = False) -> None:
        """Queue ``report`` (replacing one not sent yet); ``wait`` blocks until it was sent (at most 5 s)."""
        with self._cond:
            self._pending = report
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="fl-lc-report", daemon=True)
                self._thread.start()
            self._cond.notify_all()
            if wait:
                self._cond.wait_for(lambda: self._pending is None and not self._busy, timeout=5.0)

    def close(self) -> None:
        """Let the thread end once nothing is pending."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def _loop(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending is not None or self._closed)
                if self._pending is None:
                    return
                report, self._pending, self._busy = self._pending, None, True
            try:
                self._client.send(report)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()


def round_info(entry: Mapping[str, Any], started: str) -> dict[str, Any]:
    """The ``ownerInfo`` of one round's report, from the server's history entry."""
    metrics = {k: v for k, v in (entry.get("eval_metrics") or {}).items() if isinstance(v, (int, float, str, bool))}
    loss = entry.get("eval_loss")
    if metrics and isinstance(loss, (int, float)) and "loss" not in metrics:
        metrics["loss"] = float(loss)
    return {"currentRound": int(entry.get("round") or 0), "clients": len(entry.get("clients") or []),
            "failures": len(entry.get("failures") or {}), "metrics": metrics, "startTime": started,
            "updateTime": now()}


def round_reporter(cfg: WorkerConfig) -> Callable[[dict[str, Any], bool], None]:
    """A server ``on_round`` listener that reports each round to the LC (kind ``aggregation``)."""
    sender = ReportSender(cfg)
    started = now()

    def report(entry: dict[str, Any], done: bool) -> None:
        sender.send(LCReport(owner_kind=OWNER_KIND, owner_name=cfg.job_name, kind="aggregation",
                             status="completed" if done else "running", owner_info=round_info(entry, started)),
                    wait=done)

    return report
