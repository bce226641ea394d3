"""FedAvg and FedProx.

* **FedAvg** — McMahan et al., "Communication-Efficient Learning of Deep Networks from
  Decentralized Data", AISTATS 2017: the new global model is the average of the client
  models weighted by their sample counts, ``w = sum_k (n_k / n) w_k``.
* **FedProx** — Li et al., "Federated Optimization in Heterogeneous Networks", MLSys 2020:
  aggregation is FedAvg's; each client minimises ``F_k(w) + mu/2 ||w - w_global||^2``.
  The strategy only puts ``proximal_mu`` into the fit config. The client SDK
  (``sedna.core.federated_learning``) passes ``proximal_mu=`` and ``global_weights=`` to
  ``estimator.train`` when its signature accepts them; the estimator adds
  ``mu * (w - w_global)`` to its gradient. Estimators that do not accept ``proximal_mu``
  train as with FedAvg and the SDK logs a warning once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sedna.algorithms.aggregation._numeric import weighted_average
from sedna.algorithms.aggregation.records import Config, Failure, FitRes, Metrics, Weights, weighted_metrics
from sedna.algorithms.aggregation.strategy import Strategy, sample_weights
from sedna.common.class_factory import ClassFactory, ClassType


@ClassFactory.register(ClassType.FL_AGG, alias="FedAvg")
class FedAvg(Strategy):
    """Sample-weighted average of the client models (McMahan et al., 2017)."""

    def aggregate_fit(
        self, server_round: int, weights: Weights, results: Sequence[FitRes], failures: Sequence[Failure]
    ) -> tuple[Weights | None, Metrics]:
        if not results:
            return None, {}
        merged = weighted_average([r.weights for r in results], sample_weights(results))
        return merged, weighted_metrics([(r.num_samples, r.metrics) for r in results])


@ClassFactory.register(ClassType.FL_AGG, alias="FedProx")
class FedProx(FedAvg):
    """FedAvg plus a proximal term on the clients (Li et al., 2020).

    Parameters
    ----------
    proximal_mu:
        Strength of the proximal term; 0 is plain FedAvg.
    """

    def __init__(self, *, proximal_mu: float = 0.01, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if float(proximal_mu) < 0:
            raise ValueError(f"proximal_mu must be >= 0, got {proximal_mu!r}")
        self.proximal_mu = float(proximal_mu)

    def fit_config_for(self, server_round: int) -> Config:
        return {**super().fit_config_for(server_round), "proximal_mu": self.proximal_mu}
