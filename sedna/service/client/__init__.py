"""Sedna's client names (``sedna.service.client``) over this project's clients.

- ``LCClient``: the Local Controller client (:mod:`sedna.service.lc_client`); Sedna's class-level
  ``LCClient.send(lc_server, worker_name, message)`` works on it;
- ``LCReporter(lc_server, message, period_interval)``: Sedna's periodic joint-inference reporter
  thread (:mod:`sedna.service.client.lc_reporter`), which survives refusals and outages;
- ``ModelClient(service_name, version, host, port, protocol)``: Sedna's client of a big model's
  ``/{service}/predict`` (:mod:`sedna.service.client.model`);
- ``KBClient(kbserver)``: the lifelong-learning knowledge base's client (:mod:`sedna.service.client.kb`);
- ``AggregationClient(url, client_id, ping_timeout=...)``: Sedna's send/recv federated client
  (:mod:`sedna.service.client.aggregation`), speaking this project's gRPC protocol.

Names resolve lazily, so ``import sedna.service.client`` loads no gRPC or HTTP library.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sedna.service.client.aggregation import AggregationClient
    from sedna.service.client.kb import KBClient
    from sedna.service.client.lc_reporter import LCReporter
    from sedna.service.client.model import ModelClient
    from sedna.service.lc_client import LCClient

__all__ = ["AggregationClient", "KBClient", "LCClient", "LCReporter", "ModelClient"]

_WHERE = {
    "AggregationClient": "sedna.service.client.aggregation",
    "KBClient": "sedna.service.client.kb",
    "LCClient": "sedna.service.lc_client",
    "LCReporter": "sedna.service.client.lc_reporter",
    "ModelClient": "sedna.service.client.model",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
