"""The aggregation server: a round runner, a client pool and gRPC serving, wired together.

Three parts with one interface each, as Flower's ``Server`` over a ``ClientManager``:

- ``pool.ClientPool``: who is connected (one live connection per client id, duplicates refused);
- ``rounds.RoundRunner``: the round policy (wait rule, configure, collect, aggregate,
  checkpoint, stop), which sees clients only as ``pool.ClientProxy`` objects;
- ``sessions.FederatedServicer``: the gRPC streams, authentication (``admission``) and the
  chunked weight transport; each stream is a ``sessions.Session`` proxy in the pool.

:class:`AggregationServer` owns their lifecycle (listen, run, stop) and the optional
Prometheus endpoint. It is what ``workers.federated.aggregator`` and Sedna's
``sedna.service.server.AggregationServer`` run.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc

from sedna.algorithms.aggregation.records import Weights
from sedna.algorithms.aggregation.strategy import Strategy
from sedna.common.grpc_options import server_options
from sedna.common.log import get_logger
from sedna.proto import federated_pb2 as pb
from sedna.service.aggregation.metrics import ServerMetrics
from sedna.service.aggregation.pool import ClientPool
from sedna.service.aggregation.rounds import RoundFailedError, RoundRunner, RunResult
from sedna.service.aggregation.sessions import FederatedServicer
from sedna.service.aggregation.settings import ServerSettings
from sedna.service.aggregation.wire import service_handler

LOG = get_logger(__name__)

KEEPALIVE_S = 20.0
"""Streams are pinged this often, so a vanished trainer is noticed within about 30 s."""

__all__ = ["AggregationServer", "RoundFailedError", "RunResult"]


class AggregationServer:
    """Runs a federated learning job with ``strategy`` over gRPC (see the module docstring).

    Parameters
    ----------
    strategy:
        The aggregation policy (any registered ``FL_AGG`` strategy).
    settings:
        Where to listen, deadlines, stop conditions, checkpoints, credentials and caps.
    initial_weights:
        The starting model (e.g. a pretrained one). Without it, and without a checkpoint,
        one connected client is asked for its weights.
    on_round:
        Called with ``(history entry, done)`` after each round is checkpointed, and once more with
        ``done=True`` when the job ends; an exception in it is logged, never fatal.
    """

    def __init__(self, strategy: Strategy, settings: ServerSettings | None = None,
                 initial_weights: Weights | None = None,
                 on_round: Callable[[dict[str, Any], bool], None] | None = None) -> None:
        self.strategy = strategy
        self.settings = settings or ServerSettings()
        self.metrics = ServerMetrics()
        self.pool = ClientPool()
        self.runner = RoundRunner(strategy, self.pool, self.settings, self.metrics, initial_weights, on_round)
        self._grpc: grpc.Server | None = None
        self._http: Any = None
        self.port = 0

    @property
    def round(self) -> int:
        """The last completed round."""
        return self.runner.round

    def health(self) -> pb.HealthResponse:
        """What the ``Health`` RPC answers."""
        return pb.HealthResponse(status=self.runner.status, round=self.runner.round,
                                 connected_clients=self.pool.num_available(), job_name=self.settings.job_name)

    def start(self) -> int:
        """Resume from the checkpoint, listen (gRPC, and metrics HTTP when configured); return the port."""
        s = self.settings
        self.runner.resume()
        admission = s.admission()
        if not admission.credentials.enabled:
            LOG.info("no per-trainer credentials configured (AGG_CLIENT_KEY or AGG_CLIENT_CREDENTIALS): "
                     "any client id is admitted%s", " with the job token" if s.token else "")
        self._grpc = grpc.server(futures.ThreadPoolExecutor(max_workers=s.max_workers, thread_name_prefix="fl-grpc"),
                                 options=server_options(keepalive_s=KEEPALIVE_S),
                                 maximum_concurrent_rpcs=s.max_workers // 2)
        servicer = FederatedServicer(self.pool, self.runner.collector, self.health, lambda: self.runner.round,
                                     admission=admission, token=s.token, chunk_size=s.chunk_size,
                                     max_update_bytes=s.max_update_bytes, metrics=self.metrics)
        self._grpc.add_generic_rpc_handlers((service_handler(servicer),))
        address = f"{s.bind_ip}:{s.bind_port}"
        if s.tls_cert_file:
            pair = (Path(s.tls_key_file).read_bytes(), Path(s.tls_cert_file).read_bytes())
            self.port = self._grpc.add_secure_port(address, grpc.ssl_server_credentials([pair]))
        else:
            self.port = self._grpc.add_insecure_port(address)
        self._grpc.start()
        if s.metrics_port:
            from prometheus_client import start_http_server

            self._http, _ = start_http_server(s.metrics_port, addr=s.bind_ip, registry=self.metrics.registry)
        LOG.info("aggregation server for job %r listening on %s:%d (strategy %s)", s.job_name, s.bind_ip,
                 self.port, type(self.strategy).__name__)
        return self.port

    def run(self) -> RunResult:
        """Drive rounds until a stop condition holds (see ``rounds``)."""
        return self.runner.run()

    def stop_soon(self) -> None:
        """Ask :meth:`run` to return after the current wait (e.g. on SIGTERM) without ending the job."""
        self.runner.stop_soon()

    def stop(self, grace: float = 1.0) -> None:
        """Close every stream and stop listening (after the pending checkpoint is written)."""
        try:
            self.runner.await_checkpoint()
        except Exception:
            LOG.exception("checkpoint write failed")
        self.runner.stop_soon()
        self.pool.close_all()
        if self._grpc is not None:
            self._grpc.stop(grace).wait()
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None

    def serve(self) -> RunResult:
        """``start``, ``run``, ``stop``: what a worker process does."""
        self.start()
        try:
            return self.run()
        finally:
            self.stop()
