"""The stream side of the aggregation server: what gRPC reader threads call.

:class:`StreamSide` implements the :class:`~sedna.service.aggregation.sessions.Coordinator`
protocol for :class:`~sedna.service.aggregation.server.AggregationServer` (a mixin: it uses the
server's condition, sessions and current :class:`Phase`): clients join and leave, a result's
header is checked before its bytes are stored, complete results are filed into the phase or
rejected with the reason sent back to the client. The round loop itself is in ``server``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from sedna.algorithms.aggregation.records import EvaluateRes, FitRes, Weights
from sedna.common.errors import SednaError
from sedna.common.log import get_logger
from sedna.proto import federated_pb2 as pb
from sedna.service.aggregation.metrics import ServerMetrics
from sedna.service.aggregation.serde import encode_weights, header_spec, scalars_from_proto
from sedna.service.aggregation.sessions import Session
from sedna.service.aggregation.settings import ServerSettings
from sedna.service.aggregation.validation import check_finite, check_header

LOG = get_logger("sedna.service.aggregation.server")


class RoundFailedError(SednaError, RuntimeError):
    """A round could not gather enough updates in ``max_round_attempts`` attempts."""


class Stopped(Exception):
    """The server was asked to stop while waiting."""


@dataclass
class RunResult:
    """What :meth:`AggregationServer.run` returns."""

    rounds: int
    weights: Weights
    history: list[dict[str, Any]]
    reason: str


@dataclass
class Phase:
    kind: str  # "fit", "evaluate" or "parameters"
    round: int
    selected: dict[str, Session]
    spec: dict[str, tuple[str, tuple[int, ...]]] | None
    results: dict[str, Any] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)

    def pending(self) -> list[str]:
        return [c for c in self.selected if c not in self.results and c not in self.failures]


class StreamSide:
    """Coordinator methods of the aggregation server (see the module docstring)."""

    settings: ServerSettings
    metrics: ServerMetrics
    _cond: threading.Condition
    _sessions: dict[str, Session]
    _phase: Phase | None
    _weights: Weights | None
    _round: int
    _done: bool
    _served_after_done: bool
    _status: str

    def register(self, session: Session) -> None:
        with self._cond:
            old = self._sessions.get(session.client_id)
            if old is not None:
                self._drop(old, "replaced by a new connection with the same client id")
            self._sessions[session.client_id] = session
            self.metrics.connected.set(len(self._sessions))
            done = self._done
            self._cond.notify_all()
        LOG.info("client %s joined (%d samples)%s", session.client_id, session.info.num_samples,
                 " and replaced its previous stream" if old is not None else "")
        session.send(pb.ServerMessage(welcome=pb.Welcome(round=self._round, job_name=self.settings.job_name)))
        if done:
            self._served_after_done = True
            self._send_stop(session, "job already finished")

    def unregister(self, session: Session, reason: str) -> None:
        with self._cond:
            if self._sessions.get(session.client_id) is session:
                del self._sessions[session.client_id]
                self.metrics.connected.set(len(self._sessions))
                LOG.info("client %s left: %s", session.client_id, reason)
            self._drop(session, reason)
            self._cond.notify_all()

    def _drop(self, session: Session, reason: str) -> None:
        phase = self._phase
        if phase is not None and phase.selected.get(session.client_id) is session \
                and session.client_id in phase.pending():
            phase.failures[session.client_id] = reason
        session.close()

    def expect(self, session: Session, kind: str, round_number: int, header: pb.TensorsHeader) -> str | None:
        with self._cond:
            phase = self._phase
            wanted = {"fit_res": "fit", "parameters_res": "parameters"}[kind]
            if phase is None or phase.kind != wanted or phase.round != round_number:
                return f"{kind} for round {round_number} is not expected now (the round is closed or not started)"
            if phase.selected.get(session.client_id) is not session or session.client_id not in phase.pending():
                return f"client {session.client_id!r} is not awaited in round {round_number}"
            spec = phase.spec
        return check_header(spec, header_spec(header)) if spec is not None else None

    def deliver(self, session: Session, kind: str, message: Any, weights: Weights | None, reason: str | None) -> None:
        if reason is None and weights is not None:
            reason = check_finite(weights)
        round_number = int(getattr(message, "round", 0))
        with self._cond:
            phase = self._phase
            awaited = (phase is not None and phase.round == round_number
                       and phase.selected.get(session.client_id) is session
                       and session.client_id in phase.pending())
            if reason is None and awaited and weights is not None:
                assert phase is not None
                self.metrics.bytes_received.inc(int(message.weights.total_bytes))
                self.metrics.updates.labels("accepted").inc()
                if kind == "parameters_res":
                    phase.results[session.client_id] = weights
                else:
                    phase.results[session.client_id] = FitRes(session.client_id, int(message.num_samples), weights,
                                                              scalars_from_proto(message.metrics))
            elif awaited:
                assert phase is not None
                label = "client error" if kind == "error" else "rejected"
                phase.failures[session.client_id] = f"{label}: {reason}"
            if reason is not None and kind != "error":
                # queued before the round can end, so the client learns why before it gets Stop
                session.send(pb.ServerMessage(rejected=pb.Rejected(round=round_number, reason=reason)))
            self._cond.notify_all()
        if reason is not None and kind != "error":
            self.metrics.updates.labels("rejected").inc()
            LOG.warning("round %d: update from %s rejected: %s", round_number, session.client_id, reason)

    def deliver_evaluation(self, session: Session, result: pb.EvaluateRes) -> None:
        with self._cond:
            phase = self._phase
            if (phase is not None and phase.kind == "evaluate" and phase.round == result.round
                    and phase.selected.get(session.client_id) is session and session.client_id in phase.pending()):
                phase.results[session.client_id] = EvaluateRes(session.client_id, int(result.num_samples),
                                                               float(result.loss), scalars_from_proto(result.metrics))
                self._cond.notify_all()

    def health(self) -> pb.HealthResponse:
        with self._cond:
            return pb.HealthResponse(status="DONE" if self._done else self._status, round=self._round,
                                     connected_clients=len(self._sessions), job_name=self.settings.job_name)

    def _send_stop(self, session: Session, reason: str) -> None:
        assert self._weights is not None
        header, views = encode_weights(self._weights)
        session.send(pb.ServerMessage(stop=pb.Stop(round=self._round, reason=reason, weights=header)), views)
        session.close()
