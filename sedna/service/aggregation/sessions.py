"""The gRPC side of the aggregation server: one :class:`Session` per client stream.

``Join`` authenticates the stream (bearer token in ``authorization`` metadata), reads the
client's ``Hello``, registers a :class:`Session` with the round loop (a
:class:`Coordinator`, implemented by ``server.AggregationServer``) and then yields what
the round loop queues for that client, expanding weights into chunks lazily so a model
is never copied whole. A reader thread per stream consumes the client's messages,
assembles chunked weights, validates their header before storing a byte, and hands
complete results to the coordinator. The servicer stays thin: no round logic here.
"""

from __future__ import annotations

import hmac
import queue
import threading
from collections.abc import Iterator
from typing import Any, Protocol

import grpc

from sedna.algorithms.aggregation.records import ClientInfo, Weights
from sedna.common.log import get_logger
from sedna.proto import federated_pb2 as pb
from sedna.proto import federated_pb2_grpc as pb_grpc
from sedna.service.aggregation.serde import TensorAssembler, WireError
from sedna.service.aggregation.wire import SERVER_CHUNK_TAG, Framed, WireChunk, chunk_frames

LOG = get_logger(__name__)


class Session:
    """One connected client stream: identity plus an outgoing queue."""

    def __init__(self, info: ClientInfo, chunk_size: int) -> None:
        self.info = info
        self.client_id = info.client_id
        self._chunk_size = chunk_size
        self._out: queue.SimpleQueue[tuple[pb.ServerMessage, list[memoryview] | Framed | None] | None] = \
            queue.SimpleQueue()
        self.closed = threading.Event()

    def send(self, message: pb.ServerMessage, views: list[memoryview] | Framed | None = None) -> None:
        """Queue ``message``; ``views`` (tensor bytes, or chunks framed already) follow it as chunks."""
        if not self.closed.is_set():
            self._out.put((message, views))

    def close(self) -> None:
        """End the response stream after what is already queued."""
        if not self.closed.is_set():
            self.closed.set()
            self._out.put(None)

    def responses(self) -> Iterator[pb.ServerMessage | bytes]:
        """Queued messages; weights follow as pre-framed chunk messages (see :mod:`.wire`)."""
        while True:
            item = self._out.get()
            if item is None:
                return
            message, views = item
            yield message
            if isinstance(views, Framed):
                yield from views.frames
            elif views:
                yield from chunk_frames(views, self._chunk_size, SERVER_CHUNK_TAG)


class Coordinator(Protocol):
    """What the servicer needs from the round loop."""

    def register(self, session: Session) -> None: ...
    def unregister(self, session: Session, reason: str) -> None: ...
    def expect(self, session: Session, kind: str, round_number: int, header: pb.TensorsHeader) -> str | None: ...
    def deliver(self, session: Session, kind: str, message: Any, weights: Weights | None,
                reason: str | None) -> None: ...
    def deliver_evaluation(self, session: Session, result: pb.EvaluateRes) -> None: ...
    def health(self) -> pb.HealthResponse: ...


class _Incoming:
    """Weights being received for one result message."""

    def __init__(self, kind: str, message: Any, assembler: TensorAssembler | None, reason: str | None) -> None:
        self.kind, self.message, self.assembler, self.reason = kind, message, assembler, reason
        self.remaining = int(message.weights.total_bytes)


