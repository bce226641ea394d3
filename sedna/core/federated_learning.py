"""FederatedLearning: the edge trainer's entry point (Sedna's ``sedna.core.federated_learning``).

``FederatedLearning(estimator, aggregation="FedAvg").train(train_data, valid_data, **kw)``
joins the job's aggregation server at ``AGG_IP:AGG_PORT`` (retrying while it is not up yet,
rejoining after link loss) and, for each round the server drives: loads the global weights
(``set_weights``) and saves them (``estimator.save(model_path)``, as Sedna does after every
aggregation), trains (``estimator.train`` with only the keyword arguments its signature
accepts), reads the update (``get_weights``), evaluates it on ``valid_data`` when given,
sends it with ``num_samples`` = the size of ``train_data``, and reports progress to the Local
Controller (ownerKind ``federatedlearningjob``, ownerName ``JOB_NAME``: Sedna left both unset,
so its reports were dropped). As in Sedna, ``train`` returns the estimator (or
``post_process(estimator)``: a callable or a registered ``CALLBACK`` name), and
``inference(x)`` / ``evaluate(data)`` call the estimator's ``predict`` / ``evaluate``.

The trainer proves its client id (``WORKER_NAME``) with its own credential,
``AGG_CLIENT_TOKEN`` (or ``AGG_CLIENT_TOKEN_FILE``), next to the job token ``AGG_TOKEN``.
The model is saved to the ``model_path`` parameter when set, else to ``MODEL_URL`` when it
names a file, else to ``<MODEL_URL>/<WORKER_NAME>.npz`` (``MODEL_NAME`` instead when it has a
file suffix); without ``MODEL_URL`` nothing is saved.

Estimators are plain classes. ``get_weights()`` returns ``dict[str, ndarray]`` or a list
of arrays (named ``layer_0``, ``layer_1``, ... on the wire); ``set_weights`` receives the
same form back. **FedProx**: when the fit config carries ``proximal_mu`` and
``estimator.train`` accepts ``proximal_mu`` (and optionally ``global_weights``), they are
passed so the estimator can add ``mu * (w - w_global)`` to its gradient; otherwise the
SDK warns once and trains as with FedAvg.

With ``TRANSMITTER=s3`` (and ``AGG_DATA_PATH``, the S3 env) models do not travel over the
channel: each update is written to ``AGG_DATA_PATH/<job>/round-<n>/<WORKER_NAME>.npz`` and only
its URL, size and sha256 are sent; global models arrive the same way and are checked against
their sha256 (:mod:`sedna.service.aggregation.transmit`). ``ws`` (the default) streams them.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np

from sedna.algorithms.aggregation.records import Config, Metrics, Scalar, Weights
from sedna.common.class_factory import ClassFactory, ClassType
from sedna.common.config import Context, WorkerConfig
from sedna.common.log import get_logger
from sedna.service.aggregation.client import AggregationClient, ClientSettings, StopInfo
from sedna.service.aggregation.environment import secret
from sedna.service.aggregation.reports import OWNER_KIND, ReportSender, now
from sedna.service.aggregation.transmit import S3Transmitter
from sedna.service.lc_client import LCReport

LOG = get_logger(__name__)

__all__ = ["OWNER_KIND", "FederatedLearning", "ReportSender", "accepted_kwargs", "sample_count"]


def accepted_kwargs(method: Callable[..., Any], kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The subset of ``kwargs`` that ``method``'s signature accepts (all of them with ``**kw``)."""
    params = inspect.signature(method).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return dict(kwargs)
    names = {p.name for p in params if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                                  inspect.Parameter.KEYWORD_ONLY)}
    return {k: v for k, v in kwargs.items() if k in names}


def sample_count(data: Any) -> int:
    """``data.num_examples()`` when it has one, else ``len(data)``."""
    if hasattr(data, "num_examples"):
        return int(data.num_examples())
    return len(data)


def _metric_dict(value: Any, default_key: str) -> Metrics:
    if isinstance(value, Mapping):
        return {str(k): _scalar(v) for k, v in value.items() if _scalar(v) is not None}  # type: ignore[misc]
    scalar = _scalar(value)
    return {default_key: scalar} if scalar is not None else {}


def _scalar(value: Any) -> Scalar | None:
    if isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)) or (isinstance(value, np.ndarray) and value.size == 1):
        return float(value)
    return None


