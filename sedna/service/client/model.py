"""Sedna's ``ModelClient``: the client of a big model's REST API (``/{service}/predict``).

``ModelClient(service_name, version="", host="127.0.0.1", port="8080", protocol="http")``:
:meth:`~ModelClient.check_server_status` reads ``GET /{service}`` and :meth:`~ModelClient.inference`
posts ``{"data": x, **kwargs}`` to ``/{service}/predict``; both return the server's JSON, or None when
the call failed (logged), as Sedna's did after its retries. One attempt per call, bounded by
``timeout`` (Sedna retried five times, 3 s apart), on one keep-alive connection. Arrays are sent as
nested lists and keyword arguments that are not JSON (a callable ``post_process``) are left out.
For the edge's own offloading, :class:`~sedna.core.joint_inference.JointInference` uses gRPC, or
:mod:`sedna.core.joint_inference.sedna_rest` for this API.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import numpy as np

LOG = logging.getLogger(__name__)


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


class ModelClient:
    """Remote big model at ``{protocol}://{host}:{port}/{service_name}``."""

    def __init__(self, service_name: str, version: str = "", host: str = "127.0.0.1", port: int | str = "8080",
                 protocol: str = "http", timeout: float = 60.0) -> None:
        import httpx

        self.server_name = f"{service_name}{version}"
        self.endpoint = f"{protocol}://{host}:{port}/{service_name}"
        self._httpx = httpx
        self._client = httpx.Client(timeout=timeout, trust_env=False)

    def _call(self, method: str, url: str, body: Any = None) -> Any:
        httpx = self._httpx
        try:
            response = self._client.request(method, url, json=body)
        except httpx.HTTPError as exc:
            LOG.warning("%s %s failed: %s: %s", method, url, type(exc).__name__, exc)
            return None
        if response.status_code != 200:
            LOG.warning("%s %s answered %s: %s", method, url, response.status_code, response.text[:300])
            return None
        try:
            return response.json()
        except ValueError:
            LOG.warning("%s %s answered with a body that is not JSON", method, url)
            return None

    def check_server_status(self) -> Any:
        """The server's route list (``{"infos": [...]}``), or None."""
        return self._call("GET", self.endpoint)

    def inference(self, x: Any, **kwargs: Any) -> Any:
        """The big model's answer ``{"result": ...}`` for ``x``, or None when the call failed."""
        body: dict[str, Any] = {}
        for key, value in kwargs.items():
            value = _jsonable(value)
            try:
                json.dumps(value)
            except (TypeError, ValueError):
                continue  # e.g. a callable post_process: Sedna's server never reads it
            body[key] = value
        body["data"] = _jsonable(x)
        return self._call("POST", f"{self.endpoint}/predict", body)

    def close(self) -> None:
        self._client.close()


__all__ = ["ModelClient"]
