"""OIP v2 REST client (httpx), binary tensors by default, JSON on request.

One :class:`httpx.Client` per object keeps connections alive and is safe to share
between threads. HTTP statuses become the SDK's errors: 400/413 ->
:class:`~sedna.common.errors.InvalidInputError`, 404 -> ModelNotFoundError,
connection failures, timeouts and 5xx -> CloudUnavailableError.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Mapping
from typing import Any

import numpy as np

from sedna.common.errors import CloudUnavailableError, InferenceError, InvalidInputError, ModelNotFoundError

from ._rest_codec import HEADER_LENGTH, decode_response, encode_request
from ._tensors import InferResult


class RestInferenceClient:
    """Client of an OIP v2 REST server at ``base_url`` (e.g. ``http://127.0.0.1:8000``).

    Parameters
    ----------
    base_url
        Scheme, host and port of the server.
    token
        Bearer token sent with every request.
    verify
        TLS verification: True (system CAs), False, the path of a CA bundle, or an ``ssl.SSLContext``.
    timeout
        Default timeout of every request, in seconds.
    binary
        Send and receive tensors with the binary extension (False: JSON number lists).
    """

    def __init__(self, base_url: str, *, token: str | None = None, verify: bool | str | ssl.SSLContext = True,
                 timeout: float = 5.0, binary: bool = True) -> None:
        import httpx

        self._httpx = httpx
        self.base_url = base_url.rstrip("/")
        self.binary = binary
        headers = {"authorization": f"Bearer {token}"} if token else {}
        # TCP_NODELAY: httpx writes headers and body separately; Nagle + delayed ACK would add ~40 ms.
        if isinstance(verify, str):
            verify = ssl.create_default_context(cafile=verify)
        transport = httpx.HTTPTransport(verify=verify, socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])
        self._client = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout, transport=transport,
                                    trust_env=False)

    def infer(self, model: str, inputs: Mapping[str, np.ndarray], *, timeout: float | None = None,
              parameters: Mapping[str, Any] | None = None) -> InferResult:
        """Run ``model`` on named ``inputs``; errors as in :class:`~.grpc_client.GrpcInferenceClient.infer`."""
        body, headers = encode_request(inputs, binary=self.binary, parameters=parameters)
        response = self._send("POST", f"/v2/models/{model}/infer", f"infer with model {model!r}",
                              content=body, headers=headers, timeout=timeout)
        return decode_response(response.content, response.headers.get(HEADER_LENGTH))

    def server_live(self) -> bool:
        """Whether the server answers; False when it cannot be reached."""
        return self._probe("/v2/health/live")

    def server_ready(self) -> bool:
        """Whether the server accepts inference requests; False when it cannot be reached."""
        return self._probe("/v2/health/ready")

    def model_ready(self, name: str) -> bool:
        """Whether ``name`` is served and ready; False when it is not served or the server is down."""
        try:
            return bool(self._send("GET", f"/v2/models/{name}/ready", f"model {name!r} ready").json().get("ready"))
        except (ModelNotFoundError, CloudUnavailableError):
            return False

    def server_metadata(self) -> dict[str, Any]:
        """The server's name, version and extensions."""
        return dict(self._send("GET", "/v2", "server metadata").json())

    def model_metadata(self, name: str, timeout: float | None = None) -> dict[str, Any]:
        """The OIP metadata of model ``name`` (name, versions, platform, inputs, outputs)."""
        return dict(self._send("GET", f"/v2/models/{name}", f"metadata of model {name!r}", timeout=timeout).json())

    def _probe(self, path: str) -> bool:
        try:
            return self._send("GET", path, path).status_code == 200
        except CloudUnavailableError:
            return False

    def _send(self, method: str, path: str, what: str, *, timeout: float | None = None, **kwargs: Any) -> Any:
        httpx = self._httpx
        extra = {} if timeout is None else {"timeout": timeout}
        try:
            response = self._client.request(method, path, **kwargs, **extra)
        except httpx.TimeoutException as exc:
            raise CloudUnavailableError(f"{what} at {self.base_url}: timed out ({exc})") from None
        except httpx.TransportError as exc:
            raise CloudUnavailableError(f"{what} at {self.base_url}: {type(exc).__name__}: {exc}") from None
        status = response.status_code
        if status < 400:
            return response
        detail = _error_text(response)
        if status in (400, 413, 422):
            raise InvalidInputError(detail)
        if status == 404:
            raise ModelNotFoundError(detail)
        if status >= 500:
            raise CloudUnavailableError(f"{what} at {self.base_url}: HTTP {status}: {detail}")
        if status in (401, 403):
            raise InferenceError(f"{what} at {self.base_url}: HTTP {status}: {detail} (check the client's token)")
        raise InferenceError(f"{what} at {self.base_url}: HTTP {status}: {detail}")

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def __enter__(self) -> RestInferenceClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _error_text(response: Any) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:500]
    if isinstance(body, dict):
        return str(body.get("error") or body.get("detail") or body)
    return str(body)
