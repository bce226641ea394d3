"""Cloud inference: an Open Inference Protocol v2 server (REST + gRPC) and its clients.

Importing this package is cheap; grpc, fastapi and uvicorn load when a server or
client is built. The public surface:

- :class:`InferenceServer` with :class:`TLSConfig` and :class:`BatchingConfig`
- :class:`GrpcInferenceClient`, :class:`RestInferenceClient`, returning :class:`InferResult`;
  :meth:`GrpcInferenceClient.stream` opens a :class:`InferStream`
- :class:`AsyncGrpcInferenceClient` (asyncio) and its :class:`AsyncInferStream`
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._config import BatchingConfig, TLSConfig
    from ._tensors import InferResult
    from .aio_client import AsyncGrpcInferenceClient, AsyncInferStream
    from .grpc_client import GrpcInferenceClient, InferStream
    from .rest_client import RestInferenceClient
    from .server import InferenceServer

__all__ = [
    "AsyncGrpcInferenceClient",
    "AsyncInferStream",
    "BatchingConfig",
    "GrpcInferenceClient",
    "InferResult",
    "InferStream",
    "InferenceServer",
    "RestInferenceClient",
    "TLSConfig",
]

_WHERE = {
    "BatchingConfig": "._config",
    "TLSConfig": "._config",
    "InferResult": "._tensors",
    "GrpcInferenceClient": ".grpc_client",
    "InferStream": ".grpc_client",
    "AsyncGrpcInferenceClient": ".aio_client",
    "AsyncInferStream": ".aio_client",
    "RestInferenceClient": ".rest_client",
    "InferenceServer": ".server",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module, __name__), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
