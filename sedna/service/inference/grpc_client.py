"""OIP v2 gRPC client: what an edge worker uses to reach the cloud model.

One channel per client object (HTTP/2 multiplexes concurrent calls, and grpc
channels are thread-safe), tensors as raw bytes, bearer token as ``authorization``
metadata, optional TLS with a CA bundle. gRPC status codes become the SDK's errors,
so callers catch :class:`~sedna.common.errors.CloudUnavailableError` to fall back to
the edge result. :meth:`GrpcInferenceClient.stream` opens a ``ModelStreamInfer``
stream (:class:`InferStream`) for callers that send many requests: a message on an
open stream costs client and server about a third of a unary call.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import queue
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from sedna.common.errors import CloudUnavailableError, InferenceError, InvalidInputError, ModelNotFoundError
from sedna.common.grpc_options import channel_options

from . import _grpc_codec as codec
from ._tensors import InferResult

_MAX_MESSAGE = 1024 * 1024 * 1024
CHANNEL_OPTIONS = channel_options(max_message_bytes=_MAX_MESSAGE)
"""Options of every client channel: no message size cap below 1 GiB."""


def rpc_error(code: str, detail: str, what: str, target: str) -> InferenceError:
    """The SDK error for a failed call: ``code`` is the gRPC status name (``"NOT_FOUND"``)."""
    message = f"{what} at {target}: {code}: {detail}"
    if code == "INVALID_ARGUMENT":
        return InvalidInputError(detail)
    if code == "NOT_FOUND":
        return ModelNotFoundError(detail)
    if code == "RESOURCE_EXHAUSTED":
        return InvalidInputError(message)
    if code in ("UNAUTHENTICATED", "PERMISSION_DENIED"):
        return InferenceError(f"{message} (check the client's token)")
    return CloudUnavailableError(message)


def stream_error(answer: Any, target: str) -> InferenceError:
    """The SDK error for a ``ModelStreamInferResponse`` whose ``error_message`` is set."""
    response = answer.infer_response
    param = response.parameters.get("error_code")
    code = param.string_param if param is not None and param.string_param else "INTERNAL"
    return rpc_error(code, answer.error_message, f"infer with model {response.model_name!r} (stream)", target)


def resolve(waiter: Any, answer: Any, target: str) -> None:
    """Settle a request's future (thread or asyncio) with its stream answer: the result or the SDK error."""
    if answer.error_message:
        waiter.set_exception(stream_error(answer, target))
        return
    try:
        result = codec.parse_response(answer.infer_response)
    except Exception as exc:  # a malformed answer fails its own request, not the stream's reader
        waiter.set_exception(exc)
        return
    waiter.set_result(result)


def stream_closed(target: str) -> InferenceError:
    """The error of requests on a stream that ended."""
    return CloudUnavailableError(f"the inference stream to {target} is closed")


class GrpcInferenceClient:
    """Client of ``inference.GRPCInferenceService`` at ``host:port``.

    Parameters
    ----------
    host, port
        Where the server listens.
    token
        Bearer token sent with every call.
    tls_ca
        Path of a PEM CA bundle: connect with TLS and verify the server against it.
    timeout
        Default deadline of every call, in seconds.
    """

    def __init__(self, host: str, port: int, *, token: str | None = None, tls_ca: str | None = None,
                 timeout: float = 5.0) -> None:
        import grpc

        from sedna.proto import grpc_predict_v2_pb2 as pb
        from sedna.proto import grpc_predict_v2_pb2_grpc as pb_grpc

        self._grpc, self._pb = grpc, pb
        self.target = f"{host}:{port}"
        self.timeout = timeout
        if tls_ca:
            credentials = grpc.ssl_channel_credentials(root_certificates=Path(tls_ca).read_bytes())
            self._channel = grpc.secure_channel(self.target, credentials, options=CHANNEL_OPTIONS)
        else:
            self._channel = grpc.insecure_channel(self.target, options=CHANNEL_OPTIONS)
        self._stub = pb_grpc.GRPCInferenceServiceStub(self._channel)
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()

    def infer(self, model: str, inputs: Mapping[str, np.ndarray], *, timeout: float | None = None,
              parameters: Mapping[str, Any] | None = None, version: str = "") -> InferResult:
        """Run ``model`` on named ``inputs``; returns its outputs and response parameters.

        Raises
        ------
        InvalidInputError
            The server rejected the inputs (the message names the field).
        ModelNotFoundError
            The server does not serve ``model``.
        CloudUnavailableError
            The server cannot be reached, failed, or missed the deadline.
        """
        request = codec.build_request(self._pb, model, inputs, parameters, version)
        response = self._call(self._stub.ModelInfer, request, timeout, f"infer with model {model!r}")
        return codec.parse_response(response)

    def server_live(self) -> bool:
        """Whether the server answers; False when it cannot be reached."""
        try:
            return bool(self._call(self._stub.ServerLive, self._pb.ServerLiveRequest(), None, "live").live)
        except CloudUnavailableError:
            return False

    def server_ready(self) -> bool:
        """Whether the server accepts inference requests; False when it cannot be reached."""
        try:
            return bool(self._call(self._stub.ServerReady, self._pb.ServerReadyRequest(), None, "ready").ready)
        except CloudUnavailableError:
            return False

    def model_ready(self, name: str) -> bool:
        """Whether ``name`` is served and ready; False when it is not served or the server is down."""
        try:
            request = self._pb.ModelReadyRequest(name=name)
            return bool(self._call(self._stub.ModelReady, request, None, f"model {name!r} ready").ready)
        except (ModelNotFoundError, CloudUnavailableError):
            return False

    def server_metadata(self) -> dict[str, Any]:
        """The server's name, version and extensions."""
        reply = self._call(self._stub.ServerMetadata, self._pb.ServerMetadataRequest(), None, "server metadata")
        return {"name": reply.name, "version": reply.version, "extensions": list(reply.extensions)}

    def model_metadata(self, name: str, timeout: float | None = None) -> dict[str, Any]:
        """The OIP metadata of model ``name`` (name, versions, platform, inputs, outputs)."""
        reply = self._call(self._stub.ModelMetadata, self._pb.ModelMetadataRequest(name=name), timeout,
                           f"metadata of model {name!r}")

        def tensors(items: Any) -> list[dict[str, Any]]:
            return [{"name": t.name, "datatype": t.datatype, "shape": [int(d) for d in t.shape]} for t in items]

        return {"name": reply.name, "versions": list(reply.versions), "platform": reply.platform,
                "inputs": tensors(reply.inputs), "outputs": tensors(reply.outputs)}

    def stream(self) -> InferStream:
        """Open a ``ModelStreamInfer`` stream on this client's channel (close it when done)."""
        return InferStream(self._stub.ModelStreamInfer, self._metadata, self.target, self.timeout)

    def _call(self, method: Any, request: Any, timeout: float | None, what: str) -> Any:
        grpc = self._grpc
        try:
            return method(request, timeout=self.timeout if timeout is None else timeout, metadata=self._metadata)
        except grpc.RpcError as exc:
            raise rpc_error(exc.code().name, exc.details(), what, self.target) from None

    def close(self) -> None:
        """Close the channel."""
        self._channel.close()

    def __enter__(self) -> GrpcInferenceClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_END = object()