class FederatedServicer(pb_grpc.FederatedLearningServicer):
    """Thin adapter between gRPC streams and a :class:`Coordinator`."""

    def __init__(self, coordinator: Coordinator, *, job_name: str = "", token: str = "",
                 chunk_size: int = 1 << 20, max_update_bytes: int = 0) -> None:
        self._coordinator = coordinator
        self._job_name = job_name
        self._expected = f"Bearer {token}".encode() if token else b""
        self._chunk_size = chunk_size
        self._max_update_bytes = max_update_bytes

    def _authorised(self, context: grpc.ServicerContext) -> bool:
        if not self._expected:
            return True
        sent = dict(context.invocation_metadata()).get("authorization", "")
        return hmac.compare_digest(str(sent).encode(), self._expected)

    def Health(self, request: pb.HealthRequest, context: grpc.ServicerContext) -> pb.HealthResponse:
        return self._coordinator.health()

    def Join(self, request_iterator: Iterator[pb.ClientMessage],
             context: grpc.ServicerContext) -> Iterator[pb.ServerMessage | bytes]:
        if not self._authorised(context):
            context.abort(grpc.StatusCode.UNAUTHENTICATED,
                          "missing or wrong bearer token (send metadata 'authorization: Bearer <token>')")
        try:
            first = next(request_iterator)
        except StopIteration:
            return
        if first.WhichOneof("msg") != "hello":
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the first message must be 'hello'")
        hello = first.hello
        if not hello.client_id:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "hello.client_id is empty")
        if self._job_name and hello.job_name != self._job_name:
            context.abort(grpc.StatusCode.PERMISSION_DENIED,
                          f"hello.job_name {hello.job_name!r} is not this server's job {self._job_name!r}")
        session = Session(ClientInfo(hello.client_id, int(hello.num_samples), bool(hello.can_evaluate)),
                          self._chunk_size)
        self._coordinator.register(session)
        context.add_callback(lambda: self._coordinator.unregister(session, "stream closed"))
        threading.Thread(target=self._read, args=(session, request_iterator, context), daemon=True,
                         name=f"fl-read-{hello.client_id}").start()
        yield from session.responses()

    def _read(self, session: Session, requests: Iterator[pb.ClientMessage | WireChunk],
              context: grpc.ServicerContext) -> None:
        reason = "disconnected"
        incoming: _Incoming | None = None
        try:
            for message in requests:
                wire_chunk = isinstance(message, WireChunk)
                kind = "chunk" if wire_chunk else message.WhichOneof("msg")
                if kind == "chunk":
                    if incoming is None:
                        raise WireError("chunk without a preceding fit_res/parameters_res header")
                    data = message.data if wire_chunk else message.chunk.data
                    if len(data) > incoming.remaining:
                        raise WireError(f"chunk overruns the announced {incoming.message.weights.total_bytes} bytes")
                    incoming.remaining -= len(data)
                    if incoming.assembler is not None:
                        incoming.assembler.feed(data)
                    if incoming.remaining == 0:
                        self._finish(session, incoming)
                        incoming = None
                elif kind in ("fit_res", "parameters_res"):
                    if incoming is not None:
                        raise WireError(f"{kind} arrived while {incoming.kind} weights were incomplete")
                    incoming = self._begin(session, kind, getattr(message, kind))
                    if incoming.remaining == 0:
                        self._finish(session, incoming)
                        incoming = None
                elif kind == "evaluate_res":
                    self._coordinator.deliver_evaluation(session, message.evaluate_res)
                elif kind == "error":
                    LOG.warning("client %s reports an error in round %d: %s", session.client_id,
                                message.error.round, message.error.reason)
                    self._coordinator.deliver(session, "error", message.error, None, message.error.reason)
                else:
                    raise WireError(f"unexpected message {kind!r} after hello")
        except WireError as exc:
            reason = f"protocol error: {exc}"
            LOG.warning("client %s: %s", session.client_id, reason)
            session.send(pb.ServerMessage(rejected=pb.Rejected(reason=reason)))
        except grpc.RpcError:
            reason = "stream broken"
        except Exception as exc:  # a bug here must drop the client, never the server
            reason = f"server error reading the stream: {exc!r}"
            LOG.exception("client %s: reader failed", session.client_id)
        finally:
            self._coordinator.unregister(session, reason)

    def _begin(self, session: Session, kind: str, message: Any) -> _Incoming:
        header = message.weights
        reason = self._coordinator.expect(session, kind, int(message.round), header)
        if reason is not None:
            return _Incoming(kind, message, None, reason)
        try:
            return _Incoming(kind, message, TensorAssembler(header, self._max_update_bytes), None)
        except WireError as exc:
            return _Incoming(kind, message, None, str(exc))

    def _finish(self, session: Session, incoming: _Incoming) -> None:
        weights = None
        if incoming.assembler is not None:
            weights = incoming.assembler.result()
        self._coordinator.deliver(session, incoming.kind, incoming.message, weights, incoming.reason)

