"""The gRPC front end: ``inference.GRPCInferenceService`` (OIP v2) on grpc.aio.

The server runs on its own event-loop thread (:class:`GrpcFrontEnd`): a request costs a
coroutine, not a pool thread, and waiting for a batch is an ``await`` on the batcher's
future (batched throughput in ``bench.joint_inference`` rose 13-26% over grpc's thread-pool
server on the same model).
The servicer is thin: it maps messages with ``_grpc_codec``, runs requests through the
shared :class:`~._repository.ModelRepository`, and turns errors into status codes
(InvalidInputError -> INVALID_ARGUMENT, ModelNotFoundError -> NOT_FOUND, a failing
model -> INTERNAL). ``ModelStreamInfer`` (Triton's streaming extension) answers each request
of a stream as it completes, failures in-band with ``error_message``; a message on an open
stream skips the per-call set-up of a unary call, which costs a Python gRPC server and client
about three times as much. A bearer token, when set, is checked by an interceptor on every
method except ServerLive and ServerReady (UNAUTHENTICATED). Message size limits follow
``max_request_bytes`` (grpc answers RESOURCE_EXHAUSTED).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hmac
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from sedna import __version__
from sedna.common.errors import InvalidInputError, ModelNotFoundError
from sedna.common.grpc_options import server_options
from sedna.common.log import get_logger
from sedna.common.loop_thread import LoopThread
from sedna.proto import grpc_predict_v2_pb2 as pb
from sedna.proto import grpc_predict_v2_pb2_grpc as pb_grpc

from . import _grpc_codec as codec
from ._config import TLSConfig
from ._repository import EXTENSIONS, SERVER_NAME, FrontEndLoad, ModelRepository, failure_reason

LOG = get_logger(__name__)

_OPEN_METHODS = ("/inference.GRPCInferenceService/ServerLive", "/inference.GRPCInferenceService/ServerReady")
_STREAM_METHODS = ("/inference.GRPCInferenceService/ModelStreamInfer",)
STREAM_WINDOW = 64
"""Requests of one ModelStreamInfer stream in flight at once (twice the largest default batch)."""


class _TokenInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, token: str) -> None:
        self._expected = f"Bearer {token}".encode()

        async def deny(request: Any, context: grpc.aio.ServicerContext) -> Any:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED,
                                "missing or wrong bearer token (send metadata 'authorization: Bearer <token>')")

        self._deny = grpc.unary_unary_rpc_method_handler(deny)
        self._deny_stream = grpc.stream_stream_rpc_method_handler(deny)

    async def intercept_service(self, continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Any]],
                                details: grpc.HandlerCallDetails) -> Any:
        if details.method in _OPEN_METHODS:
            return await continuation(details)
        given = ""
        for key, value in details.invocation_metadata or ():
            if key == "authorization":
                given = value if isinstance(value, str) else value.decode(errors="replace")
        if hmac.compare_digest(given.encode(), self._expected):
            return await continuation(details)
        return self._deny_stream if details.method in _STREAM_METHODS else self._deny


class _Servicer:
    """Implements GRPCInferenceService (methods looked up by name by the generated adder)."""

    def __init__(self, repo: ModelRepository, is_ready: Callable[[], bool],
                 executor: concurrent.futures.Executor, stream_window: int = STREAM_WINDOW) -> None:
        self.repo = repo
        self.is_ready = is_ready
        self.executor = executor
        self.stream_window = stream_window
        self.load = FrontEndLoad()

    async def ServerLive(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        return pb.ServerLiveResponse(live=True)

    async def ServerReady(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        return pb.ServerReadyResponse(ready=self.is_ready())

    async def ServerMetadata(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        return pb.ServerMetadataResponse(name=SERVER_NAME, version=__version__, extensions=EXTENSIONS)

    async def ModelReady(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        await self._model(request.name, request.version, context)
        return pb.ModelReadyResponse(ready=self.is_ready())

    async def ModelMetadata(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        model = await self._model(request.name, request.version, context)
        response = pb.ModelMetadataResponse(name=model.name, platform=model.platform)
        if model.version:
            response.versions.append(model.version)
        for specs, target in ((model.inputs, response.inputs), (model.outputs, response.outputs)):
            for spec in specs:
                target.add(name=spec.name, datatype=spec.datatype, shape=list(spec.shape))
        return response

    async def ModelInfer(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            return await self._infer(request)
        except Exception as exc:
            code, message = _status_of(exc, self.repo.metrics_name(request.model_name))
            await context.abort(code, message)

    async def ModelStreamInfer(self, requests: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> None:
        """Answer every request of the stream as it completes; a failed one gets ``error_message``.

        At most ``stream_window`` requests of one stream are in flight; reading waits for a
        free slot, so a client that sends faster than the model answers is slowed by HTTP/2
        flow control instead of growing the server's memory.
        """
        await context.send_initial_metadata(())  # the stream is accepted: clients may write now
        answers: asyncio.Queue[Any] = asyncio.Queue()
        window = asyncio.Semaphore(self.stream_window)
        running: set[asyncio.Task[None]] = set()

        async def answer(request: Any) -> None:
            try:
                done = pb.ModelStreamInferResponse()
                await self._infer(request, into=done.infer_response)
                answers.put_nowait(done)
            except Exception as exc:
                code, message = _status_of(exc, self.repo.metrics_name(request.model_name))
                failed = pb.ModelStreamInferResponse(error_message=message)
                failed.infer_response.id = request.id
                failed.infer_response.model_name = request.model_name
                failed.infer_response.parameters["error_code"].string_param = code.name
                answers.put_nowait(failed)
            finally:
                window.release()

        async def read() -> None:
            try:
                async for request in requests:
                    await window.acquire()
                    task = asyncio.create_task(answer(request))
                    running.add(task)
                    task.add_done_callback(running.discard)
                if running:
                    await asyncio.wait(set(running))
            finally:
                answers.put_nowait(None)

        reader = asyncio.create_task(read())
        try:
            while (message := await answers.get()) is not None:
                await context.write(message)
            await reader  # re-raises a broken request stream
        finally:
            for task in (reader, *running):
                task.cancel()

    async def _infer(self, request: Any, into: Any = None) -> Any:
        label = self.repo.metrics_name(request.model_name)
        self.repo.metrics.request(label, "grpc")
        self.load.active += 1
        try:
            model = self.repo.get(request.model_name, request.model_version)
            inputs, requested = codec.parse_request(model, request)
            alone = self.repo.runs_inline(model) and await self.load.alone()
            prediction = await self.repo.infer_async(model, inputs, self.executor, alone=alone)
            return codec.build_response(pb, model, prediction, request, requested, into)
        except Exception as exc:
            self.repo.metrics.failure(label, "grpc", failure_reason(exc))
            raise
        finally:
            self.load.active -= 1

    async def _model(self, name: str, version: str, context: grpc.aio.ServicerContext) -> Any:
        try:
            return self.repo.get(name, version)
        except ModelNotFoundError as exc:
            await context.abort(grpc.StatusCode.NOT_FOUND, str(exc))


def _status_of(exc: Exception, label: str) -> tuple[grpc.StatusCode, str]:
    """The gRPC status and message a failed inference is answered with."""
    if isinstance(exc, InvalidInputError):
        return grpc.StatusCode.INVALID_ARGUMENT, str(exc)
    if isinstance(exc, ModelNotFoundError):
        return grpc.StatusCode.NOT_FOUND, str(exc)
    LOG.warning("inference with model %r failed: %s", label, exc)
    return grpc.StatusCode.INTERNAL, f"model {label!r} failed: {type(exc).__name__}: {exc}"


class GrpcFrontEnd:
    """The gRPC listener and the event-loop thread it runs on.

    ``threads`` bounds the models run outside a batcher at once (they run on a pool so the
    loop never blocks); batched models run on their batcher's threads.
    """

    def __init__(self, repo: ModelRepository, *, host: str, port: int, token: str | None, tls: TLSConfig | None,
                 max_request_bytes: int, is_ready: Callable[[], bool], threads: int = 64,
                 reuse_port: bool = False) -> None:
        self._repo, self._is_ready = repo, is_ready
        self._reuse_port = reuse_port
        self._address = f"{host}:{port}"
        self._token, self._tls, self._max_bytes = token, tls, max_request_bytes
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="oip-grpc")
        self._loop = LoopThread("oip-grpc-loop")
        self._server: grpc.aio.Server | None = None

    def start(self, timeout: float = 30.0) -> int:
        """Bind and start serving; return the bound port (raises OSError when it cannot bind)."""
        return self._loop.start(self._serve, timeout)

    async def _serve(self) -> int:
        options = server_options(max_message_bytes=self._max_bytes, reuse_port=self._reuse_port)
        interceptors = [_TokenInterceptor(self._token)] if self._token else []
        server = grpc.aio.server(options=options, interceptors=interceptors)
        servicer = _Servicer(self._repo, self._is_ready, self._executor, stream_window=STREAM_WINDOW)
        pb_grpc.add_GRPCInferenceServiceServicer_to_server(servicer, server)
        if self._tls is not None:
            key, cert = self._tls.read()
            bound = server.add_secure_port(self._address, grpc.ssl_server_credentials([(key, cert)]))
        else:
            bound = server.add_insecure_port(self._address)
        if bound == 0:
            raise OSError(f"gRPC server cannot bind {self._address}")
        await server.start()
        self._server = server
        return int(bound)

    def stop(self, grace: float = 5.0) -> None:
        """Refuse new calls, let running ones finish (up to ``grace`` s), stop the loop thread."""
        server, self._server = self._server, None
        if server is not None and self._loop.running:
            try:
                self._loop.call(server.stop(grace), grace + 5)
            except (concurrent.futures.TimeoutError, RuntimeError) as exc:
                LOG.warning("gRPC server did not stop cleanly: %s", exc)
        self._loop.stop(grace + 5)
        self._executor.shutdown(wait=False, cancel_futures=True)
