"""The edge side of the federated protocol: connect, follow the server, reconnect.

:class:`AggregationClient` opens one ``Join`` stream, says ``Hello``, then does what the
server asks: hand over initial weights, train (``FitIns``), evaluate (``EvaluateIns``),
until ``Stop`` brings the final model. What "train" means is a :class:`ClientHandler`'s
business (``sedna.core.federated_learning`` adapts user estimators). While the aggregator
is not up yet, or after the link drops, the client retries with exponential back-off and
jitter and rejoins with the same client id (refused with ``ALREADY_EXISTS`` while the server
still holds its previous stream: retried too); it gives up only after ``connect_timeout_s``
without hearing from the server, or at once when the server refuses it (bad token or
credential, wrong job, a sample count over the cap): retrying cannot fix that.
"""

from __future__ import annotations

import queue
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import grpc

from sedna.algorithms.aggregation.records import Config, Metrics, Weights
from sedna.common.errors import SednaError
from sedna.common.grpc_options import channel_options
from sedna.common.log import get_logger
from sedna.proto import federated_pb2 as pb
from sedna.service.aggregation.admission import CREDENTIAL_METADATA
from sedna.service.aggregation.serde import (
    ENCODINGS,
    TensorAssembler,
    encode_weights,
    scalars_from_proto,
    scalars_to_proto,
)
from sedna.service.aggregation.wire import CLIENT_CHUNK_TAG, WireChunk, chunk_frames, join_method

LOG = get_logger(__name__)

KEEPALIVE_S = 20.0
_CHANNEL_OPTIONS = channel_options(keepalive_s=KEEPALIVE_S)
_FATAL = (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.INVALID_ARGUMENT,
          grpc.StatusCode.UNIMPLEMENTED)


Outbox = queue.SimpleQueue[tuple[pb.ClientMessage, list[memoryview] | None] | None]
"""Messages (with the tensor bytes that follow them) the request stream sends; None ends it."""


class JobRejectedError(SednaError, PermissionError):
    """The aggregation server refused this client (token, job name, malformed hello)."""


@dataclass(frozen=True)
class ClientSettings:
    """Who the client is and how it reaches the aggregator."""

    target: str
    """``host:port`` of the aggregation server (``AGG_IP:AGG_PORT``)."""
    client_id: str
    """Stable id; the server refuses it while a previous stream with it is still open."""
    job_name: str = ""
    num_samples: int = 0
    can_evaluate: bool = False
    token: str = field(default="", repr=False)
    """Job bearer token sent as ``authorization`` metadata."""
    credential: str = field(default="", repr=False)
    """This trainer's own credential (``AGG_CLIENT_TOKEN``), sent as ``sedna-client-credential`` metadata."""
    tls_ca_file: str = ""
    """PEM CA bundle; set to use TLS."""
    compression: str = "none"
    """Encoding of updates: ``none``, ``fp16`` or ``int8`` (per-tensor scale)."""
    chunk_size: int = 1 << 20
    connect_timeout_s: float = 300.0
    """Give up after this long without any message from the server."""
    backoff_initial_s: float = 0.2
    backoff_max_s: float = 5.0

    def __post_init__(self) -> None:
        if not self.client_id:
            raise ValueError("client_id is empty (set WORKER_NAME)")
        if self.compression not in ENCODINGS:
            raise ValueError(f"compression {self.compression!r} is not one of {', '.join(ENCODINGS)}")


@dataclass(frozen=True)
class StopInfo:
    """How the job ended, with the final global model."""

    round: int
    reason: str
    weights: Weights


class ClientHandler(Protocol):
    """What the client does when the server asks."""

    def get_weights(self) -> Weights: ...
    def fit(self, server_round: int, weights: Weights, config: Config) -> tuple[Weights, int, Metrics]: ...
    def evaluate(self, server_round: int, weights: Weights, config: Config) -> tuple[int, float, Metrics]: ...
    def on_rejected(self, server_round: int, reason: str) -> None: ...
    def on_stop(self, info: StopInfo) -> None: ...


