"""Sedna's ``AggregationServer``, served by this project's gRPC aggregation server.

A Sedna aggregation program runs unchanged::

    server = AggregationServer(aggregation="FedAvg", exit_round=3, ws_size=20 * 1024 * 1024,
                               participants_count=2)
    server.start()   # blocks until the job ends

The parameters keep Sedna's names and meaning (``aggregation_algorithm=`` is accepted as
another spelling of ``aggregation``); everything else comes from the worker environment
(:mod:`sedna.service.aggregation.environment`): checkpoints and resume, deadlines, k-of-n,
tokens, per-trainer credentials, sample caps, LC round reports. What differs from Sedna:
``host`` defaults to ``AGG_BIND_IP``, else ``127.0.0.1`` (Sedna binds the host's IP);
trainers speak gRPC, not a websocket, so they must run this SDK's ``FederatedLearning``;
``ws_size`` is accepted and ignored (weights travel in chunks, with no size cap).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Mapping
from typing import Any

from sedna.common.config import WorkerConfig
from sedna.common.errors import ConfigError
from sedna.common.log import get_logger
from sedna.service.aggregation.environment import build_server
from sedna.service.aggregation.rounds import RunResult

LOG = get_logger(__name__)

__all__ = ["AggregationServer"]


class AggregationServer:
    """Sedna's aggregation server (see the module docstring).

    Parameters
    ----------
    aggregation:
        Name of a registered aggregation strategy (``FedAvg``, ``FedProx``, ``Krum``, ...).
    host, http_port:
        Where to listen (default ``AGG_BIND_IP`` / ``AGG_BIND_PORT``, else 127.0.0.1:7363).
    exit_round:
        Rounds to run.
    participants_count:
        Trainers the job waits for before the first round (``min_available_clients``).
    ws_size:
        Sedna's websocket frame limit; ignored.
    aggregation_algorithm:
        Another spelling of ``aggregation``.
    """

    def __init__(self, aggregation: str | None = None, host: str | None = None, http_port: int | None = None,
                 exit_round: int = 1, participants_count: int = 1, ws_size: int = 10 * 1024 * 1024, *,
                 aggregation_algorithm: str | None = None, environ: Mapping[str, str] | None = None) -> None:
        if aggregation and aggregation_algorithm and aggregation != aggregation_algorithm:
            raise ConfigError(f"aggregation={aggregation!r} and aggregation_algorithm={aggregation_algorithm!r} "
                              "disagree; give one")
        self.aggregation = str(aggregation or aggregation_algorithm or "FedAvg")
        self.exit_round = max(int(exit_round), 1)
        self.participants_count = max(int(participants_count), 1)
        self.ws_size = ws_size
        cfg = WorkerConfig.from_env(environ)
        self.host = host or cfg.agg_bind_ip
        self.http_port = int(http_port) if http_port else cfg.agg_bind_port
        self._environ = environ
        self.server: Any = None
        self.result: RunResult | None = None

    def start(self) -> RunResult:
        """Serve the job until its last round (or its checkpoint says it is done); returns how it ended."""
        self.server = build_server(self._environ, aggregation=self.aggregation,
                                   participants_count=self.participants_count, num_rounds=self.exit_round,
                                   bind_ip=self.host, bind_port=self.http_port)
        if threading.current_thread() is threading.main_thread() and \
                signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            signal.signal(signal.SIGTERM, lambda *_: self.server.stop_soon())
        self.result = self.server.serve()
        LOG.info("aggregation finished: %d rounds (%s)", self.result.rounds, self.result.reason)
        return self.result

    def stop(self) -> None:
        """Make :meth:`start` return after the current wait (the job resumes from its checkpoint)."""
        if self.server is not None:
            self.server.stop_soon()
