"""Federated learning transport: the aggregation server and the client it talks to.

``AggregationServer(strategy, settings)`` drives rounds over gRPC streams
(``sedna/proto/federated.proto``); ``AggregationClient`` is the edge side, used by
``sedna.core.federated_learning.FederatedLearning``. Wire conversion is in ``serde``.
"""

from __future__ import annotations

from sedna.service.aggregation.client import AggregationClient, ClientHandler, ClientSettings, JobRejectedError
from sedna.service.aggregation.server import AggregationServer, RoundFailedError, RunResult
from sedna.service.aggregation.settings import ServerSettings

__all__ = [
    "AggregationClient",
    "AggregationServer",
    "ClientHandler",
    "ClientSettings",
    "JobRejectedError",
    "RoundFailedError",
    "RunResult",
    "ServerSettings",
]
