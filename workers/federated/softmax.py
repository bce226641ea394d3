"""A numpy softmax-regression estimator and the digits dataset files the trainer reads.

The estimator follows the SDK's duck-typed contract (``train``, ``evaluate``,
``predict``, ``get_weights``, ``set_weights``, ``save``) and supports FedProx: ``train``
accepts ``proximal_mu`` and ``global_weights`` and adds ``mu * (w - w_global)`` to the
gradient. Inputs are scaled by ``input_scale`` (1/16 for 0..16 digit pixels) inside the
model, so the exported ONNX graph takes raw features.

Dataset files: a CSV with a header row, one sample per line, feature columns first and
the integer label in the last column (the ``csv`` format of a Sedna ``Dataset``), or an
``.npz`` holding ``x`` (N x F float) and ``y`` (N int).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sedna.common.errors import DataSourceError


@dataclass
class Samples:
    """Features and labels; ``len()`` is the sample count the SDK reports."""

    x: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def split(self, fraction: float, seed: int = 0) -> tuple[Samples, Samples]:
        """``(rest, held_out)`` with ``fraction`` of the samples held out (shuffled, fixed seed)."""
        order = np.random.default_rng(seed).permutation(len(self))
        cut = round(len(self) * fraction)
        held, rest = order[:cut], order[cut:]
        return Samples(self.x[rest], self.y[rest]), Samples(self.x[held], self.y[held])


def load_samples(path: str | Path) -> Samples:
    """Read a dataset file (CSV with header, label last; or npz with x, y)."""
    p = Path(path)
    if not p.exists():
        raise DataSourceError(f"dataset file {str(p)!r} does not exist (TRAIN_DATASET_URL)")
    if p.suffix == ".npz":
        with np.load(p, allow_pickle=False) as data:
            if "x" not in data.files or "y" not in data.files:
                raise DataSourceError(f"{p}: an npz dataset needs arrays 'x' and 'y', found {data.files}")
            return Samples(data["x"].astype(np.float32), data["y"].astype(np.int64))
    with p.open(newline="") as handle:
        rows = list(csv.reader(handle))
    if len(rows) < 2:
        raise DataSourceError(f"{p}: a CSV dataset needs a header row and at least one sample")
    try:
        table = np.asarray(rows[1:], dtype=np.float64)
    except ValueError as exc:
        raise DataSourceError(f"{p}: non-numeric value in the CSV ({exc})") from None
    return Samples(table[:, :-1].astype(np.float32), table[:, -1].astype(np.int64))


def save_samples_csv(path: str | Path, samples: Samples) -> None:
    """Write ``samples`` as the CSV :func:`load_samples` reads."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with p.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([f"f{i}" for i in range(samples.x.shape[1])] + ["label"])
        for row, label in zip(samples.x, samples.y, strict=True):
            writer.writerow([f"{v:g}" for v in row] + [int(label)])


class SoftmaxRegression:
    """Multinomial logistic regression trained with mini-batch SGD."""

    def __init__(self, num_features: int = 64, num_classes: int = 10, input_scale: float = 1.0 / 16.0,
                 seed: int = 0) -> None:
        self.num_features, self.num_classes, self.input_scale = num_features, num_classes, float(input_scale)
        self.seed = seed
        self.weights = {"W": np.zeros((num_features, num_classes), np.float32),
                        "b": np.zeros(num_classes, np.float32)}

    def get_weights(self) -> dict[str, np.ndarray]:
        return {k: v.copy() for k, v in self.weights.items()}

    def set_weights(self, weights: dict[str, np.ndarray]) -> None:
        self.weights = {k: np.array(weights[k], dtype=np.float32) for k in ("W", "b")}

    def _proba(self, x: np.ndarray) -> np.ndarray:
        logits = (x * self.input_scale) @ self.weights["W"] + self.weights["b"]
        logits -= logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        return e / e.sum(axis=1, keepdims=True)

    def predict(self, data: Any) -> np.ndarray:
        x = data.x if isinstance(data, Samples) else np.asarray(data, np.float32)
        return self._proba(x)

    def train(self, train_data: Samples, valid_data: Samples | None = None, epochs: int = 5, batch_size: int = 32,
              learning_rate: float = 0.5, proximal_mu: float = 0.0,
              global_weights: dict[str, np.ndarray] | None = None) -> dict[str, float]:
        """SGD on cross-entropy (+ FedProx's proximal term); returns the last epoch's mean loss."""
        rng = np.random.default_rng(self.seed)
        self.seed += 1
        w, b = self.weights["W"], self.weights["b"]
        anchor = {k: np.asarray(v, np.float32) for k, v in (global_weights or {}).items()}
        x, y = train_data.x, train_data.y
        loss = 0.0
        for _ in range(int(epochs)):
            order = rng.permutation(len(train_data))
            total = 0.0
            for start in range(0, len(order), int(batch_size)):
                idx = order[start : start + int(batch_size)]
                xb = x[idx] * self.input_scale
                p = self._proba(x[idx])
                total += float(-np.log(p[np.arange(len(idx)), y[idx]] + 1e-12).sum())
                p[np.arange(len(idx)), y[idx]] -= 1.0
                grad_w, grad_b = xb.T @ p / len(idx), p.mean(axis=0)
                if proximal_mu > 0 and anchor:
                    grad_w += proximal_mu * (w - anchor["W"])
                    grad_b += proximal_mu * (b - anchor["b"])
                w -= float(learning_rate) * grad_w.astype(np.float32)
                b -= float(learning_rate) * grad_b.astype(np.float32)
            loss = total / max(len(order), 1)
        return {"loss": loss}

    def evaluate(self, data: Samples) -> dict[str, float]:
        p = self._proba(data.x)
        accuracy = float((p.argmax(axis=1) == data.y).mean()) if len(data) else 0.0
        loss = float(-np.log(p[np.arange(len(data)), data.y] + 1e-12).mean()) if len(data) else 0.0
        return {"accuracy": accuracy, "loss": loss}

    def save(self, path: str | Path) -> None:
        np.savez(Path(path), **self.weights)
