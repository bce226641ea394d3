"""The gRPC side of the aggregation server: one :class:`Session` per client stream.

``Join`` authenticates the stream (job token in ``authorization``, the trainer's own
credential in ``sedna-client-credential``; see ``admission``), reads the client's ``Hello``,
and adds a :class:`Session` - the gRPC implementation of
:class:`~sedna.service.aggregation.pool.ClientProxy` - to the :class:`ClientPool`. It then
yields what the round runner queued for that client, expanding weights into pre-framed chunks
lazily (``wire``), so a model is never copied whole; the global model of a round is encoded
and framed once for every client (:class:`BroadcastCache`). A reader thread per stream
consumes the client's messages, checks each weights header with the collector before
storing a byte, assembles chunks, and hands complete results to the
:class:`~sedna.service.aggregation.phases.Collector`. No round logic here.
"""

from __future__ import annotations

import hmac
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

import grpc

from sedna.algorithms.aggregation.records import ClientInfo, EvaluateIns, FitIns, Weights
from sedna.common.log import get_logger
from sedna.proto import federated_pb2 as pb
from sedna.proto import federated_pb2_grpc as pb_grpc
from sedna.service.aggregation.admission import CREDENTIAL_METADATA, Admission, Refused
from sedna.service.aggregation.metrics import ServerMetrics
from sedna.service.aggregation.phases import Collector
from sedna.service.aggregation.pool import ClientPool, DuplicateClientError
from sedna.service.aggregation.serde import (
    TensorAssembler,
    WireError,
    encode_weights,
    header_spec,
    scalars_from_proto,
    scalars_to_proto,
)
from sedna.service.aggregation.wire import SERVER_CHUNK_TAG, Framed, WireChunk, chunk_frames, framed_once

LOG = get_logger(__name__)

Payload = list[memoryview] | Framed | None


class BroadcastCache:
    """The encoded form of the last model sent, reused while the same weights object is sent again."""

    def __init__(self, chunk_size: int) -> None:
        self._chunk_size = chunk_size
        self._lock = threading.Lock()
        self._weights: Weights | None = None
        self._encoded: tuple[pb.TensorsHeader, list[memoryview] | Framed] | None = None

    def encoded(self, weights: Weights) -> tuple[pb.TensorsHeader, list[memoryview] | Framed]:
        """``(header, payload)`` of ``weights``; encoded and framed once per weights object."""
        with self._lock:
            if self._weights is not weights or self._encoded is None:
                header, views = encode_weights(weights)
                self._encoded = header, framed_once(views, header.total_bytes, self._chunk_size)
                self._weights = weights  # held, so its id cannot be reused while cached
            return self._encoded


