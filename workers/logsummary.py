"""What a ready-made worker says in its log: one start line and a periodic summary.

A healthy pod's log should answer "what does this serve, from which model file, and how is it
doing" at ``LOG_LEVEL=INFO`` without drowning in per-request lines: :func:`model_label` names a
model file with its sha256 digest for the start line, :class:`PeriodicSummary` logs counters every
``LOG_SUMMARY_PERIOD`` seconds (60; ``0`` turns it off) when they changed, and
:func:`quiet_libraries` keeps the HTTP client from logging every report to the Local Controller.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

DEFAULT_PERIOD = 60.0


def file_sha256(path: str | Path) -> str:
    """The hex sha256 digest of a file (read in chunks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def model_label(url: str) -> str:
    """``URL (sha256 HEX)`` for a local file, ``URL (not a local file)`` for anything else."""
    try:
        return f"{url} (sha256 {file_sha256(url)})"
    except OSError:
        return f"{url} (not a local file)"


def quiet_libraries() -> None:
    """Keep libraries that log each request at INFO (httpx: every LC report) to warnings."""
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLogger(name).level))


def summary_period(environ: Mapping[str, str]) -> float:
    """``LOG_SUMMARY_PERIOD`` in seconds (default 60; 0 or less: no summaries)."""
    text = environ.get("LOG_SUMMARY_PERIOD", "").strip()
    try:
        return float(text) if text else DEFAULT_PERIOD
    except ValueError as exc:
        raise ValueError(f"LOG_SUMMARY_PERIOD must be a number of seconds, got {text!r}") from exc


def server_totals(registry: Any) -> dict[str, int]:
    """Requests and failed requests counted by an inference server's Prometheus registry."""
    totals = {"requests": 0, "errors": 0}
    for family in registry.collect():
        key = {"sedna_inference_requests": "requests", "sedna_inference_failures": "errors"}.get(family.name)
        if key is not None:
            totals[key] += int(sum(s.value for s in family.samples if s.name.endswith("_total")))
    return totals


class PeriodicSummary:
    """Logs ``describe(counters())`` at INFO every ``period`` seconds while the counters change."""

    def __init__(self, logger: logging.Logger, counters: Callable[[], Mapping[str, Any]],
                 describe: Callable[[Mapping[str, Any]], str], period: float) -> None:
        self._logger, self._counters, self._describe, self.period = logger, counters, describe, period
        self._stop = threading.Event()
        self._last: dict[str, Any] | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> PeriodicSummary:
        if self.period > 0:
            self._thread = threading.Thread(target=self._run, name="log-summary", daemon=True)
            self._thread.start()
        return self

    def log_now(self) -> None:
        """Log the summary if the counters changed since the last one."""
        try:
            now = dict(self._counters())
        except Exception:  # a summary must never take the worker down
            self._logger.debug("summary counters unavailable", exc_info=True)
            return
        if now != self._last:
            self._last = now
            self._logger.info("summary: %s", self._describe(now))

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            self.log_now()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