class InferStream:
    """One ``ModelStreamInfer`` stream: requests from any thread, each answered through a future.

    Answers are matched to requests by ``id`` (set here), so many requests may be in flight.
    A request that fails on the server fails only its own future. When the stream breaks
    (server gone, token refused), every pending future fails with the mapped SDK error and
    later :meth:`submit` calls raise it: open a new stream to go on. Streams have no gRPC
    deadline; :meth:`infer` waits ``timeout`` seconds per request.
    """

    def __init__(self, method: Any, metadata: Any, target: str, timeout: float) -> None:
        from sedna.proto import grpc_predict_v2_pb2 as pb

        self._pb, self.target, self.timeout = pb, target, timeout
        self._requests: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._pending: dict[str, concurrent.futures.Future[InferResult]] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._error: InferenceError | None = None
        self._call = method(iter(self._requests.get, _END), metadata=metadata)
        self._reader = threading.Thread(target=self._read, name="oip-stream-reader", daemon=True)
        self._reader.start()

    def submit(self, model: str, inputs: Mapping[str, np.ndarray], *, parameters: Mapping[str, Any] | None = None,
               version: str = "") -> concurrent.futures.Future[InferResult]:
        """Send one request; the future gets its :class:`InferResult` or the SDK error."""
        request = codec.build_request(self._pb, model, inputs, parameters, version)
        future: concurrent.futures.Future[InferResult] = concurrent.futures.Future()
        with self._lock:
            if self._error is not None:
                raise self._error
            request.id = str(next(self._ids))
            self._pending[request.id] = future
        self._requests.put(request)
        return future

    def infer(self, model: str, inputs: Mapping[str, np.ndarray], *, timeout: float | None = None,
              parameters: Mapping[str, Any] | None = None, version: str = "") -> InferResult:
        """Send one request and wait for its answer (as :meth:`GrpcInferenceClient.infer`)."""
        future = self.submit(model, inputs, parameters=parameters, version=version)
        wait = self.timeout if timeout is None else timeout
        try:
            return future.result(wait)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise CloudUnavailableError(f"infer with model {model!r} at {self.target} (stream): "
                                        f"no answer within {wait:g}s") from None

    def close(self, timeout: float = 5.0) -> None:
        """Stop sending, let pending answers arrive (up to ``timeout`` s), then end the stream."""
        self._requests.put(_END)
        self._reader.join(timeout)
        self._call.cancel()
        self._reader.join(timeout)

    def __enter__(self) -> InferStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _read(self) -> None:
        import grpc

        error: InferenceError
        try:
            for answer in self._call:
                with self._lock:
                    future = self._pending.pop(answer.infer_response.id, None)
                if future is not None and future.set_running_or_notify_cancel():  # else its caller gave up
                    resolve(future, answer, self.target)
            error = stream_closed(self.target)
        except grpc.RpcError as exc:
            error = rpc_error(exc.code().name, exc.details(), "inference stream", self.target)
        with self._lock:
            self._error = error
            pending, self._pending = self._pending, {}
        for future in pending.values():
            if future.set_running_or_notify_cancel():
                future.set_exception(error)
