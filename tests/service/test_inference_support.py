"""Models and helpers shared by the inference server tests (no tests of its own).

``LinearModel`` is a numpy ServedModel (y = x @ W) that records the batch sizes it
sees and fails on demand; ``onnx_matmul_model`` wraps a real ONNX Runtime session
built with onnx.helper, proving real sessions work through the server.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from sedna.backend.tensors import Prediction, TensorSpec
from sedna.service.inference import InferenceServer

W = np.arange(12, dtype=np.float32).reshape(4, 3)
"""The weights of LinearModel: y = x @ W, so x = ones(1, 4) gives [18, 22, 26]."""

TOKEN = "s3cret-token"


class LinearModel:
    """y = x @ W with x: FP32 [-1, 4], y: FP32 [-1, 3]; x[0, 0] == -1 makes predict raise."""

    name = "linear"
    version = "1"
    platform = "numpy"
    inputs = (TensorSpec("x", "FP32", (-1, 4)),)
    outputs = (TensorSpec("y", "FP32", (-1, 3)),)

    def __init__(self, max_batch_size: int = 16, delay: float = 0.0) -> None:
        self.max_batch_size = max_batch_size
        self.delay = delay
        self.batch_sizes: list[int] = []
        self._lock = threading.Lock()

    def predict(self, inputs: Mapping[str, np.ndarray]) -> Prediction:
        x = inputs["x"]
        with self._lock:
            self.batch_sizes.append(int(x.shape[0]))
        if self.delay:
            time.sleep(self.delay)
        if (x[:, 0] == -1).any():
            raise RuntimeError("poisoned sample")
        return Prediction({"y": x @ W}, {"rows": int(x.shape[0]), "hard_example": False})


class TwoInputModel:
    """sum = a + b (INT32 [-1, 2]) and prod = a * b: a multi-input, multi-output model."""

    name = "pair"
    version = "2"
    platform = "numpy"
    inputs = (TensorSpec("a", "INT32", (-1, 2)), TensorSpec("b", "INT32", (-1, 2)))
    outputs = (TensorSpec("sum", "INT32", (-1, 2)), TensorSpec("prod", "INT32", (-1, 2)))
    max_batch_size = 0

    def predict(self, inputs: Mapping[str, np.ndarray]) -> Prediction:
        a, b = inputs["a"], inputs["b"]
        return Prediction({"sum": a + b, "prod": a * b})


class OnnxMatMulModel:
    """A real ONNX Runtime session computing y = x @ W (built with onnx.helper, no download)."""

    name = "onnx-matmul"
    version = "1"
    platform = "onnxruntime_onnx"
    inputs = (TensorSpec("x", "FP32", (-1, 4)),)
    outputs = (TensorSpec("y", "FP32", (-1, 3)),)
    max_batch_size = 8

    def __init__(self) -> None:
        import onnx
        import onnxruntime as ort
        from onnx import TensorProto, helper, numpy_helper

        graph = helper.make_graph(
            [helper.make_node("MatMul", ["x", "W"], ["y"])], "matmul",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 3])],
            initializer=[numpy_helper.from_array(W, name="W")],
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
        model.ir_version = 8
        onnx.checker.check_model(model)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        self.session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])

    def predict(self, inputs: Mapping[str, np.ndarray]) -> Prediction:
        (y,) = self.session.run(["y"], {"x": np.ascontiguousarray(inputs["x"])})
        return Prediction({"y": y})


@contextlib.contextmanager
def serving(models: list[Any], **kwargs: Any) -> Iterator[InferenceServer]:
    """A started InferenceServer on free loopback ports, stopped on exit."""
    options: dict[str, Any] = {"host": "127.0.0.1", "rest_port": 0, "grpc_port": 0, **kwargs}
    server = InferenceServer(models, **options)
    server.start()
    try:
        yield server
    finally:
        server.stop()
