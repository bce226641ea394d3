"""Federated learning transport: the aggregation server and the client it talks to.

``AggregationServer(strategy, settings)`` drives rounds over gRPC streams
(``sedna/proto/federated.proto``): a ``RoundRunner`` (``rounds``) over a ``ClientPool``
(``pool``), served by ``sessions``. ``AggregationClient`` is the edge side, used by
``sedna.core.federated_learning.FederatedLearning``. Wire conversion is in ``serde``;
credentials and sample caps in ``admission``; env parsing in ``environment``.
"""

from __future__ import annotations

from sedna.service.aggregation.client import AggregationClient, ClientHandler, ClientSettings, JobRejectedError
from sedna.service.aggregation.pool import ClientPool, ClientProxy, DuplicateClientError
from sedna.service.aggregation.rounds import RoundFailedError, RoundRunner, RunResult, WaitRule
from sedna.service.aggregation.server import AggregationServer
from sedna.service.aggregation.settings import ServerSettings

__all__ = [
    "AggregationClient",
    "AggregationServer",
    "ClientHandler",
    "ClientPool",
    "ClientProxy",
    "ClientSettings",
    "DuplicateClientError",
    "JobRejectedError",
    "RoundFailedError",
    "RoundRunner",
    "RunResult",
    "ServerSettings",
    "WaitRule",
]
