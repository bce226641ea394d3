"""Sedna's server names (``sedna.service.server``) over this project's servers.

``AggregationServer(aggregation, host, http_port, exit_round, participants_count, ws_size)``
runs the project's gRPC aggregation server with Sedna's parameters (see
:mod:`sedna.service.server.aggregation`). Imported lazily: ``import sedna.service.server``
loads no gRPC until a name is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sedna.service.server.aggregation import AggregationServer

__all__ = ["AggregationServer"]


def __getattr__(name: str) -> Any:
    if name == "AggregationServer":
        from sedna.service.server.aggregation import AggregationServer

        return AggregationServer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