class Session:
    """One connected client stream: identity plus an outgoing queue (a ``ClientProxy``)."""

    def __init__(self, info: ClientInfo, cache: BroadcastCache, metrics: ServerMetrics | None = None) -> None:
        self._info = info
        self._cache = cache
        self._metrics = metrics
        self._out: queue.SimpleQueue[tuple[pb.ServerMessage, Payload] | None] = queue.SimpleQueue()
        self._closed = threading.Event()

    @property
    def info(self) -> ClientInfo:
        return self._info

    @property
    def client_id(self) -> str:
        return self._info.client_id

    def is_closed(self) -> bool:
        return self._closed.is_set()

    # ---- ClientProxy
    def get_parameters(self, server_round: int) -> None:
        self.send(pb.ServerMessage(get_parameters_ins=pb.GetParametersIns(round=server_round)))

    def fit(self, server_round: int, ins: FitIns) -> None:
        header, payload = self._cache.encoded(ins.weights)
        body = pb.FitIns(round=server_round, weights=header)
        scalars_to_proto(ins.config, body.config)
        self._send_weights(pb.ServerMessage(fit_ins=body), header, payload)

    def evaluate(self, server_round: int, ins: EvaluateIns) -> None:
        header, payload = self._cache.encoded(ins.weights)
        body = pb.EvaluateIns(round=server_round, weights=header)
        scalars_to_proto(ins.config, body.config)
        self._send_weights(pb.ServerMessage(evaluate_ins=body), header, payload)

    def reject(self, server_round: int, reason: str) -> None:
        self.send(pb.ServerMessage(rejected=pb.Rejected(round=server_round, reason=reason)))

    def stop(self, server_round: int, reason: str, weights: Weights) -> None:
        header, payload = self._cache.encoded(weights)
        self._send_weights(pb.ServerMessage(stop=pb.Stop(round=server_round, reason=reason, weights=header)),
                           header, payload)
        self.close()

    def close(self) -> None:
        """End the response stream after what is already queued."""
        if not self._closed.is_set():
            self._closed.set()
            self._out.put(None)

    # ---- the stream
    def send(self, message: pb.ServerMessage, payload: Payload = None) -> None:
        """Queue ``message``; ``payload`` (tensor bytes, or chunks framed already) follows it as chunks."""
        if not self._closed.is_set():
            self._out.put((message, payload))

    def _send_weights(self, message: pb.ServerMessage, header: pb.TensorsHeader, payload: Payload) -> None:
        self.send(message, payload)
        if self._metrics is not None:
            self._metrics.bytes_sent.inc(header.total_bytes)

    def responses(self, chunk_size: int) -> Iterator[pb.ServerMessage | bytes]:
        """Queued messages; weights follow as pre-framed chunk messages (see :mod:`.wire`)."""
        while True:
            item = self._out.get()
            if item is None:
                return
            message, payload = item
            yield message
            if isinstance(payload, Framed):
                yield from payload.frames
            elif payload:
                yield from chunk_frames(payload, chunk_size, SERVER_CHUNK_TAG)


class _Incoming:
    """Weights being received for one result message."""

    def __init__(self, kind: str, message: Any, assembler: TensorAssembler | None, reason: str | None) -> None:
        self.kind, self.message, self.assembler, self.reason = kind, message, assembler, reason
        self.remaining = int(message.weights.total_bytes)


