"""The digits model the incremental-learning workers train, evaluate and serve.

:class:`DigitsSoftmax` is the federated workers' softmax regression plus what incremental
learning needs: ``load`` (an ``.npz`` of ``W`` and ``b``, read with ``allow_pickle=False``)
and an ``evaluate`` that also reports per-class precision, a list metric the deploy trigger can
index (``precision_delta[3]``) or reduce (``precision_delta.mean``). Dataset files are the CSV
(header, 64 pixel columns, label last) that :func:`workers.federated.softmax.load_samples` reads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from sedna.common.errors import ModelLoadError
from workers.federated.softmax import Samples, SoftmaxRegression, load_samples, save_samples_csv

__all__ = ["DigitsSoftmax", "Samples", "load_samples", "save_samples_csv"]


class DigitsSoftmax(SoftmaxRegression):
    """Softmax regression over 8x8 digits (64 features, 10 classes)."""

    def load(self, model_url: str) -> None:
        path = Path(model_url)
        try:
            with np.load(path, allow_pickle=False) as data:
                weights = {"W": data["W"], "b": data["b"]}
        except (OSError, ValueError, KeyError) as exc:
            raise ModelLoadError(f"cannot load digits model {str(path)!r}: {exc}") from None
        if weights["W"].shape != (self.num_features, self.num_classes):
            raise ModelLoadError(f"{path}: W has shape {weights['W'].shape}, expected "
                                 f"{(self.num_features, self.num_classes)}")
        self.set_weights(weights)

    def save(self, path: str | Path) -> None:
        target = Path(path)
        tmp = target.with_name(target.name + ".tmp.npz")
        np.savez(tmp, **self.weights)
        tmp.replace(target)

    def evaluate(self, data: Samples, **_: Any) -> dict[str, Any]:
        metrics: dict[str, Any] = dict(super().evaluate(data))
        predicted = self.predict(data).argmax(axis=1)
        precision = []
        for label in range(self.num_classes):
            chosen = predicted == label
            precision.append(float((data.y[chosen] == label).mean()) if chosen.any() else 0.0)
        metrics["precision"] = precision
        return metrics
