"""Sedna's server names (``sedna.service.server``) over this project's servers.

- ``InferenceServer(model, servername, host, http_port, max_buffer_size, workers)``: Sedna's REST
  big-model server (:mod:`sedna.service.server.inference`) on this project's inference server;
- ``AggregationServer(aggregation, host, http_port, exit_round, participants_count, ws_size)``:
  the project's gRPC aggregation server with Sedna's parameters (:mod:`sedna.service.server.aggregation`).

Imported lazily: ``import sedna.service.server`` loads no gRPC or web framework until a name is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sedna.service.server.aggregation import AggregationServer
    from sedna.service.server.inference import InferenceServer

__all__ = ["AggregationServer", "InferenceServer"]

_WHERE = {
    "AggregationServer": "sedna.service.server.aggregation",
    "InferenceServer": "sedna.service.server.inference",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
