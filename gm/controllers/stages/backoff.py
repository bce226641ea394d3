"""Retry back-off of a staged learning job: a lasting failure must not become a retry storm.

A failed stage sends the machine back to ``(Train, Waiting)``; the next round may open only after
a delay that doubles with every failure in a row, as Kubernetes' CrashLoopBackOff does for a
container (10 s, 20 s, 40 s, ... capped at 5 min). A round that reaches the end of its Deploy
stage (deployed or not) resets the count. The count and the deadline travel in the ``data`` of the
``StageFailed`` history entry (``failures``, ``retryAt`` in Unix seconds, ``nextAttempt`` as RFC
3339), so they survive a GM restart and the history stays the single source of truth.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from gm.cluster.interface import Obj
from gm.controllers.stages.history import data_of
from sedna.controlplane import il_protocol as ilp

FAILED_REASON = "StageFailed"
"""Reason of the ``(Train, Waiting)`` entry that follows a failure."""


@dataclass(frozen=True)
class RetryBackoff:
    """``initial`` seconds after the first failure in a row, doubling per failure up to ``cap``."""

    initial: float = 10.0
    cap: float = 300.0

    def delay(self, failures: int) -> float:
        """Seconds to wait after the ``failures``-th failure in a row (1-based)."""
        if failures < 1 or self.initial <= 0:
            return 0.0
        return float(min(self.cap, self.initial * 2 ** min(failures - 1, 30)))


def failures_in_a_row(history: list[Obj]) -> int:
    """How many failures in a row the history ends with, before the one being recorded now.

    The last ``StageFailed`` entry carries the count; a Deploy that completed after it resets it.
    """
    for cond in reversed(history):
        if cond.get("stage") == ilp.DEPLOY and cond.get("type") == ilp.COMPLETED:
            return 0
        if cond.get("reason") == FAILED_REASON and cond.get("type") == ilp.WAITING:
            value = data_of(cond).get("failures")
            return value if isinstance(value, int) and value > 0 else 1
    return 0


def retry_at(cond: Obj) -> float:
    """The Unix time before which no new round may open after ``cond`` (0: none)."""
    if cond.get("reason") != FAILED_REASON:
        return 0.0
    value: Any = data_of(cond).get("retryAt")
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0


def rfc3339(when: float) -> str:
    """``when`` (Unix seconds) as an RFC 3339 UTC time to the second."""
    return datetime.fromtimestamp(when, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