class _EstimatorHandler:
    """Adapts a user estimator to the protocol's ``ClientHandler``."""

    def __init__(self, owner: FederatedLearning, train_data: Any, valid_data: Any, kwargs: dict[str, Any],
                 transmitter: S3Transmitter | None = None) -> None:
        self.owner, self.train_data, self.valid_data = owner, train_data, valid_data
        self.transmitter = transmitter
        self.kwargs = kwargs
        self.num_samples = sample_count(train_data)
        self._list_form: bool | None = None
        self.final: Weights | None = None
        """The final global model (resolved from its reference with the s3 transmitter)."""
        self._warned_prox = False

    def _to_named(self, raw: Any) -> Weights:
        if isinstance(raw, Mapping):
            self._list_form = False
            return {str(k): np.asarray(v) for k, v in raw.items()}
        if isinstance(raw, Sequence):
            self._list_form = True
            return {f"layer_{i}": np.asarray(v) for i, v in enumerate(raw)}
        raise TypeError(f"estimator.get_weights() returned {type(raw).__name__}; expected a dict or list of arrays")

    def local_weights(self) -> Weights:
        return self._to_named(self.owner.estimator.get_weights())

    def get_weights(self) -> Weights:
        """The initial model the server asked for (a reference to round 0's object with the s3 transmitter)."""
        return self._send(self.local_weights(), 0)

    def _send(self, weights: Weights, server_round: int) -> Weights:
        if self.transmitter is None:
            return weights
        return self.transmitter.send(weights, server_round, self.owner.worker_name)

    def _receive(self, weights: Weights) -> Weights:
        return weights if self.transmitter is None else self.transmitter.receive(weights)

    def _set(self, weights: Weights) -> None:
        if self._list_form is None:
            self.local_weights()
        value: Any = list(weights.values()) if self._list_form else dict(weights)
        self.owner.estimator.set_weights(value)

    def fit(self, server_round: int, weights: Weights, config: Config) -> tuple[Weights, int, Metrics]:
        est = self.owner.estimator
        weights = self._receive(weights)
        self._set(weights)
        if server_round > 1:  # the aggregate of the previous round
            self.owner._save(server_round - 1)
        extra: dict[str, Any] = {**self.kwargs, **{k: v for k, v in config.items() if k != "server_round"}}
        mu = float(config.get("proximal_mu", 0.0) or 0.0)
        if mu > 0:
            extra["global_weights"] = weights
            if "proximal_mu" not in accepted_kwargs(est.train, {"proximal_mu": mu}) and not self._warned_prox:
                LOG.warning("FedProx: estimator.train does not accept proximal_mu; training without the "
                            "proximal term")
                self._warned_prox = True
        if self.valid_data is not None:
            extra["valid_data"] = self.valid_data
        started = time.monotonic()
        outcome = est.train(self.train_data, **accepted_kwargs(est.train, extra))
        metrics: Metrics = _metric_dict(outcome, "train_loss") if outcome is not None else {}
        metrics["train_seconds"] = round(time.monotonic() - started, 4)
        new = self.local_weights()
        if self.valid_data is not None and hasattr(est, "evaluate"):
            metrics.update(self._evaluate())
        self.owner._round_done(server_round, self.num_samples, metrics)
        return self._send(new, server_round), self.num_samples, metrics

    def _evaluate(self) -> Metrics:
        est = self.owner.estimator
        return _metric_dict(est.evaluate(self.valid_data, **accepted_kwargs(est.evaluate, self.kwargs)), "score")

    def evaluate(self, server_round: int, weights: Weights, config: Config) -> tuple[int, float, Metrics]:
        self._set(self._receive(weights))
        metrics = self._evaluate()
        loss = metrics.get("loss", 0.0)
        return sample_count(self.valid_data), float(loss) if isinstance(loss, (int, float)) else 0.0, metrics

    def on_rejected(self, server_round: int, reason: str) -> None:
        self.owner.rejections.append((server_round, reason))

    def on_stop(self, info: StopInfo) -> None:
        self.final = self._receive(info.weights)
        self._set(self.final)
        self.owner._save(info.round)


def resolve_callback(post_process: Any) -> Callable[[Any], Any] | None:
    """``post_process`` as a callable: itself, or the ``CALLBACK`` class registered under that name."""
    if post_process is None or callable(post_process):
        return cast("Callable[[Any], Any] | None", post_process)
    if isinstance(post_process, str):
        return cast("Callable[[Any], Any]", ClassFactory.get_cls(ClassType.CALLBACK, post_process))
    raise TypeError(f"post_process must be a callable or a registered callback name, got {post_process!r}")


