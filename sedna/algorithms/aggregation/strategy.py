"""The strategy interface: what a federated round does, with no I/O.

Modelled on Flower's ``Strategy`` (Beutel et al., "Flower: A Friendly Federated Learning
Framework", 2020): the server asks the strategy which clients train with what
(:meth:`Strategy.configure_fit`), hands it the validated updates
(:meth:`Strategy.aggregate_fit`), and does the same for evaluation. The strategy never
opens a socket, reads a clock or touches a file; randomness comes in as an argument.
Server-side state (momentum, Adam moments) is exposed through :meth:`state_dict` so the
aggregation server can checkpoint it with the global model.

Subclasses usually override only :meth:`aggregate_fit` (robust rules, server optimisers)
or :meth:`fit_config` (FedProx).
"""

from __future__ import annotations

import math
import random
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
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
    weighted_metrics,
)


def _check_fraction(name: str, value: float) -> float:
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value!r}")
    return value


def _check_count(name: str, value: int) -> int:
    if int(value) != value or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


class Strategy(ABC):
    """Base class: client sampling and metric averaging; subclasses define aggregation.

    Parameters
    ----------
    fraction_fit, fraction_evaluate:
        Share of the available clients asked to train / evaluate each round.
    min_fit_clients, min_evaluate_clients:
        Lower bounds on those samples.
    min_available_clients:
        The server waits for this many connected clients before a round starts.
    fit_config, evaluate_config:
        Sent to every client with each instruction (e.g. ``{"epochs": 1}``).
    """

    def __init__(
        self,
        *,
        fraction_fit: float = 1.0,
        fraction_evaluate: float = 1.0,
        min_fit_clients: int = 1,
        min_evaluate_clients: int = 1,
        min_available_clients: int = 1,
        fit_config: Mapping[str, Any] | None = None,
        evaluate_config: Mapping[str, Any] | None = None,
    ) -> None:
        self.fraction_fit = _check_fraction("fraction_fit", fraction_fit)
        self.fraction_evaluate = _check_fraction("fraction_evaluate", fraction_evaluate)
        self.min_fit_clients = _check_count("min_fit_clients", min_fit_clients)
        self.min_evaluate_clients = _check_count("min_evaluate_clients", min_evaluate_clients)
        self.min_available_clients = _check_count("min_available_clients", min_available_clients)
        self.fit_config: Config = dict(fit_config or {})
        self.evaluate_config: Config = dict(evaluate_config or {})

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    # ---- sampling
    def num_fit_clients(self, num_available: int) -> int:
        """How many of ``num_available`` clients train in a round."""
        wanted = max(math.ceil(num_available * self.fraction_fit), self.min_fit_clients, 1)
        return min(wanted, num_available)

    def num_evaluate_clients(self, num_available: int) -> int:
        """How many of ``num_available`` evaluating clients evaluate in a round (0 disables)."""
        if self.fraction_evaluate == 0.0 or num_available == 0:
            return 0
        wanted = max(math.ceil(num_available * self.fraction_evaluate), self.min_evaluate_clients, 1)
        return min(wanted, num_available)

    def fit_config_for(self, server_round: int) -> Config:
        """The config each client receives with its fit instruction."""
        return {**self.fit_config, "server_round": server_round}

    # ---- the Flower-style pairs
    def configure_fit(
        self, server_round: int, weights: Weights, clients: Sequence[ClientInfo], rng: random.Random
    ) -> list[tuple[str, FitIns]]:
        """Choose the round's trainers (uniformly at random) and what they receive."""
        chosen = rng.sample(list(clients), self.num_fit_clients(len(clients)))
        ins = FitIns(weights=weights, config=self.fit_config_for(server_round))
        return [(c.client_id, ins) for c in sorted(chosen, key=lambda c: c.client_id)]

    @abstractmethod
    def aggregate_fit(
        self, server_round: int, weights: Weights, results: Sequence[FitRes], failures: Sequence[Failure]
    ) -> tuple[Weights | None, Metrics]:
        """The new global weights from validated ``results`` (None keeps ``weights``)."""

    def configure_evaluate(
        self, server_round: int, weights: Weights, clients: Sequence[ClientInfo], rng: random.Random
    ) -> list[tuple[str, EvaluateIns]]:
        """Choose evaluators among clients that can evaluate."""
        able = [c for c in clients if c.can_evaluate]
        chosen = rng.sample(able, self.num_evaluate_clients(len(able)))
        ins = EvaluateIns(weights=weights, config={**self.evaluate_config, "server_round": server_round})
        return [(c.client_id, ins) for c in sorted(chosen, key=lambda c: c.client_id)]

    def aggregate_evaluate(
        self, server_round: int, results: Sequence[EvaluateRes], failures: Sequence[Failure]
    ) -> tuple[float | None, Metrics]:
        """Sample-weighted mean loss and metrics."""
        if not results:
            return None, {}
        total = sum(r.num_samples for r in results) or len(results)
        loss = sum(r.loss * (r.num_samples or 1) for r in results) / total
        return loss, weighted_metrics([(r.num_samples or 1, r.metrics) for r in results])

    # ---- checkpointable server state
    def state_dict(self) -> dict[str, np.ndarray]:
        """Server-side state to checkpoint with the global model (none by default)."""
        return {}

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        """Restore what :meth:`state_dict` returned."""
        return None


def sample_weights(results: Sequence[FitRes]) -> list[float]:
    """Each result's share of the round's samples (equal shares when all report 0)."""
    total = sum(r.num_samples for r in results)
    if total <= 0:
        return [1.0 / len(results)] * len(results)
    return [r.num_samples / total for r in results]
