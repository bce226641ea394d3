"""Typed records that strategies consume and produce (Flower's ``FitIns``/``FitRes`` vocabulary).

A model is a :data:`Weights` mapping of tensor name to numpy array, in a stable order.
Strategies see only these records: the aggregation server (``sedna.service.aggregation``)
turns wire messages into them after validating names, shapes, dtypes and finiteness, so a
strategy can assume every update matches the global model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Union

import numpy as np

Weights = dict[str, np.ndarray]
"""Named tensors of one model, in the model's order."""

Scalar = Union[bool, int, float, str]  # noqa: UP007 (a runtime alias on Python 3.10)
"""A config or metric value (what protobuf ``Scalar`` carries)."""

Config = dict[str, Scalar]
Metrics = dict[str, Scalar]


@dataclass(frozen=True)
class ClientInfo:
    """A connected participant as the strategy sees it."""

    client_id: str
    num_samples: int = 0
    """Samples the client declared when it joined."""
    can_evaluate: bool = False
    """Whether the client has validation data and an ``evaluate`` method."""


@dataclass(frozen=True)
class FitIns:
    """Train from ``weights`` with ``config`` (e.g. ``proximal_mu`` for FedProx)."""

    weights: Weights
    config: Config = field(default_factory=dict)


@dataclass(frozen=True)
class FitRes:
    """A client's update for one round."""

    client_id: str
    num_samples: int
    weights: Weights
    metrics: Metrics = field(default_factory=dict)


@dataclass(frozen=True)
class EvaluateIns:
    """Evaluate ``weights`` on local validation data."""

    weights: Weights
    config: Config = field(default_factory=dict)


@dataclass(frozen=True)
class EvaluateRes:
    """A client's evaluation of the global model."""

    client_id: str
    num_samples: int
    loss: float
    metrics: Metrics = field(default_factory=dict)


@dataclass(frozen=True)
class Failure:
    """A selected client that did not deliver: disconnected, timed out, or rejected (with why)."""

    client_id: str
    reason: str


def weighted_metrics(pairs: list[tuple[int, Mapping[str, Scalar]]]) -> Metrics:
    """Average every numeric metric over clients, weighted by their sample counts."""
    totals: dict[str, float] = {}
    counts: dict[str, int] = {}
    for num, metrics in pairs:
        for key, value in metrics.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            totals[key] = totals.get(key, 0.0) + float(value) * num
            counts[key] = counts.get(key, 0) + num
    return {key: totals[key] / counts[key] for key in totals if counts[key] > 0}