class FederatedLearning:
    """A federated-learning trainer on an edge node (Sedna's ``FederatedLearning``).

    Parameters
    ----------
    estimator:
        An object (or a class, instantiated with no arguments) with ``train``,
        ``get_weights``, ``set_weights`` and optionally ``evaluate``, ``predict``, ``save``.
    aggregation:
        Name of the job's strategy, for logs and reports (the server decides).
    config:
        The worker environment (default: read from ``os.environ`` now).
    """

    def __init__(self, estimator: Any, aggregation: str = "FedAvg", config: WorkerConfig | None = None) -> None:
        self.estimator = estimator() if isinstance(estimator, type) else estimator
        for method in ("train", "get_weights", "set_weights"):
            if not callable(getattr(self.estimator, method, None)):
                raise TypeError(f"estimator {type(self.estimator).__name__} has no {method}() method")
        self.aggregation = aggregation
        self.config = config or WorkerConfig.from_env()
        self.job_kind = OWNER_KIND
        self.job_name = self.config.job_name
        self.worker_name = self.config.worker_name or f"{self.job_name or 'fl'}-trainer"
        self.rejections: list[tuple[int, str]] = []
        self.current_round = 0
        self.stop_info: StopInfo | None = None
        """How the last :meth:`train` ended: final round, reason and global weights."""
        self._client: AggregationClient | None = None
        self._reporter = ReportSender(self.config)
        self._start_time = ""
        self._saved: tuple[int, str] | None = None

    def get_parameters(self, name: str, default: Any = None) -> Any:
        """A job parameter from the worker environment (Sedna's ``JobBase.get_parameters``)."""
        return Context(self.config.environ).get_parameters(name, default)

    def _parameter(self, name: str, default: str) -> str:
        return str(self.get_parameters(name, default) or default)

    @property
    def model_path(self) -> str:
        """Where the global model is saved each round ("" when no location is configured)."""
        explicit = self._parameter("model_path", "")
        if explicit:
            return explicit
        url = self.config.model_url
        if not url:
            return ""
        target = Path(url)
        if target.suffix and not target.is_dir():
            return url
        name = self._parameter("MODEL_NAME", "")
        return str(target / (name if Path(name).suffix else f"{self.worker_name}.npz"))

    def train(self, train_data: Any, valid_data: Any = None, post_process: Any = None, **kwargs: Any) -> Any:
        """Take part in the job until the aggregator stops it.

        Returns the estimator holding the final global model, or ``post_process(estimator)``
        (Sedna's return value); the final round and reason are in :attr:`stop_info`.
        """
        callback = resolve_callback(post_process)
        cfg = self.config
        ctx = Context(cfg.environ)
        handler = _EstimatorHandler(self, train_data, valid_data, kwargs, S3Transmitter.from_env(cfg.environ))
        can_eval = valid_data is not None and callable(getattr(self.estimator, "evaluate", None))
        settings = ClientSettings(
            target=f"{cfg.agg_ip}:{cfg.agg_port}", client_id=self.worker_name,
            job_name=cfg.job_name, num_samples=handler.num_samples, can_evaluate=can_eval,
            token=secret(ctx, "AGG_TOKEN"), credential=secret(ctx, "AGG_CLIENT_TOKEN"),
            tls_ca_file=self._parameter("AGG_TLS_CA", ""), compression=self._parameter("FL_COMPRESSION", "none"),
            connect_timeout_s=float(self._parameter("CONNECT_TIMEOUT", "300")),
        )
        self._start_time = now()
        self._client = AggregationClient(settings, handler)
        try:
            info = self._client.run()
        finally:
            self._client = None
        if handler.final is not None:
            info = StopInfo(info.round, info.reason, handler.final)
        self.current_round, self.stop_info = info.round, info
        self._reporter.send(self._report("completed", info.round, handler.num_samples, {}), wait=True)
        self._reporter.close()
        return callback(self.estimator) if callback is not None else self.estimator

    def inference(self, data: Any = None, post_process: Any = None, **kwargs: Any) -> Any:
        """``estimator.predict(data)``, then ``post_process`` (a callable or a registered callback name)."""
        predict = getattr(self.estimator, "predict", None)
        if not callable(predict):
            raise TypeError(f"estimator {type(self.estimator).__name__} has no predict() method")
        result = predict(data, **accepted_kwargs(predict, kwargs))
        callback = resolve_callback(post_process)
        return callback(result) if callback is not None else result

    def evaluate(self, data: Any, post_process: Any = None, **kwargs: Any) -> Any:
        """``estimator.evaluate(data)``, then ``post_process``."""
        evaluate = getattr(self.estimator, "evaluate", None)
        if not callable(evaluate):
            raise TypeError(f"estimator {type(self.estimator).__name__} has no evaluate() method")
        result = evaluate(data, **accepted_kwargs(evaluate, kwargs))
        callback = resolve_callback(post_process)
        return callback(result) if callback is not None else result

    def stop(self) -> None:
        """Leave the job (from another thread)."""
        if self._client is not None:
            self._client.close()

    def _save(self, global_round: int) -> None:
        """``estimator.save(model_path)`` for the global model of ``global_round`` (once per round)."""
        path = self.model_path
        save = getattr(self.estimator, "save", None)
        if not path or not callable(save) or (self._saved is not None and self._saved[0] == global_round):
            return
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        save(path)
        self._saved = (global_round, path)
        LOG.debug("global model of round %d saved to %s", global_round, path)

    def _round_done(self, server_round: int, num_samples: int, metrics: Metrics) -> None:
        self.current_round = server_round
        shown = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items())
        LOG.info("round %d: trained on %d samples (%s)", server_round, num_samples, shown)
        self._reporter.send(self._report("running", server_round, num_samples, metrics))

    def _report(self, status: str, server_round: int, num_samples: int, metrics: Metrics) -> LCReport:
        info = {"currentRound": server_round, "sampleCount": num_samples, "startTime": self._start_time,
                "updateTime": now(), "metrics": dict(metrics)}
        results = None
        if self._saved is not None:
            path = self._saved[1]
            results = [{"format": Path(path).suffix.lstrip("."), "url": path, "metrics": dict(metrics)}]
        return LCReport(owner_kind=OWNER_KIND, owner_name=self.config.job_name, kind="train", status=status,
                        owner_info=info, results=results)
