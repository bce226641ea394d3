"""The digits models: a shallow edge model and a deep cloud model, as ONNX files.

Both are trained on scikit-learn's bundled digits (no download) with a fixed seed
and a held-out, stratified test split (:func:`digits_split`). The edge model is a
multinomial logistic regression (650 parameters); the cloud model an MLP with two
hidden layers of 256 (≈ 85 k parameters), so the edge has well under a tenth of the
cloud's parameters, as on a real edge device. Both export one input ``x``
(FP32, [-1, 64]) and the outputs ``label`` and ``probabilities``.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SEED = 0
TEST_SIZE = 0.3


@dataclass(frozen=True)
class DigitsSplit:
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def digits_split() -> DigitsSplit:
    """The fixed train/test split every digits example, test and benchmark uses."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=TEST_SIZE, random_state=SEED, stratify=y)
    return DigitsSplit(x_train, y_train, x_test, y_test)


def _export(model: object, path: Path) -> None:
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType

    onx = to_onnx(model, initial_types=[("x", FloatTensorType([None, 64]))], options={id(model): {"zipmap": False}},
                  target_opset=17)
    path.write_bytes(onx.SerializeToString())


def _param_count(model: object) -> int:
    coefs = getattr(model, "coefs_", None)
    if coefs is not None:
        return int(sum(w.size for w in coefs) + sum(b.size for b in model.intercepts_))  # type: ignore[attr-defined]
    return int(model.coef_.size + model.intercept_.size)  # type: ignore[attr-defined]


def build_models(out_dir: str | Path) -> dict[str, object]:
    """Train and write ``edge.onnx`` and ``cloud.onnx`` into ``out_dir`` (reused when already built).

    Returns the paths and parameter counts.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    info_path = out / "models.json"
    edge_path, cloud_path = out / "edge.onnx", out / "cloud.onnx"
    if info_path.exists() and edge_path.exists() and cloud_path.exists():
        return json.loads(info_path.read_text())
    split = digits_split()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        edge = LogisticRegression(max_iter=1000, C=1.0, random_state=SEED).fit(split.x_train, split.y_train)
        cloud = MLPClassifier(hidden_layer_sizes=(256, 256), max_iter=300, random_state=SEED).fit(
            split.x_train, split.y_train)
    _export(edge, edge_path)
    _export(cloud, cloud_path)
    info = {"edge": str(edge_path), "cloud": str(cloud_path), "edge_params": _param_count(edge),
            "cloud_params": _param_count(cloud)}
    info_path.write_text(json.dumps(info, indent=2))
    return info
