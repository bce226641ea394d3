"""The gRPC front end: ``inference.GRPCInferenceService`` (OIP v2) on a grpc thread pool.

The servicer is thin: it maps messages with ``_grpc_codec``, runs requests through
the shared :class:`~._repository.ModelRepository`, and turns errors into status
codes (InvalidInputError -> INVALID_ARGUMENT, ModelNotFoundError -> NOT_FOUND,
a failing model -> INTERNAL). A bearer token, when set, is checked by an
interceptor on every method except ServerLive and ServerReady (UNAUTHENTICATED).
Message size limits follow ``max_request_bytes`` (grpc answers RESOURCE_EXHAUSTED).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc

from sedna import __version__
from sedna.common.errors import InvalidInputError, ModelNotFoundError
from sedna.common.log import get_logger
from sedna.proto import grpc_predict_v2_pb2 as pb
from sedna.proto import grpc_predict_v2_pb2_grpc as pb_grpc

from . import _grpc_codec as codec
from ._config import TLSConfig
from ._repository import EXTENSIONS, SERVER_NAME, ModelRepository, failure_reason

LOG = get_logger(__name__)

_OPEN_METHODS = ("/inference.GRPCInferenceService/ServerLive", "/inference.GRPCInferenceService/ServerReady")


class _TokenInterceptor(grpc.ServerInterceptor):
    def __init__(self, token: str) -> None:
        self._expected = f"Bearer {token}".encode()

        def deny(request: Any, context: grpc.ServicerContext) -> Any:
            context.abort(grpc.StatusCode.UNAUTHENTICATED,
                          "missing or wrong bearer token (send metadata 'authorization: Bearer <token>')")

        self._deny = grpc.unary_unary_rpc_method_handler(deny)

    def intercept_service(self, continuation: Callable[..., Any], details: grpc.HandlerCallDetails) -> Any:
        if details.method in _OPEN_METHODS:
            return continuation(details)
        given = ""
        for key, value in details.invocation_metadata or ():
            if key == "authorization":
                given = value if isinstance(value, str) else value.decode(errors="replace")
        if hmac.compare_digest(given.encode(), self._expected):
            return continuation(details)
        return self._deny


class _Servicer:
    """Implements GRPCInferenceService (methods looked up by name by the generated adder)."""

    def __init__(self, repo: ModelRepository, is_ready: Callable[[], bool]) -> None:
        self.repo = repo
        self.is_ready = is_ready

    def ServerLive(self, request: Any, context: grpc.ServicerContext) -> Any:
        return pb.ServerLiveResponse(live=True)

    def ServerReady(self, request: Any, context: grpc.ServicerContext) -> Any:
        return pb.ServerReadyResponse(ready=self.is_ready())

    def ServerMetadata(self, request: Any, context: grpc.ServicerContext) -> Any:
        return pb.ServerMetadataResponse(name=SERVER_NAME, version=__version__, extensions=EXTENSIONS)

    def ModelReady(self, request: Any, context: grpc.ServicerContext) -> Any:
        self._model(request.name, request.version, context)
        return pb.ModelReadyResponse(ready=self.is_ready())

    def ModelMetadata(self, request: Any, context: grpc.ServicerContext) -> Any:
        model = self._model(request.name, request.version, context)
        response = pb.ModelMetadataResponse(name=model.name, platform=model.platform)
        if model.version:
            response.versions.append(model.version)
        for specs, target in ((model.inputs, response.inputs), (model.outputs, response.outputs)):
            for spec in specs:
                target.add(name=spec.name, datatype=spec.datatype, shape=list(spec.shape))
        return response

    def ModelInfer(self, request: Any, context: grpc.ServicerContext) -> Any:
        label = self.repo.metrics_name(request.model_name)
        self.repo.metrics.request(label, "grpc")
        try:
            model = self.repo.get(request.model_name, request.model_version)
            inputs, requested = codec.parse_request(model, request)
            prediction = self.repo.infer(model, inputs)
            return codec.build_response(pb, model, prediction, request, requested)
        except Exception as exc:
            self.repo.metrics.failure(label, "grpc", failure_reason(exc))
            if isinstance(exc, InvalidInputError):
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            if isinstance(exc, ModelNotFoundError):
                context.abort(grpc.StatusCode.NOT_FOUND, str(exc))
            LOG.warning("inference with model %r failed: %s", label, exc)
            context.abort(grpc.StatusCode.INTERNAL, f"model {label!r} failed: {type(exc).__name__}: {exc}")

    def _model(self, name: str, version: str, context: grpc.ServicerContext) -> Any:
        try:
            return self.repo.get(name, version)
        except ModelNotFoundError as exc:
            context.abort(grpc.StatusCode.NOT_FOUND, str(exc))


def build_server(repo: ModelRepository, *, host: str, port: int, token: str | None, tls: TLSConfig | None,
                 max_request_bytes: int, is_ready: Callable[[], bool], threads: int = 64) -> tuple[grpc.Server, int]:
    """A started-to-be gRPC server bound to ``host:port``; returns it with the bound port."""
    options = [
        ("grpc.max_receive_message_length", max_request_bytes),
        ("grpc.max_send_message_length", max_request_bytes),
        ("grpc.so_reuseport", 0),
    ]
    interceptors = [_TokenInterceptor(token)] if token else []
    server = grpc.server(ThreadPoolExecutor(max_workers=threads, thread_name_prefix="oip-grpc"),
                         options=options, interceptors=interceptors)
    pb_grpc.add_GRPCInferenceServiceServicer_to_server(_Servicer(repo, is_ready), server)
    address = f"{host}:{port}"
    if tls is not None:
        key, cert = tls.read()
        bound = server.add_secure_port(address, grpc.ssl_server_credentials([(key, cert)]))
    else:
        bound = server.add_insecure_port(address)
    if bound == 0:
        raise OSError(f"gRPC server cannot bind {address}")
    return server, bound
