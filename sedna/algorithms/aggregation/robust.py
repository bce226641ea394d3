"""Byzantine-robust rules: FedMedian, FedTrimmedAvg, Krum, MultiKrum.

* **FedMedian** and **FedTrimmedAvg** — Yin et al., "Byzantine-Robust Distributed
  Learning: Towards Optimal Statistical Rates", ICML 2018: the coordinate-wise median, and
  the coordinate-wise mean after dropping the ``beta`` fraction of largest and smallest
  values. Both ignore sample counts (as the paper and Flower do).
* **Krum** and **MultiKrum** — Blanchard et al., "Machine Learning with Adversaries:
  Byzantine Tolerant Gradient Descent", NeurIPS 2017: each model is scored by the sum of
  squared distances to its ``n - f - 2`` nearest neighbours (``f`` = tolerated malicious
  clients); Krum returns the best-scored model, MultiKrum the sample-weighted average of
  the ``m`` best.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from sedna.algorithms.aggregation._numeric import coordinatewise, pairwise_sq_distances, weighted_average
from sedna.algorithms.aggregation.records import Failure, FitRes, Metrics, Weights, weighted_metrics
from sedna.algorithms.aggregation.strategy import Strategy, sample_weights
from sedna.common.class_factory import ClassFactory, ClassType


def _metrics(results: Sequence[FitRes]) -> Metrics:
    return weighted_metrics([(r.num_samples, r.metrics) for r in results])


@ClassFactory.register(ClassType.FL_AGG, alias="FedMedian")
class FedMedian(Strategy):
    """Coordinate-wise median of the client models (Yin et al., 2018)."""

    def aggregate_fit(
        self, server_round: int, weights: Weights, results: Sequence[FitRes], failures: Sequence[Failure]
    ) -> tuple[Weights | None, Metrics]:
        if not results:
            return None, {}
        return coordinatewise([r.weights for r in results], lambda s: np.median(s, axis=0)), _metrics(results)


@ClassFactory.register(ClassType.FL_AGG, alias="FedTrimmedAvg")
class FedTrimmedAvg(Strategy):
    """Coordinate-wise trimmed mean (Yin et al., 2018).

    Parameters
    ----------
    beta:
        Fraction cut from each end, ``0 <= beta < 0.5``; ``floor(beta * n)`` values go.
    """

    def __init__(self, *, beta: float = 0.2, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not 0.0 <= float(beta) < 0.5:
            raise ValueError(f"beta must be in [0, 0.5), got {beta!r}")
        self.beta = float(beta)

    def aggregate_fit(
        self, server_round: int, weights: Weights, results: Sequence[FitRes], failures: Sequence[Failure]
    ) -> tuple[Weights | None, Metrics]:
        if not results:
            return None, {}
        n = len(results)
        cut = int(self.beta * n)

        def trimmed(stack: np.ndarray) -> np.ndarray:
            mean: np.ndarray
            if cut == 0:
                mean = stack.mean(axis=0)
                return mean
            part = np.partition(stack, (cut - 1, n - cut), axis=0)
            mean = part[cut : n - cut].mean(axis=0)
            return mean

        return coordinatewise([r.weights for r in results], trimmed), _metrics(results)


def krum_scores(results: Sequence[FitRes], num_malicious: int) -> np.ndarray:
    """Krum score of every result (lower is more central)."""
    n = len(results)
    dist = pairwise_sq_distances([r.weights for r in results])
    k = max(n - num_malicious - 2, 1)
    scores = np.empty(n)
    for i in range(n):
        others = np.delete(dist[i], i)
        scores[i] = np.sort(others)[: min(k, others.size)].sum() if others.size else 0.0
    return scores


@ClassFactory.register(ClassType.FL_AGG, alias="Krum")
class Krum(Strategy):
    """The single most central model (Blanchard et al., 2017).

    Parameters
    ----------
    num_malicious_clients:
        ``f``, the number of Byzantine clients to tolerate.
    num_clients_to_keep:
        0 for Krum; ``m > 0`` averages the ``m`` best (MultiKrum).
    """

    def __init__(self, *, num_malicious_clients: int = 0, num_clients_to_keep: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if num_malicious_clients < 0 or num_clients_to_keep < 0:
            raise ValueError("num_malicious_clients and num_clients_to_keep must be >= 0")
        self.num_malicious_clients = int(num_malicious_clients)
        self.num_clients_to_keep = int(num_clients_to_keep)

    def _keep(self, n: int) -> int:
        return 1

    def aggregate_fit(
        self, server_round: int, weights: Weights, results: Sequence[FitRes], failures: Sequence[Failure]
    ) -> tuple[Weights | None, Metrics]:
        if not results:
            return None, {}
        scores = krum_scores(results, self.num_malicious_clients)
        best = [results[i] for i in np.argsort(scores, kind="stable")[: self._keep(len(results))]]
        if len(best) == 1:
            return {k: v.copy() for k, v in best[0].weights.items()}, _metrics(best)
        return weighted_average([r.weights for r in best], sample_weights(best)), _metrics(best)


@ClassFactory.register(ClassType.FL_AGG, alias="MultiKrum")
class MultiKrum(Krum):
    """Average of the ``m`` most central models (Blanchard et al., 2017); ``m`` defaults to ``n - f``."""

    def _keep(self, n: int) -> int:
        m = self.num_clients_to_keep or n - self.num_malicious_clients
        return max(1, min(m, n))
