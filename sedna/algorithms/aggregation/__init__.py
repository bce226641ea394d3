"""Federated aggregation strategies, registered under ``ClassType.FL_AGG``.

Importing this package registers the built-ins (the class factory imports it on the
first look-up of an aggregation name): FedAvg, FedAvgM, FedProx, FedAdam, FedYogi,
FedAdagrad, FedMedian, FedTrimmedAvg, Krum, MultiKrum. Each is a policy object with no
I/O (see :mod:`~sedna.algorithms.aggregation.strategy`); pick one by name with
:func:`create_strategy`.
"""

from __future__ import annotations

from typing import Any

from sedna.algorithms.aggregation.fedavg import FedAvg, FedProx
from sedna.algorithms.aggregation.fedopt import FedAdagrad, FedAdam, FedAvgM, FedYogi
from sedna.algorithms.aggregation.records import (
    ClientInfo,
    Config,
    EvaluateIns,
    EvaluateRes,
    Failure,
    FitIns,
    FitRes,
    Metrics,
    Scalar,
    Weights,
)
from sedna.algorithms.aggregation.robust import FedMedian, FedTrimmedAvg, Krum, MultiKrum
from sedna.algorithms.aggregation.strategy import Strategy

__all__ = [
    "ClientInfo",
    "Config",
    "EvaluateIns",
    "EvaluateRes",
    "Failure",
    "FedAdagrad",
    "FedAdam",
    "FedAvg",
    "FedAvgM",
    "FedMedian",
    "FedProx",
    "FedTrimmedAvg",
    "FedYogi",
    "FitIns",
    "FitRes",
    "Krum",
    "Metrics",
    "MultiKrum",
    "Scalar",
    "Strategy",
    "Weights",
    "create_strategy",
]


def create_strategy(name: str, **parameters: Any) -> Strategy:
    """Instantiate the strategy registered as ``name``; unknown parameters raise a ``ConfigError``."""
    from sedna.common.class_factory import ClassFactory, ClassType
    from sedna.common.errors import ConfigError

    cls = ClassFactory.get_cls(ClassType.FL_AGG, name)
    try:
        strategy = cls(**parameters)
    except TypeError as exc:
        raise ConfigError(f"aggregation {name!r}: bad parameters {sorted(parameters)}: {exc}") from None
    except ValueError as exc:
        raise ConfigError(f"aggregation {name!r}: {exc}") from None
    if not isinstance(strategy, Strategy):
        raise ConfigError(f"aggregation {name!r} is {cls.__qualname__}, not a Strategy")
    return strategy
