"""ONNX models (load errors name the file) and the plain-estimator adapter."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from sedna.backend.adapter import EstimatorAdapter
from sedna.backend.onnx import OnnxEstimator, OnnxModel
from sedna.backend.tensors import TensorSpec
from sedna.common.errors import ModelLoadError


def matmul_model(path: Path, weights: np.ndarray) -> Path:
    w = numpy_helper.from_array(weights.astype(np.float32), "W")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"])], "mm",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", weights.shape[0]])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", weights.shape[1]])], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, path)
    return path


def test_onnx_model_metadata_and_batched_run(tmp_path: Path) -> None:
    w = np.arange(6, dtype=np.float32).reshape(3, 2)
    model = OnnxModel(matmul_model(tmp_path / "m.onnx", w), "mm", intra_op_threads=1)
    assert model.inputs == [TensorSpec("x", "FP32", (-1, 3))]
    assert model.outputs == [TensorSpec("y", "FP32", (-1, 2))]
    assert model.max_batch_size > 0
    x = np.ones((4, 3), np.float32)
    np.testing.assert_allclose(model.predict({"x": x}).outputs["y"], x @ w)


def test_estimator_adds_the_batch_dimension(tmp_path: Path) -> None:
    w = np.eye(3, dtype=np.float32)
    est = OnnxEstimator(matmul_model(tmp_path / "m.onnx", w))
    np.testing.assert_allclose(est.predict([1, 2, 3]), [[1, 2, 3]])


def test_missing_model_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"nope\.onnx' does not exist"):
        OnnxModel(tmp_path / "nope.onnx")


def test_corrupt_model_file_names_the_path(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(ModelLoadError, match=r"bad\.onnx' is not a loadable ONNX model"):
        OnnxModel(bad)


def test_sha256_mismatch_refuses_to_load(tmp_path: Path) -> None:
    path = matmul_model(tmp_path / "m.onnx", np.eye(2))
    good = hashlib.sha256(path.read_bytes()).hexdigest()
    OnnxModel(path, sha256=good.upper())
    with pytest.raises(ModelLoadError, match=f"expected {'0' * 64}"):
        OnnxModel(path, sha256="0" * 64)


class UserEstimator:
    def __init__(self, lr: float = 0.1) -> None:
        self.lr = lr

    def train(self, train_data: list[int], epochs: int = 1) -> tuple[int, int, float]:
        return len(train_data), epochs, self.lr

    def predict(self, data: int, **kwargs: int) -> dict[str, int]:
        return {"data": data, **kwargs}


def test_adapter_passes_each_method_only_what_it_accepts() -> None:
    adapter = EstimatorAdapter(UserEstimator, lr=0.5, unknown="x")
    assert adapter.call("train", [1, 2], epochs=3, batch_size=8) == (2, 3, 0.5)
    assert adapter.predict(7, batch_size=8) == {"data": 7, "batch_size": 8}  # **kwargs takes all
    assert adapter.has("train") and not adapter.has("save")
    with pytest.raises(AttributeError, match="no method 'save'"):
        adapter.call("save", "/tmp/x")
