"""Sedna's ``InferenceServer``: a REST big-model server with Sedna's constructor, on this project's server.

``InferenceServer(model, servername, host="127.0.0.1", http_port=8080, max_buffer_size=100 MiB,
workers=1).start()`` serves ``model.inference(data, post_process=callback)`` (a
:class:`~sedna.core.joint_inference.BigModelService`, or anything with that method) at Sedna's
``GET /{servername}`` and ``POST /{servername}/predict``, and blocks until SIGTERM/SIGINT, as
Sedna's did. Underneath it is :class:`sedna.service.inference.InferenceServer`: the same request
also reaches the model through the Open Inference Protocol (REST ``/v2/models/{servername}/infer``),
bodies beyond ``max_buffer_size`` get 413, and bad input a 400 naming the field. Sedna's ``workers``
(uvicorn processes) has no counterpart: requests run on a thread pool.
"""

from __future__ import annotations

from typing import Any

DEFAULT_MAX_BUFFER = 104857600


class InferenceServer:
    """Serves ``model.inference`` under ``servername`` on ``host:http_port`` (REST)."""

    def __init__(self, model: Any, servername: str, host: str = "127.0.0.1", http_port: int = 8080,
                 max_buffer_size: int = DEFAULT_MAX_BUFFER, workers: int = 1) -> None:
        if not callable(getattr(model, "inference", None)):
            raise TypeError(f"model: {type(model).__name__} has no inference(data, post_process=None) method")
        self.model = model
        self.server_name = servername
        self.host = host
        self.http_port = int(http_port)
        self.max_buffer_size = int(max_buffer_size)
        self.workers = workers
        self.server: Any = None

    def _build(self) -> Any:
        from sedna.backend.plain_model import PlainEstimatorModel
        from sedna.service.inference import InferenceServer as OipServer

        return OipServer([PlainEstimatorModel(self.model.inference, self.server_name)], host=self.host,
                         rest_port=self.http_port, grpc_port=None, sedna_service_name=self.server_name,
                         max_request_bytes=self.max_buffer_size)

    def start(self, block: bool = True) -> Any:
        """Serve; with ``block`` (Sedna's behaviour) until SIGTERM/SIGINT. Returns the underlying server."""
        self.server = self._build()
        self.server.start()
        if block:
            self.server.serve_forever()
        return self.server

    @property
    def url(self) -> str:
        """``http://host:port`` (the bound port once started)."""
        port = self.server.rest_port if self.server is not None else self.http_port
        return f"http://{self.host}:{port}"

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()


__all__ = ["InferenceServer"]
