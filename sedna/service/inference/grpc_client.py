"""OIP v2 gRPC client: what an edge worker uses to reach the cloud model.

One channel per client object (HTTP/2 multiplexes concurrent calls, and grpc
channels are thread-safe), tensors as raw bytes, bearer token as ``authorization``
metadata, optional TLS with a CA bundle. gRPC status codes become the SDK's errors,
so callers catch :class:`~sedna.common.errors.CloudUnavailableError` to fall back to
the edge result.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from sedna.common.errors import CloudUnavailableError, InferenceError, InvalidInputError, ModelNotFoundError

from . import _grpc_codec as codec
from ._tensors import InferResult

_MAX_MESSAGE = 1024 * 1024 * 1024


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
        options = [("grpc.max_receive_message_length", _MAX_MESSAGE), ("grpc.max_send_message_length", _MAX_MESSAGE)]
        if tls_ca:
            credentials = grpc.ssl_channel_credentials(root_certificates=Path(tls_ca).read_bytes())
            self._channel = grpc.secure_channel(self.target, credentials, options=options)
        else:
            self._channel = grpc.insecure_channel(self.target, options=options)
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

    def model_metadata(self, name: str) -> dict[str, Any]:
        """The OIP metadata of model ``name`` (name, versions, platform, inputs, outputs)."""
        reply = self._call(self._stub.ModelMetadata, self._pb.ModelMetadataRequest(name=name), None,
                           f"metadata of model {name!r}")

        def tensors(items: Any) -> list[dict[str, Any]]:
            return [{"name": t.name, "datatype": t.datatype, "shape": [int(d) for d in t.shape]} for t in items]

        return {"name": reply.name, "versions": list(reply.versions), "platform": reply.platform,
                "inputs": tensors(reply.inputs), "outputs": tensors(reply.outputs)}

    def _call(self, method: Any, request: Any, timeout: float | None, what: str) -> Any:
        grpc = self._grpc
        try:
            return method(request, timeout=self.timeout if timeout is None else timeout, metadata=self._metadata)
        except grpc.RpcError as exc:
            code, detail = exc.code(), exc.details()
            message = f"{what} at {self.target}: {code.name}: {detail}"
            if code == grpc.StatusCode.INVALID_ARGUMENT:
                raise InvalidInputError(detail) from None
            if code == grpc.StatusCode.NOT_FOUND:
                raise ModelNotFoundError(detail) from None
            if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
                raise InvalidInputError(message) from None
            if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
                raise InferenceError(f"{message} (check the client's token)") from None
            raise CloudUnavailableError(message) from None

    def close(self) -> None:
        """Close the channel."""
        self._channel.close()

    def __enter__(self) -> GrpcInferenceClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
