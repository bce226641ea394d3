"""The aggregation server with ``TRANSMITTER=s3``: references on the channel, models in S3.

:func:`build_s3_server` is :func:`sedna.service.aggregation.environment.build_server` plus the
transmitter of :mod:`sedna.service.aggregation.transmit`. With ``TRANSMITTER=s3`` the round runner never
sees a model: its global weights, the trainers' updates and its checkpoints are
:class:`~sedna.service.aggregation.transmit.ObjectRef` tensors. :class:`S3Strategy` wraps the job's strategy
and does the I/O around it (strategies stay pure): it downloads each trainer's update from the
one URL that trainer may write (``round-<n>/<client id>.npz``: a trainer cannot slip another's
object in), checks its sha256, names, shapes and finiteness as the server checks streamed
updates, drops an update that fails (the reason, naming the URL, goes into the round's
``fit_metrics`` as ``s3_refused``), aggregates the rest with the wrapped strategy and uploads the
new global model as ``round-<n>/global.npz``. When every update fails the round fails with a
:class:`~sedna.service.aggregation.transmit.TransmitError` naming the URLs. The bucket keeps the
objects of the rounds the aggregator's checkpoints may still name (the last ``CHECKPOINT_KEEP`` rounds,
2 by default, and the one being written; 0 keeps every round); older rounds are deleted once a new
global model is uploaded.

:class:`S3AggregationServer` writes the real final model (not its reference) to ``MODEL_URL``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from sedna.algorithms.aggregation.records import (
    ClientInfo,
    Config,
    EvaluateIns,
    EvaluateRes,
    Failure,
    FitIns,
    FitRes,
    Metrics,
    Weights,
)
from sedna.algorithms.aggregation.strategy import Strategy
from sedna.common.config import WorkerConfig
from sedna.common.log import get_logger
from sedna.service.aggregation.checkpoint import save_npz
from sedna.service.aggregation.environment import initial_weights_from_env, settings_from_env, strategy_from_env
from sedna.service.aggregation.reports import round_reporter
from sedna.service.aggregation.rounds import RunResult
from sedna.service.aggregation.serde import weights_spec
from sedna.service.aggregation.server import AggregationServer
from sedna.service.aggregation.transmit import S3Transmitter, TransmitError, is_ref
from sedna.service.aggregation.validation import check_finite, check_header

LOG = get_logger(__name__)

GLOBAL = "global"
"""Object name of the aggregated model of each round."""


class S3Strategy(Strategy):
    """``inner`` with its updates and global models moved through S3 (see the module docstring)."""

    def __init__(self, inner: Strategy, transmitter: S3Transmitter, keep_rounds: int = 2) -> None:
        # no Strategy.__init__: every sampling setting is read from the inner strategy (__getattr__)
        self.inner, self.transmitter, self.keep_rounds = inner, transmitter, keep_rounds

    def __getattr__(self, name: str) -> Any:  # sampling settings (min_fit_clients, ...) are the inner strategy's
        if name in ("inner", "transmitter", "keep_rounds"):
            raise AttributeError(name)
        return getattr(self.inner, name)

    def __repr__(self) -> str:
        return f"S3Strategy({self.inner!r})"

    def configure_fit(self, server_round: int, weights: Weights, clients: Sequence[ClientInfo],
                      rng: random.Random) -> list[tuple[str, FitIns]]:
        return self.inner.configure_fit(server_round, weights, clients, rng)

    def configure_evaluate(self, server_round: int, weights: Weights, clients: Sequence[ClientInfo],
                           rng: random.Random) -> list[tuple[str, EvaluateIns]]:
        return self.inner.configure_evaluate(server_round, weights, clients, rng)

    def aggregate_evaluate(self, server_round: int, results: Sequence[EvaluateRes],
                           failures: Sequence[Failure]) -> tuple[float | None, Metrics]:
        return self.inner.aggregate_evaluate(server_round, results, failures)

    def fit_config_for(self, server_round: int) -> Config:
        return self.inner.fit_config_for(server_round)

    def num_fit_clients(self, num_available: int) -> int:
        return self.inner.num_fit_clients(num_available)

    def num_evaluate_clients(self, num_available: int) -> int:
        return self.inner.num_evaluate_clients(num_available)

    def state_dict(self) -> dict[str, np.ndarray]:
        return self.inner.state_dict()

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        self.inner.load_state_dict(state)

    def aggregate_fit(self, server_round: int, weights: Weights, results: Sequence[FitRes],
                      failures: Sequence[Failure]) -> tuple[Weights | None, Metrics]:
        """Download and check the updates, aggregate them with the inner strategy, upload the result."""
        current = self.transmitter.receive(weights)
        spec = weights_spec(current)
        good: list[FitRes] = []
        refused: list[Failure] = []
        for res in results:
            url = self.transmitter.url_for(server_round, res.client_id)
            try:
                update = self.transmitter.receive(res.weights, expect_url=url)
                why = check_header(spec, weights_spec(update)) or check_finite(update)
                if why:
                    raise TransmitError(f"{url}: {why}")
            except TransmitError as exc:
                LOG.error("round %d: update of %s refused: %s", server_round, res.client_id, exc)
                refused.append(Failure(res.client_id, str(exc)))
                continue
            good.append(replace(res, weights=update))
        if results and not good:
            raise TransmitError(f"round {server_round}: every update was refused: "
                                + "; ".join(f.reason for f in refused))
        new, metrics = self.inner.aggregate_fit(server_round, current, good, [*failures, *refused])
        if refused:
            metrics = {**metrics, "s3_refused": "; ".join(f"{f.client_id}: {f.reason}" for f in refused)}
        if new is None:
            return None, metrics
        ref = self.transmitter.send(new, server_round, GLOBAL)
        self._prune(server_round)
        return ref, metrics

    def _prune(self, server_round: int) -> None:
        """Delete the rounds no kept checkpoint refers to; a failure is logged, the round goes on."""
        # round n's checkpoint is written after this; until then the kept ones are rounds n-keep .. n-1
        first_kept = server_round - self.keep_rounds
        if self.keep_rounds <= 0 or first_kept <= 0:
            return
        try:
            gone = self.transmitter.prune(first_kept)
        except TransmitError as exc:
            LOG.warning("round %d: could not delete the objects of older rounds under %s: %s", server_round,
                        self.transmitter.job_prefix, exc)
            return
        if gone:
            LOG.info("round %d: deleted %d object(s) of rounds before %d under %s", server_round, gone, first_kept,
                     self.transmitter.job_prefix)


class S3AggregationServer(AggregationServer):
    """An :class:`AggregationServer` whose final model file holds the model, not its reference."""

    def __init__(self, strategy: S3Strategy, *args: Any, **kwargs: Any) -> None:
        super().__init__(strategy, *args, **kwargs)
        self.transmitter = strategy.transmitter

    def run(self) -> RunResult:
        result = super().run()
        if not is_ref(result.weights):
            return result
        model = self.transmitter.receive(result.weights)
        if self.settings.model_path:
            save_npz(Path(self.settings.model_path), model)
            LOG.info("final model (round %d) fetched from S3 and written to %s", result.rounds,
                     self.settings.model_path)
        return replace(result, weights=model)


def build_s3_server(environ: Mapping[str, str] | None, transmitter: S3Transmitter, *,
                    aggregation: str | None = None, participants_count: int | None = None,
                    on_round: Callable[[dict[str, Any], bool], None] | None = None,
                    **overrides: Any) -> AggregationServer:
    """The server of a ``TRANSMITTER=s3`` environment (what
    :func:`sedna.service.aggregation.environment.build_server` returns for one)."""
    cfg = WorkerConfig.from_env(environ)
    settings = settings_from_env(cfg, **overrides)
    strategy = S3Strategy(strategy_from_env(cfg, aggregation, participants_count), transmitter,
                          keep_rounds=settings.checkpoint_keep)
    if on_round is None and cfg.job_name:
        on_round = round_reporter(cfg)
    initial = initial_weights_from_env(cfg)
    if initial is not None:  # the runner sees references only, from the first round on
        initial = transmitter.send(initial, 0, GLOBAL)
    LOG.info("TRANSMITTER=s3: models go through %s", transmitter.job_prefix)
    return S3AggregationServer(strategy, settings, initial_weights=initial, on_round=on_round)