class FederatedServicer(pb_grpc.FederatedLearningServicer):
    """Thin adapter between gRPC streams, the :class:`ClientPool` and the :class:`Collector`."""

    def __init__(self, pool: ClientPool, collector: Collector, health: Callable[[], pb.HealthResponse],
                 current_round: Callable[[], int], *, admission: Admission | None = None, token: str = "",
                 chunk_size: int = 1 << 20, max_update_bytes: int = 0, metrics: ServerMetrics | None = None) -> None:
        self._pool = pool
        self._collector = collector
        self._health = health
        self._current_round = current_round
        self._admission = admission or Admission()
        self._expected = f"Bearer {token}".encode() if token else b""
        self._chunk_size = chunk_size
        self._max_update_bytes = max_update_bytes
        self._cache = BroadcastCache(chunk_size)
        self._metrics = metrics

    def _authorised(self, metadata: dict[str, Any]) -> bool:
        if not self._expected:
            return True
        return hmac.compare_digest(str(metadata.get("authorization", "")).encode(), self._expected)

    def Health(self, request: pb.HealthRequest, context: grpc.ServicerContext) -> pb.HealthResponse:
        return self._health()

    def Join(self, request_iterator: Iterator[pb.ClientMessage],
             context: grpc.ServicerContext) -> Iterator[pb.ServerMessage | bytes]:
        metadata = dict(context.invocation_metadata())
        if not self._authorised(metadata):
            context.abort(grpc.StatusCode.UNAUTHENTICATED,
                          "missing or wrong bearer token (send metadata 'authorization: Bearer <token>')")
        try:
            first = next(request_iterator)
        except StopIteration:
            return
        if first.WhichOneof("msg") != "hello":
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the first message must be 'hello'")
        hello = first.hello
        try:
            self._admission.check(hello.client_id, hello.job_name, int(hello.num_samples),
                                  str(metadata.get(CREDENTIAL_METADATA, "")))
        except Refused as exc:
            LOG.warning("refused a join as %r: %s", hello.client_id, exc)
            context.abort(getattr(grpc.StatusCode, exc.code), str(exc))
        session = Session(ClientInfo(hello.client_id, int(hello.num_samples), bool(hello.can_evaluate)),
                          self._cache, self._metrics)
        session.send(pb.ServerMessage(welcome=pb.Welcome(round=self._current_round(),
                                                         job_name=self._admission.job_name)))
        try:
            self._pool.register(session)
        except DuplicateClientError as exc:
            LOG.warning("refused a second connection as %r: %s", hello.client_id, exc)
            context.abort(grpc.StatusCode.ALREADY_EXISTS, str(exc))
        LOG.info("client %s joined (%d samples)", session.client_id, session.info.num_samples)
        context.add_callback(lambda: self._pool.unregister(session, "stream closed"))
        threading.Thread(target=self._read, args=(session, request_iterator), daemon=True,
                         name=f"fl-read-{hello.client_id}").start()
        yield from session.responses(self._chunk_size)

    def _read(self, session: Session, requests: Iterator[pb.ClientMessage | WireChunk]) -> None:
        reason = "disconnected"
        incoming: _Incoming | None = None
        try:
            for message in requests:
                if isinstance(message, WireChunk):
                    incoming = self._chunk(session, incoming, message.data)
                    continue
                kind = message.WhichOneof("msg")
                if kind == "chunk":
                    incoming = self._chunk(session, incoming, message.chunk.data)
                elif kind in ("fit_res", "parameters_res"):
                    if incoming is not None:
                        raise WireError(f"{kind} arrived while {incoming.kind} weights were incomplete")
                    incoming = self._begin(session, kind, getattr(message, kind))
                    if incoming.remaining == 0:
                        self._finish(session, incoming)
                        incoming = None
                elif kind == "evaluate_res":
                    res = message.evaluate_res
                    self._collector.deliver_evaluation(session, int(res.round), int(res.num_samples),
                                                       float(res.loss), scalars_from_proto(res.metrics))
                elif kind == "error":
                    self._collector.deliver_error(session, int(message.error.round), message.error.reason)
                else:
                    raise WireError(f"unexpected message {kind!r} after hello")
        except WireError as exc:
            reason = f"protocol error: {exc}"
            LOG.warning("client %s: %s", session.client_id, reason)
            session.reject(0, reason)
        except grpc.RpcError:
            reason = "stream broken"
        except Exception as exc:  # a bug here must drop the client, never the server
            reason = f"server error reading the stream: {exc!r}"
            LOG.exception("client %s: reader failed", session.client_id)
        finally:
            if self._pool.unregister(session, reason):
                LOG.info("client %s left: %s", session.client_id, reason)

    def _chunk(self, session: Session, incoming: _Incoming | None, data: bytes | memoryview) -> _Incoming | None:
        """Feed one chunk; returns what is still incoming (None once the weights are complete)."""
        if incoming is None:
            raise WireError("chunk without a preceding fit_res/parameters_res header")
        if len(data) > incoming.remaining:
            raise WireError(f"chunk overruns the announced {incoming.message.weights.total_bytes} bytes")
        incoming.remaining -= len(data)
        if incoming.assembler is not None:
            incoming.assembler.feed(data)
        if incoming.remaining:
            return incoming
        self._finish(session, incoming)
        return None

    def _begin(self, session: Session, kind: str, message: Any) -> _Incoming:
        header = message.weights
        reason = self._collector.expect(session, kind, int(message.round), header_spec(header))
        if reason is not None:
            return _Incoming(kind, message, None, reason)
        try:
            return _Incoming(kind, message, TensorAssembler(header, self._max_update_bytes), None)
        except WireError as exc:
            return _Incoming(kind, message, None, str(exc))

    def _finish(self, session: Session, incoming: _Incoming) -> None:
        weights = incoming.assembler.result() if incoming.assembler is not None else None
        message, nbytes = incoming.message, int(incoming.message.weights.total_bytes)
        if incoming.kind == "parameters_res":
            self._collector.deliver_parameters(session, int(message.round), weights, nbytes, incoming.reason)
        else:
            self._collector.deliver_fit(session, int(message.round), int(message.num_samples), weights,
                                        scalars_from_proto(message.metrics), nbytes, incoming.reason)
