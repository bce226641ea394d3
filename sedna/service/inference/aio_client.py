"""OIP v2 gRPC client for asyncio programs (grpc.aio), unary calls and ``ModelStreamInfer`` streams.

The same protocol, options and error mapping as :class:`~.grpc_client.GrpcInferenceClient`;
calls are coroutines, so one event loop can keep many requests in flight without a thread
each. Build the client inside the event loop that uses it (grpc.aio channels belong to a loop).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from sedna.common.errors import CloudUnavailableError, InferenceError, ModelNotFoundError

from . import _grpc_codec as codec
from ._tensors import InferResult
from .grpc_client import CHANNEL_OPTIONS, resolve, rpc_error, stream_closed


class AsyncGrpcInferenceClient:
    """asyncio client of ``inference.GRPCInferenceService`` at ``host:port``.

    Parameters are those of :class:`~.grpc_client.GrpcInferenceClient`: ``token`` is sent as
    ``authorization: Bearer``, ``tls_ca`` turns on TLS verified against that PEM bundle,
    ``timeout`` is the default deadline of every call in seconds.
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
            self._channel = grpc.aio.secure_channel(self.target, credentials, options=CHANNEL_OPTIONS)
        else:
            self._channel = grpc.aio.insecure_channel(self.target, options=CHANNEL_OPTIONS)
        self._stub = pb_grpc.GRPCInferenceServiceStub(self._channel)
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()

    async def infer(self, model: str, inputs: Mapping[str, np.ndarray], *, timeout: float | None = None,
                    parameters: Mapping[str, Any] | None = None, version: str = "") -> InferResult:
        """Run ``model`` on named ``inputs`` (raises as :meth:`GrpcInferenceClient.infer`)."""
        request = codec.build_request(self._pb, model, inputs, parameters, version)
        response = await self._call(self._stub.ModelInfer, request, timeout, f"infer with model {model!r}")
        return codec.parse_response(response)

    async def server_ready(self) -> bool:
        """Whether the server accepts inference requests; False when it cannot be reached."""
        try:
            reply = await self._call(self._stub.ServerReady, self._pb.ServerReadyRequest(), None, "ready")
        except CloudUnavailableError:
            return False
        return bool(reply.ready)

    async def model_ready(self, name: str) -> bool:
        """Whether ``name`` is served and ready; False when it is not served or the server is down."""
        try:
            reply = await self._call(self._stub.ModelReady, self._pb.ModelReadyRequest(name=name), None,
                                     f"model {name!r} ready")
        except (ModelNotFoundError, CloudUnavailableError):
            return False
        return bool(reply.ready)

    def stream(self) -> AsyncInferStream:
        """Open a ``ModelStreamInfer`` stream on this client's channel (close it when done)."""
        call = self._stub.ModelStreamInfer(metadata=self._metadata)
        return AsyncInferStream(call, self.target, self.timeout)

    async def close(self) -> None:
        """Close the channel (open streams end)."""
        await self._channel.close()

    async def __aenter__(self) -> AsyncGrpcInferenceClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _call(self, method: Any, request: Any, timeout: float | None, what: str) -> Any:
        try:
            return await method(request, timeout=self.timeout if timeout is None else timeout,
                                metadata=self._metadata)
        except self._grpc.aio.AioRpcError as exc:
            raise rpc_error(exc.code().name, exc.details() or "", what, self.target) from None


class AsyncInferStream:
    """One ``ModelStreamInfer`` stream for asyncio callers; many tasks may :meth:`infer` at once.

    Behaves as :class:`~.grpc_client.InferStream`: answers matched by ``id``, a failed request
    fails alone, a broken stream fails every pending and later request (open a new one),
    and each request waits at most ``timeout`` seconds.
    """

    def __init__(self, call: Any, target: str, timeout: float) -> None:
        from sedna.proto import grpc_predict_v2_pb2 as pb

        self._pb, self._call, self.target, self.timeout = pb, call, target, timeout
        self._pending: dict[str, asyncio.Future[InferResult]] = {}
        self._ids = itertools.count(1)
        self._writing = asyncio.Lock()  # grpc allows one outstanding write per call
        self._error: InferenceError | None = None
        loop = asyncio.get_running_loop()
        self._reader = loop.create_task(self._read())
        # The server's headers say the stream was accepted; writing before them races a refusal
        # (a write into a refused call fails with INTERNAL and hides UNAUTHENTICATED).
        self._accepted = loop.create_task(self._call.initial_metadata())

    async def infer(self, model: str, inputs: Mapping[str, np.ndarray], *, timeout: float | None = None,
                    parameters: Mapping[str, Any] | None = None, version: str = "") -> InferResult:
        """Send one request and wait for its answer (raises as :meth:`GrpcInferenceClient.infer`)."""
        if self._error is not None:
            raise self._error
        request = codec.build_request(self._pb, model, inputs, parameters, version)
        request.id = key = str(next(self._ids))
        answer: asyncio.Future[InferResult] = asyncio.get_running_loop().create_future()
        self._pending[key] = answer
        wait = self.timeout if timeout is None else timeout
        try:
            if not self._accepted.done():
                await asyncio.wait_for(asyncio.shield(self._accepted), wait)
            if self._call.done():  # refused: the reader has (or is about to have) the status
                await asyncio.wait({self._reader}, timeout=wait)
                raise self._error or stream_closed(self.target)
            async with self._writing:
                await self._call.write(request)
            return await asyncio.wait_for(answer, wait)
        except asyncio.TimeoutError:
            raise CloudUnavailableError(f"infer with model {model!r} at {self.target} (stream): "
                                        f"no answer within {wait:g}s") from None
        except InferenceError:
            raise
        except Exception as exc:  # the write found the stream broken (grpc raises several kinds)
            await asyncio.wait({self._reader}, timeout=self.timeout)  # the reader learns the final status
            raise self._error or CloudUnavailableError(f"the inference stream to {self.target} failed: "
                                                       f"{type(exc).__name__}: {exc}") from None
        finally:
            self._pending.pop(key, None)

    async def close(self) -> None:
        """Stop sending and end the stream; pending requests fail."""
        try:
            async with self._writing:
                await self._call.done_writing()
        except Exception:  # the stream already broke: nothing left to close politely
            pass
        self._call.cancel()
        await asyncio.gather(self._reader, self._accepted, return_exceptions=True)

    async def __aenter__(self) -> AsyncInferStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _read(self) -> None:
        import grpc

        error: InferenceError
        try:
            async for answer in self._call:
                waiter = self._pending.pop(answer.infer_response.id, None)
                if waiter is not None and not waiter.done():  # else its caller gave up
                    resolve(waiter, answer, self.target)
            error = stream_closed(self.target)
        except grpc.aio.AioRpcError as exc:
            error = rpc_error(exc.code().name, exc.details() or "", "inference stream", self.target)
        except asyncio.CancelledError:
            error = stream_closed(self.target)
        self._error = error
        pending, self._pending = self._pending, {}
        for waiter in pending.values():
            if not waiter.done():
                waiter.set_exception(error)
