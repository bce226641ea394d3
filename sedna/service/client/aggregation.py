"""Sedna's ``AggregationClient``: ``send`` an update, ``recv`` the aggregate, over gRPC.

Sedna's trainer loop is client-driven: train, ``send({"num_samples", "weights"},
msg_type="update_weight")``, block in ``recv(wait_data_type="recv_weight")`` for
``{"type": "recv_weight", "round_number", "data": {"total_sample", "round_number", "weights",
"exit_flag"}}``, repeat until ``exit_flag == "ok"``. This project's server drives rounds
instead (``FitIns`` carries the global model, ``Stop`` the final one), so the client runs the
project's :class:`~sedna.service.aggregation.client.AggregationClient` on a thread and bridges:
the first update answers round 1; each later ``FitIns`` is handed to ``recv`` with
``exit_flag="continue"`` and answered by the next ``send``; ``Stop`` comes out of ``recv``
with ``exit_flag="ok"``. ``total_sample`` is this client's own sample count (the server does
not publish the total). Weights come back in the form they were sent: a list of arrays or a
dict of named arrays.

Configuration beyond Sedna's arguments comes from the environment, as for
``FederatedLearning``: ``JOB_NAME``, ``AGG_TOKEN``, ``AGG_CLIENT_TOKEN`` (``_FILE``),
``AGG_TLS_CA``.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from sedna.algorithms.aggregation.records import Config, Metrics, Weights
from sedna.common.config import Context, WorkerConfig
from sedna.common.errors import ConfigError
from sedna.common.log import get_logger
from sedna.service.aggregation.client import AggregationClient as _Client
from sedna.service.aggregation.client import ClientSettings, StopInfo
from sedna.service.aggregation.environment import secret

LOG = get_logger(__name__)

__all__ = ["AggregationClient"]

_END = object()


def target_of(url: str) -> str:
    """``host:port`` of Sedna's aggregator URI (``ws://10.0.0.5:7363/FedAvg``) or of a bare ``host:port``."""
    parts = urlsplit(url if "//" in url else f"//{url}")
    if not parts.hostname:
        raise ConfigError(f"aggregation url {url!r} names no host (expected e.g. ws://127.0.0.1:7363/FedAvg)")
    return f"{parts.hostname}:{parts.port or 7363}"


class _Bridge:
    """A ``ClientHandler`` fed by ``send`` and read by ``recv`` (see the module docstring)."""

    def __init__(self) -> None:
        self.updates: queue.Queue[tuple[Weights, int]] = queue.Queue()
        self.inbox: queue.Queue[Any] = queue.Queue()
        self.list_form = False
        self.num_samples = 0
        self._first: tuple[Weights, int] | None = None
        self._first_used = False

    def named(self, weights: Any) -> Weights:
        if isinstance(weights, Mapping):
            self.list_form = False
            return {str(k): np.asarray(v) for k, v in weights.items()}
        if isinstance(weights, Sequence):
            self.list_form = True
            return {f"layer_{i}": np.asarray(v) for i, v in enumerate(weights)}
        raise TypeError(f"weights must be a list or dict of arrays, got {type(weights).__name__}")

    def plain(self, weights: Weights) -> Any:
        return list(weights.values()) if self.list_form else dict(weights)

    def _first_update(self) -> tuple[Weights, int]:
        if self._first is None:
            self._first = self.updates.get()
        return self._first

    def publish(self, server_round: int, weights: Weights, exit_flag: str) -> None:
        data = {"total_sample": self.num_samples, "round_number": server_round, "weights": self.plain(weights),
                "exit_flag": exit_flag}
        self.inbox.put({"type": "recv_weight", "round_number": server_round, "data": data})

    # ---- ClientHandler
    def get_weights(self) -> Weights:
        return self._first_update()[0]

    def fit(self, server_round: int, weights: Weights, config: Config) -> tuple[Weights, int, Metrics]:
        first = self._first_update() if not self._first_used else None
        self._first_used = True
        if server_round == 1 and first is not None:
            return first[0], first[1], {}
        # a later round (or a late join: the first update was not trained from this global model)
        self.publish(server_round - 1, weights, "continue")
        update, samples = self.updates.get()
        return update, samples, {}

    def evaluate(self, server_round: int, weights: Weights, config: Config) -> tuple[int, float, Metrics]:
        return 0, 0.0, {}

    def on_rejected(self, server_round: int, reason: str) -> None:
        LOG.warning("round %d: the aggregator rejected our update: %s", server_round, reason)

    def on_stop(self, info: StopInfo) -> None:
        self.publish(info.round, info.weights, "ok")


class AggregationClient:
    """Sedna's federated client (see the module docstring).

    Parameters
    ----------
    url:
        The aggregator, as Sedna writes it (``ws://AGG_IP:AGG_PORT/<aggregation>``).
    client_id:
        This trainer's id (Sedna passes ``WORKER_NAME``).
    ping_timeout:
        Give up after this many seconds without reaching the aggregator (Sedna's ``CONNECT_TIMEOUT``).
    """

    def __init__(self, url: str, client_id: str, environ: Mapping[str, str] | None = None, **kwargs: Any) -> None:
        cfg = WorkerConfig.from_env(environ)
        ctx = Context(cfg.environ)
        timeout = kwargs.get("ping_timeout", "")
        self.uri, self.client_id = url, client_id
        self._bridge = _Bridge()
        self._settings = ClientSettings(
            target=target_of(url), client_id=client_id, job_name=cfg.job_name,
            token=secret(ctx, "AGG_TOKEN"), credential=secret(ctx, "AGG_CLIENT_TOKEN"),
            tls_ca_file=str(ctx.get_parameters("AGG_TLS_CA", "") or ""),
            connect_timeout_s=float(timeout) if str(timeout).replace(".", "", 1).isdigit() else 300.0)
        self._client: _Client | None = None
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def _follow(self) -> None:
        assert self._client is not None
        try:
            self._client.run()
        except BaseException as exc:
            self._error = exc
        finally:
            self._bridge.inbox.put(_END)

    def send(self, data: Any, msg_type: str = "message", job_name: str = "") -> None:
        """Send an ``update_weight`` (``{"num_samples", "weights"}``); other message types are ignored."""
        if msg_type != "update_weight":
            LOG.debug("ignoring a %r message: only update_weight travels to this aggregator", msg_type)
            return
        if not isinstance(data, Mapping) or "weights" not in data:
            raise ValueError("an update_weight message needs data={'num_samples': int, 'weights': [...]}")
        samples = int(data.get("num_samples") or 0)
        self._bridge.num_samples = samples
        self._bridge.updates.put((self._bridge.named(data["weights"]), samples))
        if self._thread is None:
            settings = self._settings
            if samples and not settings.num_samples:
                settings = replace(settings, num_samples=samples)
            self._client = _Client(settings, self._bridge)
            self._thread = threading.Thread(target=self._follow, name=f"fl-sedna-{self.client_id}", daemon=True)
            self._thread.start()

    def recv(self, wait_data_type: str | None = None) -> dict[str, Any] | None:
        """The next aggregate (``recv_weight``); None when the job ended without one. Raises what ended the link."""
        if self._thread is None:
            raise RuntimeError("recv() before the first send(): send this trainer's update first")
        item = self._bridge.inbox.get()
        if item is _END:
            self._bridge.inbox.put(_END)
            if self._error is not None:
                raise self._error
            return None
        if wait_data_type and item.get("type") != wait_data_type:
            return None
        return dict(item)

    def close(self) -> None:
        """Leave the job."""
        if self._client is not None:
            self._client.close()
