"""The cloud as a Sedna big model: ``POST http://BIG_MODEL_IP:BIG_MODEL_PORT/{JOB_NAME}/predict``.

What an edge falls back to when its env names only ``BIG_MODEL_PORT`` (the env a Sedna
controller injects): Sedna's JSON API, ``{"data": nested list}`` in, ``{"result": ...}`` out,
the path named after ``JOB_NAME`` (Sedna's default ``sedna``). Both a Sedna
``BigModelService`` and this project's cloud worker answer it.

Unlike Sedna's client (five attempts three seconds apart, about 12 s per hard example when
the cloud is away), one request is made per call, bounded by the caller's timeout
(``BIG_MODEL_TIMEOUT``); the edge's circuit breaker decides when to try again. One keep-alive
connection serves every call. Failures map onto the SDK's errors like the OIP clients':
connection failures, timeouts and 5xx -> CloudUnavailableError, 400/413/422 ->
InvalidInputError, any other status -> InferenceError with the server's message.
"""

from __future__ import annotations

import socket
from typing import Any

import numpy as np

from sedna.backend import bytes_tensors
from sedna.common.config import WorkerConfig
from sedna.common.errors import CloudUnavailableError, InferenceError, InvalidInputError

DEFAULT_JOB_NAME = "sedna"
"""The path segment a Sedna worker uses when ``JOB_NAME`` is unset."""


class SednaRestModel:
    """A client of Sedna's ``/{name}/predict`` at ``base_url``, with the cloud-model interface."""

    def __init__(self, base_url: str, name: str = DEFAULT_JOB_NAME, *, token: str | None = None,
                 timeout: float = 5.0) -> None:
        import httpx

        self._httpx = httpx
        self.base_url = base_url.rstrip("/")
        self.name = name
        self.url = f"{self.base_url}/{name}/predict"
        headers = {"authorization": f"Bearer {token}"} if token else {}
        transport = httpx.HTTPTransport(socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])
        self._client = httpx.Client(headers=headers, timeout=timeout, transport=transport, trust_env=False)

    @classmethod
    def from_config(cls, config: WorkerConfig) -> SednaRestModel:
        """The big model at ``BIG_MODEL_IP:BIG_MODEL_PORT`` under ``JOB_NAME`` (default ``sedna``)."""
        name = config.environ.get("JOB_NAME") or DEFAULT_JOB_NAME
        return cls(f"http://{config.big_model_ip}:{config.big_model_port}", name,
                   token=config.big_model_token or None)

    def predict(self, data: Any, timeout: float | None = None) -> Any:
        """The cloud's ``result`` for ``data``: an ndarray when it is a rectangular list of numbers, else as sent."""
        array = np.asarray(data)
        payload = bytes_tensors.to_text(array) if bytes_tensors.is_text_array(array) else array.tolist()
        httpx = self._httpx
        try:
            response = self._client.post(self.url, json={"data": payload},
                                         timeout=timeout if timeout is not None else self._client.timeout)
        except httpx.TimeoutException:
            raise CloudUnavailableError(f"cloud {self.url} did not answer within {timeout}s") from None
        except httpx.HTTPError as exc:
            raise CloudUnavailableError(f"cloud {self.url} unreachable: {exc}") from None
        if response.status_code != 200:
            raise _error_of(self.url, response.status_code, response.text)
        try:
            result = response.json()["result"]
        except (ValueError, KeyError, TypeError):
            raise InferenceError(f"cloud {self.url} answered without a JSON 'result': "
                                 f"{response.text[:200]!r}") from None
        return _as_array(result)

    def close(self) -> None:
        self._client.close()


def _error_of(url: str, status: int, text: str) -> Exception:
    detail = text[:300]
    if status in (400, 413, 422):
        return InvalidInputError(f"cloud {url} refused the sample ({status}): {detail}")
    if status >= 500:
        return CloudUnavailableError(f"cloud {url} failed ({status}): {detail}")
    if status == 404:
        return InferenceError(f"cloud {url} answered 404: it serves no such path; set JOB_NAME to the name "
                              f"the big model serves ({detail})")
    return InferenceError(f"cloud {url} answered {status}: {detail}")


def _as_array(result: Any) -> Any:
    """A rectangular list of numbers as an ndarray (what the OIP path returns); anything else unchanged."""
    if not isinstance(result, list):
        return result
    try:
        array = np.asarray(result)
    except ValueError:  # ragged lists, e.g. a variable number of boxes per image
        return result
    return array if array.dtype.kind in "biuf" else result


__all__ = ["DEFAULT_JOB_NAME", "SednaRestModel"]