class AggregationClient:
    """Follows an aggregation server until it says stop (see the module docstring)."""

    def __init__(self, settings: ClientSettings, handler: ClientHandler) -> None:
        self.settings = settings
        self.handler = handler
        self._last_contact = time.monotonic()
        self._closed = threading.Event()
        self._call: Any = None
        self.rejections: list[tuple[int, str]] = []

    def close(self) -> None:
        """Stop following the server (from another thread)."""
        self._closed.set()
        call = self._call
        if call is not None:
            call.cancel()

    def run(self) -> StopInfo:
        """Block until the server stops the job; return the final model."""
        s = self.settings
        delay = s.backoff_initial_s
        self._last_contact = time.monotonic()
        while not self._closed.is_set():
            contact_before = self._last_contact
            try:
                outcome = self._session()
            except grpc.RpcError as exc:
                code = exc.code() if hasattr(exc, "code") else None
                if code in _FATAL:
                    raise JobRejectedError(f"aggregation server {s.target} refused client {s.client_id!r}: "
                                           f"{code.name}: {exc.details()}") from None
                if self._closed.is_set():
                    break
                if code == grpc.StatusCode.ALREADY_EXISTS:
                    LOG.info("aggregation server %s still holds a stream as %r (%s); retrying in %.1fs",
                             s.target, s.client_id, exc.details(), delay)
                else:
                    LOG.info("aggregation server %s unreachable (%s); retrying in %.1fs", s.target,
                             code.name if code else exc, delay)
                outcome = None
            if isinstance(outcome, StopInfo):
                return outcome
            if isinstance(outcome, float):
                self._closed.wait(outcome)
            if self._last_contact != contact_before:
                delay = s.backoff_initial_s
            if time.monotonic() - self._last_contact > s.connect_timeout_s:
                raise ConnectionError(f"no contact with aggregation server {s.target} for "
                                      f"{s.connect_timeout_s:g}s (CONNECT_TIMEOUT); giving up")
            self._closed.wait(delay * (0.5 + random.random()))
            delay = min(delay * 2, s.backoff_max_s)
        raise ConnectionError("client closed before the job finished")

    def _channel(self) -> grpc.Channel:
        s = self.settings
        if s.tls_ca_file:
            creds = grpc.ssl_channel_credentials(root_certificates=Path(s.tls_ca_file).read_bytes())
            return grpc.secure_channel(s.target, creds, options=_CHANNEL_OPTIONS)
        return grpc.insecure_channel(s.target, options=_CHANNEL_OPTIONS)

    def _session(self) -> StopInfo | float | None:
        s = self.settings
        outbox: Outbox = queue.SimpleQueue()
        hello = pb.Hello(client_id=s.client_id, job_name=s.job_name, num_samples=s.num_samples,
                         can_evaluate=s.can_evaluate)
        outbox.put((pb.ClientMessage(hello=hello), None))

        def requests() -> Iterator[pb.ClientMessage | bytes]:
            while True:
                item = outbox.get()
                if item is None:
                    return
                message, views = item
                yield message
                if views:
                    yield from chunk_frames(views, s.chunk_size, CLIENT_CHUNK_TAG)

        metadata = [("authorization", f"Bearer {s.token}")] if s.token else []
        if s.credential:
            metadata.append((CREDENTIAL_METADATA, s.credential))
        channel = self._channel()
        try:
            call = join_method(channel)(requests(), metadata=metadata)
            self._call = call
            if self._closed.is_set():
                call.cancel()
            return self._follow(call, outbox)
        finally:
            outbox.put(None)
            self._call = None
            channel.close()

    def _follow(self, call: Any, outbox: Outbox) -> StopInfo | float | None:
        kind, head, assembler = "", None, None
        for message in call:
            self._last_contact = time.monotonic()
            wire_chunk = isinstance(message, WireChunk)
            what = "chunk" if wire_chunk else message.WhichOneof("msg")
            if what == "chunk":
                if assembler is None:
                    raise ConnectionError("server sent a chunk without a header")
                assembler.feed(message.data if wire_chunk else message.chunk.data)
                if assembler.done:
                    result = self._handle(kind, head, assembler.result(), outbox)
                    kind, head, assembler = "", None, None
                    if result is not None:
                        return result
            elif what in ("fit_ins", "evaluate_ins", "stop"):
                kind, head = what.replace("_ins", ""), getattr(message, what)
                assembler = TensorAssembler(head.weights)
                if assembler.done:
                    result = self._handle(kind, head, assembler.result(), outbox)
                    kind, head, assembler = "", None, None
                    if result is not None:
                        return result
            elif what == "get_parameters_ins":
                header, views = encode_weights(self.handler.get_weights())
                outbox.put((pb.ClientMessage(parameters_res=pb.ParametersRes(
                    round=message.get_parameters_ins.round, weights=header)), views))
            elif what == "rejected":
                rej = message.rejected
                self.rejections.append((int(rej.round), rej.reason))
                LOG.warning("round %d: the server rejected our update: %s", rej.round, rej.reason)
                self.handler.on_rejected(int(rej.round), rej.reason)
            elif what == "reconnect":
                LOG.info("server asks to reconnect in %.1fs: %s", message.reconnect.seconds, message.reconnect.reason)
                return float(message.reconnect.seconds)
            elif what == "welcome":
                LOG.info("joined job %r at %s (server at round %d)", message.welcome.job_name, self.settings.target,
                         message.welcome.round)
        return None

    def _handle(self, kind: str, head: Any, weights: Weights, outbox: Outbox) -> StopInfo | None:
        config = scalars_from_proto(head.config) if kind != "stop" else {}
        number = int(head.round)
        if kind == "stop":
            info = StopInfo(number, head.reason, weights)
            self.handler.on_stop(info)
            return info
        try:
            if kind == "fit":
                new, num_samples, metrics = self.handler.fit(number, weights, config)
                header, views = encode_weights(new, self.settings.compression)
                res = pb.FitRes(round=number, num_samples=num_samples, weights=header)
                scalars_to_proto(metrics, res.metrics)
                outbox.put((pb.ClientMessage(fit_res=res), views))
            else:
                num_samples, loss, metrics = self.handler.evaluate(number, weights, config)
                eva = pb.EvaluateRes(round=number, num_samples=num_samples, loss=loss)
                scalars_to_proto(metrics, eva.metrics)
                outbox.put((pb.ClientMessage(evaluate_res=eva), None))
        except Exception as exc:
            outbox.put((pb.ClientMessage(error=pb.ClientError(round=number, reason=f"{kind} failed: {exc!r}")), None))
            raise
        return None
