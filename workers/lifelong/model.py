"""The task model the lifelong workers train: softmax regression that sizes itself from the data.

:class:`TaskSoftmax` is the federated workers' numpy softmax regression with what a knowledge
base needs: ``load`` / ``save`` of an ``.npz`` (``W``, ``b``, read with ``allow_pickle=False``),
``predict_proba``, and a ``train`` that re-sizes an untrained model to the data's feature and
class counts (so one worker serves any tabular task), then keeps training from the current
weights on later calls -- a fine-tune.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from sedna.common.errors import ModelLoadError
from workers.federated.softmax import Samples, SoftmaxRegression


class TaskSoftmax(SoftmaxRegression):
    """Softmax regression over any number of features and classes (labels are 0..K-1)."""

    def __init__(self, num_features: int = 64, num_classes: int = 10, input_scale: float = 1.0 / 16.0,
                 seed: int = 0) -> None:
        super().__init__(num_features, num_classes, input_scale, seed)
        self.trained = False

    def train(self, train_data: Any, valid_data: Any = None, epochs: int = 30, batch_size: int = 32,
              learning_rate: float = 0.5) -> dict[str, float]:
        x = np.asarray(train_data.x, np.float32)
        y = np.asarray(train_data.y).astype(np.int64)
        classes = max(self.num_classes, int(y.max()) + 1 if len(y) else 0)
        if not self.trained and (x.shape[1] != self.num_features or classes != self.num_classes):
            self.num_features, self.num_classes = x.shape[1], classes
            self.weights = {"W": np.zeros((self.num_features, classes), np.float32),
                            "b": np.zeros(classes, np.float32)}
        self.trained = True
        return super().train(Samples(x, y), epochs=epochs, batch_size=batch_size, learning_rate=learning_rate)

    def predict_proba(self, data: Any) -> np.ndarray:
        return self.predict(data)

    def evaluate(self, data: Any, **_: Any) -> dict[str, float]:
        p = self.predict(np.asarray(data.x, np.float32))
        y = np.asarray(data.y).astype(np.int64)
        return {"accuracy": float((p.argmax(axis=1) == y).mean()) if len(y) else 0.0}

    def load(self, model_url: str) -> None:
        path = Path(model_url)
        try:
            with np.load(path, allow_pickle=False) as data:
                weights = {"W": np.array(data["W"], np.float32), "b": np.array(data["b"], np.float32)}
        except (OSError, ValueError, KeyError) as exc:
            raise ModelLoadError(f"cannot load task model {str(path)!r}: {exc}") from None
        if weights["W"].ndim != 2 or weights["b"].shape != (weights["W"].shape[1],):
            raise ModelLoadError(f"{path}: W {weights['W'].shape} and b {weights['b'].shape} do not fit together")
        self.num_features, self.num_classes = weights["W"].shape
        self.weights = weights
        self.trained = True

    def save(self, path: str | Path) -> None:
        target = Path(path)
        tmp = target.with_name(target.name + ".tmp.npz")
        np.savez(tmp, **self.weights)
        tmp.replace(target)
