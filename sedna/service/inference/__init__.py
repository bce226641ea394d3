"""Cloud inference: an Open Inference Protocol v2 server (REST + gRPC) and its clients.

Importing this package is cheap; grpc, fastapi and uvicorn load when a server or
client is built. The public surface:

- :class:`InferenceServer` with :class:`TLSConfig` and :class:`BatchingConfig`
- :class:`GrpcInferenceClient`, :class:`RestInferenceClient`, returning :class:`InferResult`
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._config import BatchingConfig, TLSConfig
    from ._tensors import InferResult
    from .grpc_client import GrpcInferenceClient
    from .rest_client import RestInferenceClient
    from .server import InferenceServer

__all__ = [
    "BatchingConfig",
    "GrpcInferenceClient",
    "InferResult",
    "InferenceServer",
    "RestInferenceClient",
    "TLSConfig",
]

_WHERE = {
    "BatchingConfig": "._config",
    "TLSConfig": "._config",
    "InferResult": "._tensors",
    "GrpcInferenceClient": ".grpc_client",
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
