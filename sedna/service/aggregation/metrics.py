"""Prometheus metrics of one aggregation server, in its own registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class ServerMetrics:
    """Counters and gauges the round loop and the servicer update."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.connected = Gauge("sedna_fl_connected_clients", "Clients with an open stream", registry=r)
        self.round = Gauge("sedna_fl_round", "Last completed round", registry=r)
        self.rounds = Counter("sedna_fl_rounds", "Rounds by outcome", ["outcome"], registry=r)
        self.round_seconds = Histogram("sedna_fl_round_seconds", "Wall time of completed rounds", registry=r,
                                       buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900))
        self.updates = Counter("sedna_fl_updates", "Client updates by outcome", ["outcome"], registry=r)
        self.bytes_received = Counter("sedna_fl_received_bytes", "Tensor bytes received", registry=r)
        self.bytes_sent = Counter("sedna_fl_sent_bytes", "Tensor bytes sent", registry=r)
        self.eval_metric = Gauge("sedna_fl_eval_metric", "Aggregated evaluation metric", ["name"], registry=r)
