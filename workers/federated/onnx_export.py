"""Export a softmax-regression model to ONNX: ``probabilities = Softmax(x @ W' + b)``.

``W' = W * input_scale`` folds the estimator's input scaling into the graph, so the model
takes raw features. Input ``x`` FP32 ``[-1, F]``, output ``probabilities`` FP32 ``[-1, C]``:
the shape the joint-inference cloud worker serves.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np


def export_softmax_onnx(weights: Mapping[str, np.ndarray], path: str | Path, input_scale: float = 1.0 / 16.0) -> Path:
    """Write the ONNX model of ``weights`` (``W`` F x C, ``b`` C) to ``path``; returns the path."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = (np.asarray(weights["W"], np.float32) * np.float32(input_scale)).astype(np.float32)
    b = np.asarray(weights["b"], np.float32)
    features, classes = w.shape
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["logits_raw"]),
         helper.make_node("Add", ["logits_raw", "b"], ["logits"]),
         helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1)],
        "sedna_fl_softmax",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [-1, features])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [-1, classes])],
        initializer=[numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="sedna-py")
    model.ir_version = 8
    onnx.checker.check_model(model)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(out))
    return out
