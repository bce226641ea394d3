"""Server-side optimisers: FedAvgM, FedAdagrad, FedAdam, FedYogi.

* **FedAvgM** — Hsu, Qi and Brown, "Measuring the Effects of Non-Identical Data
  Distribution for Federated Visual Classification", 2019: server momentum on the
  pseudo-gradient ``g = w - avg``: ``v = beta v + g; w = w - server_lr v``.
* **FedAdagrad / FedAdam / FedYogi** — Reddi et al., "Adaptive Federated Optimization",
  ICLR 2021 (Algorithm 2): with ``d = avg - w``, ``m = b1 m + (1-b1) d`` and
  Adagrad ``v = v + d^2``, Adam ``v = b2 v + (1-b2) d^2``,
  Yogi ``v = v - (1-b2) d^2 sign(v - d^2)``; then ``w = w + eta m / (sqrt(v) + tau)``.

``avg`` is FedAvg's sample-weighted average. Momentum and moments are server state,
checkpointed through :meth:`state_dict`. When every client returns the global model
unchanged, ``d = 0`` and (from a fresh state) the global model stays where it is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from sedna.algorithms.aggregation._numeric import weighted_average
from sedna.algorithms.aggregation.records import Failure, FitRes, Metrics, Weights, weighted_metrics
from sedna.algorithms.aggregation.strategy import Strategy, sample_weights
from sedna.common.class_factory import ClassFactory, ClassType


class _ServerOptimizer(Strategy):
    _slots: tuple[str, ...] = ()

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._state: dict[str, dict[str, np.ndarray]] = {slot: {} for slot in self._slots}

    def aggregate_fit(
        self, server_round: int, weights: Weights, results: Sequence[FitRes], failures: Sequence[Failure]
    ) -> tuple[Weights | None, Metrics]:
        if not results:
            return None, {}
        avg = weighted_average([r.weights for r in results], sample_weights(results), precise=True)
        new: Weights = {}
        for name, current in weights.items():
            work = np.float64 if current.dtype == np.float64 else np.float32
            delta = avg[name].astype(work) - current.astype(work)
            new[name] = self._step(name, current.astype(work), delta).astype(current.dtype, copy=False)
        return new, weighted_metrics([(r.num_samples, r.metrics) for r in results])

    def _slot(self, slot: str, name: str, like: np.ndarray, fill: float = 0.0) -> np.ndarray:
        arr = self._state[slot].get(name)
        if arr is None or arr.shape != like.shape:
            arr = np.full(like.shape, fill, like.dtype)
            self._state[slot][name] = arr
        return arr

    def _step(self, name: str, current: np.ndarray, delta: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def state_dict(self) -> dict[str, np.ndarray]:
        return {f"{slot}/{name}": arr for slot, arrays in self._state.items() for name, arr in arrays.items()}

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        for key, arr in state.items():
            slot, _, name = key.partition("/")
            if slot in self._state:
                self._state[slot][name] = np.array(arr)


@ClassFactory.register(ClassType.FL_AGG, alias="FedAvgM")
class FedAvgM(_ServerOptimizer):
    """FedAvg with server momentum (Hsu et al., 2019)."""

    _slots = ("momentum",)

    def __init__(self, *, server_learning_rate: float = 1.0, server_momentum: float = 0.9, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.server_learning_rate = float(server_learning_rate)
        self.server_momentum = float(server_momentum)

    def _step(self, name: str, current: np.ndarray, delta: np.ndarray) -> np.ndarray:
        velocity = self._slot("momentum", name, current)
        velocity *= self.server_momentum
        velocity -= delta  # pseudo-gradient g = w - avg = -delta
        return current - self.server_learning_rate * velocity


class _Adaptive(_ServerOptimizer):
    _slots = ("m", "v")

    def __init__(
        self,
        *,
        eta: float = 0.1,
        beta_1: float = 0.9,
        beta_2: float = 0.99,
        tau: float = 1e-9,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if tau <= 0:
            raise ValueError(f"tau must be > 0, got {tau!r}")
        self.eta, self.beta_1, self.beta_2, self.tau = float(eta), float(beta_1), float(beta_2), float(tau)

    def _second_moment(self, v: np.ndarray, sq: np.ndarray) -> None:
        raise NotImplementedError

    def _step(self, name: str, current: np.ndarray, delta: np.ndarray) -> np.ndarray:
        m = self._slot("m", name, current)
        m *= self.beta_1
        m += (1.0 - self.beta_1) * delta
        v = self._slot("v", name, current, fill=self.tau**2)
        self._second_moment(v, delta * delta)
        stepped: np.ndarray = current + self.eta * m / (np.sqrt(v) + self.tau)
        return stepped


@ClassFactory.register(ClassType.FL_AGG, alias="FedAdagrad")
class FedAdagrad(_Adaptive):
    """Adaptive server optimiser, Adagrad variant (Reddi et al., 2021)."""

    def _second_moment(self, v: np.ndarray, sq: np.ndarray) -> None:
        v += sq


@ClassFactory.register(ClassType.FL_AGG, alias="FedAdam")
class FedAdam(_Adaptive):
    """Adaptive server optimiser, Adam variant (Reddi et al., 2021)."""

    def _second_moment(self, v: np.ndarray, sq: np.ndarray) -> None:
        v *= self.beta_2
        v += (1.0 - self.beta_2) * sq


@ClassFactory.register(ClassType.FL_AGG, alias="FedYogi")
class FedYogi(_Adaptive):
    """Adaptive server optimiser, Yogi variant (Reddi et al., 2021)."""

    def _second_moment(self, v: np.ndarray, sq: np.ndarray) -> None:
        v -= (1.0 - self.beta_2) * sq * np.sign(v - sq)
