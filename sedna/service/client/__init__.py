"""Sedna's client names (``sedna.service.client``) over this project's clients.

- ``AggregationClient(url, client_id, ping_timeout=...)``: Sedna's send/recv federated client
  (:mod:`sedna.service.client.aggregation`), speaking this project's gRPC protocol;
- ``LCClient``: the Local Controller client of :mod:`sedna.service.lc_client`, re-exported.

Names resolve lazily, so ``import sedna.service.client`` loads no gRPC or HTTP library.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sedna.service.client.aggregation import AggregationClient
    from sedna.service.lc_client import LCClient

__all__ = ["AggregationClient", "LCClient"]


def __getattr__(name: str) -> Any:
    if name == "AggregationClient":
        from sedna.service.client.aggregation import AggregationClient

        return AggregationClient
    if name == "LCClient":
        from sedna.service.lc_client import LCClient

        return LCClient
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
