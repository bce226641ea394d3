"""Collecting one phase's answers: what reader threads hand in, filed or refused with a reason.

A :class:`Phase` is one instruction sent to a set of clients (``parameters``, ``fit`` or
``evaluate`` of one round). The :class:`Collector` holds the open phase and files results
into it under the runner's condition, so the round runner (``rounds``) can wait for "every
selected client answered, or the deadline passed". An update is accepted only from the very
proxy that was selected (a reconnected client with the same id is a new proxy), for the open
round, with a header matching the global model, finite values and a plausible sample count
(see :class:`~sedna.service.aggregation.admission.SampleCaps`); anything else is refused and
the reason is sent back to the client before the round can end.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sedna.algorithms.aggregation.records import EvaluateRes, FitRes, Metrics, Weights
from sedna.common.log import get_logger
from sedna.service.aggregation.admission import SampleCaps
from sedna.service.aggregation.metrics import ServerMetrics
from sedna.service.aggregation.pool import ClientProxy
from sedna.service.aggregation.validation import Spec, check_finite, check_header

LOG = get_logger("sedna.service.aggregation.server")

KINDS = {"fit_res": "fit", "parameters_res": "parameters"}


@dataclass
class Phase:
    """One instruction to the selected clients and what came back."""

    kind: str
    """``fit``, ``evaluate`` or ``parameters``."""
    round: int
    selected: dict[str, ClientProxy]
    spec: Spec | None = None
    """Names, dtypes and shapes every ``fit`` update must have."""
    results: dict[str, Any] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)

    def pending(self) -> list[str]:
        """Selected clients that neither answered nor failed yet."""
        return [c for c in self.selected if c not in self.results and c not in self.failures]

    def awaits(self, client: ClientProxy, kind: str | None = None, round_number: int | None = None) -> bool:
        """Whether this phase waits for ``client`` (the same proxy), optionally of ``kind`` and round."""
        return ((kind is None or self.kind == kind) and (round_number is None or self.round == round_number)
                and self.selected.get(client.client_id) is client and client.client_id in self.pending())


class Collector:
    """Files answers into the open :class:`Phase` (see the module docstring)."""

    def __init__(self, cond: threading.Condition, metrics: ServerMetrics, caps: SampleCaps | None = None) -> None:
        self.cond = cond
        self.metrics = metrics
        self.caps = caps or SampleCaps()
        self.phase: Phase | None = None

    # ---- the runner's side
    def open(self, phase: Phase) -> None:
        """Make ``phase`` the open one; selected clients already gone fail at once."""
        with self.cond:
            self.phase = phase
            for cid, proxy in phase.selected.items():
                if proxy.is_closed():
                    phase.failures[cid] = "disconnected before the round started"

    def wait(self, phase: Phase, timeout_s: float, stopping: Callable[[], bool]) -> Phase:
        """Block until every selected client answered or failed, ``timeout_s`` passed, or ``stopping()``.

        Clients still pending at the deadline fail with "no answer within the deadline"; the
        phase is closed afterwards (late answers are refused).
        """
        deadline = time.monotonic() + timeout_s
        with self.cond:
            while phase.pending() and not stopping() and time.monotonic() < deadline:
                self.cond.wait(min(0.5, max(0.001, deadline - time.monotonic())))
            for cid in phase.pending():
                phase.failures[cid] = f"no answer within the {timeout_s:g}s deadline"
            if self.phase is phase:
                self.phase = None
        return phase

    # ---- the transport's side (reader threads)
    def expect(self, client: ClientProxy, kind: str, round_number: int, spec: Spec) -> str | None:
        """Why the weights announced by ``client`` (``fit_res``/``parameters_res``) are not wanted, or None.

        Called with the header, before any tensor byte is stored.
        """
        with self.cond:
            phase = self.phase
            unwanted = _unwanted(phase, client, KINDS[kind], round_number)
            if unwanted is not None:
                return unwanted
            assert phase is not None
            expected = phase.spec
        return check_header(expected, spec) if expected is not None else None

    def deliver_fit(self, client: ClientProxy, round_number: int, num_samples: int, weights: Weights | None,
                    metrics: Metrics, nbytes: int, reason: str | None) -> None:
        """A complete update (``weights`` None when its bytes were refused for ``reason``)."""
        if reason is None:
            reason = self.caps.check(client.client_id, num_samples)
        if reason is None and weights is not None:
            reason = check_finite(weights)
        self._file(client, "fit", round_number, reason, nbytes,
                   lambda: FitRes(client.client_id, num_samples, weights or {}, metrics))

    def deliver_parameters(self, client: ClientProxy, round_number: int, weights: Weights | None, nbytes: int,
                           reason: str | None) -> None:
        """The initial model a client was asked for."""
        if reason is None and weights is not None:
            reason = check_finite(weights)
        self._file(client, "parameters", round_number, reason, nbytes, lambda: weights)

    def deliver_evaluation(self, client: ClientProxy, round_number: int, num_samples: int, loss: float,
                           metrics: Metrics) -> None:
        """A client's evaluation of the global model (ignored unless awaited)."""
        with self.cond:
            phase = self.phase
            if phase is not None and phase.awaits(client, "evaluate", round_number):
                phase.results[client.client_id] = EvaluateRes(client.client_id, num_samples, loss, metrics)
                self.cond.notify_all()

    def deliver_error(self, client: ClientProxy, round_number: int, reason: str) -> None:
        """The client could not do what it was asked: it fails this phase only."""
        LOG.warning("client %s reports an error in round %d: %s", client.client_id, round_number, reason)
        with self.cond:
            phase = self.phase
            if phase is not None and phase.awaits(client, round_number=round_number):
                phase.failures[client.client_id] = f"client error: {reason}"
                self.cond.notify_all()

    def client_left(self, client: ClientProxy, reason: str) -> None:
        """Pool listener: a selected client that leaves fails the open phase at once."""
        with self.cond:
            phase = self.phase
            if phase is not None and phase.awaits(client):
                phase.failures[client.client_id] = reason
            self.cond.notify_all()

    def _file(self, client: ClientProxy, kind: str, round_number: int, reason: str | None, nbytes: int,
              result: Callable[[], Any]) -> None:
        with self.cond:
            phase = self.phase
            awaited = phase is not None and phase.awaits(client, kind, round_number)
            if not awaited and reason is None:  # e.g. the deadline passed while its chunks arrived
                reason = _unwanted(phase, client, kind, round_number)
            if awaited and reason is None:
                assert phase is not None
                phase.results[client.client_id] = result()
                self.metrics.bytes_received.inc(nbytes)
                self.metrics.updates.labels("accepted").inc()
            elif awaited:
                assert phase is not None
                phase.failures[client.client_id] = f"rejected: {reason}"
            if reason is not None:
                # queued before the round can end, so the client learns why before it gets Stop
                client.reject(round_number, reason)
            self.cond.notify_all()
        if reason is not None:
            self.metrics.updates.labels("rejected").inc()
            LOG.warning("round %d: update from %s rejected: %s", round_number, client.client_id, reason)


def _unwanted(phase: Phase | None, client: ClientProxy, kind: str, round_number: int) -> str | None:
    """Why ``phase`` does not wait for a ``kind`` result of ``round_number`` from ``client``, or None."""
    if phase is None or phase.kind != kind or phase.round != round_number:
        label = {"fit": "fit_res", "parameters": "parameters_res"}.get(kind, kind)
        return f"{label} for round {round_number} is not expected now (the round is closed or not started)"
    if not phase.awaits(client):
        return f"client {client.client_id!r} is not awaited in round {round_number}"
    return None
